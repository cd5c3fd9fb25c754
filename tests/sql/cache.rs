//! Issue 14: the data functions cache per backend what Odoo's security and metadata tables say,
//! and check one thing per call (a transaction noted by the triggers on those tables that
//! committed after the cache was read). Each test changes one table in another session and
//! commits: the very next call of the cached session must see it. A change rolled back, in
//! another session or in the caller's own transaction, must never be seen.
//!
//! Every test works on a model, groups, access rights and rules of its own (a scratch table
//! registered in ir_model/ir_model_fields by copying rows of res.partner), so the fixture's own
//! data and the other tests running alongside are untouched; the scratch objects are removed at
//! the end.
use api_gateway_tests::{connect, connect_to, scratch_db, sqlstate};
use postgres::{Client, GenericClient};

/// A row of `table` copied from the one matching `from` (every column but id), with `set`
/// overriding some columns by SQL expressions; returns the new id. Works on every fixture,
/// whatever columns it gives these tables.
fn copy_row<C: GenericClient>(db: &mut C, table: &str, from: &str, set: &[(&str, String)]) -> i32 {
    let cols: Vec<String> = db
        .query(
            "SELECT column_name::text FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name = $1 AND column_name <> 'id'
              ORDER BY ordinal_position",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let values: Vec<String> = cols
        .iter()
        .map(|c| {
            set.iter()
                .find(|(k, _)| k == c)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| format!("s.\"{c}\""))
        })
        .collect();
    let names: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let sql = format!(
        "INSERT INTO public.{table} ({}) SELECT {} FROM public.{table} s WHERE {from} LIMIT 1 RETURNING id",
        names.join(", "),
        values.join(", ")
    );
    db.query_one(&sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// A model of the test's own, with three records, and a group of its own.
struct Scratch {
    tag: String,
    model: String,
    table: String,
    model_id: i32,
    /// A group nobody is in; access rights and rules of the tests name it.
    group: i32,
    demo: i32,
    ids: Vec<i32>,
}

impl Scratch {
    fn new(db: &mut Client, name: &str) -> Scratch {
        let tag = format!("{name}{}", std::process::id());
        let model = format!("x_agw.{tag}");
        let table = format!("x_agw_{tag}");
        let demo: i32 = db
            .query_one("SELECT id FROM public.res_users WHERE login = 'demo'", &[])
            .unwrap()
            .get(0);
        let mut tx = db.transaction().unwrap();
        tx.batch_execute(&format!(
            "CREATE TABLE public.{table} (id serial PRIMARY KEY, name varchar, active boolean DEFAULT true);
             INSERT INTO public.{table} (name) VALUES ('one'), ('two'), ('three');"
        ))
        .unwrap();
        let model_id = copy_row(
            &mut tx,
            "ir_model",
            "s.model = 'res.partner'",
            &[
                ("model", format!("'{model}'")),
                ("name", format!("'{{\"en_US\": \"{model}\"}}'::jsonb")),
                ("order", "'id'".into()),
            ],
        );
        for field in ["id", "name"] {
            copy_row(
                &mut tx,
                "ir_model_fields",
                &format!("s.model = 'res.partner' AND s.name = '{field}'"),
                &[
                    ("model", format!("'{model}'")),
                    ("model_id", model_id.to_string()),
                ],
            );
        }
        let group = new_group(&mut tx, &tag, "a");
        tx.commit().unwrap();
        let ids = db
            .query(&format!("SELECT id FROM public.{table} ORDER BY id"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        Scratch {
            tag,
            model,
            table,
            model_id,
            group,
            demo,
            ids,
        }
    }

    /// An access right on the model for `group`, reading as `read` says.
    fn access<C: GenericClient>(&self, db: &mut C, group: i32, read: bool) -> i32 {
        copy_row(
            db,
            "ir_model_access",
            "true",
            &[
                ("name", format!("'{} access'", self.tag)),
                ("model_id", self.model_id.to_string()),
                ("group_id", group.to_string()),
                ("perm_read", read.to_string()),
                ("active", "true".into()),
            ],
        )
    }

    /// A record rule on the model for reading, global unless groups are given.
    fn rule<C: GenericClient>(&self, db: &mut C, domain: &str, groups: &[i32]) -> i32 {
        let id = copy_row(
            db,
            "ir_rule",
            "true",
            &[
                ("name", format!("'{} rule'", self.tag)),
                ("model_id", self.model_id.to_string()),
                ("domain_force", format!("'{domain}'")),
                ("perm_read", "true".into()),
                ("active", "true".into()),
            ],
        );
        for g in groups {
            db.execute(
                "INSERT INTO public.rule_group_rel (rule_group_id, group_id) VALUES ($1, $2)",
                &[&id, g],
            )
            .unwrap();
        }
        id
    }

    /// The records the demo user sees: the count, or the SQLSTATE. Asked through search_read
    /// (which runs on the cache without a probe, its statement re-checking it) and then
    /// search_count (probe first); both must agree.
    fn count<C: GenericClient>(&self, db: &mut C) -> Result<i64, String> {
        let read = db
            .query_one(
                "SELECT jsonb_array_length(api_gateway.search_read($1, $2, '[]', '{name}'))::int8",
                &[&self.demo, &self.model],
            )
            .map(|r| r.get::<_, i64>(0))
            .map_err(|e| sqlstate(&e));
        let count = db
            .query_one(
                "SELECT api_gateway.search_count($1, $2, '[]')",
                &[&self.demo, &self.model],
            )
            .map(|r| r.get(0))
            .map_err(|e| sqlstate(&e));
        assert_eq!(read, count, "search_read and search_count agree");
        count
    }

    fn cleanup(self, db: &mut Client) {
        db.batch_execute(&format!(
            "DELETE FROM public.rule_group_rel WHERE rule_group_id IN (SELECT id FROM public.ir_rule WHERE model_id = {m});
             DELETE FROM public.ir_rule WHERE model_id = {m};
             DELETE FROM public.ir_model_access WHERE model_id = {m};
             DELETE FROM public.ir_model_fields WHERE model_id = {m};
             DELETE FROM public.ir_model WHERE id = {m};
             DELETE FROM public.res_groups_users_rel WHERE gid IN (SELECT id FROM public.res_groups WHERE name->>'en_US' LIKE 'agw {t} %');
             DELETE FROM public.res_groups_implied_rel WHERE gid IN (SELECT id FROM public.res_groups WHERE name->>'en_US' LIKE 'agw {t} %');
             DELETE FROM public.res_groups WHERE name->>'en_US' LIKE 'agw {t} %';
             DROP TABLE public.{table};",
            m = self.model_id,
            t = self.tag,
            table = self.table
        ))
        .unwrap();
    }
}

fn new_group<C: GenericClient>(db: &mut C, tag: &str, suffix: &str) -> i32 {
    copy_row(
        db,
        "res_groups",
        "true",
        &[(
            "name",
            format!("'{{\"en_US\": \"agw {tag} {suffix}\"}}'::jsonb"),
        )],
    )
}

/// Call twice, so that the second answer comes from the cache.
fn warm(s: &Scratch, db: &mut Client, expected: Result<i64, String>, what: &str) {
    for _ in 0..2 {
        assert_eq!(s.count(db), expected, "{what}");
    }
}

#[test]
fn cache_triggers_are_on_every_odoo_security_table() {
    let mut db = connect();
    let missing: Vec<String> = db
        .query(
            "SELECT t FROM unnest(api_gateway._security_tables()) t
              WHERE to_regclass('public.' || t) IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM pg_trigger g
                                 WHERE g.tgrelid = to_regclass('public.' || t)
                                   AND g.tgname = 'api_gateway_security_change'
                                   AND g.tgfoid = 'api_gateway._note_odoo_security_change()'::regprocedure)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(missing.is_empty(), "no cache trigger on {missing:?}");
    let present: i64 = db
        .query_one(
            "SELECT count(*) FROM unnest(api_gateway._security_tables()) t WHERE to_regclass('public.' || t) IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(present >= 10, "the fixture has Odoo's security tables");
}

#[test]
fn cache_sees_a_committed_group_membership_on_the_next_call() {
    let mut db = connect();
    let mut other = connect();
    let s = Scratch::new(&mut other, "members");
    s.access(&mut other, s.group, true);
    warm(&s, &mut db, Err("42501".into()), "demo is not in the group");
    other
        .execute(
            "INSERT INTO public.res_groups_users_rel (gid, uid) VALUES ($1, $2)",
            &[&s.group, &s.demo],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Ok(3), "added to the group");
    assert_eq!(s.count(&mut db), Ok(3));
    other
        .execute(
            "DELETE FROM public.res_groups_users_rel WHERE gid = $1 AND uid = $2",
            &[&s.group, &s.demo],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Err("42501".into()), "removed from it");
    s.cleanup(&mut other);
}

#[test]
fn cache_sees_a_committed_implied_group_on_the_next_call() {
    let mut db = connect();
    let mut other = connect();
    let s = Scratch::new(&mut other, "implied");
    s.access(&mut other, s.group, true);
    let outer = new_group(&mut other, &s.tag, "b");
    other
        .execute(
            "INSERT INTO public.res_groups_users_rel (gid, uid) VALUES ($1, $2)",
            &[&outer, &s.demo],
        )
        .unwrap();
    warm(
        &s,
        &mut db,
        Err("42501".into()),
        "the outer group grants nothing",
    );
    other
        .execute(
            "INSERT INTO public.res_groups_implied_rel (gid, hid) VALUES ($1, $2)",
            &[&outer, &s.group],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Ok(3), "the outer group now implies it");
    s.cleanup(&mut other);
}

#[test]
fn cache_sees_a_committed_access_right_on_the_next_call() {
    let mut db = connect();
    let mut other = connect();
    let s = Scratch::new(&mut other, "acl");
    let acl = s.access(&mut other, s.group, false);
    other
        .execute(
            "INSERT INTO public.res_groups_users_rel (gid, uid) VALUES ($1, $2)",
            &[&s.group, &s.demo],
        )
        .unwrap();
    warm(&s, &mut db, Err("42501".into()), "no read right");
    other
        .execute(
            "UPDATE public.ir_model_access SET perm_read = true WHERE id = $1",
            &[&acl],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Ok(3), "read granted");
    assert_eq!(s.count(&mut db), Ok(3));
    other
        .execute(
            "UPDATE public.ir_model_access SET perm_read = false WHERE id = $1",
            &[&acl],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Err("42501".into()), "read withdrawn");
    s.cleanup(&mut other);
}

#[test]
fn cache_sees_a_committed_record_rule_on_the_next_call() {
    let mut db = connect();
    let mut other = connect();
    let s = Scratch::new(&mut other, "rule");
    s.access(&mut other, s.group, true);
    other
        .execute(
            "INSERT INTO public.res_groups_users_rel (gid, uid) VALUES ($1, $2)",
            &[&s.group, &s.demo],
        )
        .unwrap();
    warm(&s, &mut db, Ok(3), "no rule");
    let rule = s.rule(&mut other, &format!("[(''id'', ''='', {})]", s.ids[0]), &[]);
    assert_eq!(s.count(&mut db), Ok(1), "a global rule");
    assert_eq!(s.count(&mut db), Ok(1));
    other
        .execute(
            &format!(
                "UPDATE public.ir_rule SET domain_force = '[(''id'', ''!='', {})]' WHERE id = $1",
                s.ids[0]
            ),
            &[&rule],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Ok(2), "its domain changed");
    other
        .execute(
            "UPDATE public.ir_rule SET active = false WHERE id = $1",
            &[&rule],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Ok(3), "archived");
    s.cleanup(&mut other);
}

#[test]
fn cache_sees_a_committed_rule_group_link_on_the_next_call() {
    let mut db = connect();
    let mut other = connect();
    let s = Scratch::new(&mut other, "rulegroup");
    s.access(&mut other, s.group, true);
    other
        .execute(
            "INSERT INTO public.res_groups_users_rel (gid, uid) VALUES ($1, $2)",
            &[&s.group, &s.demo],
        )
        .unwrap();
    let elsewhere = new_group(&mut other, &s.tag, "c");
    let rule = s.rule(
        &mut other,
        &format!("[(''id'', ''='', {})]", s.ids[0]),
        &[elsewhere],
    );
    warm(&s, &mut db, Ok(3), "the rule is another group's");
    other
        .execute(
            "UPDATE public.rule_group_rel SET group_id = $1 WHERE rule_group_id = $2",
            &[&s.group, &rule],
        )
        .unwrap();
    assert_eq!(s.count(&mut db), Ok(1), "now the user's group's");
    s.cleanup(&mut other);
}

#[test]
fn cache_sees_a_committed_field_on_the_next_call() {
    let mut db = connect();
    let mut other = connect();
    let s = Scratch::new(&mut other, "field");
    s.access(&mut other, s.group, true);
    other
        .execute(
            "INSERT INTO public.res_groups_users_rel (gid, uid) VALUES ($1, $2)",
            &[&s.group, &s.demo],
        )
        .unwrap();
    let read = |db: &mut Client| -> Result<String, String> {
        db.query_one(
            "SELECT api_gateway.search_read($1, $2, '[]', '{x_note}', 1)::text",
            &[&s.demo, &s.model],
        )
        .map(|r| r.get(0))
        .map_err(|e| sqlstate(&e))
    };
    for _ in 0..2 {
        assert_eq!(read(&mut db), Err("22023".into()), "no such field yet");
    }
    let mut tx = other.transaction().unwrap();
    tx.batch_execute(&format!(
        "ALTER TABLE public.{} ADD COLUMN x_note varchar DEFAULT 'noted'",
        s.table
    ))
    .unwrap();
    copy_row(
        &mut tx,
        "ir_model_fields",
        &format!("s.model = '{}' AND s.name = 'name'", s.model),
        &[("name", "'x_note'".into())],
    );
    tx.commit().unwrap();
    let got = read(&mut db).expect("the new field is served on the next call");
    assert!(got.contains("\"x_note\": \"noted\""), "{got}");
    s.cleanup(&mut other);
}

#[test]
fn cache_never_sees_a_rolled_back_change() {
    let mut db = connect();
    let mut other = connect();
    let s = Scratch::new(&mut other, "rollback");
    s.access(&mut other, s.group, true);
    other
        .execute(
            "INSERT INTO public.res_groups_users_rel (gid, uid) VALUES ($1, $2)",
            &[&s.group, &s.demo],
        )
        .unwrap();
    warm(&s, &mut db, Ok(3), "no rule");
    let one = format!("[(''id'', ''='', {})]", s.ids[0]);

    // Another session adds a rule and rolls back: never seen, before or after.
    let mut tx = other.transaction().unwrap();
    s.rule(&mut tx, &one, &[]);
    assert_eq!(s.count(&mut db), Ok(3), "uncommitted");
    tx.rollback().unwrap();
    assert_eq!(s.count(&mut db), Ok(3), "rolled back");

    // The caller's own transaction: its change is seen inside it, and gone after the rollback.
    let mut tx = db.transaction().unwrap();
    s.rule(&mut tx, &one, &[]);
    assert_eq!(s.count(&mut tx), Ok(1), "its own change, inside it");
    assert_eq!(s.count(&mut tx), Ok(1));
    tx.rollback().unwrap();
    assert_eq!(s.count(&mut db), Ok(3), "its own change, rolled back");
    assert_eq!(s.count(&mut db), Ok(3));

    // A transaction that has written (so it has an id), then reads the rules again (another
    // session committed a change since, so the cache is filled inside it, under a snapshot that
    // does not list the transaction itself as running), then changes the rules and commits: the
    // next call must see that change.
    let mut tx = db.transaction().unwrap();
    tx.execute(
        &format!("UPDATE public.{} SET name = name WHERE id = $1", s.table),
        &[&s.ids[1]],
    )
    .unwrap();
    other
        .execute(
            "UPDATE public.res_groups_users_rel SET uid = uid WHERE gid = $1",
            &[&s.group],
        )
        .unwrap();
    assert_eq!(s.count(&mut tx), Ok(3));
    s.rule(&mut tx, &one, &[]);
    tx.commit().unwrap();
    assert_eq!(
        s.count(&mut db),
        Ok(1),
        "committed by the reading transaction"
    );
    s.cleanup(&mut other);
}

#[test]
fn cache_triggers_follow_the_extension_and_never_stop_an_odoo_write() {
    let name = scratch_db("cache_triggers");
    let mut admin = connect_to("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let mut db = connect_to(&name);
    let triggers = |db: &mut Client| -> Vec<String> {
        db.query(
            "SELECT c.relname::text FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
              WHERE g.tgname = 'api_gateway_security_change' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    db.batch_execute(
        "CREATE TABLE ir_rule (id serial PRIMARY KEY, domain_force text);
         CREATE TABLE res_groups_users_rel (gid int, uid int);
         CREATE EXTENSION api_gateway;",
    )
    .unwrap();
    assert_eq!(
        triggers(&mut db),
        ["ir_rule", "res_groups_users_rel"],
        "installed by CREATE EXTENSION on the tables that exist"
    );
    // Odoo's tables created after the extension: installed on first use.
    db.batch_execute("CREATE TABLE ir_model_access (id serial PRIMARY KEY, perm_read bool)")
        .unwrap();
    let complete: bool = db
        .query_one("SELECT api_gateway._install_security_triggers()", &[])
        .unwrap()
        .get(0);
    assert!(complete);
    assert_eq!(
        triggers(&mut db),
        ["ir_model_access", "ir_rule", "res_groups_users_rel"]
    );
    // An Odoo write, as Odoo's role would run it (no right on the api_gateway schema), with a
    // savepoint rolled back in between: noted once, for its transaction.
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {name}_odoo; CREATE ROLE {name}_odoo;
         GRANT ALL ON ir_rule, res_groups_users_rel, ir_model_access TO {name}_odoo;
         GRANT ALL ON SEQUENCE ir_rule_id_seq TO {name}_odoo;
         SET ROLE {name}_odoo;
         BEGIN;
         INSERT INTO ir_rule (domain_force) VALUES ('[]');
         SAVEPOINT a; INSERT INTO res_groups_users_rel VALUES (1, 2); ROLLBACK TO SAVEPOINT a;
         UPDATE ir_model_access SET perm_read = true; TRUNCATE res_groups_users_rel;
         COMMIT;
         RESET ROLE;"
    ))
    .unwrap();
    let noted: i64 = db
        .query_one("SELECT count(*) FROM api_gateway.odoo_security_change", &[])
        .unwrap()
        .get(0);
    assert!(noted >= 1, "the transaction was noted");
    db.batch_execute("DROP EXTENSION api_gateway").unwrap();
    assert!(triggers(&mut db).is_empty(), "removed by DROP EXTENSION");
    db.batch_execute("INSERT INTO ir_rule (domain_force) VALUES ('[]')")
        .unwrap();
    drop(db);
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {name}_odoo"))
        .unwrap();
}

/// The page limits are not re-read by a call run on the cache: a change to the settings is
/// noted in the log like a change to Odoo's tables, so the very next call (here in the changing
/// transaction itself) applies it, and a rolled-back change is never seen.
#[test]
fn cache_sees_a_change_to_the_page_limits_on_the_next_call() {
    let mut db = connect();
    let read = |db: &mut postgres::Transaction| -> i64 {
        db.query_one(
            "SELECT jsonb_array_length(api_gateway.search_read(2, 'res.partner', '[]', '{name}', 3))::int8",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let mut tx = db.transaction().unwrap();
    assert_eq!(read(&mut tx), 3);
    assert_eq!(read(&mut tx), 3, "from the cache");
    tx.batch_execute("UPDATE api_gateway.settings SET default_limit = 1, max_limit = 1")
        .unwrap();
    let noted: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM api_gateway.odoo_security_change WHERE xact = pg_current_xact_id())",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(noted, "the settings change is noted");
    assert_eq!(read(&mut tx), 1, "the new maximum applies at once");
    tx.rollback().unwrap();
    let mut tx = db.transaction().unwrap();
    assert_eq!(read(&mut tx), 3, "the rolled-back change is never seen");
    tx.rollback().unwrap();
}

/// `run_maintenance` forgets noted transactions finished more than 10 minutes ago (issue 14's
/// `_purge_security_changes`), as its own job and as part of 'all'.
#[test]
fn run_maintenance_purges_the_security_change_log() {
    let mut db = connect();
    // Transaction ids no transaction of this cluster can still have (older than any snapshot):
    // harmless to the caches of sessions running alongside.
    db.batch_execute(
        "INSERT INTO api_gateway.odoo_security_change (xact, done_at)
              VALUES ('3', now() - interval '11 minutes'), ('4', NULL)
         ON CONFLICT (xact) DO UPDATE SET done_at = EXCLUDED.done_at",
    )
    .unwrap();
    let result: serde_json::Value = db
        .query_one(
            "SELECT api_gateway.run_maintenance('security_changes')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        result["forgotten"].as_i64().is_some_and(|n| n >= 1),
        "{result}"
    );
    let left: Vec<(String, bool)> = db
        .query(
            "SELECT xact::text, done_at IS NOT NULL FROM api_gateway.odoo_security_change
              WHERE xact IN ('3', '4') ORDER BY xact",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        left,
        [("4".to_string(), true)],
        "the old one forgotten, the other marked finished (forgotten 10 minutes later)"
    );
    db.batch_execute("DELETE FROM api_gateway.odoo_security_change WHERE xact = '4'")
        .unwrap();
    let all: serde_json::Value = db
        .query_one("SELECT api_gateway.run_maintenance()", &[])
        .unwrap()
        .get(0);
    assert!(all.get("security_changes").is_some(), "{all}");
}

/// A DROP EXTENSION of another extension whose statement names api_gateway removes the triggers
/// on Odoo's tables and installs them again at its end; the settings trigger (on the extension's
/// own table, which the reinstall does not cover) is left alone, so the cache stays on.
#[test]
fn dropping_another_extension_keeps_every_security_trigger() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let available: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto' AND installed_version IS NULL)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        available,
        "the test needs pgcrypto available and not installed"
    );
    let count = |tx: &mut postgres::Transaction| -> (i64, i64) {
        let r = tx
            .query_one(
                "SELECT count(*) FILTER (WHERE tgrelid <> 'api_gateway.settings'::regclass), \
                        count(*) FILTER (WHERE tgrelid = 'api_gateway.settings'::regclass) \
                   FROM pg_trigger WHERE tgfoid = 'api_gateway._note_odoo_security_change()'::regprocedure",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let before = count(&mut tx);
    assert!(before.0 > 0 && before.1 == 1, "{before:?}");
    tx.batch_execute("CREATE EXTENSION pgcrypto").unwrap();
    tx.batch_execute("DROP EXTENSION pgcrypto /* not api_gateway */")
        .unwrap();
    assert_eq!(count(&mut tx), before);
    tx.rollback().unwrap();
}
