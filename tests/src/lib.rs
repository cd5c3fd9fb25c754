//! Harness for the SQL integration tests: which fixture database we run against, connections,
//! and the facts each fixture promises (API keys and the users they must map to).
use postgres::{Client, NoTls};
use serde_json::Value;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixture {
    /// The project's own fixture, tests/fixtures/odoo19_mini.sql.
    Mini,
    /// shared/fixtures/odoo19_base.sql, an independent hand-built Odoo 19 fixture.
    Base,
    /// shared/fixtures/odoo19_demo.sql.gz, a real database created by Odoo 19.
    Demo,
}

pub fn fixture() -> Fixture {
    match std::env::var("AGW_TEST_FIXTURE").as_deref() {
        Ok("base") => Fixture::Base,
        Ok("demo") => Fixture::Demo,
        _ => Fixture::Mini,
    }
}

/// The tests named `demo_*` compare with what Odoo answered on the real demo database: they run
/// only there (`make test` skips them on the other fixtures with `--skip demo_`) and fail loudly
/// anywhere else rather than pass without comparing anything.
pub fn demo_only() {
    assert_eq!(
        fixture(),
        Fixture::Demo,
        "a demo_* test runs on the real demo database only (AGW_TEST_FIXTURE=demo)"
    );
}

pub fn database() -> String {
    std::env::var("AGW_TEST_DB").unwrap_or_else(|_| scratch_db("mini"))
}

/// The name of a test's own database: `$AGW_DB_PREFIX` (default `agw_test`) + `_` + suffix, so two
/// checkouts can run their suites on one cluster side by side.
pub fn scratch_db(suffix: &str) -> String {
    let prefix = std::env::var("AGW_DB_PREFIX").unwrap_or_else(|_| "agw_test".into());
    format!("{prefix}_{suffix}")
}

pub fn connect_to(db: &str) -> Client {
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let user = std::env::var("PGUSER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into());
    let mut config = Client::configure();
    config.host(&host).user(&user).dbname(db);
    if let Some(port) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok()) {
        config.port(port);
    }
    config
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {db} on {host}: {e}"))
}

/// A connection to the fixture database under test.
pub fn connect() -> Client {
    connect_to(&database())
}

/// A database with the extension but without any Odoo table.
pub fn connect_plain() -> Client {
    connect_to(&scratch_db("plain"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> PathBuf {
    std::env::var("AGW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("../shared"))
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

/// One API key of the fixture and what Odoo answers for it.
#[derive(Clone, Debug)]
pub struct KeyCase {
    pub label: String,
    pub key: String,
    pub scope: String,
    /// The Odoo user id Odoo's `_check_credentials` returns, None when it refuses the key.
    pub uid: Option<i32>,
}

/// Every key of the fixture with the expected outcome, from the fixture's own key file.
pub fn key_cases() -> Vec<KeyCase> {
    let case = |label: &str, key: &str, scope: &str, uid: Option<i32>| KeyCase {
        label: label.into(),
        key: key.into(),
        scope: scope.into(),
        uid,
    };
    match fixture() {
        Fixture::Mini => {
            let keys = read_json(root().join("tests/fixtures/odoo19_mini.keys.json"));
            let mut out = vec![];
            for (label, v) in keys.as_object().expect("keys object") {
                let key = v["key"].as_str().expect("key");
                let uid = v["expect_uid_rpc"].as_i64().map(|u| u as i32);
                out.push(case(label, key, "rpc", uid));
                if let Some(u) = v.get("expect_uid_custom_scope").and_then(Value::as_i64) {
                    out.push(case(label, key, "custom.scope", Some(u as i32)));
                }
            }
            out
        }
        Fixture::Base => {
            // Expected outcomes are documented in shared/reference/odoo19.md §8.
            let keys = read_json(shared().join("fixtures/odoo19_base.keys.json"));
            let k = |label: &str| keys[label].as_str().expect("key").to_string();
            vec![
                case("admin", &k("admin"), "rpc", Some(2)),
                case("admin_rpc_scope", &k("admin_rpc_scope"), "rpc", Some(2)),
                case("demo", &k("demo"), "rpc", Some(5)),
                case("portal", &k("portal"), "rpc", Some(6)),
                case("jeff", &k("jeff"), "rpc", Some(8)),
                case(
                    "demo_same_index_as_admin",
                    &k("demo_same_index_as_admin"),
                    "rpc",
                    Some(5),
                ),
                case("demo_expired", &k("demo_expired"), "rpc", None),
                case(
                    "former_inactive_user",
                    &k("former_inactive_user"),
                    "rpc",
                    None,
                ),
                case("admin_other_scope", &k("admin_other_scope"), "rpc", None),
                case(
                    "admin_other_scope",
                    &k("admin_other_scope"),
                    "custom.scope",
                    Some(2),
                ),
            ]
        }
        Fixture::Demo => {
            let keys = read_json(shared().join("fixtures/odoo19_demo.keys.json"));
            let mut out = vec![];
            for v in keys["keys"].as_array().expect("keys list") {
                let key = v["key"].as_str().expect("key");
                let name = v["name"].as_str().unwrap_or("key");
                let uid = v["uid"].as_i64().expect("uid") as i32;
                let scope = v["scope"].as_str();
                let expired = name.contains("expired");
                let archived = name.contains("archived");
                let refused = expired || archived;
                let rpc_ok = !refused && matches!(scope, None | Some("rpc"));
                out.push(case(name, key, "rpc", rpc_ok.then_some(uid)));
                if let Some(s) = scope.filter(|s| *s != "rpc") {
                    out.push(case(name, key, s, (!refused).then_some(uid)));
                }
            }
            out
        }
    }
}

/// The SQLSTATE of a failed statement, for asserting on error classes.
pub fn sqlstate(err: &postgres::Error) -> String {
    err.code().map(|c| c.code().to_string()).unwrap_or_default()
}

/// Tests that commit many rows into Odoo tables (cursor paging under concurrent writes) hold this
/// exclusively; tests that compare whole result sets against an oracle hold it shared, so the
/// former never change a table under the latter.
pub static BULK_WRITES: std::sync::RwLock<()> = std::sync::RwLock::new(());
