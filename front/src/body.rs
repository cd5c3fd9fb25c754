//! Request bodies: JSON only (415 otherwise), at most the body limit (413), parsed with the error
//! position (400 `invalid-json` with `line`/`column`), nesting bounded by serde_json's limit.
use crate::error::{Problem, kind};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// Read the whole body, refusing more than `limit` bytes.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, Problem> {
    let too_large = || {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, kind::PAYLOAD_TOO_LARGE)
            .detail(format!("the request body is larger than {limit} bytes"))
            .member("limit", limit)
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if err.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large());
                }
                if let Some(t) = err.downcast_ref::<crate::server::BodyTimeout>() {
                    return Err(
                        Problem::new(StatusCode::REQUEST_TIMEOUT, kind::REQUEST_TIMEOUT)
                            .detail(t.to_string())
                            .header(header::CONNECTION, "close"),
                    );
                }
                source = err.source();
            }
            Err(Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_BODY)
                .detail("the request body could not be read"))
        }
    }
}

/// Whether the Content-Type is JSON (`application/json` or `application/*+json`, UTF-8).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let charset_ok = parts.all(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        !k.trim().eq_ignore_ascii_case("charset")
            || v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    json && charset_ok
}

/// A JSON object body for create/write.
pub async fn json_object(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, Problem> {
    if !is_json(headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            kind::UNSUPPORTED_MEDIA_TYPE,
        )
        .detail("send the body as JSON: Content-Type: application/json (UTF-8)")
        .header(header::ACCEPT, "application/json"));
    }
    let bytes = read_limited(headers, body, limit).await?;
    let value = parse(&bytes)?;
    if !value.is_object() {
        return Err(Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_BODY)
            .detail("the body must be a JSON object of field values, e.g. {\"name\": \"Ada\"}"));
    }
    check_numbers(&value)?;
    Ok(value)
}

/// Parse JSON; errors carry the line and column.
pub fn parse(bytes: &[u8]) -> Result<Value, Problem> {
    if std::str::from_utf8(bytes).is_err() {
        let at = std::str::from_utf8(bytes)
            .err()
            .map(|e| e.valid_up_to())
            .unwrap_or(0);
        let (line, column) = position(&bytes[..at]);
        return Err(Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_JSON)
            .detail(format!(
                "the body is not valid UTF-8 at line {line} column {column}"
            ))
            .member("line", line)
            .member("column", column));
    }
    serde_json::from_slice::<Value>(bytes).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_JSON)
            .detail(format!("malformed JSON: {e}"))
            .member("line", e.line())
            .member("column", e.column())
    })
}

/// Numbers must stay well inside the double range: the database turns JSON numbers into
/// `numeric` and back, and a value next to f64::MAX does not survive the trip.
pub const MAX_NUMBER: f64 = 1e300;

fn check_numbers(v: &Value) -> Result<(), Problem> {
    match v {
        Value::Number(n) if n.as_f64().is_some_and(|f| f.abs() > MAX_NUMBER) => {
            Err(
                Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_BODY).detail(format!(
                    "the number {n} is out of range (at most 1e300 in magnitude)"
                )),
            )
        }
        Value::Array(a) => a.iter().try_for_each(check_numbers),
        Value::Object(o) => o.values().try_for_each(check_numbers),
        _ => Ok(()),
    }
}

fn position(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = prefix.len()
        - prefix
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON;charset=\"UTF-8\"", true),
            ("application/merge-patch+json", true),
            ("application/json; charset=latin1", false),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }

    #[test]
    fn huge_numbers_are_refused() {
        assert!(
            check_numbers(&serde_json::json!({"a": [1, {"b": 1.7976931348623157e308}]})).is_err()
        );
        assert!(check_numbers(&serde_json::json!({"a": -1e301})).is_err());
        assert!(
            check_numbers(&serde_json::json!({"a": 1e299, "b": 12345678901234567890u64})).is_ok()
        );
    }

    #[test]
    fn parse_errors_have_positions() {
        let e = parse(b"{\n  \"a\": 1,\n  \"b\": }").unwrap_err();
        assert_eq!(e.extra["line"], 3);
        assert_eq!(e.extra["column"], 8);
        let e = parse(b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!(e.extra["line"], 1);
        assert_eq!(e.extra["column"], 8);
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.detail.unwrap().contains("recursion limit"));
    }
}
