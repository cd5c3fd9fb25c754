//! Connections shared by concurrent requests (`--pipelined-connections`). A request's statement
//! is sent on the least busy shared connection without waiting for the statements already
//! there (tokio-postgres pipelines the requests of one connection). A backend that finishes a
//! statement then finds the next one waiting instead of sleeping until it is woken for it: fewer
//! backends and fewer wake-ups for the same requests (docs/http.md, "Pipelined connections").
//!
//! Only statements that are their own transaction travel this way (the statement timeout is the
//! connection's own, from its start-up packet): each is followed by its Sync, so one statement's
//! error or timeout never touches the next. A slow statement would hold up the ones queued
//! behind it, so a connection takes no more statements while its oldest has been running longer
//! than [`STALL`], nor more than [`DEPTH`] at once (unless the pool has no connection free
//! either); when no shared connection can take a statement, the request uses a pooled
//! connection of its own, as without this.
use crate::db::{Params, one};
use crate::error::Problem;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row, Statement};

/// A shared connection whose oldest statement has run this long takes no more: the statements
/// the front sends take well under a millisecond to a few; one this slow is an export or a wait
/// on a lock.
pub const STALL: Duration = Duration::from_millis(20);

/// Statements in flight on one shared connection at most while the pool has a connection free:
/// beyond, requests use pooled connections, so a database with more cores than shared
/// connections still gets them busy.
pub const DEPTH: usize = 8;

/// How long a lost shared connection waits before it is opened again.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How many shared connections `serve` opens: `given` (`--pipelined-connections`), else
/// `threads` when each statement travels alone (`timeout.alone()`) and no pooler is in between
/// (the timeout took on the connection, or `direct`: a pooler may not keep one client's
/// pipelined transactions apart). None when a statement needs its own transaction to set its
/// timeout; the second value says why a count given is not used.
pub fn count(
    given: Option<usize>,
    timeout: crate::db::Timeout,
    direct: bool,
    threads: usize,
) -> (usize, Option<String>) {
    match given {
        Some(n) if n > 0 && !timeout.alone() => (
            0,
            Some(format!(
                "--pipelined-connections {n}: not used, each request's statement needs its own \
                 transaction to set the statement timeout (--connection-settings)"
            )),
        ),
        Some(n) => (n, None),
        None if timeout.alone() && (timeout.connection_ms != 0 || direct) => (threads, None),
        None => (0, None),
    }
}

pub struct Pipeline {
    slots: Vec<Slot>,
    config: tokio_postgres::Config,
    prepared: bool,
    started: Instant,
}

#[derive(Default)]
struct Slot {
    /// None while the connection is being opened again.
    link: Mutex<Option<Arc<Link>>>,
    reconnecting: AtomicBool,
}

/// A statement prepared for these parameter types.
type Prepared = (Vec<Type>, Statement);

struct Link {
    client: tokio_postgres::Client,
    /// Statements prepared on this connection, by their text and parameter types.
    statements: Mutex<HashMap<String, Vec<Prepared>>>,
    in_flight: AtomicUsize,
    /// When, in ms since `Pipeline::started`, the connection last answered a statement or was
    /// taken while idle: its oldest statement in flight has waited at most since then.
    progress_ms: AtomicU64,
}

impl Pipeline {
    /// Opens `count` shared connections with `config` (the pool's, statement timeout included);
    /// `prepared`: statements are prepared once per connection, else sent unnamed.
    pub async fn open(
        mut config: tokio_postgres::Config,
        count: usize,
        prepared: bool,
    ) -> Result<Arc<Pipeline>, String> {
        // Told apart from the pool's in pg_stat_activity.
        config.application_name("api-gateway pipelined");
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count {
            let slot = Slot::default();
            *slot.link.lock().unwrap() = Some(Arc::new(connect(&config).await?));
            slots.push(slot);
        }
        Ok(Arc::new(Pipeline {
            slots,
            config,
            prepared,
            started: Instant::now(),
        }))
    }

    pub fn connections(&self) -> usize {
        self.slots.len()
    }

    /// The shared connections open now, and the statements in flight on them (for /metrics).
    pub fn status(&self) -> (usize, usize) {
        let links: Vec<Arc<Link>> = self
            .slots
            .iter()
            .filter_map(|s| s.link.lock().unwrap().clone())
            .filter(|l| !l.client.is_closed())
            .collect();
        let in_flight = links
            .iter()
            .map(|l| l.in_flight.load(Ordering::Relaxed))
            .sum();
        (links.len(), in_flight)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A place on the least busy shared connection that can take a statement now, or None (the
    /// caller then takes a pooled connection). A connection found closed is opened again in the
    /// background.
    pub fn take(self: &Arc<Self>) -> Option<Ticket> {
        self.take_within(DEPTH)
    }

    /// `take` beyond DEPTH (for when the pool has no connection free either): a place on the
    /// least busy shared connection that is not stalled.
    pub fn take_beyond_depth(self: &Arc<Self>) -> Option<Ticket> {
        self.take_within(usize::MAX)
    }

    fn take_within(self: &Arc<Self>, depth: usize) -> Option<Ticket> {
        let now = self.now_ms();
        let stall = STALL.as_millis() as u64;
        let mut best: Option<(usize, Arc<Link>)> = None;
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(link) = slot.link.lock().unwrap().clone() else {
                continue;
            };
            if link.client.is_closed() {
                self.reopen(i);
                continue;
            }
            let busy = link.in_flight.load(Ordering::Relaxed);
            let stalled =
                busy > 0 && now.saturating_sub(link.progress_ms.load(Ordering::Relaxed)) > stall;
            if busy >= depth || stalled {
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| busy < *b) {
                best = Some((busy, link));
            }
        }
        let (_, link) = best?;
        if link.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            link.progress_ms.store(now, Ordering::Relaxed);
        }
        Some(Ticket {
            link,
            pipeline: self.clone(),
        })
    }

    /// Forgets slot `i`'s connection and opens a new one in the background (once at a time).
    fn reopen(self: &Arc<Self>, i: usize) {
        let slot = &self.slots[i];
        if slot.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        *slot.link.lock().unwrap() = None;
        tracing::warn!("a pipelined connection was lost: opening it again");
        let pipeline = self.clone();
        tokio::spawn(async move {
            loop {
                match connect(&pipeline.config).await {
                    Ok(link) => {
                        *pipeline.slots[i].link.lock().unwrap() = Some(Arc::new(link));
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("cannot open a pipelined connection again: {e}");
                        tokio::time::sleep(RECONNECT_DELAY).await;
                    }
                }
            }
            pipeline.slots[i]
                .reconnecting
                .store(false, Ordering::Release);
        });
    }
}

async fn connect(config: &tokio_postgres::Config) -> Result<Link, String> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("cannot open a pipelined connection: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("pipelined connection: {e}");
        }
    });
    Ok(Link {
        client,
        statements: Mutex::new(HashMap::new()),
        in_flight: AtomicUsize::new(0),
        progress_ms: AtomicU64::new(0),
    })
}

/// A statement's place on a shared connection, given back when dropped (also when the request
/// is abandoned: the connection still reads and drops the statement's answer).
pub struct Ticket {
    link: Arc<Link>,
    pipeline: Arc<Pipeline>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.link.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Ticket {
    /// Runs `sql` alone (its own transaction, under the connection's statement timeout).
    pub async fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, Problem> {
        let rows = self.run(sql, params).await;
        // Answers come in order: every statement sent before this one is over too.
        self.link
            .progress_ms
            .store(self.pipeline.now_ms(), Ordering::Relaxed);
        rows
    }

    async fn run(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, Problem> {
        let client = &self.link.client;
        if !self.pipeline.prepared {
            return Ok(client.query_typed(sql, params).await?);
        }
        let same_types = |types: &[Type]| types.iter().eq(params.iter().map(|(_, t)| t));
        let known = self
            .link
            .statements
            .lock()
            .unwrap()
            .get(sql)
            .and_then(|kept| {
                kept.iter()
                    .find(|(types, _)| same_types(types))
                    .map(|(_, s)| s.clone())
            });
        let statement = match known {
            Some(s) => s,
            None => {
                let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
                let s = client.prepare_typed(sql, &types).await?;
                self.link
                    .statements
                    .lock()
                    .unwrap()
                    .entry(sql.to_string())
                    .or_default()
                    .push((types, s.clone()));
                s
            }
        };
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
        let rows = client.query(&statement, &values).await;
        if let Err(e) = &rows
            && crate::db::plan_changed(e)
        {
            // Prepared again by the next request.
            self.link.statements.lock().unwrap().remove(sql);
        }
        Ok(rows?)
    }

    pub async fn query_one(&self, sql: &str, params: &Params<'_>) -> Result<Row, Problem> {
        one(self.query(sql, params).await?, sql)
    }
}

#[cfg(test)]
mod tests {
    use super::count;
    use crate::db::Timeout;

    #[test]
    fn how_many_shared_connections() {
        let on_connection = Timeout::on_connection(15_000);
        let per_transaction = Timeout::own(15_000);
        let none = Timeout::own(0);
        // not given: one per request thread when each statement travels alone, no pooler
        assert_eq!(count(None, on_connection, true, 3), (3, None));
        assert_eq!(count(None, on_connection, false, 3), (3, None)); // forced, and it took
        assert_eq!(count(None, none, true, 2), (2, None));
        assert_eq!(count(None, none, false, 2), (0, None)); // behind a pooler
        assert_eq!(count(None, per_transaction, true, 2), (0, None));
        // given
        assert_eq!(count(Some(5), on_connection, true, 1), (5, None));
        assert_eq!(count(Some(0), on_connection, true, 4), (0, None));
        assert_eq!(count(Some(2), none, false, 4), (2, None)); // the operator's choice
        let (n, why) = count(Some(2), per_transaction, true, 4);
        assert_eq!(n, 0);
        assert!(why.unwrap().contains("--pipelined-connections 2: not used"));
    }
}
