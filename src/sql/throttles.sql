-- `rate_limit_hit` (src/api/rate_limit.rs): rows of a named type, not RETURNS TABLE: a function
-- returning a named row type gets its result's shape from the type cache, one declaring its
-- columns has it rebuilt from pg_proc on every call (a quarter of a hit counted in shared memory).
-- ROWS 1, as authenticate: it answers one row, and statements joining it keep one generic plan.
CREATE TYPE api_gateway.rate_limit_answer AS (allowed boolean, remaining integer, reset_s integer);
CREATE FUNCTION api_gateway.rate_limit_hit(subject text, max_requests integer, window_s integer)
RETURNS SETOF api_gateway.rate_limit_answer
VOLATILE SECURITY DEFINER ROWS 1
LANGUAGE c AS 'MODULE_PATHNAME', 'rate_limit_hit_wrapper';
CREATE FUNCTION api_gateway.rate_limit_hit(subject text, max_requests integer, window_s integer,
                                           cost integer, algorithm text DEFAULT 'sliding')
RETURNS SETOF api_gateway.rate_limit_answer
VOLATILE SECURITY DEFINER ROWS 1
LANGUAGE c AS 'MODULE_PATHNAME', 'rate_limit_hit_cost_wrapper';

-- The counters of every storage in one listing: rows of api_gateway.throttle and, with the
-- library in shared_preload_libraries, the counters in shared memory (_shared_counters(): the
-- subject's first 30 bytes, what was counted at its last hit, when what it counts is gone).
CREATE VIEW api_gateway.active_throttles AS
SELECT subject,
       hits AS count,
       max_requests AS "limit",
       greatest(max_requests - hits, 0) AS remaining,
       hits >= max_requests AS throttled,
       window_start,
       window_s,
       window_start + make_interval(secs => window_s) AS resets_at
  FROM api_gateway.throttle
 WHERE window_start + make_interval(secs => window_s) > now()
UNION ALL
SELECT subject, hits, max_requests, greatest(max_requests - hits, 0), hits >= max_requests,
       clears_at - make_interval(secs => window_s), window_s, clears_at
  FROM api_gateway._shared_counters()
 WHERE clears_at > now();
