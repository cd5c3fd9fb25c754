//! The traffic log writer: one task per front drains the queue in batches and writes each batch
//! with ONE `SELECT api_gateway.log_requests($1)` (a JSON array of records); at shutdown it
//! closes the queue and writes everything still in it. A second task keeps the level in force
//! in step with `settings.log_level`.
use super::{LogLevel, Obs};
use deadpool_postgres::Pool;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::types::Type;

const LOG_REQUESTS: &str = "SELECT api_gateway.log_requests($1::jsonb)";

/// Run until the server has stopped serving, then drain and flush. Returns the number of rows written.
pub async fn run(obs: Arc<Obs>, pool: Pool, mut rx: mpsc::Receiver<Value>) -> u64 {
    let rows = obs.options.batch_rows;
    let wait = obs.options.batch_wait;
    let mut stop = obs.draining();
    let mut batch: Vec<Value> = Vec::with_capacity(rows.min(1024));
    let mut written = 0;
    loop {
        let first = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(first) = first else { break };
        batch.push(first);
        let deadline = Instant::now() + wait;
        while batch.len() < rows {
            tokio::select! {
                biased;
                r = rx.recv() => match r {
                    Some(r) => batch.push(r),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        written += write(&obs, &pool, &mut batch).await;
        if obs.is_draining() {
            break;
        }
    }
    // Shutdown: no new records (requests still finishing count theirs as dropped), then write
    // all that were queued.
    rx.close();
    while let Some(r) = rx.recv().await {
        batch.push(r);
        if batch.len() >= rows {
            written += write(&obs, &pool, &mut batch).await;
        }
    }
    written += write(&obs, &pool, &mut batch).await;
    written
}

/// Write one batch (retried twice); the batch is empty afterwards.
async fn write(obs: &Obs, pool: &Pool, batch: &mut Vec<Value>) -> u64 {
    if batch.is_empty() {
        return 0;
    }
    let n = batch.len() as u64;
    let json = Value::Array(std::mem::take(batch));
    for attempt in 0..3u32 {
        let result = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            client
                .query_typed(LOG_REQUESTS, &[(&json, Type::JSONB)])
                .await
                .map_err(|e| crate::db::describe_error(&e))
        }
        .await;
        match result {
            Ok(_) => {
                obs.metrics.log_batches.inc();
                obs.metrics.log_written.inc_by(n);
                return n;
            }
            Err(e) => {
                obs.metrics.log_write_errors.inc();
                tracing::warn!(
                    "traffic log: writing {n} rows failed (attempt {}): {e}",
                    attempt + 1
                );
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
        }
    }
    tracing::error!("traffic log: {n} rows lost after 3 attempts");
    obs.metrics.log_lost.inc_by(n);
    0
}

/// Read `settings.log_level` once.
pub async fn read_level(pool: &Pool) -> Result<LogLevel, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_typed("SELECT api_gateway.log_level()", &[])
        .await
        .map_err(|e| crate::db::describe_error(&e))?;
    let level: Option<String> = row.first().map(|r| r.get(0));
    Ok(level
        .as_deref()
        .and_then(LogLevel::parse)
        .unwrap_or(LogLevel::Errors))
}

/// Keep the level in step with the settings (unless overridden by --log-level).
pub async fn level_loop(obs: Arc<Obs>, pool: Pool) {
    if obs.options.level_override.is_some() {
        return;
    }
    let mut stop = obs.stopping();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(obs.options.level_refresh) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match read_level(&pool).await {
            Ok(level) => {
                if level != obs.level() {
                    tracing::info!("traffic log: now {}", level.describe());
                }
                obs.set_level(level);
            }
            Err(e) => tracing::debug!("cannot read settings.log_level: {e}"),
        }
    }
}
