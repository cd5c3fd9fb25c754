//! Command line and environment configuration. Every flag has an environment variable; both are
//! listed by `api-gateway serve --help`.
use crate::net::Cidr;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;

#[derive(Debug, Parser)]
#[command(
    name = "api-gateway",
    version,
    about = "HTTP companion of the api_gateway PostgreSQL extension: REST on Odoo models, OAuth2, webhooks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The runtime's worker threads: `serve --worker-threads`, else half the cores (at least one).
    pub fn worker_threads(&self) -> usize {
        let given = match &self.command {
            Command::Serve(args) => args.worker_threads,
            #[cfg(feature = "webhooks")]
            Command::Worker(_) => None,
        };
        given.map_or_else(half_the_cores, usize::from)
    }
}

/// Half the machine's cores, at least one: the default of `--worker-threads` and of
/// `--pipelined-connections`.
pub fn half_the_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up; boxing buys nothing
pub enum Command {
    /// Serve the REST API, the OAuth2 endpoints, the OpenAPI document and the docs page.
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
    /// Deliver webhooks (api_gateway.webhook_job) until SIGTERM/SIGINT, without serving HTTP.
    #[cfg(feature = "webhooks")]
    Worker(WorkerArgs),
}

/// Webhook delivery settings, shared by `serve` (which delivers too unless --webhooks false)
/// and `worker`.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Requests in flight per webhook endpoint at most.
    #[arg(long, env = "API_GATEWAY_WEBHOOK_CONCURRENCY", default_value_t = 8)]
    pub webhook_concurrency: usize,
    /// Longest wait between two looks for due jobs, in seconds (the poll below is shorter).
    #[arg(long, env = "API_GATEWAY_WEBHOOK_SWEEP_S", default_value_t = 5)]
    pub webhook_sweep_s: u64,
    /// How often an idle worker looks for due jobs, in milliseconds (capture does not NOTIFY;
    /// one read-only query per look).
    #[arg(long, env = "API_GATEWAY_WEBHOOK_POLL_MS", default_value_t = 25)]
    pub webhook_poll_ms: u64,
    /// Direct URL for LISTEN (PgBouncer in transaction mode does not carry notifications);
    /// default --database-url; "off" = no LISTEN (the sweep alone finds new jobs).
    #[arg(long, env = "API_GATEWAY_WEBHOOK_LISTEN_URL", hide_env_values = true)]
    pub webhook_listen_url: Option<String>,
}

impl WebhookArgs {
    #[cfg(feature = "webhooks")]
    pub fn worker_config(
        &self,
        database_url: &str,
        grace: std::time::Duration,
    ) -> crate::webhooks::WorkerConfig {
        let listen = self
            .webhook_listen_url
            .clone()
            .unwrap_or_else(|| database_url.to_string());
        crate::webhooks::WorkerConfig {
            listen_url: (listen != "off").then_some(listen),
            per_endpoint: self.webhook_concurrency.max(1),
            sweep_interval: std::time::Duration::from_secs(self.webhook_sweep_s.max(1)),
            poll_interval: std::time::Duration::from_millis(self.webhook_poll_ms.max(5)),
            shutdown_grace: grace,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// PostgreSQL connection URL of the Odoo database that has the extension.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Maximum number of PostgreSQL connections in the pool.
    #[arg(long, env = "API_GATEWAY_WORKER_POOL_SIZE", default_value_t = 4)]
    pub pool_size: usize,
    /// How long in-flight deliveries may take to finish after SIGTERM, in seconds.
    #[arg(long, env = "API_GATEWAY_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

const SERVE_AFTER_HELP: &str = "\
Routes: GET/POST /api/v1/<model>, GET/PUT/PATCH/DELETE /api/v1/<model>/<id>, GET /api/v1/ping,
POST /api/v1/<model>/call/<method> and /api/v1/<model>/<id>/call/<method> (with --odoo-url),
POST /api/oauth/token|revoke|introspect, GET /api/openapi.json, GET /api/docs, GET /health/live|ready.
GET /metrics, GET /api/gateway/dashboard, GET /api/gateway/stats/..., the admin console
/api/gateway/admin/ and its API /api/gateway/admin/api/... (admin).
Lists (--trusted-proxies, --cors-origins, --expose-models) are comma-separated.
Logging: RUST_LOG (default info). Full reference: docs/http.md.";

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// PostgreSQL connection URL of the Odoo database that has `CREATE EXTENSION api_gateway`
    /// (e.g. postgresql://gateway@127.0.0.1/odoo or postgresql:///odoo?host=/var/run/postgresql).
    /// PgBouncer in transaction mode is supported.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "API_GATEWAY_LISTEN", default_value = "127.0.0.1:8070")]
    pub listen: SocketAddr,

    /// Maximum number of PostgreSQL connections in the pool.
    #[arg(long, env = "API_GATEWAY_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,

    /// Threads serving requests. Not given: half the machine's cores, at least one. The front
    /// mostly waits on PostgreSQL, and next to PostgreSQL each further thread mostly adds
    /// wake-ups from one thread to another (docs/http.md); give it the cores of a machine of
    /// its own.
    #[arg(long, env = "API_GATEWAY_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,

    /// How long a request may wait for a pooled connection before it gets 503, in milliseconds.
    #[arg(long, env = "API_GATEWAY_POOL_TIMEOUT_MS", default_value_t = 5000)]
    pub pool_timeout_ms: u64,

    /// Failed authentications (401 from the gate) one client IP may have within
    /// --auth-failure-window-s before it is throttled: then at most --auth-failure-concurrency
    /// of its requests reach the database at a time, the others wait their turn (at most
    /// --pool-timeout-ms) and then get 429. Bounds what a flood of invalid tokens from one
    /// address costs the other clients. 0 (the default) disables it. Needs the real client IP:
    /// behind a load balancer, set --trusted-proxies, or every client shares its address.
    #[arg(long, env = "API_GATEWAY_AUTH_FAILURE_LIMIT", default_value_t = 0)]
    pub auth_failure_limit: u32,

    /// The window of --auth-failure-limit, in seconds (an IP stays throttled for the window
    /// after the one in which it reached the limit).
    #[arg(long, env = "API_GATEWAY_AUTH_FAILURE_WINDOW_S", default_value_t = 10)]
    pub auth_failure_window_s: u64,

    /// A throttled IP's request that fails authentication again keeps its turn this much longer
    /// (without a database connection) before its 401 is sent: such an address gets at most
    /// --auth-failure-concurrency failed gate calls per delay, in milliseconds.
    #[arg(long, env = "API_GATEWAY_AUTH_FAILURE_DELAY_MS", default_value_t = 100)]
    pub auth_failure_delay_ms: u64,

    /// Requests of a throttled IP (--auth-failure-limit) in the gate at a time.
    #[arg(
        long,
        env = "API_GATEWAY_AUTH_FAILURE_CONCURRENCY",
        default_value_t = 1
    )]
    pub auth_failure_concurrency: usize,

    /// Statement timeout applied to every request (SET LOCAL in the request's transaction), in
    /// milliseconds; a request that runs longer gets 504. 0 disables it.
    #[arg(
        long,
        env = "API_GATEWAY_STATEMENT_TIMEOUT_MS",
        default_value_t = 15000
    )]
    pub statement_timeout_ms: u64,

    /// After SIGTERM/SIGINT, how long in-flight requests may take to finish, in seconds; then the
    /// server exits anyway.
    #[arg(long, env = "API_GATEWAY_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,

    /// Proxies whose X-Forwarded-For is believed (CIDR list, e.g. 10.0.0.0/8,127.0.0.1). The client
    /// IP is the right-most X-Forwarded-For address that is not itself a trusted proxy. Empty: the
    /// socket peer address is always the client IP.
    #[arg(
        long,
        env = "API_GATEWAY_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_cidr
    )]
    pub trusted_proxies: Vec<Cidr>,

    /// Origins allowed by CORS (comma-separated, `*` for any). Empty (the default): CORS is off and
    /// browsers on other origins cannot call the API.
    #[arg(long, env = "API_GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Time a client has to send a request's head (request line and headers), counted from the
    /// moment the connection waits for it, in milliseconds; then the connection is closed. Also
    /// closes keep-alive connections that send nothing more. 0 disables it.
    #[arg(long, env = "API_GATEWAY_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// Time a client has to send a request's whole body once its head arrived, in
    /// milliseconds; a slower body gets 408. 0 disables it.
    #[arg(long, env = "API_GATEWAY_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,

    /// A connection on which no byte moves either way for this long is closed, in seconds
    /// (keep it above the statement timeout and the dashboard stream's 15 s keep-alive).
    /// 0 disables it.
    #[arg(long, env = "API_GATEWAY_IDLE_TIMEOUT_S", default_value_t = 60)]
    pub idle_timeout_s: u64,

    /// Client connections open at once at most; one more gets a 503 problem and is closed.
    /// Keep it below the process's file descriptor limit (`ulimit -n`) minus --pool-size and
    /// a margin, so the front can always reach its database.
    #[arg(long, env = "API_GATEWAY_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Largest accepted request body, in bytes; larger bodies get 413.
    #[arg(long, env = "API_GATEWAY_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Models described in the OpenAPI document (comma-separated names; `prefix.*` patterns allowed).
    /// Empty (the default): every model the OpenAPI user may read.
    #[arg(long, env = "API_GATEWAY_EXPOSE_MODELS", value_delimiter = ',')]
    pub expose_models: Vec<String>,

    /// Odoo user (res_users.id) whose read access decides which models the OpenAPI document
    /// describes.
    #[arg(long, env = "API_GATEWAY_OPENAPI_UID", default_value_t = 2)]
    pub openapi_uid: i32,

    /// How often the model metadata is re-read to refresh the OpenAPI document, in seconds.
    #[arg(long, env = "API_GATEWAY_OPENAPI_REFRESH_S", default_value_t = 60)]
    pub openapi_refresh_s: u64,

    /// Serve /api/openapi.json and the /api/docs page (true/false).
    #[arg(long, env = "API_GATEWAY_DOCS", default_value_t = true, action = clap::ArgAction::Set)]
    pub docs: bool,

    /// Run the gate and the data call as ONE statement (one round trip) instead of two short
    /// transactions on one connection (gate, then data: two round trips). Not given: one
    /// statement when the database counts rate limits in shared memory (api_gateway in
    /// shared_preload_libraries: no counter row stays locked during the data call), else two.
    /// With the table counters, one statement keeps the caller's counter row locked while the
    /// data call runs (one user's concurrent requests wait for each other).
    #[arg(long, env = "API_GATEWAY_SINGLE_STATEMENT", action = clap::ArgAction::Set)]
    pub single_statement: Option<bool>,

    /// Prepare each statement once per connection (named prepared statements) instead of
    /// parsing and planning it again for every request: about 1.5x the database's throughput for
    /// the gate and data calls. Not given: on, unless the database answers on another port than
    /// the one connected to (a pooler such as PgBouncer in between, whose transaction mode before
    /// 1.21 does not keep a connection's named statements). Set false behind such a pooler when
    /// the ports match.
    #[arg(long, env = "API_GATEWAY_PREPARED_STATEMENTS", action = clap::ArgAction::Set)]
    pub prepared_statements: Option<bool>,

    /// Give each pooled connection the statement timeout when it opens (a start-up parameter,
    /// checked once) instead of setting it in every request's transaction: a request is then its
    /// one statement alone, without BEGIN, SET LOCAL and COMMIT around it (three messages and a
    /// third of the front's wake-ups less per request). Not given: on when the front reaches
    /// PostgreSQL directly (the check of --prepared-statements). Set false behind a pooler in
    /// transaction mode when the ports match: its server connections are shared.
    #[arg(long, env = "API_GATEWAY_CONNECTION_SETTINGS", action = clap::ArgAction::Set)]
    pub connection_settings: Option<bool>,

    /// Connections shared by concurrent requests, their statements pipelined: a request's gate
    /// and data statements go to the least busy one without waiting for the statements already
    /// there, so that fewer backends serve more requests with fewer wake-ups. Used only when
    /// each request is its statement alone (the statement timeout on the connection:
    /// --connection-settings), for reads (GET and HEAD: their gate and data calls). A shared
    /// connection whose oldest statement has run 20 ms takes no more, nor one that has 8 in
    /// flight while the pool has a connection free: those requests use the pool (--pool-size),
    /// as do writes (one may wait for a row lock, and the statements behind it with it),
    /// forwarded calls and the admin pages. Not given: when each request is its statement alone
    /// and no pooler is in between (the timeout took on the connection, or the check of
    /// --prepared-statements), as many as --worker-threads (half the cores: the front usually
    /// runs next to PostgreSQL or on a machine like it), else none. 0: none.
    #[arg(long, env = "API_GATEWAY_PIPELINED_CONNECTIONS")]
    pub pipelined_connections: Option<usize>,

    /// Public base URL of the API as clients see it (e.g. https://api.example.com), written into
    /// the OpenAPI `servers`. Empty: the document's own origin.
    #[arg(long, env = "API_GATEWAY_PUBLIC_URL", default_value = "")]
    pub public_url: String,

    /// Traffic log level of this front, overriding `api_gateway.settings.log_level`: errors
    /// (status >= 400 only), metadata (every request, no bodies) or payloads (bodies too).
    /// Unset (the default): the settings' level, read again every --log-level-refresh-s.
    #[arg(long, env = "API_GATEWAY_LOG_LEVEL", value_parser = ["errors", "metadata", "payloads"])]
    pub log_level: Option<String>,

    /// How often `settings.log_level` is read again, in seconds.
    #[arg(long, env = "API_GATEWAY_LOG_LEVEL_REFRESH_S", default_value_t = 5)]
    pub log_level_refresh_s: u64,

    /// Traffic log batching: a batch is written this many milliseconds after its first record
    /// was queued, or earlier when it reaches --log-batch-rows.
    #[arg(long, env = "API_GATEWAY_LOG_BATCH_MS", default_value_t = 250)]
    pub log_batch_ms: u64,

    /// Largest traffic log batch: one `api_gateway.log_requests` call writes at most this many rows.
    #[arg(long, env = "API_GATEWAY_LOG_BATCH_ROWS", default_value_t = 500)]
    pub log_batch_rows: usize,

    /// Capacity of the in-memory traffic log queue; when it is full, records are dropped and
    /// counted (api_gateway_log_queue_dropped_total) rather than making a request wait.
    #[arg(long, env = "API_GATEWAY_LOG_QUEUE", default_value_t = 10000)]
    pub log_queue: usize,

    /// At the payloads level, request and response bodies are stored up to this many bytes.
    #[arg(long, env = "API_GATEWAY_LOG_BODY_BYTES", default_value_t = 8192)]
    pub log_body_bytes: usize,

    /// How often this front runs `api_gateway.run_maintenance('all')` (log retention, webhook
    /// jobs, expired tokens, throttle windows), in seconds; 0 disables it (e.g. with pg_cron).
    /// Safe with several fronts: each job runs once at a time (advisory lock).
    #[arg(
        long,
        env = "API_GATEWAY_MAINTENANCE_INTERVAL_S",
        default_value_t = 300
    )]
    pub maintenance_interval_s: u64,

    /// Serve /metrics without authentication (for a Prometheus scraper on a private network).
    /// Default: /metrics needs an admin credential, like the dashboard.
    #[arg(long, env = "API_GATEWAY_METRICS_PUBLIC", default_value_t = false, action = clap::ArgAction::Set)]
    pub metrics_public: bool,

    /// Serve the dashboard (/api/gateway/dashboard), its JSON statistics (/api/gateway/stats/...)
    /// and the admin console (/api/gateway/admin/, its API under /api/gateway/admin/api/...).
    #[arg(long, env = "API_GATEWAY_DASHBOARD", default_value_t = true, action = clap::ArgAction::Set)]
    pub dashboard: bool,

    /// Connection URL of the dashboard's LISTEN connection (one per front, opened while a
    /// dashboard is connected). Must reach PostgreSQL directly: PgBouncer in transaction mode
    /// does not carry notifications. Default: --database-url.
    #[arg(long, env = "API_GATEWAY_LIVE_DATABASE_URL", hide_env_values = true)]
    pub live_database_url: Option<String>,

    /// Deliver webhooks from this process too (`--webhooks true`); by default a separate
    /// `api-gateway worker` process does it.
    #[arg(long, env = "API_GATEWAY_WEBHOOKS", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhooks: bool,

    /// Odoo's URL (e.g. http://127.0.0.1:8069). When set, writes (POST, PUT/PATCH, DELETE on
    /// /api/v1/<model>[/<id>]) and business methods (/api/v1/<model>[/<id>]/call/<method>) are
    /// forwarded to Odoo's JSON-2 API as the authenticated user, after the gate passed; reads stay
    /// in SQL, except fields only Odoo gives (computed and not stored, binary), filled by one
    /// JSON-2 read per request, and files (GET /api/v1/<model>/<id>/<field>). Unset: writes go
    /// to the extension's SQL writes (models in settings.sql_write_models only), method calls
    /// and files get 501, and such fields 400.
    #[arg(long, env = "ODOO_URL")]
    pub odoo_url: Option<String>,

    /// Odoo database name, sent as X-Odoo-Database with every forwarded call (needed when Odoo
    /// serves several databases and its dbfilter cannot pick one from the host name).
    #[arg(long, env = "ODOO_DATABASE")]
    pub odoo_database: Option<String>,

    /// How long a forwarded call may take before the client gets 504, in milliseconds.
    #[arg(long, env = "API_GATEWAY_ODOO_TIMEOUT_MS", default_value_t = 30000)]
    pub odoo_timeout_ms: u64,

    #[command(flatten)]
    pub webhook: WebhookArgs,
}

impl ServeArgs {
    /// The defaults of every flag, with this database URL (for tests and embedding).
    pub fn with_database_url(database_url: &str) -> Self {
        let cli = Cli::parse_from(["api-gateway", "serve", "--database-url", database_url]);
        match cli.command {
            Command::Serve(args) => args,
            #[cfg(feature = "webhooks")]
            Command::Worker(_) => unreachable!("parsed as serve"),
        }
    }
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.trim().parse()
}
