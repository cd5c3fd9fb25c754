//! `rate_limit_hit`: check and count in one atomic statement (fixed window, UPSERT on an
//! UNLOGGED table). The row lock taken by ON CONFLICT DO UPDATE serialises concurrent callers of
//! one subject, so with limit L exactly L calls of a window see `hits <= L`.
use crate::error::{raise, spi};
use api_gateway_core::ratelimit::{self, Decision};
use pgrx::prelude::*;

const HIT: &str = "INSERT INTO api_gateway.throttle AS t (subject, window_start, window_s, hits, max_requests) \
     VALUES ($1, to_timestamp($2), $3, 1, $4) \
     ON CONFLICT (subject) DO UPDATE SET \
       hits = CASE WHEN t.window_start = EXCLUDED.window_start AND t.window_s = EXCLUDED.window_s \
                   THEN t.hits + 1 ELSE 1 END, \
       window_start = EXCLUDED.window_start, window_s = EXCLUDED.window_s, max_requests = EXCLUDED.max_requests \
     RETURNING hits";

/// Windows that ended more than an hour ago, removed a few hundred at a time by roughly one call
/// in 1024, so the table cleans itself without a scheduler.
const SWEEP: &str = "DELETE FROM api_gateway.throttle WHERE subject IN ( \
       SELECT subject FROM api_gateway.throttle \
        WHERE window_start + make_interval(secs => window_s) < now() - interval '1 hour' LIMIT 500)";

pub fn hit(subject: &str, max_requests: i32, window_s: i32) -> Decision {
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
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let window = ratelimit::window_for(now_ms, window_s);
    let hits: i64 = Spi::connect_mut(|c| {
        let plan = crate::spi::plan(
            c,
            HIT,
            &[
                PgBuiltInOids::TEXTOID,
                PgBuiltInOids::FLOAT8OID,
                PgBuiltInOids::INT4OID,
                PgBuiltInOids::INT4OID,
            ],
            true,
        );
        let hits = spi(c
            .update(
                plan,
                None,
                &[
                    subject.into(),
                    (window.start as f64).into(),
                    window_s.into(),
                    max_requests.into(),
                ],
            )
            .and_then(|t| t.first().get_one::<i32>()));
        if now_ms % 1024 == 0 {
            let sweep = crate::spi::plan(c, SWEEP, &[], true);
            spi(c.update(sweep, None, &[]));
        }
        i64::from(hits.unwrap_or(i32::MAX))
    });
    ratelimit::decide(hits, max_requests, &window)
}

/// `api_gateway.rate_limit_hit(subject text, max_requests integer, window_s integer)
///   RETURNS TABLE(allowed boolean, remaining integer, reset_s integer)`
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rate_limit_hit(
    subject: Option<&str>,
    max_requests: Option<i32>,
    window_s: Option<i32>,
) -> TableIterator<
    'static,
    (
        name!(allowed, bool),
        name!(remaining, i32),
        name!(reset_s, i32),
    ),
> {
    let (Some(subject), Some(max), Some(window)) = (subject, max_requests, window_s) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "rate_limit_hit needs a subject, a limit and a window (none may be NULL)",
            None,
        )
    };
    let d = hit(subject, max, window);
    TableIterator::once((d.allowed, d.remaining, d.reset_s))
}
