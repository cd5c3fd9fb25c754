-- api_gateway 0.4.0 -> 0.5.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.5.0'" to load this file. \quit

-- == stats (issue 13): the dashboard's statistics from one function, stats_overview; stats_window ==
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
-- Granted with the stats_* family by grant_front; nothing is PUBLIC (finalize.sql).
REVOKE ALL ON FUNCTION api_gateway.stats_window(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway.stats_overview(text, integer, text, text[]) FROM PUBLIC;

-- == nested: nested reads (issue 18.1): fields=name{...}, web_read specifications ==

-- src/api/data.rs
CREATE  FUNCTION "web_search_read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]', /* Option < & str > */
	"specification" jsonb DEFAULT '{}', /* Option < pgrx :: JsonB > */
	"limit" INT DEFAULT NULL, /* Option < i32 > */
	"offset" INT DEFAULT 0, /* Option < i32 > */
	"order" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* RawJsonb */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'web_search_read_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "web_read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"specification" jsonb DEFAULT '{}' /* Option < pgrx :: JsonB > */
) RETURNS jsonb /* Option < RawJsonb > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'web_read_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "web_read_versioned"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"specification" jsonb DEFAULT '{}' /* Option < pgrx :: JsonB > */
) RETURNS jsonb /* Option < RawJsonb > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'web_read_versioned_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "_nested_read_refused"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT /* Option < i32 > */
) RETURNS jsonb /* Option < pgrx :: JsonB > */
VOLATILE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_nested_read_refused_wrapper';

-- src/sql/finalize.sql
-- `grant_front(role)`: everything `api-gateway serve` calls: the gate, OAuth2, the data
-- functions, the traffic log writer and maintenance, the dashboard's statistics, /metrics and
-- the admin console (every admin_* function). Returns the number of functions granted. Serve
-- also delivers webhooks unless --webhooks false: then grant_worker(role) too.
CREATE OR REPLACE FUNCTION api_gateway.grant_front(role name) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN api_gateway._grant_execute(role, ARRAY[
        'api_gateway.version()',
        'api_gateway.authenticate(text, inet, text)',
        'api_gateway.issue_token(text, text, text, inet)',
        'api_gateway.revoke_token(text)',
        'api_gateway.introspect_token(text)',
        'api_gateway.oauth_client_check(text, text, inet)',
        'api_gateway.revoke_token_as_client(text, text)',
        'api_gateway.describe_models(integer)',
        'api_gateway.search_read(integer, text, text, text[], integer, integer, text)',
        'api_gateway.search_count(integer, text, text)',
        'api_gateway.read(integer, text, integer, text[])',
        'api_gateway.create(integer, text, jsonb)',
        'api_gateway.write(integer, text, integer, jsonb)',
        'api_gateway.unlink(integer, text, integer)',
        'api_gateway.read_versioned(integer, text, integer, text[])',
        'api_gateway.write_if_match(integer, text, integer, jsonb, text[])',
        'api_gateway.unlink_if_match(integer, text, integer, text[])',
        'api_gateway.search_page(integer, text, text, text[], integer, text, text)',
        'api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text)',
        'api_gateway.web_read(integer, text, integer, jsonb)',
        'api_gateway.web_read_versioned(integer, text, integer, jsonb)',
        'api_gateway.log_requests(jsonb)',
        'api_gateway.log_level()',
        'api_gateway.ensure_log_partitions(integer)',
        'api_gateway.run_maintenance(text)',
        'api_gateway.metrics_gauges()',
        -- --odoo-url: the OAuth2 clients' upstream Odoo keys and the idempotency keys.
        'api_gateway.upstream_key(text)',
        'api_gateway.idempotency_begin(text, text, text, integer)',
        'api_gateway.idempotency_finish(text, text, text, integer, jsonb, jsonb)',
        'api_gateway.idempotency_release(text, text, text)']
        -- The dashboard's and the console's families, whole: stats_* and admin_*.
        || ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                  WHERE p.pronamespace = 'api_gateway'::regnamespace
                    AND (p.proname LIKE 'stats\_%' OR p.proname LIKE 'admin\_%')
                  ORDER BY 1));
END;
$$;

REVOKE ALL ON FUNCTION api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text),
    api_gateway.web_read(integer, text, integer, jsonb),
    api_gateway.web_read_versioned(integer, text, integer, jsonb),
    api_gateway._nested_read_refused(integer, text, integer) FROM PUBLIC;
ALTER FUNCTION api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.web_read(integer, text, integer, jsonb) SET plan_cache_mode = force_generic_plan;

-- == oread (issue 20): fields Odoo fills in a read (--odoo-url) and binary fields as files ==

-- src/api/data.rs
CREATE  FUNCTION "fields_in_sql"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"fields" TEXT[] /* Option < Vec < Option < String > > > */
) RETURNS TEXT[] /* Option < Vec < String > > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fields_in_sql_wrapper';

CREATE  FUNCTION "odoo_fill"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"fields" TEXT[] /* Option < Vec < Option < String > > > */
) RETURNS jsonb /* Option < pgrx :: JsonB > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'odoo_fill_wrapper';

CREATE  FUNCTION "binary_file"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"field" TEXT /* Option < & str > */
) RETURNS jsonb /* Option < pgrx :: JsonB > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'binary_file_wrapper';

-- src/sql/finalize.sql
-- `grant_front(role)`: everything `api-gateway serve` calls: the gate, OAuth2, the data
-- functions, the traffic log writer and maintenance, the dashboard's statistics, /metrics and
-- the admin console (every admin_* function). Returns the number of functions granted. Serve
-- also delivers webhooks unless --webhooks false: then grant_worker(role) too.
CREATE OR REPLACE FUNCTION api_gateway.grant_front(role name) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN api_gateway._grant_execute(role, ARRAY[
        'api_gateway.version()',
        'api_gateway.authenticate(text, inet, text)',
        'api_gateway.issue_token(text, text, text, inet)',
        'api_gateway.revoke_token(text)',
        'api_gateway.introspect_token(text)',
        'api_gateway.oauth_client_check(text, text, inet)',
        'api_gateway.revoke_token_as_client(text, text)',
        'api_gateway.describe_models(integer)',
        'api_gateway.search_read(integer, text, text, text[], integer, integer, text)',
        'api_gateway.search_count(integer, text, text)',
        'api_gateway.read(integer, text, integer, text[])',
        'api_gateway.create(integer, text, jsonb)',
        'api_gateway.write(integer, text, integer, jsonb)',
        'api_gateway.unlink(integer, text, integer)',
        'api_gateway.read_versioned(integer, text, integer, text[])',
        'api_gateway.write_if_match(integer, text, integer, jsonb, text[])',
        'api_gateway.unlink_if_match(integer, text, integer, text[])',
        'api_gateway.search_page(integer, text, text, text[], integer, text, text)',
        'api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text)',
        'api_gateway.web_read(integer, text, integer, jsonb)',
        'api_gateway.web_read_versioned(integer, text, integer, jsonb)',
        -- --odoo-url: the fields Odoo fills in a read, and binary fields served as files.
        'api_gateway.fields_in_sql(integer, text, text[])',
        'api_gateway.odoo_fill(integer, text, text[])',
        'api_gateway.binary_file(integer, text, integer, text)',
        'api_gateway.log_requests(jsonb)',
        'api_gateway.log_level()',
        'api_gateway.ensure_log_partitions(integer)',
        'api_gateway.run_maintenance(text)',
        'api_gateway.metrics_gauges()',
        -- --odoo-url: the OAuth2 clients' upstream Odoo keys and the idempotency keys.
        'api_gateway.upstream_key(text)',
        'api_gateway.idempotency_begin(text, text, text, integer)',
        'api_gateway.idempotency_finish(text, text, text, integer, jsonb, jsonb)',
        'api_gateway.idempotency_release(text, text, text)']
        -- The dashboard's and the console's families, whole: stats_* and admin_*.
        || ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                  WHERE p.pronamespace = 'api_gateway'::regnamespace
                    AND (p.proname LIKE 'stats\_%' OR p.proname LIKE 'admin\_%')
                  ORDER BY 1));
END;
$$;

REVOKE ALL ON FUNCTION api_gateway.fields_in_sql(integer, text, text[]),
    api_gateway.odoo_fill(integer, text, text[]),
    api_gateway.binary_file(integer, text, integer, text) FROM PUBLIC;
