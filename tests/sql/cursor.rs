//! Issue 18, cursor pagination: `search_page` pages with signed keyset cursors. Paging over
//! 10,000 records while another session inserts and deletes between the pages returns every
//! record that existed throughout exactly once; cursors cannot be replayed for another user,
//! order or domain, nor altered.
use api_gateway_tests::{connect, sqlstate};
use postgres::Client;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const DOMAIN: &str = "[('name', '=like', 'it-cursor-%')]";

/// Copy partner 3 `n` times under names `it-cursor-<name>` (all columns but id and name copied).
fn clone_partners(db: &mut Client, names: &[String]) -> Vec<i32> {
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
    let sql = format!(
        "INSERT INTO public.res_partner (name, {cols}) \
         SELECT n, {cols} FROM public.res_partner, unnest($1::text[]) n WHERE id = (SELECT min(id) FROM public.res_partner WHERE active) \
         RETURNING id"
    );
    db.query(&sql, &[&names])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const OWN_DOMAIN: &str = "[('name', '=like', 'it-cursorown-%')]";

fn page_of(
    db: &mut Client,
    domain: &str,
    uid: i32,
    order: &str,
    after: Option<&str>,
) -> Result<Value, String> {
    db.query_one(
        "SELECT api_gateway.search_page($1, 'res.partner', $2, ARRAY['name'], 500, $3, $4)",
        &[&uid, &domain, &order, &after],
    )
    .map(|r| r.get(0))
    .map_err(|e| sqlstate(&e))
}

fn page(db: &mut Client, uid: i32, order: &str, after: Option<&str>) -> Result<Value, String> {
    page_of(db, DOMAIN, uid, order, after)
}

/// A small deterministic generator (no timing, no external randomness).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn cursor_paging_over_10000_records_under_concurrent_inserts_and_deletes() {
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut reader = connect();
    let mut writer = connect();
    writer
        .execute(
            "DELETE FROM public.res_partner WHERE name LIKE 'it-cursor-%'",
            &[],
        )
        .unwrap();
    // Ties on name (every name three times) exercise the id tiebreak.
    let names: Vec<String> = (0..10_000)
        .map(|i| format!("it-cursor-{:05}", i % 3334))
        .collect();
    let initial = clone_partners(&mut writer, &names);
    assert_eq!(initial.len(), 10_000);
    let mut alive: BTreeSet<i32> = initial.iter().copied().collect();
    let mut deleted: BTreeSet<i32> = BTreeSet::new();
    let mut rng = Lcg(18);
    for order in ["name asc", "name desc, id desc"] {
        let mut seen: BTreeMap<i32, usize> = BTreeMap::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = page(&mut reader, 2, order, after.as_deref()).unwrap();
            for r in p["records"].as_array().unwrap() {
                *seen.entry(r["id"].as_i64().unwrap() as i32).or_default() += 1;
            }
            pages += 1;
            // Another session commits inserts (scattered over the order) and deletes between pages.
            let fresh: Vec<String> = (0..40)
                .map(|_| format!("it-cursor-{:05}", rng.next(3334)))
                .collect();
            clone_partners(&mut writer, &fresh);
            let victims: Vec<i32> = (0..40)
                .map(|_| *alive.iter().nth(rng.next(alive.len())).unwrap())
                .collect();
            for v in &victims {
                alive.remove(v);
                deleted.insert(*v);
            }
            writer
                .execute(
                    "DELETE FROM public.res_partner WHERE id = ANY($1)",
                    &[&victims],
                )
                .unwrap();
            match p["next"].as_str() {
                Some(c) => after = Some(c.to_string()),
                None => break,
            }
            assert!(pages < 100, "paging does not end");
        }
        let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(repeated.is_empty(), "{order}: returned twice: {repeated:?}");
        let missing: Vec<_> = alive.iter().filter(|id| !seen.contains_key(id)).collect();
        assert!(missing.is_empty(), "{order}: skipped: {missing:?}");
        assert!(pages >= 20, "{order}: {pages} pages");
    }
    writer
        .execute(
            "DELETE FROM public.res_partner WHERE name LIKE 'it-cursor-%'",
            &[],
        )
        .unwrap();
}

#[test]
fn cursors_resume_only_their_own_query() {
    let _exclusive = api_gateway_tests::BULK_WRITES
        .write()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    db.execute(
        "DELETE FROM public.res_partner WHERE name LIKE 'it-cursorown-%'",
        &[],
    )
    .unwrap();
    let names: Vec<String> = (0..3).map(|i| format!("it-cursorown-{i}")).collect();
    clone_partners(&mut db, &names);
    let first: Value = db
        .query_one(
            "SELECT api_gateway.search_page(2, 'res.partner', $1, ARRAY['name'], 2, 'name asc')",
            &[&OWN_DOMAIN],
        )
        .unwrap()
        .get(0);
    let names_of = |p: &Value| -> Vec<String> {
        p["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names_of(&first), ["it-cursorown-0", "it-cursorown-1"]);
    let cursor = first["next"].as_str().unwrap().to_string();
    let second = page_of(&mut db, OWN_DOMAIN, 2, "name asc", Some(&cursor)).unwrap();
    assert_eq!(names_of(&second), ["it-cursorown-2"]);
    assert!(second["next"].is_null());
    // Another order, another user, another domain, an altered cursor: 22023, nothing read.
    assert_eq!(
        page_of(&mut db, OWN_DOMAIN, 2, "name desc", Some(&cursor)).unwrap_err(),
        "22023"
    );
    assert_eq!(
        page_of(&mut db, OWN_DOMAIN, 6, "name asc", Some(&cursor)).unwrap_err(),
        "22023"
    );
    let other_domain = db.query_one(
        "SELECT api_gateway.search_page(2, 'res.partner', '[]', ARRAY['name'], 2, 'name asc', $1)",
        &[&cursor],
    );
    assert_eq!(sqlstate(&other_domain.unwrap_err()), "22023");
    let mut altered = cursor.clone().into_bytes();
    let i = altered.len() / 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(
        page_of(&mut db, OWN_DOMAIN, 2, "name asc", Some(&altered)).unwrap_err(),
        "22023"
    );
    assert_eq!(
        page_of(&mut db, OWN_DOMAIN, 2, "name asc", Some("garbage")).unwrap_err(),
        "22023"
    );
    db.execute(
        "DELETE FROM public.res_partner WHERE name LIKE 'it-cursorown-%'",
        &[],
    )
    .unwrap();
}
