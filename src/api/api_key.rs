//! Odoo API keys (`res_users_apikeys`), verified exactly as Odoo 19's `_check_credentials`:
//! candidates by the 8-character index, scope NULL or equal, not expired, active user, then the
//! passlib pbkdf2_sha512 hash of each candidate. PBKDF2 costs milliseconds by design, so a
//! successful verification is cached in the backend as (SHA-256 of the key -> key row id, stored
//! hash, scope and expiry). A cached key is re-checked against its row (same id, same hash,
//! scope, expiry, active user) unless no change to those tables has committed since it was read
//! (`crate::gate_generation`; scope and expiry are then checked here), so deleting or changing
//! the key row, expiring it or archiving the user takes effect on the very next call.
use crate::error::spi;
use crate::gate_generation::{self, Stamp};
use api_gateway_core::apikey;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// Odoo's candidate query (`_check_credentials`).
const CANDIDATES: &str = "SELECT k.id, k.user_id, k.key::text, k.scope::text, \
       (extract(epoch FROM k.expiration_date) * 1000000)::int8 \
  FROM public.res_users_apikeys k \
  JOIN public.res_users u ON u.id = k.user_id AND u.active \
 WHERE k.index = $1 AND (k.scope IS NULL OR k.scope = $2) \
   AND (k.expiration_date IS NULL OR k.expiration_date >= (now() AT TIME ZONE 'utc')) \
 ORDER BY k.id";

/// The same conditions for one cached row: still there, same hash, still valid. Its scope and
/// expiry (Unix microseconds) as they are now.
const STILL_VALID: &str = "SELECT k.user_id, k.scope::text, (extract(epoch FROM k.expiration_date) * 1000000)::int8 \
  FROM public.res_users_apikeys k \
  JOIN public.res_users u ON u.id = k.user_id AND u.active \
 WHERE k.id = $1 AND k.key = $2 AND (k.scope IS NULL OR k.scope = $3) \
   AND (k.expiration_date IS NULL OR k.expiration_date >= (now() AT TIME ZONE 'utc'))";

/// Keys of this index whose expiration date has passed (active user, right scope).
const EXPIRED_CANDIDATES: &str = "SELECT k.key::text \
  FROM public.res_users_apikeys k \
  JOIN public.res_users u ON u.id = k.user_id AND u.active \
 WHERE k.index = $1 AND (k.scope IS NULL OR k.scope = $2) \
   AND k.expiration_date < (now() AT TIME ZONE 'utc') \
 ORDER BY k.id";

pub const TABLES: &[&str] = &["res_users", "res_users_apikeys"];

/// What may change on a key row that keeps its id, hash and owner: checked in the backend while
/// the row is taken as unchanged.
#[derive(Clone, Default)]
pub struct KeyTerms {
    pub scope: Option<String>,
    /// Unix microseconds.
    pub expires_us: Option<i64>,
}

/// A verified key row: its id and stored hash (what the cache holds), its owner, its terms, and
/// when it was last read.
#[derive(Clone)]
pub struct VerifiedKey {
    pub id: i32,
    pub hash: String,
    pub uid: i32,
    terms: KeyTerms,
    stamp: Option<Stamp>,
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_US: i64 = 946_684_800_000_000;

impl VerifiedKey {
    /// Whether the row as read still holds for `scope` without reading it again: nothing
    /// changed since, right scope, not expired (Odoo: `expiration_date >= now()`, the
    /// transaction's start).
    pub fn current(&self, scope: &str) -> bool {
        let now_us = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() } + POSTGRES_EPOCH_US;
        gate_generation::current(self.stamp)
            && self.terms.scope.as_deref().is_none_or(|s| s == scope)
            && self.terms.expires_us.is_none_or(|e| e >= now_us)
    }
}

const CACHE_CAPACITY: usize = 4096;

thread_local! {
    /// SHA-256 of a verified key -> its row. Never the key itself.
    static VERIFIED: RefCell<HashMap<[u8; 32], VerifiedKey>> = RefCell::new(HashMap::new());
}

/// The cached verification of `key`, if any (not yet re-checked against the database).
pub fn cached(key: &str) -> Option<VerifiedKey> {
    let digest = apikey::cache_digest(key);
    VERIFIED.with(|c| c.borrow().get(&digest).cloned())
}

/// The owner of `key` for `scope` when its cached verification still holds without reading its
/// row (`VerifiedKey::current`): no SQL runs.
pub fn kept_uid(key: &str, scope: &str) -> Option<i32> {
    let digest = apikey::cache_digest(key);
    VERIFIED.with(|c| {
        c.borrow()
            .get(&digest)
            .filter(|v| v.current(scope))
            .map(|v| v.uid)
    })
}

pub fn forget(key: &str) {
    let digest = apikey::cache_digest(key);
    VERIFIED.with(|c| c.borrow_mut().remove(&digest));
}

/// Records that `key`'s row (same id, hash and owner) was read under `stamp`, with these terms.
pub fn confirm(key: &str, stamp: Option<Stamp>, terms: KeyTerms) {
    let digest = apikey::cache_digest(key);
    VERIFIED.with(|c| {
        if let Some(v) = c.borrow_mut().get_mut(&digest) {
            v.stamp = stamp;
            v.terms = terms;
        }
    });
}

/// Full verification (Odoo's rules, PBKDF2); caches the result on success.
pub fn verify_uncached(key: &str, scope: &str) -> Option<VerifiedKey> {
    crate::odoo::require_odoo("verify_api_key", TABLES);
    if key.len() > apikey::MAX_KEY_BYTES {
        return None;
    }
    let index = apikey::key_index(key)?;
    let stamp = gate_generation::before_read();
    let candidates: Vec<VerifiedKey> = Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            CANDIDATES,
            &[PgBuiltInOids::TEXTOID, PgBuiltInOids::TEXTOID],
            stamp.is_some(),
        );
        let rows = spi(c.select(plan, None, &[index.into(), scope.into()]));
        rows.map(|r| VerifiedKey {
            id: spi(r.get::<i32>(1)).unwrap_or(0),
            uid: spi(r.get::<i32>(2)).unwrap_or(0),
            hash: spi(r.get::<String>(3)).unwrap_or_default(),
            terms: KeyTerms {
                scope: spi(r.get::<String>(4)),
                expires_us: spi(r.get::<i64>(5)),
            },
            stamp,
        })
        .collect()
    });
    let found = candidates
        .into_iter()
        .find(|c| apikey::verify_key(key, &c.hash))?;
    let digest = apikey::cache_digest(key);
    VERIFIED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(digest, found.clone());
    });
    Some(found)
}

/// Whether `key` failed only because it expired: it matches the hash of a key row of its index
/// whose expiration date has passed. Called on the failure path only (PBKDF2 per expired
/// candidate of the same 8-character index, usually none).
pub fn expired(key: &str, scope: &str) -> bool {
    if key.len() > apikey::MAX_KEY_BYTES {
        return false;
    }
    let Some(index) = apikey::key_index(key) else {
        return false;
    };
    let hashes: Vec<String> = Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            EXPIRED_CANDIDATES,
            &[PgBuiltInOids::TEXTOID, PgBuiltInOids::TEXTOID],
            false,
        );
        spi(c.select(plan, None, &[index.into(), scope.into()]))
            .map(|r| spi(r.get::<String>(1)).unwrap_or_default())
            .collect()
    });
    hashes.iter().any(|h| apikey::verify_key(key, h))
}

/// The owner of `key` for `scope`, or None, with Odoo's exact rules.
fn verify(key: &str, scope: &str) -> Option<i32> {
    if let Some(hit) = cached(key) {
        crate::odoo::require_odoo("verify_api_key", TABLES);
        let stamp = gate_generation::before_read();
        let row = Spi::connect(|c| {
            let plan = crate::spi::plan(
                c,
                STILL_VALID,
                &[
                    PgBuiltInOids::INT4OID,
                    PgBuiltInOids::TEXTOID,
                    PgBuiltInOids::TEXTOID,
                ],
                stamp.is_some(),
            );
            let t = spi(c.select(
                plan,
                Some(1),
                &[hit.id.into(), hit.hash.as_str().into(), scope.into()],
            ));
            if t.is_empty() {
                return None;
            }
            let r = t.first();
            Some((
                spi(r.get::<i32>(1)),
                KeyTerms {
                    scope: spi(r.get::<String>(2)),
                    expires_us: spi(r.get::<i64>(3)),
                },
            ))
        });
        if let Some((uid, terms)) = row {
            confirm(key, stamp, terms);
            return uid;
        }
        forget(key);
    }
    verify_uncached(key, scope).map(|k| k.uid)
}

/// `api_gateway.verify_api_key(key text, scope text DEFAULT 'rpc') RETURNS integer`:
/// the Odoo user id for a valid Odoo API key, NULL otherwise. SECURITY DEFINER without a SET
/// clause: a key whose verification still holds is answered without SQL, and every statement
/// of the others runs under `crate::spi::pinned_generic`.
#[pg_extern(volatile, security_definer)]
fn verify_api_key(key: Option<&str>, scope: default!(Option<&str>, "'rpc'")) -> Option<i32> {
    let (key, scope) = (key?, scope?);
    kept_uid(key, scope).or_else(|| crate::spi::pinned_generic(|| verify(key, scope)))
}

/// `api_gateway._new_odoo_api_key() RETURNS TABLE(key, index, hash)`: a new Odoo API key made as
/// Odoo 19 makes them (`res.users.apikeys._generate`), for the upstream keys of OAuth2 clients
/// (`api_gateway.upstream_key`). Owner only (finalize revokes every function from PUBLIC).
#[pg_extern(volatile, parallel_safe)]
fn _new_odoo_api_key() -> TableIterator<
    'static,
    (
        name!(key, String),
        name!(index, String),
        name!(hash, String),
    ),
> {
    let (key, hash) = apikey::generate_key();
    let index = apikey::key_index(&key).unwrap_or_default().to_string();
    TableIterator::once((key, index, hash))
}
