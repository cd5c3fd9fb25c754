//! Webhooks on the SQL side: configuration checks, the capture triggers and their payloads,
//! one event per record and transaction, domain filters, bulk statements, no NOTIFY from
//! capture, the worker's claim/complete protocol (per-record order, reclaim after a crash),
//! replay and purge, secret rotation, ALTER TABLE and DROP EXTENSION. Almost everything runs in a
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

/// `n` res_partner rows in ONE statement (one capture call), cloned from the first partner so
/// every NOT NULL column of the fixture has a value, named `{prefix} 1..n`; returns how many.
fn insert_partners(tx: &mut Transaction, prefix: &str, n: i64) -> u64 {
    let cols: String = tx
        .query_one(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute \
              WHERE attrelid = 'public.res_partner'::regclass AND attnum > 0 AND NOT attisdropped \
                AND attname NOT IN ('id', 'name', 'type', 'parent_id', 'commercial_partner_id')",
            &[],
        )
        .unwrap()
        .get(0);
    tx.execute(
        &format!(
            "INSERT INTO res_partner (name, type, {cols}) \
             SELECT $1 || ' ' || g, 'contact', {cols} FROM (SELECT * FROM res_partner ORDER BY id LIMIT 1) p, generate_series(1, $2::int8) g"
        ),
        &[&prefix, &n],
    )
    .unwrap()
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
    // The triggers follow the events the active webhooks want: INSERT for creates, UPDATE
    // for writes and for refreshing the creates of the same transaction, DELETE for every
    // webhook (an unlink cancels the create of its transaction).
    tx.execute(
        "UPDATE api_gateway.webhook SET on_unlink = false, on_write = false WHERE id IN ($1, $2)",
        &[&id, &id2],
    )
    .unwrap();
    assert_eq!(triggers(&mut tx, "res_partner").len(), 3);
    tx.execute(
        "UPDATE api_gateway.webhook SET on_create = false, on_unlink = true WHERE id IN ($1, $2)",
        &[&id, &id2],
    )
    .unwrap();
    assert_eq!(
        triggers(&mut tx, "res_partner"),
        ["api_gateway_webhook_delete"]
    );
    tx.execute(
        "UPDATE api_gateway.webhook SET on_create = true, on_write = true WHERE id IN ($1, $2)",
        &[&id, &id2],
    )
    .unwrap();
    tx.execute(
        "UPDATE api_gateway.webhook SET active = false WHERE id = $1",
        &[&id],
    )
    .unwrap();
    assert_eq!(
        triggers(&mut tx, "res_partner").len(),
        3,
        "webhook 2 is still active"
    );
    tx.execute("DELETE FROM api_gateway.webhook WHERE id = $1", &[&id2])
        .unwrap();
    assert!(triggers(&mut tx, "res_partner").is_empty());
    tx.execute(
        "UPDATE api_gateway.webhook SET active = true WHERE id = $1",
        &[&id],
    )
    .unwrap();
    assert_eq!(triggers(&mut tx, "res_partner").len(), 3);
    // Secret rotation: NULL generates a new one; the old one stays valid for 24 hours
    // (deliveries carry both signatures meanwhile).
    tx.execute(
        "UPDATE api_gateway.webhook SET secret = NULL WHERE id = $1",
        &[&id],
    )
    .unwrap();
    let secrets = |tx: &mut Transaction| -> (String, Option<String>, Option<f64>) {
        let r = tx
            .query_one(
                "SELECT api_gateway.webhook_secret(id), previous_secret,                         extract(epoch FROM previous_secret_expires_at - now())::float8                    FROM api_gateway.webhook WHERE id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let (rotated, previous, left) = secrets(&mut tx);
    assert_ne!(rotated, secret);
    assert_eq!(previous.as_deref(), Some(secret.as_str()));
    assert_eq!(left, Some(86_400.0));
    // The claim hands the worker both while the overlap lasts.
    tx.execute(
        "INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"wh sql rotation\"}', true)",
        &[],
    )
    .unwrap();
    let cat = add_webhook(&mut tx, "wh sql rotation", "res.partner.category", "", "");
    tx.execute(
        "UPDATE api_gateway.webhook SET secret = NULL WHERE id = $1",
        &[&cat],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"wh sql rotation 2\"}', true)",
        &[],
    )
    .unwrap();
    let r = tx
        .query_one(
            "SELECT c.secret, c.previous_secret, w.previous_secret FROM api_gateway.webhook_claim('t', 10) c \
               JOIN api_gateway.webhook w ON w.id = c.webhook_id WHERE c.webhook_id = $1",
            &[&cat],
        )
        .unwrap();
    assert_eq!(r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2));
    assert!(r.get::<_, Option<String>>(1).is_some());
    assert_ne!(r.get::<_, String>(0), r.get::<_, String>(1));
    // rotate_webhook_secret: the overlap is chosen per rotation; 0 ends it at once.
    let third: String = tx
        .query_one(
            "SELECT api_gateway.rotate_webhook_secret($1, interval '1 hour')",
            &[&id],
        )
        .unwrap()
        .get(0);
    let (now, previous, left) = secrets(&mut tx);
    assert_eq!(now, third);
    assert_eq!(previous.as_deref(), Some(rotated.as_str()));
    assert_eq!(left, Some(3_600.0));
    tx.query_one(
        "SELECT api_gateway.rotate_webhook_secret($1, interval '0')",
        &[&id],
    )
    .unwrap();
    let (_, previous, left) = secrets(&mut tx);
    assert_eq!((previous, left), (None, None));
    // Ending an overlap early; previous_secret cannot be written by hand.
    tx.query_one("SELECT api_gateway.rotate_webhook_secret($1)", &[&id])
        .unwrap();
    tx.execute(
        "UPDATE api_gateway.webhook SET previous_secret = 'whsec_forged', previous_secret_expires_at = now() WHERE id = $1",
        &[&id],
    )
    .unwrap();
    let (_, previous, _) = secrets(&mut tx);
    assert_eq!(previous, None);
    expect_err(
        &mut tx,
        &format!("SELECT api_gateway.rotate_webhook_secret({id}, interval '-1 hour')"),
        "22023",
        "overlap",
    );
    let missing: Option<String> = tx
        .query_one("SELECT api_gateway.rotate_webhook_secret(-1)", &[])
        .unwrap()
        .get(0);
    assert_eq!(missing, None);
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
    // Issue 19: hop-by-hop and framing headers, and ports out of range, are refused when the
    // row is inserted or updated, with 22023 and the column named.
    let refused = |tx: &mut Transaction, sql: &str, column: &str, contains: &str| {
        tx.batch_execute("SAVEPOINT e").unwrap();
        let err = tx.batch_execute(sql).unwrap_err();
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("{sql}: {err:?}"));
        assert_eq!(db.code().code(), "22023", "{sql}: {db:?}");
        assert_eq!(db.column(), Some(column), "{sql}: {db:?}");
        assert!(db.message().contains(contains), "{sql}: {}", db.message());
        tx.batch_execute("ROLLBACK TO SAVEPOINT e").unwrap();
    };
    let ok = add_webhook(&mut tx, "wh sql ok", "res.partner", "", "");
    for name in [
        "Upgrade",
        "TE",
        "Keep-Alive",
        "Trailer",
        "Expect",
        "Proxy-Authorization",
        "Connection",
        "transfer-encoding",
        "Host",
        "Content-Length",
    ] {
        let headers = format!("{{\"{name}\": \"x\"}}");
        refused(
            &mut tx,
            &ins(
                ", headers",
                &format!("'res.partner', 'https://x.example/h', '{headers}'"),
            ),
            "headers",
            name,
        );
        refused(
            &mut tx,
            &format!("UPDATE api_gateway.webhook SET headers = '{headers}' WHERE id = {ok}"),
            "headers",
            name,
        );
    }
    for url in [
        "https://x.example:99999/h",
        "https://x.example:0/h",
        "http://x.example:65536",
        "https://x.example:8o/h",
        "https://x.example:/h",
        "http://[::1]:123456/h",
    ] {
        refused(
            &mut tx,
            &ins("", &format!("'res.partner', '{url}'")),
            "url",
            "port",
        );
        refused(
            &mut tx,
            &format!("UPDATE api_gateway.webhook SET url = '{url}' WHERE id = {ok}"),
            "url",
            "port",
        );
    }
    // What stays accepted: ports 1 to 65535, IPv6 literals, ordinary custom headers.
    for (url, headers) in [
        (
            "https://x.example:65535/h",
            r#"{"X-Api-Key": "k", "Authorization": "Bearer t"}"#,
        ),
        (
            "http://[::1]:8080/h?a=b:c",
            r#"{"Accept": "application/json"}"#,
        ),
        ("https://x.example/a:b", "{}"),
        ("http://127.0.0.1:1", "{}"),
    ] {
        tx.execute(
            "UPDATE api_gateway.webhook SET url = $1, headers = $2::text::jsonb WHERE id = $3",
            &[&url, &headers, &ok],
        )
        .unwrap_or_else(|e| panic!("{url} {headers}: {e:?}"));
    }
    tx.rollback().unwrap();
}

/// Statements run when dropped (removes what a test committed, whatever happens).
struct CleanupSql(Vec<String>);

impl Drop for CleanupSql {
    fn drop(&mut self) {
        let mut db = connect();
        for sql in &self.0 {
            let _ = db.batch_execute(sql);
        }
    }
}

/// Run `f` in its own committed transaction.
fn committed<T>(db: &mut Client, f: impl FnOnce(&mut Transaction) -> T) -> T {
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("SET LOCAL lock_timeout = '60s'").unwrap();
    let out = f(&mut tx);
    tx.commit().unwrap();
    out
}

#[test]
fn create_write_unlink_are_captured_with_the_documented_payloads() {
    let _g = serial();
    let mut db = connect();
    // One transaction per change (changes of one record in one transaction are merged, see
    // the next test), committed; the cleanup removes the webhook, its jobs and the partner.
    let id = committed(&mut db, |tx| {
        add_webhook(
            tx,
            "wh sql payloads",
            "res.partner",
            ", fields, headers",
            ", '{name,email,is_company,ref}', '{\"Authorization\": \"Bearer x\"}'",
        )
    });
    let _cleanup = CleanupSql(vec![
        format!("DELETE FROM api_gateway.webhook WHERE id = {id}"),
        "DELETE FROM res_partner WHERE name = 'Acme Corp wh sql'".into(),
    ]);
    let pid = committed(&mut db, |tx| new_partner(tx, "Acme Corp wh sql", true));
    committed(&mut db, |tx| {
        tx.execute(
            "UPDATE res_partner SET email = 'hello@acme.example', write_date = now() WHERE id = $1",
            &[&pid],
        )
        .unwrap();
    });
    // Only write_date: nothing watched changed. An unwatched column: nothing either.
    committed(&mut db, |tx| {
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
    });
    // A rolled-back subtransaction leaves no job.
    committed(&mut db, |tx| {
        tx.batch_execute(&format!(
            "SAVEPOINT s; UPDATE res_partner SET email = 'gone@acme.example' WHERE id = {pid}; ROLLBACK TO SAVEPOINT s"
        ))
        .unwrap();
    });
    // Setting a watched field to NULL is a change whose previous value is kept.
    committed(&mut db, |tx| {
        tx.execute(
            "UPDATE res_partner SET email = NULL, ref = 'R1' WHERE id = $1",
            &[&pid],
        )
        .unwrap();
    });
    committed(&mut db, |tx| {
        tx.execute("DELETE FROM res_partner WHERE id = $1", &[&pid])
            .unwrap();
    });
    let mut tx = db.transaction().unwrap();
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
        json!({"id": pid, "name": "Acme Corp wh sql", "email": null, "is_company": true, "ref": null})
    );
    assert!(p[0].get("changed").is_none() && p[0].get("previous").is_none());
    assert_eq!(p[1]["action"], "write");
    assert_eq!(
        p[1]["record"],
        json!({"id": pid, "name": "Acme Corp wh sql", "email": "hello@acme.example", "is_company": true, "ref": null})
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

/// (action, record id, record, changed, previous) of a webhook's events, oldest first.
fn events(tx: &mut Transaction, webhook_id: i32) -> Vec<(String, i64, Value, Value, Value)> {
    payloads(tx, webhook_id)
        .into_iter()
        .map(|p| {
            (
                p["action"].as_str().unwrap().to_string(),
                p["record"]["id"].as_i64().unwrap(),
                p["record"].clone(),
                p.get("changed").cloned().unwrap_or(Value::Null),
                p.get("previous").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[test]
fn one_event_per_record_per_webhook_per_transaction() {
    let _g = serial();
    let mut db = connect();
    // An existing partner, as the fixture has it (its changes are rolled back).
    let (p0, name0, email0, ref0): (i32, String, Option<String>, Option<String>) = {
        let r = db
            .query_one(
                "SELECT id, name, email, ref FROM res_partner WHERE name IS NOT NULL ORDER BY id DESC LIMIT 1",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    // A partner committed before any webhook exists (so that it can be deleted with no event
    // of its creation), removed at the end.
    let lone = committed(&mut db, |tx| new_partner(tx, "wh sql lone", false));
    let _cleanup = CleanupSql(vec![format!("DELETE FROM res_partner WHERE id = {lone}")]);
    let order: Vec<String> = db
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = 'public.res_partner'::regclass \
              AND attname IN ('name', 'email', 'ref') ORDER BY attnum",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let fields = ", fields";
    let three = ", '{name,email,ref,write_date}'";
    let case = |db: &mut Client, f: &dyn Fn(&mut Transaction, i32)| {
        let mut tx = db.transaction().unwrap();
        prepare(&mut tx);
        tx.batch_execute("UPDATE api_gateway.webhook SET active = false WHERE active")
            .unwrap();
        let w = add_webhook(&mut tx, "wh sql merge", "res.partner", fields, three);
        f(&mut tx, w);
        tx.rollback().unwrap();
    };

    // create + writes: one create, with the record as the transaction left it (an UPDATE of
    // unwatched columns only refreshes it too: write_date).
    case(&mut db, &|tx, w| {
        let id = new_partner(tx, "M1", false);
        tx.execute(
            "UPDATE res_partner SET email = 'm1@x' WHERE id = $1",
            &[&id],
        )
        .unwrap();
        tx.execute(
            "UPDATE res_partner SET ref = 'R1', name = 'M1 renamed' WHERE id = $1",
            &[&id],
        )
        .unwrap();
        tx.execute(
            "UPDATE res_partner SET write_date = '2020-01-02 03:04:05' WHERE id = $1",
            &[&id],
        )
        .unwrap();
        let e = events(tx, w);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "create");
        assert_eq!(
            e[0].2,
            json!({"id": id, "name": "M1 renamed", "email": "m1@x", "ref": "R1", "write_date": "2020-01-02T03:04:05"})
        );
        assert_eq!((e[0].3.clone(), e[0].4.clone()), (Value::Null, Value::Null));
    });

    // Several writes: one write whose changed/previous cover the whole transaction, changed
    // in the table's column order, previous as before the transaction.
    case(&mut db, &|tx, w| {
        tx.execute("UPDATE res_partner SET ref = 'W1' WHERE id = $1", &[&p0])
            .unwrap();
        tx.execute(
            "UPDATE res_partner SET email = 'w1@x', ref = 'W2' WHERE id = $1",
            &[&p0],
        )
        .unwrap();
        tx.execute(
            "UPDATE res_partner SET name = 'W name' WHERE id = $1",
            &[&p0],
        )
        .unwrap();
        let e = events(tx, w);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "write");
        assert_eq!(e[0].2["name"], "W name");
        assert_eq!(e[0].2["email"], "w1@x");
        assert_eq!(e[0].2["ref"], "W2");
        assert_eq!(e[0].3, json!(order));
        assert_eq!(e[0].4, json!({"name": name0, "email": email0, "ref": ref0}));
    });

    // A field set back to its value before the transaction is no change; nothing left: no event.
    case(&mut db, &|tx, w| {
        tx.execute(
            "UPDATE res_partner SET ref = 'B1', email = 'b1@x' WHERE id = $1",
            &[&p0],
        )
        .unwrap();
        tx.execute(
            "UPDATE res_partner SET ref = $2 WHERE id = $1",
            &[&p0, &ref0],
        )
        .unwrap();
        let e = events(tx, w);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].3, json!(["email"]));
        assert_eq!(e[0].4, json!({"email": email0}));
        tx.execute(
            "UPDATE res_partner SET email = $2 WHERE id = $1",
            &[&p0, &email0],
        )
        .unwrap();
        assert!(events(tx, w).is_empty());
    });

    // create + unlink, create + writes + unlink: nothing.
    case(&mut db, &|tx, w| {
        let a = new_partner(tx, "gone soon", false);
        let b = new_partner(tx, "gone later", false);
        tx.execute("DELETE FROM res_partner WHERE id = $1", &[&a])
            .unwrap();
        tx.execute("UPDATE res_partner SET email = 'b@x' WHERE id = $1", &[&b])
            .unwrap();
        tx.execute("DELETE FROM res_partner WHERE id = $1", &[&b])
            .unwrap();
        assert!(events(tx, w).is_empty(), "{:?}", events(tx, w));
    });

    // writes + unlink: one unlink.
    case(&mut db, &|tx, w| {
        tx.execute(
            "UPDATE res_partner SET email = 'l@x' WHERE id = $1",
            &[&lone],
        )
        .unwrap();
        tx.execute("UPDATE res_partner SET ref = 'L' WHERE id = $1", &[&lone])
            .unwrap();
        tx.execute("DELETE FROM res_partner WHERE id = $1", &[&lone])
            .unwrap();
        let e = events(tx, w);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0.as_str(), e[0].1), ("unlink", i64::from(lone)));
        assert_eq!(e[0].2, json!({"id": lone}));
    });

    // Savepoints: what a rolled-back savepoint merged is undone, and a capture rolled back
    // with its savepoint does not count as the transaction's first one.
    case(&mut db, &|tx, w| {
        tx.batch_execute(&format!(
            "SAVEPOINT a; UPDATE res_partner SET email = 's0@x' WHERE id = {p0}; ROLLBACK TO SAVEPOINT a; \
             UPDATE res_partner SET email = 's1@x' WHERE id = {p0}; \
             SAVEPOINT b; UPDATE res_partner SET name = 'S', email = 's2@x' WHERE id = {p0}; ROLLBACK TO SAVEPOINT b"
        ))
        .unwrap();
        let e = events(tx, w);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].3, json!(["email"]));
        assert_eq!(e[0].2["email"], "s1@x");
        assert_eq!(e[0].4, json!({"email": email0}));
        let c = new_partner(tx, "kept", false);
        tx.batch_execute(&format!(
            "SAVEPOINT c; DELETE FROM res_partner WHERE id = {c}; ROLLBACK TO SAVEPOINT c; \
             SAVEPOINT d; UPDATE res_partner SET ref = 'K' WHERE id = {c}; RELEASE SAVEPOINT d"
        ))
        .unwrap();
        let e = events(tx, w);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!((e[1].0.as_str(), e[1].1), ("create", i64::from(c)));
        assert_eq!(e[1].2["ref"], "K");
    });

    // Each webhook has its own event; a create-only webhook's create gets the values of the
    // writes that follow it (Odoo's flush), and disappears with an unlink.
    case(&mut db, &|tx, w| {
        let names = add_webhook(
            tx,
            "wh sql merge names",
            "res.partner",
            ", fields, on_write",
            ", '{name}', true",
        );
        let creates = add_webhook(
            tx,
            "wh sql merge creates",
            "res.partner",
            ", fields, on_write, on_unlink",
            ", '{name,email}', false, false",
        );
        tx.execute("UPDATE res_partner SET name = 'Two' WHERE id = $1", &[&p0])
            .unwrap();
        tx.execute(
            "UPDATE res_partner SET email = 'two@x' WHERE id = $1",
            &[&p0],
        )
        .unwrap();
        let d = new_partner(tx, "flushed", false);
        tx.execute(
            "UPDATE res_partner SET email = 'flush@x' WHERE id = $1",
            &[&d],
        )
        .unwrap();
        let e = events(tx, w);
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0].3,
            json!(order.iter().filter(|f| *f != "ref").collect::<Vec<_>>())
        );
        let n = events(tx, names);
        assert_eq!(n.len(), 2, "{n:?}");
        assert_eq!(
            (n[0].0.as_str(), n[0].3.clone()),
            ("write", json!(["name"]))
        );
        assert_eq!(n[1].0, "create");
        let c = events(tx, creates);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            c[0].2,
            json!({"id": d, "name": "flushed", "email": "flush@x"})
        );
        tx.execute("DELETE FROM res_partner WHERE id = $1", &[&d])
            .unwrap();
        assert!(events(tx, creates).is_empty());
        assert_eq!(events(tx, w).len(), 1);
    });

    // A domain: checked when the statement first queues the record's event; the merged event
    // then follows the record.
    case(&mut db, &|tx, _| {
        let dw = add_webhook(
            tx,
            "wh sql merge domain",
            "res.partner",
            ", fields, domain",
            ", '{ref,email}', $$[('ref', '=', 'D')]$$",
        );
        let x = new_partner(tx, "domain", false);
        assert!(events(tx, dw).is_empty());
        tx.execute("UPDATE res_partner SET ref = 'D' WHERE id = $1", &[&x])
            .unwrap();
        tx.execute("UPDATE res_partner SET email = 'd@x' WHERE id = $1", &[&x])
            .unwrap();
        let e = events(tx, dw);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "write");
        assert_eq!(
            e[0].3,
            json!(order.iter().filter(|f| *f != "name").collect::<Vec<_>>())
        );
        tx.execute("UPDATE res_partner SET ref = 'E' WHERE id = $1", &[&x])
            .unwrap();
        let e = events(tx, dw);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].2["ref"], "E");
        tx.execute("DELETE FROM res_partner WHERE id = $1", &[&x])
            .unwrap();
        let e = events(tx, dw);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "unlink");
    });
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
    // Writes and unlinks are filtered the same way (unlink on the row as it was); in the
    // same transaction they merge into the creates.
    tx.execute(
        "UPDATE res_partner SET name = name || ' 2' WHERE id = ANY($1)",
        &[&vec![a, d]],
    )
    .unwrap();
    let p = payloads(&mut tx, companies);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["action"], "create");
    assert_eq!(p[0]["record"]["name"], "A Company 2");
    tx.execute(
        "DELETE FROM res_partner WHERE id = ANY($1)",
        &[&vec![a, d, e]],
    )
    .unwrap();
    assert!(got(&mut tx, companies).is_empty());
    assert!(got(&mut tx, tricky).is_empty());
    tx.rollback().unwrap();
}

#[test]
fn a_bulk_statement_of_10000_rows_is_one_trigger_call_and_10000_events_merged_set_based() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(&mut tx, "wh sql bulk", "res.partner", "", "");
    let t = Instant::now();
    let n = insert_partners(&mut tx, "bulk", 10_000);
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
    let distinct: i64 = tx
        .query_one(
            "SELECT count(DISTINCT event_id) FROM api_gateway.webhook_job WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(distinct, 10_000);
    // In the same transaction, the UPDATE merges into the 10,000 creates and the DELETE
    // cancels them (one event per record and transaction), set-based too.
    let t = Instant::now();
    tx.execute(
        "UPDATE res_partner SET email = 'bulk@example.com' WHERE name LIKE 'bulk %'",
        &[],
    )
    .unwrap();
    let update = t.elapsed();
    assert_eq!(count(&mut tx, "write"), 0);
    let merged: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_gateway.webhook_queue WHERE webhook_id = $1 AND action = 'create' \
                AND payload->'record'->>'email' = 'bulk@example.com'",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(merged, 10_000);
    let t = Instant::now();
    tx.execute("DELETE FROM res_partner WHERE name LIKE 'bulk %'", &[])
        .unwrap();
    let delete = t.elapsed();
    assert_eq!(count(&mut tx, "create") + count(&mut tx, "unlink"), 0);
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
fn capture_never_notifies_and_concurrent_claims_never_share_a_job() {
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
    // Rolled back: no job.
    writer
        .batch_execute(
            "BEGIN; INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"wh sql notify rollback\"}', true); ROLLBACK",
        )
        .unwrap();
    assert_eq!(count(&mut admin), 0);
    // Committed: the jobs, and no notification (a NOTIFY per commit would serialise the
    // writers' commits; idle workers poll instead).
    writer.batch_execute("BEGIN").unwrap();
    for k in 0..3 {
        writer
            .execute(
                "INSERT INTO res_partner_category (name, active) VALUES (jsonb_build_object('en_US', 'wh sql notify ' || $1::int), true)",
                &[&k],
            )
            .unwrap();
    }
    writer.batch_execute("COMMIT").unwrap();
    writer
        .execute(
            "INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"wh sql notify 4\"}', true)",
            &[],
        )
        .unwrap();
    assert_eq!(count(&mut admin), 4);
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)), 0);
    let due: bool = admin
        .query_one("SELECT api_gateway.webhook_next_due() <= now()", &[])
        .unwrap()
        .get(0);
    assert!(due, "what an idle worker polls says there is work");
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
    // A replay, and saving a webhook, do wake the workers (rare, not on the writers' path).
    let job = ja[0];
    admin
        .execute(
            "UPDATE api_gateway.webhook_job SET state = 'dead' WHERE id = $1",
            &[&job],
        )
        .unwrap();
    let replayed: bool = admin
        .query_one("SELECT api_gateway.replay_webhook_job($1)", &[&job])
        .unwrap()
        .get(0);
    assert!(replayed);
    assert_eq!(notifications(&mut listener, Duration::from_millis(1000)), 1);
}

/// The webhook's jobs as (job id, action, record id, name in the record), oldest first.
fn job_list(db: &mut Client, webhook_id: i32) -> Vec<(i64, String, i32)> {
    db.query(
        "SELECT id, action, record_id FROM api_gateway.webhook_job WHERE webhook_id = $1 ORDER BY id",
        &[&webhook_id],
    )
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// Claim in `tx` (attempt numbers by job id), the given webhook's jobs only.
fn claim_ids(tx: &mut Transaction, webhook_id: i32) -> Vec<(i64, i32)> {
    let mut v: Vec<(i64, i32)> = tx
        .query(
            "SELECT job_id, attempt FROM api_gateway.webhook_claim('order', 10) WHERE webhook_id = $1",
            &[&webhook_id],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    v.sort();
    v
}

fn complete(tx: &mut Transaction, job: (i64, i32), outcome: &str, delay_s: f64) {
    let n: i32 = tx
        .query_one(
            "SELECT api_gateway.webhook_complete(ARRAY[$1::int8], ARRAY[$2::int4], ARRAY[$3::text], '{500}', '{x}', ARRAY[$4::float8])",
            &[&job.0, &job.1, &outcome, &delay_s],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn the_events_of_one_record_are_claimed_in_order_and_other_records_go_on() {
    let _g = serial();
    let mut db = connect();
    db.batch_execute("SET lock_timeout = '60s'").unwrap();
    let id: i32 = db
        .query_one(
            "INSERT INTO api_gateway.webhook (name, model, url, fields) \
             VALUES ('wh sql order', 'res.partner.category', 'https://hooks.example.com/o', '{name,color}') RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    let _cleanup = CleanupSql(vec![
        format!("DELETE FROM api_gateway.webhook WHERE id = {id}"),
        "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE 'wh sql order %'".into(),
    ]);
    // Three transactions: create A and B; write A; write B and A again.
    let (a, b): (i32, i32) = committed(&mut db, |tx| {
        let ids: Vec<i32> = tx
            .query(
                "INSERT INTO res_partner_category (name, active, color) \
                 VALUES ('{\"en_US\": \"wh sql order A\"}', true, 1), ('{\"en_US\": \"wh sql order B\"}', true, 1) RETURNING id",
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        (ids[0], ids[1])
    });
    committed(&mut db, |tx| {
        tx.execute(
            "UPDATE res_partner_category SET color = 2 WHERE id = $1",
            &[&a],
        )
        .unwrap();
    });
    committed(&mut db, |tx| {
        tx.execute(
            "UPDATE res_partner_category SET color = 3 WHERE id = $1",
            &[&b],
        )
        .unwrap();
        tx.execute(
            "UPDATE res_partner_category SET color = 3 WHERE id = $1",
            &[&a],
        )
        .unwrap();
    });
    let jobs = job_list(&mut db, id);
    let actions: Vec<(&str, i32)> = jobs.iter().map(|j| (j.1.as_str(), j.2)).collect();
    assert_eq!(
        actions,
        [
            ("create", a),
            ("create", b),
            ("write", a),
            ("write", b),
            ("write", a)
        ]
    );
    let (ca, cb, wa1, wb, wa2) = (jobs[0].0, jobs[1].0, jobs[2].0, jobs[3].0, jobs[4].0);
    let mut tx = db.transaction().unwrap();
    // Only the oldest event of each record is claimable.
    assert_eq!(claim_ids(&mut tx, id), [(ca, 1), (cb, 1)]);
    assert_eq!(
        claim_ids(&mut tx, id),
        [],
        "the rest waits behind leased jobs"
    );
    // B's create delivered: B's write goes; A's create fails and waits for its retry: A's
    // writes wait behind it, also once they are due.
    complete(&mut tx, (cb, 1), "delivered", 0.0);
    complete(&mut tx, (ca, 1), "retry", 60.0);
    assert_eq!(claim_ids(&mut tx, id), [(wb, 1)]);
    let next_due_s: f64 = tx
        .query_one(
            "SELECT extract(epoch FROM api_gateway.webhook_next_due() - now())::float8",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        next_due_s > 30.0,
        "a job held back is not due: the idle worker sleeps until A's retry ({next_due_s})"
    );
    // The retry comes: A's create again (attempt 2), still alone.
    tx.execute(
        "UPDATE api_gateway.webhook_job SET next_attempt_at = now() WHERE id = $1",
        &[&ca],
    )
    .unwrap();
    assert_eq!(claim_ids(&mut tx, id), [(ca, 2)]);
    // A dead event no longer holds the record's later events back: they go, in order.
    complete(&mut tx, (ca, 2), "dead", 0.0);
    assert_eq!(claim_ids(&mut tx, id), [(wa1, 1)]);
    complete(&mut tx, (wa1, 1), "delivered", 0.0);
    assert_eq!(claim_ids(&mut tx, id), [(wa2, 1)]);
    tx.rollback().unwrap();
}

/// A claim reads about as many jobs as it takes, even when the outbox's statistics say it is
/// nearly empty and a burst has just filled it (the state after quiet hours): planned from such
/// statistics, the older-job check of webhook_claim was a join of the backlog with itself, and
/// one claim of 32 jobs over 20,000 queued took 51 s. Measured in heap blocks read (this
/// transaction's own counter), not in time.
#[test]
fn a_claim_reads_what_it_takes_even_right_after_a_burst() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(&mut tx, "wh sql burst", "res.partner", "", "");
    // Statistics taken before the burst: none of this webhook's jobs exist yet.
    tx.batch_execute("ANALYZE api_gateway.webhook_job").unwrap();
    let burst = 3_000;
    insert_partners(&mut tx, "burst", burst);
    let blocks = |tx: &mut Transaction| -> i64 {
        tx.query_one(
            "SELECT pg_stat_get_xact_blocks_fetched('api_gateway.webhook_job'::regclass)",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let pages: i64 = tx
        .query_one(
            "SELECT pg_relation_size('api_gateway.webhook_job') / current_setting('block_size')::int8",
            &[],
        )
        .unwrap()
        .get(0);
    let before = blocks(&mut tx);
    let claimed = tx
        .query(
            "SELECT job_id FROM api_gateway.webhook_claim('burst', 32) WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .len();
    let read = blocks(&mut tx) - before;
    assert_eq!(claimed, 32);
    // The join read the whole backlog once per queued job (burst x pages, about 200,000 here);
    // a claim in due order reads its 32 jobs, their records' probes and the final update.
    assert!(
        read < 1_000,
        "one claim of 32 read {read} heap blocks of webhook_job ({pages} pages, {burst} jobs queued)"
    );
    tx.rollback().unwrap();
}

#[test]
fn jobs_of_a_worker_whose_session_ended_are_claimable_at_once() {
    let _g = serial();
    let mut db = connect();
    db.batch_execute("SET lock_timeout = '60s'").unwrap();
    let id: i32 = db
        .query_one(
            "INSERT INTO api_gateway.webhook (name, model, url, fields) \
             VALUES ('wh sql crash', 'res.partner.category', 'https://hooks.example.com/c', '{name}') RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    let _cleanup = CleanupSql(vec![
        format!("DELETE FROM api_gateway.webhook WHERE id = {id}"),
        "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE 'wh sql crash %'".into(),
        "UPDATE api_gateway.webhook_settings SET lease_margin = '30 seconds'".into(),
    ]);
    // A lease far longer than the test: only the end of the session can free the jobs.
    db.batch_execute(
        "UPDATE api_gateway.webhook_settings SET lease_margin = '1 hour'; \
         INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"wh sql crash 1\"}', true), ('{\"en_US\": \"wh sql crash 2\"}', true)",
    )
    .unwrap();
    let mut first = connect();
    let first_pid: i32 = first
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let claimed = first
        .query(
            "SELECT job_id FROM api_gateway.webhook_claim('first', 10) WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let leased: Vec<Option<i32>> = db
        .query(
            "SELECT leased_pid FROM api_gateway.webhook_job WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(leased, [Some(first_pid), Some(first_pid)]);
    // Alive (however stuck): its lease holds.
    let mut second = connect();
    let again = |c: &mut Client| -> Vec<(i64, i32)> {
        c.query(
            "SELECT job_id, attempt FROM api_gateway.webhook_claim('second', 10) WHERE webhook_id = $1",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert!(again(&mut second).is_empty());
    let due = |c: &mut Client| -> bool {
        c.query_one(
            "SELECT coalesce(api_gateway.webhook_next_due() <= now(), false)",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert!(!due(&mut second));
    // The session ends (a SIGKILLed worker's connections close): claimable now.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    while second
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&first_pid],
        )
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "the first session did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        due(&mut second),
        "an idle worker's poll sees the orphaned jobs"
    );
    let got = again(&mut second);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|j| j.1 == 2), "a new attempt: {got:?}");
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

// ------------------------------------------------------------------------ cheap capture
//
// `_webhook_capture()` (Rust) writes INSERTs and the first UPDATE or DELETE of a transaction
// straight into the outbox, from a per-backend cache of the webhooks; everything else goes to
// `_webhook_capture_sql()` (PL/pgSQL). These tests hold the fast path to what the SQL path
// writes, and the cache to every committed or rolled-back change of a webhook.

/// One outbox row: (action, record id, data, state, attempts, next_attempt_at = updated_at,
/// event id).
type JobRow = (String, i32, Option<Value>, String, i32, bool, String);

/// The outbox rows of a webhook, oldest first.
fn job_rows(db: &mut Client, webhook_id: i32) -> Vec<JobRow> {
    db.query(
        "SELECT action, record_id, data::jsonb, state, attempts, next_attempt_at = updated_at, event_id::text \
           FROM api_gateway.webhook_job WHERE webhook_id = $1 ORDER BY id",
        &[&webhook_id],
    )
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
    .collect()
}

/// `data` with the record's own id and name replaced, to compare two records' events.
fn anonymous(data: &Option<Value>) -> Option<Value> {
    let mut d = data.clone()?;
    fn strip(v: &mut Value) {
        if let Some(o) = v.as_object_mut() {
            o.remove("id");
            o.remove("name");
            o.remove("display_name");
            o.remove("complete_name");
            o.remove("commercial_partner_id");
        }
    }
    strip(&mut d);
    if let Some(r) = d.get_mut("r") {
        strip(r);
    }
    Some(d)
}

#[test]
fn the_direct_outbox_write_equals_what_the_sql_capture_writes() {
    let _g = serial();
    let mut db = connect();
    let plain = committed(&mut db, |tx| {
        prepare(tx);
        add_webhook(tx, "wh sql cap plain", "res.partner", "", "")
    });
    let _cleanup = CleanupSql(vec![
        "DELETE FROM api_gateway.webhook WHERE name LIKE 'wh sql cap %'".into(),
        "DELETE FROM res_partner WHERE name LIKE 'wh cap %'".into(),
    ]);
    // One record through the Rust path (no webhook of the table has a domain: INSERT, then
    // the first UPDATE and DELETE of their own transactions), then one through the SQL path
    // (a webhook with a domain sends every statement of the table there).
    let run = |db: &mut Client, name: &str| {
        let id = committed(db, |tx| new_partner(tx, name, false));
        committed(db, |tx| {
            tx.execute(
                "UPDATE res_partner SET email = 'cap@example.com', is_company = true WHERE id = $1",
                &[&id],
            )
            .unwrap();
        });
        committed(db, |tx| {
            tx.execute("DELETE FROM res_partner WHERE id = $1", &[&id])
                .unwrap();
        });
        id
    };
    let fast_id = run(&mut db, "wh cap fast");
    let fast_filtered: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.res_partner'::regclass \
               AND tgfoid = 'api_gateway._webhook_capture()'::regprocedure AND tgnargs > 0",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(fast_filtered, 0, "the first run must take the Rust path");
    committed(&mut db, |tx| {
        prepare(tx);
        add_webhook(
            tx,
            "wh sql cap domain",
            "res.partner",
            ", domain",
            ", $$[('id', '>', 0)]$$",
        )
    });
    let slow_id = run(&mut db, "wh cap slow");
    let rows = job_rows(&mut db, plain);
    let fast: Vec<_> = rows.iter().filter(|r| r.1 == fast_id).collect();
    let slow: Vec<_> = rows.iter().filter(|r| r.1 == slow_id).collect();
    assert_eq!(fast.len(), 3, "{rows:?}");
    assert_eq!(slow.len(), 3, "{rows:?}");
    for (f, s) in fast.iter().zip(&slow) {
        assert_eq!(f.0, s.0, "action");
        assert_eq!(
            (f.3.as_str(), f.4, f.5),
            ("pending", 0, true),
            "defaults: {f:?}"
        );
        assert_eq!(
            (s.3.as_str(), s.4, s.5),
            ("pending", 0, true),
            "defaults: {s:?}"
        );
        assert_eq!(anonymous(&f.2), anonymous(&s.2), "data of {}", f.0);
    }
    assert_eq!(fast[0].2.as_ref().unwrap()["id"], json!(fast_id));
    let mut changed: Vec<String> =
        serde_json::from_value(fast[1].2.as_ref().unwrap()["c"].clone()).unwrap();
    changed.sort();
    assert_eq!(changed, ["email", "is_company"]);
    assert_eq!(
        fast[1].2.as_ref().unwrap()["p"],
        json!({"email": null, "is_company": false})
    );
    assert!(fast[2].2.is_none());
    // The payloads rendered for delivery are the same too.
    let rendered: Vec<Value> = db
        .query(
            "SELECT payload - 'event_id' - 'timestamp' FROM api_gateway.webhook_queue \
              WHERE webhook_id = $1 ORDER BY id",
            &[&plain],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rendered.len(), 6);
    for k in 0..3 {
        let (mut f, mut s) = (rendered[k].clone(), rendered[k + 3].clone());
        for v in [&mut f, &mut s] {
            let r = v["record"].as_object_mut().unwrap();
            for key in [
                "id",
                "name",
                "display_name",
                "complete_name",
                "commercial_partner_id",
            ] {
                r.remove(key);
            }
        }
        assert_eq!(f, s, "payload {k}");
    }
}

#[test]
fn event_ids_written_by_capture_are_distinct_version_4_uuids_and_savepoints_undo_them() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(
        &mut tx,
        "wh sql cap uuid",
        "res.partner.category",
        ", fields",
        ", '{name}'",
    );
    tx.batch_execute(
        "INSERT INTO res_partner_category (name, active) \
         SELECT jsonb_build_object('en_US', 'uuid ' || g), true FROM generate_series(1, 1000) g",
    )
    .unwrap();
    let (n, distinct, v4): (i64, i64, i64) = {
        let r = tx
            .query_one(
                "SELECT count(*), count(DISTINCT event_id), \
                        count(*) FILTER (WHERE event_id::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$') \
                   FROM api_gateway.webhook_job WHERE webhook_id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!((n, distinct, v4), (1000, 1000, 1000));
    // Written in the (sub)transaction of the statement: a rollback to a savepoint removes them.
    tx.batch_execute(
        "SAVEPOINT s; \
         INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"undone\"}', true); \
         ROLLBACK TO SAVEPOINT s; \
         INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"kept\"}', true)",
    )
    .unwrap();
    let names: Vec<Value> = payloads(&mut tx, id)
        .into_iter()
        .skip(1000)
        .map(|p| p["record"]["name"].clone())
        .collect();
    assert_eq!(names, vec![json!({"en_US": "kept"})]);
    tx.rollback().unwrap();
}

#[test]
fn the_capture_cache_follows_every_change_of_the_webhooks() {
    let _g = serial();
    let mut admin = connect();
    let mut writer = connect();
    let h1 = committed(&mut admin, |tx| {
        prepare(tx);
        add_webhook(
            tx,
            "wh sql cap cache 1",
            "res.partner.category",
            ", fields",
            ", '{name}'",
        )
    });
    let _cleanup = CleanupSql(vec![
        "DELETE FROM api_gateway.webhook WHERE name LIKE 'wh sql cap cache %'".into(),
        "DELETE FROM res_partner_category WHERE name->>'en_US' LIKE 'cache %'".into(),
    ]);
    let insert = |db: &mut Client, name: &str| -> i32 {
        db.query_one(
            "INSERT INTO res_partner_category (name, active) VALUES (jsonb_build_object('en_US', $1::text), true) RETURNING id",
            &[&name],
        )
        .unwrap()
        .get(0)
    };
    // The webhooks that queued an event for a record, and the payload keys of the first.
    let hooks_of = |db: &mut Client, record: i32| -> (Vec<i32>, Vec<String>) {
        let rows = db
            .query(
                "SELECT webhook_id, data::jsonb FROM api_gateway.webhook_job j \
                  JOIN api_gateway.webhook w ON w.id = j.webhook_id \
                  WHERE record_id = $1 AND w.name LIKE 'wh sql cap cache %' ORDER BY webhook_id",
                &[&record],
            )
            .unwrap();
        let ids = rows.iter().map(|r| r.get(0)).collect();
        let keys = rows
            .first()
            .and_then(|r| r.get::<_, Option<Value>>(1))
            .and_then(|d| d.as_object().map(|o| o.keys().cloned().collect()))
            .unwrap_or_default();
        (ids, keys)
    };
    // The writer's backend fills its cache.
    let r = insert(&mut writer, "cache 1");
    assert_eq!(hooks_of(&mut writer, r).0, vec![h1]);
    // Another session changes the payload fields: the writer's next statement uses them.
    admin
        .execute(
            "UPDATE api_gateway.webhook SET fields = '{name,active}' WHERE id = $1",
            &[&h1],
        )
        .unwrap();
    let r = insert(&mut writer, "cache 2");
    assert_eq!(
        hooks_of(&mut writer, r),
        (vec![h1], vec!["active".into(), "id".into(), "name".into()])
    );
    // A second webhook, then its deactivation.
    let h2 = committed(&mut admin, |tx| {
        prepare(tx);
        add_webhook(
            tx,
            "wh sql cap cache 2",
            "res.partner.category",
            ", fields",
            ", '{name}'",
        )
    });
    let r = insert(&mut writer, "cache 3");
    assert_eq!(hooks_of(&mut writer, r).0, vec![h1, h2]);
    admin
        .execute(
            "UPDATE api_gateway.webhook SET active = false WHERE id = $1",
            &[&h2],
        )
        .unwrap();
    let r = insert(&mut writer, "cache 4");
    assert_eq!(hooks_of(&mut writer, r).0, vec![h1]);
    // A REPEATABLE READ writer (as Odoo's) whose snapshot predates a change still gets it at
    // its next statement, and does not keep a stale list for the transactions after it.
    writer
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM res_partner_category",
        )
        .unwrap();
    admin
        .execute(
            "UPDATE api_gateway.webhook SET active = true WHERE id = $1",
            &[&h2],
        )
        .unwrap();
    let r = insert(&mut writer, "cache 5");
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(hooks_of(&mut writer, r).0, vec![h1, h2]);
    let r = insert(&mut writer, "cache 6");
    assert_eq!(hooks_of(&mut writer, r).0, vec![h1, h2]);
    // The writer's own change of a webhook counts from its next statement, and is forgotten
    // when it rolls back.
    writer
        .batch_execute(&format!(
            "BEGIN; UPDATE api_gateway.webhook SET on_create = false WHERE id = {h1}"
        ))
        .unwrap();
    let r = insert(&mut writer, "cache 7");
    assert_eq!(hooks_of(&mut writer, r).0, vec![h2]);
    writer.batch_execute("ROLLBACK").unwrap();
    let r = insert(&mut writer, "cache 8");
    assert_eq!(hooks_of(&mut writer, r).0, vec![h1, h2]);
    writer
        .batch_execute(&format!(
            "BEGIN; UPDATE api_gateway.webhook SET on_create = false WHERE id = {h1}"
        ))
        .unwrap();
    let r = insert(&mut writer, "cache 9");
    assert_eq!(hooks_of(&mut writer, r).0, vec![h2]);
    writer.batch_execute("COMMIT").unwrap();
    // Deleted: nothing more for it.
    admin
        .execute("DELETE FROM api_gateway.webhook WHERE id = $1", &[&h2])
        .unwrap();
    let r = insert(&mut writer, "cache 10");
    assert_eq!(hooks_of(&mut writer, r).0, Vec::<i32>::new());
}

#[test]
fn capture_writes_through_sql_when_the_outbox_is_not_the_table_it_knows() {
    let _g = serial();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    prepare(&mut tx);
    let id = add_webhook(
        &mut tx,
        "wh sql cap shape",
        "res.partner.category",
        ", fields",
        ", '{name}'",
    );
    tx.batch_execute(
        "INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"before\"}', true)",
    )
    .unwrap();
    // A column the Rust path does not fill, NOT NULL with a default: only an INSERT fills it.
    tx.batch_execute(
        "ALTER TABLE api_gateway.webhook_job ADD COLUMN agw_test_extra text NOT NULL DEFAULT 'filled'; \
         INSERT INTO res_partner_category (name, active) VALUES ('{\"en_US\": \"after\"}', true)",
    )
    .unwrap();
    let rows: Vec<(String, String)> = tx
        .query(
            "SELECT data::jsonb->'name'->>'en_US', agw_test_extra FROM api_gateway.webhook_job \
              WHERE webhook_id = $1 ORDER BY id",
            &[&id],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("before".into(), "filled".into()),
            ("after".into(), "filled".into())
        ]
    );
    tx.rollback().unwrap();
}
