//! Per-backend cache of what the data functions derive from Odoo's security and metadata tables:
//! each user's group closure and companies, the access right and record rules per (model,
//! operation, group set), the evaluated rule domains, and (through `meta`) model metadata.
//!
//! Validity: triggers on those tables (src/sql/security_cache.sql) note every transaction that
//! changes them in `api_gateway.odoo_security_change`, inside that transaction. The cache keeps
//! the snapshot it was read under (`base`); each statement that uses it first runs one probe
//! that asks whether a noted transaction is invisible to that snapshot (committed since). If
//! one is, everything is dropped and read again. The same probe reads the facts that change
//! often (the user's active flag, company, partner, language, and the page limits), so a call
//! costs this probe plus its data statement. Facts are never older than `MAX_AGE`.
//!
//! Where the log table or the triggers are missing (a database whose extension has not been
//! updated, a trigger that could not be installed), this backend runs uncached: `load` answers
//! None and the caller reads everything as before.
use crate::data::Operation;
use crate::error::spi;
use api_gateway_core::domain::{Domain, Param};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Cached facts are read again at least this often, so `_purge_security_changes` may forget a
/// noted transaction some minutes after it ended.
const MAX_AGE: Duration = Duration::from_secs(60);
/// How long a backend runs uncached before trying to install the missing triggers again.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Bound on each map; emptied when full (a refill costs a few queries).
const CAPACITY: usize = 4096;

/// The check and the per-call facts. `$2` is the snapshot the cache was read under (NULL: none
/// yet), `$3` the id of the transaction it was taken in, if it had one: `stale` when a noted
/// transaction is invisible to that snapshot (committed since), or is that transaction itself (a
/// snapshot does not list its own transaction as running). `own`: the calling transaction
/// itself changed those tables; what is read then must not outlive it (it may roll back), so no
/// snapshot is kept and the next call reads everything again. The current snapshot and
/// transaction id come with the answer, for when the cache is read again.
/// The facts an optimistic data statement compares with those its call used.
macro_rules! facts_key {
    () => {
        "format('%s|%s|%s|%s|%s|%s', u.company_id, u.partner_id, p.commercial_partner_id, p.lang, \
                st.default_limit, st.max_limit)"
    };
}

const PROBE: &str = concat!(
    "SELECT c.own, c.stale, pg_catalog.pg_current_snapshot()::text, \
       pg_catalog.pg_current_xact_id_if_assigned()::text, \
       u.id IS NOT NULL, coalesce(u.active, false), u.company_id, u.partner_id, p.commercial_partner_id, p.lang, \
       st.default_limit, st.max_limit, ",
    facts_key!(),
    " \
  FROM (SELECT EXISTS (SELECT 1 FROM api_gateway.odoo_security_change o \
                        WHERE o.xact = pg_catalog.pg_current_xact_id_if_assigned()) AS own, \
               coalesce((SELECT o.xact FROM api_gateway.odoo_security_change o ORDER BY o.xact DESC LIMIT 1) \
                  >= least(pg_catalog.pg_snapshot_xmin($2::pg_snapshot), $3::xid8), false) \
            AND (EXISTS (SELECT 1 FROM api_gateway.odoo_security_change o \
                          WHERE o.xact >= pg_catalog.pg_snapshot_xmin($2::pg_snapshot) \
                            AND NOT pg_catalog.pg_visible_in_snapshot(o.xact, $2::pg_snapshot)) \
                 OR EXISTS (SELECT 1 FROM api_gateway.odoo_security_change o WHERE o.xact = $3::xid8)) AS stale) c \
  CROSS JOIN api_gateway.settings st \
  LEFT JOIN public.res_users u ON u.id = $1 \
  LEFT JOIN public.res_partner p ON p.id = u.partner_id"
);

/// A user's groups (implied closure) and active companies.
const USER: &str = "WITH RECURSIVE g(gid) AS ( \
       SELECT r.gid FROM public.res_groups_users_rel r WHERE r.uid = $1 \
       UNION SELECT i.hid FROM public.res_groups_implied_rel i JOIN g ON i.gid = g.gid) \
SELECT ARRAY(SELECT gid FROM g ORDER BY gid), \
       ARRAY(SELECT r.cid FROM public.res_company_users_rel r JOIN public.res_company c ON c.id = r.cid \
              WHERE r.user_id = $1 AND coalesce(c.active, true) ORDER BY r.cid)";

/// The access right and the record rules of `$1[1]` (and its `_inherits` parents) for
/// operation `$2` and the group set `$3`.
const ACCESS: &str = "SELECT \
       (SELECT coalesce(bool_or(CASE $2 WHEN 'read' THEN a.perm_read WHEN 'write' THEN a.perm_write \
                                 WHEN 'create' THEN a.perm_create ELSE a.perm_unlink END), false) \
          FROM public.ir_model_access a JOIN public.ir_model m ON m.id = a.model_id \
         WHERE m.model = $1[1] AND a.active AND (a.group_id IS NULL OR a.group_id = ANY ($3))), \
       (SELECT json_agg(json_build_array(m.model, r.id, r.name, coalesce(r.domain_force, ''), \
                        NOT EXISTS (SELECT 1 FROM public.rule_group_rel x WHERE x.rule_group_id = r.id)) ORDER BY r.id) \
          FROM public.ir_rule r JOIN public.ir_model m ON m.id = r.model_id \
         WHERE m.model = ANY ($1) AND r.active \
           AND CASE $2 WHEN 'read' THEN r.perm_read WHEN 'write' THEN r.perm_write \
                       WHEN 'create' THEN r.perm_create ELSE r.perm_unlink END \
           AND (NOT EXISTS (SELECT 1 FROM public.rule_group_rel x WHERE x.rule_group_id = r.id) \
                OR EXISTS (SELECT 1 FROM public.rule_group_rel x WHERE x.rule_group_id = r.id AND x.group_id = ANY ($3))))";

/// What the probe read for one user in this statement.
#[derive(Clone)]
pub struct Facts {
    pub active: bool,
    pub company_id: i32,
    pub partner_id: Option<i32>,
    pub commercial_partner_id: Option<i32>,
    pub lang: Option<String>,
    pub limits: (i32, i32),
    /// The same facts as the probe formats them, for an optimistic data statement to compare.
    pub key: String,
}

/// A user's groups and companies.
pub struct UserSecurity {
    pub groups: Rc<[i32]>,
    pub companies: Vec<i32>,
}

/// (model, rule id, rule name, domain_force, global), as `UserContext::rules`.
pub type Rule = (String, i32, String, String, bool);

pub struct Access {
    pub allowed: bool,
    pub rules: Vec<Rule>,
}

/// Everything `context::load` needs, from the cache or read now.
pub struct Loaded {
    pub generation: u64,
    /// None: no such user.
    pub facts: Option<Facts>,
    pub user: Rc<UserSecurity>,
    pub access: Rc<Access>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Unknown,
    Off(Instant),
    On,
}

/// The key of a rule-domain memo: uid, model, the ids of the rules that apply, and the
/// per-call facts the rules read (company, partner, commercial partner).
type DomainKey = (i32, String, Vec<i32>, i64, Option<i64>, Option<i64>);

/// The access right of (model, operation, group set).
type AccessKey = (String, Operation, Rc<[i32]>);

struct State {
    mode: Mode,
    /// The snapshot the cache was read under, the id of the transaction it was taken in, when.
    base: Option<(String, Option<String>, Instant)>,
    generation: u64,
    /// (local transaction id, statement start) of the statement last validated, and the facts
    /// probed in it per user (uid 0: the check alone).
    statement: (u32, i64),
    probed: HashMap<i32, Option<Facts>>,
    /// The facts each user had at its last probe, for calls run optimistically.
    last: HashMap<i32, Facts>,
    /// Inside `optimistic`: cached state may be used without a probe; `check` then holds what
    /// the data statement must re-check (the user whose facts were used, and those facts).
    optimistic: bool,
    check: Option<(i32, Option<Facts>)>,
    /// Capturing the data statement of the running call (see `remembered`).
    capture: Option<Option<(String, Vec<Param>)>>,
    /// Data statements by request, valid for the generation and the user's facts they were
    /// built under.
    statements: HashMap<StatementKey, Rc<Statement>>,
    users: HashMap<i32, Rc<UserSecurity>>,
    access: HashMap<AccessKey, Rc<Access>>,
    domains: HashMap<DomainKey, Option<Domain>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        mode: Mode::Unknown,
        base: None,
        generation: 0,
        statement: (0, 0),
        probed: HashMap::new(),
        last: HashMap::new(),
        optimistic: false,
        check: None,
        capture: None,
        statements: HashMap::new(),
        users: HashMap::new(),
        access: HashMap::new(),
        domains: HashMap::new(),
    });
}

/// Identifies the running top-level statement: a cache validated in it stays valid for it.
fn statement_key() -> (u32, i64) {
    // SAFETY: MyProc is this backend's PGPROC, set before any function runs.
    unsafe {
        (
            (*pgrx::pg_sys::MyProc).lxid,
            pgrx::pg_sys::GetCurrentStatementStartTimestamp(),
        )
    }
}

/// Whether this backend caches: the log table exists and every trigger is in place (installed
/// now if Odoo's tables appeared after the extension).
fn enabled() -> bool {
    let mode = STATE.with(|s| s.borrow().mode);
    match mode {
        Mode::On => return true,
        Mode::Off(since) if since.elapsed() < RETRY_AFTER => return false,
        _ => {}
    }
    let on = Spi::connect_mut(|c| {
        let has = spi(c
            .select(
                "SELECT to_regclass('api_gateway.odoo_security_change') IS NOT NULL \
                    AND to_regprocedure('api_gateway._install_security_triggers()') IS NOT NULL",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1)))
        .unwrap_or(false);
        has && spi(c
            .update(
                "SELECT api_gateway._install_security_triggers()",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1)))
        .unwrap_or(false)
    });
    STATE.with(|s| {
        s.borrow_mut().mode = if on {
            Mode::On
        } else {
            Mode::Off(Instant::now())
        }
    });
    on
}

/// Run the probe for `uid` (0: the check alone) unless this statement already did; drops the
/// cache when it is stale. Returns the generation and the user's facts.
fn validate(uid: i32) -> (u64, Option<Facts>) {
    let key = statement_key();
    let known = STATE.with(|s| {
        let s = s.borrow();
        if s.statement != key {
            return None;
        }
        match s.probed.get(&uid) {
            Some(f) => Some((s.generation, f.clone())),
            // The check alone: any probe of this statement did it.
            None if uid == 0 && !s.probed.is_empty() => Some((s.generation, None)),
            None => None,
        }
    });
    if let Some(hit) = known {
        return hit;
    }
    // Optimistic: the cache and the user's last facts, re-checked by the data statement itself.
    let unverified = STATE.with(|s| {
        let mut s = s.borrow_mut();
        if !s.optimistic || s.base.as_ref().is_none_or(|b| b.2.elapsed() >= MAX_AGE) {
            return None;
        }
        let facts = if uid == 0 {
            None
        } else {
            Some(s.last.get(&uid)?.clone())
        };
        match &s.check {
            None | Some((0, _)) => s.check = Some((uid, facts.clone())),
            Some((u, _)) if uid == 0 || *u == uid => {}
            // A second user in one call: that one is probed.
            Some(_) => return None,
        }
        Some((s.generation, facts))
    });
    if let Some(hit) = unverified {
        return hit;
    }
    let base = STATE.with(|s| {
        s.borrow()
            .base
            .as_ref()
            .filter(|(_, _, at)| at.elapsed() < MAX_AGE)
            .map(|(snap, xact, _)| (snap.clone(), xact.clone()))
    });
    let has_base = base.is_some();
    let (stale, own, snapshot, xact, facts) = Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            PROBE,
            &[
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
            ],
            false,
        );
        let (snapshot, xact) = match &base {
            Some((snapshot, xact)) => (Some(snapshot.as_str()), xact.as_deref()),
            None => (None, None),
        };
        let t = spi(c.select(plan, Some(1), &[uid.into(), snapshot.into(), xact.into()]));
        let r = t.first();
        let exists = spi(r.get::<bool>(5)).unwrap_or(false);
        let facts = exists.then(|| Facts {
            active: spi(r.get::<bool>(6)).unwrap_or(false),
            company_id: spi(r.get::<i32>(7)).unwrap_or(0),
            partner_id: spi(r.get::<i32>(8)),
            commercial_partner_id: spi(r.get::<i32>(9)),
            lang: spi(r.get::<String>(10)),
            limits: (
                spi(r.get::<i32>(11)).unwrap_or(80),
                spi(r.get::<i32>(12)).unwrap_or(1000),
            ),
            key: spi(r.get::<String>(13)).unwrap_or_default(),
        });
        (
            spi(r.get::<bool>(2)).unwrap_or(true),
            spi(r.get::<bool>(1)).unwrap_or(true),
            spi(r.get::<String>(3)),
            spi(r.get::<String>(4)),
            facts,
        )
    });
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.statement != key {
            s.statement = key;
            s.probed.clear();
        }
        if own || stale || !has_base {
            // Everything read from now on is at least as new as this snapshot.
            s.base = snapshot
                .filter(|_| !own)
                .map(|snap| (snap, xact, Instant::now()));
            s.generation += 1;
            s.users.clear();
            s.access.clear();
            s.domains.clear();
            s.statements.clear();
        }
        s.probed.insert(uid, facts.clone());
        if let Some(f) = &facts {
            bounded(&mut s.last, uid, f.clone());
        }
        (s.generation, facts)
    })
}

/// The current generation of cached metadata, validated in this statement; None when this
/// backend does not cache. `meta` keys its model cache on it.
pub fn generation() -> Option<u64> {
    if !enabled() {
        return None;
    }
    Some(validate(0).0)
}

fn bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, value);
}

fn user_security(uid: i32) -> Rc<UserSecurity> {
    if let Some(u) = STATE.with(|s| s.borrow().users.get(&uid).cloned()) {
        return u;
    }
    let (groups, companies) = Spi::connect(|c| {
        let plan = crate::spi::plan(c, USER, &[PgBuiltInOids::INT4OID], false);
        let t = spi(c.select(plan, Some(1), &[uid.into()]));
        let r = t.first();
        (
            spi(r.get::<Vec<i32>>(1)).unwrap_or_default(),
            spi(r.get::<Vec<i32>>(2)).unwrap_or_default(),
        )
    });
    let u = Rc::new(UserSecurity {
        groups: groups.into(),
        companies,
    });
    STATE.with(|s| bounded(&mut s.borrow_mut().users, uid, u.clone()));
    u
}

fn access(models: &[String], op: Operation, groups: &Rc<[i32]>) -> Rc<Access> {
    let key = (models.join(","), op, groups.clone());
    if let Some(a) = STATE.with(|s| s.borrow().access.get(&key).cloned()) {
        return a;
    }
    let (allowed, rules) = Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            ACCESS,
            &[
                PgBuiltInOids::TEXTARRAYOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::INT4ARRAYOID,
            ],
            false,
        );
        let t = spi(c.select(
            plan,
            Some(1),
            &[
                models.to_vec().into(),
                op.as_str().into(),
                groups.to_vec().into(),
            ],
        ));
        let r = t.first();
        (
            spi(r.get::<bool>(1)).unwrap_or(false),
            spi(r.get::<pgrx::Json>(2)),
        )
    });
    let a = Rc::new(Access {
        allowed,
        rules: crate::data::context::parse_rules(rules),
    });
    STATE.with(|s| bounded(&mut s.borrow_mut().access, key, a.clone()));
    a
}

/// The cached (or freshly read) facts for `uid` and `models` (the model, then its `_inherits`
/// parents) under `op`; None when this backend does not cache.
pub fn load(uid: i32, models: &[String], op: Operation) -> Option<Loaded> {
    if !enabled() {
        return None;
    }
    let (generation, facts) = validate(uid);
    let user = user_security(uid);
    let access = access(models, op, &user.groups);
    Some(Loaded {
        generation,
        facts,
        user,
        access,
    })
}

/// A memoised rule domain for (uid, model, rules) and the facts the rules read, this generation.
pub fn rule_domain(key: &DomainKey, compute: impl FnOnce() -> Option<Domain>) -> Option<Domain> {
    if let Some(d) = STATE.with(|s| s.borrow().domains.get(key).cloned()) {
        return d;
    }
    let d = compute();
    STATE.with(|s| bounded(&mut s.borrow_mut().domains, key.clone(), d.clone()));
    d
}

/// The companies `ids` and all their parents (res_company.parent_id), sorted.
pub fn company_ancestors(ids: &[i64]) -> Vec<i64> {
    Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            "WITH RECURSIVE up(id, parent) AS ( \
               SELECT c.id, c.parent_id FROM public.res_company c WHERE c.id = ANY ($1) \
               UNION SELECT c.id, c.parent_id FROM public.res_company c JOIN up ON c.id = up.parent) \
             SELECT coalesce(array_agg(DISTINCT id::int8 ORDER BY id::int8), '{}') FROM up",
            &[PgBuiltInOids::INT8ARRAYOID],
            false,
        );
        let t = spi(c.select(plan, Some(1), &[ids.to_vec().into()]));
        spi(t.first().get::<Vec<i64>>(1)).unwrap_or_default()
    })
}

/// What an optimistic data statement re-checks, with its parameters from `$N`: no noted
/// transaction from `$N` (the lower of the snapshot's xmin and its transaction id) on that is
/// invisible to the cache's snapshot (`$N+1`) or is the transaction it was taken in (`$N+2`);
/// the calling transaction's own changes are among those (its id came after the snapshot, or is
/// that transaction's). And the user (`$N+3`, 0: none) still active with the facts the call
/// used (`$N+4`, as the probe formats them). The newest noted transaction (one step down the
/// index) is older than all that in the steady state, and the range is not even looked at:
/// the plan is generic, and a range predicate on a parameter could be planned as a full scan.
const CHECK: &str = concat!(
    "SELECT (coalesce((SELECT o.xact FROM api_gateway.odoo_security_change o ORDER BY o.xact DESC LIMIT 1), \
                      '0'::xid8) < $L::text::xid8 \
        OR NOT EXISTS (SELECT 1 FROM api_gateway.odoo_security_change o \
                    WHERE o.xact >= $L::text::xid8 \
                      AND (NOT pg_catalog.pg_visible_in_snapshot(o.xact, $S::text::pg_snapshot) \
                           OR o.xact = $X::text::xid8))) \
   AND ($U::int8 = 0 OR EXISTS (SELECT 1 FROM api_gateway.settings st, public.res_users u \
                 LEFT JOIN public.res_partner p ON p.id = u.partner_id \
                WHERE u.id = $U::int8 AND (u.active IS TRUE OR u.id = 1) AND ",
    facts_key!(),
    " = $F::text))"
);

/// A data statement run optimistically found the cache stale: the call is run again, verified.
struct Stale;

/// For the data statement of a call run optimistically: the statement wrapped so that it
/// answers only when the cache still holds (`SELECT CASE WHEN ok THEN (<sql>) END, ok`; the
/// second column NULL when a NULL answer itself says the check failed), and the parameters to
/// append from `$first`. None: the call was verified by a probe; run `sql`.
pub fn wrap_check(
    sql: &str,
    first: usize,
) -> Option<(String, Vec<api_gateway_core::domain::Param>)> {
    let (check, base) = STATE.with(|s| {
        let s = s.borrow();
        (s.check.clone(), s.base.clone())
    });
    let (uid, facts) = check?;
    let (snapshot, xact, _) = base?;
    let mut text = CHECK.to_string();
    for (i, name) in ["$L", "$S", "$X", "$U", "$F"].iter().enumerate() {
        text = text.replace(name, &format!("${}", first + i));
    }
    // pg_snapshot text is xmin:xmax:xip,...; xid8 values are decimal.
    let xmin: u64 = snapshot
        .split(':')
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let xid: Option<u64> = xact.as_deref().and_then(|x| x.parse().ok());
    let low = xid.map_or(xmin, |x| x.min(xmin));
    let params = vec![
        Param::Text(low.to_string()),
        Param::Text(snapshot),
        // No transaction id: one that no transaction has (xid8 0 is never assigned).
        Param::Text(xid.unwrap_or(0).to_string()),
        Param::Int(i64::from(uid)),
        Param::Text(facts.map(|f| f.key).unwrap_or_default()),
    ];
    let wrapped = if sql.ends_with(") -> 0") {
        // `read`: its answer may be NULL, so the check is a column of its own. OFFSET 0 keeps
        // `k` a subquery evaluated once (pulled up, its expression would be copied into both
        // output columns and run twice).
        format!("SELECT CASE WHEN k.ok THEN ({sql}) END, k.ok FROM ({text} AS ok OFFSET 0) k")
    } else {
        // An array is never NULL: NULL says the check failed (fewer nodes to start per call).
        let check = text.strip_prefix("SELECT ").unwrap_or(&text);
        format!("SELECT CASE WHEN {check} THEN ({sql}) END, NULL::boolean")
    };
    Some((wrapped, params))
}

/// The answer of a wrapped data statement: when the check failed, the call starts again.
pub fn checked(ok: bool) {
    if !ok {
        std::panic::panic_any(Stale);
    }
}

/// Run a read optimistically: with the cached state and the user's last facts, no probe, the
/// data statement checking them itself (`wrap_check`). When that check fails, or the call fails
/// on our own error while it used unchecked state, it runs again verified (probe first). A
/// PostgreSQL error is not retried (its state cannot be resumed), but the next call is verified.
pub fn optimistic<T>(f: impl Fn() -> T) -> T {
    if !enabled() {
        return f();
    }
    let set = |on: bool| {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.optimistic = on;
            s.check = None;
            s.capture = None;
        })
    };
    set(true);
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&f));
    let used = STATE.with(|s| s.borrow().check.is_some());
    set(false);
    match attempt {
        Ok(v) => v,
        Err(e) if !used => std::panic::resume_unwind(e),
        Err(e) => {
            let ours = e.is::<Stale>() || e.is::<pgrx::pg_sys::panic::ErrorReportWithLevel>();
            if !ours {
                // A PostgreSQL error: re-raised as is; the next call starts with a probe.
                STATE.with(|s| s.borrow_mut().base = None);
                std::panic::resume_unwind(e);
            }
            f()
        }
    }
}

/// A read request as the SQL caller gave it: uid, model, domain text, fields, limit, offset,
/// order, and whether it is `read` (one record, archived included).
pub type StatementKey = (
    i32,
    String,
    Option<String>,
    Option<Vec<Option<String>>>,
    Option<i32>,
    Option<i32>,
    Option<String>,
    bool,
);

pub struct Statement {
    generation: u64,
    facts: String,
    sql: String,
    params: Vec<Param>,
}

/// Keep a copy of the data statement of the running call when `remembered` asks for it.
pub fn capture(sql: &str, params: &[Param]) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(slot) = s.capture.as_mut() {
            *slot = Some((sql.to_string(), params.to_vec()));
        }
    });
}

/// The same request as an earlier call of this generation, by the same user with the same
/// facts: its data statement runs again as it was built (no parsing, compiling or SQL text to
/// build; the statement still re-checks the cache when the call is optimistic). Otherwise `f`
/// builds and runs it, and it is remembered if it succeeds.
pub fn remembered(
    key: StatementKey,
    f: impl FnOnce() -> Option<crate::spi::RawJsonb>,
) -> Option<crate::spi::RawJsonb> {
    if !enabled() {
        return f();
    }
    let (generation, facts) = validate(key.0);
    let usable = facts
        .as_ref()
        .is_some_and(|f| f.active || key.0 == crate::data::context::SUPERUSER_ID);
    if usable {
        let facts = facts.as_ref().map(|f| f.key.as_str()).unwrap_or_default();
        let hit = STATE.with(|s| {
            s.borrow()
                .statements
                .get(&key)
                .filter(|st| st.generation == generation && st.facts == facts)
                .cloned()
        });
        if let Some(st) = hit {
            return crate::data::read::run_json(&st.sql, &st.params);
        }
    }
    STATE.with(|s| s.borrow_mut().capture = Some(None));
    let out = f();
    let captured = STATE.with(|s| s.borrow_mut().capture.take().flatten());
    if let (true, Some((sql, params)), Some(facts)) = (usable, captured, facts) {
        STATE.with(|s| {
            bounded(
                &mut s.borrow_mut().statements,
                key,
                Rc::new(Statement {
                    generation,
                    facts: facts.key,
                    sql,
                    params,
                }),
            )
        });
    }
    out
}
