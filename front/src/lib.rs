//! The HTTP companion of the `api_gateway` extension: routing, configuration, pool and shutdown.
//! Handlers are thin: each request is the gate call and one data call, translated to HTTP.
// Problems are the error responses themselves (built once per failed request), so their size
// in `Result` does not matter.
#![allow(clippy::result_large_err)]
pub mod body;
pub mod config;
pub mod db;
pub mod error;
pub mod gate;
pub mod guard;
pub mod memory;
pub mod net;
pub mod obs;
pub mod odoo;
pub mod openapi;
pub mod pipeline;
pub mod routes;
pub mod server;
pub mod telemetry;
#[cfg(feature = "webhooks")]
pub mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use config::{Cli, Command, ServeArgs};
use error::{Problem, kind};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Settings every handler reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub trusted_proxies: Vec<net::Cidr>,
    pub body_limit: usize,
    pub statement_timeout: db::Timeout,
    pub docs: bool,
    pub openapi: openapi::Options,
    pub cors_origins: Vec<String>,
    pub single_statement: bool,
    pub dashboard: bool,
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> Self {
        Settings {
            trusted_proxies: args.trusted_proxies.clone(),
            body_limit: args.body_limit,
            statement_timeout: db::Timeout::own(args.statement_timeout_ms),
            docs: args.docs,
            openapi: openapi::Options {
                uid: args.openapi_uid,
                expose: args
                    .expose_models
                    .iter()
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty())
                    .collect(),
                public_url: args.public_url.trim_end_matches('/').to_string(),
                refresh: Duration::from_secs(args.openapi_refresh_s.max(1)),
                methods: args
                    .odoo_url
                    .as_deref()
                    .is_some_and(|u| !u.trim().is_empty()),
            },
            cors_origins: args
                .cors_origins
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            single_statement: args.single_statement.unwrap_or(false),
            dashboard: args.dashboard,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub pool: deadpool_postgres::Pool,
    pub config: Arc<Settings>,
    pub openapi: Arc<openapi::Cache>,
    /// Traffic log, metrics, live feed (src/obs/).
    pub obs: Arc<obs::Obs>,
    /// Throttling of IPs that keep failing authentication (src/guard.rs).
    pub auth_guard: Arc<guard::AuthGuard>,
    /// Odoo's JSON-2 API, when writes are forwarded (`--odoo-url`).
    pub odoo: Option<Arc<odoo::Upstream>>,
    /// Connections shared by concurrent requests (`--pipelined-connections`), when in use.
    pub pipeline: Option<Arc<pipeline::Pipeline>>,
}

impl AppState {
    pub fn new(pool: deadpool_postgres::Pool, args: &ServeArgs) -> Self {
        AppState {
            pool,
            config: Arc::new(Settings::from_args(args)),
            openapi: Arc::new(openapi::Cache::default()),
            obs: Arc::new(obs::Obs::new(obs::Options::from_args(args))),
            auth_guard: Arc::new(guard::AuthGuard::new(
                args.auth_failure_limit,
                Duration::from_secs(args.auth_failure_window_s),
                args.auth_failure_concurrency,
                Duration::from_millis(args.pool_timeout_ms),
                Duration::from_millis(args.auth_failure_delay_ms),
            )),
            odoo: None,
            pipeline: None,
        }
    }

    /// A connection for a request's statements alone. A read (GET, HEAD) takes a place on a
    /// pipelined connection when one can take it; a write never does (it may wait for a row
    /// lock, and the statements queued behind it would wait as long): it, and a read no shared
    /// connection takes, get a pooled connection of their own.
    pub async fn connection(
        &self,
        method: &axum::http::Method,
    ) -> Result<db::Conn, error::Problem> {
        let read = *method == axum::http::Method::GET || *method == axum::http::Method::HEAD;
        if let Some(pipeline) = self.pipeline.as_ref().filter(|_| read) {
            if let Some(ticket) = pipeline.take() {
                return Ok(db::Conn::Shared(ticket));
            }
            // Shared connections full, and the pool has none free (every one busy, maybe with a
            // write waiting for a lock): wait behind the statements of a shared one instead.
            let pool = self.pool.status();
            if pool.available == 0
                && pool.size >= pool.max_size
                && let Some(ticket) = pipeline.take_beyond_depth()
            {
                return Ok(db::Conn::Shared(ticket));
            }
        }
        Ok(db::Conn::Pooled(self.pool.get().await?))
    }
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/api/v1/ping", get(routes::ping::ping))
        .route(
            "/api/v1/{model}",
            get(routes::records::list).post(routes::records::create),
        )
        .route("/api/v1/{model}/fields", get(routes::fields::fields))
        .route("/api/v1/{model}/changes", get(routes::records::changes))
        .route(
            "/api/v1/{model}/{id}",
            get(routes::records::read)
                .put(routes::records::write)
                .patch(routes::records::write)
                .delete(routes::records::unlink),
        )
        .route(
            "/api/v1/{model}/{id}/{field}",
            get(routes::records::download),
        )
        .route(
            "/api/v1/{model}/call/{method}",
            post(routes::records::call_model),
        )
        .route(
            "/api/v1/{model}/{id}/call/{method}",
            post(routes::records::call_record),
        )
        .route("/api/oauth/token", post(routes::oauth::token))
        .route("/api/oauth/revoke", post(routes::oauth::revoke))
        .route("/api/oauth/introspect", post(routes::oauth::introspect))
        .route("/health/live", get(routes::health::live))
        .route("/health/ready", get(routes::health::ready))
        .route("/metrics", get(routes::metrics::metrics));
    #[cfg(feature = "admin")]
    if state.config.dashboard {
        use routes::admin;
        router = router
            .route("/api/gateway/admin", get(admin::home))
            .route("/api/gateway/admin/", get(admin::home))
            .route("/api/gateway/admin/{page}", get(admin::page))
            .route("/api/gateway/admin/assets/{file}", get(admin::asset))
            .route(
                "/api/gateway/admin/api/{*rest}",
                get(admin::get_api).post(admin::post_api),
            );
    }
    #[cfg(feature = "dashboard")]
    if state.config.dashboard {
        use routes::{dashboard, stats};
        router = router
            .route("/api/gateway/dashboard", get(dashboard::page))
            .route("/api/gateway/dashboard/", get(dashboard::page))
            .route("/api/gateway/dashboard/{file}", get(dashboard::asset))
            .route("/api/gateway/stats/overview", get(stats::overview))
            .route("/api/gateway/stats/users", get(stats::users))
            .route("/api/gateway/stats/stream", get(stats::stream))
            .route("/api/gateway/stats/faults.csv", get(stats::faults_csv))
            .route("/api/gateway/stats/log/{id}", get(stats::record))
            .route("/api/gateway/stats/{name}", get(stats::one));
    }
    if state.config.docs {
        router = router
            .route("/api/openapi.json", get(routes::docs::openapi_json))
            .route("/api/docs", get(routes::docs::page))
            .route("/api/docs/", get(routes::docs::page))
            .route("/api/docs/{file}", get(routes::docs::asset));
    }
    let cors = cors_layer(&state.config.cors_origins);
    let router = router
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            obs::capture::middleware,
        ))
        .with_state(state)
        .layer(middleware::from_fn(common_headers));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, kind::METHOD_NOT_ALLOWED)
        .detail("this route does not take this HTTP method; see the Allow header")
}

/// `nosniff` everywhere, `no-store` on API answers, and a request log line.
async fn common_headers(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    // masked like the traffic log's path: a key pasted into a URL never reaches this log
    let secrets = obs::redact::Secrets::from_authorization(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let path = request.uri().path().to_string();
    let logged_path = obs::redact::path(&path, &secrets);
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if (path.starts_with("/api/v1/") || path.starts_with("/api/oauth/"))
        && !h.contains_key(header::CACHE_CONTROL)
    {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    tracing::info!(
        "{method} {} {} {}ms",
        error::truncate(&logged_path, 200),
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                header::HeaderName::from_static("ratelimit"),
                header::HeaderName::from_static("ratelimit-policy"),
                header::HeaderName::from_static("idempotent-replayed"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        #[cfg(feature = "webhooks")]
        Command::Worker(args) => worker(args).await,
    }
}

/// `api-gateway worker`: webhook delivery only, until SIGTERM/SIGINT.
#[cfg(feature = "webhooks")]
pub async fn worker(args: config::WorkerArgs) -> Result<(), String> {
    let mut serve_like = ServeArgs::with_database_url(&args.database_url);
    serve_like.pool_size = args.pool_size;
    let pool = db::pool(&serve_like, false)?;
    let cfg = args.webhooks.worker_config(
        &args.database_url,
        Duration::from_secs(args.shutdown_grace_s),
    );
    webhooks::run(pool, cfg, shutdown_signal()).await
}

/// Whether the database counts rate limits in shared memory (api_gateway preloaded, with room
/// for subjects, and not switched off): then the gate locks no counter row, and one statement per
/// request (gate and data together) is the default (docs/http.md).
const COUNTERS_IN_SHARED_MEMORY: &str = "SELECT coalesce(current_setting('api_gateway.rate_limit_shared_subjects', true)::int, 0) > 0 \
       AND coalesce(current_setting('api_gateway.rate_limit_shared_memory', true), 'on') = 'on'";

/// See [`COUNTERS_IN_SHARED_MEMORY`]; false when it cannot be told.
pub async fn counters_in_shared_memory(client: &tokio_postgres::Client) -> bool {
    client
        .query_typed(COUNTERS_IN_SHARED_MEMORY, &[])
        .await
        .map(|rows| rows.first().is_some_and(|r| r.get::<_, bool>(0)))
        .unwrap_or(false)
}

/// Bind and serve until SIGTERM/SIGINT.
pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    serve_on(listener, args, shutdown_signal()).await
}

/// Serve on `listener` until `shutdown` completes; then stop accepting, let in-flight requests
/// finish for at most the grace period, and return.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    #[cfg(not(feature = "webhooks"))]
    if args.webhooks {
        return Err(
            "--webhooks true: this build has no webhook delivery (cargo feature `webhooks`)".into(),
        );
    }
    let mut pool = db::pool(&args, false)?;
    let single_statement;
    let connection_settings;
    let direct;
    // Fail fast on a bad URL or a database without the extension.
    {
        let client = pool
            .get()
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        client
            .query_typed("SELECT api_gateway.version()", &[])
            .await
            .map_err(|e| format!("the database has no usable api_gateway extension: {e}"))?;
        single_statement = match args.single_statement {
            Some(given) => given,
            None => counters_in_shared_memory(&client).await,
        };
        direct = match (args.prepared_statements, args.connection_settings) {
            (Some(_), Some(_)) => false,
            _ => db::reaches_postgres_directly(&client, &args.database_url).await?,
        };
        let prepared = args.prepared_statements.unwrap_or(direct);
        connection_settings =
            args.connection_settings.unwrap_or(direct) && args.statement_timeout_ms != 0;
        db::use_prepared_statements(prepared);
        tracing::info!(
            "statements are {}",
            if prepared {
                "prepared once per connection"
            } else {
                "parsed for every request (unnamed statements; --prepared-statements)"
            }
        );
    }
    let mut statement_timeout = db::Timeout::own(args.statement_timeout_ms);
    if connection_settings {
        let with_timeout = db::pool(&args, true)?;
        let client = with_timeout
            .get()
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        // A pooler may drop or ignore a start-up parameter: rely on it only when it took.
        if db::has_statement_timeout(&client, args.statement_timeout_ms).await {
            drop(client);
            pool = with_timeout;
            statement_timeout = db::Timeout::on_connection(args.statement_timeout_ms);
        } else {
            tracing::warn!(
                "the statement timeout given when connecting did not take: it is set in each \
                 request's transaction (--connection-settings)"
            );
        }
    }
    tracing::info!(
        "the statement timeout is set {}",
        if statement_timeout.connection_ms != 0 {
            "once per connection (each request is its statement alone)"
        } else {
            "in each request's transaction (--connection-settings)"
        }
    );
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let grace = Duration::from_secs(args.shutdown_grace_s);
    let mut state = AppState::new(pool, &args);
    let threads = args
        .worker_threads
        .map_or_else(config::half_the_cores, usize::from);
    let (pipelined, refused) = pipeline::count(
        args.pipelined_connections,
        statement_timeout,
        direct,
        threads,
    );
    if let Some(why) = refused {
        tracing::warn!("{why}");
    }
    if pipelined > 0 {
        let config = db::connection_config(&args, statement_timeout.connection_ms != 0)?;
        state.pipeline = Some(pipeline::Pipeline::open(config, pipelined, db::prepared()).await?);
        tracing::info!(
            "{pipelined} pipelined connections are shared by the requests' statements, the pool \
             of {} takes the rest",
            args.pool_size.max(1)
        );
    } else {
        tracing::info!("no pipelined connections: each request takes a pooled connection");
    }
    let settings = Arc::make_mut(&mut state.config);
    settings.single_statement = single_statement;
    settings.statement_timeout = statement_timeout;
    tracing::info!(
        "requests reach the database as {}",
        if single_statement {
            "one statement (gate and data together)"
        } else {
            "two short transactions (gate, then data)"
        }
    );
    if let Some(url) = args.odoo_url.as_deref().filter(|u| !u.trim().is_empty()) {
        let upstream =
            odoo::Upstream::new(url, args.odoo_database.as_deref(), args.odoo_timeout_ms)?;
        tracing::info!(
            "writes and method calls are forwarded to Odoo at {}",
            url.trim()
        );
        state.odoo = Some(Arc::new(upstream));
    }
    let refresher = state
        .config
        .docs
        .then(|| tokio::spawn(openapi::refresh_loop(state.clone())));
    let observability = obs::start(&state).await;
    let (webhooks_stop, webhooks_stopped) = tokio::sync::oneshot::channel::<()>();
    #[cfg(not(feature = "webhooks"))]
    let delivery: Option<tokio::task::JoinHandle<Result<(), String>>> = {
        drop(webhooks_stopped);
        None
    };
    #[cfg(feature = "webhooks")]
    let delivery = args.webhooks.then(|| {
        let cfg = args.webhook.worker_config(&args.database_url, grace);
        tokio::spawn(webhooks::run(state.pool.clone(), cfg, async move {
            let _ = webhooks_stopped.await;
        }))
    });
    tracing::info!("api-gateway listening on http://{addr}");
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let stopping_obs = state.obs.clone();
    let limits = server::Limits::from_args(&args);
    let server = server::serve(listener, app(state), limits, async move {
        shutdown.await;
        tracing::info!(
            "shutdown requested: finishing in-flight requests (at most {}s)",
            grace.as_secs()
        );
        stopping_obs.begin_shutdown();
        let _ = webhooks_stop.send(());
        let _ = stopping_tx.send(());
    });
    tokio::pin!(server);
    let result = tokio::select! {
        _ = &mut server => Ok(()),
        _ = async {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!("grace period over: closing the connections still open");
            Ok(())
        }
    };
    if let Some(r) = refresher {
        r.abort();
    }
    observability.finish().await;
    if let Some(d) = delivery
        && let Ok(Ok(Err(e))) = tokio::time::timeout(grace + Duration::from_secs(5), d).await
    {
        tracing::error!("webhook worker: {e}");
    }
    result
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
}
