//! The suites run the front and the worker as the role a DBA following the docs would create:
//! `NOSUPERUSER`, given only `api_gateway.grant_front` and `api_gateway.grant_worker`. The
//! superuser URL (DATABASE_URL) is for set-up, fixtures and assertions that read tables.
//!
//! The front's log is captured (a tracing subscriber for the whole test process): a test fails
//! when it ever says "permission denied" (`assert_no_permission_denied`, also run when a test's
//! server or worker is dropped).
#![allow(dead_code)]
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// The front's role (cluster-wide, like any role; its grants are per database).
pub const ROLE: &str = "agw_front";
pub const PASSWORD: &str = "agw_front_pw";

/// The URL the front uses: the fixture database of `url` (the superuser's) over TCP on
/// 127.0.0.1, as the front's role with its password (a cluster whose Unix socket uses peer
/// authentication lets no other role in there, as in a real deployment).
pub fn front_url(url: &str) -> String {
    let c: tokio_postgres::Config = url.parse().expect("a valid DATABASE_URL");
    let db = c
        .get_dbname()
        .expect("DATABASE_URL names a database")
        .to_string();
    let port = c
        .get_ports()
        .first()
        .copied()
        .or_else(|| std::env::var("PGPORT").ok().and_then(|p| p.parse().ok()))
        .unwrap_or(5432);
    format!("postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{db}")
}

/// Create the role when missing and grant it what the front and the worker need in the
/// database of `superuser_url` (idempotent; safe when several test processes race).
pub async fn ensure_role(superuser_url: &str) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| set_up_role(superuser_url, ROLE)).await;
}

/// `role` (password [`PASSWORD`]) made or reset as an ordinary login role with only
/// `grant_front` and `grant_worker`, as a DBA following the docs would: [`ROLE`], or a test's
/// own role (one with settings of its own).
pub async fn set_up_role(superuser_url: &str, role: &str) {
    let (c, conn) = tokio_postgres::connect(superuser_url, tokio_postgres::NoTls)
        .await
        .expect("connect to DATABASE_URL");
    tokio::spawn(conn);
    for attempt in 0..20 {
        let r = c
            .batch_execute(&format!(
                "DO $$ BEGIN \
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
                     CREATE ROLE {role} NOSUPERUSER NOCREATEDB NOCREATEROLE LOGIN PASSWORD '{PASSWORD}'; \
                   END IF; END $$; \
                 ALTER ROLE {role} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS LOGIN PASSWORD '{PASSWORD}'; \
                 BEGIN; SELECT pg_advisory_xact_lock(hashtext('agw test grants')); \
                 SELECT api_gateway.grant_front('{role}'), api_gateway.grant_worker('{role}'); COMMIT;"
            ))
            .await;
        match r {
            Ok(()) => break,
            // Another process created the role or granted at the same moment: again.
            Err(e) if attempt < 19 => {
                let _ = c.batch_execute("ROLLBACK").await;
                eprintln!("least privilege set-up, retrying: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot set up the role {role}: {e}"),
        }
    }
    let row = c
        .query_one(
            "SELECT rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap();
    assert!(
        !row.get::<_, bool>(0) && !row.get::<_, bool>(1) && !row.get::<_, bool>(2),
        "{role} must be an ordinary role"
    );
}

/// [`front_url`] for another role set up by [`set_up_role`].
pub fn front_url_as(url: &str, role: &str) -> String {
    front_url(url).replacen(&format!("://{ROLE}:"), &format!("://{role}:"), 1)
}

fn buffer() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        buffer()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        // Shown as well when asked for (the test harness does not capture other threads).
        if std::env::var_os("RUST_LOG").is_some() {
            std::io::stderr().write_all(b)?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Capture the log of every front and worker in this process (info and above, and what
/// RUST_LOG asks for). Idempotent.
pub fn capture_log() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// The captured log so far.
pub fn captured_log() -> String {
    String::from_utf8_lossy(&buffer().lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Panics when the captured log says "permission denied" (a grant the docs do not give).
pub fn assert_no_permission_denied() {
    let log = captured_log();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("permission denied"))
        .collect();
    assert!(
        bad.is_empty(),
        "the front's log says permission denied (its role was given only grant_front/grant_worker):\n{}",
        bad.join("\n")
    );
}
