//! The PostgreSQL pool. Every request takes one connection for one statement; no session state and
//! no named prepared statements (`query_typed`), so transaction-mode PgBouncer works.
use crate::config::ServeArgs;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use std::time::Duration;
use tokio_postgres::NoTls;

pub fn pool(args: &ServeArgs) -> Result<Pool, String> {
    let mut pg: tokio_postgres::Config = args
        .database_url
        .parse()
        .map_err(|e| format!("invalid --database-url: {e}"))?;
    pg.application_name("api-gateway");
    pg.options(format!(
        "-c statement_timeout={}",
        args.statement_timeout_ms
    ));
    pg.connect_timeout(Duration::from_secs(5));
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let wait = Duration::from_millis(args.pool_timeout_ms);
    Pool::builder(manager)
        .max_size(args.pool_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(wait),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .build()
        .map_err(|e| format!("cannot build the connection pool: {e}"))
}
