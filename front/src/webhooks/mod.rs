//! The webhook delivery worker: takes the events the extension's capture triggers wrote into
//! `api_gateway.webhook_job`, signs them (Standard Webhooks) and POSTs them, at least once.
//!
//! * Idle, it looks every `poll_interval` (25 ms) whether a job is due: capture does not
//!   NOTIFY, which would serialise the writers' commits. `LISTEN api_gateway_webhook` wakes it
//!   when a webhook is saved or a job replayed.
//! * Claims with `api_gateway.webhook_claim` (`FOR UPDATE SKIP LOCKED`): each claimed job is
//!   leased (its `next_attempt_at` moves to the end of the lease) to the claiming database
//!   session, so a worker killed with SIGKILL loses nothing: its jobs are claimed again as soon
//!   as its sessions are gone (or when the lease is over, for a worker alive but stuck). Jobs
//!   of one record are delivered one at a time, in order.
//! * At most `per_endpoint` requests in flight per webhook; each request has the webhook's
//!   timeout.
//! * Results are written back in batches with `api_gateway.webhook_complete`: 2xx delivered,
//!   410 deactivates the webhook, anything else is retried with the core's backoff (or the
//!   `Retry-After` the endpoint asked for) until the last attempt, then `dead`.
//! * SSRF: targets resolving to link-local or metadata addresses are always refused, private
//!   and loopback ones unless `webhook_settings.allow_private_targets`.
mod deliver;
mod store;

pub use deliver::{Outcome, SsrfPolicy, check_target, classify_response, parse_retry_after};

/// One attempt outside the queue (the admin console's test event): the same SSRF checks,
/// signature and timeout as a worker's delivery; the outcome is `delivered` or `dead` (nothing
/// is retried or written back).
pub async fn send_once(job: Job, allow_private: bool) -> Completion {
    let settings = Settings {
        allow_private,
        schedule: Vec::new(),
    };
    match deliver::client(allow_private, 1) {
        Ok(client) => deliver::deliver(&client, &settings, job).await,
        Err(e) => Completion {
            job_id: job.id,
            attempt: job.attempt,
            outcome: "dead",
            status: None,
            error: Some(e),
            delay_s: 0.0,
        },
    }
}

use deadpool_postgres::Pool;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// The LISTEN channel the capture trigger notifies.
pub const CHANNEL: &str = "api_gateway_webhook";

/// How often `webhook_settings` is read again.
const SETTINGS_EVERY: Duration = Duration::from_secs(1);

/// The shortest poll interval accepted.
const MIN_POLL: Duration = Duration::from_millis(5);

/// How the worker runs. `Default` gives the documented defaults with no LISTEN connection.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Connection URL for the LISTEN connection (a direct one: PgBouncer in transaction mode
    /// does not carry notifications). None: no LISTEN, the sweep alone finds new jobs.
    pub listen_url: Option<String>,
    /// Name recorded in `webhook_job.leased_by` (default: host name and process id).
    pub worker_id: String,
    /// Requests in flight per webhook at most.
    pub per_endpoint: usize,
    /// Upper bound of the poll interval (kept for compatibility: `poll_interval` is shorter).
    pub sweep_interval: Duration,
    /// How often an idle worker looks for due jobs (capture does not NOTIFY). Each look is one
    /// read-only query; the commit-to-delivery latency of an idle worker is about half of it.
    pub poll_interval: Duration,
    /// Largest batch of results written back in one statement.
    pub record_batch: usize,
    /// After shutdown is requested, how long in-flight deliveries may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            listen_url: None,
            worker_id: default_worker_id(),
            per_endpoint: 8,
            sweep_interval: Duration::from_secs(5),
            poll_interval: Duration::from_millis(25),
            record_batch: 500,
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

/// `<hostname>:<pid>`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}:{}", std::process::id())
}

/// A claimed job, as `webhook_claim` returns it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub event_id: String,
    pub webhook_id: i32,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub url: String,
    pub headers: serde_json::Value,
    pub secret: String,
    /// The secret before the last rotation, while its overlap lasts: the request carries a
    /// signature with each (`v1,<new> v1,<old>`).
    pub previous_secret: Option<String>,
    pub timeout: Duration,
    pub payload: String,
}

/// What one attempt gave, to be written back.
#[derive(Debug, Clone)]
pub struct Completion {
    pub job_id: i64,
    pub attempt: i32,
    pub outcome: &'static str,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub delay_s: f64,
}

/// Delivery settings read from `api_gateway.webhook_settings` on every cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub allow_private: bool,
    /// Seconds before retry 1, 2, ...: the table's schedule or the core's default.
    pub schedule: Vec<u64>,
}

impl Settings {
    pub fn max_attempts(&self) -> i32 {
        i32::try_from(self.schedule.len() + 1).unwrap_or(i32::MAX)
    }
}

struct Shared {
    in_flight: Mutex<HashMap<i32, usize>>,
    wake: Notify,
}

/// Run the worker until `shutdown` completes, then let in-flight deliveries finish (at most
/// `shutdown_grace`) and write their results. Errors only for a configuration that cannot
/// work (bad listen URL, no extension); database outages are retried.
pub async fn run(
    pool: Pool,
    cfg: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    let per_endpoint = cfg.per_endpoint.max(1);
    // Fail fast on a database without the webhook functions.
    let mut settings = store::settings(&pool)
        .await
        .map_err(|e| format!("the database has no usable api_gateway webhooks: {e}"))?;
    let shared = Arc::new(Shared {
        in_flight: Mutex::new(HashMap::new()),
        wake: Notify::new(),
    });
    let listener = cfg
        .listen_url
        .clone()
        .map(|url| tokio::spawn(store::listen(url, shared_waker(&shared))));
    let (tx, rx) = mpsc::unbounded_channel::<Completion>();
    let recorder = tokio::spawn(store::record(pool.clone(), rx, cfg.record_batch.max(1)));
    let mut client = deliver::client(settings.allow_private, per_endpoint)?;
    tracing::info!(
        "webhook worker {} started ({} in flight per endpoint, polls every {} ms, {})",
        cfg.worker_id,
        per_endpoint,
        cfg.poll_interval
            .min(cfg.sweep_interval)
            .max(MIN_POLL)
            .as_millis(),
        if cfg.listen_url.is_some() {
            "LISTEN on"
        } else {
            "no LISTEN"
        }
    );
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let mut db_backoff = Duration::from_millis(200);
    let mut settings_read = tokio::time::Instant::now();
    let poll = cfg.poll_interval.min(cfg.sweep_interval).max(MIN_POLL);
    'outer: loop {
        // Reap finished delivery tasks (their results are already on the channel).
        while tasks.try_join_next().is_some() {}
        if settings_read.elapsed() >= SETTINGS_EVERY {
            settings_read = tokio::time::Instant::now();
            match store::settings(&pool).await {
                Ok(s) => {
                    if s.allow_private != settings.allow_private {
                        client = deliver::client(s.allow_private, per_endpoint)?;
                    }
                    settings = s;
                }
                Err(e) => tracing::warn!("webhook worker: cannot read settings: {e}"),
            }
        }
        let claimed = match claim_and_spawn(
            &pool,
            &cfg,
            per_endpoint,
            &shared,
            &client,
            &settings,
            &tx,
            &mut tasks,
        )
        .await
        {
            Ok(n) => {
                db_backoff = Duration::from_millis(200);
                n
            }
            Err(e) => {
                tracing::warn!("webhook worker: claim failed: {e}");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(db_backoff) => {}
                }
                db_backoff = (db_backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if claimed > 0 {
            // More may be due: claim again at once (capacity permitting).
            if tokio::time::timeout(Duration::ZERO, &mut shutdown)
                .await
                .is_ok()
            {
                break;
            }
            continue;
        }
        // Nothing claimable now. Capture does not NOTIFY (that would serialise the writers'
        // commits), so look every `poll` whether a job is due (one cheap read-only query) and
        // claim when one is, when a delivery ends (a slot is free) or when a notification
        // arrives (a webhook was saved, a job replayed).
        loop {
            tokio::select! {
                _ = &mut shutdown => break 'outer,
                _ = shared.wake.notified() => break,
                _ = tokio::time::sleep(poll) => {}
            }
            if settings_read.elapsed() >= SETTINGS_EVERY {
                break;
            }
            match store::next_due_in(&pool).await {
                Ok(Some(secs)) if secs <= 0.0 => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("webhook worker: cannot read the next due time: {e}");
                    tokio::select! {
                        _ = &mut shutdown => break 'outer,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
    tracing::info!(
        "webhook worker {}: stopping, {} deliveries in flight",
        cfg.worker_id,
        tasks.len()
    );
    let _ = tokio::time::timeout(cfg.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    drop(tx);
    // The recorder ends once every sender is gone and the last batch is written.
    let _ = tokio::time::timeout(Duration::from_secs(10), recorder).await;
    if let Some(l) = listener {
        l.abort();
    }
    Ok(())
}

/// Claim what the free capacity allows and start one task per job. Returns how many.
#[allow(clippy::too_many_arguments)]
async fn claim_and_spawn(
    pool: &Pool,
    cfg: &WorkerConfig,
    per_endpoint: usize,
    shared: &Arc<Shared>,
    client: &reqwest::Client,
    settings: &Settings,
    tx: &mpsc::UnboundedSender<Completion>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<usize, String> {
    let busy: Vec<(i32, i32)> = {
        let map = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(w, n)| (*w, per_endpoint.saturating_sub(*n) as i32))
            .collect()
    };
    let claimed = store::claim(pool, &cfg.worker_id, per_endpoint as i32, &busy).await?;
    let n = claimed.len();
    for job in claimed {
        {
            let mut map = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            *map.entry(job.webhook_id).or_insert(0) += 1;
        }
        let client = client.clone();
        let settings = settings.clone();
        let tx = tx.clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let webhook_id = job.webhook_id;
            let completion = deliver::deliver(&client, &settings, job).await;
            let _ = tx.send(completion);
            {
                let mut map = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = map.get_mut(&webhook_id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        map.remove(&webhook_id);
                    }
                }
            }
            shared.wake.notify_one();
        });
    }
    Ok(n)
}

fn shared_waker(shared: &Arc<Shared>) -> impl Fn() + Send + Sync + 'static {
    let shared = shared.clone();
    move || shared.wake.notify_one()
}
