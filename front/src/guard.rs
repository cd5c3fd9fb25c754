//! Throttling of client IPs that keep failing authentication (`--auth-failure-limit`).
//!
//! Every bearer request costs a gate call in PostgreSQL, valid or not, so without this a flood
//! of invalid tokens takes a share of the pool and of the database's CPU in proportion to its
//! connections, and valid clients slow down by about (flood connections + theirs) / theirs.
//! Once one IP has had `limit` failed authentications (401 from the gate) within a window (this
//! one or the previous one), at most `concurrency` of its requests are in the gate at a time;
//! the others wait their turn, at most `wait` (the pool timeout), and then get 429 without any
//! database call. A turn that fails authentication again is kept `delay` longer (without its
//! database connection) before the 401 goes out, so the address gets at most `concurrency`
//! failed gate calls per `delay` however many connections it opens. Waiting rather than
//! refusing at once keeps a flooding client from spinning on cheap refusals (each one would
//! still be parsed, answered and logged). Valid requests from that IP still pass, in turn.
//! Counts are per front process, in memory.
use crate::error::{Problem, kind};
use axum::http::{StatusCode, header};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// IPs tracked at most; beyond this, entries that have nothing to remember are dropped, and a
/// new IP is not tracked if none can be (fail open: a forged flood of addresses cannot make
/// the map grow without bound).
const MAX_TRACKED: usize = 65_536;

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    failures: u32,
    /// Failures of the window before the current one (so that a flood does not get its full
    /// concurrency back for a moment at each window boundary).
    previous: u32,
    permits: Arc<Semaphore>,
}

impl Entry {
    fn roll(&mut self, now: Instant, window: Duration) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= window {
            self.previous = if elapsed < window * 2 {
                self.failures
            } else {
                0
            };
            self.failures = 0;
            self.window_start = now;
        }
    }

    fn suspect(&self, limit: u32) -> bool {
        self.failures >= limit || self.previous >= limit
    }
}

#[derive(Debug)]
pub struct AuthGuard {
    /// Failures per window that make an IP suspect; 0: the guard is off.
    limit: u32,
    window: Duration,
    concurrency: usize,
    wait: Duration,
    /// How long a throttled IP's failed turn is kept before its 401 is sent.
    pub delay: Duration,
    ips: Mutex<HashMap<IpAddr, Entry>>,
}

impl AuthGuard {
    pub fn new(
        limit: u32,
        window: Duration,
        concurrency: usize,
        wait: Duration,
        delay: Duration,
    ) -> Self {
        AuthGuard {
            limit,
            window: window.max(Duration::from_secs(1)),
            concurrency: concurrency.max(1),
            wait,
            delay,
            ips: Mutex::new(HashMap::new()),
        }
    }

    pub fn off() -> Self {
        AuthGuard::new(
            0,
            Duration::from_secs(10),
            1,
            Duration::ZERO,
            Duration::ZERO,
        )
    }

    /// The right to call the gate for a request from `ip`: immediate (None) unless the IP is
    /// suspect; then a permit, waited for at most `wait`, or a 429 problem.
    pub async fn admit(&self, ip: Option<IpAddr>) -> Result<Option<OwnedSemaphorePermit>, Problem> {
        let (Some(ip), true) = (ip, self.limit > 0) else {
            return Ok(None);
        };
        let permits = {
            let mut ips = self.ips.lock().unwrap_or_else(|p| p.into_inner());
            match ips.get_mut(&ip) {
                None => return Ok(None),
                Some(e) => {
                    e.roll(Instant::now(), self.window);
                    if !e.suspect(self.limit) {
                        return Ok(None);
                    }
                    e.permits.clone()
                }
            }
        };
        match tokio::time::timeout(self.wait, permits.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(self.refusal()),
        }
    }

    /// Count a failed authentication of a request from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        let (Some(ip), true) = (ip, self.limit > 0) else {
            return;
        };
        let now = Instant::now();
        let mut ips = self.ips.lock().unwrap_or_else(|p| p.into_inner());
        if !ips.contains_key(&ip) && ips.len() >= MAX_TRACKED {
            let (window, concurrency) = (self.window, self.concurrency);
            ips.retain(|_, e| {
                now.saturating_duration_since(e.window_start) < window * 2
                    || e.permits.available_permits() < concurrency
            });
            if ips.len() >= MAX_TRACKED {
                return;
            }
        }
        let e = ips.entry(ip).or_insert_with(|| Entry {
            window_start: now,
            failures: 0,
            previous: 0,
            permits: Arc::new(Semaphore::new(self.concurrency)),
        });
        e.roll(now, self.window);
        e.failures = e.failures.saturating_add(1);
    }

    fn refusal(&self) -> Problem {
        Problem::new(StatusCode::TOO_MANY_REQUESTS, kind::AUTH_FAILURES)
            .detail("too many failed authentications from this address; retry later")
            .header(header::RETRY_AFTER, "1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn an_ip_becomes_suspect_after_the_limit_and_is_serialised() {
        let g = AuthGuard::new(
            3,
            Duration::from_secs(10),
            1,
            Duration::from_millis(500),
            Duration::ZERO,
        );
        let bad = ip("203.0.113.66");
        for _ in 0..2 {
            g.failed(bad);
        }
        // Below the limit: no permit needed.
        assert!(g.admit(bad).await.unwrap().is_none());
        g.failed(bad);
        // Suspect: one at a time.
        let first = g.admit(bad).await.unwrap();
        assert!(first.is_some());
        let refused = g.admit(bad).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.kind, kind::AUTH_FAILURES.0);
        assert!(refused.headers.contains_key(header::RETRY_AFTER));
        // A waiting request gets the permit when the first one ends.
        let (second, ()) = tokio::join!(g.admit(bad), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(first);
        });
        assert!(second.unwrap().is_some());
        // Other addresses are not affected.
        assert!(g.admit(ip("198.51.100.7")).await.unwrap().is_none());
        assert!(g.admit(None).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn suspicion_lasts_one_more_window_then_ends() {
        let g = AuthGuard::new(
            2,
            Duration::from_secs(10),
            1,
            Duration::ZERO,
            Duration::ZERO,
        );
        let bad = ip("2001:db8::1");
        g.failed(bad);
        g.failed(bad);
        assert!(g.admit(bad).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(11)).await;
        // The next window still remembers the previous one's failures.
        assert!(g.admit(bad).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(g.admit(bad).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn off_does_nothing() {
        let g = AuthGuard::off();
        let bad = ip("203.0.113.66");
        for _ in 0..100 {
            g.failed(bad);
        }
        assert!(g.admit(bad).await.unwrap().is_none());
        assert!(g.ips.lock().unwrap().is_empty());
    }
}
