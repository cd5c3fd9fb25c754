-- Statistics for DBAs and the dashboard, read from the hourly rollups (request_stats,
-- request_stats_ip), so they cost the same on a million or a billion log rows. Common arguments:
-- a time range [from_ts, to_ts), an optional Odoo user id, an optional status class
-- ('2xx', '3xx', '4xx', '5xx', '429').

CREATE FUNCTION api_gateway._status_matches(status smallint, class text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN class IS NULL
    OR (class = '429' AND status = 429)
    OR (class ~ '^[1-5]xx$' AND status / 100 = substr(class, 1, 1)::int);

-- Traffic vs errors vs rate-limited per bucket ('hour', 'day', 'month'), empty buckets included.
CREATE FUNCTION api_gateway.stats_traffic(from_ts timestamptz, to_ts timestamptz, bucket text DEFAULT 'hour',
    user_id integer DEFAULT NULL, status_class text DEFAULT NULL)
RETURNS TABLE (bucket_start timestamptz, requests bigint, errors bigint, rate_limited bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT g.b, coalesce(sum(s.requests), 0)::bigint,
           coalesce(sum(s.requests) FILTER (WHERE s.status >= 400), 0)::bigint,
           coalesce(sum(s.requests) FILTER (WHERE s.status = 429), 0)::bigint
      FROM generate_series(date_trunc($3, $1), $2 - interval '1 microsecond', ('1 ' || $3)::interval) AS g(b)
      LEFT JOIN api_gateway.request_stats s
        ON date_trunc($3, s.bucket) = g.b AND s.bucket >= $1 AND s.bucket < $2
       AND ($4 IS NULL OR s.uid = $4) AND api_gateway._status_matches(s.status, $5)
     GROUP BY g.b ORDER BY g.b;
$$;

CREATE FUNCTION api_gateway.stats_top_endpoints(from_ts timestamptz, to_ts timestamptz, user_id integer DEFAULT NULL,
    status_class text DEFAULT NULL, top integer DEFAULT 5)
RETURNS TABLE (method text, endpoint text, requests bigint, errors bigint, avg_latency_ms double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.method, s.endpoint, sum(s.requests)::bigint, (sum(s.requests) FILTER (WHERE s.status >= 400))::bigint,
           sum(s.latency_sum) / sum(s.requests)
      FROM api_gateway.request_stats s
     WHERE s.bucket >= $1 AND s.bucket < $2 AND ($3 IS NULL OR s.uid = $3) AND api_gateway._status_matches(s.status, $4)
     GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT greatest($5, 0);
$$;

CREATE FUNCTION api_gateway.stats_slowest_endpoints(from_ts timestamptz, to_ts timestamptz, user_id integer DEFAULT NULL,
    top integer DEFAULT 5)
RETURNS TABLE (method text, endpoint text, requests bigint, avg_latency_ms double precision, max_latency_ms real)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.method, s.endpoint, sum(s.requests)::bigint, sum(s.latency_sum) / sum(s.requests), max(s.latency_max)
      FROM api_gateway.request_stats s
     WHERE s.bucket >= $1 AND s.bucket < $2 AND ($3 IS NULL OR s.uid = $3)
     GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2 LIMIT greatest($4, 0);
$$;

CREATE FUNCTION api_gateway.stats_top_ips(from_ts timestamptz, to_ts timestamptz, top integer DEFAULT 5)
RETURNS TABLE (client_ip inet, requests bigint, errors bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.client_ip, sum(s.requests)::bigint, sum(s.errors)::bigint
      FROM api_gateway.request_stats_ip s WHERE s.bucket >= $1 AND s.bucket < $2
     GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT greatest($3, 0);
$$;

-- The five dashboard buckets: <10, 10-50, 50-100, 100-500, >500 ms (bounds of latency_bounds()).
CREATE FUNCTION api_gateway.stats_latency_histogram(from_ts timestamptz, to_ts timestamptz, user_id integer DEFAULT NULL,
    status_class text DEFAULT NULL)
RETURNS TABLE (range text, requests bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.label, coalesce(sum(s.requests), 0)::bigint
      FROM (VALUES (1, '<10 ms', 0, 3), (2, '10-50 ms', 4, 5), (3, '50-100 ms', 6, 6), (4, '100-500 ms', 7, 8),
                   (5, '>500 ms', 9, 99)) AS r(ord, label, lo, hi)
      LEFT JOIN api_gateway.request_stats s
        ON s.latency_bucket BETWEEN r.lo AND r.hi AND s.bucket >= $1 AND s.bucket < $2
       AND ($3 IS NULL OR s.uid = $3) AND api_gateway._status_matches(s.status, $4)
     GROUP BY r.ord, r.label ORDER BY r.ord;
$$;

CREATE FUNCTION api_gateway.stats_methods(from_ts timestamptz, to_ts timestamptz, user_id integer DEFAULT NULL,
    status_class text DEFAULT NULL)
RETURNS TABLE (method text, requests bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.method, sum(s.requests)::bigint FROM api_gateway.request_stats s
     WHERE s.bucket >= $1 AND s.bucket < $2 AND ($3 IS NULL OR s.uid = $3) AND api_gateway._status_matches(s.status, $4)
     GROUP BY 1 ORDER BY 2 DESC, 1;
$$;

CREATE FUNCTION api_gateway.stats_status(from_ts timestamptz, to_ts timestamptz, user_id integer DEFAULT NULL)
RETURNS TABLE (class text, requests bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.class, coalesce(sum(s.requests), 0)::bigint
      FROM (VALUES (1, '2xx'), (2, '4xx'), (3, '5xx'), (4, '429')) AS c(ord, class)
      LEFT JOIN api_gateway.request_stats s
        ON s.bucket >= $1 AND s.bucket < $2 AND ($3 IS NULL OR s.uid = $3)
       AND CASE c.class WHEN '429' THEN s.status = 429 WHEN '4xx' THEN s.status / 100 = 4 AND s.status <> 429
                        ELSE s.status / 100 = substr(c.class, 1, 1)::int END
     GROUP BY c.ord, c.class ORDER BY c.ord;
$$;

-- Latency percentile from the rollup histogram: the upper bound of the bucket holding it
-- (the largest observed latency for the open-ended last bucket).
CREATE FUNCTION api_gateway._latency_percentile(from_ts timestamptz, to_ts timestamptz, user_id integer, p double precision)
RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH h AS (
        SELECT s.latency_bucket AS b, sum(s.requests) AS n, max(s.latency_max) AS mx
          FROM api_gateway.request_stats s
         WHERE s.bucket >= $1 AND s.bucket < $2 AND ($3 IS NULL OR s.uid = $3)
         GROUP BY 1),
    c AS (SELECT b, mx, sum(n) OVER (ORDER BY b) AS cum, sum(n) OVER () AS total FROM h)
    SELECT CASE WHEN c.b < cardinality(api_gateway.latency_bounds()) THEN (api_gateway.latency_bounds())[c.b + 1]
                ELSE c.mx END
      FROM c WHERE c.cum >= $4 * c.total ORDER BY c.b LIMIT 1;
$$;

-- Health score 0-100: 100 x (1 - min(1, 5 x error_rate)) x latency factor, where error_rate
-- counts 5xx fully and 4xx other than 429 at one half, and the latency factor is 1 when p95 <=
-- 200 ms, falling linearly to 0.5 at p95 >= 2000 ms. No traffic scores 100.
CREATE FUNCTION api_gateway.stats_health(from_ts timestamptz, to_ts timestamptz, user_id integer DEFAULT NULL)
RETURNS TABLE (score integer, error_rate double precision, p95_ms double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH t AS (
        SELECT coalesce(sum(requests), 0) AS n,
               coalesce(sum(requests) FILTER (WHERE status >= 500), 0)
                 + 0.5 * coalesce(sum(requests) FILTER (WHERE status >= 400 AND status < 500 AND status <> 429), 0) AS bad
          FROM api_gateway.request_stats s
         WHERE s.bucket >= $1 AND s.bucket < $2 AND ($3 IS NULL OR s.uid = $3)),
    m AS (SELECT CASE WHEN t.n = 0 THEN 0 ELSE t.bad / t.n END AS er, t.n,
                 coalesce(api_gateway._latency_percentile($1, $2, $3, 0.95), 0) AS p95 FROM t)
    SELECT CASE WHEN m.n = 0 THEN 100 ELSE round(100 * (1 - least(1, 5 * m.er))
                 * (1 - 0.5 * least(1, greatest(0, (m.p95 - 200) / 1800))))::int END,
           m.er::double precision, m.p95::double precision
      FROM m;
$$;

CREATE FUNCTION api_gateway.stats_kpis(from_ts timestamptz, to_ts timestamptz, user_id integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k jsonb;
    webhooks jsonb := '{"delivered": 0, "failed": 0, "pending": 0, "dead": 0}';
BEGIN
    SELECT jsonb_build_object(
        'total_requests', coalesce(sum(requests), 0),
        'rps', round((coalesce(sum(requests), 0) / greatest(extract(epoch FROM to_ts - from_ts), 1))::numeric, 3),
        'error_rate', round((coalesce(sum(requests) FILTER (WHERE status >= 400), 0)::numeric / greatest(coalesce(sum(requests), 0), 1)), 4),
        'rate_limited', coalesce(sum(requests) FILTER (WHERE status = 429), 0),
        'avg_latency_ms', round((sum(latency_sum) / nullif(sum(requests), 0))::numeric, 2),
        'p50_latency_ms', api_gateway._latency_percentile(from_ts, to_ts, user_id, 0.5),
        'p95_latency_ms', api_gateway._latency_percentile(from_ts, to_ts, user_id, 0.95),
        'active_users', count(DISTINCT uid) FILTER (WHERE uid <> 0))
      INTO k
      FROM api_gateway.request_stats s
     WHERE s.bucket >= from_ts AND s.bucket < to_ts AND (user_id IS NULL OR s.uid = user_id);
    IF to_regclass('api_gateway.webhook_job') IS NOT NULL THEN
        EXECUTE 'SELECT jsonb_build_object(''delivered'', count(*) FILTER (WHERE state = ''delivered''),
                     ''failed'', count(*) FILTER (WHERE state = ''failed''), ''pending'', count(*) FILTER (WHERE state = ''pending''),
                     ''dead'', count(*) FILTER (WHERE state = ''dead''))
                   FROM api_gateway.webhook_job WHERE created_at >= $1 AND created_at < $2'
           INTO webhooks USING from_ts, to_ts;
    END IF;
    RETURN k || jsonb_build_object(
        'active_clients', (SELECT count(*) FROM api_gateway.client WHERE active),
        'active_tokens', (SELECT count(*) FROM api_gateway.token WHERE revoked_at IS NULL AND expires_at > now()),
        'throttled_subjects', (SELECT count(*) FROM api_gateway.active_throttles WHERE throttled),
        'webhooks', webhooks);
END;
$$;

-- The traffic log read for the dashboard and the console (the front's role reads no table).

-- `stats_faults(from_ts, user_id, status_class, max_rows)`: the newest 4xx/5xx log records since
-- from_ts (at most 10,000), newest first: the dashboard's fault feed and its CSV export.
CREATE FUNCTION api_gateway.stats_faults(from_ts timestamptz, user_id integer DEFAULT NULL,
    status_class text DEFAULT NULL, max_rows integer DEFAULT 100)
RETURNS TABLE (id bigint, at timestamptz, method text, path text, status smallint, latency_ms real,
               client_ip inet, uid integer, client_id text, user_agent text, error text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT l.id, l.at, l.method, l.path, l.status, l.latency_ms, l.client_ip, l.uid, l.client_id, l.user_agent, l.error
      FROM api_gateway.request_log l
     WHERE l.at >= $1 AND l.status >= 400 AND ($2 IS NULL OR coalesce(l.uid, 0) = $2)
       AND api_gateway._status_matches(l.status, $3)
     ORDER BY l.at DESC, l.id DESC LIMIT least(greatest($4, 0), 10000);
$$;

-- `stats_log_record(log_id, at)`: one whole log record as JSON (client_ip as a plain address),
-- NULL when it is gone; `at` (its time, as stats_faults gives it) lets the lookup use the index.
CREATE FUNCTION api_gateway.stats_log_record(log_id bigint, at timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT to_jsonb(l) || jsonb_build_object('client_ip', host(l.client_ip))
      FROM api_gateway.request_log l WHERE l.id = $1 AND ($2 IS NULL OR l.at = $2) LIMIT 1;
$$;

-- `stats_users(from_ts)`: the Odoo users seen in the rollups since from_ts (0 = anonymous), with
-- their login when Odoo's res_users is there (for the dashboard's user filter).
CREATE FUNCTION api_gateway.stats_users(from_ts timestamptz)
RETURNS TABLE (uid integer, login text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('public.res_users') IS NULL THEN
        RETURN QUERY SELECT DISTINCT s.uid, NULL::text FROM api_gateway.request_stats s
                      WHERE s.bucket >= date_trunc('hour', from_ts) ORDER BY 1;
    ELSE
        RETURN QUERY SELECT x.uid, u.login::text
                       FROM (SELECT DISTINCT s.uid FROM api_gateway.request_stats s
                              WHERE s.bucket >= date_trunc('hour', from_ts)) x
                       LEFT JOIN public.res_users u ON u.id = x.uid ORDER BY 1;
    END IF;
END;
$$;
-- `stats_window(range)`: the dashboard's time window for a range name: its start, its end (now)
-- and the bucket of its charts. 24h = the last 24 hours by hour, 30d = 30 days by day, 1y = 12
-- months by month. Any other name is 22023 naming the column `range`.
CREATE FUNCTION api_gateway.stats_window(range text, OUT from_ts timestamptz, OUT to_ts timestamptz, OUT bucket text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    to_ts := now();
    CASE range
        WHEN '24h' THEN from_ts := date_trunc('hour', to_ts) - interval '23 hours'; bucket := 'hour';
        WHEN '30d' THEN from_ts := date_trunc('day', to_ts) - interval '29 days'; bucket := 'day';
        WHEN '1y' THEN from_ts := date_trunc('month', to_ts) - interval '11 months'; bucket := 'month';
        ELSE RAISE EXCEPTION 'range is 24h, 30d or 1y' USING ERRCODE = '22023', COLUMN = 'range';
    END CASE;
END;
$$;

-- `stats_overview(range, user_id, status, parts)`: the dashboard's statistics in one JSON object:
-- `range`, `from`, `to`, `bucket`, `filter`, plus each part named in `parts` (NULL = every part
-- but `webhooks` and `users`): traffic, top_endpoints, slowest_endpoints, top_ips, latency,
-- methods, status, health, kpis, webhooks, faults, log_level, users. `user_id` filters by Odoo
-- user (0 = anonymous requests), `status` by class (2xx, 3xx, 4xx, 5xx, 429). A bad filter is
-- 22023 naming its column; an unknown part is P0002.
CREATE FUNCTION api_gateway.stats_overview(range text DEFAULT '24h', user_id integer DEFAULT NULL,
    status text DEFAULT NULL, parts text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    known CONSTANT text[] := ARRAY['traffic', 'top_endpoints', 'slowest_endpoints', 'top_ips', 'latency',
        'methods', 'status', 'health', 'kpis', 'webhooks', 'faults', 'log_level', 'users'];
    w record;
    part text;
    out jsonb;
BEGIN
    IF user_id < 0 THEN
        RAISE EXCEPTION 'user is an Odoo user id (0 for anonymous requests)' USING ERRCODE = '22023', COLUMN = 'user';
    END IF;
    IF status IS NOT NULL AND status <> ALL (ARRAY['2xx', '3xx', '4xx', '5xx', '429']) THEN
        RAISE EXCEPTION 'status is 2xx, 3xx, 4xx, 5xx or 429' USING ERRCODE = '22023', COLUMN = 'status';
    END IF;
    SELECT p INTO part FROM unnest(parts) p WHERE p IS NULL OR p <> ALL (known) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'no such statistics: %', part
            USING ERRCODE = 'P0002', HINT = 'the statistics are: ' || array_to_string(known, ', ');
    END IF;
    w := api_gateway.stats_window(coalesce(range, '24h'));
    out := jsonb_build_object('range', coalesce(range, '24h'), 'from', w.from_ts, 'to', w.to_ts,
        'bucket', w.bucket, 'filter', jsonb_build_object('user', user_id, 'status', status));
    FOREACH part IN ARRAY coalesce(parts, known[1:9] || known[11:12]) LOOP
        out := out || jsonb_build_object(part, CASE part
            WHEN 'traffic' THEN
                (SELECT coalesce(jsonb_agg(jsonb_build_object('t', x.bucket_start, 'requests', x.requests,
                    'errors', x.errors, 'rate_limited', x.rate_limited) ORDER BY x.bucket_start), '[]')
                   FROM api_gateway.stats_traffic(w.from_ts, w.to_ts, w.bucket, user_id, status) x)
            WHEN 'top_endpoints' THEN
                (SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]')
                   FROM api_gateway.stats_top_endpoints(w.from_ts, w.to_ts, user_id, status, 5) WITH ORDINALITY
                        x(method, endpoint, requests, errors, avg_latency_ms, n))
            WHEN 'slowest_endpoints' THEN
                (SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]')
                   FROM api_gateway.stats_slowest_endpoints(w.from_ts, w.to_ts, user_id, 5) WITH ORDINALITY
                        x(method, endpoint, requests, avg_latency_ms, max_latency_ms, n))
            WHEN 'top_ips' THEN
                (SELECT coalesce(jsonb_agg(jsonb_build_object('client_ip', host(x.client_ip), 'requests', x.requests,
                    'errors', x.errors) ORDER BY x.n), '[]')
                   FROM api_gateway.stats_top_ips(w.from_ts, w.to_ts, 5) WITH ORDINALITY x(client_ip, requests, errors, n))
            WHEN 'latency' THEN
                (SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]')
                   FROM api_gateway.stats_latency_histogram(w.from_ts, w.to_ts, user_id, status) WITH ORDINALITY
                        x(range, requests, n))
            WHEN 'methods' THEN
                (SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]')
                   FROM api_gateway.stats_methods(w.from_ts, w.to_ts, user_id, status) WITH ORDINALITY x(method, requests, n))
            WHEN 'status' THEN
                (SELECT coalesce(jsonb_agg(to_jsonb(x) - 'n' ORDER BY x.n), '[]')
                   FROM api_gateway.stats_status(w.from_ts, w.to_ts, user_id) WITH ORDINALITY x(class, requests, n))
            WHEN 'health' THEN
                (SELECT to_jsonb(h) FROM api_gateway.stats_health(w.from_ts, w.to_ts, user_id) h)
            WHEN 'kpis' THEN api_gateway.stats_kpis(w.from_ts, w.to_ts, user_id)
            WHEN 'webhooks' THEN coalesce(api_gateway.stats_kpis(w.from_ts, w.to_ts, user_id)->'webhooks', '{}')
            WHEN 'faults' THEN
                (SELECT coalesce(jsonb_agg(jsonb_build_object('id', l.id, 'at', l.at, 'method', l.method, 'path', l.path,
                    'status', l.status, 'latency_ms', l.latency_ms, 'client_ip', host(l.client_ip), 'uid', l.uid,
                    'client_id', l.client_id, 'error', l.error) ORDER BY l.at DESC, l.id DESC), '[]')
                   FROM api_gateway.stats_faults(w.from_ts, user_id, status, 100) l)
            WHEN 'log_level' THEN to_jsonb(api_gateway.log_level())
            WHEN 'users' THEN
                (SELECT coalesce(jsonb_agg(jsonb_build_object('uid', u.uid,
                    'login', CASE WHEN u.uid = 0 THEN '(anonymous)' ELSE u.login END) ORDER BY u.uid), '[]')
                   FROM api_gateway.stats_users(w.from_ts) u)
        END);
    END LOOP;
    RETURN out;
END;
$$;
