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
        match super::stats::admin(&state, &ctx).await {
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

/// The webhook queue (when its table exists) and the last maintenance runs.
async fn read_gauges(client: &deadpool_postgres::Client) -> DbGauges {
    let mut g = DbGauges::default();
    let row = db::query_one_on(
        client,
        2000,
        "SELECT to_regclass('api_gateway.webhook_job') IS NOT NULL, \
           (SELECT coalesce(jsonb_object_agg(job, jsonb_build_array(extract(epoch FROM last_run_at)::float8, runs)), '{}'::jsonb) \
              FROM api_gateway.maintenance_run)",
        &[],
    )
    .await;
    let Ok(row) = row else { return g };
    g.up = true;
    let webhooks: bool = row.get(0);
    let runs: serde_json::Value = row.get(1);
    if let Some(o) = runs.as_object() {
        for (job, v) in o {
            let at = v[0].as_f64().unwrap_or(0.0);
            let n = v[1].as_f64().unwrap_or(0.0);
            g.maintenance.insert(job.clone(), (at, n));
        }
    }
    if webhooks {
        match db::query_on(
            client,
            2000,
            "SELECT state::text, count(*) FROM api_gateway.webhook_job GROUP BY 1",
            &[],
        )
        .await
        {
            Ok(rows) => {
                let mut states = BTreeMap::new();
                for r in rows {
                    states.insert(r.get::<_, String>(0), r.get::<_, i64>(1));
                }
                g.webhook_jobs = Some(states);
            }
            Err(_) => g.up = false,
        }
    }
    g
}
