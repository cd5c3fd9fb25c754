//! HTTP tests over real sockets: the app is served on 127.0.0.1:<ephemeral> against the fixture
//! database given by DATABASE_URL, and called with a real HTTP client.
use api_gateway_front::config::ServeArgs;
use serde_json::Value;
use std::net::SocketAddr;

fn args() -> ServeArgs {
    ServeArgs {
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgresql:///agw_test_mini?host=/var/run/postgresql".into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        pool_size: 4,
        pool_timeout_ms: 2000,
        statement_timeout_ms: 5000,
        shutdown_grace_s: 5,
    }
}

async fn start() -> SocketAddr {
    let args = args();
    let pool = api_gateway_front::db::pool(&args).unwrap();
    let app = api_gateway_front::app(api_gateway_front::AppState { pool });
    let listener = tokio::net::TcpListener::bind(args.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

#[tokio::test]
async fn ping_is_answered_by_the_database() {
    let addr = start().await;
    let response = reqwest::get(format!("http://{addr}/api/v1/ping"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["pong"], true);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn health_endpoints_answer() {
    let addr = start().await;
    let live = reqwest::get(format!("http://{addr}/health/live"))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = reqwest::get(format!("http://{addr}/health/ready"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn unknown_paths_get_a_problem_body() {
    let addr = start().await;
    let response = reqwest::get(format!("http://{addr}/nope/../etc/passwd"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
}

#[tokio::test]
async fn a_database_that_is_down_gives_503_not_a_hang() {
    let mut args = args();
    args.database_url = "postgresql://nobody@127.0.0.1:1/none".into();
    let pool = api_gateway_front::db::pool(&args).unwrap();
    let app = api_gateway_front::app(api_gateway_front::AppState { pool });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let response = reqwest::get(format!("http://{addr}/health/ready"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 503);
}
