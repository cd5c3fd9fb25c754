//! One error type for every REST handler, rendered as an RFC 9457 `application/problem+json` body
//! with a stable `type`/`title` per kind, plus `sqlstate` when the database raised it.
//! SQLSTATEs map to HTTP statuses through one fixed table (`status_for_sqlstate`, documented in
//! docs/http.md); 5xx bodies never carry SQL text or database messages.
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Base of the problem `type` URIs; the kinds are listed in docs/http.md.
pub const PROBLEM_BASE: &str = "https://api-gateway.dev/problems/";
/// The IANA-registered type for quota exhaustion (draft-ietf-httpapi-ratelimit-headers).
pub const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";

/// The kinds of problem: (kind, title). `kind` is the last segment of `type`.
pub mod kind {
    pub const UNAUTHORIZED: (&str, &str) = ("unauthorized", "Authentication required");
    pub const INVALID_TOKEN: (&str, &str) = ("invalid-token", "Invalid credentials");
    pub const INVALID_AUTHORIZATION: (&str, &str) =
        ("invalid-authorization", "Malformed Authorization header");
    pub const INSUFFICIENT_SCOPE: (&str, &str) = ("insufficient-scope", "Insufficient scope");
    pub const IP_NOT_ALLOWED: (&str, &str) = ("ip-not-allowed", "Client IP address not allowed");
    pub const PROFILE_INACTIVE: (&str, &str) = ("profile-inactive", "API access disabled");
    pub const RATE_LIMITED: (&str, &str) = ("quota-exceeded", "Too Many Requests");
    pub const AUTH_FAILURES: (&str, &str) =
        ("too-many-auth-failures", "Too many failed authentications");
    pub const FORBIDDEN: (&str, &str) = ("forbidden", "Access denied");
    pub const NOT_FOUND: (&str, &str) = ("not-found", "Not Found");
    pub const UNKNOWN_MODEL: (&str, &str) = ("unknown-model", "Unknown model");
    pub const METHOD_NOT_ALLOWED: (&str, &str) = ("method-not-allowed", "Method Not Allowed");
    pub const INVALID_PARAMETER: (&str, &str) = ("invalid-parameter", "Invalid query parameter");
    pub const INVALID_JSON: (&str, &str) = ("invalid-json", "Malformed JSON");
    pub const INVALID_BODY: (&str, &str) = ("invalid-body", "Invalid request body");
    pub const UNSUPPORTED_MEDIA_TYPE: (&str, &str) =
        ("unsupported-media-type", "Unsupported Media Type");
    pub const PAYLOAD_TOO_LARGE: (&str, &str) = ("payload-too-large", "Content Too Large");
    pub const REQUEST_TIMEOUT: (&str, &str) = ("request-timeout", "Request Timeout");
    pub const INVALID_INPUT: (&str, &str) = ("invalid-input", "Invalid input");
    pub const CONFLICT: (&str, &str) = ("conflict", "Conflict");
    /// A feature the DBA enables per model (the change feed) is off for this one.
    pub const NOT_ENABLED: (&str, &str) = ("not-enabled", "Not enabled for this model");
    /// A change feed cursor older than the feed's retention (or than its last enabling).
    pub const CURSOR_EXPIRED: (&str, &str) = ("cursor-expired", "Cursor expired");
    pub const PRECONDITION_FAILED: (&str, &str) = ("precondition-failed", "Precondition Failed");
    pub const INVALID_PRECONDITION: (&str, &str) =
        ("invalid-precondition", "Malformed conditional header");
    pub const CONSTRAINT_VIOLATION: (&str, &str) = ("constraint-violation", "Constraint violated");
    pub const TIMEOUT: (&str, &str) = ("timeout", "Request timed out");
    pub const UNAVAILABLE: (&str, &str) = ("unavailable", "Database unavailable");
    pub const INTERNAL: (&str, &str) = ("internal", "Internal error");
    /// Odoo refused the call (UserError, ValidationError): its message is the detail.
    pub const ODOO_REFUSED: (&str, &str) = ("odoo-refused", "Refused by Odoo");
    pub const UPSTREAM_ERROR: (&str, &str) = ("upstream-error", "Bad answer from Odoo");
    pub const UPSTREAM_UNAVAILABLE: (&str, &str) = ("upstream-unavailable", "Odoo unavailable");
    pub const UPSTREAM_TIMEOUT: (&str, &str) = ("upstream-timeout", "Odoo did not answer in time");
    pub const NOT_IMPLEMENTED: (&str, &str) = ("not-implemented", "Not implemented");
    pub const SQL_WRITE_REFUSED: (&str, &str) = (
        "writes-through-odoo",
        "Writes to this model go through Odoo",
    );
    pub const IDEMPOTENCY_MISMATCH: (&str, &str) = (
        "idempotency-key-reused",
        "Idempotency key reused for another request",
    );
    pub const IDEMPOTENCY_IN_FLIGHT: (&str, &str) = (
        "idempotency-key-in-flight",
        "A request with this idempotency key is in progress",
    );
}

/// An RFC 9457 problem, with the headers that go with it (WWW-Authenticate, RateLimit, ...).
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: Option<String>,
    pub sqlstate: Option<String>,
    pub extra: Map<String, Value>,
    pub headers: HeaderMap,
}

/// The handlers' error type.
pub type ApiError = Problem;

impl Problem {
    pub fn new(status: StatusCode, (kind, title): (&'static str, &'static str)) -> Self {
        Problem {
            status,
            kind,
            title,
            detail: None,
            sqlstate: None,
            extra: Map::new(),
            headers: HeaderMap::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn member(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(name.to_string(), value.into());
        self
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(name, v);
        }
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, kind::NOT_FOUND).detail(detail)
    }

    pub fn unknown_model(model: &str) -> Self {
        Problem::new(StatusCode::NOT_FOUND, kind::UNKNOWN_MODEL).detail(format!(
            "{:?} is not a model name (lowercase words separated by dots, e.g. res.partner)",
            truncate(model, 80)
        ))
    }

    pub fn invalid_parameter(name: &str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, kind::INVALID_PARAMETER)
            .detail(detail)
            .member("parameter", truncate(name, 80))
    }

    pub fn unavailable() -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, kind::UNAVAILABLE)
            .detail("the database cannot be reached right now; retry later")
            .header(header::RETRY_AFTER, "1")
    }

    pub fn internal() -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, kind::INTERNAL)
            .detail("the request failed on the server; the details are in the server log")
    }

    /// A problem for an error the database raised: status and kind from the SQLSTATE table; the
    /// database's message is the detail only for 4xx (messages the extension wrote for clients).
    pub fn from_sqlstate(code: &str, message: &str) -> Self {
        // PostgreSQL's own privilege error (the extension never words its 42501 this way): the
        // front's role lacks a grant, a deployment fault, not the caller's.
        if code == "42501" && message.starts_with("permission denied for ") {
            tracing::error!(
                sqlstate = code,
                "database error: {message} (the front's database role needs api_gateway.grant_front(role), and grant_worker(role) for webhooks)"
            );
            crate::obs::note_error_chain(format!("database error {code}: {message}"));
            let mut p = Self::internal();
            p.sqlstate = Some(code.to_string());
            return p;
        }
        let (status, k) = status_for_sqlstate(code);
        let mut p = Problem::new(status, k);
        if status.is_server_error() {
            tracing::error!(sqlstate = code, "database error: {message}");
            crate::obs::note_error_chain(format!("database error {code}: {message}"));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                p = p
                    .detail("the database is unavailable right now; retry later")
                    .header(header::RETRY_AFTER, "1");
            } else if status == StatusCode::GATEWAY_TIMEOUT {
                p = p.detail("the request took longer than the statement timeout");
            } else {
                p = p.detail("the request failed on the server; the details are in the server log");
            }
        } else {
            p = p.detail(truncate(message, 1000));
        }
        p.sqlstate = Some(code.to_string());
        p
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": if self.kind == kind::RATE_LIMITED.0 {
                QUOTA_EXCEEDED.to_string()
            } else {
                format!("{PROBLEM_BASE}{}", self.kind)
            },
            "title": self.title,
            "status": self.status.as_u16(),
        });
        if let Some(d) = &self.detail {
            body["detail"] = json!(d);
        }
        if let Some(s) = &self.sqlstate {
            body["sqlstate"] = json!(s);
        }
        for (k, v) in &self.extra {
            body[k] = v.clone();
        }
        body
    }
}

/// HTTP status and problem kind for a SQLSTATE raised by the extension or PostgreSQL.
pub fn status_for_sqlstate(code: &str) -> (StatusCode, (&'static str, &'static str)) {
    use StatusCode as S;
    match code {
        "42501" => (S::FORBIDDEN, kind::FORBIDDEN),
        "28000" | "28P01" => (S::UNAUTHORIZED, kind::INVALID_TOKEN),
        "42P01" => (S::NOT_FOUND, kind::UNKNOWN_MODEL),
        "02000" | "P0002" => (S::NOT_FOUND, kind::NOT_FOUND),
        "23502" | "23514" => (S::UNPROCESSABLE_ENTITY, kind::CONSTRAINT_VIOLATION),
        "40001" | "40P01" | "55P03" => (S::CONFLICT, kind::CONFLICT),
        "55000" => (S::CONFLICT, kind::NOT_ENABLED),
        "72000" => (S::GONE, kind::CURSOR_EXPIRED),
        "57014" => (S::GATEWAY_TIMEOUT, kind::TIMEOUT),
        "42703" | "42601" | "0A000" | "P0001" => (S::BAD_REQUEST, kind::INVALID_INPUT),
        c if c.starts_with("23") => (S::CONFLICT, kind::CONFLICT),
        c if c.starts_with("22") => (S::BAD_REQUEST, kind::INVALID_INPUT),
        // program limits a request's own values exceeded (a 900 KB value in an indexed column,
        // a statement too complex): the request is at fault, not the server
        c if c.starts_with("54") => (S::BAD_REQUEST, kind::INVALID_INPUT),
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => {
            (S::SERVICE_UNAVAILABLE, kind::UNAVAILABLE)
        }
        _ => (S::INTERNAL_SERVER_ERROR, kind::INTERNAL),
    }
}

impl From<deadpool_postgres::PoolError> for Problem {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        tracing::warn!("pool: {err}");
        crate::obs::note_error_chain(format!("connection pool: {}", error_chain(&err)));
        Problem::unavailable()
    }
}

impl From<tokio_postgres::Error> for Problem {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => {
                if status_for_sqlstate(db.code().code()).0.is_server_error() {
                    // The traffic log's error chain: everything the database said.
                    let mut chain = format!(
                        "database error {} ({}): {}",
                        db.code().code(),
                        db.severity(),
                        db.message()
                    );
                    for (label, part) in [
                        ("detail", db.detail()),
                        ("hint", db.hint()),
                        ("context", db.where_()),
                        ("routine", db.routine()),
                    ] {
                        if let Some(p) = part {
                            chain.push_str(&format!("\n{label}: {p}"));
                        }
                    }
                    crate::obs::note_error_chain(chain);
                }
                Problem::from_sqlstate(db.code().code(), db.message())
            }
            None if err.is_closed() || err.to_string().contains("connection") => {
                tracing::warn!("database connection: {err}");
                crate::obs::note_error_chain(format!("database connection: {}", error_chain(&err)));
                Problem::unavailable()
            }
            None => {
                tracing::error!("database client: {err}");
                crate::obs::note_error_chain(format!("database client: {}", error_chain(&err)));
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers.iter() {
            headers.append(name.clone(), value.clone());
        }
        response
    }
}

/// An error and its sources, one per line (`caused by: ...`).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(&format!("\ncaused by: {e}"));
        source = e.source();
    }
    out
}

/// At most `max` characters of `s`.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// An RFC 6749/6750 `error_description`: printable ASCII without `"` and `\`.
pub fn oauth_description(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '\''
            }
        })
        .collect();
    truncate(&cleaned, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_table() {
        let s = |c| status_for_sqlstate(c).0.as_u16();
        assert_eq!(s("42501"), 403);
        assert_eq!(s("22023"), 400);
        assert_eq!(s("22P02"), 400);
        assert_eq!(s("22004"), 400);
        assert_eq!(s("42P01"), 404);
        assert_eq!(s("23505"), 409);
        assert_eq!(s("23503"), 409);
        assert_eq!(s("23502"), 422);
        assert_eq!(s("23514"), 422);
        assert_eq!(s("57014"), 504);
        assert_eq!(s("55000"), 409);
        assert_eq!(s("72000"), 410);
        assert_eq!(s("08006"), 503);
        assert_eq!(s("53300"), 503);
        assert_eq!(s("57P01"), 503);
        assert_eq!(s("54000"), 400);
        assert_eq!(s("54001"), 400);
        assert_eq!(s("XX000"), 500);
        assert_eq!(s("42883"), 500);
    }

    #[test]
    fn server_errors_do_not_leak_the_message() {
        let p = Problem::from_sqlstate("42501", "permission denied for table client");
        assert_eq!(p.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!p.body().to_string().contains("client"));
        let p = Problem::from_sqlstate("42501", "user 6 may not read res.partner");
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        let p = Problem::from_sqlstate("XX000", "SELECT secret FROM t failed");
        let body = p.body().to_string();
        assert!(!body.contains("SELECT"));
        assert!(body.contains("XX000"));
        let p = Problem::from_sqlstate("22023", "bad domain");
        assert_eq!(p.body()["detail"], "bad domain");
        assert_eq!(p.body()["sqlstate"], "22023");
    }

    #[test]
    fn oauth_descriptions_are_safe() {
        assert_eq!(oauth_description("a \"b\" \\ é"), "a 'b' ' '");
    }
}
