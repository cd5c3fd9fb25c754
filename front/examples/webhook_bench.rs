//! Delivery benchmark for bench/webhooks.sh: a local receiver (axum, 204 at once) and the
//! delivery worker in one process, against a database that has the api_gateway extension and
//! Odoo's res_partner (the mini fixture).
//!
//! * `drain`: N events are captured with the worker stopped, then the worker starts; reports
//!   events/s until the receiver has all of them (and the outbox says delivered).
//! * `latency`: the worker runs; single-row INSERTs are committed at a steady rate; reports the
//!   median, p95 and max time from COMMIT returning to the receiver getting the event.
//! * `serve`: receiver and worker until SIGTERM (for pgbench runs with deliveries going on);
//!   the webhook URL is printed on stdout.
//!
//! With BENCH_ENDPOINTS = E > 1 there are E webhooks on res.partner, each with its own URL on
//! the receiver, so every committed row is E events: `drain` inserts BENCH_EVENTS / E rows and
//! `latency` commits at BENCH_RATE / E rows per second, keeping the events per second the same
//! whatever E is (how delivery cost grows with endpoints, not with load). Latency is per event.
//!
//! Environment: DATABASE_URL, BENCH_EVENTS (20000), BENCH_RATE (200 events/s), BENCH_SECONDS
//! (10), BENCH_ENDPOINTS (1), WEBHOOK_PER_ENDPOINT (32), BENCH_WEBHOOK (name, default "bench").
//! Output: one JSON object per line on stdout.
use api_gateway_front::webhooks::{WorkerConfig, run};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Seen {
    /// (endpoint number, record id) of create events -> first arrival
    arrivals: Arc<Mutex<HashMap<(usize, i64), Instant>>>,
    count: Arc<std::sync::atomic::AtomicUsize>,
}

async fn receive(
    State(s): State<Seen>,
    Path(endpoint): Path<usize>,
    _h: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let at = Instant::now();
    s.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(id) = v["record"]["id"].as_i64()
    {
        s.arrivals
            .lock()
            .unwrap()
            .entry((endpoint, id))
            .or_insert(at);
    }
    axum::http::StatusCode::NO_CONTENT
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pool(url: &str) -> deadpool_postgres::Pool {
    let pg: tokio_postgres::Config = url.parse().expect("DATABASE_URL");
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(6)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .unwrap()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    c
}

struct Worker {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), String>>,
}

fn start_worker(url: &str) -> Worker {
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = WorkerConfig {
        listen_url: Some(url.to_string()),
        per_endpoint: env_or("WEBHOOK_PER_ENDPOINT", 32usize),
        sweep_interval: Duration::from_secs(1),
        ..WorkerConfig::default()
    };
    let handle = tokio::spawn(run(pool(url), cfg, async move {
        let _ = rx.await;
    }));
    Worker { stop, handle }
}

async fn stop_worker(w: Worker) {
    let _ = w.stop.send(());
    let _ = w.handle.await;
}

/// The receiver; endpoint number `i` is `<base>/<i>`.
async fn receiver() -> (Seen, String) {
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook/{endpoint}", axum::routing::post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (seen, base)
}

/// `endpoints` webhooks on res.partner creations, named `<name>` (the first) and `<name>-<i>`,
/// each POSTing to its own URL of the receiver.
async fn add_webhooks(
    c: &tokio_postgres::Client,
    name: &str,
    base: &str,
    endpoints: usize,
) -> Vec<i32> {
    let pattern = format!("{name}-%");
    c.execute(
        "DELETE FROM api_gateway.webhook WHERE name = $1 OR name LIKE $2",
        &[&name, &pattern],
    )
    .await
    .unwrap();
    c.batch_execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = true, ddl_lock_timeout = '30s'")
        .await
        .unwrap();
    let mut ids = vec![];
    for i in 0..endpoints {
        let hook_name = if i == 0 {
            name.to_string()
        } else {
            format!("{name}-{i}")
        };
        let url = format!("{base}/{i}");
        ids.push(c.query_one(
            "INSERT INTO api_gateway.webhook (name, model, url, on_write, on_unlink) VALUES ($1, 'res.partner', $2, false, false) RETURNING id",
            &[&hook_name, &url],
        )
        .await
        .unwrap()
        .get(0));
    }
    ids
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "drain".into());
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let name: String = env_or("BENCH_WEBHOOK", "bench".to_string());
    let endpoints: usize = env_or("BENCH_ENDPOINTS", 1usize).max(1);
    let c = connect(&url).await;
    let (seen, base) = receiver().await;
    let wids = add_webhooks(&c, &name, &base, endpoints).await;
    match mode.as_str() {
        "serve" => {
            println!("{base}/0");
            let w = start_worker(&url);
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
            stop_worker(w).await;
            eprintln!(
                "{{\"served\": {}}}",
                seen.count.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        "drain" => {
            let wanted: i64 = env_or("BENCH_EVENTS", 20_000i64);
            let rows = (wanted / endpoints as i64).max(1);
            let n = rows * endpoints as i64;
            c.execute(
                "INSERT INTO res_partner (name, type, active) SELECT 'whbench ' || g, 'contact', true FROM generate_series(1, $1::int8) g",
                &[&rows],
            )
            .await
            .unwrap();
            let t0 = Instant::now();
            let w = start_worker(&url);
            while (seen.count.load(std::sync::atomic::Ordering::Relaxed) as i64) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if t0.elapsed() > Duration::from_secs(600) {
                    panic!("drain did not finish");
                }
            }
            let received = t0.elapsed();
            // ... and recorded as delivered.
            loop {
                let left: i64 = c
                    .query_one(
                        "SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = ANY($1) AND state <> 'delivered'",
                        &[&wids],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if left == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let recorded = t0.elapsed();
            stop_worker(w).await;
            println!(
                "{{\"mode\": \"drain\", \"endpoints\": {endpoints}, \"events\": {n}, \"received_s\": {:.3}, \"recorded_s\": {:.3}, \"events_per_s\": {:.0}, \"requests\": {}}}",
                received.as_secs_f64(),
                recorded.as_secs_f64(),
                n as f64 / recorded.as_secs_f64(),
                seen.count.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        "latency" => {
            let rate: f64 = env_or("BENCH_RATE", 200.0f64);
            let secs: f64 = env_or("BENCH_SECONDS", 10.0f64);
            // rows per second, so that the events per second stay at `rate`
            let row_rate = rate / endpoints as f64;
            let w = start_worker(&url);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let writer = connect(&url).await;
            let stmt = writer
                .prepare("INSERT INTO res_partner (name, type, active) VALUES ('whbench latency', 'contact', true) RETURNING id")
                .await
                .unwrap();
            let mut committed: Vec<(i64, Instant)> = vec![];
            let t0 = Instant::now();
            let period = Duration::from_secs_f64(1.0 / row_rate);
            let mut next = tokio::time::Instant::now();
            while t0.elapsed().as_secs_f64() < secs {
                let id: i32 = writer.query_one(&stmt, &[]).await.unwrap().get(0);
                committed.push((i64::from(id), Instant::now()));
                next += period;
                tokio::time::sleep_until(next).await;
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let done = {
                    let a = seen.arrivals.lock().unwrap();
                    committed
                        .iter()
                        .all(|(id, _)| (0..endpoints).all(|e| a.contains_key(&(e, *id))))
                };
                if done || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stop_worker(w).await;
            let guard = seen.arrivals.lock().unwrap();
            let a: &HashMap<(usize, i64), Instant> = &guard;
            let mut lat: Vec<f64> = committed
                .iter()
                .flat_map(|(id, at)| {
                    (0..endpoints).filter_map(move |e| {
                        a.get(&(e, *id))
                            .map(|r| r.saturating_duration_since(*at).as_secs_f64() * 1000.0)
                    })
                })
                .collect();
            lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
            println!(
                "{{\"mode\": \"latency\", \"endpoints\": {endpoints}, \"rate\": {rate}, \"events\": {}, \"received\": {}, \"median_ms\": {:.2}, \"p95_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}}}",
                committed.len() * endpoints,
                lat.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.95),
                percentile(&lat, 0.99),
                lat.last().copied().unwrap_or(f64::NAN)
            );
        }
        other => panic!("unknown mode {other}: drain, latency or serve"),
    }
    c.execute(
        "DELETE FROM api_gateway.webhook WHERE id = ANY($1)",
        &[&wids],
    )
    .await
    .unwrap();
    c.execute("DELETE FROM res_partner WHERE name LIKE 'whbench %'", &[])
        .await
        .unwrap();
}
