//! Issue 18, the change feed: `changes` returns what committed since the cursor, whatever the
//! order transactions commit in, each change and each deletion exactly once across polls, with
//! the caller's record rules; cursors are signed, tied to model, user and feed, and expire with
//! the feed's retention.
use api_gateway_tests::{connect, sqlstate};
use postgres::Client;
use serde_json::Value;
use std::collections::BTreeMap;

fn uid(db: &mut Client, login: &str) -> i32 {
    db.query_one(
        "SELECT id FROM public.res_users WHERE login = $1",
        &[&login],
    )
    .unwrap()
    .get(0)
}

/// Copy the first active partner under each name (all columns but id and name copied), in the
/// transaction `db` is in.
fn add_partners<C: postgres::GenericClient>(db: &mut C, names: &[&str]) -> Vec<i32> {
    let cols: Vec<String> = db
        .query(
            "SELECT quote_ident(column_name) FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'res_partner' AND column_name NOT IN ('id', 'name') \
             ORDER BY ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let cols = cols.join(", ");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    db.query(
        &format!(
            "INSERT INTO public.res_partner (name, {cols}) \
             SELECT n, {cols} FROM public.res_partner, unnest($1::text[]) n \
              WHERE id = (SELECT min(id) FROM public.res_partner WHERE active AND partner_share IS NOT TRUE) \
             RETURNING id"
        ),
        &[&names],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn changes(
    db: &mut Client,
    uid: i32,
    model: &str,
    since: Option<&str>,
    limit: Option<i32>,
) -> Result<Value, String> {
    db.query_one(
        "SELECT api_gateway.changes($1, $2, $3, ARRAY['name', 'active'], $4)",
        &[&uid, &model, &since, &limit],
    )
    .map(|r| r.get(0))
    .map_err(|e| sqlstate(&e))
}

/// What a poll said about the records of `mine`: id -> name for records, and deleted ids.
#[derive(Default, Debug)]
struct Seen {
    records: BTreeMap<i32, Vec<String>>,
    deleted: BTreeMap<i32, usize>,
}

impl Seen {
    fn take(&mut self, page: &Value, mine: &[i32]) {
        for r in page["records"].as_array().unwrap() {
            let id = r["id"].as_i64().unwrap() as i32;
            if mine.contains(&id) {
                self.records
                    .entry(id)
                    .or_default()
                    .push(r["name"].as_str().unwrap_or("").to_string());
            }
        }
        for d in page["deleted"].as_array().unwrap() {
            let id = d.as_i64().unwrap() as i32;
            if mine.contains(&id) {
                *self.deleted.entry(id).or_default() += 1;
            }
        }
    }
}

/// Poll until the window is read (`more` false); returns the next cursor.
fn poll_all(db: &mut Client, uid: i32, since: &str, mine: &[i32], seen: &mut Seen) -> String {
    let mut cursor = since.to_string();
    for _ in 0..10_000 {
        let page = changes(db, uid, "res.partner", Some(&cursor), Some(50)).unwrap();
        seen.take(&page, mine);
        cursor = page["next"].as_str().unwrap().to_string();
        if !page["more"].as_bool().unwrap() {
            return cursor;
        }
    }
    panic!("the window never ends");
}

/// Enable the feed, after removing what an interrupted earlier run may have left.
fn enable(db: &mut Client, model: &str) {
    db.batch_execute(
        "DELETE FROM public.res_partner WHERE name LIKE 'it-feed-%'; \
         DELETE FROM public.res_partner_category WHERE name->>'en_US' LIKE 'it-feed-%'",
    )
    .unwrap();
    db.query_one("SELECT api_gateway.feed_enable($1)", &[&model])
        .unwrap();
}

fn start(db: &mut Client, uid: i32, model: &str) -> String {
    let first = changes(db, uid, model, None, None).unwrap();
    assert_eq!(first["records"], serde_json::json!([]));
    assert_eq!(first["deleted"], serde_json::json!([]));
    assert_eq!(first["more"], Value::Bool(false));
    first["next"].as_str().unwrap().to_string()
}

#[test]
fn feed_returns_out_of_order_commits_exactly_once() {
    // Commits rows into Odoo tables: never under a test comparing whole result sets.
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    enable(&mut db, "res.partner");
    let demo = uid(&mut db, "demo");
    let c0 = start(&mut db, demo, "res.partner");
    // T1 begins and writes first; T2 writes and commits; the feed is polled; T1 commits.
    let mut t1_conn = connect();
    let mut t1 = t1_conn.transaction().unwrap();
    let a = add_partners(&mut t1, &["it-feed-order-a"])[0];
    let mut t2_conn = connect();
    let b = add_partners(&mut t2_conn, &["it-feed-order-b"])[0];
    assert!(a < b, "T1 wrote first");
    let mine = [a, b];
    let mut seen = Seen::default();
    let c1 = poll_all(&mut db, demo, &c0, &mine, &mut seen);
    assert_eq!(seen.records.keys().copied().collect::<Vec<_>>(), [b]);
    t1.commit().unwrap();
    let c2 = poll_all(&mut db, demo, &c1, &mine, &mut seen);
    // A later write is returned with the values as they are now, once more.
    db.execute(
        "UPDATE public.res_partner SET name = 'it-feed-order-b2' WHERE id = $1",
        &[&b],
    )
    .unwrap();
    let c3 = poll_all(&mut db, demo, &c2, &mine, &mut seen);
    poll_all(&mut db, demo, &c3, &mine, &mut seen);
    assert_eq!(seen.records[&a], ["it-feed-order-a"], "{seen:?}");
    assert_eq!(seen.records[&b], ["it-feed-order-b", "it-feed-order-b2"]);
    assert!(seen.deleted.is_empty());
    db.execute(
        "DELETE FROM public.res_partner WHERE id = ANY($1)",
        &[&&mine[..]],
    )
    .unwrap();
}

#[test]
fn feed_returns_each_deletion_exactly_once() {
    // Commits rows into Odoo tables: never under a test comparing whole result sets.
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    enable(&mut db, "res.partner");
    let demo = uid(&mut db, "demo");
    let ids = add_partners(&mut db, &["it-feed-del-c", "it-feed-del-d"]);
    let c0 = start(&mut db, demo, "res.partner");
    let mut seen = Seen::default();
    // C deleted; E created and deleted between two polls: the caller never saw E.
    db.execute("DELETE FROM public.res_partner WHERE id = $1", &[&ids[0]])
        .unwrap();
    let e = add_partners(&mut db, &["it-feed-del-e"])[0];
    db.execute(
        "UPDATE public.res_partner SET name = 'it-feed-del-e2' WHERE id = $1",
        &[&e],
    )
    .unwrap();
    db.execute("DELETE FROM public.res_partner WHERE id = $1", &[&e])
        .unwrap();
    // D archived: a change, returned with active = false (archived records are not hidden).
    db.execute(
        "UPDATE public.res_partner SET active = false WHERE id = $1",
        &[&ids[1]],
    )
    .unwrap();
    let mine = [ids[0], ids[1], e];
    let c1 = poll_all(&mut db, demo, &c0, &mine, &mut seen);
    let c2 = poll_all(&mut db, demo, &c1, &mine, &mut seen);
    // D deleted while a long transaction, begun before, commits after the next poll.
    let mut long_conn = connect();
    let mut long = long_conn.transaction().unwrap();
    long.execute("DELETE FROM public.res_partner WHERE id = $1", &[&ids[1]])
        .unwrap();
    let c3 = poll_all(&mut db, demo, &c2, &mine, &mut seen);
    long.commit().unwrap();
    let c4 = poll_all(&mut db, demo, &c3, &mine, &mut seen);
    poll_all(&mut db, demo, &c4, &mine, &mut seen);
    assert_eq!(
        seen.deleted,
        BTreeMap::from([(ids[0], 1), (ids[1], 1)]),
        "{seen:?}"
    );
    assert_eq!(
        seen.records.keys().copied().collect::<Vec<_>>(),
        [ids[1]],
        "{seen:?}"
    );
}

#[test]
fn feed_pages_a_window_without_skipping_what_commits_meanwhile() {
    // Commits rows into Odoo tables: never under a test comparing whole result sets.
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    enable(&mut db, "res.partner");
    let admin = uid(&mut db, "admin");
    let c0 = start(&mut db, admin, "res.partner");
    let names: Vec<String> = (0..7).map(|i| format!("it-feed-page-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut ids = add_partners(&mut db, &refs);
    let mut seen = Seen::default();
    let mut cursor = c0;
    let mut pages = 0;
    let mut late = None;
    loop {
        let page = changes(&mut db, admin, "res.partner", Some(&cursor), Some(2)).unwrap();
        assert!(page["records"].as_array().unwrap().len() <= 2);
        pages += 1;
        // Committed while the window is read in pages: returned by a later window.
        if late.is_none() {
            let l = add_partners(&mut db, &["it-feed-page-late"])[0];
            ids.push(l);
            late = Some(l);
        }
        seen.take(&page, &ids);
        cursor = page["next"].as_str().unwrap().to_string();
        if !page["more"].as_bool().unwrap() {
            break;
        }
    }
    assert!(pages >= 4, "7 records by 2: {pages} pages");
    poll_all(&mut db, admin, &cursor, &ids, &mut seen);
    assert_eq!(seen.records.len(), 8, "{seen:?}");
    assert!(seen.records.values().all(|n| n.len() == 1), "{seen:?}");
    db.execute("DELETE FROM public.res_partner WHERE id = ANY($1)", &[&ids])
        .unwrap();
}

#[test]
fn feed_applies_the_callers_record_rules() {
    // Commits rows into Odoo tables: never under a test comparing whole result sets.
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    enable(&mut db, "res.partner");
    let demo = uid(&mut db, "demo");
    let portal = uid(&mut db, "portal");
    let for_demo = start(&mut db, demo, "res.partner");
    let for_portal = start(&mut db, portal, "res.partner");
    // A company contact: demo may read it, portal users see their own commercial entity only.
    let x = add_partners(&mut db, &["it-feed-rules-x"])[0];
    let visible: i64 = db
        .query_one(
            "SELECT jsonb_array_length(api_gateway.search_read($1, 'res.partner', $2, ARRAY['name']))::int8",
            &[&portal, &format!("[('id', '=', {x})]")],
        )
        .unwrap()
        .get(0);
    assert_eq!(visible, 0, "the fixture's portal rule hides the partner");
    let mut seen_demo = Seen::default();
    let mut seen_portal = Seen::default();
    poll_all(&mut db, demo, &for_demo, &[x], &mut seen_demo);
    // poll_all reads as res.partner with the portal user's rights
    let mut cursor = for_portal.clone();
    loop {
        let page = changes(&mut db, portal, "res.partner", Some(&cursor), Some(50)).unwrap();
        seen_portal.take(&page, &[x]);
        for r in page["records"].as_array().unwrap() {
            let id = r["id"].as_i64().unwrap() as i32;
            let n: i64 = db
                .query_one(
                    "SELECT jsonb_array_length(api_gateway.search_read($1, 'res.partner', $2))::int8",
                    &[&portal, &format!("[('id', '=', {id})]")],
                )
                .unwrap()
                .get(0);
            assert_eq!(n, 1, "every record the portal user gets is one it may read");
        }
        cursor = page["next"].as_str().unwrap().to_string();
        if !page["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen_demo.records[&x], ["it-feed-rules-x"]);
    assert!(seen_portal.records.is_empty(), "{seen_portal:?}");
    assert!(seen_portal.deleted.is_empty());
    db.execute("DELETE FROM public.res_partner WHERE id = $1", &[&x])
        .unwrap();
}

#[test]
fn feed_cursors_resume_only_their_own_feed() {
    // Commits rows into Odoo tables: never under a test comparing whole result sets.
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    enable(&mut db, "res.partner");
    enable(&mut db, "product.template");
    let demo = uid(&mut db, "demo");
    let admin = uid(&mut db, "admin");
    let cursor = start(&mut db, demo, "res.partner");
    assert!(changes(&mut db, demo, "res.partner", Some(&cursor), None).is_ok());
    // Another user, another model, an altered cursor, a page cursor, garbage: 22023.
    assert_eq!(
        changes(&mut db, admin, "res.partner", Some(&cursor), None).unwrap_err(),
        "22023"
    );
    assert_eq!(
        changes(&mut db, demo, "product.template", Some(&cursor), None).unwrap_err(),
        "22023"
    );
    let mut altered = cursor.clone().into_bytes();
    let i = altered.len() / 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(
        changes(&mut db, demo, "res.partner", Some(&altered), None).unwrap_err(),
        "22023"
    );
    let page: Value = db
        .query_one(
            "SELECT api_gateway.search_page($1, 'res.partner', '[]', ARRAY['name'], 1)",
            &[&demo],
        )
        .unwrap()
        .get(0);
    let page_cursor = page["next"].as_str().unwrap();
    assert_eq!(
        changes(&mut db, demo, "res.partner", Some(page_cursor), None).unwrap_err(),
        "22023"
    );
    assert_eq!(
        changes(&mut db, demo, "res.partner", Some("garbage"), None).unwrap_err(),
        "22023"
    );
    assert_eq!(
        changes(&mut db, demo, "res.partner", Some(&cursor), Some(0)).unwrap_err(),
        "22023"
    );
}

#[test]
fn feed_must_be_enabled_by_the_dba() {
    let mut db = connect();
    let admin = uid(&mut db, "admin");
    // No test enables res.company's feed.
    let err = db
        .query_one("SELECT api_gateway.changes($1, 'res.company')", &[&admin])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(message.contains("not enabled"), "{message}");
    assert!(
        err.as_db_error()
            .unwrap()
            .hint()
            .unwrap()
            .contains("feed_enable('res.company')")
    );
    // Bad input to the DBA's functions: clear SQLSTATEs, nothing enabled.
    for (sql, code) in [
        ("SELECT api_gateway.feed_enable('no.such.model')", "42P01"),
        ("SELECT api_gateway.feed_enable('Bad Name')", "22023"),
        (
            "SELECT api_gateway.feed_enable('res.company', '1 minute')",
            "22023",
        ),
    ] {
        assert_eq!(
            sqlstate(&db.query_one(sql, &[]).unwrap_err()),
            code,
            "{sql}"
        );
    }
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM api_gateway.feed WHERE model = 'res.company'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

/// On res.partner.category alone (no other test of this suite enables, writes it or expires its
/// cursors): retention,
/// lost triggers and disabling.
#[test]
fn feed_cursors_expire_with_retention_and_repairs() {
    // Commits rows into Odoo tables: never under a test comparing whole result sets.
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    let admin = uid(&mut db, "admin");
    let model = "res.partner.category";
    db.query_one("SELECT api_gateway.feed_disable($1)", &[&model])
        .unwrap();
    enable(&mut db, "res.partner");
    db.query_one("SELECT api_gateway.feed_enable($1, '1 hour')", &[&model])
        .unwrap();
    let old = start(&mut db, admin, model);
    let tag = |db: &mut Client, name: &str| -> i32 {
        db.query_one(
            "INSERT INTO public.res_partner_category (name, active, color) \
             VALUES (jsonb_build_object('en_US', $1::text), true, 1) RETURNING id",
            &[&name],
        )
        .unwrap()
        .get(0)
    };
    let t1 = tag(&mut db, "it-feed-tag-1");
    let first = changes(&mut db, admin, model, Some(&old), None).unwrap();
    assert!(
        first["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == t1)
    );
    // A transaction that ended more than the retention ago (a horizon noted 61 minutes ago, past
    // the transaction that wrote t1): the purge drops its log rows and the cursor expires.
    // The purge itself (run_maintenance('feeds') runs it under an advisory lock, so a
    // concurrent maintenance run of another test may skip it: called directly here).
    let logged = |db: &mut Client| -> i64 {
        db.query_one(
            "SELECT count(*) FROM api_gateway.feed_log l JOIN api_gateway.feed f ON f.id = l.feed_id \
              WHERE f.model = $1 AND l.res_id = $2",
            &[&model, &i64::from(t1)],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(logged(&mut db), 1);
    // A horizon as maintenance notes it (the oldest transaction still running), once every
    // transaction up to t1's has ended (other tests' transactions may still hold it back).
    let t1_xact: String = db
        .query_one(
            "SELECT l.xact::text FROM api_gateway.feed_log l JOIN api_gateway.feed f ON f.id = l.feed_id \
              WHERE f.model = $1 AND l.res_id = $2",
            &[&model, &i64::from(t1)],
        )
        .unwrap()
        .get(0);
    let mut waits = 0;
    while !db
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::numeric > $1::text::numeric",
            &[&t1_xact],
        )
        .unwrap()
        .get::<_, bool>(0)
    {
        waits += 1;
        assert!(waits < 6000, "a transaction older than t1's never ends");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    db.execute(
        "INSERT INTO api_gateway.feed_horizon (at, below) \
         VALUES (now() - interval '61 minutes', pg_snapshot_xmin(pg_current_snapshot()))",
        &[],
    )
    .unwrap();
    db.query_one("SELECT api_gateway._feed_purge()", &[])
        .unwrap();
    assert_eq!(logged(&mut db), 0, "purged past the retention");
    let all: Value = db
        .query_one("SELECT api_gateway.run_maintenance('all')", &[])
        .unwrap()
        .get(0);
    assert!(all["feeds"].is_object(), "{all}");
    assert_eq!(
        changes(&mut db, admin, model, Some(&old), None).unwrap_err(),
        "72000"
    );
    // A cursor taken after the horizon keeps working.
    let fresh = start(&mut db, admin, model);
    let t2 = tag(&mut db, "it-feed-tag-2");
    let next = changes(&mut db, admin, model, Some(&fresh), None).unwrap();
    assert!(
        next["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == t2),
        "{next}"
    );
    // A dropped trigger: the feed refuses to answer (writes may have gone unlogged) until the
    // DBA enables it again, which expires its cursors.
    let after = next["next"].as_str().unwrap().to_string();
    db.batch_execute("DROP TRIGGER api_gateway_feed_update ON public.res_partner_category")
        .unwrap();
    assert_eq!(
        changes(&mut db, admin, model, Some(&after), None).unwrap_err(),
        "55000"
    );
    db.query_one("SELECT api_gateway.feed_enable($1)", &[&model])
        .unwrap();
    assert_eq!(
        changes(&mut db, admin, model, Some(&after), None).unwrap_err(),
        "72000"
    );
    // Disabled: triggers and log gone, 55000 again.
    assert!(
        db.query_one("SELECT api_gateway.feed_disable($1)", &[&model])
            .unwrap()
            .get::<_, bool>(0)
    );
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.res_partner_category'::regclass AND tgname LIKE 'api_gateway_feed_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    assert_eq!(
        changes(&mut db, admin, model, None, None).unwrap_err(),
        "55000"
    );
    db.execute(
        "DELETE FROM public.res_partner_category WHERE id = ANY($1)",
        &[&vec![t1, t2]],
    )
    .unwrap();
}
