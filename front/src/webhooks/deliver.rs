//! One delivery attempt: SSRF checks, Standard Webhooks headers and signature, the POST with
//! the webhook's timeout, and what the answer means for the job.
use super::{Completion, Job, Settings};
use api_gateway_core::webhook::{self, TargetClass, classify_target};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest wait honoured from a `Retry-After` header.
const RETRY_AFTER_MAX_S: u64 = 86_400;
/// At most this much of a response body is read (so the connection can be reused) and the
/// first bytes of it are kept in `last_error`.
const BODY_READ_MAX: usize = 64 * 1024;
const BODY_KEEP: usize = 200;

/// Whether deliveries may go to private and loopback addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsrfPolicy {
    pub allow_private: bool,
}

/// Ok when `ip` may be a target under `policy`, else why not.
pub fn check_target(ip: IpAddr, policy: SsrfPolicy) -> Result<(), String> {
    match classify_target(ip) {
        TargetClass::Public => Ok(()),
        TargetClass::Private(_) if policy.allow_private => Ok(()),
        TargetClass::Private(what) => Err(format!(
            "refused by the SSRF policy: {ip} is a {what} (set api_gateway.webhook_settings.allow_private_targets to allow it)"
        )),
        TargetClass::Forbidden(what) => {
            Err(format!("refused by the SSRF policy: {ip} is a {what}"))
        }
    }
}

/// Resolves host names and keeps only the addresses the policy allows, so the client connects
/// to exactly the addresses that were checked (no second lookup an attacker's DNS could change).
struct Resolver {
    policy: SsrfPolicy,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match check_target(a.ip(), policy) {
                    Ok(()) => true,
                    Err(why) => {
                        refused.get_or_insert(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| format!("{host} has no address"));
                return Err(format!("{host}: {why}").into());
            }
            let it: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(it)
        })
    }
}

/// The HTTP client: no redirects (3xx is a failure), no proxy from the environment (it would
/// bypass the address checks), addresses filtered by the SSRF policy.
pub fn client(allow_private: bool, per_endpoint: usize) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(Resolver {
            policy: SsrfPolicy { allow_private },
        }))
        .user_agent(concat!("api-gateway-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(per_endpoint)
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))
}

/// What an attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// 410 Gone: deactivate the webhook; the job waits for it to be re-enabled.
    Gone,
    /// Try again later (after `Retry-After` seconds when the endpoint said so).
    Retry {
        retry_after: Option<u64>,
    },
}

/// 2xx delivered; 410 gone; anything else (3xx included: redirects are not followed) retried.
pub fn classify_response(status: u16, retry_after: Option<u64>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Gone,
        _ => Outcome::Retry { retry_after },
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as seconds from `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.min(RETRY_AFTER_MAX_S));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .min(RETRY_AFTER_MAX_S),
    )
}

fn jitter_unit() -> f64 {
    let mut b = [0u8; 8];
    api_gateway_core::secrets::fill_random(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The error text and its sources, one line, without anything from the job's secret or headers.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn failure(
    job: &Job,
    settings: &Settings,
    status: Option<i32>,
    error: String,
    retry_after: Option<u64>,
) -> Completion {
    let (outcome, delay) = if job.attempt >= settings.max_attempts() {
        ("dead", 0.0)
    } else {
        let backoff =
            webhook::retry_delay(&settings.schedule, job.attempt.max(1) as u32, jitter_unit())
                .unwrap_or(0);
        ("retry", retry_after.unwrap_or(backoff) as f64)
    };
    Completion {
        job_id: job.id,
        attempt: job.attempt,
        outcome,
        status,
        error: Some(error),
        delay_s: delay,
    }
}

/// The headers of one attempt: custom ones first, then the ones the gateway owns.
fn headers(job: &Job, timestamp: i64) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    if let Some(custom) = job.headers.as_object() {
        for (k, v) in custom {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) else {
                return Err(format!("webhook header {k:?} is not a valid HTTP header"));
            };
            h.insert(name, value);
        }
    }
    // During a rotation's overlap: one signature per secret, the new one first (Standard
    // Webhooks: space-separated; a receiver accepts the message if any one verifies).
    let mut signature = webhook::sign(
        &job.secret,
        &job.event_id,
        timestamp,
        job.payload.as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    if let Some(previous) = job.previous_secret.as_deref() {
        let old = webhook::sign(previous, &job.event_id, timestamp, job.payload.as_bytes())
            .map_err(|e| e.to_string())?;
        signature.push(' ');
        signature.push_str(&old);
    }
    let value = |s: &str| HeaderValue::from_str(s).map_err(|e| e.to_string());
    h.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("webhook-id", value(&job.event_id)?);
    h.insert("webhook-timestamp", value(&timestamp.to_string())?);
    h.insert("webhook-signature", value(&signature)?);
    Ok(h)
}

/// One attempt, start to end; never fails (every problem is a failed attempt).
pub async fn deliver(client: &reqwest::Client, settings: &Settings, job: Job) -> Completion {
    let policy = SsrfPolicy {
        allow_private: settings.allow_private,
    };
    let url = match reqwest::Url::parse(&job.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => return failure(&job, settings, None, "invalid URL".into(), None),
    };
    // Literal addresses never reach the resolver: check them here.
    let literal = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<IpAddr>().ok());
    if let Some(ip) = literal
        && let Err(why) = check_target(ip, policy)
    {
        return failure(&job, settings, None, why, None);
    }
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let headers = match headers(&job, timestamp) {
        Ok(h) => h,
        Err(why) => return failure(&job, settings, None, why, None),
    };
    let sent = client
        .post(url)
        .headers(headers)
        .timeout(job.timeout)
        .body(job.payload.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => {
            let why = if e.is_timeout() {
                format!("timed out after {} ms", job.timeout.as_millis())
            } else {
                describe(&e)
            };
            tracing::debug!("webhook {} job {}: {why}", job.webhook_id, job.id);
            return failure(&job, settings, None, why, None);
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    // Read (a bounded part of) the body so the connection can be reused; keep its start for
    // the operator when the attempt failed.
    let mut kept: Vec<u8> = Vec::new();
    let mut read = 0usize;
    let body_deadline = tokio::time::sleep(job.timeout);
    tokio::pin!(body_deadline);
    loop {
        tokio::select! {
            chunk = response.chunk() => match chunk {
                Ok(Some(c)) => {
                    read += c.len();
                    if kept.len() < BODY_KEEP {
                        kept.extend_from_slice(&c[..c.len().min(BODY_KEEP - kept.len())]);
                    }
                    if read > BODY_READ_MAX {
                        break;
                    }
                }
                _ => break,
            },
            _ = &mut body_deadline => break,
        }
    }
    match classify_response(status, retry_after) {
        Outcome::Delivered => Completion {
            job_id: job.id,
            attempt: job.attempt,
            outcome: "delivered",
            status: Some(i32::from(status)),
            error: None,
            delay_s: 0.0,
        },
        Outcome::Gone => Completion {
            job_id: job.id,
            attempt: job.attempt,
            outcome: "gone",
            status: Some(410),
            error: Some("410 Gone: the webhook was deactivated".into()),
            delay_s: 0.0,
        },
        Outcome::Retry { retry_after } => {
            let snippet: String = String::from_utf8_lossy(&kept)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let why = format!("HTTP {status}: {}", snippet.trim());
            tracing::debug!("webhook {} job {}: {why}", job.webhook_id, job.id);
            failure(&job, settings, Some(i32::from(status)), why, retry_after)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(parse_retry_after("999999999", now), Some(RETRY_AFTER_MAX_S));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(30));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(0));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(classify_response(200, None), Outcome::Delivered);
        assert_eq!(classify_response(204, Some(3)), Outcome::Delivered);
        assert_eq!(classify_response(410, None), Outcome::Gone);
        assert_eq!(
            classify_response(301, None),
            Outcome::Retry { retry_after: None }
        );
        assert_eq!(
            classify_response(429, Some(7)),
            Outcome::Retry {
                retry_after: Some(7)
            }
        );
        assert_eq!(
            classify_response(500, None),
            Outcome::Retry { retry_after: None }
        );
    }

    #[test]
    fn targets() {
        let open = SsrfPolicy {
            allow_private: true,
        };
        let closed = SsrfPolicy {
            allow_private: false,
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(check_target(ip("127.0.0.1"), open).is_ok());
        assert!(check_target(ip("127.0.0.1"), closed).is_err());
        assert!(check_target(ip("169.254.169.254"), open).is_err());
        assert!(check_target(ip("fd00:ec2::254"), open).is_err());
        assert!(check_target(ip("93.184.215.14"), closed).is_ok());
    }
}
