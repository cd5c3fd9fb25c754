//! Observability of the front (issue 7): the traffic log, `/metrics`, the live stream behind the
//! dashboard and the maintenance schedule.
//!
//! * [`capture`]: a middleware that measures every request and, after the response, puts one
//!   log record on a bounded queue (never waiting: a full queue drops and counts);
//! * [`writer`]: one task that drains the queue in batches (every `--log-batch-ms` or
//!   `--log-batch-rows`), each batch ONE `SELECT api_gateway.log_requests($1)` call, and writes
//!   everything still queued at shutdown;
//! * [`redact`]: what never reaches the log (credentials, secrets, passwords, tokens);
//! * [`metrics`]: the Prometheus registry;
//! * [`live`]: one LISTEN connection per front on `api_gateway_log`, fanned out to the
//!   dashboards' Server-Sent Events streams through a broadcast channel;
//! * [`maintenance`]: `api_gateway.ensure_log_partitions` at start and
//!   `api_gateway.run_maintenance('all')` on a schedule.
pub mod capture;
pub mod live;
pub mod maintenance;
pub mod metrics;
pub mod redact;
pub mod writer;

use crate::config::ServeArgs;
use serde_json::Value;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// `settings.log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Requests answered with a status >= 400 only, without bodies.
    Errors = 0,
    /// Every request, without bodies.
    Metadata = 1,
    /// Every request, with its request and response bodies (UTF-8, cut, redacted).
    Payloads = 2,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.trim() {
            "errors" => Some(LogLevel::Errors),
            "metadata" => Some(LogLevel::Metadata),
            "payloads" => Some(LogLevel::Payloads),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Errors => "errors",
            LogLevel::Metadata => "metadata",
            LogLevel::Payloads => "payloads",
        }
    }

    /// For the front's own log lines.
    pub fn describe(self) -> &'static str {
        match self {
            LogLevel::Errors => "failed requests only",
            LogLevel::Metadata => "every request, no bodies",
            LogLevel::Payloads => "every request with its bodies",
        }
    }

    fn from_u8(v: u8) -> LogLevel {
        match v {
            1 => LogLevel::Metadata,
            2 => LogLevel::Payloads,
            _ => LogLevel::Errors,
        }
    }
}

/// The observability options of `serve`.
#[derive(Debug, Clone)]
pub struct Options {
    pub level_override: Option<LogLevel>,
    pub level_refresh: Duration,
    pub batch_rows: usize,
    pub batch_wait: Duration,
    pub queue: usize,
    pub body_bytes: usize,
    pub maintenance_interval: Option<Duration>,
    pub metrics_public: bool,
    pub live_url: String,
}

impl Options {
    pub fn from_args(args: &ServeArgs) -> Options {
        Options {
            level_override: args.log_level.as_deref().and_then(LogLevel::parse),
            level_refresh: Duration::from_secs(args.log_level_refresh_s.max(1)),
            batch_rows: args.log_batch_rows.clamp(1, 10_000),
            batch_wait: Duration::from_millis(args.log_batch_ms.max(1)),
            queue: args.log_queue.max(1),
            body_bytes: args.log_body_bytes.min(65536),
            maintenance_interval: (args.maintenance_interval_s > 0)
                .then(|| Duration::from_secs(args.maintenance_interval_s)),
            metrics_public: args.metrics_public,
            live_url: args
                .live_database_url
                .clone()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| args.database_url.clone()),
        }
    }
}

/// Shared by the middleware, the routes and the background tasks of one front.
pub struct Obs {
    pub options: Options,
    level: AtomicU8,
    queue: mpsc::Sender<Value>,
    receiver: Mutex<Option<mpsc::Receiver<Value>>>,
    pub metrics: metrics::Metrics,
    pub live: live::Hub,
    stop_tx: watch::Sender<bool>,
    drain_tx: watch::Sender<bool>,
}

impl Obs {
    pub fn new(options: Options) -> Obs {
        let (queue, receiver) = mpsc::channel(options.queue);
        let (stop_tx, _) = watch::channel(false);
        let (drain_tx, _) = watch::channel(false);
        Obs {
            level: AtomicU8::new(options.level_override.unwrap_or(LogLevel::Errors) as u8),
            options,
            queue,
            receiver: Mutex::new(Some(receiver)),
            metrics: metrics::Metrics::new(),
            live: live::Hub::new(),
            stop_tx,
            drain_tx,
        }
    }

    /// The level in force (the override, or the last one read from the settings).
    pub fn level(&self) -> LogLevel {
        LogLevel::from_u8(self.level.load(Ordering::Relaxed))
    }

    pub fn set_level(&self, level: LogLevel) {
        if self.options.level_override.is_none() {
            self.level.store(level as u8, Ordering::Relaxed);
        }
    }

    /// Queue one log record without waiting: false (and counted) when the queue is full.
    pub fn enqueue(&self, record: Value) -> bool {
        match self.queue.try_send(record) {
            Ok(()) => {
                self.metrics.log_queued.inc();
                true
            }
            Err(_) => {
                self.metrics.log_dropped.inc();
                false
            }
        }
    }

    /// Records waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// The receiving end of the queue, for the one writer task.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Value>> {
        self.receiver.lock().ok()?.take()
    }

    /// Becomes true when shutdown is requested: live streams end, the LISTEN connection, the
    /// maintenance schedule and the level refresh stop (requests in flight still finish and
    /// are still logged).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    pub fn begin_shutdown(&self) {
        self.stop_tx.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop_tx.borrow()
    }

    /// Becomes true once the server has stopped serving: the writer closes the queue and
    /// writes everything in it.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.drain_tx.subscribe()
    }

    pub fn begin_drain(&self) {
        self.drain_tx.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.drain_tx.borrow()
    }
}

/// What a request's handlers tell the traffic log about it, through a task-local slot set by
/// the capture middleware (outside a request, the notes go nowhere).
#[derive(Debug, Default, Clone)]
pub struct Note {
    /// The gate's answer.
    pub gate: Option<GateNote>,
    /// The OAuth2 client that asked for a token (the token route has no gate call).
    pub client_id: Option<String>,
    /// For 5xx: what failed underneath (database error with its SQLSTATE, detail, context).
    pub chain: Option<String>,
}

/// The part of an `authenticate` row the log and the metrics keep.
#[derive(Debug, Clone)]
pub struct GateNote {
    pub status: i32,
    pub error: Option<String>,
    pub uid: Option<i32>,
    pub client_id: Option<String>,
}

tokio::task_local! {
    pub(crate) static NOTE: Arc<Mutex<Note>>;
}

fn note(f: impl FnOnce(&mut Note)) {
    let _ = NOTE.try_with(|n| {
        if let Ok(mut n) = n.lock() {
            f(&mut n)
        }
    });
}

/// Called for every `authenticate` row.
pub fn note_gate(status: i32, error: Option<&str>, uid: Option<i32>, client_id: Option<&str>) {
    note(|n| {
        n.gate = Some(GateNote {
            status,
            error: error.map(str::to_string),
            uid,
            client_id: client_id.map(str::to_string),
        })
    });
}

/// The client id of a token request.
pub fn note_client(client_id: &str) {
    note(|n| n.client_id = Some(client_id.to_string()));
}

/// The error chain of a server error (the first one noted wins: it is the closest to the cause).
pub fn note_error_chain(chain: String) {
    note(|n| {
        if n.chain.is_none() {
            n.chain = Some(chain)
        }
    });
}

/// The background tasks of one front.
pub struct Tasks {
    obs: Arc<Obs>,
    writer: Option<tokio::task::JoinHandle<u64>>,
    others: Vec<tokio::task::JoinHandle<()>>,
}

/// Before serving: read the log level, make sure the log partitions exist, then start the
/// writer, the level refresh, the maintenance schedule and the live listener.
pub async fn start(state: &crate::AppState) -> Tasks {
    let obs = state.obs.clone();
    let pool = state.pool.clone();
    if obs.options.level_override.is_none() {
        match writer::read_level(&pool).await {
            Ok(level) => obs.set_level(level),
            Err(e) => {
                tracing::warn!("cannot read settings.log_level (logging failed requests only): {e}")
            }
        }
    }
    let timeout = state.config.statement_timeout;
    maintenance::ensure_partitions(&pool, timeout).await;
    let writer = obs
        .take_receiver()
        .map(|rx| tokio::spawn(writer::run(obs.clone(), pool.clone(), rx)));
    let others = vec![
        tokio::spawn(writer::level_loop(obs.clone(), pool.clone())),
        tokio::spawn(maintenance::run(obs.clone(), pool.clone(), timeout)),
        tokio::spawn(live::run(obs.clone())),
    ];
    tracing::info!(
        "traffic log: {}{}; maintenance {}",
        obs.level().describe(),
        if obs.options.level_override.is_some() {
            " (--log-level)"
        } else {
            " (settings)"
        },
        match obs.options.maintenance_interval {
            Some(d) => format!("every {}s", d.as_secs()),
            None => "off".to_string(),
        }
    );
    Tasks {
        obs,
        writer,
        others,
    }
}

impl Tasks {
    /// After the server stopped serving: stop the tasks and write every queued log record
    /// (waiting at most 15 s for the database).
    pub async fn finish(mut self) {
        self.obs.begin_shutdown();
        self.obs.begin_drain();
        if let Some(w) = self.writer.take() {
            match tokio::time::timeout(Duration::from_secs(15), w).await {
                Ok(Ok(n)) => tracing::debug!("traffic log flushed ({n} rows written in all)"),
                Ok(Err(e)) => tracing::error!("traffic log writer failed: {e}"),
                Err(_) => tracing::error!(
                    "traffic log: the database did not take the last records within 15 s; {} lost",
                    self.obs.queue_len()
                ),
            }
        }
        for t in self.others.drain(..) {
            t.abort();
        }
    }
}
