//! Traffic logs, their rollups, the statistics functions and the maintenance jobs.
use api_gateway_tests::{connect_plain, connect_to, sqlstate};
use serde_json::{Value, json};

const UID: i32 = 987_654;

fn log_rows(n: usize, status: i32, latency: f64) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"method": "GET", "path": format!("/api/v1/res.partner/{}", i + 1), "model": "res.partner",
                       "record_id": i + 1, "status": status, "latency_ms": latency, "client_ip": "192.0.2.7",
                       "uid": UID, "user_agent": "test"})
            })
            .collect(),
    )
}

#[test]
fn logged_requests_feed_every_statistic() {
    let mut db = connect_plain();
    let mut tx = db.transaction().unwrap();
    let n: i32 = tx
        .query_one(
            "SELECT api_gateway.log_requests($1)",
            &[&log_rows(8, 200, 5.0)],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 8);
    tx.query_one(
        "SELECT api_gateway.log_requests($1)",
        &[&log_rows(2, 500, 700.0)],
    )
    .unwrap();
    tx.query_one(
        "SELECT api_gateway.log_requests($1)",
        &[&log_rows(1, 429, 30.0)],
    )
    .unwrap();
    let range = "now() - interval '2 hours', now() + interval '1 hour'";
    let traffic: (i64, i64, i64) = {
        let r = tx
            .query_one(&format!("SELECT sum(requests)::int8, sum(errors)::int8, sum(rate_limited)::int8 FROM api_gateway.stats_traffic({range}, 'hour', {UID})"), &[])
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(traffic, (11, 3, 1));
    let top = tx
        .query_one(
            &format!(
                "SELECT endpoint, requests FROM api_gateway.stats_top_endpoints({range}, {UID})"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(top.get::<_, String>(0), "/api/v1/res.partner/{id}");
    assert_eq!(top.get::<_, i64>(1), 11);
    let hist: Vec<(String, i64)> = tx
        .query(
            &format!(
                "SELECT range, requests FROM api_gateway.stats_latency_histogram({range}, {UID})"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        hist,
        vec![
            ("<10 ms".into(), 8),
            ("10-50 ms".into(), 1),
            ("50-100 ms".into(), 0),
            ("100-500 ms".into(), 0),
            (">500 ms".into(), 2)
        ]
    );
    let status: Vec<i64> = tx
        .query(
            &format!("SELECT requests FROM api_gateway.stats_status({range}, {UID})"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(status, vec![8, 0, 2, 1]);
    let only_5xx: i64 = tx
        .query_one(
            &format!(
                "SELECT sum(requests)::int8 FROM api_gateway.stats_methods({range}, {UID}, '5xx')"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(only_5xx, 2);
    let health = tx
        .query_one(
            &format!("SELECT score, error_rate FROM api_gateway.stats_health({range}, {UID})"),
            &[],
        )
        .unwrap();
    let score: i32 = health.get(0);
    assert!(
        (0..100).contains(&score),
        "errors and slow requests lower the score: {score}"
    );
    assert!((health.get::<_, f64>(1) - 2.0 / 11.0).abs() < 1e-9);
    let kpis: Value = tx
        .query_one(
            &format!("SELECT api_gateway.stats_kpis({range}, {UID})"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kpis["total_requests"], 11);
    assert_eq!(kpis["rate_limited"], 1);
    // A percentile is the upper bound of its histogram bucket: 5 ms lies in [5, 10).
    assert_eq!(kpis["p50_latency_ms"], 10.0);
    let ips: i64 = tx
        .query_one(&format!("SELECT requests FROM api_gateway.stats_top_ips({range}, 10) WHERE client_ip = '192.0.2.7'"), &[])
        .unwrap()
        .get(0);
    assert!(ips >= 11);
    tx.rollback().unwrap();
}

#[test]
fn log_requests_refuses_what_is_not_a_list_of_records() {
    let mut db = connect_plain();
    for bad in [json!({"method": "GET"}), json!("x")] {
        let err = db
            .query_one("SELECT api_gateway.log_requests($1)", &[&bad])
            .unwrap_err();
        assert_eq!(sqlstate(&err), "22023");
    }
    let err = db
        .query_one("SELECT api_gateway.log_requests('[{\"method\":\"GET\",\"path\":\"/x\",\"status\":\"abc\",\"latency_ms\":1}]')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22P02");
}

#[test]
fn maintenance_applies_retention_and_records_its_runs() {
    let db_name = &api_gateway_tests::scratch_db("maintenance");
    let mut admin = connect_to("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .unwrap();
    let mut db = connect_to(db_name);
    db.batch_execute(
        "CREATE EXTENSION api_gateway;
         UPDATE api_gateway.settings SET log_retention_days = 30;
         -- an old day's partition, as ensure_log_partitions made it 40 days ago
         CREATE TABLE api_gateway.request_log_20000101 (LIKE api_gateway.request_log INCLUDING DEFAULTS);
         ALTER TABLE api_gateway.request_log ATTACH PARTITION api_gateway.request_log_20000101
               FOR VALUES FROM ('2000-01-01') TO ('2000-01-02');
         INSERT INTO api_gateway.request_log (at, method, path, status, latency_ms)
         VALUES ('2000-01-01 12:00', 'GET', '/old', 200, 1), (now() - interval '40 days', 'GET', '/old', 200, 1),
                (now(), 'GET', '/new', 200, 1);",
    )
    .unwrap();
    let result: Value = db
        .query_one("SELECT api_gateway.run_maintenance('logs')", &[])
        .unwrap()
        .get(0);
    assert_eq!(result["partitions_dropped"], 1, "{result}");
    let left: Vec<String> = db
        .query("SELECT path FROM api_gateway.request_log ORDER BY at", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        left,
        vec!["/new".to_string()],
        "only rows within the retention remain"
    );
    db.batch_execute(
        "INSERT INTO api_gateway.client (client_id, name, secret_hash, user_id, scopes)
              VALUES ('gw_000000000001', 'old', repeat('0', 64), 2, '{read}');
         INSERT INTO api_gateway.token (jti, client_id, user_id, scopes, kid, expires_at)
              VALUES ('old', 'gw_000000000001', 2, '{read}', 'k', now() - interval '8 days'),
                     ('recent', 'gw_000000000001', 2, '{read}', 'k', now() - interval '1 day');",
    )
    .unwrap();
    let result: Value = db
        .query_one("SELECT api_gateway.run_maintenance('tokens')", &[])
        .unwrap()
        .get(0);
    assert_eq!(result["tokens_deleted"], 1);
    let all: Value = db
        .query_one("SELECT api_gateway.run_maintenance()", &[])
        .unwrap()
        .get(0);
    for job in [
        "logs",
        "webhook_jobs",
        "secret_display",
        "tokens",
        "throttles",
    ] {
        assert!(all.get(job).is_some(), "{job} ran");
    }
    let runs: i64 = db
        .query_one(
            "SELECT runs FROM api_gateway.maintenance_run WHERE job = 'tokens'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(runs, 2);
    let err = db
        .query_one("SELECT api_gateway.run_maintenance('everything')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023");
    // A second front running the same job at the same time skips it.
    let mut other = connect_to(db_name);
    let mut tx = db.transaction().unwrap();
    tx.query_one("SELECT api_gateway.run_maintenance('throttles')", &[])
        .unwrap();
    let skipped: Value = other
        .query_one("SELECT api_gateway.run_maintenance('throttles')", &[])
        .unwrap()
        .get(0);
    assert!(skipped.get("skipped").is_some(), "{skipped}");
    tx.rollback().unwrap();
    drop((db, other));
    admin
        .batch_execute(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
        .unwrap();
}

#[test]
fn statistics_are_not_public() {
    let mut db = connect_plain();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("CREATE ROLE agw_stats_probe NOLOGIN; SET LOCAL ROLE agw_stats_probe;")
        .unwrap();
    let err = tx
        .query_one(
            "SELECT api_gateway.stats_kpis(now() - interval '1 day', now())",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    tx.rollback().unwrap();
}

/// The dashboard's statistics in one call: the window of each range, the parts asked for (the
/// overview's set by default), and a clear error for a bad filter or an unknown part.
#[test]
fn stats_overview_gives_the_parts_asked_for_and_checks_its_filters() {
    let mut db = connect_plain();
    let mut tx = db.transaction().unwrap();
    tx.query_one(
        "SELECT api_gateway.log_requests($1)",
        &[&log_rows(3, 404, 12.0)],
    )
    .unwrap();
    let o: Value = tx
        .query_one("SELECT api_gateway.stats_overview('30d')", &[])
        .unwrap()
        .get(0);
    assert_eq!(o["range"], "30d");
    assert_eq!(o["bucket"], "day");
    assert_eq!(o["traffic"].as_array().unwrap().len(), 30);
    for part in [
        "top_endpoints",
        "latency",
        "status",
        "health",
        "kpis",
        "faults",
        "log_level",
    ] {
        assert!(!o[part].is_null(), "{part}: {o}");
    }
    assert!(
        o.get("webhooks").is_none() && o.get("users").is_none(),
        "{o}"
    );
    let o: Value = tx
        .query_one(
            "SELECT api_gateway.stats_overview('1y', NULL, '4xx', ARRAY['traffic', 'users'])",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(o["traffic"].as_array().unwrap().len(), 12);
    assert_eq!(o["filter"]["status"], "4xx");
    assert!(o["users"].is_array() && o.get("kpis").is_none(), "{o}");
    for (call, state) in [
        ("SELECT api_gateway.stats_overview('7d')", "22023"),
        ("SELECT api_gateway.stats_overview('24h', -1)", "22023"),
        (
            "SELECT api_gateway.stats_overview('24h', NULL, '6xx')",
            "22023",
        ),
        (
            "SELECT api_gateway.stats_overview('24h', NULL, NULL, ARRAY['nope'])",
            "P0002",
        ),
    ] {
        tx.batch_execute("SAVEPOINT s").unwrap();
        let err = tx.query_one(call, &[]).unwrap_err();
        assert_eq!(sqlstate(&err), state, "{call}");
        tx.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    }
    tx.rollback().unwrap();
}
