//! Issue 18, ETags: `read_versioned` reports the row version, `write_if_match`/`unlink_if_match`
//! act only from a version the caller names, checked on the row locked for the change, so a
//! concurrent write cannot slip in between the check and the write (no lost update).
use api_gateway_tests::{Fixture, connect, fixture};
use serde_json::Value;

fn version(db: &mut postgres::Client, id: i32) -> String {
    let v: Value = db
        .query_one(
            "SELECT api_gateway.read_versioned(2, 'res.partner', $1, ARRAY['name'])",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(v["record"]["id"], id);
    v["version"].as_str().unwrap().to_string()
}

#[test]
fn conditional_write_waits_for_a_concurrent_one_and_then_refuses() {
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut a = connect();
    let mut b = connect();
    // A real Odoo database requires what its defaults fill in.
    let vals = match fixture() {
        Fixture::Demo => r#"{"name": "it-cond", "autopost_bills": "ask"}"#,
        Fixture::Mini | Fixture::Base => r#"{"name": "it-cond"}"#,
    };
    let id: i32 = a
        .query_one(
            "SELECT api_gateway.\"create\"(2, 'res.partner', $1::text::jsonb)",
            &[&vals],
        )
        .unwrap()
        .get(0);
    let v = version(&mut a, id);
    // Reading does not change the version; a missing record has none.
    assert_eq!(version(&mut a, id), v);
    let none: Option<Value> = a
        .query_one(
            "SELECT api_gateway.read_versioned(2, 'res.partner', 2147483647)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(none.is_none());

    // B writes from v and keeps its transaction open.
    let mut tb = b.transaction().unwrap();
    let done: String = tb
        .query_one(
            "SELECT api_gateway.write_if_match(2, 'res.partner', $1, '{\"name\": \"it-cond B\"}', ARRAY[$2])",
            &[&id, &v],
        )
        .unwrap()
        .get(0);
    assert_eq!(done, "done");
    // A writes from the same v: it must wait for B's row lock...
    let pid_a: i32 = a.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let v_a = v.clone();
    let writer = std::thread::spawn(move || {
        let r: String = a
            .query_one(
                "SELECT api_gateway.write_if_match(2, 'res.partner', $1, '{\"name\": \"it-cond A\"}', ARRAY[$2])",
                &[&id, &v_a],
            )
            .unwrap()
            .get(0);
        (a, r)
    });
    let mut watcher = connect();
    loop {
        let waiting: bool = watcher
            .query_one(
                "SELECT coalesce((SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1), false)",
                &[&pid_a],
            )
            .unwrap()
            .get(0);
        if waiting {
            break;
        }
        std::thread::yield_now();
    }
    // ...and once B commits, see that the row changed: nothing written.
    tb.commit().unwrap();
    let (mut a, r) = writer.join().unwrap();
    assert_eq!(r, "changed");
    let name: String = a
        .query_one("SELECT name FROM public.res_partner WHERE id = $1", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(name, "it-cond B");

    // Unlink: a stale version changes nothing, the current one deletes, then not_found.
    let stale: String = a
        .query_one(
            "SELECT api_gateway.unlink_if_match(2, 'res.partner', $1, ARRAY[$2])",
            &[&id, &v],
        )
        .unwrap()
        .get(0);
    assert_eq!(stale, "changed");
    let current = version(&mut a, id);
    assert_ne!(current, v);
    for expected in ["done", "not_found"] {
        let r: String = a
            .query_one(
                "SELECT api_gateway.unlink_if_match(2, 'res.partner', $1, ARRAY[$2])",
                &[&id, &current],
            )
            .unwrap()
            .get(0);
        assert_eq!(r, expected);
    }
}

#[test]
fn conditional_functions_refuse_null_arguments() {
    let mut db = connect();
    let err = db
        .query_one(
            "SELECT api_gateway.write_if_match(2, 'res.partner', 1, '{}', NULL)",
            &[],
        )
        .unwrap_err();
    assert_eq!(api_gateway_tests::sqlstate(&err), "22004");
}
