//! `GET /metrics`: Prometheus text format. Needs an admin credential (like the dashboard)
//! unless the front runs with `--metrics-public` (a scraper on a private network).
use crate::gate::Ctx;
use crate::obs::metrics::{CONTENT_TYPE, DbGauges};
use crate::{AppState, db};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

pub async fn metrics(State(state): State<AppState>, ctx: Ctx) -> Response {
    let client = if state.obs.options.metrics_public {
        state.pool.get().await.ok()
    } else {
        match crate::gate::admin(&state, &ctx).await {
            Ok((_, client)) => Some(client),
            Err(p) => return p.into_response(),
        }
    };
    let db = match client {
        Some(c) => read_gauges(&c).await,
        None => DbGauges::default(),
    };
    let obs = &state.obs;
    let m = &obs.metrics;
    let status = state.pool.status();
    m.pool
        .with_label_values(&["max"])
        .set(status.max_size as i64);
    m.pool.with_label_values(&["size"]).set(status.size as i64);
    m.pool
        .with_label_values(&["available"])
        .set(status.available as i64);
    m.pool
        .with_label_values(&["waiting"])
        .set(status.waiting as i64);
    let (max, (open, in_flight)) = state
        .pipeline
        .as_ref()
        .map_or((0, (0, 0)), |p| (p.connections(), p.status()));
    for (label, value) in [("max", max), ("open", open), ("in_flight", in_flight)] {
        m.pipelined.with_label_values(&[label]).set(value as i64);
    }
    m.log_queue_length.set(obs.queue_len() as i64);
    let level = obs.level();
    for l in ["errors", "metadata", "payloads"] {
        m.log_level
            .with_label_values(&[l])
            .set(i64::from(l == level.as_str()));
    }
    let mut r = (StatusCode::OK, m.render(&db)).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The webhook queue (when its table exists) and the last maintenance runs, from
/// `api_gateway.metrics_gauges()` (the front's role reads no table).
async fn read_gauges(client: &deadpool_postgres::Client) -> DbGauges {
    let mut g = DbGauges::default();
    let row = db::query_one_on(
        client,
        db::Timeout::own(2000),
        "SELECT api_gateway.metrics_gauges()",
        &[],
    )
    .await;
    let Ok(row) = row else { return g };
    g.up = true;
    let gauges: serde_json::Value = row.get(0);
    if let Some(o) = gauges["maintenance"].as_object() {
        for (job, v) in o {
            let at = v[0].as_f64().unwrap_or(0.0);
            let n = v[1].as_f64().unwrap_or(0.0);
            g.maintenance.insert(job.clone(), (at, n));
        }
    }
    if let Some(o) = gauges["webhook_jobs"].as_object() {
        let states: BTreeMap<String, i64> = o
            .iter()
            .map(|(state, n)| (state.clone(), n.as_i64().unwrap_or(0)))
            .collect();
        g.webhook_jobs = Some(states);
    }
    g
}
