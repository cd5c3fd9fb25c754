//! `jwt_sign` / `jwt_verify`: HS256/384/512 JSON Web Tokens for SQL callers.
use crate::error::raise;
use api_gateway_core::jwt::{self, Algorithm};
use pgrx::prelude::*;

pub fn algorithm(alg: &str) -> Algorithm {
    alg.parse().unwrap_or_else(|_| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "unsupported JWT algorithm \"{}\": use HS256, HS384 or HS512",
                truncate(alg, 32)
            ),
            None,
        )
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn require<T>(value: Option<T>, what: &str) -> T {
    value.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
            None,
        )
    })
}

/// `api_gateway.jwt_sign(claims jsonb, secret text, alg text DEFAULT 'HS256') RETURNS text`
#[pg_extern(immutable, parallel_safe)]
fn jwt_sign(
    claims: Option<pgrx::JsonB>,
    secret: Option<&str>,
    alg: default!(Option<&str>, "'HS256'"),
) -> String {
    let claims = require(claims, "claims");
    let secret = require(secret, "secret");
    let alg = algorithm(require(alg, "alg"));
    jwt::sign(&claims.0, secret.as_bytes(), alg, None, None).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("cannot sign: {e}"),
            None,
        )
    })
}

/// `api_gateway.jwt_verify(token text, secret text, alg text DEFAULT 'HS256', leeway_s integer DEFAULT 30) RETURNS jsonb`
/// Every rejection raises SQLSTATE 28000 naming the reason. Only `alg` is trusted, never the header.
/// The claims go to jsonb straight from the signed payload text (jsonb_in): no object is built
/// in Rust and serialised again.
#[pg_extern(stable, parallel_safe)]
fn jwt_verify(
    token: Option<&str>,
    secret: Option<&str>,
    alg: default!(Option<&str>, "'HS256'"),
    leeway_s: default!(Option<i32>, 30),
) -> crate::spi::RawJsonb {
    let alg = algorithm(require(alg, "alg"));
    let secret = require(secret, "secret");
    let token = token.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            "invalid token: token is NULL",
            None,
        )
    });
    let leeway = i64::from(leeway_s.unwrap_or(30).max(0));
    match jwt::verify_payload(token, secret.as_bytes(), alg, now_unix(), leeway) {
        Ok(payload) => crate::spi::RawJsonb::from_json_text(payload),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("invalid token: {e}"),
            None,
        ),
    }
}
