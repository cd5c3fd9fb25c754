//! `authenticate`: the one call the front makes per request. It identifies the caller (JWT of
//! ours or Odoo API key), applies revocation, IP lists, the scope the method needs and the rate
//! limit, and answers with a row. Denials are rows, not errors, so the counter write stays.
use crate::api::api_key::{self, KeyOwner};
use crate::api::jwt::now_unix;
use crate::api::rate_limit;
use crate::error::spi;
use api_gateway_core::gate::{self, Credential, Scope};
use api_gateway_core::jwt;
use api_gateway_core::ratelimit::window_seconds;
use pgrx::prelude::*;

/// Everything the JWT path needs in one read: the key for `kid`, the token row, its client, the
/// client's Odoo user, the user's profile and the global limit.
const JWT_FACTS: &str = "SELECT \
       CASE WHEN s.jwt_kid = $1 THEN s.jwt_secret ELSE \
         (SELECT k.secret FROM api_gateway.signing_key k WHERE k.kid = $1 AND k.valid_until > now()) END, \
       s.jwt_issuer, s.rate_limit, s.rate_limit_window, \
       t.jti IS NOT NULL, t.revoked_at IS NOT NULL, t.client_id, t.user_id, t.scopes, \
       coalesce(c.active, false), api_gateway.ip_allowed($3::inet, c.allowed_ips), coalesce(u.active, false), \
       p.user_id IS NOT NULL, coalesce(p.active, true), p.rate_limit, coalesce(p.rate_limit_window, 'minute'), \
       api_gateway.ip_allowed($3::inet, p.allowed_ips) \
  FROM api_gateway.settings s \
  LEFT JOIN api_gateway.token t ON t.jti = $2 \
  LEFT JOIN api_gateway.client c ON c.client_id = t.client_id \
  LEFT JOIN public.res_users u ON u.id = t.user_id \
  LEFT JOIN api_gateway.profile p ON p.user_id = t.user_id";

const GLOBAL_LIMIT: &str = "SELECT rate_limit, rate_limit_window FROM api_gateway.settings";

type Row = (
    name!(status, i32),
    name!(uid, Option<i32>),
    name!(client_id, Option<String>),
    name!(scopes, Option<Vec<String>>),
    name!(error, Option<String>),
    name!(rate_limit, Option<i32>),
    name!(remaining, Option<i32>),
    name!(reset_s, Option<i32>),
    name!(detail, Option<String>),
);

/// A denial: `error` is a stable code (RFC 6750 where one fits), `detail` says why.
fn deny(status: i32, error: &str, detail: &str) -> TableIterator<'static, Row> {
    TableIterator::once((
        status,
        None,
        None,
        None,
        Some(error.into()),
        None,
        None,
        None,
        Some(detail.into()),
    ))
}

/// Who the caller is, once the credential checked out.
struct Caller {
    uid: i32,
    client_id: Option<String>,
    scopes: Vec<Scope>,
    /// (limit, window) of the user's profile, else None for the global one.
    profile_limit: Option<(Option<i32>, String)>,
}

fn jwt_caller(token: &str, ip: Option<&str>) -> Result<Caller, (i32, &'static str, String)> {
    let invalid = |why: String| (401, "invalid_token", why);
    let header = jwt::decode_header(token).map_err(|e| invalid(e.to_string()))?;
    let kid = header.kid.unwrap_or_default();
    // The jti is read before the signature is checked only to fetch the facts in one query;
    // nothing is trusted until `verify` below succeeds.
    let jti = unverified_jti(token).unwrap_or_default();
    let facts = Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            JWT_FACTS,
            &[
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::TEXTOID,
            ],
            false,
        );
        let t = spi(c.select(
            plan,
            Some(1),
            &[kid.as_str().into(), jti.as_str().into(), ip.into()],
        ));
        let r = t.first();
        (
            spi(r.get::<String>(1)),
            spi(r.get::<String>(2)).unwrap_or_default(),
            spi(r.get::<bool>(5)).unwrap_or(false),
            spi(r.get::<bool>(6)).unwrap_or(false),
            spi(r.get::<String>(7)),
            spi(r.get::<i32>(8)),
            spi(r.get::<Vec<String>>(9)).unwrap_or_default(),
            spi(r.get::<bool>(10)).unwrap_or(false),
            spi(r.get::<bool>(11)).unwrap_or(false),
            spi(r.get::<bool>(12)).unwrap_or(false),
            spi(r.get::<bool>(13)).unwrap_or(false),
            spi(r.get::<bool>(14)).unwrap_or(true),
            spi(r.get::<i32>(15)),
            spi(r.get::<String>(16)).unwrap_or_else(|| "minute".into()),
            spi(r.get::<bool>(17)).unwrap_or(false),
        )
    });
    let (
        secret,
        issuer,
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
        p_limit,
        p_window,
        profile_ip_ok,
    ) = facts;
    let secret = secret.ok_or_else(|| invalid("unknown or retired signing key".into()))?;
    let claims = jwt::verify(
        token,
        secret.as_bytes(),
        jwt::Algorithm::HS256,
        now_unix(),
        30,
    )
    .map_err(|e| invalid(e.to_string()))?;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer.as_str()) {
        return Err(invalid("token was not issued by this gateway".into()));
    }
    if !known {
        return Err(invalid("token was not issued by this gateway".into()));
    }
    if revoked {
        return Err(invalid("token has been revoked".into()));
    }
    let (Some(client_id), Some(uid)) = (client_id, uid) else {
        return Err(invalid("token was not issued by this gateway".into()));
    };
    if claims.get("client_id").and_then(|v| v.as_str()) != Some(client_id.as_str()) {
        return Err(invalid("token does not match its client".into()));
    }
    if !client_active {
        return Err(invalid("the client has been deactivated".into()));
    }
    if !user_active {
        return Err(invalid("the client's Odoo user is archived".into()));
    }
    if !client_ip_ok {
        return Err((
            403,
            "ip_not_allowed",
            "the client is not allowed from this IP address".into(),
        ));
    }
    if has_profile && !profile_active {
        return Err((
            403,
            "profile_inactive",
            "API access is disabled for this user".into(),
        ));
    }
    if has_profile && !profile_ip_ok {
        return Err((
            403,
            "ip_not_allowed",
            "the user is not allowed from this IP address".into(),
        ));
    }
    Ok(Caller {
        uid,
        client_id: Some(client_id),
        scopes: scopes.iter().filter_map(|s| s.parse().ok()).collect(),
        profile_limit: has_profile.then_some((p_limit, p_window)),
    })
}

fn unverified_jti(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("jti")?.as_str().map(str::to_string)
}

fn api_key_caller(key: &str, ip: Option<&str>) -> Result<Caller, (i32, &'static str, String)> {
    let Some(KeyOwner {
        uid,
        profile,
        is_admin,
    }) = api_key::verify(key, "rpc", ip)
    else {
        return Err((401, "invalid_token", "invalid API key".into()));
    };
    if let Some(p) = &profile {
        if !p.active {
            return Err((
                403,
                "profile_inactive",
                "API access is disabled for this user".into(),
            ));
        }
        if !p.ip_ok {
            return Err((
                403,
                "ip_not_allowed",
                "the user is not allowed from this IP address".into(),
            ));
        }
    }
    let mut scopes = vec![Scope::Read, Scope::Write, Scope::Delete];
    if is_admin {
        scopes.push(Scope::Admin);
    }
    Ok(Caller {
        uid,
        client_id: None,
        scopes,
        profile_limit: profile.map(|p| (p.rate_limit, p.rate_limit_window)),
    })
}

/// `api_gateway.authenticate(authorization text, client_ip inet, method text) RETURNS TABLE(status
/// integer, uid integer, client_id text, scopes text[], error text, rate_limit integer,
/// remaining integer, reset_s integer, detail text)`. Status 200 means pass.
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
    ),
> {
    let ip = client_ip.as_ref().map(|i| i.0.as_str());
    let Some(needed) = method.and_then(gate::required_scope) else {
        return deny(405, "invalid_request", "unsupported HTTP method");
    };
    let credential = match gate::parse_authorization(authorization) {
        Ok(c) => c,
        Err(gate::AuthHeaderError::Missing) => {
            return deny(
                401,
                "missing_credentials",
                "no credentials: send Authorization: Bearer <token or API key>",
            );
        }
        Err(e) => return deny(401, "invalid_request", &e.to_string()),
    };
    let caller = match credential {
        Credential::Jwt(token) => jwt_caller(token, ip),
        Credential::ApiKey(key) => api_key_caller(key, ip),
    };
    let caller = match caller {
        Ok(c) => c,
        Err((status, error, detail)) => return deny(status, error, &detail),
    };
    if !gate::scopes_allow(&caller.scopes, needed) {
        let detail = format!("this request needs the \"{}\" scope", needed.as_str());
        let mut row = deny(403, "insufficient_scope", &detail);
        return TableIterator::once({
            let mut r = row.next().expect("one row");
            r.1 = Some(caller.uid);
            r.2 = caller.client_id;
            r
        });
    }
    let (limit, window) = match caller.profile_limit {
        Some((Some(limit), window)) => (limit, window),
        _ => Spi::connect(|c| {
            let plan = crate::spi::plan(c, GLOBAL_LIMIT, &[], false);
            let t = spi(c.select(plan, Some(1), &[]));
            let r = t.first();
            (
                spi(r.get::<i32>(1)).unwrap_or(60),
                spi(r.get::<String>(2)).unwrap_or_else(|| "minute".into()),
            )
        }),
    };
    let scopes: Vec<String> = caller
        .scopes
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    if limit == 0 {
        // 0 means unlimited: no counter to write.
        return TableIterator::once((
            200,
            Some(caller.uid),
            caller.client_id,
            Some(scopes),
            None,
            None,
            None,
            None,
            None,
        ));
    }
    let window_s = window_seconds(&window).unwrap_or(60);
    let decision = rate_limit::hit(&format!("user:{}", caller.uid), limit, window_s);
    let (status, error, detail) = if decision.allowed {
        (200, None, None)
    } else {
        (
            429,
            Some("rate_limited".to_string()),
            Some(format!(
                "rate limit of {limit} requests per {window} exceeded"
            )),
        )
    };
    TableIterator::once((
        status,
        Some(caller.uid),
        caller.client_id,
        Some(scopes),
        error,
        Some(limit),
        Some(decision.remaining),
        Some(decision.reset_s),
        detail,
    ))
}
