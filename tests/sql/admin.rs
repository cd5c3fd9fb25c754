//! The admin console's SQL API (`api_gateway.admin_*`): validation with SQLSTATEs naming the
//! field, secrets shown once and never listed, one audit row per change, nothing callable by
//! PUBLIC. Each test runs in a transaction that is rolled back (the settings are shared with
//! every other suite running at the same time).
use api_gateway_tests::{connect, sqlstate};
use postgres::Transaction;
use serde_json::{Value, json};

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

fn json_of(tx: &mut Transaction, sql: &str) -> Value {
    tx.query_one(sql, &[]).unwrap().get(0)
}

/// The audit rows written in this transaction, oldest first: (action, target, details).
fn audit_since(tx: &mut Transaction, after: i64) -> Vec<(String, String, Value)> {
    tx.query(
        "SELECT action, coalesce(target, ''), details FROM api_gateway.audit WHERE id > $1 ORDER BY id",
        &[&after],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

fn last_audit_id(tx: &mut Transaction) -> i64 {
    tx.query_one("SELECT coalesce(max(id), 0) FROM api_gateway.audit", &[])
        .unwrap()
        .get(0)
}

fn an_active_user(tx: &mut Transaction) -> i32 {
    tx.query_one(
        "SELECT id FROM public.res_users WHERE active ORDER BY id LIMIT 1",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn settings_are_validated_field_by_field_audited_and_never_show_the_signing_secret() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let before = last_audit_id(&mut tx);
    let s = json_of(&mut tx, "SELECT api_gateway.admin_settings()");
    assert!(
        s.get("jwt_secret").is_none() && s["jwt_kid"].is_string(),
        "{s}"
    );
    assert!(s["webhooks"].is_object() && s["retired_keys"].is_array());
    for (changes, contains) in [
        (
            r#"{"default_limit": 0}"#,
            "default_limit must be a whole number between 1 and 10000",
        ),
        (
            r#"{"max_limit": "lots"}"#,
            "max_limit must be a whole number",
        ),
        (
            r#"{"default_limit": 500, "max_limit": 100}"#,
            "default_limit (500) cannot exceed max_limit (100)",
        ),
        (
            r#"{"rate_limit_window": "week"}"#,
            "rate_limit_window must be one of minute, hour, day",
        ),
        (
            r#"{"log_level": "all"}"#,
            "log_level must be one of errors, metadata, payloads",
        ),
        (
            r#"{"log_retention_days": 4000}"#,
            "log_retention_days must be a whole number between 1 and 3650",
        ),
        (
            r#"{"token_lifetime_s": 59}"#,
            "token_lifetime_s must be a whole number between 60 and 2592000",
        ),
        (r#"{"jwt_secret": "x"}"#, "unknown field \"jwt_secret\""),
    ] {
        expect_err(
            &mut tx,
            &format!("SELECT api_gateway.admin_update_settings(2, NULL, '{changes}')"),
            "22023",
            contains,
        );
    }
    let s = json_of(
        &mut tx,
        r#"SELECT api_gateway.admin_update_settings(7, 'gw_0123456789ab', '{"rate_limit": 120, "rate_limit_window": "hour", "log_level": "metadata", "token_lifetime_s": 600}')"#,
    );
    assert_eq!(
        (
            &s["rate_limit"],
            &s["rate_limit_window"],
            &s["log_level"],
            &s["token_lifetime_s"]
        ),
        (&json!(120), &json!("hour"), &json!("metadata"), &json!(600))
    );
    let old_kid = s["jwt_kid"].as_str().unwrap().to_string();
    let new_kid: String = tx
        .query_one("SELECT api_gateway.admin_rotate_signing_key(7, NULL)", &[])
        .unwrap()
        .get(0);
    let s = json_of(&mut tx, "SELECT api_gateway.admin_settings()");
    assert_eq!(s["jwt_kid"], json!(new_kid));
    assert!(
        s["retired_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == json!(old_kid)),
        "the old key keeps verifying until its tokens expire: {s}"
    );
    let audit = audit_since(&mut tx, before);
    assert_eq!(
        audit.len(),
        2,
        "one row per change, none for refused ones: {audit:?}"
    );
    assert_eq!(audit[0].0, "settings.update");
    assert_eq!(audit[0].2["rate_limit"], json!(120));
    assert_eq!(audit[1].0, "settings.rotate_signing_key");
    assert_eq!(audit[1].2, json!({"old_kid": old_kid, "new_kid": new_kid}));
    let actor: (Option<i32>, Option<String>) = tx
        .query_one(
            "SELECT actor_uid, actor_client FROM api_gateway.audit WHERE id > $1 ORDER BY id LIMIT 1",
            &[&before],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(actor, (Some(7), Some("gw_0123456789ab".into())));
    let leaked: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_gateway.audit a, api_gateway.settings s WHERE a.id > $1 AND a.details::text LIKE '%' || s.jwt_secret || '%'",
            &[&before],
        )
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0);
    tx.rollback().unwrap();
}

#[test]
fn profiles_check_the_user_and_each_cidr_and_can_be_deactivated() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let uid = an_active_user(&mut tx);
    tx.execute(
        "DELETE FROM api_gateway.profile WHERE user_id = $1",
        &[&uid],
    )
    .unwrap();
    let before = last_audit_id(&mut tx);
    expect_err(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_save_profile(2, NULL, '{{"user_id": {uid}, "allowed_ips": ["10.0.0.0/8", "10.0.0.1/8"]}}')"#
        ),
        "22023",
        "allowed_ips: \"10.0.0.1/8\" is not an IP address or CIDR range",
    );
    expect_err(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_save_profile(2, NULL, '{{"user_id": {uid}, "allowed_ips": "not-an-ip"}}')"#
        ),
        "22023",
        "\"not-an-ip\" is not an IP address",
    );
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_save_profile(2, NULL, '{"user_id": 2147483000}')"#,
        "22023",
        "Odoo user 2147483000 does not exist or is archived",
    );
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_save_profile(2, NULL, '{"rate_limit": 5}')"#,
        "22023",
        "user_id is required",
    );
    let saved = json_of(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_save_profile(2, NULL, '{{"user_id": {uid}, "rate_limit": 30, "rate_limit_window": "hour", "allowed_ips": "192.0.2.0/24, 2001:db8::/32 203.0.113.9"}}')"#
        ),
    );
    assert_eq!(
        saved["allowed_ips"],
        json!(["192.0.2.0/24", "2001:db8::/32", "203.0.113.9/32"])
    );
    assert_eq!(
        (&saved["rate_limit"], &saved["active"]),
        (&json!(30), &json!(true))
    );
    let allowed: (bool, bool) = tx
        .query_one(
            "SELECT api_gateway.ip_allowed('192.0.2.7', allowed_ips), api_gateway.ip_allowed('198.51.100.1', allowed_ips) \
               FROM api_gateway.profile WHERE user_id = $1",
            &[&uid],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(allowed, (true, false));
    tx.execute(
        "SELECT api_gateway.admin_set_profile_active(2, NULL, $1, false)",
        &[&uid],
    )
    .unwrap();
    let listed = json_of(&mut tx, "SELECT api_gateway.admin_profiles()");
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == json!(uid))
        .unwrap();
    assert_eq!(mine["active"], json!(false));
    assert!(mine["login"].is_string(), "{mine}");
    expect_err(
        &mut tx,
        "SELECT api_gateway.admin_set_profile_active(2, NULL, 2147483000, false)",
        "02000",
        "no profile for Odoo user 2147483000",
    );
    let actions: Vec<String> = audit_since(&mut tx, before)
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions, ["profile.create", "profile.deactivate"]);
    tx.rollback().unwrap();
}

#[test]
fn a_client_secret_is_shown_once_rotation_replaces_it_and_revocation_is_immediate() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let uid = an_active_user(&mut tx);
    let before = last_audit_id(&mut tx);
    expect_err(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_create_client(2, NULL, '{{"name": "x", "user_id": {uid}, "scopes": ["read", "root"]}}')"#
        ),
        "22023",
        "scopes must be a list among read, write, delete, admin",
    );
    let created = json_of(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_create_client(2, NULL, '{{"name": "console test", "user_id": {uid}, "scopes": ["write", "read"], "allowed_ips": ["127.0.0.1"]}}')"#
        ),
    );
    let id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 32);
    let listed = json_of(&mut tx, "SELECT api_gateway.admin_clients()");
    let text = listed.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("secret_hash"),
        "{text}"
    );
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == json!(id))
        .unwrap();
    assert_eq!(mine["scopes"], json!(["read", "write"]));
    assert_eq!(mine["allowed_ips"], json!(["127.0.0.1/32"]));
    let issue = |tx: &mut Transaction, secret: &str| -> (i32, Value) {
        let r = tx
            .query_one(
                "SELECT * FROM api_gateway.issue_token($1, $2, NULL, '127.0.0.1')",
                &[&id, &secret],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let (status, body) = issue(&mut tx, &secret);
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let updated = json_of(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_update_client(2, NULL, '{id}', '{{"scopes": ["read"], "allowed_ips": null, "name": "renamed"}}')"#
        ),
    );
    assert_eq!(
        (
            &updated["scopes"],
            &updated["allowed_ips"],
            &updated["name"]
        ),
        (&json!(["read"]), &Value::Null, &json!("renamed"))
    );
    let new_secret: String = tx
        .query_one(
            "SELECT api_gateway.admin_rotate_client_secret(2, NULL, $1)",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_ne!(new_secret, secret);
    assert_eq!(
        issue(&mut tx, &secret).0,
        401,
        "the old secret stops working"
    );
    assert_eq!(issue(&mut tx, &new_secret).0, 200);
    let tokens = json_of(&mut tx, &format!("SELECT api_gateway.admin_tokens('{id}')"));
    assert_eq!(tokens.as_array().unwrap().len(), 2);
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == json!("live"))
    );
    // Both were issued in this transaction (same issued_at): pick the first one by its claim.
    let jti: String = tx
        .query_one(
            "SELECT convert_from(decode(rpad(translate(p, '-_', '+/'), (length(p) + 3) / 4 * 4, '='), 'base64'), 'UTF8')::jsonb ->> 'jti' \
               FROM split_part($1, '.', 2) AS p",
            &[&token],
        )
        .unwrap()
        .get(0);
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["jti"] == json!(jti))
    );
    let revoked: bool = tx
        .query_one(
            "SELECT api_gateway.admin_revoke_token(2, NULL, $1)",
            &[&jti],
        )
        .unwrap()
        .get(0);
    assert!(revoked);
    let again: bool = tx
        .query_one(
            "SELECT api_gateway.admin_revoke_token(2, NULL, $1)",
            &[&jti],
        )
        .unwrap()
        .get(0);
    assert!(
        !again,
        "a second revocation changes nothing and is not audited"
    );
    let status: i32 = tx
        .query_one(
            "SELECT status FROM api_gateway.authenticate('Bearer ' || $1, '127.0.0.1', 'GET')",
            &[&token],
        )
        .unwrap()
        .get(0);
    assert_eq!(status, 401, "the revoked token is refused on its next use");
    let n: i32 = tx
        .query_one(
            "SELECT api_gateway.admin_revoke_client_tokens(2, NULL, $1)",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    expect_err(
        &mut tx,
        "SELECT api_gateway.admin_rotate_client_secret(2, NULL, 'gw_000000000000')",
        "02000",
        "no OAuth2 client gw_000000000000",
    );
    let audit = audit_since(&mut tx, before);
    let actions: Vec<&str> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "client.create",
            "client.update",
            "client.rotate_secret",
            "token.revoke",
            "client.revoke_tokens"
        ]
    );
    let all = format!("{audit:?}");
    assert!(!all.contains(&secret) && !all.contains(&new_secret) && !all.contains(&token));
    tx.rollback().unwrap();
}

#[test]
fn webhooks_are_saved_with_their_checks_tested_and_their_dead_jobs_replayed() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("UPDATE api_gateway.webhook_settings SET ddl_lock_timeout = '60 seconds'")
        .unwrap();
    let before = last_audit_id(&mut tx);
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_save_webhook(2, NULL, '{"name": "a", "model": "res.partner.category", "url": "https://example.com/h", "events": ["delete"]}')"#,
        "22023",
        "events must be a list among create, write, unlink",
    );
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_save_webhook(2, NULL, '{"name": "a", "model": "res.partner.category", "url": "ftp://example.com/h"}')"#,
        "22023",
        "invalid webhook url",
    );
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_save_webhook(2, NULL, '{"model": "res.partner.category", "url": "https://example.com/h"}')"#,
        "22023",
        "name is required",
    );
    let saved = json_of(
        &mut tx,
        r#"SELECT api_gateway.admin_save_webhook(2, NULL, '{"name": "console test hook", "model": "res.partner.category", "url": "https://example.com/h", "events": ["create", "write"], "fields": "name", "headers": {"X-Token": "t0ps3cret"}}')"#,
    );
    let wid = saved["id"].as_i64().unwrap() as i32;
    let secret = saved["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(saved["events"], json!(["create", "write"]));
    let listed = json_of(&mut tx, "SELECT api_gateway.admin_webhooks()").to_string();
    assert!(
        !listed.contains(&secret),
        "the secret is shown once, at creation"
    );
    let updated = json_of(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_save_webhook(2, NULL, '{{"id": {wid}, "domain": "[(\"name\", \"ilike\", \"vip\")]", "active": false}}')"#
        ),
    );
    assert_eq!(updated["active"], json!(false));
    assert!(updated.get("secret").is_none());
    let test = tx
        .query_one(
            "SELECT event_id, url, headers, secret, timeout_ms, payload::jsonb FROM api_gateway.admin_webhook_test_event(2, NULL, $1)",
            &[&wid],
        )
        .unwrap();
    assert_eq!(test.get::<_, String>(1), "https://example.com/h");
    assert_eq!(test.get::<_, String>(3), secret);
    let payload: Value = test.get(5);
    assert_eq!(
        (&payload["action"], &payload["model"], &payload["event_id"]),
        (
            &json!("test"),
            &json!("res.partner.category"),
            &json!(test.get::<_, String>(0))
        )
    );
    // Two dead jobs and a delivered one: "replay all dead" takes the two.
    tx.execute(
        "INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, state, attempts, last_error) \
         SELECT gen_random_uuid(), $1, 'create', n, CASE WHEN n = 3 THEN 'delivered' ELSE 'dead' END, 8, 'HTTP 500' \
           FROM generate_series(1, 3) n",
        &[&wid],
    )
    .unwrap();
    let queue = json_of(
        &mut tx,
        &format!("SELECT api_gateway.admin_webhook_queue('dead', {wid})"),
    );
    assert_eq!(queue["counts"], json!({"dead": 2, "delivered": 1}));
    assert_eq!(queue["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(queue["jobs"][0]["last_error"], json!("HTTP 500"));
    let one = queue["jobs"][0]["id"].as_i64().unwrap();
    let replayed: bool = tx
        .query_one("SELECT api_gateway.admin_replay_job(2, NULL, $1)", &[&one])
        .unwrap()
        .get(0);
    assert!(replayed);
    let n: i32 = tx
        .query_one(
            "SELECT api_gateway.admin_replay_dead_jobs(2, NULL, $1)",
            &[&wid],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the other dead one");
    let queue = json_of(
        &mut tx,
        &format!("SELECT api_gateway.admin_webhook_queue(NULL, {wid})"),
    );
    assert_eq!(queue["counts"], json!({"pending": 2, "delivered": 1}));
    expect_err(
        &mut tx,
        "SELECT api_gateway.admin_webhook_queue('lost')",
        "22023",
        "state must be one of",
    );
    let rotated: String = tx
        .query_one(
            "SELECT api_gateway.admin_rotate_webhook_secret(2, NULL, $1)",
            &[&wid],
        )
        .unwrap()
        .get(0);
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    let audit = audit_since(&mut tx, before);
    let actions: Vec<&str> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook.create",
            "webhook.update",
            "webhook.test_event",
            "webhook_job.replay",
            "webhook.replay_dead",
            "webhook.rotate_secret"
        ]
    );
    let all = format!("{audit:?}");
    assert!(!all.contains(&secret) && !all.contains(&rotated) && !all.contains("t0ps3cret"));
    tx.rollback().unwrap();
}

#[test]
fn a_throttle_window_is_listed_with_its_reset_and_can_be_reset() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let subject = format!("admin-test:{}", std::process::id());
    for _ in 0..3 {
        tx.execute(
            "SELECT api_gateway.rate_limit_hit($1, 2, 3600)",
            &[&subject],
        )
        .unwrap();
    }
    let listed = json_of(&mut tx, "SELECT api_gateway.admin_throttles()");
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"] == json!(subject))
        .unwrap()
        .clone();
    assert_eq!(
        (
            &mine["count"],
            &mine["limit"],
            &mine["remaining"],
            &mine["throttled"]
        ),
        (&json!(2), &json!(2), &json!(0), &json!(true)),
        "the refused third call is not counted"
    );
    let reset_s = mine["reset_s"].as_i64().unwrap();
    assert!(
        (0..=3660).contains(&reset_s),
        "the window plus at most one sub-bucket: {mine}"
    );
    let before = last_audit_id(&mut tx);
    let reset: bool = tx
        .query_one(
            "SELECT api_gateway.admin_reset_throttle(2, NULL, $1)",
            &[&subject],
        )
        .unwrap()
        .get(0);
    assert!(reset);
    let (allowed, remaining): (bool, i32) = tx
        .query_one(
            "SELECT allowed, remaining FROM api_gateway.rate_limit_hit($1, 2, 3600)",
            &[&subject],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((allowed, remaining), (true, 1), "a new window starts");
    let audit = audit_since(&mut tx, before);
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].0.as_str(), audit[0].1.as_str(), &audit[0].2),
        (
            "throttle.reset",
            format!("throttle:{subject}").as_str(),
            &json!({"hits": 2})
        )
    );
    tx.rollback().unwrap();
}

#[test]
fn traffic_logs_filter_and_group_with_checked_parameters() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute(
        "INSERT INTO api_gateway.request_log (at, method, path, status, latency_ms, uid, client_id) VALUES \
         ('2001-02-03 10:00Z', 'GET', '/api/v1/res.partner/7', 200, 3, 2, 'gw_aaaaaaaaaaaa'), \
         ('2001-02-03 11:00Z', 'GET', '/api/v1/res.partner/8', 404, 5, 2, 'gw_aaaaaaaaaaaa'), \
         ('2001-02-04 09:00Z', 'POST', '/api/v1/res.users', 429, 1, NULL, NULL)",
    )
    .unwrap();
    let window = r#""from": "2001-02-03T00:00:00Z", "to": "2001-02-05T00:00:00Z""#;
    let rows = json_of(
        &mut tx,
        &format!(r#"SELECT api_gateway.admin_logs('{{{window}, "status": "4xx"}}')"#),
    );
    let statuses: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [429, 404], "newest first");
    let rows = json_of(
        &mut tx,
        &format!(
            r#"SELECT api_gateway.admin_logs('{{{window}, "client": "gw_aaaaaaaaaaaa", "path": "PARTNER/8"}}')"#
        ),
    );
    assert_eq!(rows.as_array().unwrap().len(), 1);
    let rows = json_of(
        &mut tx,
        &format!(r#"SELECT api_gateway.admin_logs('{{{window}, "user": 0}}')"#),
    );
    assert_eq!(
        rows[0]["path"],
        json!("/api/v1/res.users"),
        "user 0 = anonymous"
    );
    let by_date = json_of(
        &mut tx,
        &format!(r#"SELECT api_gateway.admin_logs_grouped('{{{window}}}', 'date')"#),
    );
    assert_eq!(by_date[0]["key"], json!("2001-02-03"));
    assert_eq!(
        (&by_date[0]["requests"], &by_date[0]["errors"]),
        (&json!(2), &json!(1))
    );
    let by_endpoint = json_of(
        &mut tx,
        &format!(r#"SELECT api_gateway.admin_logs_grouped('{{{window}}}', 'endpoint')"#),
    );
    assert_eq!(by_endpoint[0]["key"], json!("GET /api/v1/res.partner/{id}"));
    expect_err(
        &mut tx,
        "SELECT api_gateway.admin_logs_grouped('{}', 'ip')",
        "22023",
        "group_by must be one of",
    );
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_logs('{"status": "6xx"}')"#,
        "22023",
        "status must be one of",
    );
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_logs('{"from": "soon"}')"#,
        "22023",
        "from must be a timestamp",
    );
    expect_err(
        &mut tx,
        r#"SELECT api_gateway.admin_logs('{"method": "GET"}')"#,
        "22023",
        "unknown field \"method\"",
    );
    tx.rollback().unwrap();
}

#[test]
fn no_admin_function_or_the_audit_table_is_available_to_public() {
    let mut db = connect();
    let open: Vec<String> = db
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p \
              WHERE p.pronamespace = 'api_gateway'::regnamespace AND p.proname ~ '^_?admin_|^_audit$' \
                AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(open.is_empty(), "callable by PUBLIC: {open:?}");
    let loose: Vec<String> = db
        .query(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'api_gateway'::regnamespace AND proname ~ '^admin_' \
                AND NOT (prosecdef AND array_to_string(proconfig, ',') = 'search_path=pg_catalog, pg_temp')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        loose.is_empty(),
        "admin_ functions are SECURITY DEFINER with a pinned search_path: {loose:?}"
    );
    let public_reads: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = 'api_gateway.audit'::regclass AND a.grantee = 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!public_reads);
}
