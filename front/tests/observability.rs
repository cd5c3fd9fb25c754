//! Issue 7 over real sockets: the traffic log at each level (and never a secret in it: the
//! table is searched for every credential the tests used), batching and the flush at shutdown,
//! a full queue that drops instead of blocking, the error chain of a 5xx, the level read from the
//! settings, the maintenance schedule, `/metrics` (checked by a small exposition-format parser),
//! the statistics endpoints (admin only), the live stream and the dashboard page.
//!
//! Run against a fixture database with the extension (DATABASE_URL, default agw_test_mini):
//! `cargo test -p api_gateway_front --test observability`.
#[path = "http/common.rs"]
mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{:x}-{}", n, std::process::id())
}

/// A server logging at `level` with short batches.
async fn logging_server(
    level: &str,
    f: impl FnOnce(&mut api_gateway_front::config::ServeArgs),
) -> Server {
    let level = level.to_string();
    start_with(move |a| {
        a.log_level = Some(level);
        a.log_batch_ms = 50;
        a.maintenance_interval_s = 0;
        f(a);
    })
    .await
}

/// Stop the server and wait until it returned (the log is flushed by then).
async fn stop(mut s: Server) -> Duration {
    let started = Instant::now();
    s.signal_stop();
    let h = s.handle.take().unwrap();
    tokio::time::timeout(Duration::from_secs(40), h)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    started.elapsed()
}

/// The log rows of one test (by its user agent), as JSON, oldest first.
async fn rows(ua: &str) -> Vec<Value> {
    db().await
        .query(
            "SELECT to_jsonb(l) FROM api_gateway.request_log l WHERE l.user_agent = $1 ORDER BY l.id",
            &[&ua],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, Value>(0))
        .collect()
}

async fn count_rows(ua: &str) -> i64 {
    db().await
        .query_one(
            "SELECT count(*) FROM api_gateway.request_log WHERE user_agent = $1",
            &[&ua],
        )
        .await
        .unwrap()
        .get(0)
}

/// How many log rows contain `secret` anywhere (every column, as text).
async fn rows_containing(secret: &str) -> i64 {
    db().await
        .query_one(
            "SELECT count(*) FROM api_gateway.request_log l WHERE strpos(l::text, $1) > 0",
            &[&secret],
        )
        .await
        .unwrap()
        .get(0)
}

fn admin_key() -> String {
    api_key("admin")
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Traffic with every kind of secret in it; returns the secrets.
async fn secret_traffic(s: &Server, ua: &str) -> Vec<String> {
    use base64::Engine;
    let c = reqwest::Client::builder()
        .user_agent(ua)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (client_id, secret) = new_client(2, &["read", "write"], None).await;
    let pw = unique("pw-never-logged");
    let bogus = unique("bogus-credential-never-logged");
    let wrong = unique("wrong-secret-never-logged");
    let key = admin_key();
    // A token by client_secret_post (secret in the body, token in the answer).
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tok = r.body["access_token"].as_str().unwrap().to_string();
    // One by client_secret_basic.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tok2 = r.body["access_token"].as_str().unwrap().to_string();
    // A wrong secret (401).
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &wrong),
            ])),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // Introspection and revocation carry tokens in their bodies.
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("token", &tok),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", &tok2)])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // API calls: token, API key, a bogus credential, a token in the query string, a password
    // in a JSON body.
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&tok)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.get(s.url("/api/v1/res.partner?limit=1&fields=name"))
            .header("authorization", bearer(&key)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.get(s.url("/api/v1/res.partner/987654321"))
            .header("authorization", bearer(&tok)),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&bogus)),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = send(c.get(s.url(&format!("/api/v1/res.partner?limit=1&access_token={tok}")))).await;
    assert!(r.status >= 400, "{}", r.text);
    let r = send(
        c.put(s.url("/api/v1/res.partner/987654320"))
            .header("authorization", bearer(&tok))
            .json(&json!({"comment": "obs-test", "password": pw, "nested": {"api_key": key}})),
    )
    .await;
    assert!(r.status >= 400, "{}", r.text);
    vec![secret, wrong, tok, tok2, key, bogus, pw, basic]
}

async fn assert_no_secret(secrets: &[String]) {
    for secret in secrets {
        assert_eq!(
            rows_containing(secret).await,
            0,
            "a log row contains the secret {secret}"
        );
    }
}

#[tokio::test]
async fn errors_level_logs_failures_only_and_no_secret() {
    let ua = unique("obs-errors");
    let s = logging_server("errors", |_| {}).await;
    let secrets = secret_traffic(&s, &ua).await;
    stop(s).await;
    let rows = rows(&ua).await;
    // 401 wrong secret, 404, 401 bogus, 4xx query token, 4xx PUT
    assert_eq!(rows.len(), 5, "{rows:#?}");
    for r in &rows {
        assert!(r["status"].as_i64().unwrap() >= 400, "{r}");
        assert!(
            r["request_body"].is_null() && r["response_body"].is_null(),
            "{r}"
        );
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
        assert!(r["error_chain"].is_null(), "{r}");
    }
    let token_fail = rows
        .iter()
        .find(|r| r["path"] == "/api/oauth/token")
        .unwrap();
    assert_eq!(token_fail["status"], 401);
    assert!(
        token_fail["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid_client")
    );
    let query = rows
        .iter()
        .find(|r| r["path"].as_str().unwrap().contains("access_token"))
        .unwrap();
    assert!(
        query["path"]
            .as_str()
            .unwrap()
            .ends_with("access_token=**********"),
        "{query}"
    );
    let missing = rows
        .iter()
        .find(|r| r["path"] == "/api/v1/res.partner/987654321")
        .unwrap();
    assert_eq!(missing["model"], "res.partner");
    assert_eq!(missing["record_id"], 987654321);
    assert_eq!(missing["uid"], 2);
    assert!(missing["client_id"].as_str().unwrap().starts_with("gw_"));
    assert_eq!(missing["client_ip"], "127.0.0.1");
    assert!(missing["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(missing["response_bytes"].as_i64().unwrap() > 0);
    assert_no_secret(&secrets).await;
}

#[tokio::test]
async fn metadata_level_logs_everything_without_bodies_and_no_secret() {
    let ua = unique("obs-metadata");
    let s = logging_server("metadata", |_| {}).await;
    let secrets = secret_traffic(&s, &ua).await;
    stop(s).await;
    let rows = rows(&ua).await;
    assert_eq!(rows.len(), 11, "{rows:#?}");
    for r in &rows {
        assert!(
            r["request_body"].is_null() && r["response_body"].is_null(),
            "{r}"
        );
    }
    let ping = rows
        .iter()
        .find(|r| r["path"] == "/api/v1/ping" && r["status"] == 200)
        .unwrap();
    assert_eq!(ping["uid"], 2);
    assert!(ping["error"].is_null());
    let tokens: Vec<&Value> = rows
        .iter()
        .filter(|r| r["path"] == "/api/oauth/token" && r["status"] == 200)
        .collect();
    assert_eq!(tokens.len(), 2);
    for t in tokens {
        assert!(t["client_id"].as_str().unwrap().starts_with("gw_"), "{t}");
        assert!(t["request_bytes"].as_i64().unwrap() > 0, "{t}");
    }
    let key_call = rows
        .iter()
        .find(|r| r["path"] == "/api/v1/res.partner?limit=1&fields=name")
        .unwrap();
    assert_eq!(key_call["uid"], 2);
    assert!(key_call["client_id"].is_null());
    assert_no_secret(&secrets).await;
}

#[tokio::test]
async fn payloads_level_logs_masked_bodies_and_no_secret() {
    let ua = unique("obs-payloads");
    let s = logging_server("payloads", |a| a.log_body_bytes = 4096).await;
    let secrets = secret_traffic(&s, &ua).await;
    stop(s).await;
    let rows = rows(&ua).await;
    assert_eq!(rows.len(), 11, "{rows:#?}");
    // The OAuth routes' bodies (secrets, tokens) are never captured.
    for r in rows
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/api/oauth/"))
    {
        assert!(
            r["request_body"].is_null() && r["response_body"].is_null(),
            "{r}"
        );
    }
    let ping = rows
        .iter()
        .find(|r| r["path"] == "/api/v1/ping" && r["status"] == 200)
        .unwrap();
    let body: Value = serde_json::from_str(ping["response_body"].as_str().unwrap()).unwrap();
    assert_eq!(body["pong"], true);
    let list = rows
        .iter()
        .find(|r| r["path"] == "/api/v1/res.partner?limit=1&fields=name")
        .unwrap();
    assert!(
        list["response_body"].as_str().unwrap().contains("records"),
        "{list}"
    );
    let put = rows
        .iter()
        .find(|r| r["path"] == "/api/v1/res.partner/987654320")
        .unwrap();
    let sent: Value = serde_json::from_str(put["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["comment"], "obs-test");
    assert_eq!(sent["password"], "**********");
    assert_eq!(sent["nested"]["api_key"], "**********");
    assert!(
        put["response_body"]
            .as_str()
            .unwrap()
            .contains("\"status\""),
        "{put}"
    );
    assert_no_secret(&secrets).await;
}

#[tokio::test]
async fn bodies_are_cut_to_the_limit() {
    let ua = unique("obs-cut");
    let s = logging_server("payloads", |a| a.log_body_bytes = 64).await;
    let t = token(2, &["read", "write"]).await;
    let c = reqwest::Client::builder().user_agent(&ua).build().unwrap();
    let long = "é".repeat(500);
    let r = send(
        c.put(s.url("/api/v1/res.partner/987654319"))
            .header("authorization", bearer(&t))
            .json(&json!({"comment": long})),
    )
    .await;
    assert!(r.status >= 400);
    stop(s).await;
    let rows = rows(&ua).await;
    assert_eq!(rows.len(), 1);
    let body = rows[0]["request_body"].as_str().unwrap();
    assert!(body.ends_with("…[cut]"), "{body}");
    assert!(body.len() <= 64 + "…[cut]".len(), "{body}");
    assert_eq!(
        rows[0]["request_bytes"].as_i64().unwrap() as usize,
        json!({"comment": long}).to_string().len()
    );
}

#[tokio::test]
async fn batches_are_one_call_each_and_shutdown_flushes_the_rest() {
    let ua = unique("obs-batch");
    let s = logging_server("metadata", |a| {
        a.log_batch_ms = 60_000;
        a.log_batch_rows = 10;
        a.metrics_public = true;
    })
    .await;
    let c = reqwest::Client::builder().user_agent(&ua).build().unwrap();
    for _ in 0..25 {
        let r = send(c.get(s.url("/api/v1/res.partner/987654321"))).await;
        assert_eq!(r.status, 401);
    }
    // Two full batches are written at once; the last five wait for the timer (a minute).
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_rows(&ua).await < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count_rows(&ua).await, 20);
    let m = metrics(&s, None).await;
    assert_eq!(m.value("api_gateway_log_batches_total", &[]), Some(2.0));
    assert_eq!(
        m.value("api_gateway_log_rows_written_total", &[]),
        Some(20.0)
    );
    assert_eq!(
        m.value("api_gateway_log_records_queued_total", &[]),
        Some(25.0)
    );
    // Shutdown writes the rest, without waiting for the timer.
    // (The batch timer is a minute: a shutdown that waited for it would take that long.)
    let took = stop(s).await;
    assert!(took < Duration::from_secs(45), "{took:?}");
    assert_eq!(count_rows(&ua).await, 25);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_and_never_blocks_a_request() {
    let ua = unique("obs-full");
    let s = logging_server("metadata", |a| {
        a.log_queue = 2;
        a.log_batch_rows = 2;
        a.log_batch_ms = 10;
        a.metrics_public = true;
    })
    .await;
    // Block the writer: its insert waits for the rollup table.
    let lock = db().await;
    lock.batch_execute("BEGIN; LOCK TABLE api_gateway.request_stats IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let c = reqwest::Client::builder().user_agent(&ua).build().unwrap();
    // The writer stays blocked until the lock is released below: a request that waited for the
    // log would never finish, so this bound detects a hang, not a speed (the machine may be busy).
    tokio::time::timeout(Duration::from_secs(120), async {
        for _ in 0..40 {
            let r = send(c.get(s.url("/api/v1/res.partner/987654321"))).await;
            assert_eq!(r.status, 401);
        }
    })
    .await
    .expect("requests answered while the log writer was blocked");
    let m = metrics(&s, None).await;
    let queued = m
        .value("api_gateway_log_records_queued_total", &[])
        .unwrap();
    let dropped = m.value("api_gateway_log_queue_dropped_total", &[]).unwrap();
    assert_eq!(queued + dropped, 40.0);
    assert!(dropped >= 30.0, "dropped {dropped}");
    lock.batch_execute("COMMIT").await.unwrap();
    stop(s).await;
    assert_eq!(count_rows(&ua).await as f64, queued);
}

#[tokio::test]
async fn server_errors_keep_their_error_chain() {
    let ua = unique("obs-5xx");
    let s = logging_server("errors", |a| a.statement_timeout_ms = 300).await;
    let c = db().await;
    let id: i32 = c
        .query_one(
            "INSERT INTO res_partner (name, type, active, company_id) VALUES ('obs-timeout', 'contact', true, 1) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    c.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM res_partner WHERE id = {id} FOR UPDATE"
    ))
    .await
    .unwrap();
    let t = token(2, &["read", "write"]).await;
    let h = reqwest::Client::builder().user_agent(&ua).build().unwrap();
    let r = send(
        h.patch(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "obs-timeout-2"})),
    )
    .await;
    assert_eq!(r.status, 504, "{}", r.text);
    c.batch_execute("ROLLBACK").await.unwrap();
    c.execute("DELETE FROM res_partner WHERE id = $1", &[&id])
        .await
        .unwrap();
    stop(s).await;
    let rows = rows(&ua).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], 504);
    let chain = rows[0]["error_chain"].as_str().unwrap();
    assert!(
        chain.contains("57014") && chain.contains("statement timeout"),
        "{chain}"
    );
    assert!(
        rows[0]["error"].as_str().unwrap().starts_with("timeout"),
        "{}",
        rows[0]
    );
    assert_eq!(rows_containing(&t).await, 0);
}

#[tokio::test]
async fn the_level_follows_the_settings() {
    let ua_a = unique("obs-settings-a");
    let ua_b = unique("obs-settings-b");
    let c = db().await;
    c.batch_execute("UPDATE api_gateway.settings SET log_level = 'errors'")
        .await
        .unwrap();
    let s = start_with(|a| {
        a.log_level_refresh_s = 1;
        a.log_batch_ms = 50;
        a.maintenance_interval_s = 0;
    })
    .await;
    let t = token(2, &["read"]).await;
    let get = |ua: &str| {
        reqwest::Client::builder()
            .user_agent(ua)
            .build()
            .unwrap()
            .get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&t))
    };
    assert_eq!(send(get(&ua_a)).await.status, 200);
    c.batch_execute("UPDATE api_gateway.settings SET log_level = 'metadata'")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(send(get(&ua_b)).await.status, 200);
    c.batch_execute("UPDATE api_gateway.settings SET log_level = 'errors'")
        .await
        .unwrap();
    stop(s).await;
    assert_eq!(count_rows(&ua_a).await, 0);
    assert_eq!(count_rows(&ua_b).await, 1);
}

#[tokio::test]
async fn maintenance_runs_on_schedule_from_several_fronts() {
    let started: std::time::SystemTime = db()
        .await
        .query_one("SELECT now()", &[])
        .await
        .unwrap()
        .get(0);
    let opts = |a: &mut api_gateway_front::config::ServeArgs| {
        a.maintenance_interval_s = 1;
        a.metrics_public = true;
    };
    let s1 = start_with(opts).await;
    let s2 = start_with(opts).await;
    let c = db().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM api_gateway.maintenance_run WHERE last_run_at > $1",
                &[&started],
            )
            .await
            .unwrap()
            .get(0);
        if n == 9 {
            break;
        }
        assert!(Instant::now() < deadline, "the nine jobs did not run ({n})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut ran = 0.0;
    for s in [&s1, &s2] {
        let m = metrics(s, None).await;
        for job in [
            "logs",
            "webhook_jobs",
            "secret_display",
            "tokens",
            "throttles",
            "upstream_keys",
            "idempotency",
            "security_changes",
            "feeds",
        ] {
            ran += m
                .value(
                    "api_gateway_maintenance_runs_total",
                    &[("job", job), ("outcome", "ran")],
                )
                .unwrap_or(0.0);
            assert!(
                m.value(
                    "api_gateway_maintenance_last_run_timestamp_seconds",
                    &[("job", job)]
                )
                .unwrap()
                    > 0.0
            );
        }
        assert_eq!(
            m.value(
                "api_gateway_maintenance_runs_total",
                &[("job", "all"), ("outcome", "error")]
            ),
            None
        );
    }
    assert!(ran >= 9.0);
    stop(s1).await;
    stop(s2).await;
}

// ---------- /metrics ----------

/// One sample of the exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A strict reader of the text format (version 0.0.4): HELP/TYPE before their samples, valid
/// names, quoted and escaped label values, float values, cumulative histogram buckets ending
/// with +Inf = _count.
fn parse_exposition(text: &str) -> Exposition {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("bad comment: {line}"));
            assert!(valid_name(name), "bad name in {line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "{line}"
                );
                assert!(
                    types.insert(name.to_string(), t.to_string()).is_none(),
                    "TYPE twice: {line}"
                );
            }
            continue;
        }
        let (name_labels, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match name_labels.split_once('{') {
            None => (name_labels.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(valid_name(&key), "bad label name in {line}");
                    assert_eq!(chars.next(), Some('"'), "unquoted label value in {line}");
                    let mut v = String::new();
                    loop {
                        match chars.next() {
                            Some('\\') => match chars.next() {
                                Some('n') => v.push('\n'),
                                Some('\\') => v.push('\\'),
                                Some('"') => v.push('"'),
                                other => panic!("bad escape {other:?} in {line}"),
                            },
                            Some('"') => break,
                            Some(c) => v.push(c),
                            None => panic!("unterminated label value in {line}"),
                        }
                    }
                    labels.insert(key, v);
                    match chars.next() {
                        Some(',') | None => {}
                        other => panic!("unexpected {other:?} in {line}"),
                    }
                }
                (name.to_string(), labels)
            }
        };
        assert!(valid_name(&name), "bad metric name: {line}");
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(&name)
            .to_string();
        assert!(
            types.contains_key(&family) || types.contains_key(&name),
            "sample before its TYPE: {line}"
        );
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    // Histograms: per label set (without le), buckets cumulative and +Inf == _count.
    for (family, t) in &types {
        if t != "histogram" {
            continue;
        }
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let mut key = s.labels.clone();
            let le = key.remove("le").expect("bucket without le");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            series
                .entry(format!("{key:?}"))
                .or_default()
                .push((le, s.value));
        }
        assert!(!series.is_empty(), "histogram {family} without buckets");
        for (key, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{key} not cumulative"
            );
            assert_eq!(
                buckets.last().unwrap().0,
                f64::INFINITY,
                "{family}{key} has no +Inf bucket"
            );
            let count = samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && format!("{:?}", s.labels) == key)
                .expect("histogram without _count");
            assert_eq!(buckets.last().unwrap().1, count.value, "{family}{key}");
        }
    }
    Exposition { types, samples }
}

async fn metrics(s: &Server, credential: Option<&str>) -> Exposition {
    let mut req = http().get(s.url("/metrics"));
    if let Some(c) = credential {
        req = req.header("authorization", bearer(c));
    }
    let r = send(req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&r.text)
}

#[tokio::test]
async fn metrics_parse_and_need_admin_unless_public() {
    let s = logging_server("errors", |_| {}).await;
    let t = token(2, &["read"]).await;
    for _ in 0..3 {
        assert_eq!(
            send(
                http()
                    .get(s.url("/api/v1/ping"))
                    .header("authorization", bearer(&t))
            )
            .await
            .status,
            200
        );
    }
    assert_eq!(
        send(
            http()
                .get(s.url("/api/v1/ping"))
                .header("authorization", bearer("nope-nope-nope"))
        )
        .await
        .status,
        401
    );
    assert_eq!(send(http().get(s.url("/no/such/route"))).await.status, 404);
    // Auth: none 401, a non-admin key 403, a read token of an admin 403, the admin key 200.
    let r = send(http().get(s.url("/metrics"))).await;
    assert_problem(&r, 401);
    let r = send(
        http()
            .get(s.url("/metrics"))
            .header("authorization", bearer(&api_key("demo"))),
    )
    .await;
    assert_problem(&r, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("scope=\"admin\"")
    );
    let r = send(
        http()
            .get(s.url("/metrics"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 403);
    let m = metrics(&s, Some(&admin_key())).await;
    for (family, t) in [
        ("api_gateway_http_requests_total", "counter"),
        ("api_gateway_http_request_duration_seconds", "histogram"),
        ("api_gateway_gate_decisions_total", "counter"),
        ("api_gateway_pool_connections", "gauge"),
        ("api_gateway_pipelined_connections", "gauge"),
        ("api_gateway_log_queue_dropped_total", "counter"),
        ("api_gateway_log_queue_length", "gauge"),
        ("api_gateway_database_up", "gauge"),
        ("api_gateway_front_info", "gauge"),
    ] {
        assert_eq!(m.types.get(family).map(String::as_str), Some(t), "{family}");
    }
    assert!(
        m.value(
            "api_gateway_http_requests_total",
            &[
                ("route", "/api/v1/ping"),
                ("method", "GET"),
                ("status", "200")
            ]
        )
        .unwrap()
            >= 3.0
    );
    assert_eq!(
        m.value(
            "api_gateway_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert!(
        m.value(
            "api_gateway_gate_decisions_total",
            &[("status", "200"), ("error", "none")]
        )
        .unwrap()
            >= 3.0
    );
    assert_eq!(
        m.value(
            "api_gateway_gate_decisions_total",
            &[("status", "401"), ("error", "invalid_token")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value("api_gateway_pool_connections", &[("state", "max")]),
        Some(4.0)
    );
    assert!(
        m.value("api_gateway_pool_connections", &[("state", "size")])
            .unwrap()
            >= 1.0
    );
    assert_eq!(
        m.value("api_gateway_log_level", &[("level", "errors")]),
        Some(1.0)
    );
    assert_eq!(m.value("api_gateway_database_up", &[]), Some(1.0));
    let webhooks = db()
        .await
        .query_one(
            "SELECT to_regclass('api_gateway.webhook_job') IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get::<_, bool>(0);
    assert_eq!(m.types.contains_key("api_gateway_webhook_jobs"), webhooks);
    stop(s).await;

    let s = logging_server("errors", |a| a.metrics_public = true).await;
    let m = metrics(&s, None).await;
    assert_eq!(
        m.value(
            "api_gateway_front_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(m.types.contains_key("api_gateway_pool_connections"));
    stop(s).await;
}

// ---------- statistics, live stream, dashboard ----------

const STATS: [&str; 14] = [
    "overview",
    "traffic",
    "top-endpoints",
    "slowest-endpoints",
    "top-ips",
    "latency",
    "methods",
    "status",
    "health",
    "kpis",
    "webhooks",
    "faults",
    "users",
    "faults.csv",
];

#[tokio::test]
async fn statistics_need_the_admin_scope() {
    let s = logging_server("errors", |_| {}).await;
    let read_token = token(2, &["read", "write", "delete"]).await;
    let admin_token = token(2, &["admin"]).await;
    let demo = api_key("demo");
    for name in STATS.iter().chain(["stream", "log/1"].iter()) {
        let url = s.url(&format!("/api/gateway/stats/{name}"));
        let r = send(http().get(&url)).await;
        assert_problem(&r, 401);
        for cred in [&demo, &read_token] {
            let r = send(http().get(&url).header("authorization", bearer(cred))).await;
            assert_problem(&r, 403);
            assert_eq!(kind(&r), "insufficient-scope", "{name}");
            assert!(
                r.header("www-authenticate")
                    .unwrap()
                    .contains("scope=\"admin\""),
                "{name}"
            );
        }
        if *name == "stream" {
            continue;
        }
        for cred in [admin_key(), admin_token.clone()] {
            let r = send(http().get(&url).header("authorization", bearer(&cred))).await;
            if *name == "log/1" {
                assert!(r.status == 200 || r.status == 404, "{name}: {}", r.text);
            } else {
                assert_eq!(r.status, 200, "{name}: {}", r.text);
                assert_eq!(r.header("cache-control"), Some("no-store"), "{name}");
            }
        }
    }
    let r = send(
        http()
            .get(s.url("/api/gateway/stats/nope"))
            .header("authorization", bearer(&admin_key())),
    )
    .await;
    assert_problem(&r, 404);
    let r = send(
        http()
            .get(s.url("/api/gateway/stats/overview?range=7d"))
            .header("authorization", bearer(&admin_key())),
    )
    .await;
    assert_problem(&r, 400);
    let r = send(
        http()
            .get(s.url("/api/gateway/stats/overview?status=6xx"))
            .header("authorization", bearer(&admin_key())),
    )
    .await;
    assert_problem(&r, 400);
    stop(s).await;
}

#[tokio::test]
async fn statistics_reflect_real_traffic() {
    let ua = unique("obs-stats");
    let s = logging_server("metadata", |_| {}).await;
    let key = admin_key();
    let get_json = |path: String| {
        let key = key.clone();
        async move {
            let r = send(http().get(path).header("authorization", bearer(&key))).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        }
    };
    let before = get_json(s.url("/api/gateway/stats/overview?user=5")).await;
    let total_before = before["kpis"]["total_requests"].as_i64().unwrap();
    let demo = api_key("demo");
    let c = reqwest::Client::builder().user_agent(&ua).build().unwrap();
    for _ in 0..5 {
        assert_eq!(
            send(
                c.get(s.url("/api/v1/ping"))
                    .header("authorization", bearer(&demo))
            )
            .await
            .status,
            200
        );
    }
    let missing = format!(
        "/api/v1/res.partner/{}",
        900_000_000 + (std::process::id() % 1_000_000)
    );
    assert_eq!(
        send(
            c.get(s.url(&missing))
                .header("authorization", bearer(&demo))
        )
        .await
        .status,
        404
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // one batch
    let o = get_json(s.url("/api/gateway/stats/overview?user=5")).await;
    assert!(
        o["kpis"]["total_requests"].as_i64().unwrap() >= total_before + 6,
        "{}",
        o["kpis"]
    );
    assert_eq!(o["range"], "24h");
    assert_eq!(o["bucket"], "hour");
    assert_eq!(o["traffic"].as_array().unwrap().len(), 24);
    assert_eq!(o["front_log_level"], "metadata");
    for key in [
        "top_endpoints",
        "slowest_endpoints",
        "top_ips",
        "latency",
        "methods",
        "status",
        "health",
        "kpis",
        "faults",
    ] {
        assert!(!o[key].is_null(), "{key}");
    }
    assert_eq!(o["latency"].as_array().unwrap().len(), 5);
    assert_eq!(o["status"].as_array().unwrap().len(), 4);
    // (Which endpoints are on top depends on what else ran against this database.)
    let top = o["top_endpoints"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 5);
    for e in top {
        assert!(
            e["method"].is_string()
                && e["endpoint"].is_string()
                && e["requests"].as_i64().unwrap() > 0,
            "{e}"
        );
    }
    assert!(
        o["methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["method"] == "GET")
    );
    let fault = o["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == missing.as_str())
        .expect("the 404 in the fault feed")
        .clone();
    assert_eq!(fault["status"], 404);
    assert_eq!(fault["uid"], 5);
    // Status filter: 2xx only has no faults; 4xx has ours.
    let o2 = get_json(s.url("/api/gateway/stats/faults?user=5&status=2xx")).await;
    assert_eq!(o2["faults"].as_array().unwrap().len(), 0);
    let o4 = get_json(s.url("/api/gateway/stats/faults?user=5&status=4xx")).await;
    assert!(
        o4["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == missing.as_str())
    );
    // The inspect view: the full record by id and time.
    let at = fault["at"].as_str().unwrap();
    let rec = get_json(s.url(&format!(
        "/api/gateway/stats/log/{}?at={}",
        fault["id"],
        percent_encoding::utf8_percent_encode(at, percent_encoding::NON_ALPHANUMERIC)
    )))
    .await;
    assert_eq!(rec["path"], missing.as_str());
    assert_eq!(rec["user_agent"], ua.as_str());
    assert_eq!(rec["model"], "res.partner");
    assert_eq!(rec["client_ip"], "127.0.0.1");
    // Other ranges.
    let o = get_json(s.url("/api/gateway/stats/traffic?range=30d")).await;
    assert_eq!(o["traffic"].as_array().unwrap().len(), 30);
    assert_eq!(o["bucket"], "day");
    let o = get_json(s.url("/api/gateway/stats/traffic?range=1y")).await;
    assert_eq!(o["traffic"].as_array().unwrap().len(), 12);
    let users = get_json(s.url("/api/gateway/stats/users")).await;
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["uid"] == 5 && u["login"] == "demo"),
        "{users}"
    );
    // CSV export.
    let r = send(
        http()
            .get(s.url("/api/gateway/stats/faults.csv?user=5"))
            .header("authorization", bearer(&key)),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert!(r.text.starts_with(
        "id,at,method,path,status,latency_ms,client_ip,uid,client_id,user_agent,error\r\n"
    ));
    assert!(
        r.text.contains(&missing),
        "{}",
        &r.text[..r.text.len().min(2000)]
    );
    // The monitoring routes themselves are not logged when they succeed.
    assert_eq!(
        db().await
            .query_one(
                "SELECT count(*) FROM api_gateway.request_log WHERE path LIKE '/api/gateway/stats/%' AND status < 400",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    stop(s).await;
}

/// Read an SSE response until `pattern` shows up (or time runs out).
async fn read_until(
    resp: &mut reqwest::Response,
    buf: &mut String,
    pattern: &str,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if buf.contains(pattern) {
            return true;
        }
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return buf.contains(pattern),
        }
    }
}

#[tokio::test]
async fn the_live_stream_carries_notifications_and_ends_at_shutdown() {
    let s = logging_server("errors", |_| {}).await;
    let mut resp = http()
        .get(s.url("/api/gateway/stats/stream"))
        .header("authorization", bearer(&admin_key()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buf = String::new();
    assert!(
        read_until(&mut resp, &mut buf, "event: hello", Duration::from_secs(5)).await,
        "{buf}"
    );
    // Wait for the LISTEN connection, then make a logged request (a 401).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline && !seen {
        assert_eq!(
            send(http().get(s.url("/api/v1/res.partner/987654321")))
                .await
                .status,
            401
        );
        seen = read_until(&mut resp, &mut buf, "event: log", Duration::from_secs(1)).await;
    }
    assert!(seen, "no log event: {buf}");
    let data = buf
        .lines()
        .skip_while(|l| *l != "event: log")
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let v: Value = serde_json::from_str(data).unwrap();
    assert!(
        v["rows"].as_i64().unwrap() >= 1 && v["faults"].as_i64().unwrap() >= 1,
        "{v}"
    );
    // Shutdown ends the stream instead of waiting for it.
    // (A stream lives 15 minutes: a shutdown that waited for it would take that long.)
    let took = stop(s).await;
    assert!(took < Duration::from_secs(60), "{took:?}");
    let mut rest = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(b)) = resp.chunk().await {
            rest.push_str(&String::from_utf8_lossy(&b));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream stayed open");
}

#[tokio::test]
async fn the_dashboard_page_and_its_assets_are_served() {
    let s = logging_server("errors", |_| {}).await;
    let r = send(http().get(s.url("/api/gateway/dashboard"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("script-src 'self'")
            && !csp.contains("script-src 'self' 'unsafe")
    );
    for id in [
        "chart-traffic",
        "chart-health",
        "chart-top-endpoints",
        "chart-slowest",
        "chart-top-ips",
        "chart-latency",
        "chart-methods",
        "chart-status",
        "chart-webhooks",
    ] {
        assert!(r.text.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(!r.text.contains("https://"), "no CDN");
    let js = send(http().get(s.url("/api/gateway/dashboard/dashboard.js"))).await;
    assert_eq!(js.status, 200);
    assert!(js.text.contains("sessionStorage") && !js.text.contains("document.cookie ="));
    let chart = http()
        .get(s.url("/api/gateway/dashboard/chart.umd.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(chart.status(), 200);
    let bytes = chart.bytes().await.unwrap();
    use sha2::Digest;
    let sum: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sums = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/chartjs/SHA256SUMS"
    ))
    .unwrap();
    assert!(sums.contains(&format!("{sum}  chart.umd.min.js")));
    assert_eq!(
        send(http().get(s.url("/api/gateway/dashboard/chart.js-LICENSE.md")))
            .await
            .status,
        200
    );
    assert_problem(
        &send(http().get(s.url("/api/gateway/dashboard/nope.js"))).await,
        404,
    );
    stop(s).await;
    let s = logging_server("errors", |a| a.dashboard = false).await;
    assert_eq!(
        send(http().get(s.url("/api/gateway/dashboard")))
            .await
            .status,
        404
    );
    assert_eq!(
        send(
            http()
                .get(s.url("/api/gateway/stats/overview"))
                .header("authorization", bearer(&admin_key()))
        )
        .await
        .status,
        404
    );
    stop(s).await;
}

/// Issue 19 (security review): secrets the log was not told about, percent-encoded secrets,
/// `?t=`, any parameter of the OAuth routes, and JSON members named `pass_word`, `bearer`,
/// `session` are masked in the traffic log at the payloads level.
#[tokio::test]
async fn masking_gaps_of_the_security_review_are_closed() {
    let ua = unique("obs-review");
    let s = logging_server("payloads", |a| a.log_body_bytes = 4096).await;
    let c = reqwest::Client::builder()
        .user_agent(&ua)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (client_id, secret) = new_client(2, &["read", "write"], None).await;
    let tok = token_for(&client_id, &secret).await;
    let other_tok = token_for(&client_id, &secret).await;
    let key = admin_key();
    let other_key = api_key("admin_other_scope");
    // a key pasted into the path (authorized with something else)
    send(
        c.get(s.url(&format!("/api/v1/{other_key}")))
            .header("authorization", bearer(&tok)),
    )
    .await;
    // this request's own key, every byte percent-encoded inside ?domain=
    let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    send(
        c.get(s.url(&format!(
            "/api/v1/res.partner?domain=%5B%28%27ref%27%2C%27%3D%27%2C%27{encoded}%27%29%5D"
        )))
        .header("authorization", bearer(&key)),
    )
    .await;
    // another token in ?t=
    send(
        c.get(s.url(&format!("/api/v1/ping?t={other_tok}")))
            .header("authorization", bearer(&tok)),
    )
    .await;
    // a client secret in any parameter of the token route
    send(
        c.post(s.url(&format!("/api/oauth/token?x={secret}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials"),
    )
    .await;
    // members whose names only look like secrets once separators go
    let pw = unique("pass-word-never-logged");
    let session = unique("session-never-logged");
    let bearer_value = unique("bearer-never-logged");
    send(
        c.put(s.url("/api/v1/res.partner/987654318"))
            .header("authorization", bearer(&tok))
            .json(&json!({"comment": "obs-review", "pass_word": pw, "session": session, "bearer": bearer_value})),
    )
    .await;
    stop(s).await;
    let rows = rows(&ua).await;
    assert!(rows.len() >= 5, "{rows:#?}");
    let put = rows
        .iter()
        .find(|r| r["path"] == "/api/v1/res.partner/987654318")
        .expect("the PUT is logged");
    let sent: Value = serde_json::from_str(put["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["comment"], "obs-review");
    for member in ["pass_word", "session", "bearer"] {
        assert_eq!(sent[member], "**********", "{member}: {sent}");
    }
    assert!(
        rows.iter().any(|r| r["path"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/**********")),
        "{rows:#?}"
    );
    assert_no_secret(&[
        other_key,
        key,
        encoded,
        other_tok,
        secret,
        pw,
        session,
        bearer_value,
    ])
    .await;
}

/// Issue 19: the front's own process log (one line per request) never prints a key that was
/// pasted into a URL path, even percent-encoded.
#[test]
fn the_process_log_masks_keys_in_paths() {
    use std::io::{BufRead, BufReader, Read, Write};
    let key = api_key("admin_rpc_scope");
    let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_api-gateway"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--webhooks",
            "false",
            "--maintenance-interval-s",
            "0",
            "--pool-size",
            "2",
        ])
        .env("DATABASE_URL", database_url())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the api-gateway binary starts");
    // lines through a channel, so that every wait is bounded
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || lines.recv_timeout(Duration::from_secs(30)).ok();
    let mut seen = String::new();
    let addr = loop {
        let Some(line) = next() else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the front did not say where it listens: {seen}{err}");
        };
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect::<String>();
        }
    };
    for path in [format!("/api/v1/{key}"), format!("/api/v1/{encoded}")] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    }
    // the request lines are written when the answers are: wait for both
    let mut requests = 0;
    let mut masked = 0;
    while requests < 2 {
        let Some(line) = next() else { break };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("GET /api/v1/") {
            requests += 1;
            if line.contains("GET /api/v1/**********") {
                masked += 1;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(masked, 2, "{seen}");
    assert!(!seen.contains(&key) && !seen.contains(&encoded), "{seen}");
}

/// Issue 19: a failed maintenance run is reported with its SQLSTATE and message, not as
/// tokio-postgres's bare "db error".
#[tokio::test]
async fn maintenance_failures_say_the_sqlstate_and_the_message() {
    let c = db().await;
    let role = unique("agw_maint").replace('-', "_");
    c.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{role}'; REVOKE ALL ON SCHEMA api_gateway FROM {role}"
    ))
    .await
    .unwrap();
    // the same database as a role without any grant (over TCP with a password, as the front's
    // role connects: the Unix socket may use peer authentication): run_maintenance is refused
    let url = least_privilege::front_url(&database_url()).replace(
        &format!("{}:{}@", least_privilege::ROLE, least_privilege::PASSWORD),
        &format!("{role}:{role}@"),
    );
    let args = api_gateway_front::config::ServeArgs::with_database_url(&url);
    let pool = api_gateway_front::db::pool(&args, false).unwrap();
    let obs = api_gateway_front::obs::Obs::new(api_gateway_front::obs::Options::from_args(&args));
    let timeout = api_gateway_front::db::Timeout::own(15000);
    let err = api_gateway_front::obs::maintenance::run_once(&obs, &pool, timeout)
        .await
        .unwrap_err();
    drop(pool);
    c.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
    assert!(err.starts_with("42501: "), "{err}");
    assert!(err.contains("permission denied"), "{err}");
}
