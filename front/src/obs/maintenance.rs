//! The maintenance schedule of a front: `api_gateway.ensure_log_partitions` at start (so that
//! today's and the next days' log partitions exist before the first batch), then
//! `api_gateway.run_maintenance('all')` every `--maintenance-interval-s` (the first run a
//! minute after start, or sooner with a short interval). Several fronts may do this at once:
//! each job takes an advisory lock in the database, the fronts that find it taken answer
//! `skipped`, and every run is recorded in `api_gateway.maintenance_run`.
use super::Obs;
use crate::db::Timeout;
use deadpool_postgres::Pool;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Create the log partitions ahead (idempotent). Errors are logged, not fatal: rows then land
/// in the default partition. `timeout`: the requests'; these jobs run without one.
pub async fn ensure_partitions(pool: &Pool, timeout: Timeout) {
    let result = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let sql = "SELECT api_gateway.ensure_log_partitions(3)";
        crate::db::query_unprepared(&client, timeout.unbounded(), sql, &[])
            .await
            .map_err(|e| crate::db::describe_error(&e))
    }
    .await;
    match result {
        Ok(rows) => {
            let created: i32 = rows.first().map(|r| r.get(0)).unwrap_or(0);
            if created > 0 {
                tracing::info!("traffic log: {created} daily partitions created");
            }
        }
        Err(e) => tracing::warn!("traffic log: ensure_log_partitions failed: {e}"),
    }
}

/// Run every job once, without a statement timeout (`timeout`: the requests'); returns the
/// database's answer.
pub async fn run_once(obs: &Obs, pool: &Pool, timeout: Timeout) -> Result<Value, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let sql = "SELECT api_gateway.run_maintenance('all')";
    let result = crate::db::query_unprepared(&client, timeout.unbounded(), sql, &[]).await;
    match result {
        Ok(rows) => {
            let v: Value = rows.first().map(|r| r.get(0)).unwrap_or(Value::Null);
            if let Some(jobs) = v.as_object() {
                for (job, answer) in jobs {
                    let outcome = if answer.get("skipped").is_some() {
                        "skipped"
                    } else {
                        "ran"
                    };
                    obs.metrics
                        .maintenance_runs
                        .with_label_values(&[job, outcome])
                        .inc();
                }
            }
            tracing::debug!("maintenance: {v}");
            Ok(v)
        }
        Err(e) => {
            obs.metrics
                .maintenance_runs
                .with_label_values(&["all", "error"])
                .inc();
            Err(crate::db::describe_error(&e))
        }
    }
}

/// The schedule (until shutdown).
pub async fn run(obs: Arc<Obs>, pool: Pool, timeout: Timeout) {
    let Some(every) = obs.options.maintenance_interval else {
        return;
    };
    let mut stop = obs.stopping();
    let mut wait = every.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        wait = every;
        if let Err(e) = run_once(&obs, &pool, timeout).await {
            tracing::warn!("maintenance failed: {e}");
        }
    }
}
