//! Odoo API keys (`res_users_apikeys`), verified exactly as Odoo 19's `_check_credentials`:
//! candidates by the 8-character index, scope NULL or equal, not expired, active user, then the
//! passlib pbkdf2_sha512 hash of each candidate. PBKDF2 costs milliseconds by design, so a
//! successful verification is cached in the backend as (SHA-256 of the key -> key row id and
//! stored hash). The candidate query still runs on every call, so deleting or changing the key
//! row, expiring it or archiving the user takes effect on the very next call.
use crate::error::spi;
use api_gateway_core::apikey;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// Odoo's candidate query, plus what the gate needs about the user (profile, admin group).
const CANDIDATES: &str = "SELECT k.id, k.user_id, k.key::text, \
       p.user_id IS NOT NULL AS has_profile, coalesce(p.active, true) AS profile_active, \
       p.rate_limit, coalesce(p.rate_limit_window, 'minute') AS rate_limit_window, \
       api_gateway.ip_allowed($3::inet, p.allowed_ips) AS profile_ip_ok, \
       EXISTS (SELECT 1 FROM public.res_groups_users_rel r \
                 JOIN public.ir_model_data d ON d.res_id = r.gid AND d.model = 'res.groups' \
                  AND d.module = 'base' AND d.name = 'group_system' \
                WHERE r.uid = k.user_id) AS is_admin \
  FROM public.res_users_apikeys k \
  JOIN public.res_users u ON u.id = k.user_id AND u.active \
  LEFT JOIN api_gateway.profile p ON p.user_id = k.user_id \
 WHERE k.index = $1 AND (k.scope IS NULL OR k.scope = $2) \
   AND (k.expiration_date IS NULL OR k.expiration_date >= (now() AT TIME ZONE 'utc')) \
 ORDER BY k.id";

pub const TABLES: &[&str] = &[
    "res_users",
    "res_users_apikeys",
    "res_groups_users_rel",
    "ir_model_data",
];

/// The user a key belongs to, with the gate's facts about that user.
pub struct KeyOwner {
    pub uid: i32,
    pub profile: Option<Profile>,
    pub is_admin: bool,
}

pub struct Profile {
    pub active: bool,
    pub rate_limit: Option<i32>,
    pub rate_limit_window: String,
    pub ip_ok: bool,
}

struct Candidate {
    id: i32,
    owner: KeyOwner,
    hash: String,
}

const CACHE_CAPACITY: usize = 4096;

thread_local! {
    /// SHA-256 of a verified key -> (res_users_apikeys.id, stored hash). Never the key itself.
    static VERIFIED: RefCell<HashMap<[u8; 32], (i32, String)>> = RefCell::new(HashMap::new());
}

fn candidates(index: &str, scope: &str, client_ip: Option<&str>) -> Vec<Candidate> {
    Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            CANDIDATES,
            &[
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
            ],
            false,
        );
        let rows = spi(c.select(plan, None, &[index.into(), scope.into(), client_ip.into()]));
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let get_i32 = |n: usize| spi(row.get::<i32>(n));
            let has_profile = spi(row.get::<bool>(4)).unwrap_or(false);
            out.push(Candidate {
                id: get_i32(1).unwrap_or(0),
                hash: spi(row.get::<String>(3)).unwrap_or_default(),
                owner: KeyOwner {
                    uid: get_i32(2).unwrap_or(0),
                    profile: has_profile.then(|| Profile {
                        active: spi(row.get::<bool>(5)).unwrap_or(true),
                        rate_limit: get_i32(6),
                        rate_limit_window: spi(row.get::<String>(7))
                            .unwrap_or_else(|| "minute".into()),
                        ip_ok: spi(row.get::<bool>(8)).unwrap_or(false),
                    }),
                    is_admin: spi(row.get::<bool>(9)).unwrap_or(false),
                },
            });
        }
        out
    })
}

/// The owner of `key` for `scope`, or None, with Odoo's exact rules.
pub fn verify(key: &str, scope: &str, client_ip: Option<&str>) -> Option<KeyOwner> {
    crate::odoo::require_odoo("verify_api_key", TABLES);
    let index = apikey::key_index(key)?;
    if key.len() > apikey::MAX_KEY_BYTES {
        return None;
    }
    let candidates = candidates(index, scope, client_ip);
    if candidates.is_empty() {
        return None;
    }
    let digest = apikey::cache_digest(key);
    let cached = VERIFIED.with(|c| c.borrow().get(&digest).cloned());
    if let Some((id, hash)) = cached {
        if let Some(found) = candidates.iter().position(|c| c.id == id && c.hash == hash) {
            return candidates.into_iter().nth(found).map(|c| c.owner);
        }
    }
    for candidate in candidates {
        if apikey::verify_key(key, &candidate.hash) {
            VERIFIED.with(|c| {
                let mut cache = c.borrow_mut();
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(digest, (candidate.id, candidate.hash.clone()));
            });
            return Some(candidate.owner);
        }
    }
    None
}

/// `api_gateway.verify_api_key(key text, scope text DEFAULT 'rpc') RETURNS integer`:
/// the Odoo user id for a valid Odoo API key, NULL otherwise.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_api_key(key: Option<&str>, scope: default!(Option<&str>, "'rpc'")) -> Option<i32> {
    let (key, scope) = (key?, scope?);
    verify(key, scope, None).map(|owner| owner.uid)
}
