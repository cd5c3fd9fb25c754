//! The dashboard's data: `GET /api/gateway/stats/...`, admin only, backed by the extension's
//! statistics functions (`api_gateway.stats_*`, which read hourly rollups) and, for the fault
//! feed, the traffic log itself. Also the live stream (`/api/gateway/stats/stream`, Server-Sent
//! Events fed by `LISTEN api_gateway_log`).
//!
//! Query parameters: `range` = `24h` (hourly buckets, the default), `30d` (daily) or `1y`
//! (monthly); `user` = an Odoo user id (0 = anonymous); `status` = `2xx`, `3xx`, `4xx`, `5xx`
//! or `429`.
use super::query;
use crate::error::{ApiError, Problem, kind};
use crate::gate::{self, Ctx, Gate, bearer_problem};
use crate::{AppState, db};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_postgres::types::Type;

/// The admin check of the dashboard's data and of `/metrics`: the gate (as for a GET) must pass
/// and grant the `admin` scope (an OAuth2 token with scope `admin`, or an Odoo administrator's
/// API key). Returns the gate row and the connection it used.
pub async fn admin(
    state: &AppState,
    ctx: &Ctx,
) -> Result<(Gate, deadpool_postgres::Client), Problem> {
    ctx.require_credentials()?;
    let client = state.pool.get().await?;
    let mut as_get = ctx.clone();
    as_get.method = Method::GET;
    let timeout = state.config.statement_timeout_ms;
    let gate = gate::authenticate_on(&client, timeout, &as_get).await?;
    if !gate.passed() {
        return Err(gate.denial("GET"));
    }
    if !gate
        .scopes
        .as_ref()
        .is_some_and(|s| s.iter().any(|x| x == "admin"))
    {
        return Err(gate.with_headers(bearer_problem(
            StatusCode::FORBIDDEN,
            kind::INSUFFICIENT_SCOPE,
            Some(api_gateway_core::gate::Denial::InsufficientScope.code()),
            "this needs the admin scope: an OAuth2 token with scope admin, or an Odoo administrator's API key",
            Some("admin"),
        )));
    }
    Ok((gate, client))
}

/// Range, user and status-class filters.
#[derive(Debug, Clone)]
pub struct Filters {
    pub range: &'static str,
    pub user: Option<i32>,
    pub status: Option<&'static str>,
}

fn filters(q: &BTreeMap<String, String>) -> Result<Filters, Problem> {
    let range = match q.get("range").map(|s| s.trim()).unwrap_or("24h") {
        "" | "24h" => "24h",
        "30d" => "30d",
        "1y" => "1y",
        _ => {
            return Err(Problem::invalid_parameter(
                "range",
                "range is 24h, 30d or 1y",
            ));
        }
    };
    let user = match q.get("user").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(u) => match u.parse::<i32>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(Problem::invalid_parameter(
                    "user",
                    "user is an Odoo user id (0 for anonymous requests)",
                ));
            }
        },
    };
    let status = match q.get("status").map(|s| s.trim()).unwrap_or("") {
        "" => None,
        "2xx" => Some("2xx"),
        "3xx" => Some("3xx"),
        "4xx" => Some("4xx"),
        "5xx" => Some("5xx"),
        "429" => Some("429"),
        _ => {
            return Err(Problem::invalid_parameter(
                "status",
                "status is 2xx, 3xx, 4xx, 5xx or 429",
            ));
        }
    };
    Ok(Filters {
        range,
        user,
        status,
    })
}

/// `r(f, t, b)`: the range's start, end (now) and bucket; $1 range, $2 user, $3 status class.
const RANGE: &str = "WITH r AS MATERIALIZED (SELECT \
       CASE $1::text WHEN '24h' THEN date_trunc('hour', now()) - interval '23 hours' \
                     WHEN '30d' THEN date_trunc('day', now()) - interval '29 days' \
                     ELSE date_trunc('month', now()) - interval '11 months' END AS f, \
       now() AS t, \
       CASE $1::text WHEN '24h' THEN 'hour' WHEN '30d' THEN 'day' ELSE 'month' END AS b, \
       $2::int AS u, $3::text AS c) ";

/// The parts of the overview, each a JSON expression over `r`.
const PARTS: [(&str, &str); 12] = [
    (
        "traffic",
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('t', x.bucket_start, 'requests', x.requests, \
           'errors', x.errors, 'rate_limited', x.rate_limited) ORDER BY x.bucket_start), '[]'::jsonb) \
           FROM api_gateway.stats_traffic(r.f, r.t, r.b, r.u, r.c) x)",
    ),
    (
        "top_endpoints",
        "(SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]'::jsonb) \
           FROM api_gateway.stats_top_endpoints(r.f, r.t, r.u, r.c, 5) WITH ORDINALITY \
           x(method, endpoint, requests, errors, avg_latency_ms, n))",
    ),
    (
        "slowest_endpoints",
        "(SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]'::jsonb) \
           FROM api_gateway.stats_slowest_endpoints(r.f, r.t, r.u, 5) WITH ORDINALITY \
           x(method, endpoint, requests, avg_latency_ms, max_latency_ms, n))",
    ),
    (
        "top_ips",
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('client_ip', host(x.client_ip), 'requests', x.requests, \
           'errors', x.errors) ORDER BY x.n), '[]'::jsonb) \
           FROM api_gateway.stats_top_ips(r.f, r.t, 5) WITH ORDINALITY x(client_ip, requests, errors, n))",
    ),
    (
        "latency",
        "(SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]'::jsonb) \
           FROM api_gateway.stats_latency_histogram(r.f, r.t, r.u, r.c) WITH ORDINALITY x(range, requests, n))",
    ),
    (
        "methods",
        "(SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]'::jsonb) \
           FROM api_gateway.stats_methods(r.f, r.t, r.u, r.c) WITH ORDINALITY x(method, requests, n))",
    ),
    (
        "status",
        "(SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]'::jsonb) \
           FROM api_gateway.stats_status(r.f, r.t, r.u) WITH ORDINALITY x(class, requests, n))",
    ),
    (
        "health",
        "(SELECT to_jsonb(h) FROM api_gateway.stats_health(r.f, r.t, r.u) h)",
    ),
    ("kpis", "api_gateway.stats_kpis(r.f, r.t, r.u)"),
    (
        "webhooks",
        "coalesce(api_gateway.stats_kpis(r.f, r.t, r.u)->'webhooks', '{}'::jsonb)",
    ),
    (
        "faults",
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', l.id, 'at', l.at, 'method', l.method, 'path', l.path, \
           'status', l.status, 'latency_ms', l.latency_ms, 'client_ip', host(l.client_ip), 'uid', l.uid, \
           'client_id', l.client_id, 'error', l.error) ORDER BY l.at DESC, l.id DESC), '[]'::jsonb) \
           FROM api_gateway.stats_faults(r.f, r.u, r.c, 100) l)",
    ),
    ("log_level", "to_jsonb(api_gateway.log_level())"),
];

/// The statistics names served at `/api/gateway/stats/<name>` (dashes for underscores).
pub fn part(name: &str) -> Option<&'static str> {
    let key = name.replace('-', "_");
    PARTS.iter().find(|(k, _)| *k == key).map(|(k, _)| *k)
}

fn sql_for(keys: &[&str]) -> String {
    let members: Vec<String> = PARTS
        .iter()
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, e)| format!("'{k}', {e}"))
        .collect();
    format!(
        "{RANGE}SELECT jsonb_build_object('range', $1::text, 'from', r.f, 'to', r.t, 'bucket', r.b, \
           'filter', jsonb_build_object('user', r.u, 'status', r.c), {}) FROM r",
        members.join(", ")
    )
}

async fn stats_json(
    state: &AppState,
    client: &deadpool_postgres::Client,
    f: &Filters,
    keys: &[&str],
) -> Result<Value, Problem> {
    let sql = sql_for(keys);
    let range = f.range;
    let status = f.status;
    let row = db::query_one_on(
        client,
        state.config.statement_timeout_ms,
        &sql,
        &[
            (&range, Type::TEXT),
            (&f.user, Type::INT4),
            (&status, Type::TEXT),
        ],
    )
    .await?;
    Ok(row.get(0))
}

fn json_answer(gate: &Gate, body: Value) -> Response {
    let mut r = gate.respond(StatusCode::OK, Some(body));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /api/gateway/stats/overview`: every chart, the KPIs and the latest 100 faults, in one
/// answer (one gate call: the dashboard's refresh costs one request of the admin's quota).
pub async fn overview(
    State(state): State<AppState>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query::parse(raw.as_deref(), &["range", "user", "status"])?;
    let f = filters(&q)?;
    let (gate, client) = admin(&state, &ctx).await?;
    // The webhook counts are in the KPIs already.
    let keys: Vec<&str> = PARTS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| *k != "webhooks")
        .collect();
    let mut body = stats_json(&state, &client, &f, &keys)
        .await
        .map_err(|p| gate.with_headers(p))?;
    // The level this front logs at (differs from the settings' with --log-level).
    body["front_log_level"] = json!(state.obs.level().as_str());
    Ok(json_answer(&gate, body))
}

/// `GET /api/gateway/stats/<name>`: one of traffic, top-endpoints, slowest-endpoints, top-ips,
/// latency, methods, status, health, kpis, webhooks, faults: `{"range": ..., "<name>": ...}`.
pub async fn one(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let Some(key) = part(&name).filter(|k| *k != "log_level") else {
        return Err(Problem::not_found(
            "no such statistics: overview, traffic, top-endpoints, slowest-endpoints, top-ips, \
             latency, methods, status, health, kpis, webhooks, faults, users, log/<id>, faults.csv, stream",
        ));
    };
    let q = query::parse(raw.as_deref(), &["range", "user", "status"])?;
    let f = filters(&q)?;
    let (gate, client) = admin(&state, &ctx).await?;
    let body = stats_json(&state, &client, &f, &[key])
        .await
        .map_err(|p| gate.with_headers(p))?;
    Ok(json_answer(&gate, body))
}

/// `GET /api/gateway/stats/users?range=`: the users seen in the range (for the user filter),
/// with their Odoo login when `res_users` is there.
pub async fn users(
    State(state): State<AppState>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query::parse(raw.as_deref(), &["range"])?;
    let f = filters(&q)?;
    let (gate, client) = admin(&state, &ctx).await?;
    let timeout = state.config.statement_timeout_ms;
    let range = f.range;
    let none_i: Option<i32> = None;
    let none_t: Option<String> = None;
    let sql = format!("{RANGE}SELECT u.uid, u.login FROM r, api_gateway.stats_users(r.f) u");
    let rows = db::query_on(
        &client,
        timeout,
        &sql,
        &[
            (&range, Type::TEXT),
            (&none_i, Type::INT4),
            (&none_t, Type::TEXT),
        ],
    )
    .await
    .map_err(|p| gate.with_headers(p))?;
    let mut uids: Vec<i32> = Vec::with_capacity(rows.len());
    let mut logins: BTreeMap<i32, String> = BTreeMap::new();
    for r in rows {
        let uid: i32 = r.get(0);
        uids.push(uid);
        if let Some(login) = r.get::<_, Option<String>>(1) {
            logins.insert(uid, login);
        }
    }
    let users: Vec<Value> = uids
        .iter()
        .map(|u| json!({"uid": u, "login": if *u == 0 { Some("(anonymous)".to_string()) } else { logins.get(u).cloned() }}))
        .collect();
    Ok(json_answer(&gate, json!({"range": range, "users": users})))
}

/// `GET /api/gateway/stats/log/<id>?at=<timestamp>`: one full log record (the inspect view).
/// `at` (the record's time, as the fault feed gives it) lets the lookup use the time index.
pub async fn record(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| Problem::not_found("a log record id is a positive integer"))?;
    let q = query::parse(raw.as_deref(), &["at"])?;
    let at = q
        .get("at")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let (gate, client) = admin(&state, &ctx).await?;
    let row = db::query_one_on(
        &client,
        state.config.statement_timeout_ms,
        "SELECT api_gateway.stats_log_record($1::bigint, $2::text::timestamptz)",
        &[(&id, Type::INT8), (&at, Type::TEXT)],
    )
    .await
    .map_err(|p| gate.with_headers(p))?;
    match row.get::<_, Option<Value>>(0) {
        Some(v) => Ok(json_answer(&gate, v)),
        None => Err(gate.with_headers(Problem::not_found(format!(
            "no log record {id} (it may have passed the retention)"
        )))),
    }
}

/// `GET /api/gateway/stats/faults.csv`: the 4xx/5xx of the range (at most 10,000, newest
/// first) as CSV.
pub async fn faults_csv(
    State(state): State<AppState>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query::parse(raw.as_deref(), &["range", "user", "status"])?;
    let f = filters(&q)?;
    let (gate, client) = admin(&state, &ctx).await?;
    let range = f.range;
    let status = f.status;
    let sql = format!(
        "{RANGE}SELECT l.id, to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), l.method, l.path, \
           l.status::int, l.latency_ms::float8, host(l.client_ip), l.uid, l.client_id, l.user_agent, l.error \
           FROM r, api_gateway.stats_faults(r.f, r.u, r.c, 10000) l ORDER BY l.at DESC, l.id DESC"
    );
    let rows = db::query_on(
        &client,
        state.config.statement_timeout_ms,
        &sql,
        &[
            (&range, Type::TEXT),
            (&f.user, Type::INT4),
            (&status, Type::TEXT),
        ],
    )
    .await
    .map_err(|p| gate.with_headers(p))?;
    let mut out = String::from(
        "id,at,method,path,status,latency_ms,client_ip,uid,client_id,user_agent,error\r\n",
    );
    for r in rows {
        let cells = [
            r.get::<_, i64>(0).to_string(),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            r.get::<_, String>(3),
            r.get::<_, i32>(4).to_string(),
            format!("{:.3}", r.get::<_, f64>(5)),
            r.get::<_, Option<String>>(6).unwrap_or_default(),
            r.get::<_, Option<i32>>(7)
                .map(|u| u.to_string())
                .unwrap_or_default(),
            r.get::<_, Option<String>>(8).unwrap_or_default(),
            r.get::<_, Option<String>>(9).unwrap_or_default(),
            r.get::<_, Option<String>>(10).unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    let mut resp = (StatusCode::OK, out).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"api-gateway-faults-{range}.csv\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.extend(gate.rate_headers());
    Ok(resp)
}

/// One CSV cell (RFC 4180), with a leading `'` on values a spreadsheet would run as a formula.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// How long one live stream stays open; the page then reconnects (and authenticates again, so
/// a revoked credential stops receiving).
const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// `GET /api/gateway/stats/stream`: Server-Sent Events. `hello` first (`{"listening": bool}`),
/// then one `log` event per traffic log batch written by any front (`{"rows": n, "faults": n,
/// "max_id": id}`), keep-alive comments every 15 s. Ends at shutdown and after 15 minutes.
pub async fn stream(State(state): State<AppState>, ctx: Ctx) -> Result<Response, ApiError> {
    let (gate, client) = admin(&state, &ctx).await?;
    drop(client);
    let obs = state.obs.clone();
    let rx = obs.live.subscribe();
    let stop = obs.stopping();
    struct Open {
        obs: std::sync::Arc<crate::obs::Obs>,
    }
    impl Drop for Open {
        fn drop(&mut self) {
            self.obs.metrics.live_clients.dec();
        }
    }
    obs.metrics.live_clients.inc();
    let open = Open { obs: obs.clone() };
    let hello = Event::default()
        .event("hello")
        .data(json!({"listening": obs.live.listening()}).to_string());
    let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
    let stream = futures_util::stream::unfold(
        (Some(hello), rx, stop, open),
        move |(first, mut rx, mut stop, open)| async move {
            if let Some(h) = first {
                return Some((Ok::<Event, Infallible>(h), (None, rx, stop, open)));
            }
            let event = tokio::select! {
                r = rx.recv() => match r {
                    Ok(payload) => Event::default().event("log").data(&*payload),
                    Err(RecvError::Lagged(n)) => Event::default().event("log").data(json!({"lagged": n}).to_string()),
                    Err(RecvError::Closed) => return None,
                },
                _ = stop.wait_for(|s| *s) => return None,
                _ = tokio::time::sleep_until(deadline) => return None,
            };
            Some((Ok(event), (None, rx, stop, open)))
        },
    );
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.extend(gate.rate_headers());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("-12.5"), "-12.5");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn filter_parsing() {
        let mut q = BTreeMap::new();
        let f = filters(&q).unwrap();
        assert_eq!((f.range, f.user, f.status), ("24h", None, None));
        q.insert("range".to_string(), "1y".to_string());
        q.insert("user".to_string(), "2".to_string());
        q.insert("status".to_string(), "429".to_string());
        let f = filters(&q).unwrap();
        assert_eq!((f.range, f.user, f.status), ("1y", Some(2), Some("429")));
        q.insert("range".to_string(), "7d".to_string());
        assert!(filters(&q).is_err());
    }

    #[test]
    fn parts() {
        assert_eq!(part("top-endpoints"), Some("top_endpoints"));
        assert_eq!(part("nope"), None);
        let sql = sql_for(&["kpis", "traffic"]);
        assert!(sql.contains("'kpis'") && sql.contains("'traffic'") && !sql.contains("'faults'"));
    }
}
