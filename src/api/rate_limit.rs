//! `rate_limit_hit`: check and count in one call, on the gate's own counter path
//! (`crate::counter`: shared memory when preloaded, else a locked row of api_gateway.throttle;
//! the arithmetic is `core::counter`'s), so concurrent callers of one subject are exact.
use crate::error::raise;
use crate::one_row::{arg, one_row_function, return_row};
use api_gateway_core::counter::{self, Algorithm};
use api_gateway_core::ratelimit;
use pgrx::prelude::*;

/// Validates and counts. A limit of 0 means no limit: allowed, nothing counted, and no
/// remaining or reset (NULL).
fn hit(
    subject: Option<&str>,
    max_requests: Option<i32>,
    window_s: Option<i32>,
    cost: Option<i32>,
    algorithm: Option<&str>,
) -> (bool, Option<i32>, Option<i32>) {
    let (Some(subject), Some(max_requests), Some(window_s), Some(cost), Some(algorithm)) =
        (subject, max_requests, window_s, cost, algorithm)
    else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "rate_limit_hit needs a subject, a limit, a window, a cost and an algorithm (none may be NULL)",
            None,
        )
    };
    if let Err(e) = ratelimit::validate(max_requests, window_s) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid rate limit: {e}"),
            None,
        );
    }
    if subject.is_empty() || subject.len() > 512 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "a rate-limit subject must have between 1 and 512 bytes",
            None,
        );
    }
    if cost < 1 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("a request's cost must be at least 1, got {cost}"),
            None,
        );
    }
    let Some(algorithm) = Algorithm::parse(algorithm) else {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown rate-limit algorithm \"{algorithm}\": use sliding or fixed"),
            None,
        )
    };
    if counter::is_unlimited(max_requests) {
        return (true, None, None);
    }
    let o = crate::counter::hit(subject, max_requests, window_s, cost, algorithm);
    (o.allowed, Some(o.remaining), Some(o.reset_s))
}

/// The answer row: (allowed boolean, remaining integer, reset_s integer).
fn answer_row(
    (allowed, remaining, reset_s): (bool, Option<i32>, Option<i32>),
) -> [Option<pg_sys::Datum>; 3] {
    [
        allowed.into_datum(),
        remaining.into_datum(),
        reset_s.into_datum(),
    ]
}

/// `api_gateway.rate_limit_hit(subject text, max_requests integer, window_s integer)
///   RETURNS SETOF api_gateway.rate_limit_answer` (allowed boolean, remaining integer, reset_s
/// integer): cost 1, sliding window. Declared in src/sql/throttles.sql (a named row type: its
/// shape comes from the type cache instead of being rebuilt from pg_proc on every call).
/// SECURITY DEFINER without a SET search_path clause: it runs SQL only through
/// `crate::counter`, which pins the search path around every statement (a hit counted in shared
/// memory runs none and skips that cost).
///
/// # Safety
/// Called by PostgreSQL with the function's arguments.
unsafe fn rate_limit_hit(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let row = hit(
            arg::<&str>(fcinfo, 0),
            arg::<i32>(fcinfo, 1),
            arg::<i32>(fcinfo, 2),
            Some(1),
            Some("sliding"),
        );
        return_row(fcinfo, answer_row(row))
    }
}
one_row_function!(
    rate_limit_hit_wrapper,
    pg_finfo_rate_limit_hit_wrapper,
    rate_limit_hit
);

/// `api_gateway.rate_limit_hit(subject text, max_requests integer, window_s integer,
///   cost integer, algorithm text DEFAULT 'sliding')`: charges `cost` (at least 1). A separate
/// overload, so the released 3-argument function keeps its symbol. Declared in
/// src/sql/throttles.sql, as the other.
///
/// # Safety
/// Called by PostgreSQL with the function's arguments.
unsafe fn rate_limit_hit_cost(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let row = hit(
            arg::<&str>(fcinfo, 0),
            arg::<i32>(fcinfo, 1),
            arg::<i32>(fcinfo, 2),
            arg::<i32>(fcinfo, 3),
            arg::<&str>(fcinfo, 4),
        );
        return_row(fcinfo, answer_row(row))
    }
}
one_row_function!(
    rate_limit_hit_cost_wrapper,
    pg_finfo_rate_limit_hit_cost_wrapper,
    rate_limit_hit_cost
);

/// `api_gateway._shared_counters()`: the counters in shared memory that still count something
/// (none without shared_preload_libraries); read through the active_throttles view.
#[pg_extern(volatile)]
fn _shared_counters() -> TableIterator<
    'static,
    (
        name!(subject, String),
        name!(hits, i32),
        name!(max_requests, i32),
        name!(window_s, i32),
        name!(clears_at, TimestampWithTimeZone),
    ),
> {
    let rows: Vec<_> = crate::counter::shared_listing()
        .into_iter()
        .map(|(subject, hits, limit, window_s, clears_ms)| {
            let at = TimestampWithTimeZone::try_from(
                ((clears_ms - 946_684_800_000) * 1000) as pg_sys::TimestampTz,
            )
            .unwrap_or(TimestampWithTimeZone::positive_infinity());
            (subject, hits, limit, window_s, at)
        })
        .collect();
    TableIterator::new(rows)
}

/// `api_gateway._forget_shared_counter(subject text) RETURNS integer`: empties the subject's
/// counter in shared memory; what it counted, or NULL when it had none there.
#[pg_extern(volatile, strict)]
fn _forget_shared_counter(subject: &str) -> Option<i32> {
    crate::counter::forget_shared(subject)
}
