//! Conditional requests (RFC 9110 §13) on records and lists: strong `ETag`s on reads,
//! `If-None-Match` → 304, `If-Match` → 412. The tags and comparisons are `api_gateway_core::etag`;
//! the row version a record tag carries is checked by the database, on the row locked for the
//! write (`write_if_match`/`unlink_if_match`).
use crate::error::{Problem, kind};
use crate::gate::Gate;
use api_gateway_core::etag::{self, Condition};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The parsed value of a conditional header (None when absent). Several field lines are one
/// list (RFC 9110 §5.3).
pub fn condition(headers: &HeaderMap, name: HeaderName) -> Result<Option<Condition>, Problem> {
    let mut lines = vec![];
    for v in headers.get_all(&name) {
        let v = v.to_str().map_err(|_| invalid(&name, "not ASCII"))?;
        lines.push(v.to_string());
    }
    if lines.is_empty() {
        return Ok(None);
    }
    etag::parse(&lines.join(","))
        .map(Some)
        .map_err(|e| invalid(&name, &e.to_string()))
}

fn invalid(name: &HeaderName, why: &str) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_PRECONDITION)
        .detail(format!("{name}: {why}"))
        .member("header", name.as_str())
}

/// The row versions `If-Match` allows a write from: None without the header or with `*` (the
/// record must merely exist, as without it).
pub fn if_match(headers: &HeaderMap) -> Result<Option<Vec<String>>, Problem> {
    Ok(condition(headers, header::IF_MATCH)?
        .as_ref()
        .and_then(etag::match_versions))
}

/// 412 for a write whose `If-Match` no longer holds.
pub fn precondition_failed(model: &str, id: i32) -> Problem {
    Problem::new(StatusCode::PRECONDITION_FAILED, kind::PRECONDITION_FAILED).detail(format!(
        "{model} {id} changed since the entity-tag in If-Match was issued; read it again"
    ))
}

/// 200 with the JSON body and its strong `ETag` (a record's carries `version`), or 304 without a
/// body when `If-None-Match` matches it.
pub fn respond(
    g: &Gate,
    headers: &HeaderMap,
    body: &Value,
    version: Option<&str>,
) -> Result<Response, Problem> {
    let bytes = serde_json::to_vec(body).map_err(|_| g.with_headers(Problem::internal()))?;
    respond_bytes(g, headers, bytes, version)
}

/// `respond` for a body already serialised (JSON text).
pub fn respond_bytes(
    g: &Gate,
    headers: &HeaderMap,
    bytes: Vec<u8>,
    version: Option<&str>,
) -> Result<Response, Problem> {
    let cond = condition(headers, header::IF_NONE_MATCH).map_err(|p| g.with_headers(p))?;
    let tag = match version {
        Some(v) => etag::record_tag(v, &bytes),
        None => etag::list_tag(&bytes),
    };
    let not_modified = cond
        .as_ref()
        .is_some_and(|c| etag::none_match_fails(c, &tag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response()
    };
    response.headers_mut().extend(g.rate_headers());
    if let Ok(v) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}
