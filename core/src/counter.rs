//! One rate-limit counter, whatever stores it (a row of `api_gateway.throttle` or a slot of the
//! extension's shared memory): which algorithm, what a limit of 0 means, how a hit changes the
//! state, and when a counter holds nothing any more (so its slot or row may go).
//!
//! The state of both algorithms fits one shape, `(head, counts)` of [`Sliding`]: the sliding
//! window uses it as it is; the fixed window keeps its window's index (`now / window`) in `head`
//! and its hits in the newest count.

use crate::ratelimit;
use crate::sliding_window::{Outcome, SUB_BUCKETS, Sliding, bucket_ms};

/// A limit of 0 means "no limit": nothing is counted, everything passes. One meaning everywhere
/// (profiles, the global setting, `rate_limit_hit`); to refuse a user, deactivate the profile.
pub const UNLIMITED: i32 = 0;

/// Whether `limit` means "no limit" (see [`UNLIMITED`]).
pub fn is_unlimited(limit: i32) -> bool {
    limit == UNLIMITED
}

/// How a limit of N per window counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// No span of the window's length, wherever it starts, admits more than N (the default).
    #[default]
    Sliding,
    /// N per epoch-aligned window: up to 2N across a boundary.
    Fixed,
}

impl Algorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sliding" => Some(Algorithm::Sliding),
            "fixed" => Some(Algorithm::Fixed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sliding => "sliding",
            Algorithm::Fixed => "fixed",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Algorithm::Sliding => 1,
            Algorithm::Fixed => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Algorithm::Sliding),
            2 => Some(Algorithm::Fixed),
            _ => None,
        }
    }
}

/// One subject's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    pub algorithm: Algorithm,
    pub window_s: i32,
    pub state: Sliding,
}

fn window_ms(window_s: i32) -> i64 {
    i64::from(window_s.max(1)) * 1000
}

impl Counter {
    pub fn empty(algorithm: Algorithm, window_s: i32) -> Self {
        Counter {
            algorithm,
            window_s,
            state: Sliding::empty(),
        }
    }

    /// A fixed-window counter as the table has always stored it: the window's start (Unix ms)
    /// and its hits.
    pub fn fixed_from_row(window_s: i32, window_start_ms: i64, hits: i32) -> Self {
        let mut c = Counter::empty(Algorithm::Fixed, window_s);
        c.state.head = window_start_ms.div_euclid(window_ms(window_s));
        c.state.counts[SUB_BUCKETS] = hits.max(0);
        c
    }

    /// What is still counted at `now_ms` (0 when the counter may be forgotten).
    pub fn used(&self, now_ms: i64) -> i64 {
        match self.algorithm {
            Algorithm::Fixed => {
                if self.state.head == now_ms.div_euclid(window_ms(self.window_s)) {
                    i64::from(self.state.counts[SUB_BUCKETS].max(0))
                } else {
                    0
                }
            }
            Algorithm::Sliding => self.state.used_at(now_ms, self.window_s),
        }
    }

    /// Nothing left in its window: forgetting it changes no future decision.
    pub fn idle(&self, now_ms: i64) -> bool {
        self.used(now_ms) == 0
    }

    /// Counts `cost` (at least 1) if it fits under `limit` (which must not be
    /// [`UNLIMITED`]; callers skip counting then). A counter kept under another algorithm or
    /// window (the profile changed) carries what it still counts into the new one's current
    /// sub-bucket: a change never resets a limit early.
    pub fn hit(
        &mut self,
        now_ms: i64,
        algorithm: Algorithm,
        window_s: i32,
        limit: i32,
        cost: i32,
    ) -> Outcome {
        if self.algorithm != algorithm || self.window_s != window_s {
            let carried = self.used(now_ms).min(i64::from(i32::MAX)) as i32;
            *self = Counter::empty(algorithm, window_s);
            if carried > 0 {
                self.state.head = match algorithm {
                    Algorithm::Fixed => now_ms.div_euclid(window_ms(window_s)),
                    Algorithm::Sliding => now_ms.div_euclid(bucket_ms(window_s)),
                };
                self.state.counts[SUB_BUCKETS] = carried;
            }
        }
        match algorithm {
            Algorithm::Sliding => self.state.hit(now_ms, window_s, limit, cost),
            Algorithm::Fixed => {
                let window = now_ms.div_euclid(window_ms(window_s));
                if self.state.head != window {
                    self.state = Sliding::empty();
                    self.state.head = window;
                }
                let used = i64::from(self.state.counts[SUB_BUCKETS].max(0));
                let cost = i64::from(cost.max(1));
                let limit = i64::from(limit.max(0));
                let allowed = used + cost <= limit;
                let used = if allowed { used + cost } else { used };
                self.state.counts[SUB_BUCKETS] = used.min(i64::from(i32::MAX)) as i32;
                let reset_s = if allowed || cost <= limit {
                    ratelimit::window_for(now_ms, window_s).reset_s
                } else {
                    window_s.max(1)
                };
                Outcome {
                    allowed,
                    remaining: (limit - used).clamp(0, i64::from(i32::MAX)) as i32,
                    reset_s,
                }
            }
        }
    }

    /// When what it counts is gone (Unix ms): the end of the fixed window, or when the newest
    /// sub-bucket leaves the sliding window. For listings (`active_throttles`).
    pub fn clears_at_ms(&self) -> i64 {
        match self.algorithm {
            Algorithm::Fixed => (self.state.head + 1).saturating_mul(window_ms(self.window_s)),
            Algorithm::Sliding => (self.state.head.saturating_add(SUB_BUCKETS as i64 + 1))
                .saturating_mul(bucket_ms(self.window_s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_700_000_040_000; // a multiple of 60 s

    #[test]
    fn names_and_codes_round_trip() {
        for a in [Algorithm::Sliding, Algorithm::Fixed] {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
            assert_eq!(Algorithm::from_code(a.code()), Some(a));
        }
        assert_eq!(Algorithm::parse("gcra"), None);
        assert_eq!(Algorithm::from_code(0), None);
        assert_eq!(Algorithm::default(), Algorithm::Sliding);
        assert!(is_unlimited(0) && !is_unlimited(1));
    }

    #[test]
    fn the_fixed_window_admits_twice_the_limit_across_a_boundary_the_sliding_one_does_not() {
        for (algorithm, expected) in [(Algorithm::Fixed, 120), (Algorithm::Sliding, 60)] {
            let mut c = Counter::empty(algorithm, 60);
            let admitted = (0..60)
                .map(|i| T0 - 1000 + i)
                .chain((0..60).map(|i| T0 + i))
                .filter(|&t| c.hit(t, algorithm, 60, 60, 1).allowed)
                .count();
            assert_eq!(admitted, expected, "{algorithm:?}");
        }
    }

    #[test]
    fn fixed_counts_costs_and_refusals_do_not_count() {
        let mut c = Counter::empty(Algorithm::Fixed, 60);
        let o = c.hit(T0, Algorithm::Fixed, 60, 10, 4);
        assert!(o.allowed);
        assert_eq!(o.remaining, 6);
        assert_eq!(o.reset_s, 60);
        assert!(!c.hit(T0 + 1, Algorithm::Fixed, 60, 10, 7).allowed);
        let o = c.hit(T0 + 2, Algorithm::Fixed, 60, 10, 6);
        assert!(o.allowed, "the refused 7 was not counted");
        assert_eq!(o.remaining, 0);
        assert!(c.hit(T0 + 60_000, Algorithm::Fixed, 60, 10, 10).allowed);
        assert_eq!(c.hit(T0, Algorithm::Fixed, 60, 10, 11).reset_s, 60);
    }

    #[test]
    fn a_row_of_the_old_table_keeps_counting() {
        let mut c = Counter::fixed_from_row(60, T0, 59);
        assert_eq!(c.used(T0 + 5), 59);
        assert!(c.hit(T0 + 5, Algorithm::Fixed, 60, 60, 1).allowed);
        assert!(!c.hit(T0 + 6, Algorithm::Fixed, 60, 60, 1).allowed);
        assert!(c.idle(T0 + 60_000));
        assert_eq!(c.clears_at_ms(), T0 + 60_000);
    }

    #[test]
    fn changing_algorithm_or_window_never_resets_early() {
        let mut c = Counter::empty(Algorithm::Fixed, 60);
        for _ in 0..5 {
            assert!(c.hit(T0, Algorithm::Fixed, 60, 5, 1).allowed);
        }
        assert!(!c.hit(T0 + 10, Algorithm::Sliding, 60, 5, 1).allowed);
        assert!(!c.hit(T0 + 20, Algorithm::Sliding, 3600, 5, 1).allowed);
        assert!(!c.hit(T0 + 30, Algorithm::Fixed, 60, 5, 1).allowed);
    }

    #[test]
    fn idle_when_nothing_is_left_in_the_window() {
        let mut c = Counter::empty(Algorithm::Sliding, 60);
        assert!(c.idle(T0));
        c.hit(T0, Algorithm::Sliding, 60, 5, 1);
        assert!(!c.idle(T0 + 59_000));
        assert!(c.idle(c.clears_at_ms()));
        assert!(!c.idle(c.clears_at_ms() - 1));
    }

    proptest! {
        /// Forgetting an idle counter changes nothing: an idle counter decides like an empty one.
        #[test]
        fn an_idle_counter_decides_like_a_new_one(
            fixed in any::<bool>(),
            window_s in 1i32..=120,
            limit in 1i32..=20,
            steps in proptest::collection::vec((0i64..200_000, 1i32..=3), 1..60),
        ) {
            let algorithm = if fixed { Algorithm::Fixed } else { Algorithm::Sliding };
            let mut c = Counter::empty(algorithm, window_s);
            let mut now = T0;
            for (dt, cost) in steps {
                now += dt;
                if c.idle(now) {
                    let mut fresh = Counter::empty(algorithm, window_s);
                    let mut kept = c;
                    prop_assert_eq!(kept.hit(now, algorithm, window_s, limit, cost),
                                    fresh.hit(now, algorithm, window_s, limit, cost));
                }
                let before = c.used(now);
                let o = c.hit(now, algorithm, window_s, limit, cost);
                prop_assert!(c.used(now) <= i64::from(limit));
                prop_assert_eq!(c.used(now), if o.allowed { before + i64::from(cost) } else { before });
            }
        }
    }
}
