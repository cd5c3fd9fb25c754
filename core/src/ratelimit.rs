//! Fixed-window rate-limit arithmetic.
//!
//! The SQL side keys a counter row by (subject, window start) and does the increment and the
//! read in one `INSERT … ON CONFLICT DO UPDATE … RETURNING hits`, so concurrent requests can
//! never both see the last free slot (Kong's check-then-increment race). This module only turns
//! the clock into a window and the returned count into a decision.

/// Longest window accepted: 31 days.
pub const MAX_WINDOW_S: i32 = 31 * 86_400;

/// Named windows offered in configuration.
pub const WINDOWS: [(&str, i32); 3] = [("minute", 60), ("hour", 3600), ("day", 86_400)];

/// Seconds of a named window (`minute`, `hour`, `day`; ASCII case-insensitive).
pub fn window_seconds(name: &str) -> Option<i32> {
    WINDOWS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| *s)
}

/// The window a request falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Unix seconds at which the window began, a multiple of the window length.
    pub start: i64,
    /// Whole seconds until the window ends, rounded up, at least 1 (for `Retry-After` and the
    /// `t` parameter of the `RateLimit` header).
    pub reset_s: i32,
}

/// The epoch-aligned window containing `now_unix_ms`. A `window_s` below 1 is taken as 1
/// (callers validate configuration with [`validate`]; this function must not panic).
pub fn window_for(now_unix_ms: i64, window_s: i32) -> Window {
    let w = i128::from(window_s.max(1));
    let now_ms = i128::from(now_unix_ms);
    let now_s = now_ms.div_euclid(1000);
    let start = now_s.div_euclid(w) * w;
    let end_ms = (start + w) * 1000;
    // 1 ..= w*1000 ms remain, so 1 ..= w seconds after rounding up: fits i32.
    let reset = (end_ms - now_ms + 999).div_euclid(1000).clamp(1, w);
    Window {
        // start <= now_s, and now_s >= i64::MIN / 1000, so start fits i64.
        start: start as i64,
        reset_s: reset as i32,
    }
}

/// The outcome for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in this window after this one, never negative.
    pub remaining: i32,
    pub reset_s: i32,
}

/// Decides from the counter value *after* this request's increment: allowed iff
/// `hits <= max_requests`.
pub fn decide(hits_after_increment: i64, max_requests: i32, window: &Window) -> Decision {
    let max = i64::from(max_requests);
    let remaining = (max - hits_after_increment).clamp(0, max.max(0));
    Decision {
        allowed: hits_after_increment <= max,
        remaining: remaining as i32,
        reset_s: window.reset_s,
    }
}

/// Checks a limit's configuration: `max_requests >= 0` (0 blocks everything), window between
/// 1 second and 31 days.
pub fn validate(max_requests: i32, window_s: i32) -> Result<(), String> {
    if max_requests < 0 {
        return Err(format!("max_requests must be >= 0, got {max_requests}"));
    }
    if !(1..=MAX_WINDOW_S).contains(&window_s) {
        return Err(format!(
            "window must be between 1 and {MAX_WINDOW_S} seconds (31 days), got {window_s}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn named_windows() {
        assert_eq!(window_seconds("minute"), Some(60));
        assert_eq!(window_seconds("Hour"), Some(3600));
        assert_eq!(window_seconds("day"), Some(86_400));
        assert_eq!(window_seconds("week"), None);
        assert_eq!(window_seconds(""), None);
        for (_, s) in WINDOWS {
            assert!(validate(0, s).is_ok());
        }
    }

    #[test]
    fn windows_align_to_epoch() {
        // 2023-11-14T22:13:20Z
        let now_ms = 1_700_000_000_000;
        assert_eq!(
            window_for(now_ms, 60),
            Window {
                start: 1_699_999_980,
                reset_s: 40
            }
        );
        assert_eq!(
            window_for(now_ms, 3600),
            Window {
                start: 1_699_999_200,
                reset_s: 2800
            }
        );
        assert_eq!(
            window_for(now_ms, 86_400),
            Window {
                start: 1_699_920_000,
                reset_s: 6_400
            }
        );
        // Exactly on a boundary: a full window remains.
        assert_eq!(
            window_for(60_000, 60),
            Window {
                start: 60,
                reset_s: 60
            }
        );
        // Last millisecond: rounds up to 1.
        assert_eq!(
            window_for(119_999, 60),
            Window {
                start: 60,
                reset_s: 1
            }
        );
        // 500 ms left -> 1 s; 1500 ms left -> 2 s.
        assert_eq!(window_for(59_500, 60).reset_s, 1);
        assert_eq!(window_for(58_500, 60).reset_s, 2);
        // One-second windows.
        assert_eq!(
            window_for(1_234, 1),
            Window {
                start: 1,
                reset_s: 1
            }
        );
    }

    #[test]
    fn negative_and_extreme_times() {
        assert_eq!(
            window_for(-1, 60),
            Window {
                start: -60,
                reset_s: 1
            }
        );
        assert_eq!(
            window_for(-60_000, 60),
            Window {
                start: -60,
                reset_s: 60
            }
        );
        let w = window_for(i64::MAX, MAX_WINDOW_S);
        assert!(w.reset_s >= 1);
        let w = window_for(i64::MIN, MAX_WINDOW_S);
        assert!(w.reset_s >= 1 && w.reset_s <= MAX_WINDOW_S);
        // Invalid window lengths do not panic.
        assert_eq!(window_for(1_500, 0).reset_s, 1);
        assert_eq!(window_for(1_500, -5).start, 1);
        assert_eq!(window_for(1_500, i32::MIN).start, 1);
    }

    #[test]
    fn decisions() {
        let w = Window {
            start: 0,
            reset_s: 17,
        };
        assert_eq!(
            decide(1, 3, &w),
            Decision {
                allowed: true,
                remaining: 2,
                reset_s: 17
            }
        );
        assert_eq!(
            decide(3, 3, &w),
            Decision {
                allowed: true,
                remaining: 0,
                reset_s: 17
            }
        );
        assert_eq!(
            decide(4, 3, &w),
            Decision {
                allowed: false,
                remaining: 0,
                reset_s: 17
            }
        );
        assert!(!decide(1, 0, &w).allowed);
        assert_eq!(decide(i64::MAX, i32::MAX, &w).remaining, 0);
        // Nonsense inputs stay in range.
        assert_eq!(decide(-5, 3, &w).remaining, 3);
        assert_eq!(decide(0, -1, &w).remaining, 0);
        assert!(!decide(0, -1, &w).allowed);
    }

    #[test]
    fn validation() {
        assert!(validate(0, 1).is_ok());
        assert!(validate(i32::MAX, MAX_WINDOW_S).is_ok());
        assert_eq!(
            validate(-1, 60),
            Err("max_requests must be >= 0, got -1".into())
        );
        assert!(validate(10, 0).is_err());
        assert!(validate(10, -60).is_err());
        assert!(validate(10, MAX_WINDOW_S + 1).is_err());
        assert_eq!(MAX_WINDOW_S, 2_678_400);
    }

    proptest! {
        #[test]
        fn window_contains_now(now_ms in any::<i64>(), window_s in 1..=MAX_WINDOW_S) {
            let w = window_for(now_ms, window_s);
            let now = i128::from(now_ms);
            let start_ms = i128::from(w.start) * 1000;
            let end_ms = start_ms + i128::from(window_s) * 1000;
            prop_assert!(start_ms <= now && now < end_ms);
            prop_assert_eq!(i128::from(w.start) % i128::from(window_s), 0);
            prop_assert!(w.reset_s >= 1 && w.reset_s <= window_s);
            // reset_s is the remaining time rounded up.
            let left = end_ms - now;
            prop_assert!(i128::from(w.reset_s) * 1000 >= left);
            prop_assert!(i128::from(w.reset_s - 1) * 1000 < left);
        }

        #[test]
        fn window_for_never_panics(now_ms in any::<i64>(), window_s in any::<i32>()) {
            let w = window_for(now_ms, window_s);
            prop_assert!(w.reset_s >= 1);
        }

        #[test]
        fn decide_is_consistent(hits in any::<i64>(), max in any::<i32>(), reset in any::<i32>()) {
            let d = decide(hits, max, &Window { start: 0, reset_s: reset });
            prop_assert_eq!(d.allowed, hits <= i64::from(max));
            prop_assert!(d.remaining >= 0 && d.remaining <= max.max(0));
            prop_assert_eq!(d.reset_s, reset);
        }
    }
}
