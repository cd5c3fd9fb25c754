//! Command line and environment configuration.
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// PostgreSQL connection URL of the Odoo database that has `CREATE EXTENSION api_gateway`
    /// (e.g. postgresql://gateway@127.0.0.1/odoo or postgresql:///odoo?host=/var/run/postgresql).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "API_GATEWAY_LISTEN", default_value = "127.0.0.1:8070")]
    pub listen: SocketAddr,

    /// Maximum number of PostgreSQL connections in the pool.
    #[arg(long, env = "API_GATEWAY_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,

    /// How long a request may wait for a pooled connection before it gets 503, in milliseconds.
    #[arg(long, env = "API_GATEWAY_POOL_TIMEOUT_MS", default_value_t = 5000)]
    pub pool_timeout_ms: u64,

    /// Server-side statement timeout applied to every request, in milliseconds.
    #[arg(
        long,
        env = "API_GATEWAY_STATEMENT_TIMEOUT_MS",
        default_value_t = 15000
    )]
    pub statement_timeout_ms: u64,

    /// How long graceful shutdown waits for in-flight requests, in seconds.
    #[arg(long, env = "API_GATEWAY_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
}
