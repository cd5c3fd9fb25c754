//! The Prometheus registry of one front, rendered at `GET /metrics` in the text exposition format
//! (version 0.0.4). Counters are this process's; the database gauges (webhook queue, last
//! maintenance runs) are read at scrape time.
use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::BTreeMap;
use std::time::Duration;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub gate: IntCounterVec,
    pub log_queued: IntCounter,
    pub log_dropped: IntCounter,
    pub log_written: IntCounter,
    pub log_batches: IntCounter,
    pub log_write_errors: IntCounter,
    pub log_lost: IntCounter,
    pub log_queue_length: IntGauge,
    pub log_level: IntGaugeVec,
    pub pool: IntGaugeVec,
    pub pipelined: IntGaugeVec,
    pub maintenance_runs: IntCounterVec,
    pub live_clients: IntGauge,
    pub live_listening: IntGauge,
}

fn reg<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let counter =
            |name: &str, help: &str| reg(&r, IntCounter::new(name, help).expect("valid metric"));
        let info = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "api_gateway_front_info",
                    "Version of this api-gateway front (always 1).",
                ),
                &["version"],
            )
            .expect("valid metric"),
        );
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Metrics {
            requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "api_gateway_http_requests_total",
                        "HTTP requests answered, by route (the route template, `unmatched` for 404s outside any route), method and status.",
                    ),
                    &["route", "method", "status"],
                )
                .expect("valid metric"),
            ),
            latency: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "api_gateway_http_request_duration_seconds",
                        "Time from the request to its response headers, by route.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ]),
                    &["route"],
                )
                .expect("valid metric"),
            ),
            gate: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "api_gateway_gate_decisions_total",
                        "Answers of api_gateway.authenticate, by status (200 = pass) and error (none on a pass).",
                    ),
                    &["status", "error"],
                )
                .expect("valid metric"),
            ),
            log_queued: counter("api_gateway_log_records_queued_total", "Traffic log records put on the queue."),
            log_dropped: counter(
                "api_gateway_log_queue_dropped_total",
                "Traffic log records dropped because the queue was full (or closed at shutdown); requests never wait for the log.",
            ),
            log_written: counter("api_gateway_log_rows_written_total", "Traffic log rows written by api_gateway.log_requests."),
            log_batches: counter("api_gateway_log_batches_total", "api_gateway.log_requests calls (one per batch)."),
            log_write_errors: counter("api_gateway_log_write_errors_total", "Failed attempts to write a traffic log batch (retried twice)."),
            log_lost: counter("api_gateway_log_rows_lost_total", "Traffic log rows lost after three failed attempts."),
            log_queue_length: reg(&r, IntGauge::new("api_gateway_log_queue_length", "Traffic log records waiting in the queue.").expect("valid metric")),
            log_level: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("api_gateway_log_level", "Traffic log level in force (1 for the current one)."),
                    &["level"],
                )
                .expect("valid metric"),
            ),
            pool: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "api_gateway_pool_connections",
                        "PostgreSQL pool: max (configured size), size (open connections), available (idle), waiting (requests waiting for one).",
                    ),
                    &["state"],
                )
                .expect("valid metric"),
            ),
            pipelined: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "api_gateway_pipelined_connections",
                        "Connections shared by concurrent requests (--pipelined-connections): max (configured), open, in_flight (statements sent and not yet answered).",
                    ),
                    &["state"],
                )
                .expect("valid metric"),
            ),
            maintenance_runs: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "api_gateway_maintenance_runs_total",
                        "Maintenance jobs run by this front, by job and outcome (ran, skipped: another front held the lock, error).",
                    ),
                    &["job", "outcome"],
                )
                .expect("valid metric"),
            ),
            live_clients: reg(&r, IntGauge::new("api_gateway_live_streams", "Dashboard live streams (Server-Sent Events) open on this front.").expect("valid metric")),
            live_listening: reg(&r, IntGauge::new("api_gateway_live_listening", "1 while this front's LISTEN api_gateway_log connection is up.").expect("valid metric")),
            registry: r,
        }
    }

    pub fn observe_request(
        &self,
        route: Option<&str>,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let route = route.unwrap_or("unmatched");
        // Methods outside the usual set are folded, so that a client cannot grow the label set.
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_gate(&self, status: i32, error: Option<&str>) {
        let error = match error {
            None | Some("") => "none",
            Some(e) if e.len() <= 40 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => e,
            Some(_) => "other",
        };
        self.gate
            .with_label_values(&[&status.to_string(), error])
            .inc();
    }

    /// The exposition text: this registry, plus the gauges read from the database.
    pub fn render(&self, db: &DbGauges) -> String {
        let mut families = self.registry.gather();
        let extra = Registry::new();
        let up = reg(
            &extra,
            IntGauge::new(
                "api_gateway_database_up",
                "1 when the scrape could read the database gauges.",
            )
            .expect("valid metric"),
        );
        up.set(i64::from(db.up));
        if let Some(states) = &db.webhook_jobs {
            let g = reg(
                &extra,
                IntGaugeVec::new(
                    Opts::new("api_gateway_webhook_jobs", "Webhook jobs in api_gateway.webhook_job, by state (pending, failed = waiting for a retry, delivered, dead)."),
                    &["state"],
                )
                .expect("valid metric"),
            );
            for s in ["pending", "failed", "delivered", "dead"] {
                g.with_label_values(&[s]).set(0);
            }
            for (state, n) in states {
                g.with_label_values(&[state]).set(*n);
            }
        }
        if !db.maintenance.is_empty() {
            let last = reg(
                &extra,
                GaugeVec::new(
                    Opts::new("api_gateway_maintenance_last_run_timestamp_seconds", "When each maintenance job last ran (by any front or pg_cron), from api_gateway.maintenance_run."),
                    &["job"],
                )
                .expect("valid metric"),
            );
            let runs = reg(
                &extra,
                GaugeVec::new(
                    Opts::new("api_gateway_maintenance_recorded_runs", "Runs of each maintenance job recorded in api_gateway.maintenance_run (all fronts)."),
                    &["job"],
                )
                .expect("valid metric"),
            );
            for (job, (at, n)) in &db.maintenance {
                last.with_label_values(&[job]).set(*at);
                runs.with_label_values(&[job]).set(*n);
            }
        }
        families.extend(extra.gather());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!("metrics encoding: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// What a scrape reads from the database.
#[derive(Debug, Default)]
pub struct DbGauges {
    pub up: bool,
    /// None when the webhook tables are not installed.
    pub webhook_jobs: Option<BTreeMap<String, i64>>,
    /// job -> (last run as Unix seconds, runs)
    pub maintenance: BTreeMap<String, (f64, f64)>,
}
