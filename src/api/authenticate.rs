//! `authenticate`: the one call the front makes per request. It identifies the caller (JWT of
//! ours or Odoo API key), applies revocation, IP lists, the scope the method needs and the rate
//! limit, and answers with a row. Denials are rows, not errors, so the counter write stays.
//!
//! Hot path: the credential is checked in Rust first (JWT signature with the cached key for its
//! `kid`; API key against the backend's verification cache), then ONE statement re-reads every
//! fact that may have changed (key still current, token not revoked, client and user active, IP
//! lists, profile) and increments the counter only when all of them pass.
//!
//! Faster still: the facts of a credential that passed are kept per backend, keyed by token (or
//! user) and client IP, together with the gate epoch they were read under (`gate_epoch`, bumped by
//! triggers in the same transaction as any change to them). The next request then runs a slim
//! statement that checks the epoch is unchanged, re-reads what lives in Odoo's tables (user
//! active; for API keys the key row and the admin group) and counts. Any mismatch falls back to the
//! full statement, so a change is seen on the very next request.
use crate::api::api_key;
use crate::api::jwt::now_unix;
use crate::api::oauth::secret_for_kid;
use crate::error::spi;
use api_gateway_core::counter::{self, Algorithm};
use api_gateway_core::gate::{self, Credential, Scope};
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
static JWT_CACHED_STATEMENT: LazyLock<String> = LazyLock::new(jwt_cached_statement);
static API_KEY_CACHED_STATEMENT: LazyLock<String> = LazyLock::new(api_key_cached_statement);

const EPOCH_COLUMN: &str = "(SELECT e.epoch FROM api_gateway.gate_epoch e) AS epoch";
const NO_EPOCH_COLUMN: &str = "NULL::bigint AS epoch";

/// The limit that applies: the profile's when it sets one, else the global one (seconds), and its
/// algorithm (read through to_jsonb so that a database not yet updated to 0.4.0, without the
/// column, is served too: its counters stay fixed windows).
const LIMIT_COLUMNS: &str = "CASE WHEN p.rate_limit IS NOT NULL THEN p.rate_limit ELSE s.rate_limit END AS lim, \
       CASE CASE WHEN p.rate_limit IS NOT NULL THEN p.rate_limit_window ELSE s.rate_limit_window END \
            WHEN 'hour' THEN 3600 WHEN 'day' THEN 86400 ELSE 60 END AS win, \
       coalesce(CASE WHEN p.rate_limit IS NOT NULL THEN to_jsonb(p) ->> 'rate_limit_algorithm' \
                     ELSE to_jsonb(s) ->> 'rate_limit_algorithm' END, 'fixed') AS alg";

/// The statements gather facts only: the caller that passes is counted by `crate::counter`, the
/// one counter path of the gate and of `rate_limit_hit`.
const FACTS_TAIL: &str = "SELECT f.* FROM f";

/// Cached JWT facts still hold when the epoch is unchanged and the Odoo user is still active.
fn jwt_cached_statement() -> String {
    String::from(
        "WITH g AS (SELECT e.epoch = $1 AND EXISTS (SELECT 1 FROM public.res_users u WHERE u.id = $2 AND u.active) AS pass \
    FROM api_gateway.gate_epoch e) \
SELECT g.pass FROM g",
    )
}

/// Cached API-key facts still hold when the epoch is unchanged and the key row (same id, hash
/// and user, still valid) and its active user are still there; the admin group is re-read, and
/// a request that needs admin passes only with it.
fn api_key_cached_statement() -> String {
    String::from(
        "WITH g AS (SELECT x.key_ok AND ($9 <> 'admin' OR x.is_admin) AS pass, x.is_admin FROM ( \
    SELECT e.epoch = $1 AND EXISTS (SELECT 1 FROM public.res_users_apikeys k \
             JOIN public.res_users u ON u.id = k.user_id AND u.active \
            WHERE k.id = $6 AND k.key = $7 AND k.user_id = $2 AND (k.scope IS NULL OR k.scope = 'rpc') \
              AND (k.expiration_date IS NULL OR k.expiration_date >= (now() AT TIME ZONE 'utc'))) AS key_ok, \
           ($8 IS NOT NULL AND EXISTS (SELECT 1 FROM public.res_groups_users_rel r WHERE r.uid = $2 AND r.gid = $8)) AS is_admin \
      FROM api_gateway.gate_epoch e) x) \
SELECT g.pass, g.is_admin FROM g",
    )
}

fn jwt_statement(epoch_column: &str) -> String {
    format!(
        "WITH f0 AS ( \
  SELECT (s.jwt_kid = $1 AND s.jwt_secret = $2) AS key_current, {epoch_column}, \
         ((s.jwt_kid = $1 AND s.jwt_secret = $2) OR EXISTS (SELECT 1 FROM api_gateway.signing_key k \
            WHERE k.kid = $1 AND k.secret = $2 AND k.valid_until > now())) AS key_ok, \
         t.jti IS NOT NULL AS known, t.revoked_at IS NOT NULL AS revoked, t.client_id, t.user_id AS uid, t.scopes, \
         coalesce(c.active, false) AS client_active, \
         (c.allowed_ips IS NULL OR cardinality(c.allowed_ips) = 0 OR coalesce($4::inet <<= ANY (c.allowed_ips), false)) AS client_ip_ok, \
         coalesce(u.active, false) AS user_active, \
         p.user_id IS NOT NULL AS has_profile, coalesce(p.active, true) AS profile_active, \
         (p.allowed_ips IS NULL OR cardinality(p.allowed_ips) = 0 OR coalesce($4::inet <<= ANY (p.allowed_ips), false)) AS profile_ip_ok, \
         coalesce(t.scopes && ARRAY[$5, 'admin'], false) AS scope_ok, \
         {LIMIT_COLUMNS} \
    FROM api_gateway.settings s \
    LEFT JOIN api_gateway.token t ON t.jti = $3 \
    LEFT JOIN api_gateway.client c ON c.client_id = t.client_id \
    LEFT JOIN public.res_users u ON u.id = t.user_id \
    LEFT JOIN api_gateway.profile p ON p.user_id = t.user_id), \
f AS (SELECT f0.*, f0.key_ok AND f0.known AND NOT f0.revoked AND f0.client_active AND f0.user_active \
        AND f0.client_ip_ok AND (NOT f0.has_profile OR (f0.profile_active AND f0.profile_ip_ok)) \
        AND f0.scope_ok AS pass FROM f0) \
{FACTS_TAIL}"
    )
}

fn api_key_statement(epoch_column: &str) -> String {
    format!(
        "WITH f0 AS ( \
  SELECT k.user_id AS uid, {epoch_column}, \
         p.user_id IS NOT NULL AS has_profile, coalesce(p.active, true) AS profile_active, \
         (p.allowed_ips IS NULL OR cardinality(p.allowed_ips) = 0 OR coalesce($3::inet <<= ANY (p.allowed_ips), false)) AS profile_ip_ok, \
         ($6 IS NOT NULL AND EXISTS (SELECT 1 FROM public.res_groups_users_rel r WHERE r.uid = k.user_id AND r.gid = $6)) AS is_admin, \
         {LIMIT_COLUMNS} \
    FROM api_gateway.settings s \
    JOIN public.res_users_apikeys k ON k.id = $1 AND k.key = $2 AND (k.scope IS NULL OR k.scope = 'rpc') \
         AND (k.expiration_date IS NULL OR k.expiration_date >= (now() AT TIME ZONE 'utc')) \
    JOIN public.res_users u ON u.id = k.user_id AND u.active \
    LEFT JOIN api_gateway.profile p ON p.user_id = k.user_id), \
f AS (SELECT f0.*, (NOT f0.has_profile OR (f0.profile_active AND f0.profile_ip_ok)) \
        AND ($4 <> 'admin' OR f0.is_admin) AS pass FROM f0) \
{FACTS_TAIL}"
    )
}

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

/// A denial: `error` is a stable code (RFC 6750 where one fits), `detail` says why.
fn deny(status: i32, error: &str, detail: &str) -> Row {
    (
        status,
        None,
        None,
        None,
        Some(error.into()),
        None,
        None,
        None,
        Some(detail.into()),
        None,
    )
}

/// What the combined statement found, common to both credential kinds.
struct Facts {
    uid: i32,
    client_id: Option<String>,
    scopes: Vec<String>,
    limit: i32,
    window_s: i32,
    algorithm: Algorithm,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The decision once the caller passed every check but the rate limit: counted here, on the
/// counter path shared with `rate_limit_hit` (a limit of 0 means no limit: nothing counted).
fn decide(f: Facts) -> Row {
    if counter::is_unlimited(f.limit) {
        return (
            200,
            Some(f.uid),
            f.client_id,
            Some(f.scopes),
            None,
            None,
            None,
            None,
            None,
            None,
        );
    }
    let d = crate::counter::hit(
        &format!("user:{}", f.uid),
        f.limit,
        f.window_s,
        1,
        f.algorithm,
    );
    let (status, error, detail) = if d.allowed {
        (200, None, None)
    } else {
        let unit = match f.window_s {
            3600 => "hour",
            86400 => "day",
            _ => "minute",
        };
        (
            429,
            Some("rate_limited".to_string()),
            Some(format!(
                "rate limit of {} requests per {unit} exceeded",
                f.limit
            )),
        )
    };
    (
        status,
        Some(f.uid),
        f.client_id,
        Some(f.scopes),
        error,
        Some(f.limit),
        Some(d.remaining),
        Some(d.reset_s),
        detail,
        Some(f.window_s),
    )
}

fn algorithm_of(name: Option<String>) -> Algorithm {
    name.as_deref()
        .and_then(Algorithm::parse)
        .unwrap_or_default()
}

/// Facts of a token that passed every check but the scope, read under `epoch`.
#[derive(Clone)]
struct TokenFacts {
    epoch: i64,
    kid: String,
    client_id: String,
    uid: i32,
    scopes: Vec<String>,
    limit: i32,
    window_s: i32,
    algorithm: Algorithm,
}

/// Facts of a user (API key) that passed the profile's checks, read under `epoch`.
#[derive(Clone, Copy)]
struct UserFacts {
    epoch: i64,
    limit: i32,
    window_s: i32,
    algorithm: Algorithm,
}

/// Bound on each per-backend fact cache; emptied when full (a refill costs one full statement).
const FACTS_CAPACITY: usize = 4096;

thread_local! {
    /// (jti, client IP) -> facts. The IP is part of the key because the IP-list checks are the
    /// database's (`inet <<= cidr`), answered for that address only.
    static TOKEN_FACTS: RefCell<HashMap<(String, String), TokenFacts>> = RefCell::new(HashMap::new());
    /// (user id, client IP) -> facts of the profile and limits.
    static USER_FACTS: RefCell<HashMap<(i32, String), UserFacts>> = RefCell::new(HashMap::new());
    /// Whether this database has `gate_epoch` (an extension updated to 0.3.0 or later).
    static HAS_EPOCH: RefCell<Option<bool>> = const { RefCell::new(None) };
}

fn has_epoch() -> bool {
    if let Some(v) = HAS_EPOCH.with(|h| *h.borrow()) {
        return v;
    }
    let v = spi(Spi::get_one::<bool>(
        "SELECT to_regclass('api_gateway.gate_epoch') IS NOT NULL",
    ))
    .unwrap_or(false);
    HAS_EPOCH.with(|h| *h.borrow_mut() = Some(v));
    v
}

fn remember<K: std::hash::Hash + Eq, V>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<K, V>>>,
    key: K,
    value: V,
) {
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= FACTS_CAPACITY {
            c.clear();
        }
        c.insert(key, value);
    });
}

/// Whether Odoo user `uid` is in the settings group (`base.group_system`) now.
fn is_settings_admin(uid: i32) -> bool {
    let Some(gid) = group_system_id() else {
        return false;
    };
    Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            IS_SETTINGS_ADMIN,
            &[PgBuiltInOids::INT4OID, PgBuiltInOids::INT4OID],
            false,
        );
        spi(c
            .select(plan, Some(1), &[uid.into(), gid.into()])
            .and_then(|t| t.first().get::<bool>(1)))
        .unwrap_or(false)
    })
}

const IS_SETTINGS_ADMIN: &str =
    "SELECT EXISTS (SELECT 1 FROM public.res_groups_users_rel r WHERE r.uid = $1 AND r.gid = $2)";

/// A token's scopes as they apply now: `admin` only while the client's Odoo user is in the
/// settings group, as for API keys (read again on every call: Odoo's group table bumps no epoch).
fn effective_token_scopes(scopes: Vec<String>, uid: i32) -> Vec<String> {
    let admin = Scope::Admin.as_str();
    if scopes.iter().any(|s| s == admin) && !is_settings_admin(uid) {
        scopes.into_iter().filter(|s| s != admin).collect()
    } else {
        scopes
    }
}

fn scope_granted(scopes: &[String], needed: Scope) -> bool {
    scopes
        .iter()
        .any(|s| s == needed.as_str() || s == Scope::Admin.as_str())
}

/// The cached path of a JWT: whether the facts still hold (else they must be read again).
fn jwt_cached_hit(f: &TokenFacts, now: i64) -> bool {
    Spi::connect_mut(|c| {
        let plan = crate::spi::plan(
            c,
            JWT_CACHED_STATEMENT.as_str(),
            &[
                PgBuiltInOids::INT8OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::FLOAT8OID,
            ],
            true,
        );
        let t = spi(c.update(
            plan,
            None,
            &[
                f.epoch.into(),
                f.uid.into(),
                f.limit.into(),
                f.window_s.into(),
                ((now / 1000) as f64).into(),
            ],
        ));
        spi(t.first().get::<bool>(1)).unwrap_or(false)
    })
}

fn jwt_path(token: &str, ip: Option<&str>, needed: Scope) -> Row {
    let invalid = |why: &str| deny(401, "invalid_token", why);
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
    let claimed_client = claims.get("client_id").and_then(|v| v.as_str());
    let now = now_ms();
    let cache_key = (jti.to_string(), ip.unwrap_or_default().to_string());

    // Cached facts that grant the scope: only the epoch, the user and the counter are read.
    if let Some(f) = TOKEN_FACTS.with(|c| c.borrow().get(&cache_key).cloned()) {
        let scopes = effective_token_scopes(f.scopes.clone(), f.uid);
        if f.kid == kid
            && claimed_client == Some(f.client_id.as_str())
            && scope_granted(&scopes, needed)
            && jwt_cached_hit(&f, now)
        {
            return decide(Facts {
                uid: f.uid,
                client_id: Some(f.client_id),
                scopes,
                limit: f.limit,
                window_s: f.window_s,
                algorithm: f.algorithm,
            });
        }
        TOKEN_FACTS.with(|c| c.borrow_mut().remove(&cache_key));
    }

    let statement = if has_epoch() {
        JWT_STATEMENT.as_str()
    } else {
        JWT_STATEMENT_NO_EPOCH.as_str()
    };
    let row = Spi::connect_mut(|c| {
        let plan = crate::spi::plan(
            c,
            statement,
            &[
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::FLOAT8OID,
            ],
            true,
        );
        let t = spi(c.update(
            plan,
            None,
            &[
                kid.as_str().into(),
                secret.as_str().into(),
                jti.into(),
                ip.into(),
                needed.as_str().into(),
                ((now / 1000) as f64).into(),
            ],
        ));
        let r = t.first();
        let b = |n: &str| spi(r.get_by_name::<bool, _>(n)).unwrap_or(false);
        (
            (b("key_current"), spi(r.get_by_name::<i64, _>("epoch"))),
            b("key_ok"),
            b("known"),
            b("revoked"),
            spi(r.get_by_name::<String, _>("client_id")),
            spi(r.get_by_name::<i32, _>("uid")),
            spi(r.get_by_name::<Vec<String>, _>("scopes")).unwrap_or_default(),
            b("client_active"),
            b("client_ip_ok"),
            b("user_active"),
            b("has_profile"),
            b("profile_active"),
            b("profile_ip_ok"),
            b("scope_ok"),
            spi(r.get_by_name::<i32, _>("lim")).unwrap_or(0),
            spi(r.get_by_name::<i32, _>("win")).unwrap_or(60),
            algorithm_of(spi(r.get_by_name::<String, _>("alg"))),
        )
    });
    let (
        (key_current, epoch),
        key_ok,
        known,
        revoked,
        client_id,
        uid,
        scopes,
        client_active,
        client_ip_ok,
        user_active,
        has_profile,
        profile_active,
        profile_ip_ok,
        scope_ok,
        limit,
        window_s,
        algorithm,
    ) = row;
    if !key_ok {
        SIGNING_KEYS.with(|k| k.borrow_mut().remove(&kid));
        return invalid("unknown or retired signing key");
    }
    let (true, Some(client_id), Some(uid)) = (known, client_id, uid) else {
        return invalid("token was not issued by this gateway");
    };
    if claimed_client != Some(client_id.as_str()) {
        return invalid("token does not match its client");
    }
    if revoked {
        return invalid("token has been revoked");
    }
    if !client_active {
        return invalid("the client has been deactivated");
    }
    if !user_active {
        return invalid("the client's Odoo user is archived");
    }
    if !client_ip_ok {
        return deny(
            403,
            "ip_not_allowed",
            "the client is not allowed from this IP address",
        );
    }
    if has_profile && !profile_active {
        return deny(
            403,
            "profile_inactive",
            "API access is disabled for this user",
        );
    }
    if has_profile && !profile_ip_ok {
        return deny(
            403,
            "ip_not_allowed",
            "the user is not allowed from this IP address",
        );
    }
    // Every fact but the scope passed: keep them (tokens signed with a retired key are not
    // kept, their key's validity runs out by time).
    if let (true, Some(epoch)) = (key_current, epoch) {
        remember(
            &TOKEN_FACTS,
            cache_key,
            TokenFacts {
                epoch,
                kid: kid.clone(),
                client_id: client_id.clone(),
                uid,
                scopes: scopes.clone(),
                limit,
                window_s,
                algorithm,
            },
        );
    }
    // The statement's scope check counts `admin` as every scope; it holds only while the user
    // is a settings administrator.
    let scopes = effective_token_scopes(scopes, uid);
    if !(scope_ok && scope_granted(&scopes, needed)) {
        let mut row = deny(
            403,
            "insufficient_scope",
            &format!("this request needs the \"{}\" scope", needed.as_str()),
        );
        row.1 = Some(uid);
        row.2 = Some(client_id);
        return row;
    }
    decide(Facts {
        uid,
        client_id: Some(client_id),
        scopes,
        limit,
        window_s,
        algorithm,
    })
}

/// The scopes an Odoo API key grants: all but admin, and admin for Odoo administrators.
fn api_key_scopes(is_admin: bool) -> Vec<String> {
    let mut scopes: Vec<String> = [Scope::Read, Scope::Write, Scope::Delete]
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    if is_admin {
        scopes.push(Scope::Admin.as_str().to_string());
    }
    scopes
}

/// The cached path of an API key: `Some(is_admin)` when the facts still hold.
fn api_key_cached_hit(
    f: &UserFacts,
    verified: &api_key::VerifiedKey,
    group_system: Option<i32>,
    needed: Scope,
    now: i64,
) -> Option<bool> {
    Spi::connect_mut(|c| {
        let plan = crate::spi::plan(
            c,
            API_KEY_CACHED_STATEMENT.as_str(),
            &[
                PgBuiltInOids::INT8OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::FLOAT8OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::TEXTOID,
            ],
            true,
        );
        let t = spi(c.update(
            plan,
            None,
            &[
                f.epoch.into(),
                verified.uid.into(),
                f.limit.into(),
                f.window_s.into(),
                ((now / 1000) as f64).into(),
                verified.id.into(),
                verified.hash.as_str().into(),
                group_system.into(),
                needed.as_str().into(),
            ],
        ));
        let r = t.first();
        if spi(r.get::<bool>(1)).unwrap_or(false) {
            Some(spi(r.get::<bool>(2)).unwrap_or(false))
        } else {
            None
        }
    })
}

fn api_key_path(key: &str, ip: Option<&str>, needed: Scope) -> Row {
    let invalid = || deny(401, "invalid_token", "invalid API key");
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
                        return deny(401, "invalid_token", "the API key has expired");
                    }
                    None => return invalid(),
                }
            }
            None => return invalid(),
        };
        let now = now_ms();
        let cache_key = (verified.uid, ip.unwrap_or_default().to_string());
        if let Some(f) = USER_FACTS.with(|c| c.borrow().get(&cache_key).copied()) {
            if let Some(is_admin) = api_key_cached_hit(&f, &verified, group_system, needed, now) {
                return decide(Facts {
                    uid: verified.uid,
                    client_id: None,
                    scopes: api_key_scopes(is_admin),
                    limit: f.limit,
                    window_s: f.window_s,
                    algorithm: f.algorithm,
                });
            }
            USER_FACTS.with(|c| c.borrow_mut().remove(&cache_key));
        }
        let statement = if has_epoch() {
            API_KEY_STATEMENT.as_str()
        } else {
            API_KEY_STATEMENT_NO_EPOCH.as_str()
        };
        let row = Spi::connect_mut(|c| {
            let plan = crate::spi::plan(
                c,
                statement,
                &[
                    PgBuiltInOids::INT4OID,
                    PgBuiltInOids::TEXTOID,
                    PgBuiltInOids::TEXTOID,
                    PgBuiltInOids::TEXTOID,
                    PgBuiltInOids::FLOAT8OID,
                    PgBuiltInOids::INT4OID,
                ],
                true,
            );
            let t = spi(c.update(
                plan,
                None,
                &[
                    verified.id.into(),
                    verified.hash.as_str().into(),
                    ip.into(),
                    needed.as_str().into(),
                    ((now / 1000) as f64).into(),
                    group_system.into(),
                ],
            ));
            if t.is_empty() {
                return None;
            }
            let r = t.first();
            let b = |n: &str| spi(r.get_by_name::<bool, _>(n)).unwrap_or(false);
            Some((
                spi(r.get_by_name::<i32, _>("uid")).unwrap_or(0),
                spi(r.get_by_name::<i64, _>("epoch")),
                b("has_profile"),
                b("profile_active"),
                b("profile_ip_ok"),
                b("is_admin"),
                spi(r.get_by_name::<i32, _>("lim")).unwrap_or(0),
                spi(r.get_by_name::<i32, _>("win")).unwrap_or(60),
                algorithm_of(spi(r.get_by_name::<String, _>("alg"))),
            ))
        });
        let Some((
            uid,
            epoch,
            has_profile,
            profile_active,
            profile_ip_ok,
            is_admin,
            limit,
            window_s,
            algorithm,
        )) = row
        else {
            // The cached row changed or vanished: forget it and try a full verification.
            api_key::forget(key);
            continue;
        };
        if has_profile && !profile_active {
            return deny(
                403,
                "profile_inactive",
                "API access is disabled for this user",
            );
        }
        if has_profile && !profile_ip_ok {
            return deny(
                403,
                "ip_not_allowed",
                "the user is not allowed from this IP address",
            );
        }
        if let Some(epoch) = epoch {
            remember(
                &USER_FACTS,
                (uid, ip.unwrap_or_default().to_string()),
                UserFacts {
                    epoch,
                    limit,
                    window_s,
                    algorithm,
                },
            );
        }
        if needed == Scope::Admin && !is_admin {
            let mut row = deny(
                403,
                "insufficient_scope",
                "this request needs the \"admin\" scope",
            );
            row.1 = Some(uid);
            return row;
        }
        return decide(Facts {
            uid,
            client_id: None,
            scopes: api_key_scopes(is_admin),
            limit,
            window_s,
            algorithm,
        });
    }
}

/// `api_gateway.authenticate(authorization text, client_ip inet, method text) RETURNS TABLE(status
/// integer, uid integer, client_id text, scopes text[], error text, rate_limit integer,
/// remaining integer, reset_s integer, detail text, window_s integer)`. Status 200 means pass;
/// `window_s` is the length of the rate-limit window when a limit applies.
// pgrx spells a returned table's columns as one tuple type.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn authenticate(
    authorization: Option<&str>,
    client_ip: Option<pgrx::Inet>,
    method: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(status, i32),
        name!(uid, Option<i32>),
        name!(client_id, Option<String>),
        name!(scopes, Option<Vec<String>>),
        name!(error, Option<String>),
        name!(rate_limit, Option<i32>),
        name!(remaining, Option<i32>),
        name!(reset_s, Option<i32>),
        name!(detail, Option<String>),
        name!(window_s, Option<i32>),
    ),
> {
    let ip = client_ip.as_ref().map(|i| i.0.as_str());
    let row = match method.and_then(gate::required_scope) {
        None => deny(405, "invalid_request", "unsupported HTTP method"),
        Some(needed) => match gate::parse_authorization(authorization) {
            Err(gate::AuthHeaderError::Missing) => deny(
                401,
                "missing_credentials",
                "no credentials: send Authorization: Bearer <token or API key>",
            ),
            Err(e) => deny(401, "invalid_request", &e.to_string()),
            Ok(Credential::Jwt(token)) => jwt_path(token, ip, needed),
            Ok(Credential::ApiKey(key)) => {
                crate::odoo::require_odoo("authenticate", api_key::TABLES);
                api_key_path(key, ip, needed)
            }
        },
    };
    TableIterator::once(row)
}
