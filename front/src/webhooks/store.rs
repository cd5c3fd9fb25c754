//! The worker's SQL: settings, claim, results, next due time, and the LISTEN connection. Every
//! call is one statement through `query_typed` (no named prepared statement, PgBouncer-safe).
use super::{CHANNEL, Completion, Job, Settings};
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::types::Type;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub async fn settings(pool: &Pool) -> Result<Settings, String> {
    let client = pool.get().await.map_err(err)?;
    let row = one(
        &client,
        "SELECT allow_private_targets, retry_schedule_s FROM api_gateway.webhook_worker_settings()",
    )
    .await?;
    let schedule: Option<Vec<i32>> = row.get(1);
    Ok(Settings {
        allow_private: row.get(0),
        schedule: match schedule {
            Some(s) if !s.is_empty() => s.into_iter().map(|v| v.max(0) as u64).collect(),
            _ => api_gateway_core::webhook::backoff_schedule().to_vec(),
        },
    })
}

async fn one(client: &deadpool_postgres::Client, sql: &str) -> Result<tokio_postgres::Row, String> {
    let mut rows = client.query_typed(sql, &[]).await.map_err(err)?;
    if rows.len() != 1 {
        return Err(format!("expected one row from {sql}, got {}", rows.len()));
    }
    Ok(rows.remove(0))
}

/// Lease due jobs: `slots` per webhook, except the webhooks in `busy` (id, free slots).
pub async fn claim(
    pool: &Pool,
    worker: &str,
    slots: i32,
    busy: &[(i32, i32)],
) -> Result<Vec<Job>, String> {
    let ids: Vec<i32> = busy.iter().map(|b| b.0).collect();
    let counts: Vec<i32> = busy.iter().map(|b| b.1).collect();
    let client = pool.get().await.map_err(err)?;
    let rows = client
        .query_typed(
            "SELECT job_id, event_id::text, webhook_id, attempt, url, headers, secret, timeout_ms, payload, previous_secret \
               FROM api_gateway.webhook_claim($1, $2, $3, $4)",
            &[
                (&worker, Type::TEXT),
                (&slots, Type::INT4),
                (&ids, Type::INT4_ARRAY),
                (&counts, Type::INT4_ARRAY),
            ],
        )
        .await
        .map_err(err)?;
    Ok(rows
        .into_iter()
        .map(|r| Job {
            id: r.get(0),
            event_id: r.get(1),
            webhook_id: r.get(2),
            attempt: r.get(3),
            url: r.get(4),
            headers: r.get(5),
            secret: r.get(6),
            timeout: Duration::from_millis(r.get::<_, i32>(7).max(1) as u64),
            payload: r.get(8),
            previous_secret: r.get(9),
        })
        .collect())
}

/// Seconds until the earliest waiting job of an active webhook is due (negative: overdue),
/// None when nothing waits.
pub async fn next_due_in(pool: &Pool) -> Result<Option<f64>, String> {
    let client = pool.get().await.map_err(err)?;
    let row = one(
        &client,
        "SELECT extract(epoch FROM api_gateway.webhook_next_due() - clock_timestamp())::float8",
    )
    .await?;
    Ok(row.get(0))
}

async fn complete(pool: &Pool, batch: &[Completion]) -> Result<(), String> {
    let ids: Vec<i64> = batch.iter().map(|c| c.job_id).collect();
    let attempts: Vec<i32> = batch.iter().map(|c| c.attempt).collect();
    let outcomes: Vec<&str> = batch.iter().map(|c| c.outcome).collect();
    let statuses: Vec<Option<i32>> = batch.iter().map(|c| c.status).collect();
    let errors: Vec<Option<&str>> = batch.iter().map(|c| c.error.as_deref()).collect();
    let delays: Vec<f64> = batch.iter().map(|c| c.delay_s).collect();
    let client = pool.get().await.map_err(err)?;
    client
        .query_typed(
            "SELECT api_gateway.webhook_complete($1, $2, $3, $4, $5, $6)",
            &[
                (&ids, Type::INT8_ARRAY),
                (&attempts, Type::INT4_ARRAY),
                (&outcomes, Type::TEXT_ARRAY),
                (&statuses, Type::INT4_ARRAY),
                (&errors, Type::TEXT_ARRAY),
                (&delays, Type::FLOAT8_ARRAY),
            ],
        )
        .await
        .map_err(err)?;
    Ok(())
}

/// Write results back in batches until every sender is gone. A failed write is retried (the
/// results stay in memory); if the process dies first, the leases run out and the jobs are
/// delivered again (at least once).
pub async fn record(pool: Pool, mut rx: mpsc::UnboundedReceiver<Completion>, max_batch: usize) {
    let mut batch: Vec<Completion> = Vec::with_capacity(max_batch);
    let mut backoff = Duration::from_millis(100);
    loop {
        if batch.is_empty() {
            match rx.recv().await {
                Some(c) => batch.push(c),
                None => return,
            }
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        match complete(&pool, &batch).await {
            Ok(()) => {
                batch.clear();
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(
                    "webhook worker: cannot record {} results (will retry): {e}",
                    batch.len()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Keep a LISTEN connection open (reconnecting with backoff) and call `wake` on every
/// notification and after every (re)connection (jobs may have arrived while it was down).
pub async fn listen(url: String, wake: impl Fn() + Send + Sync + 'static) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let connected = match crate::db::pg_config(&url) {
            Ok(config) => config.connect(tokio_postgres::NoTls).await,
            Err(e) => {
                tracing::error!("webhook worker: invalid LISTEN URL: {e}");
                return;
            }
        };
        match connected {
            Ok((client, mut connection)) => {
                let (ntx, mut nrx) = mpsc::unbounded_channel::<()>();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                if ntx.send(()).is_err() {
                                    break;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!("webhook worker: LISTEN connection lost: {e}");
                                break;
                            }
                            None => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(500);
                        wake();
                        while nrx.recv().await.is_some() {
                            wake();
                        }
                        drop(client);
                    }
                    Err(e) => tracing::warn!("webhook worker: LISTEN failed: {e}"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!("webhook worker: cannot open the LISTEN connection: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
