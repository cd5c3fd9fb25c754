//! The PostgreSQL pool and the one way handlers talk to the database.
//!
//! Every request is one transaction holding one statement (the gate call and the data call
//! combined), one network round trip. When the front reaches PostgreSQL directly, each pooled
//! connection has the statement timeout from its start-up packet and the statement is sent
//! alone; otherwise (a pooler sharing server connections) it is sent pipelined with its
//! `BEGIN; SET LOCAL statement_timeout` and `COMMIT`, and no session state is left behind.
//! Statements are prepared once per connection
//! (`--prepared-statements`, on by default: parsing and planning them for every request cost a
//! third of the database's time); off, each uses the unnamed statement (`query_typed`), which
//! transaction-mode PgBouncer before 1.21 needs.
use crate::config::ServeArgs;
use crate::error::Problem;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

/// A connection URL (or key=value string) as a configuration; without a password in it, the
/// password is taken from `PGPASSWORD` as libpq does.
pub fn pg_config(url: &str) -> Result<tokio_postgres::Config, String> {
    pg_config_with(url, std::env::var("PGPASSWORD").ok())
}

fn pg_config_with(url: &str, pgpassword: Option<String>) -> Result<tokio_postgres::Config, String> {
    let mut pg: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    if pg.get_password().is_none()
        && let Some(p) = pgpassword.filter(|p| !p.is_empty())
    {
        pg.password(p);
    }
    Ok(pg)
}

/// A database error for the log: SQLSTATE and message when the server sent one.
pub fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Whether `query_on` prepares its statements (`--prepared-statements`; set once by `serve`).
static PREPARED: AtomicBool = AtomicBool::new(false);

pub fn use_prepared_statements(on: bool) {
    PREPARED.store(on, Ordering::Relaxed);
}

pub fn prepared() -> bool {
    PREPARED.load(Ordering::Relaxed)
}

/// A statement's timeout, `ms` (0: none), and the one its connection already runs under,
/// `connection_ms` (what its start-up packet set and `serve` checked; 0: none): the statement
/// needs a transaction of its own only to set a different one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    pub ms: u64,
    pub connection_ms: u64,
}

impl Timeout {
    /// `ms` on a connection opened without a timeout.
    pub const fn own(ms: u64) -> Self {
        Timeout {
            ms,
            connection_ms: 0,
        }
    }

    /// `ms` on a connection opened with that very timeout.
    pub const fn on_connection(ms: u64) -> Self {
        Timeout {
            ms,
            connection_ms: ms,
        }
    }

    /// No timeout, on the same connections: for the front's own long jobs (maintenance).
    pub const fn unbounded(self) -> Self {
        Timeout { ms: 0, ..self }
    }

    fn needs_own_transaction(self) -> bool {
        self.ms != self.connection_ms
    }

    /// Whether a statement under this timeout is sent alone, its own transaction (what a
    /// pipelined connection needs).
    pub fn alone(self) -> bool {
        !self.needs_own_transaction()
    }
}

/// Whether this connection's statement timeout is `ms` (what the start-up parameter asked for;
/// a pooler that ignores or drops it leaves the server's own).
pub async fn has_statement_timeout(client: &tokio_postgres::Client, ms: u64) -> bool {
    let Ok(ms) = i64::try_from(ms) else {
        return false;
    };
    client
        .query_typed(
            "SELECT setting::int8 = $1 FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'",
            &[(&ms, Type::INT8)],
        )
        .await
        .ok()
        .and_then(|rows| rows.first().map(|r| r.get::<_, bool>(0)))
        .unwrap_or(false)
}

/// `--prepared-statements` not given: whether this connection reaches PostgreSQL directly. Over
/// TCP, a server port other than the one connected to means a pooler in between (PgBouncer in
/// transaction mode hands each transaction any server connection, so named statements would
/// meet another client's); over a Unix socket `inet_server_port()` is NULL and so is the answer
/// of a pooler's socket, so the socket's own port is compared too.
pub async fn reaches_postgres_directly(
    client: &tokio_postgres::Client,
    url: &str,
) -> Result<bool, String> {
    let pg = pg_config(url)?;
    let port = i32::from(pg.get_ports().first().copied().unwrap_or(5432));
    let rows = client
        .query_typed(
            "SELECT inet_server_port(), current_setting('port')::int",
            &[],
        )
        .await
        .map_err(|e| describe_error(&e))?;
    let row = rows.first().ok_or("SELECT returned no row")?;
    let tcp_port: Option<i32> = row.get(0);
    let server_port: i32 = row.get(1);
    Ok(tcp_port.unwrap_or(server_port) == port)
}

/// The pool; `connection_timeout`: each connection opens with `statement_timeout` set to
/// `--statement-timeout-ms` (a start-up parameter added to the URL's own `options`).
pub fn pool(args: &ServeArgs, connection_timeout: bool) -> Result<Pool, String> {
    let pg = connection_config(args, connection_timeout)?;
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let wait = Duration::from_millis(args.pool_timeout_ms);
    Pool::builder(manager)
        .max_size(args.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(wait),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .build()
        .map_err(|e| format!("cannot build the connection pool: {e}"))
}

/// What every connection of the front opens with (the pool's and the pipelined ones).
pub fn connection_config(
    args: &ServeArgs,
    connection_timeout: bool,
) -> Result<tokio_postgres::Config, String> {
    let mut pg =
        pg_config(&args.database_url).map_err(|e| format!("invalid --database-url: {e}"))?;
    pg.application_name("api-gateway");
    if connection_timeout && args.statement_timeout_ms != 0 {
        let timeout = format!("-c statement_timeout={}", args.statement_timeout_ms);
        let options = match pg.get_options() {
            Some(given) if !given.trim().is_empty() => format!("{given} {timeout}"),
            _ => timeout,
        };
        pg.options(options);
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    Ok(pg)
}

pub type Params<'a> = [(&'a (dyn ToSql + Sync), Type)];

/// A `json`/`jsonb` column as the JSON text PostgreSQL sent, unparsed: records go from the
/// database to the response body as they are, never parsed into values and serialised again.
#[derive(Debug)]
pub struct RawJson(pub Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawJson {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary form is a version byte (1) and the JSON text.
        let text = match (ty, raw.split_first()) {
            (&Type::JSONB, Some((1, text))) => text,
            (&Type::JSONB, _) => return Err("unsupported jsonb binary version".into()),
            _ => raw,
        };
        Ok(RawJson(text.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}

/// Run one statement in its own transaction under the statement timeout, and return its rows.
/// An error rolls the whole transaction back.
pub async fn query(
    pool: &Pool,
    timeout: Timeout,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, Problem> {
    let client = pool.get().await?;
    query_on(&client, timeout, sql, params).await
}

/// `query` on a connection already taken from the pool: prepared or not as `serve` decided.
pub async fn query_on(
    client: &deadpool_postgres::Client,
    timeout: Timeout,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, Problem> {
    if prepared() {
        query_prepared(client, timeout, sql, params).await
    } else {
        Ok(query_unprepared(client, timeout, sql, params).await?)
    }
}

/// `query_on` with `sql` parsed and planned for this call only (the unnamed statement), with
/// the driver's error (for the front's own jobs, which log it rather than answer a problem).
pub async fn query_unprepared(
    client: &deadpool_postgres::Client,
    timeout: Timeout,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    in_transaction(client, timeout, false, client.query_typed(sql, params)).await
}

/// `query_on` with `sql` prepared once on this connection (deadpool's statement cache) and then
/// only bound and executed.
pub async fn query_prepared(
    client: &deadpool_postgres::Client,
    timeout: Timeout,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, Problem> {
    let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
    let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
    let statement = client.prepare_typed_cached(sql, &types).await?;
    let rows = in_transaction(client, timeout, true, client.query(&statement, &values)).await;
    if let Err(e) = &rows
        && plan_changed(e)
    {
        // A function's result columns changed under the kept statement (ALTER EXTENSION
        // UPDATE): nothing ran; the next request prepares it again.
        client.statement_cache.remove(sql, &types);
    }
    Ok(rows?)
}

/// Whether a kept statement failed because a function's result columns changed under it.
pub(crate) fn plan_changed(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        d.message()
            .starts_with("cached plan must not change result type")
    })
}

/// Runs `statement` under the statement timeout: alone when it is the connection's own (a
/// statement alone is its own transaction), else in its own transaction that sets it. The
/// requests are queued on the connection at the first poll, in this order, so they travel
/// together; when the statement fails, COMMIT answers ROLLBACK. `prepared`: BEGIN, the timeout
/// and COMMIT are kept statements too (bind and execute only), else one simple query each side.
async fn in_transaction(
    client: &deadpool_postgres::Client,
    timeout: Timeout,
    prepared: bool,
    statement: impl std::future::Future<Output = Result<Vec<Row>, tokio_postgres::Error>>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    if !timeout.needs_own_transaction() {
        return statement.await;
    }
    if !prepared {
        let begin = format!("BEGIN; SET LOCAL statement_timeout = {}", timeout.ms);
        let (began, rows, committed) = tokio::join!(
            client.batch_execute(&begin),
            statement,
            client.batch_execute("COMMIT"),
        );
        began?;
        let rows = rows?;
        committed?;
        return Ok(rows);
    }
    let begin = client.prepare_typed_cached("BEGIN", &[]).await?;
    let set_timeout = client
        .prepare_typed_cached(
            "SELECT pg_catalog.set_config('statement_timeout', $1, true)",
            &[Type::TEXT],
        )
        .await?;
    let commit = client.prepare_typed_cached("COMMIT", &[]).await?;
    let ms = timeout.ms.to_string();
    let ms: [&(dyn ToSql + Sync); 1] = [&ms];
    let (began, timed, rows, committed) = tokio::join!(
        client.execute(&begin, &[]),
        client.execute(&set_timeout, &ms),
        statement,
        client.execute(&commit, &[]),
    );
    began?;
    timed?;
    let rows = rows?;
    committed?;
    Ok(rows)
}

pub(crate) fn one(mut rows: Vec<Row>, sql: &str) -> Result<Row, Problem> {
    if rows.len() != 1 {
        tracing::error!("expected one row, got {}: {sql}", rows.len());
        return Err(Problem::internal());
    }
    Ok(rows.remove(0))
}

/// Like `query`, for statements that always return exactly one row.
pub async fn query_one(
    pool: &Pool,
    timeout: Timeout,
    sql: &str,
    params: &Params<'_>,
) -> Result<Row, Problem> {
    one(query(pool, timeout, sql, params).await?, sql)
}

/// A request's connection: a place on a shared, pipelined one when one can take it (only
/// statements alone under the connection's timeout), else a pooled one of its own.
#[allow(clippy::large_enum_variant)] // one per request, on its task's stack: boxing buys nothing
pub enum Conn {
    Shared(crate::pipeline::Ticket),
    Pooled(deadpool_postgres::Client),
}

impl Conn {
    pub async fn query_one(
        &self,
        timeout: Timeout,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Row, Problem> {
        match self {
            // Pipelined connections exist only when every request's timeout is the
            // connection's own (`pipeline::count`).
            Conn::Shared(ticket) => {
                debug_assert!(timeout.alone());
                ticket.query_one(sql, params).await
            }
            Conn::Pooled(client) => query_one_on(client, timeout, sql, params).await,
        }
    }
}

/// Like `query_on`, for statements that always return exactly one row.
pub async fn query_one_on(
    client: &deadpool_postgres::Client,
    timeout: Timeout,
    sql: &str,
    params: &Params<'_>,
) -> Result<Row, Problem> {
    one(query_on(client, timeout, sql, params).await?, sql)
}

#[cfg(test)]
mod tests {
    use super::pg_config_with;

    #[test]
    fn the_password_comes_from_the_url_else_pgpassword() {
        let c =
            pg_config_with("postgresql://gateway@127.0.0.1/odoo", Some("s3cret".into())).unwrap();
        assert_eq!(c.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(c.get_user(), Some("gateway"));
        let c = pg_config_with(
            "postgresql://gateway:inurl@127.0.0.1/odoo",
            Some("env".into()),
        )
        .unwrap();
        assert_eq!(c.get_password(), Some(&b"inurl"[..]));
        let c = pg_config_with("postgresql://gateway@127.0.0.1/odoo", None).unwrap();
        assert_eq!(c.get_password(), None);
        let c = pg_config_with("postgresql://gateway@127.0.0.1/odoo", Some(String::new())).unwrap();
        assert_eq!(c.get_password(), None);
        assert!(pg_config_with("postgresql://[bad", None).is_err());
    }
}
