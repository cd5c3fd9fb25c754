//! An exact sliding-window limit in fixed memory: "N per window" means that no span of the
//! window's length, wherever it starts, admits more than N, while a client may still spend its
//! N at once.
//!
//! The window `W` is cut into [`SUB_BUCKETS`] sub-buckets of `g = ceil(W / K)` milliseconds,
//! aligned to the Unix epoch. Any span of length `W` touches at most `K + 1` consecutive
//! sub-buckets, so a request is admitted only if the `K + 1` sub-buckets ending with the current
//! one, this request included, hold at most N. Induction over admissions keeps every run of
//! `K + 1` sub-buckets at or under N (sub-buckets after the current one are still empty when it
//! is checked), hence every span of length `W`.
//!
//! What that costs: the check looks back over `(K + 1) g <= W + g + K` milliseconds instead of
//! `W`, so a client can be refused for at most one sub-bucket (plus rounding: `K` ms) longer than
//! an ideal sliding log would refuse it: 1 s of a minute, 1 min of an hour, 24 min of a day.
//!
//! Compare: a fixed window admits 2N across a boundary; GCRA with burst N admits up to 2N - 1 in
//! one window (it bounds a rate, not a count); the weighted two-window estimate can overshoot.

/// Sub-buckets per window (`K`). The state of one subject is `K + 1` counters.
pub const SUB_BUCKETS: usize = 60;

/// One subject's counters: `counts[i]` holds what was admitted in sub-bucket `head - K + i`,
/// oldest first, so `counts[K]` is the newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sliding {
    pub head: i64,
    /// A fixed array: a hit copies and counts without allocating.
    pub counts: [i32; SUB_BUCKETS + 1],
}

/// The outcome of one hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// What is left to spend right now, after this hit (never negative).
    pub remaining: i32,
    /// Whole seconds (at least 1, at most the window plus one sub-bucket) until more can be
    /// spent: when allowed, until the oldest admitted request leaves the window (the `t` of the
    /// `RateLimit` header); when refused, until enough has left for this request
    /// (`Retry-After`), or the window when it can never fit.
    pub reset_s: i32,
}

/// Milliseconds per sub-bucket for a window of `window_s` seconds (at least 1).
pub fn bucket_ms(window_s: i32) -> i64 {
    let w = i64::from(window_s.max(1)) * 1000;
    (w + SUB_BUCKETS as i64 - 1) / SUB_BUCKETS as i64
}

impl Sliding {
    /// No hits yet.
    pub fn empty() -> Self {
        Sliding {
            head: i64::MIN,
            counts: [0; SUB_BUCKETS + 1],
        }
    }

    /// State as stored (for example a row's `head` and `counts` columns). Counts of another
    /// length or negative are repaired rather than trusted: a damaged row never admits more.
    pub fn from_parts(head: i64, stored: &[i32]) -> Self {
        let mut counts = [0; SUB_BUCKETS + 1];
        for (c, &v) in counts.iter_mut().zip(stored) {
            *c = v.max(0);
        }
        Sliding { head, counts }
    }

    /// Moves the window to the sub-bucket of `now_ms`. A clock that went backwards (another
    /// backend's, a step) counts in the newest sub-bucket, which only ever refuses earlier.
    fn advance(&mut self, bucket: i64) {
        if bucket <= self.head {
            return;
        }
        let shift = bucket.saturating_sub(self.head);
        let len = self.counts.len();
        if shift >= len as i64 || self.head == i64::MIN {
            self.counts.iter_mut().for_each(|c| *c = 0);
        } else {
            let s = shift as usize;
            self.counts.copy_within(s.., 0);
            self.counts[len - s..].iter_mut().for_each(|c| *c = 0);
        }
        self.head = bucket;
    }

    /// What still counts at `now_ms` (the sum of the sub-buckets a hit then would look at); 0
    /// means the state can be forgotten without changing any later decision.
    pub fn used_at(&self, now_ms: i64, window_s: i32) -> i64 {
        let mut moved = *self;
        moved.advance(now_ms.div_euclid(bucket_ms(window_s)));
        moved.counts.iter().map(|&c| i64::from(c.max(0))).sum()
    }

    /// Counts `cost` (at least 1) if it fits under `limit` in every span of `window_s` seconds
    /// that contains now.
    pub fn hit(&mut self, now_ms: i64, window_s: i32, limit: i32, cost: i32) -> Outcome {
        let g = bucket_ms(window_s);
        let cost = i64::from(cost.max(1));
        let limit = i64::from(limit.max(0));
        self.advance(now_ms.div_euclid(g));
        let used: i64 = self.counts.iter().map(|&c| i64::from(c)).sum();
        let allowed = used + cost <= limit;
        if allowed {
            let newest = self.counts.len() - 1;
            self.counts[newest] =
                (i64::from(self.counts[newest]) + cost).min(i64::from(i32::MAX)) as i32;
        }
        let used = if allowed { used + cost } else { used };
        // Sub-bucket i (sub-bucket head - K + i) leaves the span at ((head + i + 1) * g). When
        // allowed: when the oldest admitted request leaves; when refused: when enough has left.
        let need = if allowed { used } else { used + cost - limit };
        let window = i64::from(window_s.max(1));
        let mut freed = 0;
        let mut reset_s = window;
        if allowed || cost <= limit {
            for (i, &c) in self.counts.iter().enumerate() {
                freed += i64::from(c);
                if c > 0 && (allowed || freed >= need) {
                    let leaves_at = (self.head + i as i64 + 1) * g;
                    reset_s = (leaves_at - now_ms + 999)
                        .div_euclid(1000)
                        .clamp(1, window + (g + 999) / 1000);
                    break;
                }
            }
        }
        Outcome {
            allowed,
            remaining: (limit - used).clamp(0, i64::from(i32::MAX)) as i32,
            reset_s: reset_s as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fixed-window admission over the same requests, for comparison.
    fn fixed(times: &[i64], window_s: i32, limit: i32) -> Vec<i64> {
        let w = i64::from(window_s) * 1000;
        let mut out = Vec::new();
        let mut current = (i64::MIN, 0);
        for &t in times {
            let start = t.div_euclid(w);
            if current.0 != start {
                current = (start, 0);
            }
            if current.1 < limit {
                current.1 += 1;
                out.push(t);
            }
        }
        out
    }

    fn most_in_any_window(admitted: &[(i64, i32)], window_ms: i64) -> i64 {
        admitted
            .iter()
            .map(|&(start, _)| {
                admitted
                    .iter()
                    .filter(|&&(t, _)| t >= start && t < start + window_ms)
                    .map(|&(_, c)| i64::from(c))
                    .sum::<i64>()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_full_burst_at_once_then_nothing_until_it_leaves() {
        let mut s = Sliding::empty();
        let t0 = 1_700_000_000_000;
        for i in 0..60 {
            let o = s.hit(t0, 60, 60, 1);
            assert!(o.allowed, "hit {i}");
            assert_eq!(o.remaining, 59 - i);
        }
        let o = s.hit(t0, 60, 60, 1);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 0);
        // Refused for the window plus at most one sub-bucket.
        assert!((60..=61).contains(&o.reset_s), "{o:?}");
        assert!(!s.hit(t0 + 59_999, 60, 60, 1).allowed);
        assert!(s.hit(t0 + 62_000, 60, 60, 1).allowed);
    }

    #[test]
    fn the_fixed_window_lets_twice_the_limit_through_a_boundary_this_does_not() {
        // 60 a minute: 60 requests in the last second before a minute boundary, 60 right after.
        let boundary = 1_700_000_040_000; // a multiple of 60 s
        let mut times: Vec<i64> = (0..60).map(|i| boundary - 1000 + i).collect();
        times.extend((0..60).map(|i| boundary + i));
        let fixed_admitted = fixed(&times, 60, 60);
        assert_eq!(fixed_admitted.len(), 120, "the fixed window's double burst");
        let mut s = Sliding::empty();
        let admitted: Vec<(i64, i32)> = times
            .iter()
            .filter(|&&t| s.hit(t, 60, 60, 1).allowed)
            .map(|&t| (t, 1))
            .collect();
        assert_eq!(admitted.len(), 60);
        assert!(most_in_any_window(&admitted, 60_000) <= 60);
    }

    #[test]
    fn costs_and_a_cost_above_the_limit() {
        let mut s = Sliding::empty();
        let o = s.hit(0, 60, 10, 4);
        assert!(o.allowed);
        assert_eq!(o.remaining, 6);
        assert!(s.hit(1, 60, 10, 6).allowed);
        let o = s.hit(2, 60, 10, 1);
        assert!(!o.allowed);
        let never = s.hit(3, 60, 10, 11);
        assert!(!never.allowed);
        assert_eq!(never.reset_s, 60);
        assert!(
            !Sliding::empty().hit(0, 60, 0, 1).allowed,
            "a limit of 0 admits nothing"
        );
    }

    #[test]
    fn a_clock_that_goes_back_only_refuses_sooner() {
        let mut s = Sliding::empty();
        assert!(s.hit(100_000, 60, 2, 1).allowed);
        assert!(s.hit(10_000, 60, 2, 1).allowed);
        assert!(!s.hit(5_000, 60, 2, 1).allowed);
        assert_eq!(s.counts.iter().sum::<i32>(), 2);
    }

    #[test]
    fn damaged_state_is_repaired() {
        let s = Sliding::from_parts(5, &[-3, 2]);
        assert_eq!(s.counts.len(), SUB_BUCKETS + 1);
        assert_eq!(s.counts[0], 0);
        assert_eq!(s.counts[1], 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The invariant: no span of the window's length admits more than the limit; and the
        /// price: a refusal means the limit was reached within the window plus one sub-bucket.
        #[test]
        fn never_more_than_the_limit_in_any_window(
            window_s in 1i32..=120,
            limit in 0i32..=40,
            steps in proptest::collection::vec((0i64..3_000, 1i32..=4), 1..300),
        ) {
            let w = i64::from(window_s) * 1000;
            let g = bucket_ms(window_s);
            let mut s = Sliding::empty();
            let mut now = 1_700_000_000_000i64;
            let mut admitted: Vec<(i64, i32)> = Vec::new();
            for (dt, cost) in steps {
                now += dt * i64::from(window_s) / 4; // gaps from 0 to ~0.75 windows
                let o = s.hit(now, window_s, limit, cost);
                let recent: i64 = admitted
                    .iter()
                    .filter(|&&(t, _)| t > now - w - g - SUB_BUCKETS as i64)
                    .map(|&(_, c)| i64::from(c))
                    .sum();
                if o.allowed {
                    admitted.push((now, cost));
                } else {
                    prop_assert!(recent + i64::from(cost) > i64::from(limit),
                        "refused with only {recent} admitted in the last window + sub-bucket");
                }
                prop_assert!(o.reset_s >= 1 && i64::from(o.reset_s) <= i64::from(window_s) + (g + 999) / 1000);
                prop_assert!(o.remaining >= 0 && o.remaining <= limit);
            }
            prop_assert!(most_in_any_window(&admitted, w) <= i64::from(limit));
        }

        /// A refused request is admitted once its reset time has passed (when it can ever fit).
        #[test]
        fn retry_after_is_enough(
            window_s in 1i32..=120,
            limit in 1i32..=20,
            offsets in proptest::collection::vec(0i64..5_000, 1..60),
        ) {
            let mut s = Sliding::empty();
            let mut now = 1_700_000_000_000i64;
            for dt in offsets {
                now += dt;
                let o = s.hit(now, window_s, limit, 1);
                if !o.allowed {
                    let mut later = s;
                    prop_assert!(later.hit(now + i64::from(o.reset_s) * 1000, window_s, limit, 1).allowed);
                }
            }
        }
    }
}
