//! Webhooks on the SQL side: configuration checks, the capture triggers and their payloads,
//! domain filters, bulk statements, NOTIFY at commit only, the worker's claim/complete
//! protocol, replay and purge, ALTER TABLE and DROP EXTENSION. Almost everything runs in a
//! transaction that is rolled back; the tests that need commits use res_partner_category and
//! remove what they created. They hold locks on res_partner while they run, so they run one
//! at a time.
use api_gateway_tests::{connect, sqlstate};
use postgres::{Client, Transaction};
use serde_json::{Value, json};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Settings for a test transaction: wait for the trigger DDL locks (other suites write the
/// same tables).
fn prepare(tx: &mut Transaction) {
    tx.batch_execute(
        "UPDATE api_gateway.webhook_settings SET ddl_lock_timeout = '60 seconds', allow_private_targets = true",
    )
    .unwrap();
}

/// Insert a webhook (`cols`/`vals`: more columns and values, each starting with a comma).
fn add_webhook(tx: &mut Transaction, name: &str, model: &str, cols: &str, vals: &str) -> i32 {
    tx.query_one(
        &format!(
            "INSERT INTO api_gateway.webhook (name, model, url{cols}) \
             VALUES ($1, $2, 'https://hooks.example.com/odoo'{vals}) RETURNING id"
        ),
        &[&name, &model],
    )
    .unwrap()
    .get(0)
}

/// The capture triggers installed on `table` (names).
fn triggers(tx: &mut Transaction, table: &str) -> Vec<String> {
    tx.query(
        "SELECT tgname::text FROM pg_trigger WHERE tgrelid = to_regclass('public.' || $1) \
           AND tgfoid = 'api_gateway._webhook_capture()'::regprocedure ORDER BY 1",
        &[&table],
    )
    .unwrap()
    .into_iter()
    .map(|r| r.get(0))
    .collect()
}

/// A new res_partner row cloned from an existing one (so every NOT NULL column of the fixture
/// has a value), with the given name and extra assignments; returns its id.
fn new_partner(tx: &mut Transaction, name: &str, is_company: bool) -> i32 {
    let cols: String = tx
        .query_one(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute \
              WHERE attrelid = 'public.res_partner'::regclass AND attnum > 0 AND NOT attisdropped \
                AND attname NOT IN ('id', 'name', 'is_company', 'email', 'type', 'active', 'parent_id', 'commercial_partner_id')",
            &[],
        )
        .unwrap()
        .get(0);
    tx.query_one(
        &format!(
            "INSERT INTO res_partner (name, is_company, email, type, active, {cols}) \
             SELECT $1, $2, NULL, 'contact', true, {cols} FROM res_partner ORDER BY id LIMIT 1 RETURNING id"
        ),
        &[&name, &is_company],
    )
    .unwrap()
    .get(0)
}

/// The payloads of the webhook's jobs, oldest first, as the worker would send them.
fn payloads(tx: &mut Transaction, webhook_id: i32) -> Vec<Value> {
    tx.query(
        "SELECT payload FROM api_gateway.webhook_queue WHERE webhook_id = $1 ORDER BY id",
        &[&webhook_id],
    )
    .unwrap()
    .into_iter()
    .map(|r| r.get(0))
    .collect()
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

#[test]
fn a_webhook_row_is_validated_compiled_and_installs_one_shared_trigger_set() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(&mut tx, "wh sql validate", "res.partner", "", "");
    let row = tx
        .query_one(
            "SELECT secret, api_gateway.webhook_secret(id), table_name, payload_fields, watched_fields, condition, timeout \
               FROM api_gateway.webhook WHERE id = $1",
            &[&id],
        )
        .unwrap();
    let secret: String = row.get(0);
    assert_eq!(row.get::<_, String>(1), secret);
    let key = api_gateway_core::webhook::decode_secret(&secret).unwrap();
    assert!(secret.starts_with("whsec_") && key.len() == 32, "{secret}");
    assert_eq!(row.get::<_, String>(2), "res_partner");
    let fields: Vec<String> = row.get(3);
    assert_eq!(fields[0], "id");
    assert!(fields.contains(&"name".to_string()) && fields.contains(&"email".to_string()));
    assert!(
        !fields
            .iter()
            .any(|f| f.starts_with("image_") || f.contains("password") || f.ends_with("token")),
        "no binary or credential-like field by default: {fields:?}"
    );
    let watched: Vec<String> = row.get(4);
    assert!(!watched.contains(&"write_date".to_string()) && !watched.contains(&"id".to_string()));
    assert_eq!(row.get::<_, Option<String>>(5), None);
    assert_eq!(
        triggers(&mut tx, "res_partner"),
        [
            "api_gateway_webhook_delete",
            "api_gateway_webhook_insert",
            "api_gateway_webhook_update"
        ]
    );
    // A second webhook on the same model shares the triggers.
    let id2 = add_webhook(
        &mut tx,
        "wh sql validate 2",
        "res.partner",
        ", on_unlink, fields",
        ", false, '{name,email}'",
    );
    assert_eq!(triggers(&mut tx, "res_partner").len(), 3);
    // The triggers follow the events the active webhooks want.
    tx.execute(
        "UPDATE api_gateway.webhook SET on_unlink = false WHERE id = $1",
        &[&id],
    )
    .unwrap();
    assert_eq!(
        triggers(&mut tx, "res_partner"),
        ["api_gateway_webhook_insert", "api_gateway_webhook_update"]
    );
    tx.execute(
        "UPDATE api_gateway.webhook SET active = false WHERE id = $1",
        &[&id],
    )
    .unwrap();
    assert_eq!(
        triggers(&mut tx, "res_partner").len(),
        2,
        "webhook 2 still wants create and write"
    );
    tx.execute("DELETE FROM api_gateway.webhook WHERE id = $1", &[&id2])
        .unwrap();
    assert!(triggers(&mut tx, "res_partner").is_empty());
    tx.execute(
        "UPDATE api_gateway.webhook SET active = true WHERE id = $1",
        &[&id],
    )
    .unwrap();
    assert_eq!(triggers(&mut tx, "res_partner").len(), 2);
    // Secret rotation: NULL generates a new one.
    tx.execute(
        "UPDATE api_gateway.webhook SET secret = NULL WHERE id = $1",
        &[&id],
    )
    .unwrap();
    let rotated: String = tx
        .query_one("SELECT api_gateway.webhook_secret($1)", &[&id])
        .unwrap()
        .get(0);
    assert_ne!(rotated, secret);
    tx.rollback().unwrap();
}

#[test]
fn bad_webhook_rows_are_refused_with_precise_errors() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let ins = |cols: &str, vals: &str| {
        format!(
            "INSERT INTO api_gateway.webhook (name, model, url{cols}) VALUES ('wh bad', {vals})"
        )
    };
    for (cols, vals, code, msg) in [
        (
            "",
            "'no.such.model', 'https://x.example/h'",
            "42P01",
            "unknown model",
        ),
        (
            "",
            "'res.partner', 'ftp://x.example/h'",
            "22023",
            "invalid webhook url",
        ),
        (
            "",
            "'res.partner', 'https://user:pw@x.example/h'",
            "22023",
            "invalid webhook url",
        ),
        (
            "",
            "'res.partner', 'https://x.example/a b'",
            "22023",
            "invalid webhook url",
        ),
        (
            ", headers",
            "'res.partner', 'https://x.example/h', '[1]'",
            "22023",
            "headers",
        ),
        (
            ", headers",
            "'res.partner', 'https://x.example/h', '{\"webhook-id\": \"x\"}'",
            "22023",
            "set by the gateway",
        ),
        (
            ", headers",
            "'res.partner', 'https://x.example/h', '{\"X-A\": \"a\\r\\nb\"}'",
            "22023",
            "control characters",
        ),
        (
            ", headers",
            "'res.partner', 'https://x.example/h', '{\"X-A\": 1}'",
            "22023",
            "string",
        ),
        (
            ", headers",
            "'res.partner', 'https://x.example/h', '{\"Bad Name\": \"v\"}'",
            "22023",
            "header name",
        ),
        (
            ", secret",
            "'res.partner', 'https://x.example/h', 'whsec_c2hvcnQ='",
            "22023",
            "secret",
        ),
        (
            ", secret",
            "'res.partner', 'https://x.example/h', 'password123'",
            "22023",
            "secret",
        ),
        (
            ", fields",
            "'res.partner', 'https://x.example/h', '{nope}'",
            "22023",
            "unknown field",
        ),
        (
            ", fields",
            "'res.partner', 'https://x.example/h', '{category_id}'",
            "22023",
            "no column",
        ),
        (
            ", domain",
            "'res.partner', 'https://x.example/h', '[(''name'', ''=''' ",
            "22023",
            "invalid webhook domain",
        ),
        (
            ", domain",
            "'res.partner', 'https://x.example/h', '[(''nope'', ''='', 1)]'",
            "22023",
            "invalid webhook domain",
        ),
        (
            ", domain",
            "'res.partner', 'https://x.example/h', '[(''name'', ''~~'', 1)]'",
            "22023",
            "invalid webhook domain",
        ),
        (
            ", on_create, on_write, on_unlink",
            "'res.partner', 'https://x.example/h', false, false, false",
            "23514",
            "check",
        ),
        (
            ", timeout",
            "'res.partner', 'https://x.example/h', '1 hour'",
            "23514",
            "check",
        ),
    ] {
        expect_err(&mut tx, &ins(cols, vals), code, msg);
    }
    tx.rollback().unwrap();
}

#[test]
fn create_write_unlink_are_captured_with_the_documented_payloads() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(
        &mut tx,
        "wh sql payloads",
        "res.partner",
        ", fields, headers",
        ", '{name,email,is_company,ref}', '{\"Authorization\": \"Bearer x\"}'",
    );
    let pid = new_partner(&mut tx, "Acme Corp", true);
    tx.execute(
        "UPDATE res_partner SET email = 'hello@acme.example', write_date = now() WHERE id = $1",
        &[&pid],
    )
    .unwrap();
    // Only write_date: nothing watched changed. An unwatched column: nothing either.
    tx.execute(
        "UPDATE res_partner SET write_date = now() + interval '1 minute' WHERE id = $1",
        &[&pid],
    )
    .unwrap();
    tx.execute(
        "UPDATE res_partner SET comment = 'not watched' WHERE id = $1",
        &[&pid],
    )
    .unwrap();
    // A rolled-back subtransaction leaves no job.
    tx.batch_execute(&format!(
        "SAVEPOINT s; UPDATE res_partner SET email = 'gone@acme.example' WHERE id = {pid}; ROLLBACK TO SAVEPOINT s"
    ))
    .unwrap();
    // Setting a watched field to NULL is a change whose previous value is kept.
    tx.execute(
        "UPDATE res_partner SET email = NULL, ref = 'R1' WHERE id = $1",
        &[&pid],
    )
    .unwrap();
    tx.execute("DELETE FROM res_partner WHERE id = $1", &[&pid])
        .unwrap();
    let p = payloads(&mut tx, id);
    assert_eq!(p.len(), 4, "{p:#?}");
    for x in &p {
        assert_eq!(x["model"], "res.partner");
        assert!(x["event_id"].as_str().unwrap().len() == 36);
        assert!(x["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(p[0]["action"], "create");
    assert_eq!(
        p[0]["record"],
        json!({"id": pid, "name": "Acme Corp", "email": null, "is_company": true, "ref": null})
    );
    assert!(p[0].get("changed").is_none() && p[0].get("previous").is_none());
    assert_eq!(p[1]["action"], "write");
    assert_eq!(
        p[1]["record"],
        json!({"id": pid, "name": "Acme Corp", "email": "hello@acme.example", "is_company": true, "ref": null})
    );
    assert_eq!(p[1]["changed"], json!(["email"]));
    assert_eq!(p[1]["previous"], json!({"email": null}));
    assert_eq!(p[2]["action"], "write");
    // Changed fields come in the table's column order.
    let mut changed: Vec<String> = serde_json::from_value(p[2]["changed"].clone()).unwrap();
    changed.sort();
    assert_eq!(changed, ["email", "ref"]);
    assert_eq!(
        p[2]["previous"],
        json!({"email": "hello@acme.example", "ref": null})
    );
    assert_eq!(p[2]["record"]["email"], Value::Null);
    assert_eq!(
        p[3],
        json!({
            "event_id": p[3]["event_id"], "timestamp": p[3]["timestamp"],
            "action": "unlink", "model": "res.partner", "record": {"id": pid}
        })
    );
    let ids: std::collections::HashSet<&str> =
        p.iter().map(|x| x["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "one event id per event");
    // The payload the worker gets is the same text on every claim (signatures cover it).
    let states: Vec<String> = tx
        .query(
            "SELECT state FROM api_gateway.webhook_job WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert!(states.iter().all(|s| s == "pending"));
    tx.rollback().unwrap();
}

#[test]
fn a_domain_filter_selects_the_records_that_fire() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let companies = add_webhook(
        &mut tx,
        "wh sql companies",
        "res.partner",
        ", fields, domain",
        ", '{name}', $$[('is_company', '=', True), ('name', 'not ilike', 'skip')]$$",
    );
    // Values with quotes and backslashes are inlined as literals, never as SQL.
    let tricky = add_webhook(
        &mut tx,
        "wh sql tricky",
        "res.partner",
        ", fields, domain",
        r#", '{name}', $$[('name', 'in', ["O'Brien \\ Co", "x'); DROP TABLE res_partner; --"])]$$"#,
    );
    let condition: String = tx
        .query_one(
            "SELECT condition FROM api_gateway.webhook WHERE id = $1",
            &[&tricky],
        )
        .unwrap()
        .get(0);
    // The trigger knows that filtered webhooks exist (its argument), so it runs their loop.
    let nargs: i16 = tx
        .query_one(
            "SELECT tgnargs FROM pg_trigger WHERE tgrelid = 'public.res_partner'::regclass AND tgname = 'api_gateway_webhook_insert'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(nargs, 1);
    assert!(condition.contains("O''Brien"), "{condition}");
    assert!(!condition.contains('$'), "no parameter left: {condition}");
    // Paths through relations compile too.
    add_webhook(
        &mut tx,
        "wh sql path",
        "res.partner",
        ", domain",
        ", $$[('category_id.name', 'ilike', 'vip'), ('parent_id.is_company', '=', True)]$$",
    );
    let a = new_partner(&mut tx, "A Company", true);
    let _b = new_partner(&mut tx, "A Person", false);
    let _c = new_partner(&mut tx, "skip Company", true);
    let d = new_partner(&mut tx, r"O'Brien \ Co", false);
    let e = new_partner(&mut tx, "x'); DROP TABLE res_partner; --", false);
    let got = |tx: &mut Transaction, w: i32| -> Vec<i64> {
        payloads(tx, w)
            .iter()
            .map(|p| p["record"]["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(got(&mut tx, companies), vec![i64::from(a)]);
    assert_eq!(got(&mut tx, tricky), vec![i64::from(d), i64::from(e)]);
    // Writes and unlinks are filtered the same way (unlink on the row as it was).
    tx.execute(
        "UPDATE res_partner SET name = name || ' 2' WHERE id = ANY($1)",
        &[&vec![a, d]],
    )
    .unwrap();
    tx.execute(
        "DELETE FROM res_partner WHERE id = ANY($1)",
        &[&vec![a, d, e]],
    )
    .unwrap();
    let actions: Vec<(String, i64)> = payloads(&mut tx, companies)
        .iter()
        .map(|p| {
            (
                p["action"].as_str().unwrap().to_string(),
                p["record"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("create".to_string(), i64::from(a)),
            ("write".to_string(), i64::from(a)),
            ("unlink".to_string(), i64::from(a))
        ]
    );
    tx.rollback().unwrap();
}

#[test]
fn a_bulk_statement_of_10000_rows_is_one_trigger_call_and_10000_events() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(&mut tx, "wh sql bulk", "res.partner", "", "");
    let cols: String = tx
        .query_one(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute \
              WHERE attrelid = 'public.res_partner'::regclass AND attnum > 0 AND NOT attisdropped \
                AND attname NOT IN ('id', 'name', 'type', 'parent_id', 'commercial_partner_id')",
            &[],
        )
        .unwrap()
        .get(0);
    let t = Instant::now();
    let n = tx
        .execute(
            &format!(
                "INSERT INTO res_partner (name, type, {cols}) \
                 SELECT 'bulk ' || g, 'contact', {cols} FROM (SELECT * FROM res_partner ORDER BY id LIMIT 1) p, generate_series(1, 10000) g"
            ),
            &[],
        )
        .unwrap();
    let insert = t.elapsed();
    assert_eq!(n, 10_000);
    let count = |tx: &mut Transaction, action: &str| -> i64 {
        tx.query_one(
            "SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = $1 AND action = $2",
            &[&id, &action],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(count(&mut tx, "create"), 10_000);
    let t = Instant::now();
    tx.execute(
        "UPDATE res_partner SET email = 'bulk@example.com' WHERE name LIKE 'bulk %'",
        &[],
    )
    .unwrap();
    let update = t.elapsed();
    assert_eq!(count(&mut tx, "write"), 10_000);
    let t = Instant::now();
    tx.execute("DELETE FROM res_partner WHERE name LIKE 'bulk %'", &[])
        .unwrap();
    let delete = t.elapsed();
    assert_eq!(count(&mut tx, "unlink"), 10_000);
    let distinct: i64 = tx
        .query_one(
            "SELECT count(DISTINCT event_id) FROM api_gateway.webhook_job WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(distinct, 30_000);
    eprintln!(
        "10,000 rows with one webhook: INSERT {} ms, UPDATE {} ms, DELETE {} ms",
        insert.as_millis(),
        update.as_millis(),
        delete.as_millis()
    );
    tx.rollback().unwrap();
}

#[test]
fn rows_serialise_like_to_jsonb_on_every_table_of_the_fixture() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    // Every table of public: the capture's JSON equals to_jsonb without its top-level NULLs
    // (nested values are kept as stored). Array and composite columns are left out on both
    // sides (the capture sends their text form, a documented difference).
    let tables: Vec<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut checked = 0i64;
    for t in &tables {
        let row = tx
            .query_one(
                "SELECT array_agg(a.attnum ORDER BY a.attnum), \
                        coalesce(array_agg(a.attname::text) FILTER (WHERE ty.typcategory IN ('A', 'C') OR ty.typtype IN ('c', 'd', 'r', 'm')), '{}') \
                   FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid \
                  WHERE a.attrelid = ('public.' || quote_ident($1))::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                &[t],
            )
            .unwrap();
        let attnums: Vec<i16> = row.get(0);
        let skip: Vec<String> = row.get(1);
        let bad: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM public.{t} x \
                      WHERE x.ctid IN (SELECT ctid FROM public.{t} LIMIT 300) \
                        AND api_gateway._webhook_row_json(x, $1)::jsonb - $2::text[] \
                            IS DISTINCT FROM (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}') \
                                                FROM jsonb_each(to_jsonb(x)) e WHERE jsonb_typeof(e.value) <> 'null') - $2::text[]",
                    t = quote_ident(t)
                ),
                &[&attnums, &skip],
            )
            .unwrap()
            .get(0);
        assert_eq!(bad, 0, "table {t}");
        checked += 1;
    }
    assert!(checked >= 15);
    tx.rollback().unwrap();
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[test]
fn capture_works_for_a_writer_without_any_right_on_the_schema() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(
        &mut tx,
        "wh sql odoo role",
        "res.partner.category",
        ", fields",
        ", '{name}'",
    );
    tx.batch_execute(
        "CREATE ROLE agw_wh_test_odoo NOLOGIN; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON res_partner_category TO agw_wh_test_odoo; \
         GRANT USAGE ON SEQUENCE res_partner_category_id_seq TO agw_wh_test_odoo; \
         SET LOCAL ROLE agw_wh_test_odoo",
    )
    .unwrap();
    tx.execute(
        "INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"as odoo\"}', true)",
        &[],
    )
    .unwrap();
    expect_err(
        &mut tx,
        "SELECT * FROM api_gateway.webhook_job",
        "42501",
        "permission denied",
    );
    tx.batch_execute("RESET ROLE").unwrap();
    let p = payloads(&mut tx, id);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["record"]["name"], json!({"en_US": "as odoo"}));
    tx.rollback().unwrap();
}

#[test]
fn the_worker_protocol_claims_leases_completes_replays_and_purges() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    // This transaction's jobs only: other webhooks of the database are switched off inside it.
    tx.batch_execute("UPDATE api_gateway.webhook SET active = false WHERE active")
        .unwrap();
    let id = add_webhook(
        &mut tx,
        "wh sql protocol",
        "res.partner.category",
        ", fields, timeout",
        ", '{name}', '2 seconds'",
    );
    tx.execute(
        "INSERT INTO res_partner_category (name, active) SELECT jsonb_build_object('en_US', 'p' || g), true FROM generate_series(1, 5) g",
        &[],
    )
    .unwrap();
    let claim = |tx: &mut Transaction, slots: i32| -> Vec<(i64, i32, String, String)> {
        tx.query(
            "SELECT job_id, attempt, payload, secret FROM api_gateway.webhook_claim('t', $1)",
            &[&slots],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
    };
    let first = claim(&mut tx, 3);
    assert_eq!(first.len(), 3, "at most `slots` per webhook");
    assert!(first.iter().all(|j| j.1 == 1));
    let secret: String = tx
        .query_one("SELECT api_gateway.webhook_secret($1)", &[&id])
        .unwrap()
        .get(0);
    assert!(first.iter().all(|j| j.3 == secret));
    let body: Value = serde_json::from_str(&first[0].2).unwrap();
    assert_eq!(body["action"], "create");
    let leased: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_gateway.webhook_queue WHERE webhook_id = $1 AND status = 'in_flight' AND leased_by = 't' \
               AND next_attempt_at >= now() + interval '2 seconds'",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        leased, 3,
        "claimed jobs are leased for the timeout plus the margin"
    );
    let second = claim(&mut tx, 10);
    assert_eq!(second.len(), 2, "leased jobs are not claimed again");
    assert!(claim(&mut tx, 10).is_empty());
    // Results: delivered, retry, dead, a stale attempt number (ignored), gone.
    let ids: Vec<i64> = first.iter().chain(second.iter()).map(|j| j.0).collect();
    let updated: i32 = tx
        .query_one(
            "SELECT api_gateway.webhook_complete($1, $2, $3, $4, $5, $6)",
            &[
                &ids[..4].to_vec(),
                &vec![1i32, 1, 1, 7],
                &vec!["delivered", "retry", "dead", "delivered"],
                &vec![Some(200i32), Some(503), Some(500), Some(200)],
                &vec![
                    None,
                    Some("HTTP 503: busy"),
                    Some("HTTP 500: boom"),
                    None::<&str>,
                ],
                &vec![0f64, 60.0, 0.0, 0.0],
            ],
        )
        .unwrap()
        .get(0);
    assert_eq!(updated, 3);
    let state = |tx: &mut Transaction, job: i64| -> (String, Option<i32>, Option<String>, bool) {
        let r = tx
            .query_one(
                "SELECT state, last_status, last_error, next_attempt_at > now() + interval '50 seconds' FROM api_gateway.webhook_job WHERE id = $1",
                &[&job],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(state(&mut tx, ids[0]).0, "delivered");
    assert_eq!(
        state(&mut tx, ids[1]),
        (
            "failed".into(),
            Some(503),
            Some("HTTP 503: busy".into()),
            true
        )
    );
    assert_eq!(state(&mut tx, ids[2]).0, "dead");
    assert_eq!(
        state(&mut tx, ids[3]).0,
        "pending",
        "a result for another attempt is ignored"
    );
    tx.query_one(
        "SELECT api_gateway.webhook_complete($1, '{1}', '{gone}', '{410}', '{gone}', '{0}')",
        &[&vec![ids[4]]],
    )
    .unwrap();
    let (active, reason): (bool, Option<String>) = {
        let r = tx
            .query_one(
                "SELECT active, disabled_reason FROM api_gateway.webhook WHERE id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(!active && reason.unwrap().contains("410"));
    assert_eq!(
        state(&mut tx, ids[4]).0,
        "failed",
        "the 410 job waits for the webhook"
    );
    assert!(triggers(&mut tx, "res_partner_category").is_empty());
    // Replay: a dead or delivered job goes back to pending with the same event id.
    let before: String = tx
        .query_one(
            "SELECT event_id::text FROM api_gateway.webhook_job WHERE id = $1",
            &[&ids[2]],
        )
        .unwrap()
        .get(0);
    for job in [ids[0], ids[2]] {
        let ok: bool = tx
            .query_one("SELECT api_gateway.replay_webhook_job($1)", &[&job])
            .unwrap()
            .get(0);
        assert!(ok);
        let r = tx
            .query_one(
                "SELECT state, attempts, event_id::text FROM api_gateway.webhook_job WHERE id = $1",
                &[&job],
            )
            .unwrap();
        assert_eq!(r.get::<_, String>(0), "pending");
        assert_eq!(r.get::<_, i32>(1), 0);
        if job == ids[2] {
            assert_eq!(r.get::<_, String>(2), before);
        }
    }
    let missing: bool = tx
        .query_one("SELECT api_gateway.replay_webhook_job(-1)", &[])
        .unwrap()
        .get(0);
    assert!(!missing);
    // Purge: delivered and dead jobs older than the period go, the others stay.
    tx.execute(
        "UPDATE api_gateway.webhook_job SET state = 'delivered', updated_at = now() - interval '30 days' WHERE id = $1",
        &[&ids[0]],
    )
    .unwrap();
    tx.execute(
        "UPDATE api_gateway.webhook_job SET state = 'dead', updated_at = now() - interval '1 day' WHERE id = $1",
        &[&ids[2]],
    )
    .unwrap();
    let purged: i64 = tx
        .query_one("SELECT api_gateway.purge_webhook_jobs()", &[])
        .unwrap()
        .get(0);
    assert!(purged >= 1);
    let left: Vec<i64> = tx
        .query(
            "SELECT id FROM api_gateway.webhook_job WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!left.contains(&ids[0]) && left.contains(&ids[2]));
    let purged: i64 = tx
        .query_one(
            "SELECT api_gateway.purge_webhook_jobs(interval '1 hour')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(purged >= 1);
    tx.rollback().unwrap();
}

/// Removes the committed webhook of a test, whatever happens.
struct Cleanup(i32);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut db = connect();
        let _ = db.execute("DELETE FROM api_gateway.webhook WHERE id = $1", &[&self.0]);
        let _ = db.execute(
            "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE 'wh sql notify %'",
            &[],
        );
    }
}

fn notifications(listener: &mut Client, wait: Duration) -> usize {
    let mut n = 0;
    let mut it = listener.notifications();
    let mut timed = it.timeout_iter(wait);
    while let Ok(Some(note)) = timed.next() {
        if note.channel() == "api_gateway_webhook" {
            n += 1;
        }
    }
    n
}

use postgres::fallible_iterator::FallibleIterator;

#[test]
fn notify_arrives_at_commit_only_and_not_while_a_worker_is_awake() {
    let _g = serial();
    let mut admin = connect();
    admin.batch_execute("SET lock_timeout = '60s'").unwrap();
    let id: i32 = admin
        .query_one(
            "INSERT INTO api_gateway.webhook (name, model, url, fields, active) \
             VALUES ('wh sql notify ' || pg_backend_pid(), 'res.partner.category', 'https://hooks.example.com/n', '{name}', true) RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    let _cleanup = Cleanup(id);
    let mut listener = connect();
    listener
        .batch_execute("LISTEN api_gateway_webhook")
        .unwrap();
    let _ = notifications(&mut listener, Duration::from_millis(200));
    let mut writer = connect();
    let count = |db: &mut Client| -> i64 {
        db.query_one(
            "SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0)
    };
    // Rolled back: no job, no notification.
    writer
        .batch_execute(
            "BEGIN; INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"wh sql notify rollback\"}', true); ROLLBACK",
        )
        .unwrap();
    assert_eq!(notifications(&mut listener, Duration::from_millis(400)), 0);
    assert_eq!(count(&mut admin), 0);
    // Not yet committed: no notification; committed: one, for the whole transaction.
    writer.batch_execute("BEGIN").unwrap();
    for k in 0..3 {
        writer
            .execute(
                "INSERT INTO res_partner_category (name, active) VALUES (jsonb_build_object('en_US', 'wh sql notify ' || $1::int), true)",
                &[&k],
            )
            .unwrap();
    }
    assert_eq!(notifications(&mut listener, Duration::from_millis(300)), 0);
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(notifications(&mut listener, Duration::from_millis(1000)), 1);
    assert_eq!(count(&mut admin), 3);
    // A worker that is awake holds the lock: no notification (it claims by itself).
    let mut worker = connect();
    let got: bool = worker
        .query_one("SELECT pg_try_advisory_lock(1634170728, 1)", &[])
        .unwrap()
        .get(0);
    assert!(got);
    writer
        .execute(
            "INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"wh sql notify awake\"}', true)",
            &[],
        )
        .unwrap();
    assert_eq!(notifications(&mut listener, Duration::from_millis(400)), 0);
    assert_eq!(count(&mut admin), 4);
    // Two workers claiming at once never get the same job.
    let mut a = connect();
    let mut b = connect();
    a.batch_execute("BEGIN").unwrap();
    b.batch_execute("BEGIN").unwrap();
    let ja: Vec<i64> = a
        .query(
            "SELECT job_id FROM api_gateway.webhook_claim('a', 2) WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let jb: Vec<i64> = b
        .query(
            "SELECT job_id FROM api_gateway.webhook_claim('b', 10) WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ja.len(), 2);
    assert_eq!(jb.len(), 2, "b skips a's locked rows: {ja:?} {jb:?}");
    assert!(ja.iter().all(|j| !jb.contains(j)));
    a.batch_execute("ROLLBACK").unwrap();
    b.batch_execute("ROLLBACK").unwrap();
    worker
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .unwrap();
}

#[test]
fn alter_table_and_drop_extension_leave_odoo_tables_clean() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let plain = add_webhook(
        &mut tx,
        "wh sql alter plain",
        "res.partner",
        ", fields",
        ", '{name,ref}'",
    );
    let filtered = add_webhook(
        &mut tx,
        "wh sql alter filtered",
        "res.partner",
        ", fields, domain",
        ", '{name}', $$[('ref', '=', 'X')]$$",
    );
    // A new column (a module adds a field) is not sent; a renamed column the domain needs
    // deactivates that webhook instead of breaking every later write.
    tx.batch_execute("ALTER TABLE res_partner ADD COLUMN agw_secret_token text DEFAULT 's3cr3t'")
        .unwrap();
    tx.batch_execute("ALTER TABLE res_partner RENAME COLUMN ref TO agw_ref_renamed")
        .unwrap();
    let r = tx
        .query_one(
            "SELECT active, disabled_reason FROM api_gateway.webhook WHERE id = $1",
            &[&filtered],
        )
        .unwrap();
    assert!(!r.get::<_, bool>(0));
    assert!(r.get::<_, String>(1).contains("ALTER TABLE"));
    let pid = new_partner(&mut tx, "after alter", false);
    let p = payloads(&mut tx, plain);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["record"]["id"], json!(pid));
    assert_eq!(p[0]["record"]["name"], "after alter");
    assert!(p[0]["record"].get("agw_secret_token").is_none());
    // DROP EXTENSION (without CASCADE) succeeds and takes the triggers away.
    assert!(!triggers(&mut tx, "res_partner").is_empty());
    tx.batch_execute("DROP EXTENSION api_gateway").unwrap();
    let left: i64 = tx
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'api_gateway_webhook_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    tx.rollback().unwrap();
    // Dropping another extension keeps them (they are removed and installed again when its
    // statement names api_gateway).
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    add_webhook(&mut tx, "wh sql other ext", "res.partner.category", "", "");
    let available: bool = tx
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto' AND installed_version IS NULL)", &[])
        .unwrap()
        .get(0);
    if available {
        tx.batch_execute("CREATE EXTENSION pgcrypto").unwrap();
        tx.batch_execute("DROP EXTENSION pgcrypto /* not api_gateway */")
            .unwrap();
        assert_eq!(triggers(&mut tx, "res_partner_category").len(), 3);
    }
    tx.rollback().unwrap();
}
