//! The webhook delivery worker on its own, configured by environment variables, for the
//! Python interop test and bench/webhooks.sh until `api-gateway worker` exists (same code:
//! `api_gateway_front::webhooks::run`).
//!
//!   DATABASE_URL=postgresql:///odoo?host=/var/run/postgresql cargo run --example webhook_worker
//!
//! Variables: DATABASE_URL (required), WEBHOOK_LISTEN_URL (default: DATABASE_URL; "off" for
//! no LISTEN), WEBHOOK_PER_ENDPOINT (8), WEBHOOK_SWEEP_S (5), WEBHOOK_POOL_SIZE (4), RUST_LOG.
//! Stops on SIGTERM or SIGINT after the deliveries in flight.
use api_gateway_front::webhooks::{WorkerConfig, run};
use std::time::Duration;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is required");
    let listen = std::env::var("WEBHOOK_LISTEN_URL").unwrap_or_else(|_| url.clone());
    let mut pg: tokio_postgres::Config = url.parse().expect("DATABASE_URL is not a valid URL");
    pg.application_name("api-gateway-webhooks");
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(env_or("WEBHOOK_POOL_SIZE", 4usize))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .expect("pool");
    let cfg = WorkerConfig {
        listen_url: (listen != "off").then_some(listen),
        per_endpoint: env_or("WEBHOOK_PER_ENDPOINT", 8usize),
        sweep_interval: Duration::from_secs_f64(env_or("WEBHOOK_SWEEP_S", 5.0f64)),
        ..WorkerConfig::default()
    };
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
    };
    if let Err(e) = run(pool, cfg, shutdown).await {
        eprintln!("webhook worker: {e}");
        std::process::exit(1);
    }
}
