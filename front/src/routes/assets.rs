//! Responses for the front's built-in pages and their files (the API docs, the dashboard, the
//! admin console).
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A file compiled into the binary, with its content type and caching policy.
pub fn file(content_type: &'static str, body: &'static [u8], cache: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// An HTML page under its Content-Security-Policy, never framed, sending no referrer.
pub fn page(body: &'static [u8], csp: &'static str) -> Response {
    let mut r = file("text/html; charset=utf-8", body, "no-cache");
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}
