//! OAuth2 endpoints: `POST /api/oauth/token` (RFC 6749 §4.4 client credentials, HTTP Basic or
//! body credentials), `/api/oauth/revoke` (RFC 7009) and `/api/oauth/introspect` (RFC 7662).
//! Bodies are `application/x-www-form-urlencoded`; answers are RFC 6749 JSON with
//! `Cache-Control: no-store`, never problem+json.
use super::query;
use crate::error::oauth_description;
use crate::gate::{Ctx, REALM};
use crate::{AppState, body, db};
use api_gateway_core::gate::Denial;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tokio_postgres::types::Type;

const ISSUE: &str =
    "SELECT status, body FROM api_gateway.issue_token($1::text, $2::text, $3::text, $4::inet)";
/// Revocation without client authentication (holding the token is enough).
const REVOKE: &str = "SELECT api_gateway.revoke_token($1::text)";
/// Client authentication (the token endpoint's secret check, in the database) and, when it
/// passes, revocation of one of that client's tokens (NULL: the token is another client's).
const REVOKE_AS_CLIENT: &str = "WITH c AS MATERIALIZED (SELECT api_gateway.oauth_client_check($1::text, $2::text, $3::inet) AS ok) \
     SELECT c.ok, CASE WHEN c.ok THEN api_gateway.revoke_token_as_client($4::text, $1::text) END FROM c";
/// Client authentication and, when it passes, introspection.
const INTROSPECT_AS_CLIENT: &str = "WITH c AS MATERIALIZED (SELECT api_gateway.oauth_client_check($1::text, $2::text, $3::inet) AS ok) \
     SELECT c.ok, CASE WHEN c.ok THEN api_gateway.introspect_token($4::text) END FROM c";
const INTROSPECT: &str = "SELECT api_gateway.introspect_token($1::text)";

/// An OAuth2 JSON answer with the no-store headers.
fn answer(status: StatusCode, body: Option<Value>) -> Response {
    let mut r = match body {
        Some(b) => (status, axum::Json(b)).into_response(),
        None => status.into_response(),
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = answer(
        status,
        Some(json!({"error": error, "error_description": oauth_description(description)})),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""))
                .expect("static header"),
        );
    }
    r
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    )
}

/// A parsed form body; repeated parameters are refused (RFC 6749 §3.1).
async fn form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<BTreeMap<String, String>, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = body::read_limited(headers, body, state.config.body_limit.min(64 * 1024))
        .await
        .map_err(|p| {
            oauth_error(
                p.status,
                "invalid_request",
                p.detail.as_deref().unwrap_or(""),
            )
        })?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| invalid_request("the body is not valid UTF-8"))?;
    query::decode_pairs(text).map_err(|e| match e {
        query::FormError::Encoding { .. } => invalid_request("bad percent-encoding"),
        query::FormError::Repeated(k) => {
            invalid_request(&format!("the parameter {k} is given more than once"))
        }
    })
}

/// Client credentials from HTTP Basic (client_secret_basic) or the body (client_secret_post).
enum ClientAuth {
    None,
    Basic(String, String),
    Body(String, String),
}

fn client_auth(
    headers: &HeaderMap,
    form: &BTreeMap<String, String>,
) -> Result<ClientAuth, Response> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let in_body = form.contains_key("client_id") || form.contains_key("client_secret");
    let basic = header.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
        scheme.eq_ignore_ascii_case("basic").then_some(rest)
    });
    match basic {
        Some(rest) => {
            if in_body {
                return Err(invalid_request(
                    "use one client authentication method: HTTP Basic or the body, not both",
                ));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(invalid_client());
            };
            match (query::decode(id).ok(), query::decode(secret).ok()) {
                (Some(id), Some(secret)) => Ok(ClientAuth::Basic(id, secret)),
                _ => Err(invalid_client()),
            }
        }
        None if in_body => Ok(ClientAuth::Body(
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        )),
        None => Ok(ClientAuth::None),
    }
}

/// Every OAuth2 endpoint's start: the form body, then the client's credentials in it or in
/// `Authorization: Basic`.
async fn form_and_client(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(BTreeMap<String, String>, ClientAuth), Response> {
    let form = form(state, headers, body).await?;
    let auth = client_auth(headers, &form)?;
    Ok((form, auth))
}

fn plausible(id: &str, secret: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && !secret.is_empty() && secret.len() <= 256
}

/// `POST /api/oauth/token`: `grant_type=client_credentials[&scope=read write]`.
pub async fn token(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (form, auth) = match form_and_client(&state, &headers, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match form.get("grant_type").map(String::as_str) {
        None | Some("") => return invalid_request("grant_type is required"),
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            );
        }
    }
    let (id, secret) = match auth {
        ClientAuth::Basic(id, secret) | ClientAuth::Body(id, secret) => (id, secret),
        ClientAuth::None => return invalid_client(),
    };
    if !plausible(&id, &secret) {
        return invalid_client();
    }
    crate::obs::note_client(&id);
    let scope = form
        .get("scope")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let row = db::query_one(
        &state.pool,
        state.config.statement_timeout,
        ISSUE,
        &[
            (&id, Type::TEXT),
            (&secret, Type::TEXT),
            (&scope, Type::TEXT),
            (&ctx.ip, Type::INET),
        ],
    )
    .await;
    match row {
        Ok(row) => {
            let status: i32 = row.get(0);
            let body: Value = row.get(1);
            let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::BAD_REQUEST);
            let mut r = answer(status, Some(body));
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""))
                        .expect("static header"),
                );
            }
            r
        }
        Err(p) => server_error(p),
    }
}

/// A database failure on an OAuth endpoint: RFC 6749 `server_error`/`temporarily_unavailable`.
fn server_error(p: crate::error::Problem) -> Response {
    if p.status == StatusCode::SERVICE_UNAVAILABLE || p.status == StatusCode::GATEWAY_TIMEOUT {
        oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the authorization server is unavailable; retry later",
        )
    } else if p.status.is_client_error() {
        invalid_request(p.detail.as_deref().unwrap_or("invalid request"))
    } else {
        oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the authorization server failed",
        )
    }
}

/// `POST /api/oauth/revoke` (RFC 7009): `token=...`; 200 whether or not the token was live.
/// Client authentication is optional (holding a token is enough to revoke it); when given it
/// must be valid, and a client may only revoke its own tokens.
pub async fn revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (form, auth) = match form_and_client(&state, &headers, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return invalid_request("token is required");
    };
    // Longer than any token of ours: nothing to revoke (the client is still authenticated).
    let token = if token.len() > 8192 {
        ""
    } else {
        token.as_str()
    };
    match auth {
        ClientAuth::None => {
            match db::query_one(
                &state.pool,
                state.config.statement_timeout,
                REVOKE,
                &[(&token, Type::TEXT)],
            )
            .await
            {
                Ok(_) => answer(StatusCode::OK, None),
                Err(p) => server_error(p),
            }
        }
        ClientAuth::Basic(id, secret) | ClientAuth::Body(id, secret) => {
            if !plausible(&id, &secret) {
                return invalid_client();
            }
            match db::query_one(
                &state.pool,
                state.config.statement_timeout,
                REVOKE_AS_CLIENT,
                &[
                    (&id, Type::TEXT),
                    (&secret, Type::TEXT),
                    (&ctx.ip, Type::INET),
                    (&token, Type::TEXT),
                ],
            )
            .await
            {
                Ok(row) if !row.get::<_, bool>(0) => invalid_client(),
                Ok(row) => match row.get::<_, Option<bool>>(1) {
                    Some(_) => answer(StatusCode::OK, None),
                    None => oauth_error(
                        StatusCode::BAD_REQUEST,
                        "unauthorized_client",
                        "the token was issued to another client",
                    ),
                },
                Err(p) => server_error(p),
            }
        }
    }
}

/// `POST /api/oauth/introspect` (RFC 7662): `token=...`. The caller authenticates with client
/// credentials (Basic or body) or a bearer token of any scope.
pub async fn introspect(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (form, auth) = match form_and_client(&state, &headers, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let token = form.get("token").cloned().unwrap_or_default();
    if token.is_empty() {
        return invalid_request("token is required");
    }
    let token = if token.len() > 8192 {
        String::new()
    } else {
        token
    };
    match auth {
        ClientAuth::Basic(id, secret) | ClientAuth::Body(id, secret) => {
            if !plausible(&id, &secret) {
                return invalid_client();
            }
            let row = db::query_one(
                &state.pool,
                state.config.statement_timeout,
                INTROSPECT_AS_CLIENT,
                &[
                    (&id, Type::TEXT),
                    (&secret, Type::TEXT),
                    (&ctx.ip, Type::INET),
                    (&token, Type::TEXT),
                ],
            )
            .await;
            match row {
                Ok(row) if row.get::<_, bool>(0) => {
                    let body: Option<Value> = row.get(1);
                    answer(
                        StatusCode::OK,
                        Some(body.unwrap_or(json!({"active": false}))),
                    )
                }
                Ok(_) => invalid_client(),
                Err(p) => server_error(p),
            }
        }
        ClientAuth::None => {
            let bearer = ctx.authorization.as_deref().is_some_and(|a| {
                a.trim().len() > 7 && a.trim()[..7].eq_ignore_ascii_case("bearer ")
            });
            if !bearer {
                let mut r = oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "authenticate with client credentials or a bearer token",
                );
                r.headers_mut().append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&format!("Bearer realm=\"{REALM}\"")).expect("static"),
                );
                return r;
            }
            let timeout = state.config.statement_timeout;
            let client = match state.pool.get().await {
                Ok(c) => c,
                Err(e) => return server_error(e.into()),
            };
            // Any scope will do: authenticate as for a read, and accept insufficient_scope.
            let mut as_read = ctx.clone();
            as_read.method = axum::http::Method::GET;
            let gate = match crate::gate::authenticate_on(&client, timeout, &as_read).await {
                Ok(g) => g,
                Err(p) => return server_error(p),
            };
            let authenticated =
                gate.passed() || gate.denial_reason() == Some(Denial::InsufficientScope);
            let mut body = None;
            if authenticated {
                match db::query_one_on(&client, timeout, INTROSPECT, &[(&token, Type::TEXT)]).await
                {
                    Ok(row) => body = row.get::<_, Option<Value>>(0),
                    Err(p) => return server_error(p),
                }
            }
            let mut r = match (gate.status, gate.denial_reason()) {
                (200, _) | (_, Some(Denial::InsufficientScope)) => answer(
                    StatusCode::OK,
                    Some(body.unwrap_or(json!({"active": false}))),
                ),
                (_, Some(Denial::RateLimited)) => {
                    let mut r = oauth_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        Denial::RateLimited.code(),
                        gate.detail.as_deref().unwrap_or("rate limit exceeded"),
                    );
                    let retry = gate.reset_s.unwrap_or(1).max(1).to_string();
                    if let Ok(v) = HeaderValue::from_str(&retry) {
                        r.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    r
                }
                (status, reason) => {
                    let p = gate.denial("GET");
                    let code = match reason {
                        Some(d @ (Denial::InvalidRequest | Denial::MethodNotAllowed)) => d.code(),
                        Some(Denial::IpNotAllowed | Denial::ProfileInactive) => "access_denied",
                        _ => Denial::InvalidToken.code(),
                    };
                    let status =
                        StatusCode::from_u16(status as u16).unwrap_or(StatusCode::UNAUTHORIZED);
                    let mut r = answer(
                        status,
                        Some(json!({"error": code, "error_description":
                            oauth_description(gate.detail.as_deref().unwrap_or(""))})),
                    );
                    if let Some(v) = p.headers.get(header::WWW_AUTHENTICATE) {
                        r.headers_mut().insert(header::WWW_AUTHENTICATE, v.clone());
                    }
                    r
                }
            };
            r.headers_mut().extend(gate.rate_headers());
            r
        }
    }
}
