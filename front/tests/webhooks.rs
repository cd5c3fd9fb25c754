//! The webhook worker end to end: changes made with SQL in the fixture database (DATABASE_URL,
//! default agw_wh_test) are captured by the extension's triggers, delivered by the worker to a
//! real receiver on 127.0.0.1, and the receiver checks every Standard Webhooks signature with
//! the core's `verify`. The crash test runs the worker in a child process (this test binary,
//! re-executed) and kills it with SIGKILL.
//!
//! The tests share the database's webhook settings and the worker claims the jobs of every
//! active webhook, so they run one at a time (a lock) and need a database where no other
//! webhook is active. Each test removes what it created.
use api_gateway_core::webhook;
use api_gateway_front::webhooks::{self, WorkerConfig};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[path = "support/least_privilege.rs"]
mod least_privilege;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgresql:///agw_wh_test?host=/var/run/postgresql".into())
}

/// A superuser connection for set-up and assertions (the worker runs as the least-privileged
/// role, made here on first use).
async fn db() -> tokio_postgres::Client {
    least_privilege::capture_log();
    least_privilege::ensure_role(&database_url()).await;
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to DATABASE_URL");
    tokio::spawn(conn);
    client
}

/// The worker's pool, as the role given only grant_worker (and grant_front).
fn pool() -> deadpool_postgres::Pool {
    let pg: tokio_postgres::Config = least_privilege::front_url(&database_url()).parse().unwrap();
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(4)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .unwrap()
}

fn worker_config(per_endpoint: usize) -> WorkerConfig {
    WorkerConfig {
        listen_url: Some(least_privilege::front_url(&database_url())),
        worker_id: format!("test:{}", std::process::id()),
        per_endpoint,
        sweep_interval: Duration::from_secs(1),
        poll_interval: Duration::from_millis(25),
        record_batch: 200,
        shutdown_grace: Duration::from_secs(5),
    }
}

/// The worker running in this process until dropped.
struct Worker {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Worker {
    fn start(cfg: WorkerConfig) -> Worker {
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(webhooks::run(pool(), cfg, async move {
            let _ = rx.await;
        }));
        Worker {
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let r = tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("worker stops");
            r.unwrap().unwrap();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
        if !std::thread::panicking() {
            least_privilege::assert_no_permission_denied();
        }
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    event_id: String,
    timestamp: i64,
    signature: String,
    body: Value,
    headers: HeaderMap,
    at: Instant,
    valid: bool,
}

/// What to answer: (status, Retry-After, delay before answering), given the request and how
/// many times this event id was received before.
type Behaviour = dyn Fn(&Hit, usize) -> (u16, Option<String>, Duration) + Send + Sync;

#[derive(Clone)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    secret: Arc<Mutex<String>>,
    behaviour: Arc<Behaviour>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    addr: SocketAddr,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    r.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let event_id = h("webhook-id");
    let timestamp: i64 = h("webhook-timestamp").parse().unwrap_or(0);
    let signature = h("webhook-signature");
    let secret = r.secret.lock().unwrap().clone();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let valid = webhook::verify(&secret, &event_id, timestamp, &body, &signature)
        && webhook::timestamp_fresh(unix_now, timestamp);
    let hit = Hit {
        event_id: event_id.clone(),
        timestamp,
        signature,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers: headers.clone(),
        at: Instant::now(),
        valid,
    };
    let seen = {
        let mut hits = r.hits.lock().unwrap();
        let seen = hits.iter().filter(|x| x.event_id == event_id).count();
        hits.push(hit.clone());
        seen
    };
    let (status, retry_after, delay) = (r.behaviour)(&hit, seen);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    r.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut resp = (StatusCode::from_u16(status).unwrap(), "ok").into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

impl Receiver {
    async fn start(
        behaviour: impl Fn(&Hit, usize) -> (u16, Option<String>, Duration) + Send + Sync + 'static,
    ) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            hits: Arc::new(Mutex::new(vec![])),
            secret: Arc::new(Mutex::new(String::new())),
            behaviour: Arc::new(behaviour),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::new(AtomicUsize::new(0)),
            addr: listener.local_addr().unwrap(),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    fn ok() -> impl Fn(&Hit, usize) -> (u16, Option<String>, Duration) + Send + Sync + 'static {
        |_, _| (200, None, Duration::ZERO)
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Wait until `pred(hits)` holds (or panic after `secs`).
    async fn wait_for(&self, secs: u64, what: &str, pred: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let hits = self.hits();
            if pred(&hits) {
                return hits;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; got {} hits", hits.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Settings for the tests: private targets allowed (the receiver is on 127.0.0.1), the
/// default schedule, a short lease margin. Returns a guard-free client.
async fn settings(c: &tokio_postgres::Client, schedule: Option<&[i32]>) {
    let schedule: Option<Vec<i32>> = schedule.map(<[i32]>::to_vec);
    c.execute(
        "UPDATE api_gateway.webhook_settings SET allow_private_targets = true, retry_schedule_s = $1, \
           lease_margin = '1 second', ddl_lock_timeout = '10 seconds'",
        &[&schedule],
    )
    .await
    .unwrap();
}

/// Rows and webhooks an interrupted run of these tests may have left.
async fn remove_leftovers(c: &tokio_postgres::Client) {
    c.batch_execute(
        "DELETE FROM api_gateway.webhook WHERE name LIKE 'wh-test-%'; \
         DELETE FROM res_partner_category WHERE name->>'en_US' LIKE 'agw-wh-test-%'",
    )
    .await
    .unwrap();
}

/// The settings as the extension installs them (each test ends with this).
async fn reset_settings(c: &tokio_postgres::Client) {
    c.batch_execute(
        "UPDATE api_gateway.webhook_settings SET allow_private_targets = false, retry_schedule_s = NULL, \
           lease_margin = '30 seconds', ddl_lock_timeout = '2 seconds'",
    )
    .await
    .unwrap();
}

/// A webhook row for the receiver; returns (id, secret).
async fn add_webhook(
    c: &tokio_postgres::Client,
    name: &str,
    model: &str,
    url: &str,
    extra: Value,
) -> (i32, String) {
    // Leftovers of an interrupted run.
    c.execute("DELETE FROM api_gateway.webhook WHERE name = $1", &[&name])
        .await
        .unwrap();
    let row = c
        .query_one(
            "INSERT INTO api_gateway.webhook (name, model, url, fields, domain, headers, timeout) \
             SELECT $1, $2, $3, ARRAY(SELECT jsonb_array_elements_text(e->'fields')), e->>'domain', \
                    coalesce(e->'headers', '{}'), coalesce((e->>'timeout')::interval, '10 seconds') \
               FROM (SELECT $4::jsonb AS e) x RETURNING id",
            &[&name, &model, &url, &extra],
        )
        .await
        .unwrap();
    let id: i32 = row.get(0);
    let secret: String = c
        .query_one("SELECT api_gateway.webhook_secret($1)", &[&id])
        .await
        .unwrap()
        .get(0);
    (id, secret)
}

async fn drop_webhook(c: &tokio_postgres::Client, id: i32) {
    c.execute("DELETE FROM api_gateway.webhook WHERE id = $1", &[&id])
        .await
        .unwrap();
}

async fn jobs(
    c: &tokio_postgres::Client,
    webhook_id: i32,
) -> Vec<(String, i32, Option<i32>, Option<String>)> {
    c.query(
        "SELECT state, attempts, last_status, last_error FROM api_gateway.webhook_job WHERE webhook_id = $1 ORDER BY id",
        &[&webhook_id],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

async fn wait_jobs(
    c: &tokio_postgres::Client,
    webhook_id: i32,
    secs: u64,
    what: &str,
    pred: impl Fn(&[(String, i32, Option<i32>, Option<String>)]) -> bool,
) -> Vec<(String, i32, Option<i32>, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let j = jobs(c, webhook_id).await;
        if pred(&j) {
            return j;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}: {j:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A name unique to this run.
fn tag(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("agw-wh-test-{prefix}-{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_write_unlink_are_delivered_signed_with_the_right_payloads() {
    let _g = SERIAL.lock().await;
    let c = db().await;
    remove_leftovers(&c).await;
    settings(&c, None).await;
    let rx = Receiver::start(Receiver::ok()).await;
    let (wid, secret) = add_webhook(
        &c,
        "wh-test-crud",
        "res.partner.category",
        &rx.url(),
        json!({"fields": ["name", "color"], "headers": {"Authorization": "Bearer t0ken", "X-Tenant": "acme"}}),
    )
    .await;
    *rx.secret.lock().unwrap() = secret.clone();
    assert!(secret.starts_with("whsec_"));
    let worker = Worker::start(worker_config(4));
    let name = tag("wh-crud");
    let id: i32 = c
        .query_one(
            "INSERT INTO res_partner_category (name, color, active) VALUES (jsonb_build_object('en_US', $1::text), 3, true) RETURNING id",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    // A write that changes a watched field fires; one that only stamps write_date does not;
    // one that changes an unwatched field does not.
    c.execute(
        "UPDATE res_partner_category SET color = 5, write_date = now() WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    c.execute(
        "UPDATE res_partner_category SET write_date = now() WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    c.execute(
        "UPDATE res_partner_category SET parent_path = 'x/' WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    // A rolled-back change produces nothing.
    c.batch_execute(&format!(
        "BEGIN; UPDATE res_partner_category SET color = 99 WHERE id = {id}; ROLLBACK"
    ))
    .await
    .unwrap();
    c.execute("DELETE FROM res_partner_category WHERE id = $1", &[&id])
        .await
        .unwrap();
    rx.wait_for(20, "3 events", |h| h.len() >= 3).await;
    // Nothing else comes (the no-op writes and the rolled-back one).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = rx.hits();
    assert_eq!(
        all.len(),
        3,
        "exactly three events: {:?}",
        all.iter().map(|h| &h.body).collect::<Vec<_>>()
    );
    // One record: its events arrive in commit order.
    let arrival: Vec<&str> = all
        .iter()
        .map(|h| h.body["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(arrival, ["create", "write", "unlink"]);
    let mut by_action: HashMap<String, Hit> = HashMap::new();
    for h in rx.hits() {
        assert!(
            h.valid,
            "signature verifies with core::webhook::verify: {h:?}"
        );
        assert!(h.signature.starts_with("v1,"));
        assert_eq!(h.headers["authorization"], "Bearer t0ken");
        assert_eq!(h.headers["x-tenant"], "acme");
        assert_eq!(h.headers["content-type"], "application/json");
        assert_eq!(h.body["event_id"], h.event_id.as_str());
        assert_eq!(h.body["model"], "res.partner.category");
        assert!(h.body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!((h.timestamp - chrono_now()).abs() < 60);
        by_action.insert(h.body["action"].as_str().unwrap().to_string(), h);
    }
    let create = &by_action["create"].body;
    assert_eq!(
        create["record"],
        json!({"id": id, "name": {"en_US": name}, "color": 3})
    );
    assert!(create.get("changed").is_none());
    let write = &by_action["write"].body;
    assert_eq!(
        write["record"],
        json!({"id": id, "name": {"en_US": name}, "color": 5})
    );
    assert_eq!(write["changed"], json!(["color"]));
    assert_eq!(write["previous"], json!({"color": 3}));
    let unlink = &by_action["unlink"].body;
    assert_eq!(unlink["record"], json!({"id": id}));
    let j = wait_jobs(&c, wid, 10, "all delivered", |j| {
        j.len() == 3 && j.iter().all(|x| x.0 == "delivered")
    })
    .await;
    assert!(j.iter().all(|x| x.1 == 1 && x.2 == Some(200)));
    worker.stop().await;
    drop_webhook(&c, wid).await;
    reset_settings(&c).await;
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_deactivates_the_webhook_and_keeps_the_job() {
    let _g = SERIAL.lock().await;
    let c = db().await;
    remove_leftovers(&c).await;
    settings(&c, None).await;
    let rx = Receiver::start(|_, _| (410, None, Duration::ZERO)).await;
    let (wid, secret) = add_webhook(
        &c,
        "wh-test-gone",
        "res.partner.category",
        &rx.url(),
        json!({}),
    )
    .await;
    *rx.secret.lock().unwrap() = secret;
    let worker = Worker::start(worker_config(4));
    let name = tag("wh-gone");
    c.execute(
        "INSERT INTO res_partner_category (name, active) VALUES (jsonb_build_object('en_US', $1::text), true)",
        &[&name],
    )
    .await
    .unwrap();
    rx.wait_for(10, "the 410", |h| !h.is_empty()).await;
    let j = wait_jobs(&c, wid, 10, "the job recorded", |j| {
        j.len() == 1 && j[0].2 == Some(410)
    })
    .await;
    assert_eq!(
        j[0].0, "failed",
        "the job waits for the webhook to be re-enabled"
    );
    let row = c
        .query_one(
            "SELECT active, disabled_reason, (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = 'res_partner_category'::regclass AND t.tgname LIKE 'api_gateway_webhook_%') FROM api_gateway.webhook WHERE id = $1",
            &[&wid],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert!(row.get::<_, String>(1).contains("410"));
    assert_eq!(
        row.get::<_, i64>(2),
        0,
        "the capture triggers are gone with the last active webhook"
    );
    // Nothing more is sent while it is inactive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.hits().len(), 1);
    worker.stop().await;
    c.execute(
        "DELETE FROM res_partner_category WHERE name->>'en_US' = $1",
        &[&name],
    )
    .await
    .unwrap();
    drop_webhook(&c, wid).await;
    reset_settings(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_schedule_retry_after_and_timeouts_then_die() {
    let _g = SERIAL.lock().await;
    let c = db().await;
    remove_leftovers(&c).await;
    // Two retries, 1 s apart (+-10 % jitter): three attempts in all.
    settings(&c, Some(&[1, 1])).await;
    let rx = Receiver::start(|hit, seen| {
        let color = hit.body["record"]["color"].as_i64().unwrap_or(0);
        match color {
            // fails twice, then succeeds on the third (last) attempt
            1 => (if seen < 2 { 500 } else { 200 }, None, Duration::ZERO),
            // asks for 2 s, then succeeds
            2 => (
                if seen < 1 { 503 } else { 200 },
                Some("2".into()),
                Duration::ZERO,
            ),
            // slower than the webhook's 300 ms timeout once, then fast
            3 => (
                200,
                None,
                if seen < 1 {
                    Duration::from_millis(1500)
                } else {
                    Duration::ZERO
                },
            ),
            // always fails: dead after the third attempt
            _ => (500, None, Duration::ZERO),
        }
    })
    .await;
    let (wid, secret) = add_webhook(
        &c,
        "wh-test-retry",
        "res.partner.category",
        &rx.url(),
        json!({"fields": ["color"], "timeout": "300 milliseconds"}),
    )
    .await;
    *rx.secret.lock().unwrap() = secret;
    c.execute(
        "UPDATE api_gateway.webhook SET on_write = false, on_unlink = false WHERE id = $1",
        &[&wid],
    )
    .await
    .unwrap();
    let worker = Worker::start(worker_config(8));
    let name = tag("wh-retry");
    c.execute(
        "INSERT INTO res_partner_category (name, color, active) \
         SELECT jsonb_build_object('en_US', $1::text || g), g, true FROM generate_series(1, 4) g",
        &[&name],
    )
    .await
    .unwrap();
    let j = wait_jobs(&c, wid, 30, "every job settled", |j| {
        j.len() == 4 && j.iter().all(|x| x.0 == "delivered" || x.0 == "dead")
    })
    .await;
    let hits = rx.hits();
    let times = |color: i64| -> Vec<Instant> {
        hits.iter()
            .filter(|h| h.body["record"]["color"] == color)
            .map(|h| h.at)
            .collect()
    };
    let gaps =
        |t: &[Instant]| -> Vec<f64> { t.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect() };
    for h in &hits {
        assert!(h.valid);
    }
    // color 1: 3 attempts, ~1 s apart, delivered
    let g1 = gaps(&times(1));
    assert_eq!(g1.len(), 2, "{g1:?}");
    for g in &g1 {
        assert!((0.85..1.8).contains(g), "backoff 1 s +-10 %: {g1:?}");
    }
    // color 2: Retry-After 2 honoured
    let g2 = gaps(&times(2));
    assert_eq!(g2.len(), 1, "{g2:?}");
    assert!((1.95..3.0).contains(&g2[0]), "Retry-After 2: {g2:?}");
    // color 3: timed out once, then delivered after the backoff
    assert_eq!(times(3).len(), 2);
    // color 4: three attempts, then dead
    assert_eq!(times(4).len(), 3);
    let states: HashSet<(String, i32)> = j.iter().map(|x| (x.0.clone(), x.1)).collect();
    assert!(states.contains(&("dead".to_string(), 3)), "{j:?}");
    let timed_out = c
        .query_one(
            "SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = $1 AND state = 'delivered' AND attempts = 2",
            &[&wid],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(
        timed_out, 2,
        "color 2 and color 3 each needed two attempts: {j:?}"
    );
    let dead_error: String = c
        .query_one(
            "SELECT last_error FROM api_gateway.webhook_job WHERE webhook_id = $1 AND state = 'dead'",
            &[&wid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(dead_error.starts_with("HTTP 500"), "{dead_error}");
    // A dead job can be replayed, with the same event id.
    let dead_id: i64 = c
        .query_one(
            "SELECT id FROM api_gateway.webhook_job WHERE webhook_id = $1 AND state = 'dead'",
            &[&wid],
        )
        .await
        .unwrap()
        .get(0);
    let before = times(4).len();
    let replayed: bool = c
        .query_one("SELECT api_gateway.replay_webhook_job($1)", &[&dead_id])
        .await
        .unwrap()
        .get(0);
    assert!(replayed);
    rx.wait_for(10, "the replay", |h| {
        h.iter().filter(|x| x.body["record"]["color"] == 4).count() > before
    })
    .await;
    let ids: HashSet<String> = rx
        .hits()
        .iter()
        .filter(|x| x.body["record"]["color"] == 4)
        .map(|x| x.event_id.clone())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "webhook-id is stable across retries and replays"
    );
    worker.stop().await;
    c.execute(
        "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE $1 || '%'",
        &[&name],
    )
    .await
    .unwrap();
    drop_webhook(&c, wid).await;
    reset_settings(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_policy_refuses_metadata_always_and_private_unless_allowed() {
    let _g = SERIAL.lock().await;
    let c = db().await;
    remove_leftovers(&c).await;
    settings(&c, Some(&[60])).await;
    let rx = Receiver::start(Receiver::ok()).await;
    let port = rx.addr.port();
    let mut ids = vec![];
    for (name, url) in [
        (
            "wh-test-ssrf-metadata",
            "http://169.254.169.254/latest/meta-data".to_string(),
        ),
        ("wh-test-ssrf-v6", "http://[fd00:ec2::254]/".to_string()),
        (
            "wh-test-ssrf-loopback",
            format!("http://127.0.0.1:{port}/hook"),
        ),
        (
            "wh-test-ssrf-localhost",
            format!("http://localhost:{port}/hook"),
        ),
    ] {
        let (id, _) = add_webhook(
            &c,
            name,
            "res.partner.category",
            &url,
            json!({"fields": ["color"]}),
        )
        .await;
        c.execute(
            "UPDATE api_gateway.webhook SET on_write = false, on_unlink = false WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
        ids.push(id);
    }
    c.execute(
        "UPDATE api_gateway.webhook_settings SET allow_private_targets = false",
        &[],
    )
    .await
    .unwrap();
    let worker = Worker::start(worker_config(2));
    let name = tag("wh-ssrf");
    c.execute(
        "INSERT INTO res_partner_category (name, active) VALUES (jsonb_build_object('en_US', $1::text), true)",
        &[&name],
    )
    .await
    .unwrap();
    for &id in &ids {
        let j = wait_jobs(&c, id, 10, "the refusal", |j| {
            j.len() == 1 && j[0].3.is_some()
        })
        .await;
        let err = j[0].3.clone().unwrap();
        assert!(err.contains("SSRF"), "{err}");
        assert_eq!(j[0].0, "failed");
    }
    assert!(
        rx.hits().is_empty(),
        "nothing reached the loopback receiver"
    );
    worker.stop().await;
    c.execute(
        "DELETE FROM res_partner_category WHERE name->>'en_US' = $1",
        &[&name],
    )
    .await
    .unwrap();
    for id in ids {
        drop_webhook(&c, id).await;
    }
    reset_settings(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_per_endpoint_are_bounded() {
    let _g = SERIAL.lock().await;
    let c = db().await;
    remove_leftovers(&c).await;
    settings(&c, None).await;
    let rx = Receiver::start(|_, _| (200, None, Duration::from_millis(50))).await;
    let (wid, secret) = add_webhook(
        &c,
        "wh-test-bound",
        "res.partner.category",
        &rx.url(),
        json!({"fields": ["color"]}),
    )
    .await;
    *rx.secret.lock().unwrap() = secret;
    let name = tag("wh-bound");
    c.execute(
        "INSERT INTO res_partner_category (name, active) SELECT jsonb_build_object('en_US', $1::text || g), true FROM generate_series(1, 60) g",
        &[&name],
    )
    .await
    .unwrap();
    let worker = Worker::start(worker_config(3));
    rx.wait_for(30, "60 events", |h| h.len() >= 60).await;
    let max = rx.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 3, "at most 3 in flight, saw {max}");
    assert!(max >= 2, "deliveries do run concurrently, saw {max}");
    worker.stop().await;
    c.execute(
        "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE $1 || '%'",
        &[&name],
    )
    .await
    .unwrap();
    drop_webhook(&c, wid).await;
    reset_settings(&c).await;
}

/// Not a test on its own: the worker process of the crash test (run with AGW_WH_CHILD=1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn child_worker() {
    if std::env::var("AGW_WH_CHILD").as_deref() != Ok("1") {
        return;
    }
    let (_tx, rx) = oneshot::channel::<()>();
    webhooks::run(pool(), worker_config(8), async move {
        let _ = rx.await;
    })
    .await
    .unwrap();
}

/// The worker process; killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct ChildWorker(std::process::Child);

impl ChildWorker {
    fn kill(&mut self) {
        let _ = self.0.kill(); // SIGKILL on Unix
        let _ = self.0.wait();
    }
}

impl Drop for ChildWorker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_child() -> ChildWorker {
    ChildWorker(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_worker",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("AGW_WH_CHILD", "1")
            .env("DATABASE_URL", database_url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the worker process"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_mid_stream_loses_nothing() {
    let _g = SERIAL.lock().await;
    let c = db().await;
    remove_leftovers(&c).await;
    settings(&c, None).await;
    // Slow enough that the kill lands mid-stream.
    let rx = Receiver::start(|_, _| (200, None, Duration::from_millis(20))).await;
    let (wid, secret) = add_webhook(
        &c,
        "wh-test-crash",
        "res.partner.category",
        &rx.url(),
        json!({"fields": ["color"], "timeout": "2 seconds"}),
    )
    .await;
    *rx.secret.lock().unwrap() = secret;
    // A lease far longer than the test (2 s timeout + 60 s margin): the second worker can
    // only get the first one's jobs at once because the first one's sessions are gone.
    c.batch_execute("UPDATE api_gateway.webhook_settings SET lease_margin = '60 seconds'")
        .await
        .unwrap();
    let name = tag("wh-crash");
    let mut first = spawn_child();
    // 600 events in 6 transactions while the worker runs.
    for batch in 0..6 {
        c.execute(
            "INSERT INTO res_partner_category (name, color, active) \
             SELECT jsonb_build_object('en_US', $1::text || g), g, true FROM generate_series($2::int, $2::int + 99) g",
            &[&name, &(batch * 100)],
        )
        .await
        .unwrap();
    }
    rx.wait_for(30, "some deliveries before the kill", |h| h.len() >= 100)
        .await;
    first.kill();
    let at_kill = rx.hits().len();
    let states: Vec<(String, i64)> = c
        .query(
            "SELECT CASE WHEN state = 'pending' AND leased_by IS NOT NULL THEN 'leased' ELSE state END, count(*) \
               FROM api_gateway.webhook_job WHERE webhook_id = $1 GROUP BY 1 ORDER BY 1",
            &[&wid],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    eprintln!("crash test: killed after {at_kill} requests; jobs then: {states:?}");
    assert!(
        at_kill < 600,
        "the kill landed mid-stream ({at_kill} delivered)"
    );
    let expected: HashSet<String> = c
        .query(
            "SELECT event_id::text FROM api_gateway.webhook_job WHERE webhook_id = $1",
            &[&wid],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(expected.len(), 600);
    let restarted = Instant::now();
    let mut second = spawn_child();
    let hits = rx
        .wait_for(40, "every event after the restart", |h| {
            let got: HashSet<&str> = h.iter().map(|x| x.event_id.as_str()).collect();
            expected.iter().all(|e| got.contains(e.as_str()))
        })
        .await;
    let took = restarted.elapsed();
    second.kill();
    eprintln!(
        "crash test: every event delivered {} ms after the second worker started (lease: 62 s)",
        took.as_millis()
    );
    // wait_for gives up at 40 s, well before the 62 s lease: the jobs were taken over because
    // the killed worker's sessions ended, not because their lease ran out.
    assert!(took < Duration::from_secs(40));
    assert!(hits.iter().all(|h| h.valid));
    let got: HashSet<String> = hits.iter().map(|h| h.event_id.clone()).collect();
    assert_eq!(got, expected, "no event missing, none invented");
    eprintln!(
        "crash test: {} requests for 600 events ({} duplicates after the SIGKILL)",
        hits.len(),
        hits.len() - 600
    );
    c.execute(
        "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE $1 || '%'",
        &[&name],
    )
    .await
    .unwrap();
    drop_webhook(&c, wid).await;
    reset_settings(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_is_delivered_in_order_under_retries_and_others_go_on() {
    let _g = SERIAL.lock().await;
    let c = db().await;
    remove_leftovers(&c).await;
    settings(&c, Some(&[1, 1])).await;
    // X's create fails once (500, retried after 1 s); everything else is accepted.
    let rx = Receiver::start(|h, seen| {
        let x_create = h.body["action"] == "create" && h.body["record"]["color"] == 7;
        if x_create && seen == 0 {
            (500, None, Duration::ZERO)
        } else {
            (200, None, Duration::ZERO)
        }
    })
    .await;
    let (wid, secret) = add_webhook(
        &c,
        "wh-test-order",
        "res.partner.category",
        &rx.url(),
        json!({"fields": ["name", "color"]}),
    )
    .await;
    *rx.secret.lock().unwrap() = secret;
    let name = tag("wh-order");
    // Queued before the worker starts: create X and Y in one transaction, then X written
    // twice in two more.
    let x: i32 = c
        .query(
            "INSERT INTO res_partner_category (name, color, active) \
             VALUES (jsonb_build_object('en_US', $1::text || 'x'), 7, true), (jsonb_build_object('en_US', $1::text || 'y'), 5, true) \
             RETURNING id",
            &[&name],
        )
        .await
        .unwrap()[0]
        .get(0);
    for color in [8, 9] {
        c.execute(
            "UPDATE res_partner_category SET color = $2 WHERE id = $1",
            &[&x, &color],
        )
        .await
        .unwrap();
    }
    let worker = Worker::start(worker_config(8));
    let hits = rx.wait_for(30, "5 requests", |h| h.len() >= 5).await;
    worker.stop().await;
    assert!(hits.iter().all(|h| h.valid));
    let seen: Vec<(String, i64, u16)> = hits
        .iter()
        .map(|h| {
            (
                h.body["action"].as_str().unwrap_or_default().to_string(),
                h.body["record"]["color"].as_i64().unwrap_or(-1),
                0,
            )
        })
        .collect();
    let x_events: Vec<(String, i64)> = hits
        .iter()
        .filter(|h| h.body["record"]["id"] == x)
        .map(|h| {
            (
                h.body["action"].as_str().unwrap_or_default().to_string(),
                h.body["record"]["color"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    // X: its create, failed then retried (same event), before its writes, in commit order.
    assert_eq!(
        x_events,
        [
            ("create".to_string(), 7),
            ("create".to_string(), 7),
            ("write".to_string(), 8),
            ("write".to_string(), 9)
        ],
        "{seen:?}"
    );
    let x_hits: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.body["record"]["id"] == x)
        .collect();
    assert_eq!(x_hits[0].event_id, x_hits[1].event_id);
    // Y is not held back by X's retry.
    let y_at = hits
        .iter()
        .position(|h| h.body["record"]["color"] == 5)
        .expect("Y delivered");
    let x_retry_at = hits
        .iter()
        .position(|h| h.event_id == x_hits[1].event_id && h.at == x_hits[1].at)
        .unwrap();
    assert!(y_at < x_retry_at, "{seen:?}");
    c.execute(
        "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE $1 || '%'",
        &[&name],
    )
    .await
    .unwrap();
    drop_webhook(&c, wid).await;
    reset_settings(&c).await;
}
