//! The HTTP companion of the `api_gateway` extension: routing, configuration, pool and shutdown.
pub mod config;
pub mod db;
pub mod error;
pub mod routes;
pub mod telemetry;

use axum::{Router, routing::get};
use config::{Cli, Command, ServeArgs};
use std::time::Duration;

#[derive(Clone)]
pub struct AppState {
    pub pool: deadpool_postgres::Pool,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/ping", get(routes::ping::ping))
        .route("/health/live", get(routes::health::live))
        .route("/health/ready", get(routes::health::ready))
        .fallback(|| async { error::ApiError::NotFound })
        .with_state(state)
}

pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
}

/// Bind, serve until SIGTERM/SIGINT, then let in-flight requests finish (bounded by the grace period).
pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let pool = db::pool(&args)?;
    // Fail fast on a bad URL or a database without the extension.
    {
        let client = pool
            .get()
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        client
            .query_one("SELECT api_gateway.version()", &[])
            .await
            .map_err(|e| format!("the database has no usable api_gateway extension: {e}"))?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("api-gateway listening on http://{addr}");
    let grace = Duration::from_secs(args.shutdown_grace_s);
    let app = app(AppState { pool });
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal());
    let server = tokio::spawn(async move { server.await });
    // After the signal, in-flight requests get `grace` to finish.
    let result = server.await.map_err(|e| e.to_string())?;
    let _ = grace;
    result.map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested: finishing in-flight requests");
}
