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
