//! `authenticate`: the one call the front makes per request. Glue only: the credential is checked
//! in Rust first (JWT signature with the cached key for its `kid`; API key against the backend's
//! verification cache), ONE read-only statement gathers the facts (key still current, token not
//! revoked, client and user active, IP lists, profile, limits, admin group), and
//! `core::gate::decide` decides: pass (which scopes, which limit) or which denial and why. A pass
//! with a limit is counted on `crate::counter`, the one counter path of the gate and of
//! `rate_limit_hit`. Denials are rows, not errors.
//!
//! Faster still: facts that passed everything but the scope are kept per backend, keyed by token
//! (or user) and client IP, together with the gate epoch they were read under (`gate_epoch`,
//! bumped by triggers in the same transaction as any change to them) and, with shared memory,
//! the gate's generation (`crate::gate_generation`, moved after the commit of any change to them
//! or to the Odoo rows they come from). While the generation is unchanged the next request runs
//! no statement at all: the decision runs on the kept facts. Otherwise (or without shared
//! memory) it runs a slim statement that checks the epoch is unchanged and re-reads what lives in
//! Odoo's tables (user active and admin group; for API keys the key row). Any mismatch falls back
//! to the full statement, so a change is seen on the very next request. No statement writes: a
//! request that is only authenticated takes no transaction id and writes no commit record.
use crate::api::api_key;
use crate::api::jwt::now_unix;
use crate::api::oauth::secret_for_kid;
use crate::error::spi;
use crate::gate_generation::{self, Stamp};
use crate::one_row::{arg, one_row_function, return_row};
use api_gateway_core::gate::{
    self, CallerFacts, Credential, Facts, Pass, ProfileFacts, Refusal, Scope, StoredLimit,
    TokenFacts, TokenRow,
};
use api_gateway_core::jwt;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

/// The per-request statements, built once per process; plans are kept per backend. The full
/// statements exist in two forms: reading the gate epoch, and without it for a database whose
/// extension has not yet been updated to a version with `gate_epoch` (no caching there).
static JWT_STATEMENT: LazyLock<String> = LazyLock::new(|| jwt_statement(EPOCH_COLUMN));
static JWT_STATEMENT_NO_EPOCH: LazyLock<String> = LazyLock::new(|| jwt_statement(NO_EPOCH_COLUMN));
static API_KEY_STATEMENT: LazyLock<String> = LazyLock::new(|| api_key_statement(EPOCH_COLUMN));
static API_KEY_STATEMENT_NO_EPOCH: LazyLock<String> =
    LazyLock::new(|| api_key_statement(NO_EPOCH_COLUMN));

const EPOCH_COLUMN: &str = "(SELECT e.epoch FROM api_gateway.gate_epoch e) AS epoch";
const NO_EPOCH_COLUMN: &str = "NULL::bigint AS epoch";

/// Whether Odoo user `uid_expr` is in the settings group whose id is `$gid` (NULL: no such group).
fn is_admin_column(uid_expr: &str, gid: &str) -> String {
    format!(
        "({gid}::int IS NOT NULL AND EXISTS (SELECT 1 FROM public.res_groups_users_rel r \
          WHERE r.uid = {uid_expr} AND r.gid = {gid}::int)) AS is_admin"
    )
}

/// The profile (if any) and both limits as stored; `core::gate::limit_that_applies` picks one.
/// The algorithms are read through to_jsonb so that a database not yet updated to 0.4.0 (without
/// the column) is served too: its counters stay fixed windows. `$ip` is the client address.
fn profile_columns(ip: &str) -> String {
    format!(
        "p.user_id IS NOT NULL AS has_profile, coalesce(p.active, true) AS profile_active, \
         (p.allowed_ips IS NULL OR cardinality(p.allowed_ips) = 0 OR coalesce({ip}::inet <<= ANY (p.allowed_ips), false)) AS profile_ip_ok, \
         p.rate_limit AS profile_limit, p.rate_limit_window AS profile_window, \
         to_jsonb(p) ->> 'rate_limit_algorithm' AS profile_algorithm, \
         s.rate_limit AS global_limit, s.rate_limit_window AS global_window, \
         to_jsonb(s) ->> 'rate_limit_algorithm' AS global_algorithm"
    )
}

/// $1 kid, $2 its secret, $3 jti, $4 client IP, $5 id of base.group_system.
fn jwt_statement(epoch_column: &str) -> String {
    format!(
        "SELECT (s.jwt_kid = $1 AND s.jwt_secret = $2) AS key_current, {epoch_column}, \
         ((s.jwt_kid = $1 AND s.jwt_secret = $2) OR EXISTS (SELECT 1 FROM api_gateway.signing_key k \
            WHERE k.kid = $1 AND k.secret = $2 AND k.valid_until > now())) AS key_ok, \
         t.jti IS NOT NULL AS known, t.revoked_at IS NOT NULL AS revoked, t.client_id, t.user_id AS uid, t.scopes, \
         coalesce(c.active, false) AS client_active, \
         (c.allowed_ips IS NULL OR cardinality(c.allowed_ips) = 0 OR coalesce($4::inet <<= ANY (c.allowed_ips), false)) AS client_ip_ok, \
         coalesce(u.active, false) AS user_active, {admin}, {profile} \
    FROM api_gateway.settings s \
    LEFT JOIN api_gateway.token t ON t.jti = $3 \
    LEFT JOIN api_gateway.client c ON c.client_id = t.client_id \
    LEFT JOIN public.res_users u ON u.id = t.user_id \
    LEFT JOIN api_gateway.profile p ON p.user_id = t.user_id",
        admin = is_admin_column("t.user_id", "$5"),
        profile = profile_columns("$4"),
    )
}

/// $1 key row id, $2 its hash, $3 client IP, $4 id of base.group_system. No row: the key row
/// changed or its user is archived.
fn api_key_statement(epoch_column: &str) -> String {
    format!(
        "SELECT k.user_id AS uid, {epoch_column}, {admin}, {profile}, \
         (extract(epoch FROM k.expiration_date) * 1000000)::int8 AS expires_us, k.scope::text AS key_scope \
    FROM api_gateway.settings s \
    JOIN public.res_users_apikeys k ON k.id = $1 AND k.key = $2 AND (k.scope IS NULL OR k.scope = 'rpc') \
         AND (k.expiration_date IS NULL OR k.expiration_date >= (now() AT TIME ZONE 'utc')) \
    JOIN public.res_users u ON u.id = k.user_id AND u.active \
    LEFT JOIN api_gateway.profile p ON p.user_id = k.user_id",
        admin = is_admin_column("k.user_id", "$4"),
        profile = profile_columns("$3"),
    )
}

/// Kept JWT facts still hold when the epoch is unchanged and the Odoo user is still active; the
/// admin group is re-read. $1 epoch, $2 uid, $3 id of base.group_system.
const JWT_CACHED_STATEMENT: &str = "SELECT e.epoch = $1 AND EXISTS (SELECT 1 FROM public.res_users u WHERE u.id = $2 AND u.active), \
       ($3::int IS NOT NULL AND EXISTS (SELECT 1 FROM public.res_groups_users_rel r WHERE r.uid = $2 AND r.gid = $3::int)), \
       NULL::int8, NULL::text \
  FROM api_gateway.gate_epoch e";

/// Kept API-key facts still hold when the epoch is unchanged and the key row (same id, hash and
/// user, still valid) and its active user are still there; the admin group and the key's terms
/// (expiry in Unix microseconds, scope) are re-read. $1 epoch, $2 uid, $3 key row id, $4 its
/// hash, $5 id of base.group_system.
const API_KEY_CACHED_STATEMENT: &str = "SELECT e.epoch = $1 AND k.id IS NOT NULL, \
       ($5::int IS NOT NULL AND EXISTS (SELECT 1 FROM public.res_groups_users_rel r WHERE r.uid = $2 AND r.gid = $5::int)), \
       (extract(epoch FROM k.expiration_date) * 1000000)::int8, k.scope::text \
  FROM api_gateway.gate_epoch e \
  LEFT JOIN (SELECT k.id, k.expiration_date, k.scope FROM public.res_users_apikeys k \
               JOIN public.res_users u ON u.id = k.user_id AND u.active \
              WHERE k.id = $3 AND k.key = $4 AND k.user_id = $2 AND (k.scope IS NULL OR k.scope = 'rpc') \
                AND (k.expiration_date IS NULL OR k.expiration_date >= (now() AT TIME ZONE 'utc'))) k ON true";

thread_local! {
    /// kid -> signing secret, for checking signatures before the statement; the statement
    /// re-confirms that the key is still current or within its validity.
    static SIGNING_KEYS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    /// res.groups id of base.group_system (xmlids never change ids), None when absent.
    static GROUP_SYSTEM: RefCell<Option<Option<i32>>> = const { RefCell::new(None) };
}

fn group_system_id() -> Option<i32> {
    if let Some(id) = GROUP_SYSTEM.with(|g| *g.borrow()) {
        return id;
    }
    let id = Spi::connect(|c| {
        let has = spi(c
            .select(
                "SELECT to_regclass('public.ir_model_data') IS NOT NULL",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1)))
        .unwrap_or(false);
        if !has {
            return None;
        }
        spi(c
            .select(
                "SELECT res_id FROM public.ir_model_data WHERE module = 'base' AND name = 'group_system' AND model = 'res.groups'",
                Some(1),
                &[],
            )
            .and_then(|t| if t.is_empty() { Ok(None) } else { t.first().get::<i32>(1) }))
    });
    GROUP_SYSTEM.with(|g| *g.borrow_mut() = Some(id));
    id
}

type Row = (
    i32,
    Option<i32>,
    Option<String>,
    Option<Vec<String>>,
    Option<String>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<String>,
    Option<i32>,
);

/// The row of a refusal; a refusal that names the caller carries its uid and client.
fn refused(r: Refusal, uid: Option<i32>, client_id: Option<String>) -> Row {
    let (uid, client_id) = if r.names_caller {
        (uid, client_id)
    } else {
        (None, None)
    };
    (
        i32::from(r.denial.status()),
        uid,
        client_id,
        None,
        Some(r.denial.code().to_string()),
        None,
        None,
        None,
        Some(r.detail),
        None,
    )
}

/// The row of a decision: a pass is counted here against its limit (none: nothing counted).
fn answer(decision: Result<Pass, Refusal>, uid: i32, client_id: Option<String>) -> Row {
    let pass = match decision {
        Ok(p) => p,
        Err(r) => return refused(r, Some(uid), client_id),
    };
    let scopes = Some(pass.scopes.iter().map(|s| s.as_str().to_string()).collect());
    let Some(limit) = pass.limit else {
        return (
            200,
            Some(uid),
            client_id,
            scopes,
            None,
            None,
            None,
            None,
            None,
            None,
        );
    };
    let d = crate::counter::hit(
        &format!("user:{uid}"),
        limit.requests,
        limit.window_s,
        1,
        limit.algorithm,
    );
    let (status, error, detail) = if d.allowed {
        (200, None, None)
    } else {
        let r = limit.exceeded();
        (
            i32::from(r.denial.status()),
            Some(r.denial.code().to_string()),
            Some(r.detail),
        )
    };
    (
        status,
        Some(uid),
        client_id,
        scopes,
        error,
        Some(limit.requests),
        Some(d.remaining),
        Some(d.reset_s),
        detail,
        Some(limit.window_s),
    )
}

/// Facts kept for the next request of the same credential from the same address, with the epoch
/// and the stamp they were read under.
#[derive(Clone)]
struct Kept {
    epoch: i64,
    stamp: Option<Stamp>,
    uid: i32,
    facts: Facts,
}

/// Bound on each per-backend fact cache; emptied when full (a refill costs one full statement).
const FACTS_CAPACITY: usize = 4096;

thread_local! {
    /// (jti, client IP) -> facts. The IP is part of the key because the IP-list checks are the
    /// database's (`inet <<= cidr`), answered for that address only.
    static TOKEN_FACTS: RefCell<HashMap<(String, String), Kept>> = RefCell::new(HashMap::new());
    /// (user id, client IP) -> facts of the profile and limits.
    static USER_FACTS: RefCell<HashMap<(i32, String), Kept>> = RefCell::new(HashMap::new());
    /// Whether this database has `gate_epoch` (an extension updated to 0.3.0 or later).
    static HAS_EPOCH: RefCell<Option<bool>> = const { RefCell::new(None) };
}

fn has_epoch() -> bool {
    if let Some(v) = HAS_EPOCH.with(|h| *h.borrow()) {
        return v;
    }
    let v = Spi::connect(|c| {
        spi(c
            .select(
                "SELECT to_regclass('api_gateway.gate_epoch') IS NOT NULL",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1)))
    })
    .unwrap_or(false);
    HAS_EPOCH.with(|h| *h.borrow_mut() = Some(v));
    v
}

fn remember<K: std::hash::Hash + Eq>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<K, Kept>>>,
    key: K,
    value: Kept,
) {
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= FACTS_CAPACITY {
            c.clear();
        }
        c.insert(key, value);
    });
}

/// What a kept-facts probe answers.
struct Probed {
    holds: bool,
    /// The user is a settings administrator now.
    is_admin: bool,
    /// An API key's terms now.
    key_terms: api_key::KeyTerms,
}

/// Runs a kept-facts probe; with a stamp, under a snapshot of its own (see `gate_generation`).
fn probe(
    sql: &'static str,
    types: &[PgBuiltInOids],
    args: Vec<pgrx::datum::DatumWithOid>,
    stamp: Option<Stamp>,
) -> Probed {
    Spi::connect(|c| {
        let plan = crate::spi::plan(c, sql, types, stamp.is_some());
        let t = spi(c.select(plan, Some(1), &args));
        if t.is_empty() {
            return Probed {
                holds: false,
                is_admin: false,
                key_terms: api_key::KeyTerms::default(),
            };
        }
        let r = t.first();
        Probed {
            holds: spi(r.get::<bool>(1)).unwrap_or(false),
            is_admin: spi(r.get::<bool>(2)).unwrap_or(false),
            key_terms: api_key::KeyTerms {
                expires_us: spi(r.get::<i64>(3)),
                scope: spi(r.get::<String>(4)),
            },
        }
    })
}

/// The profile and the limits of a full statement's row.
fn profile_and_limits(r: &pgrx::spi::SpiTupleTable) -> (Option<ProfileFacts>, StoredLimit) {
    let b = |n: &str| spi(r.get_by_name::<bool, _>(n)).unwrap_or(false);
    let text = |n: &str| spi(r.get_by_name::<String, _>(n));
    let global = StoredLimit {
        requests: spi(r.get_by_name::<i32, _>("global_limit")).unwrap_or(0),
        window: text("global_window").unwrap_or_default(),
        algorithm: text("global_algorithm"),
    };
    let profile = b("has_profile").then(|| ProfileFacts {
        active: b("profile_active"),
        ip_allowed: b("profile_ip_ok"),
        limit: spi(r.get_by_name::<i32, _>("profile_limit")).map(|requests| StoredLimit {
            requests,
            window: text("profile_window").unwrap_or_default(),
            algorithm: text("profile_algorithm"),
        }),
    });
    (profile, global)
}

/// A token whose signature was verified, with the secret it was verified with and the claims
/// the gate uses: the next request with the same token skips the signature and the JSON, and
/// only its dates are checked again.
struct VerifiedToken {
    kid: String,
    secret: String,
    /// `kid` NUL `jti`: the token's key in `TOKEN_FACTS`.
    facts_key: String,
    claimed_client: Option<String>,
    dates: [Option<serde_json::Value>; 3],
}

const VERIFIED_TOKENS_CAPACITY: usize = 1024;

thread_local! {
    /// Token text -> its verification. Looked up by the whole token (hash, then equality): a
    /// token is taken as verified only when it is the very text that was.
    static VERIFIED_TOKENS: RefCell<HashMap<String, VerifiedToken>> = RefCell::new(HashMap::new());
}

/// The token's `TOKEN_FACTS` key and claimed client, when its signature is verified (now or
/// before, with the signing key still kept for its kid) and its dates hold. Runs no SQL. None:
/// the statements decide (and name what is wrong).
fn verified_token(token: &str) -> Option<(String, Option<String>)> {
    let now = now_unix();
    let key_still = |kid: &str, secret: &str| {
        SIGNING_KEYS.with(|k| k.borrow().get(kid).is_some_and(|s| s == secret))
    };
    let known = VERIFIED_TOKENS.with(|m| {
        let m = m.borrow();
        let v = m.get(token)?;
        Some(
            key_still(&v.kid, &v.secret)
                .then(|| {
                    let [exp, nbf, iat] = &v.dates;
                    jwt::check_dates([exp.as_ref(), nbf.as_ref(), iat.as_ref()], now, 30)
                        .is_ok()
                        .then(|| (v.facts_key.clone(), v.claimed_client.clone()))
                })
                .flatten(),
        )
    });
    if let Some(answer) = known {
        return answer;
    }
    let kid = jwt::decode_header(token).ok()?.kid.unwrap_or_default();
    let secret = SIGNING_KEYS.with(|k| k.borrow().get(&kid).cloned())?;
    let claims = jwt::verify(token, secret.as_bytes(), jwt::Algorithm::HS256, now, 30).ok()?;
    let jti = claims.get("jti")?.as_str()?;
    let verified = VerifiedToken {
        facts_key: format!("{kid}\u{0}{jti}"),
        claimed_client: claims
            .get("client_id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        dates: ["exp", "nbf", "iat"].map(|d| claims.get(d).cloned()),
        kid,
        secret,
    };
    let answer = (verified.facts_key.clone(), verified.claimed_client.clone());
    VERIFIED_TOKENS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= VERIFIED_TOKENS_CAPACITY {
            m.clear();
        }
        m.insert(token.to_string(), verified);
    });
    Some(answer)
}

/// The answer from kept facts, when a JWT's signature is verified without SQL and its facts are
/// current: no SQL runs (see `gate_generation`). None: the statements decide.
fn kept_jwt_answer(token: &str, ip: Option<&str>, needed: Scope) -> Option<Row> {
    let (facts_key, claimed_client) = verified_token(token)?;
    let cache_key = (facts_key, ip.unwrap_or_default().to_string());
    let (decision, uid, client_id) = TOKEN_FACTS.with(|c| {
        let mut c = c.borrow_mut();
        let kept = c.get_mut(&cache_key)?;
        if !gate_generation::current(kept.stamp) {
            return None;
        }
        let CallerFacts::Token(t) = &mut kept.facts.caller else {
            return None;
        };
        t.claimed_client = claimed_client;
        let client_id = t.row.as_ref().map(|row| row.client_id.clone());
        Some((gate::decide(&kept.facts, needed), kept.uid, client_id))
    })?;
    Some(answer(decision, uid, client_id))
}

/// The answer from kept facts for an Odoo API key whose verification and facts are current: no
/// SQL runs. None: the statements decide.
fn kept_api_key_answer(key: &str, ip: Option<&str>, needed: Scope) -> Option<Row> {
    let uid = api_key::kept_uid(key, "rpc")?;
    let cache_key = (uid, ip.unwrap_or_default().to_string());
    let decision = USER_FACTS.with(|c| {
        let c = c.borrow();
        let kept = c.get(&cache_key)?;
        gate_generation::current(kept.stamp).then(|| gate::decide(&kept.facts, needed))
    })?;
    Some(answer(decision, uid, None))
}

fn jwt_path(token: &str, ip: Option<&str>, needed: Scope) -> Row {
    let invalid = |why: &str| refused(Refusal::new(gate::Denial::InvalidToken, why), None, None);
    let header = match jwt::decode_header(token) {
        Ok(h) => h,
        Err(e) => return invalid(&e.to_string()),
    };
    let kid = header.kid.unwrap_or_default();
    let cached = SIGNING_KEYS.with(|k| k.borrow().get(&kid).cloned());
    let was_cached = cached.is_some();
    let secret = match cached.or_else(|| secret_for_kid(&kid)) {
        Some(s) => s,
        None => return invalid("unknown or retired signing key"),
    };
    let claims = match jwt::verify(
        token,
        secret.as_bytes(),
        jwt::Algorithm::HS256,
        now_unix(),
        30,
    ) {
        Ok(c) => c,
        Err(e) => return invalid(&e.to_string()),
    };
    // Kept once it has verified a signature (a key read but never used is not kept).
    if !was_cached {
        SIGNING_KEYS.with(|k| {
            let mut k = k.borrow_mut();
            if k.len() > 16 {
                k.clear();
            }
            k.insert(kid.clone(), secret.clone());
        });
    }
    let Some(jti) = claims.get("jti").and_then(|v| v.as_str()) else {
        return invalid("token was not issued by this gateway");
    };
    let claimed_client = claims
        .get("client_id")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let group_system = group_system_id();
    // The kept facts carry the kid they were read for: one cache key per (jti, IP).
    let cache_key = (
        format!("{kid}\u{0}{jti}"),
        ip.unwrap_or_default().to_string(),
    );

    if let Some(mut kept) = TOKEN_FACTS.with(|c| c.borrow().get(&cache_key).cloned()) {
        let client_id = |kept: &mut Kept, is_admin: bool| {
            let CallerFacts::Token(t) = &mut kept.facts.caller else {
                return None;
            };
            t.claimed_client = claimed_client.clone();
            t.row.as_mut().map(|row| {
                row.user_is_admin = is_admin;
                row.client_id.clone()
            })
        };
        let stamp = gate_generation::before_read();
        let probed = probe(
            JWT_CACHED_STATEMENT,
            &[
                PgBuiltInOids::INT8OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::INT4OID,
            ],
            vec![kept.epoch.into(), kept.uid.into(), group_system.into()],
            stamp,
        );
        if probed.holds {
            let client_id = client_id(&mut kept, probed.is_admin);
            kept.stamp = stamp;
            let decision = gate::decide(&kept.facts, needed);
            let uid = kept.uid;
            remember(&TOKEN_FACTS, cache_key, kept);
            return answer(decision, uid, client_id);
        }
        TOKEN_FACTS.with(|c| c.borrow_mut().remove(&cache_key));
    }

    let stamp = gate_generation::before_read();
    let statement = if has_epoch() {
        JWT_STATEMENT.as_str()
    } else {
        JWT_STATEMENT_NO_EPOCH.as_str()
    };
    let (key_current, epoch, uid, facts) = Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            statement,
            &[
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::INT4OID,
            ],
            stamp.is_some(),
        );
        let t = spi(c.select(
            plan,
            Some(1),
            &[
                kid.as_str().into(),
                secret.as_str().into(),
                jti.into(),
                ip.into(),
                group_system.into(),
            ],
        ));
        let r = t.first();
        let b = |n: &str| spi(r.get_by_name::<bool, _>(n)).unwrap_or(false);
        let uid = spi(r.get_by_name::<i32, _>("uid"));
        let client_id = spi(r.get_by_name::<String, _>("client_id"));
        let row = match (b("known"), client_id, uid) {
            (true, Some(client_id), Some(_)) => Some(TokenRow {
                client_id,
                revoked: b("revoked"),
                client_active: b("client_active"),
                client_ip_allowed: b("client_ip_ok"),
                user_active: b("user_active"),
                scopes: spi(r.get_by_name::<Vec<String>, _>("scopes")).unwrap_or_default(),
                user_is_admin: b("is_admin"),
            }),
            _ => None,
        };
        let (profile, global_limit) = profile_and_limits(&r);
        (
            b("key_current"),
            spi(r.get_by_name::<i64, _>("epoch")),
            uid,
            Facts {
                caller: CallerFacts::Token(TokenFacts {
                    signing_key_valid: b("key_ok"),
                    claimed_client,
                    row,
                }),
                profile,
                global_limit,
            },
        )
    });
    let decision = gate::decide(&facts, needed);
    let CallerFacts::Token(t) = &facts.caller else {
        unreachable!("a token's facts")
    };
    if !t.signing_key_valid {
        SIGNING_KEYS.with(|k| k.borrow_mut().remove(&kid));
    }
    let client_id = t.row.as_ref().map(|r| r.client_id.clone());
    // Facts that passed all but the scope are kept (tokens signed with a retired key are not:
    // their key's validity runs out by time).
    if let (true, Some(epoch), Some(uid)) = (key_current, epoch, uid)
        && gate::cacheable(&facts)
    {
        remember(
            &TOKEN_FACTS,
            cache_key,
            Kept {
                epoch,
                stamp,
                uid,
                facts,
            },
        );
    }
    answer(decision, uid.unwrap_or(0), client_id)
}

fn api_key_path(key: &str, ip: Option<&str>, needed: Scope) -> Row {
    let invalid = |why: &str| refused(Refusal::new(gate::Denial::InvalidToken, why), None, None);
    let group_system = group_system_id();
    // Cached verification first; if its row no longer matches, verify from scratch once.
    let mut attempt = api_key::cached(key);
    let mut fresh = false;
    loop {
        let verified = match attempt.take() {
            Some(v) => v,
            None if !fresh => {
                fresh = true;
                match api_key::verify_uncached(key, "rpc") {
                    Some(v) => v,
                    // Odoo knows an expired key from a wrong one: say so.
                    None if api_key::expired(key, "rpc") => {
                        return invalid("the API key has expired");
                    }
                    None => return invalid("invalid API key"),
                }
            }
            None => return invalid("invalid API key"),
        };
        let cache_key = (verified.uid, ip.unwrap_or_default().to_string());
        if let Some(mut kept) = USER_FACTS.with(|c| c.borrow().get(&cache_key).cloned()) {
            let stamp = gate_generation::before_read();
            let probed = probe(
                API_KEY_CACHED_STATEMENT,
                &[
                    PgBuiltInOids::INT8OID,
                    PgBuiltInOids::INT4OID,
                    PgBuiltInOids::INT4OID,
                    PgBuiltInOids::TEXTOID,
                    PgBuiltInOids::INT4OID,
                ],
                vec![
                    kept.epoch.into(),
                    verified.uid.into(),
                    verified.id.into(),
                    verified.hash.as_str().into(),
                    group_system.into(),
                ],
                stamp,
            );
            if probed.holds {
                kept.facts.caller = CallerFacts::ApiKey {
                    user_is_admin: probed.is_admin,
                };
                kept.stamp = stamp;
                api_key::confirm(key, stamp, probed.key_terms);
                let decision = gate::decide(&kept.facts, needed);
                remember(&USER_FACTS, cache_key, kept);
                return answer(decision, verified.uid, None);
            }
            USER_FACTS.with(|c| c.borrow_mut().remove(&cache_key));
        }
        let stamp = gate_generation::before_read();
        let statement = if has_epoch() {
            API_KEY_STATEMENT.as_str()
        } else {
            API_KEY_STATEMENT_NO_EPOCH.as_str()
        };
        let row = Spi::connect(|c| {
            let plan = crate::spi::plan(
                c,
                statement,
                &[
                    PgBuiltInOids::INT4OID,
                    PgBuiltInOids::TEXTOID,
                    PgBuiltInOids::TEXTOID,
                    PgBuiltInOids::INT4OID,
                ],
                stamp.is_some(),
            );
            let t = spi(c.select(
                plan,
                Some(1),
                &[
                    verified.id.into(),
                    verified.hash.as_str().into(),
                    ip.into(),
                    group_system.into(),
                ],
            ));
            if t.is_empty() {
                return None;
            }
            let r = t.first();
            let (profile, global_limit) = profile_and_limits(&r);
            Some((
                spi(r.get_by_name::<i32, _>("uid")).unwrap_or(0),
                spi(r.get_by_name::<i64, _>("epoch")),
                api_key::KeyTerms {
                    expires_us: spi(r.get_by_name::<i64, _>("expires_us")),
                    scope: spi(r.get_by_name::<String, _>("key_scope")),
                },
                Facts {
                    caller: CallerFacts::ApiKey {
                        user_is_admin: spi(r.get_by_name::<bool, _>("is_admin")).unwrap_or(false),
                    },
                    profile,
                    global_limit,
                },
            ))
        });
        let Some((uid, epoch, key_terms, facts)) = row else {
            // The cached row changed or vanished: forget it and try a full verification.
            api_key::forget(key);
            continue;
        };
        let decision = gate::decide(&facts, needed);
        api_key::confirm(key, stamp, key_terms);
        if let Some(epoch) = epoch
            && gate::cacheable(&facts)
        {
            remember(
                &USER_FACTS,
                (uid, cache_key.1),
                Kept {
                    epoch,
                    stamp,
                    uid,
                    facts,
                },
            );
        }
        return answer(decision, uid, None);
    }
}

/// `api_gateway.authenticate(authorization text, client_ip inet, method text) RETURNS SETOF
/// api_gateway.gate_answer` (status integer, uid integer, client_id text, scopes text[], error
/// text, rate_limit integer, remaining integer, reset_s integer, detail text, window_s integer),
/// one row. Status 200 means pass; `window_s` is the length of the rate-limit window when a
/// limit applies. Declared in src/sql/gate.sql (a named row type); answered in one call
/// (`crate::one_row`).
///
/// SECURITY DEFINER without a SET clause: a request answered from kept facts runs no SQL, and
/// every statement of the other requests runs under `crate::spi::pinned_generic` (the same
/// search path, set only then).
///
/// # Safety
/// Called by PostgreSQL with the function's arguments.
unsafe fn authenticate(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let (authorization, client_ip, method) = unsafe {
        (
            arg::<&str>(fcinfo, 0),
            arg::<pgrx::Inet>(fcinfo, 1),
            arg::<&str>(fcinfo, 2),
        )
    };
    let ip = client_ip.as_ref().map(|i| i.0.as_str());
    let row = match gate::read_request(method.unwrap_or(""), authorization) {
        Err(r) => refused(r, None, None),
        Ok((needed, Credential::Jwt(token))) => kept_jwt_answer(token, ip, needed)
            .unwrap_or_else(|| crate::spi::pinned_generic(|| jwt_path(token, ip, needed))),
        Ok((needed, Credential::ApiKey(key))) => kept_api_key_answer(key, ip, needed)
            .unwrap_or_else(|| {
                crate::spi::pinned_generic(|| {
                    crate::odoo::require_odoo("authenticate", api_key::TABLES);
                    api_key_path(key, ip, needed)
                })
            }),
    };
    let (status, uid, client_id, scopes, error, limit, remaining, reset_s, detail, window_s) = row;
    unsafe {
        return_row(
            fcinfo,
            [
                status.into_datum(),
                uid.into_datum(),
                client_id.into_datum(),
                scopes.into_datum(),
                error.into_datum(),
                limit.into_datum(),
                remaining.into_datum(),
                reset_s.into_datum(),
                detail.into_datum(),
                window_s.into_datum(),
            ],
        )
    }
}
one_row_function!(
    authenticate_wrapper,
    pg_finfo_authenticate_wrapper,
    authenticate
);
