//! OAuth2 client credentials (RFC 6749 §4.4/§5): `issue_token` and `revoke_token`. Decisions
//! are returned as (status, body) rows, never raised, so the front maps them straight to HTTP.
use crate::api::jwt::now_unix;
use crate::error::spi;
use api_gateway_core::gate::{Scope, format_scope_list, parse_scope_list};
use api_gateway_core::{jwt, secrets};
use pgrx::prelude::*;
use serde_json::json;

const CLIENT: &str = "SELECT c.secret_hash, c.user_id, c.scopes, c.active, coalesce(u.active, false), \
       api_gateway.ip_allowed($2::inet, c.allowed_ips), \
       s.jwt_kid, s.jwt_secret, s.jwt_issuer, s.token_lifetime_s \
  FROM api_gateway.settings s \
  LEFT JOIN api_gateway.client c ON c.client_id = $1 \
  LEFT JOIN public.res_users u ON u.id = c.user_id";

const INSERT_TOKEN: &str = "INSERT INTO api_gateway.token (jti, client_id, user_id, scopes, kid, issued_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, to_timestamp($6), to_timestamp($7))";

const REVOKE: &str =
    "UPDATE api_gateway.token SET revoked_at = now() WHERE jti = $1 AND revoked_at IS NULL";

/// The secret that verifies tokens with this `kid`: the current key, or a retired one that is
/// still within its validity.
pub const SECRET_FOR_KID: &str = "SELECT CASE WHEN s.jwt_kid = $1 THEN s.jwt_secret ELSE \
       (SELECT k.secret FROM api_gateway.signing_key k WHERE k.kid = $1 AND k.valid_until > now()) END \
  FROM api_gateway.settings s";

type Decision = TableIterator<'static, (name!(status, i32), name!(body, pgrx::JsonB))>;

fn answer(status: i32, body: serde_json::Value) -> Decision {
    TableIterator::once((status, pgrx::JsonB(body)))
}

fn oauth_error(status: i32, error: &str, description: &str) -> Decision {
    answer(
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn new_jti() -> String {
    let mut b = [0u8; 16];
    secrets::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40; // UUID version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = secrets::to_hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The one client-secret check (token endpoint, introspection, revocation): the SHA-256 of the
/// presented secret against the stored hash in constant time, against a dummy hash for unknown
/// clients too, so timing does not tell them apart.
fn client_secret_matches(stored_hash: Option<&str>, presented: &str) -> bool {
    let presented = secrets::sha256_hex(presented);
    let stored =
        stored_hash.unwrap_or("0000000000000000000000000000000000000000000000000000000000000000");
    secrets::constant_time_eq(presented.as_bytes(), stored.as_bytes()) && stored_hash.is_some()
}

/// What CLIENT reads of a client (None when unknown) and of the settings.
struct ClientRow {
    secret_hash: Option<String>,
    uid: Option<i32>,
    scopes: Option<Vec<String>>,
    active: bool,
    user_active: bool,
    ip_ok: bool,
    kid: String,
    signing_secret: String,
    issuer: String,
    lifetime: i32,
}

fn client_row(client_id: &str, ip: Option<&str>) -> ClientRow {
    Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            CLIENT,
            &[PgBuiltInOids::TEXTOID, PgBuiltInOids::TEXTOID],
            false,
        );
        let t = spi(c.select(plan, Some(1), &[client_id.into(), ip.into()]));
        let r = t.first();
        ClientRow {
            secret_hash: spi(r.get::<String>(1)),
            uid: spi(r.get::<i32>(2)),
            scopes: spi(r.get::<Vec<String>>(3)),
            active: spi(r.get::<bool>(4)).unwrap_or(false),
            user_active: spi(r.get::<bool>(5)).unwrap_or(false),
            ip_ok: spi(r.get::<bool>(6)).unwrap_or(false),
            kid: spi(r.get::<String>(7)).unwrap_or_default(),
            signing_secret: spi(r.get::<String>(8)).unwrap_or_default(),
            issuer: spi(r.get::<String>(9)).unwrap_or_default(),
            lifetime: spi(r.get::<i32>(10)).unwrap_or(3600),
        }
    })
}

/// Client credentials longer than any the gateway issues are refused unread.
fn credentials_fit(client_id: &str, client_secret: &str) -> bool {
    client_id.len() <= 64 && client_secret.len() <= 256
}

/// `api_gateway.oauth_client_check(client_id text, client_secret text, client_ip inet DEFAULT
/// NULL) RETURNS boolean`: client authentication for introspection and revocation (RFC 7662
/// §2.1, RFC 7009 §2.1): an active client, this secret (the token endpoint's check), allowed
/// from this address. The front's role needs no right on the client table.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn oauth_client_check(
    client_id: Option<&str>,
    client_secret: Option<&str>,
    client_ip: default!(Option<pgrx::Inet>, "NULL"),
) -> bool {
    crate::odoo::require_odoo("oauth_client_check", &["res_users"]);
    let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
        return false;
    };
    if !credentials_fit(client_id, client_secret) {
        return false;
    }
    let row = client_row(client_id, client_ip.as_ref().map(|i| i.0.as_str()));
    client_secret_matches(row.secret_hash.as_deref(), client_secret) && row.active && row.ip_ok
}

/// `api_gateway.issue_token(client_id text, client_secret text, scope text DEFAULT NULL,
///   client_ip inet DEFAULT NULL) RETURNS TABLE(status integer, body jsonb)`
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn issue_token(
    client_id: Option<&str>,
    client_secret: Option<&str>,
    scope: default!(Option<&str>, "NULL"),
    client_ip: default!(Option<pgrx::Inet>, "NULL"),
) -> TableIterator<'static, (name!(status, i32), name!(body, pgrx::JsonB))> {
    crate::odoo::require_odoo("issue_token", &["res_users"]);
    let bad_client = || oauth_error(401, "invalid_client", "client authentication failed");
    let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
        return bad_client();
    };
    if !credentials_fit(client_id, client_secret) {
        return bad_client();
    }
    let ClientRow {
        secret_hash: hash,
        uid,
        scopes: client_scopes,
        active,
        user_active,
        ip_ok,
        kid,
        signing_secret,
        issuer,
        lifetime,
    } = client_row(client_id, client_ip.as_ref().map(|i| i.0.as_str()));
    let secret_ok = client_secret_matches(hash.as_deref(), client_secret);
    let (Some(uid), Some(client_scopes)) = (uid, client_scopes) else {
        return bad_client();
    };
    if !secret_ok || !active {
        return bad_client();
    }
    if !user_active {
        return oauth_error(
            400,
            "unauthorized_client",
            "the client's Odoo user is archived",
        );
    }
    if !ip_ok {
        return oauth_error(
            403,
            "access_denied",
            "the client is not allowed from this IP address",
        );
    }
    let allowed: Vec<Scope> = client_scopes
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let granted = match scope.map(str::trim).filter(|s| !s.is_empty()) {
        None => allowed.clone(),
        Some(requested) => match parse_scope_list(requested) {
            Ok(req) if req.iter().all(|s| allowed.contains(s)) => req,
            Ok(_) => {
                return oauth_error(
                    400,
                    "invalid_scope",
                    "the requested scope exceeds the scopes granted to the client",
                );
            }
            Err(_) => {
                return oauth_error(
                    400,
                    "invalid_scope",
                    "unknown scope: scopes are read, write, delete, admin",
                );
            }
        },
    };
    let scope_text = format_scope_list(&granted);
    let now = now_unix();
    let exp = now + i64::from(lifetime);
    let jti = new_jti();
    let claims = json!({
        "iss": issuer, "sub": uid.to_string(), "client_id": client_id, "scope": scope_text,
        "iat": now, "exp": exp, "jti": jti,
    });
    let token = match jwt::sign(
        &claims,
        signing_secret.as_bytes(),
        jwt::Algorithm::HS256,
        Some(&kid),
        Some("at+jwt"),
    ) {
        Ok(t) => t,
        Err(e) => crate::error::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("cannot sign the token: {e}"),
            None,
        ),
    };
    let scope_list: Vec<String> = granted.iter().map(|s| s.as_str().to_string()).collect();
    Spi::connect_mut(|c| {
        let plan = crate::spi::plan(
            c,
            INSERT_TOKEN,
            &[
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::TEXTARRAYOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::FLOAT8OID,
                PgBuiltInOids::FLOAT8OID,
            ],
            true,
        );
        spi(c.update(
            plan,
            None,
            &[
                jti.as_str().into(),
                client_id.into(),
                uid.into(),
                scope_list.into(),
                kid.as_str().into(),
                (now as f64).into(),
                (exp as f64).into(),
            ],
        ));
    });
    answer(
        200,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope_text}),
    )
}

/// The signing secret for `kid`, if that key is current or retired but still valid.
pub fn secret_for_kid(kid: &str) -> Option<String> {
    Spi::connect(|c| {
        let plan = crate::spi::plan(c, SECRET_FOR_KID, &[PgBuiltInOids::TEXTOID], false);
        spi(c
            .select(plan, Some(1), &[kid.into()])
            .and_then(|t| t.first().get_one::<String>()))
    })
}

/// `api_gateway.revoke_token(token text) RETURNS boolean`: true when a live token of ours was
/// revoked now. The signature must verify (an expired token may still be revoked).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_token(token: Option<&str>) -> bool {
    let Some(token) = token else { return false };
    let Ok(header) = jwt::decode_header(token) else {
        return false;
    };
    let Some(secret) = header.kid.as_deref().and_then(secret_for_kid) else {
        return false;
    };
    // Ten years of leeway: only the signature matters for revocation, not the expiry.
    let Ok(claims) = jwt::verify(
        token,
        secret.as_bytes(),
        jwt::Algorithm::HS256,
        now_unix(),
        315_360_000,
    ) else {
        return false;
    };
    let Some(jti) = claims.get("jti").and_then(|v| v.as_str()) else {
        return false;
    };
    Spi::connect_mut(|c| {
        let plan = crate::spi::plan(c, REVOKE, &[PgBuiltInOids::TEXTOID], true);
        !spi(c.update(plan, None, &[jti.into()])).is_empty()
    })
}

/// The jti and client of a token whose signature verifies (expired or not), else None.
fn signed_token_ids(token: &str) -> Option<(String, Option<String>)> {
    let header = jwt::decode_header(token).ok()?;
    let secret = header.kid.as_deref().and_then(secret_for_kid)?;
    // Ten years of leeway: only the signature matters for revocation, not the expiry.
    let claims = jwt::verify(
        token,
        secret.as_bytes(),
        jwt::Algorithm::HS256,
        now_unix(),
        315_360_000,
    )
    .ok()?;
    let jti = claims.get("jti").and_then(|v| v.as_str())?.to_string();
    let client = claims
        .get("client_id")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Some((jti, client))
}

/// `api_gateway.revoke_token_as_client(token text, client_id text) RETURNS boolean`: RFC 7009
/// revocation by an authenticated client (`oauth_client_check` first): true when a live token
/// was revoked now, false when there was nothing to revoke, NULL when the token was issued to
/// another client (which must not revoke it).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_token_as_client(token: Option<&str>, client_id: Option<&str>) -> Option<bool> {
    let (Some(token), Some(client_id)) = (token, client_id) else {
        return Some(false);
    };
    let Some((jti, owner)) = signed_token_ids(token) else {
        return Some(false);
    };
    if owner.as_deref() != Some(client_id) {
        return None;
    }
    Some(Spi::connect_mut(|c| {
        let plan = crate::spi::plan(c, REVOKE, &[PgBuiltInOids::TEXTOID], true);
        !spi(c.update(plan, None, &[jti.as_str().into()])).is_empty()
    }))
}

const INTROSPECT: &str = "SELECT t.client_id, t.user_id, t.scopes, extract(epoch FROM t.issued_at)::bigint, \
       extract(epoch FROM t.expires_at)::bigint, \
       t.revoked_at IS NULL AND t.expires_at > now() AND c.active AND coalesce(u.active, false) \
  FROM api_gateway.token t JOIN api_gateway.client c ON c.client_id = t.client_id \
  LEFT JOIN public.res_users u ON u.id = t.user_id WHERE t.jti = $1";

/// `api_gateway.introspect_token(token text) RETURNS jsonb`: RFC 7662 answer for one of our
/// access tokens: `{"active": true, "scope", "client_id", "sub", "exp", "iat", "jti",
/// "token_type", "iss"}` or just `{"active": false}` for anything else.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn introspect_token(token: Option<&str>) -> pgrx::JsonB {
    let inactive = || pgrx::JsonB(json!({"active": false}));
    let Some(token) = token else {
        return inactive();
    };
    let Ok(header) = jwt::decode_header(token) else {
        return inactive();
    };
    let Some(secret) = header.kid.as_deref().and_then(secret_for_kid) else {
        return inactive();
    };
    let Ok(claims) = jwt::verify(
        token,
        secret.as_bytes(),
        jwt::Algorithm::HS256,
        now_unix(),
        0,
    ) else {
        return inactive();
    };
    let Some(jti) = claims.get("jti").and_then(|v| v.as_str()) else {
        return inactive();
    };
    let row = Spi::connect(|c| {
        let plan = crate::spi::plan(c, INTROSPECT, &[PgBuiltInOids::TEXTOID], false);
        let t = spi(c.select(plan, Some(1), &[jti.into()]));
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        Some((
            spi(r.get::<String>(1)).unwrap_or_default(),
            spi(r.get::<i32>(2)).unwrap_or_default(),
            spi(r.get::<Vec<String>>(3)).unwrap_or_default(),
            spi(r.get::<i64>(4)).unwrap_or_default(),
            spi(r.get::<i64>(5)).unwrap_or_default(),
            spi(r.get::<bool>(6)).unwrap_or(false),
        ))
    });
    match row {
        Some((client_id, uid, scopes, iat, exp, true)) => pgrx::JsonB(json!({
            "active": true, "scope": scopes.join(" "), "client_id": client_id, "sub": uid.to_string(),
            "exp": exp, "iat": iat, "jti": jti, "token_type": "Bearer",
            "iss": claims.get("iss").cloned().unwrap_or(serde_json::Value::Null),
        })),
        _ => inactive(),
    }
}
