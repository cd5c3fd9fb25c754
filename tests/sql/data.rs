//! Issue 4: Odoo-faithful data access (`search_read`, `search_count`, `read`, `create`, `write`,
//! `unlink`, `check_access`), tested differentially against an oracle.
//!
//! The oracle is hand-written SQL over the fixture tables that encodes what Odoo 19 prescribes
//! for each domain (`data/cases.rs`, one reason per case), ANDed with the record rules of §4 of
//! `shared/reference/odoo19.md` for the user (written out here from the user's groups, companies
//! and commercial partner, computed with plain SQL, not with the extension) and the active test.
//! The same oracle runs on the three fixtures; `oracle_rules_are_the_fixture_rules` pins the
//! rule strings it encodes.
mod cases;

use api_gateway_tests::{Fixture, connect, demo_only, fixture, sqlstate};
use cases::Case;
use postgres::types::ToSql;
use postgres::{Client, GenericClient};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

// ------------------------------------------------------------------------------------------
// The rules the oracle encodes (compared without whitespace).

const PARTNER_RULE: &str = "['|','|',('partner_share','=',False),('company_id','parent_of',company_ids),('company_id','=',False)]";
const PORTAL_RULE: &str = "[('id','child_of',user.commercial_partner_id.id)]";
const PRODUCT_RULE: &str = "['|',('company_id','parent_of',company_ids),('company_id','=',False)]";
const COMPANY_MINE: &str = "[('id','in',company_ids)]";
const COMPANY_ALL: &str = "[(1,'=',1)]";

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Run one statement inside a savepoint: Ok(row) or Err(SQLSTATE), leaving any outer
/// transaction usable.
fn try_one<C: GenericClient>(
    db: &mut C,
    sql: &str,
    params: Params,
) -> Result<postgres::Row, String> {
    let mut sp = db.transaction().expect("savepoint");
    match sp.query_one(sql, params) {
        Ok(row) => {
            sp.commit().expect("release savepoint");
            Ok(row)
        }
        Err(e) => {
            let code = sqlstate(&e);
            let msg = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            let _ = sp.rollback();
            Err(if code.is_empty() {
                format!("?? {msg}")
            } else {
                code
            })
        }
    }
}

/// Like `try_one` but keeps the error message.
fn try_msg<C: GenericClient>(
    db: &mut C,
    sql: &str,
    params: Params,
) -> Result<postgres::Row, (String, String)> {
    let mut sp = db.transaction().expect("savepoint");
    match sp.query_one(sql, params) {
        Ok(row) => {
            sp.commit().expect("release savepoint");
            Ok(row)
        }
        Err(e) => {
            let code = sqlstate(&e);
            let msg = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            let _ = sp.rollback();
            Err((code, msg))
        }
    }
}

fn int_array(v: &[i32]) -> String {
    if v.is_empty() {
        "'{}'::int4[]".into()
    } else {
        format!(
            "ARRAY[{}]::int4[]",
            v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        )
    }
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// ------------------------------------------------------------------------------------------
// User facts, computed with plain SQL from the fixture (§3.3, §4.4).

const MODELS: &[&str] = &[
    "res.partner",
    "product.template",
    "res.partner.category",
    "res.company",
];

#[derive(Debug, Clone)]
struct User {
    label: &'static str,
    uid: i32,
    company_id: i32,
    /// env.companies: the user's active companies.
    company_ids: Vec<i32>,
    /// `parent_of company_ids`: the ids on those companies' parent_path.
    parents: Vec<i32>,
    lang: String,
    /// res_partner_portal_public_rule applies to this user (one of its groups).
    portal_rule: bool,
    /// `child_of user.commercial_partner_id` (parent_id walk, archived included).
    child_of_commercial: Vec<i32>,
    /// res.company ids the company read rules let through.
    visible_companies: Vec<i32>,
    /// (model, operation) -> the ACL grants it.
    acl: BTreeMap<(String, String), bool>,
}

fn load_user(db: &mut Client, label: &'static str) -> User {
    let row = db
        .query_one(
            "WITH RECURSIVE g(gid) AS (
                 SELECT r.gid FROM public.res_groups_users_rel r JOIN public.res_users u ON u.id = r.uid WHERE u.login = $1
                 UNION SELECT i.hid FROM public.res_groups_implied_rel i JOIN g ON i.gid = g.gid),
             me AS (SELECT u.id, u.company_id, p.commercial_partner_id, coalesce(nullif(p.lang, ''), 'en_US') AS lang
                      FROM public.res_users u JOIN public.res_partner p ON p.id = u.partner_id WHERE u.login = $1),
             comp AS (SELECT r.cid FROM public.res_company_users_rel r JOIN public.res_company c ON c.id = r.cid
                       WHERE r.user_id = (SELECT id FROM me) AND c.active IS TRUE),
             h(id) AS (SELECT commercial_partner_id FROM me
                       UNION SELECT x.id FROM public.res_partner x JOIN h ON x.parent_id = h.id)
             SELECT me.id, me.company_id, me.lang,
                    (SELECT coalesce(array_agg(gid ORDER BY gid), '{}') FROM g),
                    (SELECT coalesce(array_agg(cid ORDER BY cid), '{}') FROM comp),
                    (SELECT coalesce(array_agg(DISTINCT x::int4), '{}')
                       FROM public.res_company c, unnest(string_to_array(rtrim(c.parent_path, '/'), '/')) x
                      WHERE c.id IN (SELECT cid FROM comp)),
                    (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM h WHERE id IS NOT NULL),
                    (SELECT array_agg(id ORDER BY id) FROM public.res_company)
               FROM me",
            &[&label],
        )
        .unwrap_or_else(|e| panic!("user {label} in the fixture: {e}"));
    let groups: Vec<i32> = row.get(3);
    let company_ids: Vec<i32> = row.get(4);
    let mut parents: Vec<i32> = row.get(5);
    parents.sort();
    let all_companies: Vec<i32> = row.get(7);
    // Which group rules of a model apply, by normalised domain_force.
    let group_rules = |db: &mut Client, model: &str| -> BTreeSet<String> {
        db.query(
            "SELECT r.domain_force FROM public.ir_rule r JOIN public.ir_model m ON m.id = r.model_id
              WHERE m.model = $1 AND r.active AND r.perm_read
                AND EXISTS (SELECT 1 FROM public.rule_group_rel x WHERE x.rule_group_id = r.id AND x.group_id = ANY($2))",
            &[&model, &groups],
        )
        .unwrap()
        .iter()
        .map(|r| squash(&r.get::<_, Option<String>>(0).unwrap_or_default()))
        .collect()
    };
    let partner_groups = group_rules(db, "res.partner");
    let company_groups = group_rules(db, "res.company");
    // Group rules are ORed: [(1,'=',1)] wins; else [('id','in',company_ids)]; none = no restriction.
    let visible_companies = if company_groups.contains(COMPANY_ALL) || company_groups.is_empty() {
        all_companies
    } else {
        company_ids.clone()
    };
    let mut acl = BTreeMap::new();
    for model in MODELS {
        for op in ["read", "write", "create", "unlink"] {
            let granted: bool = db
                .query_one(
                    &format!(
                        "SELECT coalesce(bool_or(a.perm_{op}), false) FROM public.ir_model_access a
                           JOIN public.ir_model m ON m.id = a.model_id
                          WHERE m.model = $1 AND a.active AND (a.group_id IS NULL OR a.group_id = ANY($2))"
                    ),
                    &[model, &groups],
                )
                .unwrap()
                .get(0);
            acl.insert((model.to_string(), op.to_string()), granted);
        }
    }
    User {
        label,
        uid: row.get(0),
        company_id: row.get(1),
        company_ids,
        parents,
        lang: row.get(2),
        portal_rule: partner_groups.contains(PORTAL_RULE),
        child_of_commercial: row.get(6),
        visible_companies,
        acl,
    }
}

impl User {
    fn can(&self, model: &str, op: &str) -> bool {
        self.acl
            .get(&(model.to_string(), op.to_string()))
            .copied()
            .unwrap_or(false)
    }

    /// res_partner_rule (global) AND, for portal/public, res_partner_portal_public_rule.
    fn partner_rule(&self, a: &str) -> String {
        let mut s = format!(
            "({a}.partner_share IS NOT TRUE OR {a}.company_id = ANY({p}) OR {a}.company_id IS NULL)",
            p = int_array(&self.parents)
        );
        if self.portal_rule {
            s.push_str(&format!(
                " AND {a}.id = ANY({})",
                int_array(&self.child_of_commercial)
            ));
        }
        s
    }

    /// product_comp_rule (global).
    fn product_rule(&self, a: &str) -> String {
        format!(
            "({a}.company_id = ANY({p}) OR {a}.company_id IS NULL)",
            p = int_array(&self.parents)
        )
    }

    /// The company group rules, ORed.
    fn company_rule(&self, a: &str) -> String {
        format!("{a}.id = ANY({})", int_array(&self.visible_companies))
    }
}

fn test_users(db: &mut Client) -> Vec<User> {
    ["admin", "demo", "portal", "jeff"]
        .into_iter()
        .map(|l| load_user(db, l))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Anchors: fixture ids the cases refer to, chosen by SQL so every fixture has meaningful ones.

struct Anchors(Vec<(&'static str, i32)>);

fn anchors(db: &mut Client) -> Anchors {
    let r = db
        .query_one(
            "SELECT
               (SELECT parent_id FROM public.res_partner WHERE parent_id IS NOT NULL
                 GROUP BY parent_id ORDER BY count(*) DESC, parent_id LIMIT 1),
               coalesce((SELECT p.id FROM public.res_partner p JOIN public.res_partner q ON q.id = p.parent_id
                          WHERE q.parent_id IS NOT NULL ORDER BY p.id LIMIT 1),
                        (SELECT min(id) FROM public.res_partner WHERE parent_id IS NOT NULL)),
               coalesce((SELECT min(id) FROM public.res_partner WHERE active IS NOT TRUE AND parent_id IS NOT NULL), 0),
               (SELECT category_id FROM public.res_partner_res_partner_category_rel
                 GROUP BY category_id ORDER BY count(*) DESC, category_id LIMIT 1),
               coalesce((SELECT parent_id FROM public.res_partner_category WHERE parent_id IS NOT NULL ORDER BY id LIMIT 1),
                        (SELECT min(id) FROM public.res_partner_category)),
               coalesce((SELECT min(id) FROM public.res_partner_category WHERE active IS NOT TRUE), 0),
               (SELECT max(id) FROM public.res_company)",
            &[],
        )
        .unwrap();
    let names = [
        "P_PARENT",
        "P_LEAF",
        "P_ARCH_CHILD",
        "TAG1",
        "TAG2",
        "TAG_ARCH",
        "C2",
    ];
    Anchors(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, r.get::<_, Option<i32>>(i).unwrap_or(0)))
            .collect(),
    )
}

impl Anchors {
    fn fill(&self, text: &str) -> String {
        let mut s = text.to_string();
        for (name, v) in &self.0 {
            s = s.replace(&format!("{{{name}}}"), &v.to_string());
        }
        s
    }
}

// ------------------------------------------------------------------------------------------
// The oracle.

fn table_of(model: &str) -> &'static str {
    match model {
        "res.partner" => "res_partner",
        "product.template" => "product_template",
        "res.partner.category" => "res_partner_category",
        "res.company" => "res_company",
        "res.users" => "res_users",
        other => panic!("no oracle table for {other}"),
    }
}

/// Expand `{lang}`, `{prule:X}`, `{trule:X}`, `{crule:X}`, `{child_of:N}`, `{parent_of:N}`.
fn expand(oracle: &str, user: &User) -> String {
    let mut s = oracle.replace("{lang}", &sql_literal(&user.lang));
    while let Some(start) = s.find('{') {
        let end = start + s[start..].find('}').expect("closing brace in oracle");
        let inner = &s[start + 1..end];
        let (kind, arg) = inner.split_once(':').expect("placeholder kind:arg");
        let text = match kind {
            "prule" => format!("({})", user.partner_rule(arg)),
            "trule" => format!("({})", user.product_rule(arg)),
            "crule" => format!("({})", user.company_rule(arg)),
            "child_of" => format!(
                "(WITH RECURSIVE h(id) AS (SELECT {arg}::int4 UNION SELECT x.id FROM public.res_partner x JOIN h ON x.parent_id = h.id) SELECT id FROM h)"
            ),
            "parent_of" => format!(
                "(WITH RECURSIVE h(id) AS (SELECT {arg}::int4 UNION SELECT x.parent_id FROM public.res_partner x JOIN h ON x.id = h.id WHERE x.parent_id IS NOT NULL) SELECT id FROM h)"
            ),
            other => panic!("unknown oracle placeholder {other}"),
        };
        s.replace_range(start..=end, &text);
    }
    s
}

fn model_rule(model: &str, user: &User, a: &str) -> String {
    match model {
        "res.partner" => user.partner_rule(a),
        "product.template" => user.product_rule(a),
        "res.company" => user.company_rule(a),
        "res.partner.category" => "TRUE".into(),
        other => panic!("no oracle rule for {other}"),
    }
}

type Outcome = Result<Vec<i32>, String>;

/// What Odoo answers: 42501 when an access right is missing (on the model, or on a comodel a
/// sub-search checks), else the ids of the oracle.
fn expected(db: &mut Client, case: &Case, user: &User, anchors: &Anchors) -> (Outcome, String) {
    if !user.can(case.model, "read") {
        return (
            Err("42501".into()),
            format!("no read ACL on {}", case.model),
        );
    }
    if let Some(m) = case.needs.iter().find(|m| !user.can(m, "read")) {
        return (Err("42501".into()), format!("no read ACL on comodel {m}"));
    }
    let oracle = expand(&anchors.fill(case.oracle), user);
    let active = if case.mentions_active {
        String::new()
    } else {
        " AND t.active IS TRUE".into()
    };
    let sql = format!(
        "SELECT coalesce(array_agg(t.id ORDER BY t.id), '{{}}') FROM public.{table} t WHERE ({oracle}) AND ({rule}){active}",
        table = table_of(case.model),
        rule = model_rule(case.model, user, "t"),
    );
    let ids: Vec<i32> = db
        .query_one(&sql, &[])
        .unwrap_or_else(|e| panic!("oracle SQL failed for {}: {e}\n{sql}", case.domain))
        .get(0);
    (Ok(ids), sql)
}

const IDS_SQL: &str = "SELECT coalesce(array_agg((r->>'id')::int4 ORDER BY (r->>'id')::int4), '{}') \
     FROM jsonb_array_elements(api_gateway.search_read($1, $2, $3, ARRAY['id'], 1000)) r";

fn search_ids(db: &mut Client, uid: i32, model: &str, domain: &str) -> Outcome {
    try_one(db, IDS_SQL, &[&uid, &model, &domain]).map(|r| r.get(0))
}

fn search_count(db: &mut Client, uid: i32, model: &str, domain: &str) -> Result<i64, String> {
    try_one(
        db,
        "SELECT api_gateway.search_count($1, $2, $3)",
        &[&uid, &model, &domain],
    )
    .map(|r| r.get(0))
}

fn diff(exp: &[i32], got: &[i32]) -> String {
    let e: BTreeSet<_> = exp.iter().collect();
    let g: BTreeSet<_> = got.iter().collect();
    format!(
        "missing {:?}, extra {:?}",
        e.difference(&g).collect::<Vec<_>>(),
        g.difference(&e).collect::<Vec<_>>()
    )
}

// ------------------------------------------------------------------------------------------
// 1. The differential set.

#[test]
fn data_oracle_rules_are_the_fixture_rules() {
    let mut db = connect();
    let rows = db
        .query(
            "SELECT m.model, r.name, coalesce(r.domain_force, ''), r.\"global\", r.perm_read, r.perm_write,
                    r.perm_create, r.perm_unlink
               FROM public.ir_rule r JOIN public.ir_model m ON m.id = r.model_id
              WHERE r.active AND m.model = ANY($1) ORDER BY r.id",
            &[&MODELS],
        )
        .unwrap();
    let known: &[(&str, &str, bool, [bool; 4])] = &[
        ("res.partner", PARTNER_RULE, true, [true; 4]),
        (
            "res.partner",
            PORTAL_RULE,
            false,
            [true, false, false, false],
        ),
        ("product.template", PRODUCT_RULE, true, [true; 4]),
        ("res.company", COMPANY_MINE, false, [true; 4]),
        ("res.company", COMPANY_ALL, false, [true; 4]),
    ];
    for r in &rows {
        let (model, name, dom, global): (String, String, String, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let perms: [bool; 4] = [r.get(4), r.get(5), r.get(6), r.get(7)];
        assert!(
            known.iter().any(|(m, d, g, p)| *m == model
                && squash(d) == squash(&dom)
                && *g == global
                && *p == perms),
            "{:?}: rule {name:?} on {model} ({dom}) is not encoded in the oracle",
            fixture()
        );
    }
    let models: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    for m in ["res.partner", "product.template", "res.company"] {
        assert!(models.contains(m), "{m} has its documented rules");
    }
}

fn run_differential(model: &str, cases: Vec<Case>) {
    let _shared = api_gateway_tests::BULK_WRITES
        .read()
        .unwrap_or_else(|e| e.into_inner());
    let mut db = connect();
    db.execute("SET statement_timeout = '60s'", &[]).unwrap();
    let users = test_users(&mut db);
    let anchors = anchors(&mut db);
    let mut failures = vec![];
    let (mut checked, mut nonempty, mut refused) = (0, 0, 0);
    for case in cases.iter().filter(|c| c.model == model) {
        let domain = anchors.fill(case.domain);
        for user in &users {
            let (exp, oracle) = expected(&mut db, case, user, &anchors);
            let got = search_ids(&mut db, user.uid, case.model, &domain);
            let count = search_count(&mut db, user.uid, case.model, &domain);
            checked += 1;
            match &exp {
                Ok(ids) if !ids.is_empty() => nonempty += 1,
                Err(_) => refused += 1,
                _ => {}
            }
            let count_ok = match (&exp, &count) {
                (Ok(ids), Ok(n)) => *n == ids.len() as i64,
                (Err(a), Err(b)) => a == b,
                _ => false,
            };
            if got != exp || !count_ok {
                let detail = match (&exp, &got) {
                    (Ok(e), Ok(g)) => diff(e, g),
                    _ => String::new(),
                };
                failures.push(format!(
                    "{model} {domain}\n    user {} (uid {}): expected {exp:?}\n    got search_read {got:?}, search_count {count:?} {detail}\n    why: {}\n    oracle: {oracle}",
                    user.label, user.uid, case.why
                ));
            }
        }
    }
    println!(
        "{:?} {model}: {} domains x {} users = {checked} checks ({nonempty} non-empty, {refused} refused), {} mismatches",
        fixture(),
        cases.iter().filter(|c| c.model == model).count(),
        users.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{:?}: {} differential mismatches:\n{}",
        fixture(),
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn data_differential_set_has_at_least_40_domains_in_both_syntaxes() {
    let all: Vec<Case> = cases::partner_cases()
        .into_iter()
        .chain(cases::product_cases())
        .collect();
    assert!(all.len() >= 40, "{} domains", all.len());
    let json = all.iter().filter(|c| c.domain.contains('"')).count();
    let python = all.iter().filter(|c| c.domain.contains('\'')).count();
    assert!(json >= 5 && python >= 30, "json {json}, python {python}");
    let ops = [
        "'='",
        "'!='",
        "'<'",
        "'>'",
        "'<='",
        "'>='",
        "'=?'",
        "'in'",
        "'not in'",
        "'like'",
        "'not like'",
        "'ilike'",
        "'not ilike'",
        "'=like'",
        "'=ilike'",
        "'child_of'",
        "'parent_of'",
        "'any'",
        "'not any'",
        "'&'",
        "'|'",
        "'!'",
    ];
    for op in ops {
        assert!(
            all.iter()
                .any(|c| c.domain.contains(op) || c.domain.contains(&op.replace('\'', "\""))),
            "no case uses {op}"
        );
    }
}

#[test]
fn data_differential_res_partner() {
    run_differential("res.partner", cases::partner_cases());
}

#[test]
fn data_differential_product_template() {
    run_differential("product.template", cases::product_cases());
}

// ------------------------------------------------------------------------------------------
// 2. Exact sets documented by the fixtures.

fn ids_of(db: &mut Client, uid: i32, model: &str) -> Outcome {
    search_ids(db, uid, model, "[]")
}

#[test]
fn data_documented_visibility_sets() {
    let mut db = connect();
    let users = test_users(&mut db);
    let uid = |l: &str| users.iter().find(|u| u.label == l).unwrap().uid;
    let (admin, demo, portal, jeff) = (uid("admin"), uid("demo"), uid("portal"), uid("jeff"));
    match fixture() {
        Fixture::Mini => {
            // tests/fixtures/README.md, "What each user sees when reading".
            let all21 = vec![
                1, 3, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26,
            ];
            let expect: Vec<(i32, &str, Outcome)> = vec![
                (admin, "res.partner", Ok(all21.clone())),
                (jeff, "res.partner", Ok(all21)),
                (
                    demo,
                    "res.partner",
                    Ok(vec![1, 3, 6, 7, 8, 9, 10, 11, 12, 13, 20, 21, 23, 26]),
                ),
                (portal, "res.partner", Ok(vec![7, 11, 12, 13])),
                (admin, "product.template", Ok(vec![1, 2, 3, 4, 5, 7, 8])),
                (jeff, "product.template", Ok(vec![1, 2, 3, 4, 5, 7, 8])),
                (demo, "product.template", Ok(vec![1, 2, 3, 7, 8])),
                (portal, "product.template", Err("42501".into())),
                (admin, "res.partner.category", Ok(vec![1, 2, 3])),
                (demo, "res.partner.category", Ok(vec![1, 2, 3])),
                (jeff, "res.partner.category", Ok(vec![1, 2, 3])),
                (portal, "res.partner.category", Err("42501".into())),
                (admin, "res.company", Ok(vec![1, 2])),
                (demo, "res.company", Ok(vec![1])),
                (jeff, "res.company", Ok(vec![2])),
                (portal, "res.company", Ok(vec![1])),
                (admin, "res.users", Ok(vec![2, 5, 6, 8])),
                (demo, "res.users", Ok(vec![2, 5, 6, 8])),
                (jeff, "res.users", Ok(vec![2, 5, 8])),
                (portal, "res.users", Ok(vec![6])),
            ];
            let mut bad = vec![];
            for (uid, model, want) in expect {
                let got = ids_of(&mut db, uid, model);
                if got != want {
                    bad.push(format!("uid {uid} {model}: expected {want:?}, got {got:?}"));
                }
            }
            // read() by id: archived records the rules allow are readable, hidden ones are NULL.
            for (uid, id, visible) in [
                (portal, 14, true),
                (portal, 16, false),
                (demo, 15, false),
                (jeff, 15, true),
            ] {
                let got: Option<Value> = db
                    .query_one(
                        "SELECT api_gateway.read($1, 'res.partner', $2, ARRAY['name'])",
                        &[&uid, &id],
                    )
                    .unwrap()
                    .get(0);
                if got.is_some() != visible {
                    bad.push(format!("read(uid {uid}, res.partner, {id}): expected visible={visible}, got {got:?}"));
                }
            }
            assert!(
                bad.is_empty(),
                "documented sets differ:\n{}",
                bad.join("\n")
            );
        }
        Fixture::Base => {
            // shared/reference/odoo19.md §4.5 worked example.
            assert_eq!(
                ids_of(&mut db, portal, "res.partner"),
                Ok(vec![7, 12, 29, 30, 31])
            );
            for (uid, n) in [(demo, 36), (jeff, 37), (admin, 53)] {
                assert_eq!(
                    search_count(&mut db, uid, "res.partner", "[]"),
                    Ok(n),
                    "uid {uid}"
                );
            }
            assert_eq!(
                ids_of(&mut db, portal, "product.template"),
                Err("42501".into())
            );
        }
        Fixture::Demo => {
            // No documented sets beyond the users; the differential set covers this database.
            assert_eq!(
                ids_of(&mut db, portal, "product.template"),
                Err("42501".into())
            );
            println!("demo: no documented visibility sets; see the differential tests");
        }
    }
}

// ------------------------------------------------------------------------------------------
// 3. Access rights and rules on create / write / unlink.

fn call_bool<C: GenericClient>(
    db: &mut C,
    f: &str,
    uid: i32,
    id: i32,
    vals: Option<&Value>,
) -> Result<bool, String> {
    match (f, vals) {
        ("write", Some(v)) => try_one(
            db,
            "SELECT api_gateway.write($1, 'res.partner', $2, $3)",
            &[&uid, &id, v],
        ),
        ("unlink", None) => try_one(
            db,
            "SELECT api_gateway.unlink($1, 'res.partner', $2)",
            &[&uid, &id],
        ),
        _ => unreachable!(),
    }
    .map(|r| r.get(0))
}

fn create<C: GenericClient>(db: &mut C, uid: i32, vals: &Value) -> Result<i32, String> {
    try_one(
        db,
        "SELECT api_gateway.create($1, 'res.partner', $2)",
        &[&uid, vals],
    )
    .map(|r| r.get(0))
}

fn read<C: GenericClient>(db: &mut C, uid: i32, id: i32) -> Option<Value> {
    db.query_one(
        "SELECT api_gateway.read($1, 'res.partner', $2, ARRAY['id','name','email','company_id'])",
        &[&uid, &id],
    )
    .unwrap()
    .get(0)
}

/// Partners whose name starts with "AGW ", as the partners these tests create: other tests
/// running alongside commit partners of their own, which a count of all would see.
fn partner_count<C: GenericClient>(db: &mut C) -> i64 {
    db.query_one(
        "SELECT count(*) FROM public.res_partner WHERE name::text LIKE 'AGW %'",
        &[],
    )
    .unwrap()
    .get(0)
}

fn add_rule<C: GenericClient>(db: &mut C, domain: &str, perms: [bool; 4]) {
    db.execute(
        "INSERT INTO public.ir_rule (name, model_id, domain_force, active, perm_read, perm_write, perm_create, perm_unlink, \"global\")
         SELECT 'agw test rule', m.id, $1, true, $2, $3, $4, $5, true FROM public.ir_model m WHERE m.model = 'res.partner'",
        &[&domain, &perms[0], &perms[1], &perms[2], &perms[3]],
    )
    .unwrap();
}

/// The users of the write tests: admin, portal, the non-admin internal user with full rights
/// on res.partner (jeff in the project fixtures, demo in the real database) and the one with
/// read-only rights.
struct Writers {
    admin: User,
    portal: User,
    writer: User,
    reader: User,
    /// Values for the fields the fixture's res.partner requires (ir_model_fields.required with
    /// a column, e.g. account's autopost_bills in the real database): a caller of the gateway
    /// must give them, since Odoo's Python defaults are not applied.
    required: serde_json::Map<String, Value>,
}

fn required_partner_vals(db: &mut Client) -> serde_json::Map<String, Value> {
    let rows = db
        .query(
            "SELECT f.name, f.ttype,
                    (SELECT s.value FROM public.ir_model_fields_selection s WHERE s.field_id = f.id ORDER BY s.sequence, s.id LIMIT 1)
               FROM public.ir_model_fields f
               JOIN information_schema.columns c ON c.table_schema = 'public' AND c.table_name = 'res_partner' AND c.column_name = f.name
              WHERE f.model = 'res.partner' AND f.required AND f.name NOT IN ('id', 'name') ORDER BY f.name",
            &[],
        )
        .unwrap();
    let mut m = serde_json::Map::new();
    for r in rows {
        let (name, ttype, first): (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        let v = match ttype.as_str() {
            "selection" => json!(first.expect("selection values")),
            "boolean" => json!(false),
            "integer" | "float" | "monetary" => json!(0),
            _ => json!("x"),
        };
        m.insert(name, v);
    }
    m
}

impl Writers {
    /// `extra` plus the required values.
    fn vals(&self, extra: Value) -> Value {
        let mut m = self.required.clone();
        for (k, v) in extra.as_object().unwrap() {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// Insert a partner directly (as the database owner), with the required columns filled.
fn insert_partner<C: GenericClient>(
    db: &mut C,
    w: &Writers,
    name: &str,
    company: i32,
    share: bool,
) -> i32 {
    let vals = w.vals(
        json!({"name": name, "type": "contact", "company_id": company, "active": true,
                              "partner_share": share, "is_company": false}),
    );
    let cols: Vec<String> = vals
        .as_object()
        .unwrap()
        .keys()
        .map(|k| format!("\"{k}\""))
        .collect();
    let cols = cols.join(", ");
    db.query_one(
        &format!(
            "INSERT INTO public.res_partner ({cols}) SELECT {cols} FROM jsonb_populate_record(NULL::public.res_partner, $1) RETURNING id"
        ),
        &[&vals],
    )
    .unwrap()
    .get(0)
}

fn writers(db: &mut Client) -> Writers {
    let users = test_users(db);
    let by = |l: &str| users.iter().find(|u| u.label == l).unwrap().clone();
    let full = |u: &User| {
        ["write", "create", "unlink"]
            .iter()
            .all(|op| u.can("res.partner", op))
    };
    let writer = [by("jeff"), by("demo")]
        .into_iter()
        .find(|u| full(u))
        .expect("a partner manager among demo and jeff");
    let reader = [by("demo"), by("jeff")]
        .into_iter()
        .find(|u| !u.can("res.partner", "write"))
        .expect("a read-only user among demo and jeff");
    println!(
        "{:?}: writer {} (uid {}, companies {:?}, parent_of {:?}), read-only {} (uid {})",
        fixture(),
        writer.label,
        writer.uid,
        writer.company_ids,
        writer.parents,
        reader.label,
        reader.uid
    );
    Writers {
        admin: by("admin"),
        portal: by("portal"),
        writer,
        reader,
        required: required_partner_vals(db),
    }
}

fn own_partner<C: GenericClient>(db: &mut C, uid: i32) -> i32 {
    db.query_one(
        "SELECT partner_id FROM public.res_users WHERE id = $1",
        &[&uid],
    )
    .unwrap()
    .get(0)
}

/// A company outside the writer's companies and their parents, made inside the transaction so
/// every fixture has one (a copy of the last company, without parent).
fn outside_company<C: GenericClient>(db: &mut C) -> i32 {
    db.query_one(
        "INSERT INTO public.res_company
         SELECT * FROM jsonb_populate_record(NULL::public.res_company,
             (SELECT to_jsonb(c) || jsonb_build_object('id', 990001, 'name', 'AGW Outside Co',
                                                       'parent_id', NULL, 'parent_path', '990001/')
                FROM public.res_company c ORDER BY c.id DESC LIMIT 1))
         RETURNING id",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn data_write_acl_refusals_and_check_access() {
    let mut db = connect();
    let w = writers(&mut db);
    let mut tx = db.transaction().unwrap();
    for (u, op, want) in [
        (&w.reader, "read", true),
        (&w.reader, "write", false),
        (&w.reader, "create", false),
        (&w.writer, "write", true),
        (&w.writer, "unlink", true),
        (&w.portal, "read", true),
        (&w.portal, "create", false),
        (&w.admin, "unlink", true),
    ] {
        let got: bool = tx
            .query_one(
                "SELECT api_gateway.check_access($1, 'res.partner', $2)",
                &[&u.uid, &op],
            )
            .unwrap()
            .get(0);
        assert_eq!(got, want, "check_access {} {op}", u.label);
    }
    // No write/create/unlink right: 42501 before anything else, even on a visible record.
    let own = own_partner(&mut tx, w.reader.uid);
    let v = json!({"comment": "agw"});
    for u in [&w.reader, &w.portal] {
        assert_eq!(
            call_bool(&mut tx, "write", u.uid, own, Some(&v)),
            Err("42501".into()),
            "{} write",
            u.label
        );
        assert_eq!(
            call_bool(&mut tx, "unlink", u.uid, own, None),
            Err("42501".into()),
            "{} unlink",
            u.label
        );
        assert_eq!(
            create(&mut tx, u.uid, &w.vals(json!({"name": "AGW nope"}))),
            Err("42501".into()),
            "{} create",
            u.label
        );
    }
    // Admin is not the superuser, but the global rule lets him write any visible partner.
    assert_eq!(
        call_bool(&mut tx, "write", w.admin.uid, own, Some(&v)),
        Ok(true)
    );
    tx.rollback().unwrap();
}

#[test]
fn data_write_create_write_unlink_in_own_company() {
    let mut db = connect();
    let w = writers(&mut db);
    let writer = &w.writer;
    let before = partner_count(&mut db);
    let mut tx = db.transaction().unwrap();
    let id = create(
        &mut tx,
        writer.uid,
        &w.vals(json!({"name": "AGW Diff Partner", "company_id": writer.company_id})),
    )
    .expect("create in the writer's company");
    let row = tx
        .query_one(
            "SELECT create_uid, write_uid, company_id FROM public.res_partner WHERE id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, Option<i32>>(0),
            row.get::<_, Option<i32>>(1),
            row.get::<_, Option<i32>>(2)
        ),
        (Some(writer.uid), Some(writer.uid), Some(writer.company_id))
    );
    assert_eq!(
        call_bool(
            &mut tx,
            "write",
            writer.uid,
            id,
            Some(&json!({"email": "agw@example.org"}))
        ),
        Ok(true)
    );
    assert_eq!(
        read(&mut tx, writer.uid, id).and_then(|r| r["email"].as_str().map(String::from)),
        Some("agw@example.org".into())
    );
    assert_eq!(call_bool(&mut tx, "unlink", writer.uid, id, None), Ok(true));
    assert_eq!(read(&mut tx, writer.uid, id), None, "deleted");
    let v = json!({"comment": "agw"});
    assert_eq!(
        call_bool(&mut tx, "write", writer.uid, id, Some(&v)),
        Ok(false),
        "write of a missing record"
    );
    assert_eq!(
        call_bool(&mut tx, "unlink", writer.uid, id, None),
        Ok(false),
        "unlink of a missing record"
    );
    // company_id = False passes the global rule's third branch.
    create(
        &mut tx,
        writer.uid,
        &w.vals(json!({"name": "AGW No Company", "company_id": false})),
    )
    .expect("create without company");
    tx.rollback().unwrap();
    assert_eq!(partner_count(&mut db), before, "rolled back");
}

#[test]
fn data_write_created_partner_is_found_by_search_like_in_odoo() {
    // Odoo's create applies the field defaults (res.partner.active defaults to True), so the new
    // partner is returned by search with the implicit active test.
    let mut db = connect();
    let w = writers(&mut db);
    let mut tx = db.transaction().unwrap();
    let id = create(
        &mut tx,
        w.writer.uid,
        &w.vals(json!({"name": "AGW Findable", "company_id": w.writer.company_id})),
    )
    .expect("create");
    let active: Option<bool> = tx
        .query_one(
            "SELECT active FROM public.res_partner WHERE id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    let found = search_count_tx(&mut tx, w.writer.uid, &format!("[('id','=',{id})]"));
    tx.rollback().unwrap();
    assert_eq!(
        (found, active),
        (Ok(1), Some(true)),
        "a partner created through the gateway must be active and found by search_count"
    );
}

#[test]
fn data_write_create_outside_the_create_rules_is_refused() {
    let mut db = connect();
    let w = writers(&mut db);
    let writer = &w.writer;
    let mut tx = db.transaction().unwrap();
    let other = outside_company(&mut tx);
    let mut outside = vec![other];
    outside.extend(
        tx.query(
            "SELECT id FROM public.res_company WHERE id <> ALL($1) AND id <> $2 ORDER BY id",
            &[&writer.parents, &other],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i32>(0)),
    );
    let mut bad = vec![];
    for company in &outside {
        // Odoo computes partner_share = True for a new partner without users, so the global
        // create rule needs company_id parent_of company_ids or company_id = False: it fails,
        // AccessError, and the insert is rolled back.
        let n = partner_count(&mut tx);
        let got = create(
            &mut tx,
            writer.uid,
            &w.vals(json!({"name": "AGW Outside", "company_id": company})),
        );
        let left = partner_count(&mut tx) - n;
        if got != Err("42501".into()) || left != 0 {
            bad.push(format!(
                "{} creating a partner of company {company} (outside parent_of {:?}): expected 42501 and no row, got {got:?} and {left} new row(s)",
                writer.label, writer.parents
            ));
        }
    }
    // The same partner with company_id False is allowed.
    let ok = create(
        &mut tx,
        writer.uid,
        &w.vals(json!({"name": "AGW Shared", "company_id": false})),
    );
    tx.rollback().unwrap();
    assert!(ok.is_ok(), "{ok:?}");
    assert!(bad.is_empty(), "{:?}:\n{}", fixture(), bad.join("\n"));
}

#[test]
fn data_write_invisible_records_are_not_found() {
    // A partner hidden by the global rule (a share partner of a company nobody is in): write and
    // unlink answer false ("not found or not visible") and change nothing; read gives NULL, even
    // for admin (not a member of that company).
    let mut db = connect();
    let w = writers(&mut db);
    let mut tx = db.transaction().unwrap();
    let other = outside_company(&mut tx);
    let hidden = insert_partner(&mut tx, &w, "AGW Hidden", other, true);
    let v = json!({"comment": "agw"});
    assert_eq!(
        call_bool(&mut tx, "write", w.writer.uid, hidden, Some(&v)),
        Ok(false)
    );
    assert_eq!(
        call_bool(&mut tx, "unlink", w.writer.uid, hidden, None),
        Ok(false)
    );
    assert_eq!(read(&mut tx, w.writer.uid, hidden), None);
    assert_eq!(read(&mut tx, w.admin.uid, hidden), None);
    assert_eq!(
        search_count_tx(&mut tx, w.admin.uid, &format!("[('id','=',{hidden})]")),
        Ok(0)
    );
    let row = tx
        .query_one(
            "SELECT comment FROM public.res_partner WHERE id = $1",
            &[&hidden],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0),
        None,
        "the hidden partner is untouched"
    );
    // The same partner with partner_share = false (an internal user's partner) is visible to all.
    tx.execute(
        "UPDATE public.res_partner SET partner_share = false WHERE id = $1",
        &[&hidden],
    )
    .unwrap();
    assert!(read(&mut tx, w.admin.uid, hidden).is_some());
    assert_eq!(
        call_bool(&mut tx, "write", w.writer.uid, hidden, Some(&v)),
        Ok(true)
    );
    tx.rollback().unwrap();
}

#[test]
fn data_write_unlink_create_rules_refuse_visible_records() {
    // Write-only, unlink-only and create-only global rules: a visible record failing them is
    // refused with 42501 (check before write/unlink, after insert for create); reading is not
    // affected (perm_read false).
    let mut db = connect();
    let w = writers(&mut db);
    let writer = &w.writer;
    let mut tx = db.transaction().unwrap();
    let v = json!({"comment": "agw"});
    let mine = w.vals(json!({"name": "AGW P", "company_id": writer.company_id}));
    let p2 = insert_partner(&mut tx, &w, "AGW P2", writer.company_id, true);
    let p3 = insert_partner(&mut tx, &w, "AGW P3", writer.company_id, true);
    add_rule(
        &mut tx,
        &format!("[('id', '!=', {p2})]"),
        [false, true, false, false],
    );
    add_rule(
        &mut tx,
        &format!("[('id', '!=', {p3})]"),
        [false, false, false, true],
    );
    assert_eq!(
        call_bool(&mut tx, "write", writer.uid, p2, Some(&v)),
        Err("42501".into()),
        "write rule"
    );
    assert_eq!(
        call_bool(&mut tx, "write", writer.uid, p3, Some(&v)),
        Ok(true)
    );
    assert_eq!(
        search_count_tx(&mut tx, writer.uid, &format!("[('id','in',[{p2},{p3}])]")),
        Ok(2),
        "perm_read false: reads unaffected"
    );
    assert_eq!(
        call_bool(&mut tx, "unlink", writer.uid, p3, None),
        Err("42501".into()),
        "unlink rule"
    );
    assert_eq!(call_bool(&mut tx, "unlink", writer.uid, p2, None), Ok(true));
    add_rule(
        &mut tx,
        "[('name', '!=', 'AGW Forbidden')]",
        [false, false, true, false],
    );
    let n = partner_count(&mut tx);
    assert_eq!(
        create(
            &mut tx,
            writer.uid,
            &w.vals(json!({"name": "AGW Forbidden", "company_id": writer.company_id}))
        ),
        Err("42501".into()),
        "create rule"
    );
    assert_eq!(partner_count(&mut tx), n, "the refused create left no row");
    create(&mut tx, writer.uid, &mine).expect("create passing the create rule");
    tx.rollback().unwrap();
}

fn search_count_tx<C: GenericClient>(db: &mut C, uid: i32, domain: &str) -> Result<i64, String> {
    try_one(
        db,
        "SELECT api_gateway.search_count($1, 'res.partner', $2)",
        &[&uid, &domain],
    )
    .map(|r| r.get(0))
}

// ------------------------------------------------------------------------------------------
// 4. Injection attempts.

fn snapshot(db: &mut Client) -> (i64, i64, String, bool, bool) {
    let r = db
        .query_one(
            "SELECT (SELECT count(*) FROM public.res_partner),
                    (SELECT count(*) FROM public.product_template),
                    (SELECT md5(string_agg(id || ':' || coalesce(name, '') || ':' || coalesce(email, '') || ':' || coalesce(comment, ''), ',' ORDER BY id)) FROM public.res_partner),
                    to_regclass('public.res_partner') IS NOT NULL,
                    to_regclass('public.product_template') IS NOT NULL",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

#[test]
fn data_injection_attempts_are_refused_and_change_nothing() {
    let mut db = connect();
    let admin = load_user(&mut db, "admin");
    let w = writers(&mut db);
    let before = snapshot(&mut db);
    let uid = admin.uid;
    let mut bad = vec![];
    let mut check =
        |db: &mut Client, what: &str, res: Result<postgres::Row, String>, allowed: &[&str]| {
            let code = match &res {
                Ok(_) => "ok".to_string(),
                Err(c) => c.clone(),
            };
            if !allowed.contains(&code.as_str()) {
                bad.push(format!("{what}: got {code}, expected one of {allowed:?}"));
            }
            assert!(!db.is_closed(), "{what} closed the connection");
        };
    let sr = "SELECT api_gateway.search_read($1, $2, $3, $4, 10, 0, $5)";
    // An explicit field list, so that this test does not depend on every stored field of the
    // real database being readable (see data_search_read_with_all_fields_works).
    let none: Option<Vec<String>> = Some(vec!["id".into(), "name".into(), "email".into()]);
    let no_order: Option<&str> = None;
    // Values are parameters: harmless, and they match nothing.
    for domain in [
        r#"[("name","=","x'); DROP TABLE res_partner; --")]"#,
        r#"[["name","=","x'); DROP TABLE res_partner; --"]]"#,
        r#"[("name","ilike","' OR 1=1 --")]"#,
        r#"[("email","in",["a'); DELETE FROM res_partner; --", "$$; DROP TABLE res_partner; $$"])]"#,
        r#"[("parent_id.name","=","x\"; DROP TABLE res_partner; --")]"#,
    ] {
        let res = try_one(
            &mut db,
            sr,
            &[&uid, &"res.partner", &domain, &none, &no_order],
        );
        if let Ok(r) = &res {
            assert_eq!(r.get::<_, Value>(0), json!([]), "{domain} matches nothing");
        }
        check(&mut db, domain, res, &["ok"]);
    }
    // Field names, operators and code are checked, never spliced.
    for domain in [
        r#"[("name; DROP TABLE res_partner","=","x")]"#,
        r#"[("name\" OR 1=1 --","=","x")]"#,
        r#"[("parent_id.name) OR (1=1","=","x")]"#,
        r#"[("id","= 1 OR 1=1 --","x")]"#,
        r#"[("name","=",__import__('os').system('id'))]"#,
        r#"[("name","in",(SELECT 1))]"#,
        "[('name','=','x')] + [('id','>',0)]; DROP TABLE res_partner",
    ] {
        let res = try_one(
            &mut db,
            sr,
            &[&uid, &"res.partner", &domain, &none, &no_order],
        );
        check(&mut db, domain, res, &["22023"]);
    }
    // Field lists.
    for fields in [
        vec!["name; DROP TABLE res_partner".to_string()],
        vec!["id\" FROM res_partner; --".to_string()],
        vec!["(SELECT password FROM res_users LIMIT 1)".to_string()],
    ] {
        let f = Some(fields.clone());
        let res = try_one(&mut db, sr, &[&uid, &"res.partner", &"[]", &f, &no_order]);
        check(&mut db, &format!("fields {fields:?}"), res, &["22023"]);
        let res = try_one(
            &mut db,
            "SELECT api_gateway.read($1, 'res.partner', 1, $2)",
            &[&uid, &fields],
        );
        check(&mut db, &format!("read fields {fields:?}"), res, &["22023"]);
    }
    // Order strings.
    for order in [
        "id; DELETE FROM res_partner",
        "(SELECT 1)",
        "name desc; DROP TABLE res_partner",
        "id asc, (SELECT pg_sleep(1))",
        "name desc nulls first --",
        "1",
        "id desc, \"name\" ; --",
    ] {
        let o = Some(order);
        let res = try_one(&mut db, sr, &[&uid, &"res.partner", &"[]", &none, &o]);
        check(&mut db, &format!("order {order}"), res, &["22023"]);
    }
    // A valid order still works.
    let o = Some("name desc, id");
    let res = try_one(&mut db, sr, &[&uid, &"res.partner", &"[]", &none, &o]);
    check(&mut db, "order name desc, id", res, &["ok"]);
    // Model names.
    for model in [
        "res_partner; DROP TABLE res_partner",
        "res.partner\"",
        "res.partner' OR '1'='1",
        "public.res_partner",
        "res_partner",
        "res.partner; --",
        "",
    ] {
        let res = try_one(&mut db, sr, &[&uid, &model, &"[]", &none, &no_order]);
        check(
            &mut db,
            &format!("model {model:?}"),
            res,
            &["42P01", "22023"],
        );
        let res = try_one(
            &mut db,
            "SELECT api_gateway.search_count($1, $2)",
            &[&uid, &model],
        );
        check(
            &mut db,
            &format!("search_count model {model:?}"),
            res,
            &["42P01", "22023"],
        );
    }
    // Writes: keys are checked; values are data (inside a rolled-back transaction).
    {
        let mut tx = db.transaction().unwrap();
        for vals in [
            json!({"name\" = 'x', \"active": false}),
            json!({"name; DROP TABLE res_partner; --": "x"}),
            json!({"id": 1}),
        ] {
            let r = try_one(
                &mut tx,
                "SELECT api_gateway.write($1, 'res.partner', (SELECT partner_id FROM res_users WHERE id = $1), $2)",
                &[&w.writer.uid, &vals],
            );
            assert_eq!(r.err(), Some("22023".to_string()), "write keys {vals}");
        }
        let evil = "Robert'); DROP TABLE res_partner; --";
        {
            let id: i32 = tx
                .query_one(
                    "SELECT api_gateway.create($1, 'res.partner', $2)",
                    &[
                        &w.writer.uid,
                        &w.vals(json!({"name": evil, "company_id": false})),
                    ],
                )
                .unwrap()
                .get(0);
            let name: String = tx
                .query_one("SELECT name FROM public.res_partner WHERE id = $1", &[&id])
                .unwrap()
                .get(0);
            assert_eq!(name, evil, "stored verbatim");
        }
        tx.rollback().unwrap();
    }
    let after = snapshot(&mut db);
    assert_eq!(before, after, "the database is unchanged");
    assert!(after.3 && after.4, "tables still exist");
    assert!(bad.is_empty(), "{:?}:\n{}", fixture(), bad.join("\n"));
}

// ------------------------------------------------------------------------------------------
// 5. Bad input.

#[test]
fn data_bad_input_is_22023_or_22004_naming_the_problem() {
    let mut db = connect();
    let uid = load_user(&mut db, "admin").uid;
    let count = "SELECT api_gateway.search_count($1, 'res.partner', $2)";
    let expect_msg = |db: &mut Client, domain: &str, code: &str, needle: &str| match try_msg(
        db,
        count,
        &[&uid, &domain],
    ) {
        Err((c, m)) => {
            assert_eq!(c, code, "{domain}: {m}");
            assert!(
                m.to_lowercase().contains(&needle.to_lowercase()),
                "{domain}: message {m:?} should name {needle:?}"
            );
        }
        Ok(_) => panic!("{domain} was accepted"),
    };
    expect_msg(
        &mut db,
        "[('nonexistent_field','=',1)]",
        "22023",
        "nonexistent_field",
    );
    expect_msg(
        &mut db,
        r#"[["parent_id.no_such_field","=",1]]"#,
        "22023",
        "no_such_field",
    );
    expect_msg(&mut db, "[('name','~','x')]", "22023", "~");
    expect_msg(&mut db, "[('name','between','x')]", "22023", "between");
    expect_msg(&mut db, "[('name','any!',[])]", "22023", "any!");
    for malformed in [
        "[('name','=')]",
        "['|', ('name','=','x')]",
        "['&']",
        "['!']",
        "[",
        "not a domain",
        "[1]",
        r#"{"name": "x"}"#,
        r#"[["name","=","x"]"#,
        "[('name','=',x)]",
        "[('name','=','x') ('id','=',1)]",
        "[(1,'=',2)]",
        "[('name','=','x'), 42]",
        "",
        "[('is_company','any',[])]",
    ] {
        let res = try_msg(&mut db, count, &[&uid, &malformed]);
        assert_eq!(
            res.as_ref().err().map(|e| e.0.as_str()),
            Some("22023"),
            "malformed {malformed:?}: {:?}",
            res.as_ref().err()
        );
    }
    // A trailing comma is valid Python.
    assert!(try_one(&mut db, count, &[&uid, &"[('name','=','x'),]"]).is_ok());
    // Limits and offsets.
    for (limit, offset) in [(-1, 0), (10, -5)] {
        let res = try_one(
            &mut db,
            "SELECT api_gateway.search_read($1, 'res.partner', '[]', NULL, $2, $3)",
            &[&uid, &limit, &offset],
        );
        assert_eq!(
            res.err(),
            Some("22023".into()),
            "limit {limit} offset {offset}"
        );
    }
    // A long OR of 300 leaves, as UIs generate, is fine.
    let n = 300;
    let long_or = format!(
        "[{}{}]",
        "'|',".repeat(n - 1),
        (1..=n)
            .map(|i| format!("('id','=',{i})"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let got: i64 = try_one(&mut db, count, &[&uid, &long_or])
        .expect("300-way OR")
        .get(0);
    let want = search_count(
        &mut db,
        uid,
        "res.partner",
        &format!(
            "[('id','in',[{}])]",
            (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        ),
    )
    .unwrap();
    assert_eq!(got, want, "300-way OR equals in [...]");
    // A 1 MB domain: refused as bad input (the documented size cap) or answered correctly.
    let leaf = "('name','!=','x'),";
    let huge = format!("[{}('id','>',0)]", leaf.repeat((1 << 20) / leaf.len()));
    assert!(huge.len() >= 1 << 20);
    match try_one(&mut db, count, &[&uid, &huge]) {
        Err(c) => assert_eq!(c, "22023", "1 MB domain"),
        Ok(r) => assert_eq!(
            r.get::<_, i64>(0),
            search_count(&mut db, uid, "res.partner", "[]").unwrap()
        ),
    }
    assert!(!db.is_closed());
    // NULL uid / model: 22004.
    for sql in [
        "SELECT api_gateway.search_read(NULL, 'res.partner')",
        "SELECT api_gateway.search_read(2, NULL)",
        "SELECT api_gateway.search_count(NULL, 'res.partner')",
        "SELECT api_gateway.search_count(2, NULL)",
        "SELECT api_gateway.read(NULL, 'res.partner', 1)",
        "SELECT api_gateway.create(NULL, 'res.partner', '{}')",
        "SELECT api_gateway.write(2, NULL, 1, '{}')",
        "SELECT api_gateway.unlink(NULL, 'res.partner', 1)",
        "SELECT api_gateway.check_access(2, NULL, 'read')",
    ] {
        assert_eq!(
            try_one(&mut db, sql, &[]).err(),
            Some("22004".into()),
            "{sql}"
        );
    }
    // Unknown model, unknown operation, unknown user.
    assert_eq!(
        try_one(
            &mut db,
            "SELECT api_gateway.search_count(2, 'no.such.model')",
            &[]
        )
        .err(),
        Some("42P01".into())
    );
    assert_eq!(
        try_one(
            &mut db,
            "SELECT api_gateway.check_access(2, 'res.partner', 'drop')",
            &[]
        )
        .err(),
        Some("22023".into())
    );
    assert_eq!(
        try_one(
            &mut db,
            "SELECT api_gateway.search_count(424242, 'res.partner')",
            &[]
        )
        .err(),
        Some("42501".into())
    );
    // Unknown field in the field list and in write values names the field.
    match try_msg(
        &mut db,
        "SELECT api_gateway.search_read(2, 'res.partner', '[]', ARRAY['no_such_column'])",
        &[],
    ) {
        Err((c, m)) => {
            assert_eq!(c, "22023");
            assert!(m.contains("no_such_column"), "{m}");
        }
        Ok(_) => panic!("unknown field accepted"),
    }
}

// ------------------------------------------------------------------------------------------
// Values: every stored field readable (fields NULL), and one2many through a many2one_reference.

#[test]
fn data_search_read_with_all_fields_works() {
    // fields NULL means "all stored, readable fields" (issue 4, Values): it must work for every
    // user with the read right, on every fixture, including the real database whose res.partner
    // has company-dependent many2one columns (jsonb) and whose product.template has one2many
    // fields to _inherits models and to many2one_reference inverses.
    let mut db = connect();
    let users = test_users(&mut db);
    let mut bad = vec![];
    for model in ["res.partner", "product.template"] {
        for u in &users {
            let res = try_msg(
                &mut db,
                "SELECT jsonb_array_length(api_gateway.search_read($1, $2, '[]', NULL, 5))",
                &[&u.uid, &model],
            );
            match res {
                Ok(_) => {}
                Err((c, _)) if c == "42501" && !u.can(model, "read") => {}
                Err((c, m)) => bad.push(format!("{model} as {}: {c} {m}", u.label)),
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{:?}: search_read with all fields fails:\n{}",
        fixture(),
        bad.join("\n")
    );
}

#[test]
fn data_one2many_to_a_many2one_reference_keeps_the_model() {
    // message_ids = One2many('mail.message', 'res_id'): the inverse is a many2one_reference, so
    // Odoo adds ('model', '=', 'res.partner') (One2many._additional_domain). A partner's
    // message_ids may only hold messages of res.partner with that res_id, in read values and
    // in domains.
    let mut db = connect();
    let has: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM public.ir_model_fields WHERE model = 'res.partner' AND name = 'message_ids')
                AND to_regclass('public.mail_message') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    if !has {
        println!("{:?}: no res.partner.message_ids here", fixture());
        return;
    }
    let admin = load_user(&mut db, "admin");
    let rows: Value = db
        .query_one(
            "SELECT api_gateway.search_read($1, 'res.partner', '[]', ARRAY['message_ids'], 1000)",
            &[&admin.uid],
        )
        .unwrap()
        .get(0);
    let mut bad = vec![];
    for r in rows.as_array().unwrap() {
        let id = r["id"].as_i64().unwrap() as i32;
        let ids: Vec<i32> = r["message_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap() as i32)
            .collect();
        let foreign: Vec<String> = db
            .query(
                "SELECT id || ':' || coalesce(model, '?') FROM public.mail_message
                  WHERE id = ANY($1) AND (model IS DISTINCT FROM 'res.partner' OR res_id <> $2) ORDER BY id",
                &[&ids, &id],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !foreign.is_empty() {
            bad.push(format!(
                "partner {id}: message_ids holds messages of other documents {foreign:?}"
            ));
        }
    }
    let got = search_ids(
        &mut db,
        admin.uid,
        "res.partner",
        "[('message_ids','!=',False)]",
    )
    .unwrap();
    let possible: Vec<i32> = db
        .query_one(
            "SELECT coalesce(array_agg(DISTINCT res_id), '{}') FROM public.mail_message WHERE model = 'res.partner'",
            &[],
        )
        .unwrap()
        .get(0);
    let wrong: Vec<i32> = got
        .iter()
        .copied()
        .filter(|i| !possible.contains(i))
        .collect();
    if !wrong.is_empty() {
        bad.push(format!(
            "[('message_ids','!=',False)] returns partners without any res.partner message: {wrong:?}"
        ));
    }
    assert!(bad.is_empty(), "{:?}:\n{}", fixture(), bad.join("\n"));
}

// ------------------------------------------------------------------------------------------
// 6. The real Odoo database: every model served or refused with a clear SQLSTATE.

#[test]
fn demo_every_model_of_the_real_database_is_served_or_refused_cleanly() {
    demo_only();
    let mut db = connect();
    db.execute("SET statement_timeout = '60s'", &[]).unwrap();
    let models: Vec<String> = db
        .query("SELECT model FROM public.ir_model ORDER BY model", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut admin_outcome: BTreeMap<String, String> = BTreeMap::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut unclear = vec![];
    for m in &models {
        let code = match try_msg(&mut db, "SELECT api_gateway.search_count(2, $1)", &[m]) {
            Ok(_) => "servable".to_string(),
            Err((c, msg)) => {
                if !["42501", "42P01", "22023"].contains(&c.as_str()) {
                    unclear.push(format!("admin {m}: {c} {msg}"));
                }
                c
            }
        };
        if db.is_closed() {
            unclear.push(format!("admin {m}: connection lost"));
            db = connect();
        }
        *tally.entry(code.clone()).or_default() += 1;
        admin_outcome.insert(m.clone(), code);
    }
    println!(
        "demo database: {} models with an ir_model row; admin search_count: {:?}",
        models.len(),
        tally
    );
    // Models with record rules: the rules either compile or the model fails closed (42501).
    let ruled: Vec<String> = db
        .query(
            "SELECT DISTINCT m.model FROM public.ir_rule r JOIN public.ir_model m ON m.id = r.model_id ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let users = test_users(&mut db);
    for u in &users {
        let mut t: BTreeMap<String, usize> = BTreeMap::new();
        for m in &ruled {
            let code = match try_msg(
                &mut db,
                "SELECT api_gateway.search_count($1, $2)",
                &[&u.uid, m],
            ) {
                Ok(_) => "servable".to_string(),
                Err((c, msg)) => {
                    let same_as_admin =
                        admin_outcome.get(m).map(String::as_str) == Some(c.as_str());
                    if c != "42501" && !same_as_admin {
                        unclear.push(format!("{} {m}: {c} {msg}", u.label));
                    }
                    c
                }
            };
            if db.is_closed() {
                unclear.push(format!("{} {m}: connection lost", u.label));
                db = connect();
            }
            *t.entry(code).or_default() += 1;
        }
        println!(
            "demo database: {} models with record rules; {} (uid {}) search_count: {:?}",
            ruled.len(),
            u.label,
            u.uid,
            t
        );
    }
    assert!(
        unclear.is_empty(),
        "unclear outcomes (must be servable, 42501, 42P01 or 22023):\n{}",
        unclear.join("\n")
    );
}

/// Numbers beyond what a column holds are a clean range error, never an internal error.
#[test]
fn out_of_range_numbers_are_refused_cleanly() {
    let mut db = api_gateway_tests::connect();
    let id: i32 = db
        .query_one("SELECT min(id) FROM res_partner WHERE active", &[])
        .unwrap()
        .get(0);
    for vals in [
        r#"{"color": 1.7976931348623157e308}"#,
        r#"{"color": 99999999999999999999}"#,
    ] {
        let mut tx = db.transaction().unwrap();
        let err = tx
            .query_one(
                "SELECT api_gateway.write(2, 'res.partner', $1, $2::text::jsonb)",
                &[&id, &vals],
            )
            .unwrap_err();
        assert_eq!(
            api_gateway_tests::sqlstate(&err),
            "22003",
            "{vals}: {err:?}"
        );
        tx.rollback().unwrap();
    }
}
