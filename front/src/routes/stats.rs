//! The dashboard's data: `GET /api/gateway/stats/...`, admin only, backed by the extension's
//! statistics functions (`api_gateway.stats_*`, which read hourly rollups) and, for the fault
//! feed, the traffic log itself. Also the live stream (`/api/gateway/stats/stream`, Server-Sent
//! Events fed by `LISTEN api_gateway_log`).
//!
//! Query parameters: `range` = `24h` (hourly buckets, the default), `30d` (daily) or `1y`
//! (monthly); `user` = an Odoo user id (0 = anonymous); `status` = `2xx`, `3xx`, `4xx`, `5xx`
//! or `429`.
use super::query;
use crate::error::{ApiError, Problem};
use crate::gate::{Ctx, Gate, admin};
use crate::{AppState, db};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_postgres::types::Type;

/// Range, user and status-class filters, as given: `api_gateway.stats_overview` checks them
/// (22023 naming the bad one).
#[derive(Debug, Clone)]
pub struct Filters {
    pub range: Option<String>,
    pub user: Option<i32>,
    pub status: Option<String>,
}

fn filters(q: &BTreeMap<String, String>) -> Result<Filters, Problem> {
    let given = |k: &str| {
        q.get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let user = match given("user") {
        None => None,
        Some(u) => Some(u.parse::<i32>().map_err(|_| {
            Problem::invalid_parameter("user", "user is an Odoo user id (0 for anonymous requests)")
        })?),
    };
    Ok(Filters {
        range: given("range"),
        user,
        status: given("status"),
    })
}

/// A statistics route: its query (`allowed` parameters), the admin check, then
/// `api_gateway.stats_overview(range, user, status, parts)` (None: the overview's set).
async fn statistics(
    state: &AppState,
    ctx: &Ctx,
    raw: Option<String>,
    allowed: &[&str],
    parts: Option<&[&str]>,
) -> Result<(Gate, Value), ApiError> {
    let f = filters(&query::parse(raw.as_deref(), allowed)?)?;
    let (gate, client) = admin(state, ctx).await?;
    let row = db::query_one_on(
        &client,
        state.config.statement_timeout,
        "SELECT api_gateway.stats_overview(coalesce($1::text, '24h'), $2::int, $3::text, $4::text[])",
        &[
            (&f.range, Type::TEXT),
            (&f.user, Type::INT4),
            (&f.status, Type::TEXT),
            (&parts, Type::TEXT_ARRAY),
        ],
    )
    .await
    .map_err(|p| gate.with_headers(p))?;
    Ok((gate, row.get(0)))
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
    let (gate, mut body) =
        statistics(&state, &ctx, raw, &["range", "user", "status"], None).await?;
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
    // The extension knows the names (an unknown one is P0002: 404).
    let part = name.replace('-', "_");
    let filters = &["range", "user", "status"];
    let (gate, body) = statistics(&state, &ctx, raw, filters, Some(&[part.as_str()])).await?;
    Ok(json_answer(&gate, body))
}

/// `GET /api/gateway/stats/users?range=`: the users seen in the range (for the user filter),
/// with their Odoo login when `res_users` is there.
pub async fn users(
    State(state): State<AppState>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (gate, body) = statistics(&state, &ctx, raw, &["range"], Some(&["users"])).await?;
    Ok(json_answer(&gate, body))
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
        state.config.statement_timeout,
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
    // stats_overview with no part checks the filters and gives the window.
    let row = db::query_one_on(
        &client,
        state.config.statement_timeout,
        "SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.at DESC, x.id DESC), '[]') FROM ( \
           SELECT l.id, l.at, l.method, l.path, l.status, l.latency_ms, host(l.client_ip) AS client_ip, \
                  l.uid, l.client_id, l.user_agent, l.error \
             FROM api_gateway.stats_overview(coalesce($1::text, '24h'), $2::int, $3::text, '{}') o, \
                  LATERAL api_gateway.stats_faults((o->>'from')::timestamptz, $2::int, $3::text, 10000) l) x",
        &[
            (&f.range, Type::TEXT),
            (&f.user, Type::INT4),
            (&f.status, Type::TEXT),
        ],
    )
    .await
    .map_err(|p| gate.with_headers(p))?;
    let range = f.range.as_deref().unwrap_or("24h");
    let rows: Value = row.get(0);
    Ok(log_csv(
        &gate,
        &rows,
        &format!("api-gateway-faults-{range}.csv"),
    ))
}

/// Log records (the console's traffic log, the dashboard's faults) as a CSV download: one
/// column per field below, RFC 4180, formula-safe cells.
pub fn log_csv(gate: &Gate, rows: &Value, filename: &str) -> Response {
    const COLUMNS: [&str; 11] = [
        "id",
        "at",
        "method",
        "path",
        "status",
        "latency_ms",
        "client_ip",
        "uid",
        "client_id",
        "user_agent",
        "error",
    ];
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows.as_array().map(Vec::as_slice).unwrap_or_default() {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| match &r[*c] {
                Value::Null => String::new(),
                Value::String(s) => csv_cell(s),
                v => csv_cell(&v.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    let mut resp = (StatusCode::OK, out).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The range in a file name is one of the checked names; anything else falls back.
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.extend(gate.rate_headers());
    resp
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
        assert_eq!((f.range, f.user, f.status), (None, None, None));
        q.insert("range".to_string(), " 1y ".to_string());
        q.insert("user".to_string(), "2".to_string());
        q.insert("status".to_string(), "429".to_string());
        let f = filters(&q).unwrap();
        let given = |s: &str| Some(s.to_string());
        assert_eq!(
            (f.range, f.user, f.status),
            (given("1y"), Some(2), given("429"))
        );
        // The values are the extension's to check; a user that is not a number is not one.
        q.insert("user".to_string(), "x".to_string());
        assert!(filters(&q).is_err());
    }
}
