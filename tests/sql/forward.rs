//! Issue 15: what the extension keeps for forwarding writes to Odoo: SQL writes opt-in per model,
//! the OAuth2 clients' upstream Odoo API keys (made as Odoo makes them, removed with the client)
//! and the idempotency-key protocol. Every test runs in a transaction that is rolled back.
use api_gateway_tests::{connect, sqlstate};
use postgres::Transaction;
use serde_json::{Value, json};

fn err_of(tx: &mut Transaction, sql: &str) -> (String, String) {
    let mut sp = tx.transaction().unwrap();
    let e = sp.query_one(sql, &[]).expect_err(sql);
    let msg = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    let code = sqlstate(&e);
    sp.rollback().unwrap();
    (code, msg)
}

#[test]
fn forward_sql_writes_are_opt_in_per_model() {
    // Counts res_partner before and after: no other test may commit partners meanwhile.
    let _shared = api_gateway_tests::BULK_WRITES
        .read()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("UPDATE api_gateway.settings SET sql_write_models = '{}'")
        .unwrap();
    let partner: i32 = tx
        .query_one("SELECT min(id) FROM public.res_partner", &[])
        .unwrap()
        .get(0);
    let before: i64 = tx
        .query_one("SELECT count(*) FROM public.res_partner", &[])
        .unwrap()
        .get(0);
    for sql in [
        "SELECT api_gateway.\"create\"(2, 'res.partner', '{\"name\": \"agw opt-in\"}')".to_string(),
        format!(
            "SELECT api_gateway.\"write\"(2, 'res.partner', {partner}, '{{\"comment\": \"x\"}}')"
        ),
        format!("SELECT api_gateway.unlink(2, 'res.partner', {partner})"),
    ] {
        let (code, msg) = err_of(&mut tx, &sql);
        assert_eq!(code, "0A000", "{sql}: {msg}");
        assert!(
            msg.contains("res.partner") && msg.contains("through Odoo"),
            "{msg}"
        );
    }
    let after: i64 = tx
        .query_one("SELECT count(*) FROM public.res_partner", &[])
        .unwrap()
        .get(0);
    assert_eq!(before, after);
    // Default of a fresh install: no model at all.
    let default: String = tx
        .query_one(
            "SELECT column_default FROM information_schema.columns \
              WHERE table_schema = 'api_gateway' AND table_name = 'settings' AND column_name = 'sql_write_models'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(default, "'{}'::text[]");
    // Listed: the write runs with the usual checks (on the real database it then meets the
    // required fields Odoo fills in Python, e.g. autopost_bills: 23502, not 0A000).
    tx.batch_execute("UPDATE api_gateway.settings SET sql_write_models = '{res.partner}'")
        .unwrap();
    let mut sp = tx.transaction().unwrap();
    match sp.query_one(
        "SELECT api_gateway.\"create\"(2, 'res.partner', '{\"name\": \"agw opt-in\"}')",
        &[],
    ) {
        Ok(row) => assert!(row.get::<_, i32>(0) > 0),
        Err(e) => assert_eq!(sqlstate(&e), "23502", "{e}"),
    }
    sp.rollback().unwrap();
    // sale.order (the real database) stays refused while only res.partner is listed.
    let has_sale: bool = tx
        .query_one("SELECT to_regclass('public.sale_order') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    if has_sale {
        let (code, msg) = err_of(
            &mut tx,
            "SELECT api_gateway.\"create\"(2, 'sale.order', '{\"partner_id\": 3}')",
        );
        assert_eq!(code, "0A000", "{msg}");
        assert!(msg.contains("sale.order"), "{msg}");
    }
    tx.rollback().unwrap();
}

fn new_client(tx: &mut Transaction, uid: i32) -> String {
    tx.query_one(
        "SELECT client_id FROM api_gateway.create_client('agw upstream test', $1, '{read,write}')",
        &[&uid],
    )
    .unwrap()
    .get(0)
}

fn upstream_key(tx: &mut Transaction, client: &str) -> String {
    tx.query_one("SELECT api_gateway.upstream_key($1)", &[&client])
        .unwrap()
        .get(0)
}

/// The Odoo key rows named after this client: (id, scope, days until expiry).
fn odoo_rows(tx: &mut Transaction, client: &str) -> Vec<(i32, Option<String>, f64)> {
    tx.query(
        "SELECT id, scope, extract(epoch FROM expiration_date - (now() AT TIME ZONE 'utc'))::float8 / 86400 \
           FROM public.res_users_apikeys WHERE name LIKE 'api_gateway: OAuth2 client ' || $1 || ' %' ORDER BY id",
        &[&client],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

fn verifies(tx: &mut Transaction, key: &str) -> Option<i32> {
    tx.query_one("SELECT api_gateway.verify_api_key($1, 'rpc')", &[&key])
        .unwrap()
        .get(0)
}

#[test]
fn forward_upstream_keys_are_odoo_keys_removed_with_the_client() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let client = new_client(&mut tx, 2);
    assert!(odoo_rows(&mut tx, &client).is_empty());
    let key = upstream_key(&mut tx, &client);
    assert!(
        key.len() == 40 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    // Made in Odoo's table, Odoo's way: index = 8 first characters, passlib pbkdf2_sha512 with
    // 6000 rounds, scope rpc, 30 days; verified by Odoo's rules (verify_api_key mirrors them).
    let rows = odoo_rows(&mut tx, &client);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1.as_deref(), Some("rpc"));
    assert!((29.9..30.1).contains(&rows[0].2), "{rows:?}");
    let (index, hash): (String, String) = {
        let r = tx
            .query_one(
                "SELECT index::text, key::text FROM public.res_users_apikeys WHERE id = $1",
                &[&rows[0].0],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(index, key[..8]);
    assert!(hash.starts_with("$pbkdf2-sha512$6000$"), "{hash}");
    assert_ne!(hash, key);
    assert_eq!(verifies(&mut tx, &key), Some(2));
    // Stable while valid.
    assert_eq!(upstream_key(&mut tx, &client), key);
    // Only the owner may read it: nothing granted to PUBLIC.
    let public: (bool, bool) = {
        let r = tx
            .query_one(
                "SELECT has_function_privilege('public', 'api_gateway.upstream_key(text)', 'EXECUTE'), \
                        has_table_privilege('public', 'api_gateway.upstream_key', 'SELECT')",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(public, (false, false));

    // Deactivated: gone from Odoo at once.
    tx.execute(
        "UPDATE api_gateway.client SET active = false WHERE client_id = $1",
        &[&client],
    )
    .unwrap();
    assert!(odoo_rows(&mut tx, &client).is_empty());
    assert_eq!(verifies(&mut tx, &key), None);
    let (code, _) = err_of(
        &mut tx,
        &format!("SELECT api_gateway.upstream_key('{client}')"),
    );
    assert_eq!(code, "28000");
    // Active again: a new key. Secret rotated: gone again.
    tx.execute(
        "UPDATE api_gateway.client SET active = true WHERE client_id = $1",
        &[&client],
    )
    .unwrap();
    let second = upstream_key(&mut tx, &client);
    assert_ne!(second, key);
    tx.execute(
        "UPDATE api_gateway.client SET secret_hash = repeat('a', 64) WHERE client_id = $1",
        &[&client],
    )
    .unwrap();
    assert!(odoo_rows(&mut tx, &client).is_empty());
    assert_eq!(verifies(&mut tx, &second), None);
    // Deleted: gone too.
    let third = upstream_key(&mut tx, &client);
    assert_eq!(odoo_rows(&mut tx, &client).len(), 1);
    tx.execute(
        "DELETE FROM api_gateway.client WHERE client_id = $1",
        &[&client],
    )
    .unwrap();
    assert!(odoo_rows(&mut tx, &client).is_empty());
    assert_eq!(verifies(&mut tx, &third), None);
    // Removed from Odoo behind the gateway's back (the user deleted it): made again.
    let client = new_client(&mut tx, 2);
    let k1 = upstream_key(&mut tx, &client);
    tx.execute(
        "DELETE FROM public.res_users_apikeys WHERE name LIKE 'api_gateway: OAuth2 client ' || $1 || ' %'",
        &[&client],
    )
    .unwrap();
    let k2 = upstream_key(&mut tx, &client);
    assert_ne!(k1, k2);
    assert_eq!(verifies(&mut tx, &k2), Some(2));
    tx.rollback().unwrap();
}

#[test]
fn forward_upstream_keys_are_renewed_by_maintenance_before_they_expire() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let client = new_client(&mut tx, 2);
    let old = upstream_key(&mut tx, &client);
    // Nothing to renew yet.
    let r: Value = tx
        .query_one("SELECT api_gateway.run_maintenance('upstream_keys')", &[])
        .unwrap()
        .get(0);
    assert_eq!(r["renewed"], 0, "{r}");
    // Six days left: renewed; the old key works 10 more minutes (calls in flight), then goes.
    tx.execute(
        "UPDATE api_gateway.upstream_key SET expires_at = now() + interval '6 days' WHERE client_id = $1",
        &[&client],
    )
    .unwrap();
    let r: Value = tx
        .query_one("SELECT api_gateway.run_maintenance('upstream_keys')", &[])
        .unwrap()
        .get(0);
    assert_eq!(r["renewed"], 1, "{r}");
    let new = upstream_key(&mut tx, &client);
    assert_ne!(new, old);
    assert_eq!(verifies(&mut tx, &new), Some(2));
    assert_eq!(verifies(&mut tx, &old), Some(2));
    let rows = odoo_rows(&mut tx, &client);
    assert_eq!(rows.len(), 2);
    assert!(rows[0].2 < 0.01, "old key expires within minutes: {rows:?}");
    let plaintexts: i64 = tx
        .query_one(
            "SELECT count(key) FROM api_gateway.upstream_key WHERE client_id = $1",
            &[&client],
        )
        .unwrap()
        .get(0);
    assert_eq!(plaintexts, 1, "the superseded plaintext is erased");
    // Once expired, maintenance removes it from Odoo.
    tx.execute(
        "UPDATE api_gateway.upstream_key SET expires_at = now() - interval '1 second' \
          WHERE client_id = $1 AND key IS NULL",
        &[&client],
    )
    .unwrap();
    let r: Value = tx
        .query_one("SELECT api_gateway.run_maintenance('upstream_keys')", &[])
        .unwrap()
        .get(0);
    assert_eq!(r["expired_removed"], 1, "{r}");
    assert_eq!(odoo_rows(&mut tx, &client).len(), 1);
    assert_eq!(verifies(&mut tx, &old), None);
    assert_eq!(verifies(&mut tx, &new), Some(2));
    // A restored database has the Odoo keys but not the rows (never dumped: no plaintext in a
    // dump): maintenance removes those orphans, and the client gets a new key on first use.
    let dumped: bool = tx
        .query_one(
            "SELECT 'api_gateway.upstream_key'::regclass = ANY (e.extconfig) FROM pg_extension e WHERE e.extname = 'api_gateway'",
            &[],
        )
        .unwrap()
        .get::<_, Option<bool>>(0)
        .unwrap_or(false);
    assert!(!dumped, "upstream_key must not be in pg_dump");
    tx.batch_execute("ALTER TABLE api_gateway.upstream_key DISABLE TRIGGER upstream_key_removed")
        .unwrap();
    tx.execute(
        "DELETE FROM api_gateway.upstream_key WHERE client_id = $1",
        &[&client],
    )
    .unwrap();
    tx.batch_execute("ALTER TABLE api_gateway.upstream_key ENABLE TRIGGER upstream_key_removed")
        .unwrap();
    assert_eq!(odoo_rows(&mut tx, &client).len(), 1);
    let r: Value = tx
        .query_one("SELECT api_gateway.run_maintenance('upstream_keys')", &[])
        .unwrap()
        .get(0);
    assert!(r["orphans_removed"].as_i64().unwrap_or(0) >= 1, "{r}");
    assert!(odoo_rows(&mut tx, &client).is_empty());
    assert_eq!(verifies(&mut tx, &new), None);
    let fresh = upstream_key(&mut tx, &client);
    assert_eq!(verifies(&mut tx, &fresh), Some(2));
    tx.rollback().unwrap();
}

fn begin(
    tx: &mut Transaction,
    caller: &str,
    key: &str,
    print: &str,
) -> (String, Option<i32>, Option<Value>) {
    let r = tx
        .query_one(
            "SELECT outcome, status, body FROM api_gateway.idempotency_begin($1, $2, $3, 60)",
            &[&caller, &key, &print],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

#[test]
fn forward_idempotency_keys_replay_refuse_and_expire() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    // Callers of this test only (other suites leave committed keys behind).
    let me = format!("user:test-{}", std::process::id());
    let other = format!("client:test-{}", std::process::id());
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    assert_eq!(begin(&mut tx, &me, "k1", &a).0, "new");
    assert_eq!(begin(&mut tx, &me, "k1", &a).0, "in_flight");
    assert_eq!(begin(&mut tx, &me, "k1", &b).0, "mismatch");
    // Another caller's key of the same name is its own.
    assert_eq!(begin(&mut tx, &other, "k1", &b).0, "new");
    let done: bool = tx
        .query_one(
            "SELECT api_gateway.idempotency_finish($2, 'k1', $1, 201, '{\"location\": \"/api/v1/x/5\"}', '{\"id\": 5}')",
            &[&a, &me],
        )
        .unwrap()
        .get(0);
    assert!(done);
    assert_eq!(
        begin(&mut tx, &me, "k1", &a),
        ("replay".into(), Some(201), Some(json!({"id": 5})))
    );
    assert_eq!(begin(&mut tx, &me, "k1", &b).0, "mismatch");
    // A completed key cannot be released; a held one can (nothing was written).
    let released: bool = tx
        .query_one(
            "SELECT api_gateway.idempotency_release($2, 'k1', $1)",
            &[&a, &me],
        )
        .unwrap()
        .get(0);
    assert!(!released);
    assert_eq!(begin(&mut tx, &me, "k2", &a).0, "new");
    let released: bool = tx
        .query_one(
            "SELECT api_gateway.idempotency_release($2, 'k2', $1)",
            &[&a, &me],
        )
        .unwrap()
        .get(0);
    assert!(released);
    assert_eq!(begin(&mut tx, &me, "k2", &a).0, "new");
    // A lease that ran out (the front died): the retry takes the key over.
    tx.execute(
        "UPDATE api_gateway.idempotency SET lease_until = now() - interval '1 second' WHERE caller = $1 AND key = 'k2'",
        &[&me],
    )
    .unwrap();
    assert_eq!(begin(&mut tx, &me, "k2", &a).0, "new");
    // After 24 hours a key is new again, and maintenance deletes it.
    tx.execute(
        "UPDATE api_gateway.idempotency SET started_at = now() - interval '25 hours' WHERE caller = $1 AND key = 'k1'",
        &[&me],
    )
    .unwrap();
    assert_eq!(begin(&mut tx, &me, "k1", &b).0, "new");
    tx.execute(
        "UPDATE api_gateway.idempotency SET started_at = now() - interval '25 hours' WHERE caller IN ($1, $2)",
        &[&me, &other],
    )
    .unwrap();
    let r: Value = tx
        .query_one("SELECT api_gateway.run_maintenance('idempotency')", &[])
        .unwrap()
        .get(0);
    assert!(r["keys_deleted"].as_i64().unwrap_or(0) >= 3, "{r}");
    let left: i64 = tx
        .query_one(
            "SELECT count(*) FROM api_gateway.idempotency WHERE caller IN ($1, $2)",
            &[&me, &other],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // Bad keys: 22023.
    for bad in ["", "a b", &"x".repeat(256)] {
        let (code, _) = err_of(
            &mut tx,
            &format!("SELECT * FROM api_gateway.idempotency_begin('{me}', '{bad}', '{a}', 60)"),
        );
        assert_eq!(code, "22023", "{bad:?}");
    }
    tx.rollback().unwrap();
}
