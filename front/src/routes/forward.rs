//! Writes and business methods forwarded to Odoo's JSON-2 API (`--odoo-url`).
//!
//! A forwarded request passes the gate exactly as any other (scope, IP lists, rate limit; the
//! traffic log and metrics see it in the middleware), in one statement that also takes an OAuth2
//! client's upstream Odoo key: one round trip to PostgreSQL before Odoo. Only with an
//! `Idempotency-Key` header come two more on the same connection (the key's state before Odoo,
//! the answer after it). The connection goes back to the pool while Odoo works unless an
//! idempotency key is held. Odoo is called as the caller's Odoo user:
//! * an Odoo API key caller: its own key is forwarded;
//! * an OAuth2 client: the key the extension keeps for it (`api_gateway.upstream_key`).
//!
//! With an `Idempotency-Key` header the first answer is stored per (caller, key) with a
//! fingerprint of the request (`api_gateway.idempotency_*`); docs/http.md says what is
//! guaranteed when the front dies between Odoo's commit and the store.
use crate::AppState;
use crate::db::query_one_on;
use crate::error::{Problem, kind};
use crate::gate::{self, Ctx, Gate};
use crate::odoo::Failure;
use api_gateway_core::gate::{Credential, parse_authorization};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_postgres::types::Type;

/// How the answer is shaped for the client.
#[derive(Debug, Clone)]
pub enum Shape {
    /// `create`: 201, `{"id": N}`, `Location`.
    Created { model: String },
    /// `write`/`unlink`: 204.
    NoContent,
    /// A business method: 200, `{"result": ...}`.
    Result,
}

/// One JSON-2 call.
#[derive(Debug, Clone)]
pub struct Call {
    pub model: String,
    pub method: String,
    /// The JSON-2 body (`vals_list`, `ids`, `vals`, keyword arguments, `context`).
    pub body: Value,
    pub shape: Shape,
}

/// A response in a form that can be stored and replayed.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    body: Option<Value>,
    problem: bool,
    location: Option<String>,
    retry_after: Option<String>,
}

impl Answer {
    fn from_problem(p: &Problem) -> Answer {
        Answer {
            status: p.status,
            body: Some(p.body()),
            problem: true,
            location: None,
            retry_after: p
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }

    fn stored_headers(&self) -> Value {
        let mut h = serde_json::Map::new();
        if let Some(l) = &self.location {
            h.insert("location".into(), json!(l));
        }
        if let Some(r) = &self.retry_after {
            h.insert("retry-after".into(), json!(r));
        }
        if self.problem {
            h.insert("content-type".into(), json!("application/problem+json"));
        }
        Value::Object(h)
    }

    fn from_stored(status: i32, headers: Option<Value>, body: Option<Value>) -> Answer {
        let headers = headers.unwrap_or(Value::Null);
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Answer {
            status: StatusCode::from_u16(status as u16)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: body.filter(|b| !b.is_null()),
            problem: get("content-type").is_some_and(|c| c == "application/problem+json"),
            location: get("location"),
            retry_after: get("retry-after"),
        }
    }

    fn respond(&self, gate: &Gate, replayed: bool) -> Response {
        let mut response = match &self.body {
            Some(b) => (self.status, axum::Json(b.clone())).into_response(),
            None => self.status.into_response(),
        };
        let h = response.headers_mut();
        if self.problem {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
        }
        for (name, value) in [
            (header::LOCATION, &self.location),
            (header::RETRY_AFTER, &self.retry_after),
        ] {
            if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
        }
        if replayed {
            h.insert(
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            );
        }
        h.extend(gate.rate_headers());
        response
    }
}

/// The `Idempotency-Key` header: one value, an sf-string (`"..."`) or a bare token, 1 to 255
/// printable ASCII characters without spaces.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let bad = |detail: &str| {
        Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_INPUT)
            .detail(detail.to_string())
            .member("header", "Idempotency-Key")
    };
    if values.next().is_some() {
        return Err(bad("send one Idempotency-Key header"));
    }
    let raw = first
        .to_str()
        .map_err(|_| bad("the Idempotency-Key is not ASCII"))?
        .trim();
    let key = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if !inner.contains(['"', '\\']) => inner,
        Some(_) => {
            return Err(bad(
                "the Idempotency-Key string has an escape or a quote inside",
            ));
        }
        None => raw,
    };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad(
            "an Idempotency-Key is 1 to 255 printable ASCII characters without spaces, e.g. \"8e03978e-40d5-43e8-bc93-6894a57f9324\"",
        ));
    }
    Ok(Some(key.to_string()))
}

/// The gate of a forwarded call, one statement. For an OAuth2 client (a JWT) it also takes the
/// client's upstream Odoo key, only on a pass: one round trip instead of two. An Odoo API key
/// caller forwards its own key, so its gate stays the plain `authenticate` (every function named
/// in a statement costs planning time in PostgreSQL, on every request). Same columns in both.
const GATE_API_KEY: &str = "SELECT a.status, a.uid, a.client_id, a.scopes, a.error, a.rate_limit, a.remaining, a.reset_s, a.detail, a.window_s, \
            NULL::text \
       FROM api_gateway.authenticate($1::text, $2::inet, $3::text) AS a";
const GATE_CLIENT: &str = "SELECT a.status, a.uid, a.client_id, a.scopes, a.error, a.rate_limit, a.remaining, a.reset_s, a.detail, a.window_s, \
            CASE WHEN a.status = 200 AND a.client_id IS NOT NULL THEN api_gateway.upstream_key(a.client_id) END \
       FROM api_gateway.authenticate($1::text, $2::inet, $3::text) AS a";

/// Who the idempotency key belongs to.
fn caller(gate: &Gate) -> String {
    match &gate.client_id {
        Some(c) => format!("client:{c}"),
        None => format!("user:{}", gate.uid.unwrap_or(0)),
    }
}

/// SHA-256 of everything that makes the request what it is: HTTP method, target and the JSON-2
/// body (as sent).
fn fingerprint(ctx: &Ctx, call: &Call, body: &str) -> String {
    api_gateway_core::secrets::sha256_hex(&format!(
        "{} {}/{}\n{}",
        ctx.method_name(),
        call.model,
        call.method,
        body
    ))
}

/// The key Odoo gets: the caller's own API key, or the OAuth2 client's upstream key (taken by the
/// gate's statement; read here only if that statement did not, e.g. a client credential that
/// did not look like a JWT).
async fn upstream_credential(
    state: &AppState,
    ctx: &Ctx,
    gate: &Gate,
    conn: &deadpool_postgres::Client,
    taken: Option<String>,
) -> Result<String, Problem> {
    if let Some(client_id) = &gate.client_id {
        if let Some(key) = taken {
            return Ok(key);
        }
        let row = query_one_on(
            conn,
            state.config.statement_timeout,
            "SELECT api_gateway.upstream_key($1::text)",
            &[(client_id, Type::TEXT)],
        )
        .await?;
        return match row.try_get::<_, Option<String>>(0) {
            Ok(Some(key)) => Ok(key),
            _ => {
                tracing::error!("no upstream key for client {client_id}");
                Err(Problem::internal())
            }
        };
    }
    match parse_authorization(ctx.authorization.as_deref()) {
        Ok(Credential::ApiKey(key)) => Ok(key.to_string()),
        _ => {
            tracing::error!("a gate pass without a client has no API key to forward");
            Err(Problem::internal())
        }
    }
}

/// The key Odoo gets for a caller that passed the gate, outside a forwarded write: a pooled
/// connection is taken only for an OAuth2 client (its upstream key).
pub async fn caller_credential(
    state: &AppState,
    ctx: &Ctx,
    gate: &Gate,
) -> Result<String, Problem> {
    if gate.client_id.is_none() {
        return match parse_authorization(ctx.authorization.as_deref()) {
            Ok(Credential::ApiKey(key)) => Ok(key.to_string()),
            _ => {
                tracing::error!("a gate pass without a client has no API key to forward");
                Err(Problem::internal())
            }
        };
    }
    let conn = state.pool.get().await?;
    upstream_credential(state, ctx, gate, &conn, None).await
}

/// A held idempotency key: whose, which, and the request's fingerprint.
struct Held {
    caller: String,
    key: String,
    print: String,
}

/// Gate (with the upstream key), idempotency, Odoo, answer.
pub async fn forward(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    call: Call,
) -> Result<Response, Problem> {
    let Some(upstream) = state.odoo.clone() else {
        return Err(Problem::internal());
    };
    let key = idempotency_key(headers)?;
    // The JSON-2 body is serialised once: the fingerprint and Odoo get the same bytes.
    let body = call.body.to_string();
    let sql = match parse_authorization(ctx.authorization.as_deref()) {
        Ok(Credential::Jwt(_)) => GATE_CLIENT,
        _ => GATE_API_KEY,
    };
    let (passed, conn) = gate::pass(state, ctx, sql, &[]).await?;
    let gate = &passed.gate;
    let taken: Option<String> = passed.col(0)?;
    // The idempotency key's state, only when the request has one (its own short transaction:
    // as a part of the gate's statement it costs more than the round trip it saves).
    let timeout = state.config.statement_timeout;
    let held = match key {
        None => None,
        Some(key) => {
            let caller = caller(gate);
            let print = fingerprint(ctx, &call, &body);
            let lease_s = (upstream.timeout.as_secs() + 30).min(i32::MAX as u64) as i32;
            let row = query_one_on(
                &conn,
                timeout,
                "SELECT outcome, status, headers, body FROM api_gateway.idempotency_begin($1::text, $2::text, $3::text, $4::int)",
                &[
                    (&caller, Type::TEXT),
                    (&key, Type::TEXT),
                    (&print, Type::TEXT),
                    (&lease_s, Type::INT4),
                ],
            )
            .await
            .map_err(|p| gate.with_headers(p))?;
            let outcome: String = row.try_get(0).unwrap_or_default();
            match outcome.as_str() {
                "new" => Some(Held { caller, key, print }),
                "replay" => {
                    let status: Option<i32> = row.try_get(1).unwrap_or(None);
                    let answer = Answer::from_stored(
                        status.unwrap_or(500),
                        row.try_get(2).unwrap_or(None),
                        row.try_get(3).unwrap_or(None),
                    );
                    return Ok(answer.respond(gate, true));
                }
                "mismatch" => {
                    return Err(gate.with_headers(
                        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind::IDEMPOTENCY_MISMATCH)
                            .detail("this Idempotency-Key was already used for a different request (method, target or body); use a new key for a new request"),
                    ));
                }
                _ => {
                    return Err(gate.with_headers(
                        Problem::new(StatusCode::CONFLICT, kind::IDEMPOTENCY_IN_FLIGHT)
                            .detail("the first request with this Idempotency-Key is still being processed; retry after it has been answered")
                            .header(header::RETRY_AFTER, "1"),
                    ));
                }
            }
        }
    };
    let credential = match upstream_credential(state, ctx, gate, &conn, taken).await {
        Ok(c) => c,
        Err(p) => {
            if let Some(held) = &held {
                release(state, &conn, held).await;
            }
            return Err(gate.with_headers(p));
        }
    };
    // Without an idempotency key the connection goes back to the pool while Odoo works; with
    // one it is kept, so the answer is stored the moment it arrives (no wait for the pool).
    let conn = if held.is_some() {
        Some(conn)
    } else {
        drop(conn);
        None
    };
    let result = upstream
        .call(&credential, &call.model, &call.method, body)
        .await;
    drop(credential);
    let answer = match result {
        Ok(value) => shape(&call, value),
        Err((problem, failure)) => {
            if let (Some(Failure::Unreachable), Some(held), Some(conn)) = (failure, &held, &conn) {
                // Nothing reached Odoo: a retry with the same key must run again.
                release(state, conn, held).await;
                return Err(gate.with_headers(problem));
            }
            Answer::from_problem(&problem)
        }
    };
    if let (Some(held), Some(conn)) = (&held, &conn) {
        let status = answer.status.as_u16() as i32;
        let stored = query_one_on(
            conn,
            timeout,
            "SELECT api_gateway.idempotency_finish($1::text, $2::text, $3::text, $4::int, $5::jsonb, $6::jsonb)",
            &[
                (&held.caller, Type::TEXT),
                (&held.key, Type::TEXT),
                (&held.print, Type::TEXT),
                (&status, Type::INT4),
                (&answer.stored_headers(), Type::JSONB),
                (&answer.body, Type::JSONB),
            ],
        )
        .await;
        if let Err(p) = stored {
            tracing::error!(
                "the answer for idempotency key of {} could not be stored ({}); a retry after the lease may run again",
                held.caller,
                p.status
            );
        }
    }
    Ok(answer.respond(gate, false))
}

async fn release(state: &AppState, conn: &deadpool_postgres::Client, held: &Held) {
    let released = query_one_on(
        conn,
        state.config.statement_timeout,
        "SELECT api_gateway.idempotency_release($1::text, $2::text, $3::text)",
        &[
            (&held.caller, Type::TEXT),
            (&held.key, Type::TEXT),
            (&held.print, Type::TEXT),
        ],
    )
    .await;
    if released.is_err() {
        tracing::warn!(
            "an idempotency key of {} could not be released; it is freed when its lease ends",
            held.caller
        );
    }
}

/// Odoo's result in the route's shape.
fn shape(call: &Call, value: Value) -> Answer {
    let ok = |status, body| Answer {
        status,
        body,
        problem: false,
        location: None,
        retry_after: None,
    };
    match &call.shape {
        Shape::Created { model } => {
            match value
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_i64)
            {
                Some(id) => Answer {
                    location: Some(format!("/api/v1/{model}/{id}")),
                    ..ok(StatusCode::CREATED, Some(json!({"id": id})))
                },
                None => {
                    tracing::error!(
                        "Odoo's {model}.create answered {} instead of [id]",
                        crate::error::truncate(&value.to_string(), 120)
                    );
                    Answer::from_problem(
                        &Problem::new(StatusCode::BAD_GATEWAY, kind::UPSTREAM_ERROR)
                            .detail("Odoo's create did not answer with the new record's id"),
                    )
                }
            }
        }
        Shape::NoContent => ok(StatusCode::NO_CONTENT, None),
        Shape::Result => ok(StatusCode::OK, Some(json!({"result": value}))),
    }
}

/// The JSON-2 body of a business method call: the request's keyword arguments (and `context`),
/// plus `ids` for a record method.
pub fn method_body(mut kwargs: Value, id: Option<i32>) -> Result<Value, Problem> {
    let bad = |detail: &str| {
        Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_BODY).detail(detail.to_string())
    };
    let Some(obj) = kwargs.as_object_mut() else {
        return Err(bad("the body is a JSON object of keyword arguments"));
    };
    if obj.contains_key("ids") {
        return Err(bad(
            "\"ids\" is not an argument: the record comes from the path (/api/v1/<model>/<id>/call/<method>)",
        ));
    }
    if let Some(ctx) = obj.get("context")
        && !ctx.is_object()
    {
        return Err(bad("\"context\" must be a JSON object"));
    }
    if let Some(id) = id {
        obj.insert("ids".into(), json!([id]));
    }
    Ok(kwargs)
}

/// 501 for a method call without `--odoo-url`.
pub fn methods_need_odoo() -> Problem {
    Problem::new(StatusCode::NOT_IMPLEMENTED, kind::NOT_IMPLEMENTED).detail(
        "business methods run in Odoo: start api-gateway serve with --odoo-url to call them",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(values: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append("idempotency-key", HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn idempotency_keys_are_parsed() {
        assert_eq!(idempotency_key(&h(&[])).unwrap(), None);
        assert_eq!(
            idempotency_key(&h(&["\"abc-1\""])).unwrap().as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            idempotency_key(&h(&["abc-1"])).unwrap().as_deref(),
            Some("abc-1")
        );
        for bad in ["\"\"", "a b", "\"a\\\"b\""] {
            assert!(idempotency_key(&h(&[bad])).is_err(), "{bad}");
        }
        assert!(idempotency_key(&h(&[&"x".repeat(256)])).is_err());
        assert!(idempotency_key(&h(&["a", "b"])).is_err());
    }

    #[test]
    fn method_bodies() {
        assert_eq!(
            method_body(json!({"a": 1}), Some(7)).unwrap(),
            json!({"a": 1, "ids": [7]})
        );
        assert_eq!(method_body(json!({}), None).unwrap(), json!({}));
        assert!(method_body(json!({"ids": [1]}), None).is_err());
        assert!(method_body(json!({"context": 1}), None).is_err());
        assert!(method_body(json!([1]), None).is_err());
    }

    #[test]
    fn stored_answers_replay_the_same() {
        let a = Answer {
            status: StatusCode::CREATED,
            body: Some(json!({"id": 5})),
            problem: false,
            location: Some("/api/v1/x/5".into()),
            retry_after: None,
        };
        let b = Answer::from_stored(201, Some(a.stored_headers()), a.body.clone());
        assert_eq!(b.status, a.status);
        assert_eq!(b.body, a.body);
        assert_eq!(b.location, a.location);
        assert!(!b.problem);
    }
}
