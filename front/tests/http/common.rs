//! Helpers: a real server on 127.0.0.1:<ephemeral> against the fixture database (DATABASE_URL),
//! clients and tokens made with SQL, a raw-socket client for requests reqwest would normalize.
#![allow(dead_code)]
use api_gateway_front::config::ServeArgs;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[path = "../support/least_privilege.rs"]
pub mod least_privilege;

/// Held by the tests that call as uid 8 (jeff, the French user of the project's fixture), so
/// that his rate-limit counter is only counted by one test at a time.
pub static JEFF: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgresql:///agw_test_mini?host=/var/run/postgresql".into())
}

/// Whether the database is the project's own fixture (tests/fixtures/odoo19_mini.sql), whose ids
/// and keys some assertions use.
pub fn mini() -> bool {
    std::env::var("AGW_TEST_FIXTURE").map_or(true, |f| f == "mini")
}

/// The front runs as the least-privileged role (support/least_privilege.rs).
pub fn args() -> ServeArgs {
    let mut a = ServeArgs::with_database_url(&least_privilege::front_url(&database_url()));
    a.webhooks = false;
    a.listen = "127.0.0.1:0".parse().unwrap();
    a.pool_size = 4;
    a.pool_timeout_ms = 3000;
    a.statement_timeout_ms = 10_000;
    a.shutdown_grace_s = 5;
    a.openapi_refresh_s = 60;
    a.trusted_proxies = vec![];
    a.cors_origins = vec![];
    a.expose_models = vec![];
    a.docs = true;
    a.public_url = String::new();
    a.body_limit = 1024 * 1024;
    a
}

pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<Result<(), String>>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Send the shutdown signal (the server then finishes in-flight requests).
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
        if !std::thread::panicking() {
            least_privilege::assert_no_permission_denied();
        }
    }
}

pub async fn start() -> Server {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut ServeArgs)) -> Server {
    least_privilege::capture_log();
    least_privilege::ensure_role(&database_url()).await;
    prepare().await;
    let mut a = args();
    f(&mut a);
    let listener = tokio::net::TcpListener::bind(a.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(api_gateway_front::serve_on(listener, a, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        stop: Some(tx),
        handle: Some(handle),
    }
}

/// A direct connection to the test database.
pub async fn db() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to DATABASE_URL");
    tokio::spawn(conn);
    client
}

/// Idempotent set-up: the users the tests call as get a quota high enough for the whole suite
/// (a limit, so the RateLimit headers are still sent). uid 8 (jeff) and uid 6 (portal) are left
/// to the tests that change their profiles.
pub async fn prepare() {
    let c = db().await;
    c.batch_execute(
        "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window, active, allowed_ips) \
         VALUES (2, 1000000, 'minute', true, NULL), (5, 1000000, 'minute', true, NULL) \
         ON CONFLICT (user_id) DO UPDATE SET rate_limit = 1000000, rate_limit_window = 'minute', \
           active = true, allowed_ips = NULL",
    )
    .await
    .unwrap();
}

/// A new OAuth2 client for `uid` with `scopes` (and an optional IP list): (client_id, secret).
pub async fn new_client(uid: i32, scopes: &[&str], ips: Option<&[&str]>) -> (String, String) {
    let c = db().await;
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let ips: Option<Vec<String>> = ips.map(|v| v.iter().map(|s| s.to_string()).collect());
    let row = c
        .query_one(
            "SELECT client_id, client_secret FROM api_gateway.create_client('http test', $1, $2, $3::text[]::cidr[])",
            &[&uid, &scopes, &ips],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// An access token for a new client of `uid` with `scopes`, issued by SQL.
pub async fn token(uid: i32, scopes: &[&str]) -> String {
    let (id, secret) = new_client(uid, scopes, None).await;
    token_for(&id, &secret).await
}

pub async fn token_for(client_id: &str, secret: &str) -> String {
    let c = db().await;
    let row = c
        .query_one(
            "SELECT status, body FROM api_gateway.issue_token($1, $2, NULL, '127.0.0.1'::inet)",
            &[&client_id, &secret],
        )
        .await
        .unwrap();
    let status: i32 = row.get(0);
    let body: Value = row.get(1);
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The fixture's plaintext Odoo API keys (label → key).
pub fn api_key(label: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/odoo19_mini.keys.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v[label]["key"].as_str().unwrap().to_string()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// An RFC 9457 problem with this status: content type, members, and no SQL text.
pub fn assert_problem(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    assert_eq!(r.body["status"], status, "{}", r.text);
    assert!(
        r.body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{}",
        r.text
    );
    assert!(
        r.body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{}",
        r.text
    );
    let lower = r.text.to_lowercase();
    for leak in ["select ", "api_gateway.", "panicked", "stack backtrace"] {
        assert!(!lower.contains(leak), "leak {leak:?} in {}", r.text);
    }
}

pub fn kind(r: &Resp) -> &str {
    r.body["type"]
        .as_str()
        .unwrap_or("")
        .rsplit(['/', '#'])
        .next()
        .unwrap_or("")
}

/// A raw HTTP/1.1 exchange (for paths and bytes an HTTP library would normalize or refuse).
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

pub async fn raw(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("raw response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Bodies here are small and not chunked unless the server chose so; undo simple chunking.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Raw {
        status,
        head: head.to_string(),
        body,
    }
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A raw request with the usual headers; `extra` ends with "\r\n" per header.
pub fn raw_request(method: &str, path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A fingerprint of the fixture's Odoo data (rows the tests must never change): the original
/// partners, products, users, companies, groups and tags, plus any partner a security test tried
/// to create (names starting with `sec-`).
pub async fn fingerprint() -> String {
    let c = db().await;
    let row = c
        .query_one(
            "SELECT concat_ws('|', \
               (SELECT md5(string_agg(p::text, ',' ORDER BY p.id)) FROM res_partner p WHERE p.id <= 27), \
               (SELECT count(*) FROM res_partner p WHERE p.name LIKE 'sec-%'), \
               (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM product_template t), \
               (SELECT md5(string_agg(u::text, ',' ORDER BY u.id)) FROM res_users u), \
               (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM res_company c), \
               (SELECT md5(string_agg(g::text, ',' ORDER BY g.id)) FROM res_groups g), \
               (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM res_partner_category t))",
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}

/// The `api-gateway` binary serving the test database on a free port, as a process of its own
/// (killed with the returned child): for what only a whole process shows (its memory settings,
/// its connections closing when it ends). Extra `serve` flags and environment as given.
pub fn spawn_front(flags: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_api-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0", "--webhooks", "false"])
        .args(["--maintenance-interval-s", "0"])
        .args(flags)
        .env("DATABASE_URL", database_url())
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the api-gateway binary starts");
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr =
        std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(30)).ok()).find_map(|line| {
            let rest = line.split("listening on http://").nth(1)?;
            Some(
                rest.chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect::<String>(),
            )
        });
    match addr {
        Some(addr) => (child, format!("http://{addr}")),
        None => {
            let _ = child.kill();
            panic!("the front did not say where it listens");
        }
    }
}
