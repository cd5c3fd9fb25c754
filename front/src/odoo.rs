//! Forwarding to Odoo's JSON-2 API (`--odoo-url`): writes and business methods run in Odoo's own
//! ORM, as the authenticated Odoo user, after the gate passed.
//!
//! One call is `POST <odoo-url>/json/2/<model>/<method>` with `Authorization: bearer <key>` (the
//! caller's own Odoo API key, or its OAuth2 client's upstream key) and, when configured,
//! `X-Odoo-Database`. Odoo's answers become the gateway's: a success is the JSON result, an Odoo
//! error an RFC 9457 problem carrying Odoo's message (never its `debug` traceback), Odoo down
//! 503 with `Retry-After`, Odoo too slow 504.
use crate::error::{Problem, kind, truncate};
use axum::http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a client should wait before retrying when Odoo cannot be reached, in seconds.
pub const RETRY_AFTER_S: u64 = 5;

/// The forwarding target.
#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
    /// `<odoo-url>/json/2/`, with exactly one slash before `json`.
    base: String,
    database: Option<HeaderValue>,
    pub timeout: Duration,
    /// Reads Odoo was found to have nothing to fill in (below).
    pub sql_reads: Arc<SqlReads>,
}

/// Flat field lists, by model, of which SQL reads every field: the extension's split
/// (`fields_in_sql`, `odoo_fill`) left Odoo nothing. Which fields Odoo fills depends on the
/// model's metadata only (stored or not, binary or not), not on the reader, so a list found so
/// once is read with the plain statement afterwards, without the split's two calls (each a
/// check of the security cache: about 1.4x the database's time per read). A field that becomes
/// Odoo's to give (no longer stored: a module upgrade) makes that plain read fail with 22023
/// ending in `fields::ODOO_ONLY`: the list is forgotten and the read runs again with the split.
#[derive(Debug, Default)]
pub struct SqlReads {
    /// Field lists by model (looked up without allocating: `Vec<String>` borrows as a slice).
    lists: Mutex<HashMap<String, HashSet<Vec<String>>>>,
}

impl SqlReads {
    /// Lists remembered at most; all are forgotten when full (each costs one split again).
    const CAPACITY: usize = 4096;

    pub fn whole(&self, model: &str, fields: &[String]) -> bool {
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        lists.get(model).is_some_and(|known| known.contains(fields))
    }

    pub fn remember(&self, model: &str, fields: &[String]) {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        if lists.values().map(HashSet::len).sum::<usize>() >= Self::CAPACITY {
            lists.clear();
        }
        lists
            .entry(model.to_string())
            .or_default()
            .insert(fields.to_vec());
    }

    pub fn forget(&self, model: &str, fields: &[String]) {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = lists.get_mut(model) {
            known.remove(fields);
        }
    }

    /// Whether a plain read failed because a field of its list is now Odoo's to give (no
    /// longer stored, or binary): the extension's refusal ends with `fields::ODOO_ONLY`.
    pub fn outdated_by(problem: &Problem) -> bool {
        problem.sqlstate.as_deref() == Some("22023")
            && problem
                .detail
                .as_deref()
                .is_some_and(|d| d.ends_with(api_gateway_core::fields::ODOO_ONLY))
    }
}

/// What went wrong with a forwarded call before Odoo could answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made (nothing reached Odoo: nothing was written).
    Unreachable,
    /// The request went out but no answer came within the timeout (the outcome is unknown).
    Timeout,
}

/// The result of a forwarded call: Odoo's JSON result, or a problem for the client (with what
/// kind of failure it was, when Odoo did not answer).
pub type Answer = Result<Value, (Problem, Option<Failure>)>;

impl Upstream {
    pub fn new(url: &str, database: Option<&str>, timeout_ms: u64) -> Result<Upstream, String> {
        let url = url.trim();
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--odoo-url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "--odoo-url {url:?}: an http(s) URL with a host is needed, e.g. http://127.0.0.1:8069"
            ));
        }
        let database = match database.map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => Some(
                HeaderValue::from_str(d)
                    .map_err(|_| format!("--odoo-database {d:?} is not a valid header value"))?,
            ),
        };
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let http = reqwest::Client::builder()
            // Odoo answers directly: a redirect would carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("api-gateway/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the Odoo HTTP client: {e}"))?;
        Ok(Upstream {
            http,
            base: format!("{}/json/2/", url.trim_end_matches('/')),
            database,
            timeout,
            sql_reads: Arc::default(),
        })
    }

    /// `POST /json/2/<model>/<method>` with `body` (serialised JSON) as `key`'s user. `model` and
    /// `method` are validated names (no `/`, `?` or `%`).
    pub async fn call(&self, key: &str, model: &str, method: &str, body: String) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{model}/{method}", self.base))
            .timeout(self.timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, format!("bearer {key}"))
            .body(body);
        if let Some(db) = &self.database {
            request = request.header("X-Odoo-Database", db.clone());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(transport_problem(&e, model, method)),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(transport_problem(&e, model, method)),
        };
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return match parsed {
                Some(v) => Ok(v),
                None => {
                    crate::obs::note_error_chain(format!(
                        "Odoo {model}.{method}: {status} with a body that is not JSON"
                    ));
                    Err((
                        bad_gateway("Odoo answered with a body that is not JSON"),
                        None,
                    ))
                }
            };
        }
        Err((
            odoo_problem(status.as_u16(), parsed.as_ref(), model, method),
            None,
        ))
    }
}

fn bad_gateway(detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_GATEWAY, kind::UPSTREAM_ERROR).detail(detail)
}

fn transport_problem(e: &reqwest::Error, model: &str, method: &str) -> (Problem, Option<Failure>) {
    let chain = crate::error::error_chain(e);
    crate::obs::note_error_chain(format!("Odoo {model}.{method}: {chain}"));
    if e.is_timeout() {
        tracing::warn!("Odoo {model}.{method}: no answer in time");
        (
            Problem::new(StatusCode::GATEWAY_TIMEOUT, kind::UPSTREAM_TIMEOUT).detail(
                "Odoo did not answer in time (--odoo-timeout-ms); the call may still complete in \
                 Odoo: read the record before retrying without an Idempotency-Key",
            ),
            Some(Failure::Timeout),
        )
    } else if e.is_connect() {
        tracing::warn!("Odoo {model}.{method}: cannot connect: {chain}");
        (
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, kind::UPSTREAM_UNAVAILABLE)
                .detail("Odoo cannot be reached right now; nothing was written; retry later")
                .header(header::RETRY_AFTER, &RETRY_AFTER_S.to_string()),
            Some(Failure::Unreachable),
        )
    } else {
        // The request may have reached Odoo (connection reset mid-answer): outcome unknown.
        tracing::warn!("Odoo {model}.{method}: {chain}");
        (
            bad_gateway("the connection to Odoo failed before its answer was complete"),
            Some(Failure::Timeout),
        )
    }
}

/// An Odoo JSON-2 error answer as a problem: the status from Odoo's exception class, Odoo's
/// `message` as the detail, `odoo_error` naming the class; the `debug` traceback is dropped.
pub fn odoo_problem(status: u16, body: Option<&Value>, model: &str, method: &str) -> Problem {
    let name = body
        .and_then(|b| b.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = body
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (status, k) = status_for_odoo_error(status, name);
    if status.is_server_error() {
        // Odoo's own failures (a Python exception, a crash): the message may hold internals.
        tracing::error!("Odoo {model}.{method}: {name}: {}", truncate(message, 500));
        crate::obs::note_error_chain(format!(
            "Odoo {model}.{method}: {name}: {}",
            truncate(message, 2000)
        ));
        let detail = if name.ends_with("Unauthorized") {
            "Odoo refused the gateway's credential for this user; the details are in the gateway's log"
        } else {
            "Odoo failed to process the call; the details are in Odoo's log"
        };
        return Problem::new(status, k)
            .detail(detail)
            .member("odoo_error", truncate(name, 200));
    }
    let detail = if message.is_empty() {
        format!("Odoo refused {model}.{method}")
    } else {
        truncate(message, 2000)
    };
    Problem::new(status, k)
        .detail(detail)
        .member("odoo_error", truncate(name, 200))
}

/// Status and problem kind for Odoo's JSON-2 error (HTTP status and exception class).
pub fn status_for_odoo_error(
    status: u16,
    name: &str,
) -> (StatusCode, (&'static str, &'static str)) {
    use StatusCode as S;
    let class = name.rsplit('.').next().unwrap_or(name);
    match class {
        "UserError" | "ValidationError" | "RedirectWarning" | "CacheMiss" => {
            (S::UNPROCESSABLE_ENTITY, kind::ODOO_REFUSED)
        }
        "AccessError" | "AccessDenied" => (S::FORBIDDEN, kind::FORBIDDEN),
        "MissingError" => (S::NOT_FOUND, kind::NOT_FOUND),
        "LockError" => (S::CONFLICT, kind::CONFLICT),
        // The arguments did not fit the method (json2.py: signature bind, ids on a model method)
        // or the body was not understood.
        "UnprocessableEntity" | "BadRequest" => (S::BAD_REQUEST, kind::INVALID_INPUT),
        "NotFound" => (S::NOT_FOUND, kind::NOT_FOUND),
        _ => match status {
            // The upstream credential was refused: the gateway's problem, not the caller's.
            401 => (S::BAD_GATEWAY, kind::UPSTREAM_ERROR),
            403 => (S::FORBIDDEN, kind::FORBIDDEN),
            404 => (S::NOT_FOUND, kind::NOT_FOUND),
            409 => (S::CONFLICT, kind::CONFLICT),
            422 => (S::UNPROCESSABLE_ENTITY, kind::ODOO_REFUSED),
            400..=499 => (S::BAD_REQUEST, kind::INVALID_INPUT),
            _ => (S::BAD_GATEWAY, kind::UPSTREAM_ERROR),
        },
    }
}

/// A business method name as Odoo's Python names it: `[A-Za-z_][A-Za-z0-9_]*`, at most 128
/// characters. Whether it may be called is Odoo's decision (private methods are refused there).
pub fn valid_method(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sql_reads_remember_lists_by_model_and_forget_them() {
        let reads = SqlReads::default();
        let list = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!reads.whole("res.partner", &list(&["name"])));
        reads.remember("res.partner", &list(&["name", "email"]));
        assert!(reads.whole("res.partner", &list(&["name", "email"])));
        // another order, another model, a sub-list: not known
        assert!(!reads.whole("res.partner", &list(&["email", "name"])));
        assert!(!reads.whole("res.users", &list(&["name", "email"])));
        assert!(!reads.whole("res.partner", &list(&["name"])));
        reads.forget("res.partner", &list(&["name", "email"]));
        assert!(!reads.whole("res.partner", &list(&["name", "email"])));
        // bounded: full, everything is forgotten and the new list kept
        for i in 0..SqlReads::CAPACITY {
            reads.remember("m", &[format!("f{i}")]);
        }
        assert!(reads.whole("m", &[format!("f{}", SqlReads::CAPACITY - 1)]));
        reads.remember("res.partner", &list(&["name"]));
        assert!(!reads.whole("m", &[format!("f{}", SqlReads::CAPACITY - 1)]));
        assert!(reads.whole("res.partner", &list(&["name"])));
    }

    #[test]
    fn only_a_field_no_longer_stored_outdates_a_remembered_list() {
        let odoo_only = api_gateway_core::fields::ODOO_ONLY;
        for why in [
            "res.partner.tz_offset is not stored in the database",
            "ir.attachment.datas is a binary field",
        ] {
            let stale =
                Problem::from_sqlstate("22023", &format!("invalid field list: {why}: {odoo_only}"));
            assert!(SqlReads::outdated_by(&stale));
        }
        let other = Problem::from_sqlstate("22023", "invalid domain: unknown operator");
        assert!(!SqlReads::outdated_by(&other));
        let denied = Problem::from_sqlstate("42501", &format!("res.partner.x: {odoo_only}"));
        assert!(!SqlReads::outdated_by(&denied));
    }

    #[test]
    fn odoo_errors_map_to_statuses() {
        let s = |status, name| status_for_odoo_error(status, name).0.as_u16();
        assert_eq!(s(422, "odoo.exceptions.UserError"), 422);
        assert_eq!(s(422, "odoo.exceptions.ValidationError"), 422);
        assert_eq!(s(403, "odoo.exceptions.AccessError"), 403);
        assert_eq!(s(404, "odoo.exceptions.MissingError"), 404);
        assert_eq!(s(409, "odoo.exceptions.LockError"), 409);
        assert_eq!(s(422, "werkzeug.exceptions.UnprocessableEntity"), 400);
        assert_eq!(s(400, "werkzeug.exceptions.BadRequest"), 400);
        assert_eq!(s(404, "werkzeug.exceptions.NotFound"), 404);
        assert_eq!(s(401, "werkzeug.exceptions.Unauthorized"), 502);
        assert_eq!(s(500, "builtins.KeyError"), 502);
        assert_eq!(s(500, ""), 502);
    }

    #[test]
    fn the_traceback_is_never_in_the_problem() {
        let body = json!({"name": "odoo.exceptions.UserError", "message": "No way",
            "arguments": ["No way"], "context": {}, "debug": "Traceback (most recent call last): secret"});
        let p = odoo_problem(422, Some(&body), "sale.order", "create");
        let text = p.body().to_string();
        assert!(!text.contains("Traceback"), "{text}");
        assert_eq!(p.body()["detail"], "No way");
        assert_eq!(p.body()["odoo_error"], "odoo.exceptions.UserError");
        let body = json!({"name": "builtins.KeyError", "message": "'secret_column'", "debug": "Traceback"});
        let p = odoo_problem(500, Some(&body), "sale.order", "create");
        let text = p.body().to_string();
        assert!(
            !text.contains("secret_column") && !text.contains("Traceback"),
            "{text}"
        );
        assert_eq!(p.status, StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn method_names() {
        assert!(valid_method("action_confirm"));
        assert!(valid_method("_private")); // Odoo refuses it, with its own message
        for bad in ["", "a/b", "a.b", "1abc", "a b", "a%2fb", &"x".repeat(129)] {
            assert!(!valid_method(bad), "{bad}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(Upstream::new("http://127.0.0.1:8069/", None, 1000).is_ok());
        assert_eq!(
            Upstream::new("http://127.0.0.1:8069/", None, 1000)
                .unwrap()
                .base,
            "http://127.0.0.1:8069/json/2/"
        );
        assert!(Upstream::new("ftp://x", None, 1000).is_err());
        assert!(Upstream::new("not a url", None, 1000).is_err());
        assert!(Upstream::new("http://x", Some("bad\ndb"), 1000).is_err());
    }
}
