//! The capture middleware: times every request, counts it in the metrics and, after the
//! response is ready, queues its log record for the writer (never waiting for the database: a
//! full queue drops the record and counts it).
//!
//! What is recorded depends on the level: `errors` keeps requests answered >= 400, `metadata`
//! every request, `payloads` adds the bodies. The gateway's own monitoring routes (`/metrics`,
//! `/health/...`, `/api/gateway/...`) are recorded only when they fail, so that a dashboard
//! polling its statistics does not fill the log with itself. Bodies of `/api/oauth/...` (client
//! secrets, tokens) are never captured.
use super::redact::{self, Secrets};
use super::{LogLevel, NOTE, Note};
use crate::{AppState, net};
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

/// Bodies are read whole (to mask JSON members properly) up to this size, then cut to the
/// configured log limit.
const CAPTURE_MAX: usize = 1024 * 1024;

/// Whether this is one of the gateway's own monitoring routes (recorded only on failure).
pub fn own_route(path: &str) -> bool {
    path == "/metrics" || path.starts_with("/health/") || path.starts_with("/api/gateway/")
}

/// Copies what the handler reads of the request body (counting all of it).
struct Tap {
    seen: AtomicU64,
    capture: usize,
    buf: Mutex<Vec<u8>>,
}

struct TapBody {
    inner: Body,
    tap: Arc<Tap>,
}

impl http_body::Body for TapBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let tap = &self.tap;
            tap.seen.fetch_add(data.len() as u64, Ordering::Relaxed);
            if tap.capture > 0
                && let Ok(mut buf) = tap.buf.lock()
                && buf.len() < tap.capture
            {
                let room = tap.capture - buf.len();
                buf.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let obs = state.obs.clone();
    let started = Instant::now();
    // Formatted only for a request that is logged (most are not at level `errors`).
    let at = SystemTime::now();
    let level = obs.level();
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let own = own_route(&path);
    let oauth = path.starts_with("/api/oauth/");
    let capture_bodies = level == LogLevel::Payloads && !oauth && !own;
    let headers = request.headers();
    let secrets = Secrets::from_authorization(header_str(headers, header::AUTHORIZATION));
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = peer.map(|p| net::client_ip(p, headers, &state.config.trusted_proxies));
    let user_agent = header_str(headers, header::USER_AGENT).map(str::to_string);
    let request_type = header_str(headers, header::CONTENT_TYPE).map(str::to_string);
    let declared_len =
        header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());

    let tap = Arc::new(Tap {
        seen: AtomicU64::new(0),
        capture: if capture_bodies { CAPTURE_MAX } else { 0 },
        buf: Mutex::new(Vec::new()),
    });
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(
        parts,
        Body::new(TapBody {
            inner: body,
            tap: tap.clone(),
        }),
    );
    let note = Arc::new(Mutex::new(Note::default()));
    let response = NOTE.scope(note.clone(), next.run(request)).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let note = note.lock().map(|n| n.clone()).unwrap_or_default();

    obs.metrics
        .observe_request(route.as_deref(), &method, status, elapsed);
    if let Some(g) = &note.gate {
        obs.metrics.observe_gate(g.status, g.error.as_deref());
    }
    let keep = if own || level == LogLevel::Errors {
        status >= 400
    } else {
        true
    };
    if !keep {
        return response;
    }

    // The response body, when it is wanted and already in memory (every JSON answer is).
    let exact = http_body::Body::size_hint(response.body()).exact();
    let want_body =
        (capture_bodies || status >= 400) && exact.is_some_and(|n| n as usize <= CAPTURE_MAX);
    let (response, response_bytes) = if want_body {
        let (parts, body) = response.into_parts();
        match body.collect().await {
            Ok(c) => {
                let bytes = c.to_bytes();
                (
                    Response::from_parts(parts, Body::from(bytes.clone())),
                    Some(bytes),
                )
            }
            Err(_) => (Response::from_parts(parts, Body::empty()), None),
        }
    } else {
        (response, None)
    };
    let response_len = exact.or_else(|| {
        header_str(response.headers(), header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
    });
    let response_type = header_str(response.headers(), header::CONTENT_TYPE).map(str::to_string);

    let scrub = |s: &str| secrets.scrub(s);
    let logged_path = redact::path(&path, &secrets);
    let full_path = match &query {
        Some(q) if !q.is_empty() => {
            format!("{logged_path}?{}", redact::query_with(q, &secrets, oauth))
        }
        _ => logged_path,
    };
    let (model, record_id) = model_and_id(route.as_deref(), &path);
    let (uid, client_id) = match &note.gate {
        Some(g) => (g.uid, g.client_id.clone().or(note.client_id.clone())),
        None => (None, note.client_id.clone()),
    };
    let error = (status >= 400).then(|| {
        response_bytes
            .as_deref()
            .and_then(error_of)
            .unwrap_or_else(|| {
                format!(
                    "{status} {}",
                    response.status().canonical_reason().unwrap_or("error")
                )
            })
    });
    let error_chain = (status >= 500).then(|| {
        note.chain.clone().unwrap_or_else(|| {
            "no database error: the cause is in the front's log (RUST_LOG)".into()
        })
    });
    let seen = tap.seen.load(Ordering::Relaxed);
    let request_len = declared_len.unwrap_or(0).max(seen);
    let (request_body, response_body) = if capture_bodies {
        let captured = tap.buf.lock().map(|b| b.clone()).unwrap_or_default();
        let complete = captured.len() as u64 >= request_len;
        let limit = obs.options.body_bytes;
        (
            redact::body(
                &captured,
                request_type.as_deref(),
                &secrets,
                limit,
                complete,
            ),
            response_bytes
                .as_deref()
                .and_then(|b| redact::body(b, response_type.as_deref(), &secrets, limit, true)),
        )
    } else {
        (None, None)
    };
    let record = json!({
        "at": rfc3339(at),
        "method": method,
        "path": scrub(&full_path),
        "model": model.map(|m| scrub(&m)),
        "record_id": record_id,
        "status": status,
        "latency_ms": (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "client_ip": ip.map(|i| i.to_string()),
        "uid": uid,
        "client_id": client_id.map(|c| scrub(&c)),
        "user_agent": user_agent.map(|u| scrub(&redact::cut(&u, 512, None))),
        "request_bytes": (request_len > 0 || method != "GET").then_some(request_len),
        "response_bytes": response_len,
        "request_body": request_body,
        "response_body": response_body,
        "error": error.map(|e| scrub(&redact::cut(&e, 4000, None))),
        "error_chain": error_chain.map(|e| scrub(&redact::cut(&e, 16000, None))),
    });
    obs.enqueue(record);
    response
}

/// `/api/v1/<model>[/<id>]`: the model and the record id.
fn model_and_id(route: Option<&str>, path: &str) -> (Option<String>, Option<i32>) {
    match route {
        Some("/api/v1/{model}") | Some("/api/v1/{model}/{id}") => {
            let mut segs = path.trim_start_matches("/api/v1/").split('/');
            let model = segs.next().filter(|m| !m.is_empty()).map(|m| {
                percent_encoding::percent_decode_str(m)
                    .decode_utf8_lossy()
                    .into_owned()
            });
            let id = segs.next().and_then(|i| i.parse::<i32>().ok());
            (model, id)
        }
        _ => (None, None),
    }
}

/// The error of an error answer: `kind: detail` of a problem document, `error: description` of
/// an OAuth2 error, else the start of the body.
fn error_of(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("type").is_some() || v.get("title").is_some() => {
            let kind = v["type"]
                .as_str()
                .unwrap_or("")
                .rsplit(['/', '#'])
                .next()
                .unwrap_or("")
                .to_string();
            let text = v["detail"].as_str().or(v["title"].as_str()).unwrap_or("");
            Some(if kind.is_empty() {
                text.to_string()
            } else {
                format!("{kind}: {text}")
            })
        }
        Ok(v) if v.get("error").is_some() => Some(format!(
            "{}: {}",
            v["error"].as_str().unwrap_or(""),
            v["error_description"].as_str().unwrap_or("")
        )),
        _ => Some(redact::cut(&String::from_utf8_lossy(body), 300, None)),
    }
}

/// RFC 3339 UTC with microseconds, e.g. `2026-01-31T12:34:56.789012Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn errors_of_answers() {
        let p = br#"{"type":"https://api-gateway.dev/problems/not-found","title":"Not Found","status":404,"detail":"res.partner 9 does not exist"}"#;
        assert_eq!(
            error_of(p).unwrap(),
            "not-found: res.partner 9 does not exist"
        );
        let o = br#"{"error":"invalid_client","error_description":"client authentication failed"}"#;
        assert_eq!(
            error_of(o).unwrap(),
            "invalid_client: client authentication failed"
        );
        assert_eq!(error_of(b"plain").unwrap(), "plain");
    }

    #[test]
    fn models_and_ids() {
        assert_eq!(
            model_and_id(Some("/api/v1/{model}/{id}"), "/api/v1/res.partner/42"),
            (Some("res.partner".into()), Some(42))
        );
        assert_eq!(
            model_and_id(Some("/api/v1/{model}"), "/api/v1/res.partner"),
            (Some("res.partner".into()), None)
        );
        assert_eq!(
            model_and_id(Some("/api/v1/ping"), "/api/v1/ping"),
            (None, None)
        );
    }
}
