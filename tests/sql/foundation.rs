use api_gateway_tests::{connect, connect_plain, sqlstate};

#[test]
fn version_matches_the_library() {
    let mut db = connect();
    let row = db
        .query_one(
            "SELECT api_gateway.version(), extversion FROM pg_extension WHERE extname = 'api_gateway'",
            &[],
        )
        .unwrap();
    let version: String = row.get(0);
    let extversion: String = row.get(1);
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert_eq!(extversion, version);
}

#[test]
fn settings_hold_the_documented_defaults_and_a_random_secret() {
    let mut db = connect_plain();
    let row = db
        .query_one(
            "SELECT default_limit, max_limit, rate_limit, rate_limit_window, log_level, \
                    log_retention_days, token_lifetime_s, length(jwt_secret), (SELECT count(*) FROM api_gateway.settings) \
             FROM api_gateway.settings",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 80);
    assert!(row.get::<_, i32>(1) >= 80);
    assert_eq!(row.get::<_, i32>(2), 60);
    assert_eq!(row.get::<_, String>(3), "minute");
    assert_eq!(row.get::<_, String>(4), "errors");
    assert_eq!(row.get::<_, i32>(5), 30);
    assert_eq!(row.get::<_, i32>(6), 3600);
    assert_eq!(row.get::<_, i32>(7), 64);
    assert_eq!(row.get::<_, i64>(8), 1);
    // Each database gets its own secret.
    let mine: String = db
        .query_one("SELECT jwt_secret FROM api_gateway.settings", &[])
        .unwrap()
        .get(0);
    let other: String = connect()
        .query_one("SELECT jwt_secret FROM api_gateway.settings", &[])
        .unwrap()
        .get(0);
    assert_ne!(mine, other);
}

#[test]
fn settings_refuse_invalid_values_and_a_second_row_replaces_the_first() {
    let mut db = connect_plain();
    let mut tx = db.transaction().unwrap();
    let err = tx
        .execute(
            "UPDATE api_gateway.settings SET log_level = 'everything'",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "23514");
    drop(tx);
    let mut tx = db.transaction().unwrap();
    let err = tx
        .execute("UPDATE api_gateway.settings SET default_limit = -1", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "23514");
    drop(tx);
    // What pg_restore does: insert the dumped row while the default one exists.
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "INSERT INTO api_gateway.settings (default_limit, jwt_kid, jwt_secret) VALUES (42, 'k', repeat('a', 64))",
        &[],
    )
    .unwrap();
    let row = tx
        .query_one(
            "SELECT count(*), min(default_limit) FROM api_gateway.settings",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, i32>(1), 42);
    tx.rollback().unwrap();
}

#[test]
fn ordinary_roles_cannot_read_the_signing_secret() {
    let mut db = connect_plain();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("CREATE ROLE agw_nobody NOLOGIN; SET LOCAL ROLE agw_nobody;")
        .unwrap();
    let err = tx
        .query_one("SELECT jwt_secret FROM api_gateway.settings", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    tx.rollback().unwrap();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("CREATE ROLE agw_nobody NOLOGIN; SET LOCAL ROLE agw_nobody;")
        .unwrap();
    let v: String = tx
        .query_one("SELECT api_gateway.version()", &[])
        .unwrap()
        .get(0);
    assert!(!v.is_empty());
    tx.rollback().unwrap();
}

#[test]
fn drop_extension_leaves_odoo_tables_alone() {
    let db_name = &api_gateway_tests::scratch_db("drop");
    let mut admin = api_gateway_tests::connect_to("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .unwrap();
    let mut db = api_gateway_tests::connect_to(db_name);
    db.batch_execute(
        "CREATE TABLE res_users (id serial PRIMARY KEY, login varchar NOT NULL, active bool DEFAULT true);
         INSERT INTO res_users (login) VALUES ('admin');
         CREATE EXTENSION api_gateway;",
    )
    .unwrap();
    db.batch_execute("DROP EXTENSION api_gateway").unwrap();
    let n: i64 = db
        .query_one("SELECT count(*) FROM res_users", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // PostgreSQL keeps the (now empty) schema it created for the control file's `schema`.
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'api_gateway'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "no table of the extension survives it");
    drop(db);
    admin
        .batch_execute(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
        .unwrap();
}

/// One guard for every kind of trigger the extension puts on Odoo's tables (webhook capture,
/// change feed, security cache): DROP EXTENSION api_gateway removes them all and leaves Odoo's
/// own triggers; dropping another extension in a statement that names api_gateway installs each
/// kind again.
#[test]
fn drop_extension_removes_every_kind_of_trigger_on_odoo_tables() {
    let db_name = &api_gateway_tests::scratch_db("drop_kinds");
    let mut admin = api_gateway_tests::connect_to("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .unwrap();
    // The project's Odoo fixture, loaded into a database of the test's own.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/odoo19_mini.sql");
    let loaded = std::process::Command::new("psql")
        .args([
            "-q",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db_name,
            "-f",
            fixture,
        ])
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    let mut db = api_gateway_tests::connect_to(db_name);
    db.batch_execute(
        "CREATE FUNCTION odoo_own() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
         CREATE TRIGGER odoo_own AFTER INSERT ON res_partner FOR EACH STATEMENT EXECUTE FUNCTION odoo_own();
         CREATE EXTENSION api_gateway;
         UPDATE api_gateway.webhook_settings SET allow_private_targets = true;
         INSERT INTO api_gateway.webhook (name, model, url) VALUES ('drop', 'res.partner', 'https://hooks.example.com/odoo');
         SELECT api_gateway.feed_enable('res.partner.category');",
    )
    .unwrap();
    // (table, kind) of every trigger on Odoo's tables.
    let kinds = |db: &mut postgres::Client| -> Vec<(String, String)> {
        db.query(
            "SELECT DISTINCT c.relname::text, p.proname::text FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
              WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    let installed = kinds(&mut db);
    for (table, function) in [
        ("ir_rule", "_note_odoo_security_change"),
        ("res_partner", "_webhook_capture"),
        ("res_partner", "odoo_own"),
        ("res_partner_category", "_feed_capture"),
    ] {
        assert!(
            installed.contains(&(table.to_string(), function.to_string())),
            "{table} {function} in {installed:?}"
        );
    }
    let count = |db: &mut postgres::Client| -> i64 {
        db.query_one(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let before = count(&mut db);
    db.batch_execute("CREATE EXTENSION pgcrypto; DROP EXTENSION pgcrypto /* not api_gateway */")
        .unwrap();
    assert_eq!(kinds(&mut db), installed, "installed again");
    assert_eq!(count(&mut db), before);
    db.batch_execute("DROP EXTENSION api_gateway").unwrap();
    assert_eq!(
        kinds(&mut db),
        [("res_partner".to_string(), "odoo_own".to_string())],
        "only Odoo's own trigger is left"
    );
    db.batch_execute(
        "UPDATE res_partner SET write_date = now(); UPDATE ir_rule SET active = active",
    )
    .unwrap();
    drop(db);
    admin
        .batch_execute(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
        .unwrap();
}

#[test]
fn pg_dump_and_restore_keep_the_gateway_configuration() {
    use std::process::Command;
    let (src, dst) = (
        &api_gateway_tests::scratch_db("dump_src"),
        &api_gateway_tests::scratch_db("dump_dst"),
    );
    let mut admin = api_gateway_tests::connect_to("postgres");
    for db in [src, dst] {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
    }
    let mut db = api_gateway_tests::connect_to(src);
    db.batch_execute(
        "CREATE EXTENSION api_gateway; UPDATE api_gateway.settings SET default_limit = 33;",
    )
    .unwrap();
    let secret: String = db
        .query_one("SELECT jwt_secret FROM api_gateway.settings", &[])
        .unwrap()
        .get(0);
    let dump = std::env::temp_dir().join(format!("agw_dump_{}.custom", std::process::id()));
    let ok = Command::new("pg_dump")
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg(src)
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new("pg_restore")
        .args(["--exit-on-error", "-d", dst])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(
        ok.success(),
        "pg_restore must not fail on the extension's configuration"
    );
    let mut restored = api_gateway_tests::connect_to(dst);
    let row = restored
        .query_one(
            "SELECT count(*), min(default_limit), min(jwt_secret) FROM api_gateway.settings",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, i32>(1), 33);
    assert_eq!(
        row.get::<_, String>(2),
        secret,
        "live tokens survive a dump and restore"
    );
    drop((db, restored));
    let _ = std::fs::remove_file(dump);
    for db in [src, dst] {
        admin
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .unwrap();
    }
}
