//! Least privilege (issue 19): `grant_front` and `grant_worker` give a NOSUPERUSER role exactly
//! what the front and the worker call (USAGE on the schema, EXECUTE on functions, no table);
//! the functions that replaced the front's table reads; the `admin` scope tied to Odoo's
//! settings group; expired API keys named; audited deletion. Changes to shared rows happen in
//! transactions that are rolled back.
use api_gateway_tests::{connect, key_cases, sqlstate};
use postgres::{Client, Transaction};
use serde_json::{Value, json};

/// A role of this suite's own (roles are cluster-wide; its grants are per database).
const ROLE: &str = "agw_lp_sqltest";

fn ensure_role(db: &mut Client) {
    for attempt in 0..20 {
        let r = db.batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN \
               CREATE ROLE {ROLE} NOSUPERUSER NOLOGIN; END IF; END $$"
        ));
        match r {
            Ok(()) => return,
            Err(_) if attempt < 19 => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => panic!("cannot create {ROLE}: {e}"),
        }
    }
}

/// A transaction in which the role has exactly grant_front + grant_worker (granted inside it,
/// so nothing outlives the test).
fn granted(db: &mut Client) -> Transaction<'_> {
    ensure_role(db);
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("SELECT pg_advisory_xact_lock(hashtext('agw_lp_sqltest grants'))")
        .unwrap();
    tx.query_one(
        "SELECT api_gateway.grant_front($1), api_gateway.grant_worker($1)",
        &[&ROLE],
    )
    .unwrap();
    tx
}

fn expect_err(tx: &mut Transaction, sql: &str, code: &str, contains: &str) {
    tx.batch_execute("SAVEPOINT e").unwrap();
    let err = tx.batch_execute(sql).unwrap_err();
    assert_eq!(sqlstate(&err), code, "{sql}: {err:?}");
    let msg = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(msg.contains(contains), "{sql}: {msg}");
    tx.batch_execute("ROLLBACK TO SAVEPOINT e").unwrap();
}

fn new_client(tx: &mut Transaction, uid: i32, scopes: &[&str]) -> (String, String) {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let r = tx
        .query_one(
            "SELECT * FROM api_gateway.create_client('least privilege test', $1, $2)",
            &[&uid, &scopes],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

fn token(tx: &mut Transaction, id: &str, secret: &str) -> String {
    let r = tx
        .query_one(
            "SELECT status, body FROM api_gateway.issue_token($1, $2, NULL, '127.0.0.1')",
            &[&id, &secret],
        )
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 200);
    r.get::<_, Value>(1)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// (status, error, detail, scopes) of authenticate for a GET or another method.
fn gate(
    tx: &mut Transaction,
    authorization: &str,
    method: &str,
) -> (i32, Option<String>, Option<String>, Vec<String>) {
    let r = tx
        .query_one(
            "SELECT status, error, detail, scopes FROM api_gateway.authenticate($1, '127.0.0.1', $2)",
            &[&authorization, &method],
        )
        .unwrap();
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get::<_, Option<Vec<String>>>(3).unwrap_or_default(),
    )
}

#[test]
fn grant_front_and_grant_worker_give_functions_only_and_are_idempotent() {
    let mut db = connect();
    let mut tx = granted(&mut db);
    // Idempotent: the same answer again, no error.
    let again: (i32, i32) = {
        let r = tx
            .query_one(
                "SELECT api_gateway.grant_front($1), api_gateway.grant_worker($1)",
                &[&ROLE],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(again.0 > 40 && again.1 == 5, "{again:?}");
    let r = tx
        .query_one(
            "SELECT rolsuper, has_schema_privilege($1, 'api_gateway', 'USAGE') FROM pg_roles WHERE rolname = $1",
            &[&ROLE],
        )
        .unwrap();
    assert!(!r.get::<_, bool>(0));
    assert!(r.get::<_, bool>(1));
    // No table, view or sequence of the schema.
    let readable: Vec<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'api_gateway'::regnamespace \
               AND c.relkind IN ('r', 'p', 'v', 'm', 'S') \
               AND (CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, 'USAGE,SELECT,UPDATE') \
                    ELSE has_table_privilege($1, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE') END)",
            &[&ROLE],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(readable.is_empty(), "{ROLE} can use {readable:?}");
    // What only a DBA calls stays out of reach.
    for f in [
        "api_gateway.create_client(text, integer, text[], cidr[])",
        "api_gateway.rotate_signing_key()",
        "api_gateway.webhook_secret(integer)",
        "api_gateway.grant_front(name)",
        "api_gateway.grant_worker(name)",
        "api_gateway.verify_api_key(text, text)",
        "api_gateway.rate_limit_hit(text, integer, integer)",
    ] {
        let can: bool = tx
            .query_one(
                "SELECT has_function_privilege($1, $2::text::regprocedure, 'EXECUTE')",
                &[&ROLE, &f],
            )
            .unwrap()
            .get(0);
        assert!(!can, "{ROLE} may call {f}");
    }
    expect_err(
        &mut tx,
        "SELECT api_gateway.grant_front('agw_no_such_role')",
        "42704",
        "does not exist",
    );
}

/// Every `api_gateway.<function>(` the front's source names is granted by grant_front or
/// grant_worker: the documented grants are the ones the front needs.
#[test]
fn every_function_the_front_calls_is_granted() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../front/src");
    let mut names = std::collections::BTreeSet::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    let mut rest = line;
                    while let Some(i) = rest.find("api_gateway.") {
                        rest = &rest[i + "api_gateway.".len()..];
                        let name: String = rest
                            .trim_start_matches("\\\"")
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        let after = rest.trim_start_matches("\\\"")[name.len()..]
                            .trim_start_matches("\\\"");
                        if !name.is_empty() && after.starts_with('(') {
                            names.insert(name);
                        }
                    }
                }
            }
        }
    }
    // Named for people (the OpenAPI description, the log's hint to the DBA), not called.
    for named in ["create_client", "grant_front", "grant_worker"] {
        names.remove(named);
    }
    assert!(names.len() > 30, "{names:?}");
    let mut db = connect();
    let mut tx = granted(&mut db);
    for name in &names {
        let granted: bool = tx
            .query_one(
                "SELECT coalesce(bool_or(has_function_privilege($1, p.oid, 'EXECUTE')), false) \
                   FROM pg_proc p WHERE p.pronamespace = 'api_gateway'::regnamespace AND p.proname = $2",
                &[&ROLE, name],
            )
            .unwrap()
            .get(0);
        assert!(
            granted,
            "the front calls api_gateway.{name}, which grant_front/grant_worker do not grant"
        );
    }
}

/// What the front does, done as the role: gate, OAuth2 checks, the traffic log, statistics,
/// metrics, maintenance, the console and the worker; no table read works.
#[test]
fn the_role_runs_what_the_front_and_worker_call_and_reads_no_table() {
    let mut db = connect();
    let mut tx = granted(&mut db);
    let (id, secret) = new_client(&mut tx, 2, &["read", "write"]);
    let tok = token(&mut tx, &id, &secret);
    let path = format!("/least-privilege/{}", std::process::id());
    tx.batch_execute(&format!("SET LOCAL ROLE {ROLE}")).unwrap();
    let (status, ..) = gate(&mut tx, &format!("Bearer {tok}"), "GET");
    assert_eq!(status, 200);
    let r = tx
        .query_one(
            "SELECT api_gateway.oauth_client_check($1, $2, '127.0.0.1'), \
                    api_gateway.introspect_token($3)->>'active', api_gateway.log_level(), \
                    api_gateway.metrics_gauges() ? 'maintenance', \
                    api_gateway.log_requests(jsonb_build_array(jsonb_build_object('method', 'GET', 'path', $4::text, \
                        'status', 503, 'latency_ms', 2, 'uid', 2, 'client_ip', '10.1.2.3')))",
            &[&id, &secret, &tok, &path],
        )
        .unwrap();
    assert!(r.get::<_, bool>(0));
    assert_eq!(r.get::<_, String>(1), "true");
    assert!(["errors", "metadata", "payloads"].contains(&r.get::<_, String>(2).as_str()));
    assert!(r.get::<_, bool>(3));
    assert_eq!(r.get::<_, i32>(4), 1);
    let fault = tx
        .query_one(
            "SELECT f.id, f.status::int, host(f.client_ip) FROM api_gateway.stats_faults(now() - interval '1 hour', 2, '5xx', 100) f \
              WHERE f.path = $1",
            &[&path],
        )
        .unwrap();
    assert_eq!(fault.get::<_, i32>(1), 503);
    assert_eq!(fault.get::<_, String>(2), "10.1.2.3");
    let record: Value = tx
        .query_one(
            "SELECT api_gateway.stats_log_record($1, NULL)",
            &[&fault.get::<_, i64>(0)],
        )
        .unwrap()
        .get(0);
    assert_eq!(record["path"], json!(path));
    assert_eq!(record["client_ip"], json!("10.1.2.3"));
    let users: Vec<i32> = tx
        .query(
            "SELECT uid FROM api_gateway.stats_users(now() - interval '1 hour')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(users.contains(&2), "{users:?}");
    tx.query_one(
        "SELECT api_gateway.stats_kpis(now() - interval '1 day', now(), NULL), api_gateway.admin_settings(), \
                api_gateway.run_maintenance('throttles'), api_gateway.webhook_worker_settings() IS NOT NULL, \
                api_gateway.webhook_next_due()",
        &[],
    )
    .unwrap();
    // Revocation by its own client, as the front does it.
    let revoked: Option<bool> = tx
        .query_one(
            "SELECT api_gateway.revoke_token_as_client($1, $2)",
            &[&tok, &id],
        )
        .unwrap()
        .get(0);
    assert_eq!(revoked, Some(true));
    let (status, _, detail, _) = gate(&mut tx, &format!("Bearer {tok}"), "GET");
    assert_eq!(
        (status, detail.as_deref()),
        (401, Some("token has been revoked"))
    );
    for table in [
        "client",
        "token",
        "settings",
        "request_log",
        "request_stats",
        "webhook_job",
        "maintenance_run",
        "audit",
    ] {
        expect_err(
            &mut tx,
            &format!("SELECT count(*) FROM api_gateway.{table}"),
            "42501",
            "permission denied",
        );
    }
    expect_err(
        &mut tx,
        "SELECT api_gateway.webhook_secret(1)",
        "42501",
        "permission denied",
    );
}

#[test]
fn oauth_client_check_is_the_token_endpoints_secret_check() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let (id, secret) = new_client(&mut tx, 2, &["read"]);
    let check = |tx: &mut Transaction, id: Option<&str>, secret: Option<&str>, ip: &str| -> bool {
        tx.query_one(
            "SELECT api_gateway.oauth_client_check($1, $2, $3::text::inet)",
            &[&id, &secret, &ip],
        )
        .unwrap()
        .get(0)
    };
    assert!(check(&mut tx, Some(&id), Some(&secret), "127.0.0.1"));
    assert!(!check(&mut tx, Some(&id), Some("wrong"), "127.0.0.1"));
    assert!(!check(
        &mut tx,
        Some(&id),
        Some(&secret[..secret.len() - 1]),
        "127.0.0.1"
    ));
    assert!(!check(
        &mut tx,
        Some("gw_000000000000"),
        Some(&secret),
        "127.0.0.1"
    ));
    assert!(!check(&mut tx, None, Some(&secret), "127.0.0.1"));
    assert!(!check(&mut tx, Some(&id), None, "127.0.0.1"));
    assert!(!check(
        &mut tx,
        Some(&id),
        Some(&"x".repeat(300)),
        "127.0.0.1"
    ));
    tx.execute(
        "UPDATE api_gateway.client SET allowed_ips = '{10.0.0.0/8}' WHERE client_id = $1",
        &[&id],
    )
    .unwrap();
    assert!(!check(&mut tx, Some(&id), Some(&secret), "127.0.0.1"));
    assert!(check(&mut tx, Some(&id), Some(&secret), "10.9.9.9"));
    tx.execute(
        "UPDATE api_gateway.client SET active = false WHERE client_id = $1",
        &[&id],
    )
    .unwrap();
    assert!(!check(&mut tx, Some(&id), Some(&secret), "10.9.9.9"));
    // The token endpoint agrees with it on every case above.
    let r = tx
        .query_one(
            "SELECT status FROM api_gateway.issue_token($1, $2, NULL, '10.9.9.9')",
            &[&id, &secret],
        )
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 401);
}

#[test]
fn revoke_token_as_client_revokes_only_the_clients_own_tokens() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let (a, sa) = new_client(&mut tx, 2, &["read"]);
    let (b, _) = new_client(&mut tx, 2, &["read"]);
    let ta = token(&mut tx, &a, &sa);
    let revoke = |tx: &mut Transaction, token: &str, client: &str| -> Option<bool> {
        tx.query_one(
            "SELECT api_gateway.revoke_token_as_client($1, $2)",
            &[&token, &client],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(revoke(&mut tx, &ta, &b), None, "another client's token");
    assert_eq!(gate(&mut tx, &format!("Bearer {ta}"), "GET").0, 200);
    assert_eq!(revoke(&mut tx, "not a token", &a), Some(false));
    assert_eq!(revoke(&mut tx, &ta, &a), Some(true));
    assert_eq!(revoke(&mut tx, &ta, &a), Some(false), "already revoked");
    assert_eq!(gate(&mut tx, &format!("Bearer {ta}"), "GET").0, 401);
}

/// The security review's finding: a client of the portal user with {admin} made, through the
/// console, a client for the administrator with every scope. `admin` now needs Odoo's settings
/// group, at creation and on every call.
#[test]
fn the_admin_scope_needs_an_odoo_settings_administrator() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let portal: i32 = tx
        .query_one(
            "SELECT u.id FROM res_users u WHERE u.active AND u.share AND u.login = 'portal'",
            &[],
        )
        .unwrap()
        .get(0);
    expect_err(
        &mut tx,
        &format!("SELECT * FROM api_gateway.create_client('x', {portal}, '{{admin}}')"),
        "22023",
        "base.group_system",
    );
    expect_err(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_create_client(2, NULL, '{{"name": "x", "user_id": {portal}, "scopes": ["read", "admin"]}}')"#
        ),
        "22023",
        "settings administrators",
    );
    let (pc, _) = new_client(&mut tx, portal, &["read"]);
    expect_err(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_update_client(2, NULL, '{pc}', '{{"scopes": ["admin"]}}')"#
        ),
        "22023",
        "base.group_system",
    );
    expect_err(
        &mut tx,
        &format!(
            "UPDATE api_gateway.client SET scopes = '{{read,admin}}' WHERE client_id = '{pc}'"
        ),
        "22023",
        "base.group_system",
    );
    // A client made before this check (triggers off, as a restore of an old dump might do).
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .unwrap();
    tx.execute(
        "UPDATE api_gateway.client SET scopes = '{admin}' WHERE client_id = $1",
        &[&pc],
    )
    .unwrap();
    tx.batch_execute("SET LOCAL session_replication_role = origin")
        .unwrap();
    let secret: String = {
        let s: String = tx
            .query_one(
                "SELECT api_gateway.admin_rotate_client_secret(2, NULL, $1)",
                &[&pc],
            )
            .unwrap()
            .get(0);
        s
    };
    // Renaming or deactivating such a client is allowed (it grants nothing new).
    tx.batch_execute(&format!(
        r#"SELECT api_gateway.admin_update_client(2, NULL, '{pc}', '{{"name": "renamed", "active": true}}')"#
    ))
    .unwrap();
    let portal_token = token(&mut tx, &pc, &secret);
    let (status, error, _, scopes) = gate(&mut tx, &format!("Bearer {portal_token}"), "GET");
    assert_eq!(
        (status, error.as_deref()),
        (403, Some("insufficient_scope")),
        "admin is no scope at all for a portal user"
    );
    assert!(scopes.is_empty());
    // The administrator's client keeps it while the administrator is in the group...
    let (ac, asec) = new_client(&mut tx, 2, &["admin"]);
    let admin_token = format!("Bearer {}", token(&mut tx, &ac, &asec));
    for _ in 0..2 {
        // (twice: the second call uses the backend's cached facts)
        let (status, _, _, scopes) = gate(&mut tx, &admin_token, "DELETE");
        assert_eq!(status, 200);
        assert_eq!(scopes, vec!["admin".to_string()]);
    }
    // ... and loses it on the next call once removed from it.
    let removed = tx
        .execute(
            "DELETE FROM res_groups_users_rel r USING ir_model_data d WHERE d.res_id = r.gid \
              AND d.module = 'base' AND d.name = 'group_system' AND d.model = 'res.groups' AND r.uid = 2",
            &[],
        )
        .unwrap();
    assert_eq!(removed, 1);
    for method in ["GET", "DELETE"] {
        let (status, error, _, _) = gate(&mut tx, &admin_token, method);
        assert_eq!(
            (status, error.as_deref()),
            (403, Some("insufficient_scope")),
            "{method}"
        );
    }
    tx.rollback().unwrap();
}

#[test]
fn an_expired_odoo_api_key_is_reported_as_expired() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let expired: Vec<_> = key_cases()
        .into_iter()
        .filter(|c| c.label.contains("expired") && c.scope == "rpc")
        .collect();
    assert!(!expired.is_empty(), "every fixture has an expired key");
    for case in expired {
        for _ in 0..2 {
            let (status, error, detail, _) = gate(&mut tx, &format!("Bearer {}", case.key), "GET");
            assert_eq!(
                (status, error.as_deref(), detail.as_deref()),
                (401, Some("invalid_token"), Some("the API key has expired")),
                "{}",
                case.label
            );
        }
        // The same key with one character changed is just invalid.
        let mut wrong = case.key.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'a' { 'b' } else { 'a' });
        let (status, _, detail, _) = gate(&mut tx, &format!("Bearer {wrong}"), "GET");
        assert_eq!((status, detail.as_deref()), (401, Some("invalid API key")));
    }
}

#[test]
fn clients_profiles_and_webhooks_can_be_deleted_and_each_deletion_is_audited() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("UPDATE api_gateway.webhook_settings SET ddl_lock_timeout = '60 seconds'")
        .unwrap();
    let before: i64 = tx
        .query_one("SELECT coalesce(max(id), 0) FROM api_gateway.audit", &[])
        .unwrap()
        .get(0);
    let (id, secret) = new_client(&mut tx, 2, &["read"]);
    let tok = format!("Bearer {}", token(&mut tx, &id, &secret));
    assert_eq!(gate(&mut tx, &tok, "GET").0, 200);
    tx.execute(
        "SELECT api_gateway.admin_delete_client(2, 'gw_aaaaaaaaaaaa', $1)",
        &[&id],
    )
    .unwrap();
    assert_eq!(gate(&mut tx, &tok, "GET").0, 401, "its tokens died with it");
    expect_err(
        &mut tx,
        &format!("SELECT api_gateway.admin_delete_client(2, NULL, '{id}')"),
        "02000",
        "no OAuth2 client",
    );
    // An internal user other than the administrator and demo (whose profiles other suites set).
    let user: i32 = tx
        .query_one(
            "SELECT id FROM res_users WHERE active AND NOT share AND id NOT IN (2, 5) ORDER BY id LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    tx.batch_execute(&format!(
        r#"SELECT api_gateway.admin_save_profile(2, NULL, '{{"user_id": {user}, "rate_limit": 7}}')"#
    ))
    .unwrap();
    tx.execute(
        "SELECT api_gateway.admin_delete_profile(2, NULL, $1)",
        &[&user],
    )
    .unwrap();
    let left: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_gateway.profile WHERE user_id = $1",
            &[&user],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    expect_err(
        &mut tx,
        &format!("SELECT api_gateway.admin_delete_profile(2, NULL, {user})"),
        "02000",
        "no profile",
    );
    let saved: Value = tx
        .query_one(
            r#"SELECT api_gateway.admin_save_webhook(2, NULL, '{"name": "lp delete test", "model": "res.partner.category", "url": "https://example.com/h"}')"#,
            &[],
        )
        .unwrap()
        .get(0);
    let wid = saved["id"].as_i64().unwrap() as i32;
    tx.execute(
        "SELECT api_gateway.admin_delete_webhook(2, NULL, $1)",
        &[&wid],
    )
    .unwrap();
    let left: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_gateway.webhook WHERE id = $1",
            &[&wid],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    expect_err(
        &mut tx,
        &format!("SELECT api_gateway.admin_delete_webhook(2, NULL, {wid})"),
        "02000",
        "no webhook",
    );
    let audit: Vec<(String, String, Value)> = tx
        .query(
            "SELECT action, target, details FROM api_gateway.audit WHERE id > $1 AND action LIKE '%.delete' ORDER BY id",
            &[&before],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let actions: Vec<&str> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        ["client.delete", "profile.delete", "webhook.delete"]
    );
    assert_eq!(audit[0].1, format!("client:{id}"));
    assert_eq!(audit[0].2["tokens_deleted"], json!(1));
    assert!(audit[0].2.get("secret_hash").is_none());
    assert_eq!(audit[1].2["rate_limit"], json!(7));
    assert_eq!(audit[2].2["name"], json!("lp delete test"));
    tx.rollback().unwrap();
}
