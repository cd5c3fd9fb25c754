-- api_gateway 0.4.0 -> 0.5.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.5.0'" to load this file. \quit

-- == capture: cheap capture (issue 16, point 4) ==
-- The trigger function of the watched tables becomes Rust (src/api/webhook_capture.rs): it
-- writes the common cases into the outbox itself with a per-backend cache of the webhooks,
-- and calls the previous PL/pgSQL implementation, now _webhook_capture_sql(), for the rest.
-- The existing triggers keep pointing at _webhook_capture() (same oid, replaced in place).
CREATE FUNCTION api_gateway."_webhook_invalidate"(
	"rel" oid /* pg_sys :: Oid */
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_invalidate_wrapper';

CREATE FUNCTION api_gateway._webhook_capture_sql() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    _w record;
    _ts timestamptz := clock_timestamp();
    -- Whether this transaction queued an event already (else there is nothing to merge into).
    _queued boolean := api_gateway._webhook_queued();
    _n bigint := 0;
    _total bigint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), w.id, 'create', t.id, api_gateway._webhook_row_json(t, w.payload_attnums), _ts
          FROM (SELECT h.id, h.payload_attnums FROM api_gateway.webhook h
                 WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_create AND h.condition IS NULL) w
         CROSS JOIN agw_new t;
        GET DIAGNOSTICS _total = ROW_COUNT;
    ELSIF TG_OP = 'UPDATE' AND NOT _queued THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), c.wid, 'write', c.id, c.d, _ts
          FROM (SELECT w.id AS wid, t.id, api_gateway._webhook_write_json(t, o, w.payload_attnums, w.watched_attnums) AS d
                  FROM (SELECT h.id, h.payload_attnums, h.watched_attnums FROM api_gateway.webhook h
                         WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_write AND h.condition IS NULL) w
                 CROSS JOIN agw_new t
                  JOIN agw_old o ON o.id = t.id) c
         WHERE c.d IS NOT NULL;
        GET DIAGNOSTICS _total = ROW_COUNT;
    ELSIF TG_OP = 'UPDATE' THEN
        MERGE INTO api_gateway.webhook_job j
        USING (SELECT s.wid, s.id, s.d, s.wants, p.id AS pid,
                      CASE WHEN p.id IS NOT NULL THEN
                           api_gateway._webhook_merge(p.action, p.data, s.d,
                               CASE WHEN s.d IS NULL THEN api_gateway._webhook_row_json(s.t, s.attnums) END, TG_RELID)
                      END AS m
                 FROM (SELECT w.id AS wid, w.on_write AS wants, w.payload_attnums AS attnums, t.id, t,
                              CASE WHEN w.on_write THEN api_gateway._webhook_write_json(t, o, w.payload_attnums, w.watched_attnums) END AS d
                         FROM (SELECT h.id, h.on_write, h.payload_attnums, h.watched_attnums FROM api_gateway.webhook h
                                WHERE h.table_name = TG_TABLE_NAME AND h.active AND (h.on_write OR h.on_create)
                                  AND h.condition IS NULL) w
                        CROSS JOIN agw_new t
                         JOIN agw_old o ON o.id = t.id) s
                 LEFT JOIN LATERAL (
                      SELECT q.id, q.action, q.data FROM api_gateway.webhook_job q
                       WHERE q.webhook_id = s.wid AND q.record_id = s.id AND q.state IN ('pending', 'failed')
                         AND q.action <> 'unlink' AND api_gateway._webhook_own(q.xmin)
                       ORDER BY q.id DESC LIMIT 1) p ON true) x
           ON j.id = x.pid
        WHEN MATCHED AND x.m IS NULL THEN DELETE
        WHEN MATCHED THEN UPDATE SET data = x.m, created_at = _ts, updated_at = now()
        WHEN NOT MATCHED AND x.d IS NOT NULL THEN
            INSERT (event_id, webhook_id, action, record_id, data, created_at)
            VALUES (gen_random_uuid(), x.wid, 'write', x.id, x.d, _ts);
    ELSIF NOT _queued THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), w.id, 'unlink', t.id, NULL, _ts
          FROM (SELECT h.id FROM api_gateway.webhook h
                 WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_unlink AND h.condition IS NULL) w
         CROSS JOIN agw_old t;
        GET DIAGNOSTICS _total = ROW_COUNT;
    ELSE
        MERGE INTO api_gateway.webhook_job j
        USING (SELECT w.id AS wid, w.on_unlink AS wants, t.id, p.id AS pid, p.action AS pact
                 FROM (SELECT h.id, h.on_unlink FROM api_gateway.webhook h
                        WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.condition IS NULL) w
                CROSS JOIN agw_old t
                 LEFT JOIN LATERAL (
                      SELECT q.id, q.action FROM api_gateway.webhook_job q
                       WHERE q.webhook_id = w.id AND q.record_id = t.id AND q.state IN ('pending', 'failed')
                         AND q.action <> 'unlink' AND api_gateway._webhook_own(q.xmin)
                       ORDER BY q.id DESC LIMIT 1) p ON true) x
           ON j.id = x.pid
        WHEN MATCHED AND x.pact = 'create' THEN DELETE
        WHEN MATCHED AND x.wants THEN UPDATE SET action = 'unlink', data = NULL, created_at = _ts, updated_at = now()
        WHEN NOT MATCHED AND x.wants THEN
            INSERT (event_id, webhook_id, action, record_id, data, created_at)
            VALUES (gen_random_uuid(), x.wid, 'unlink', x.id, NULL, _ts);
    END IF;
    -- Webhooks with a domain (the trigger's argument says there are some): one EXECUTE each.
    IF TG_NARGS > 0 THEN
        FOR _w IN
            SELECT h.id, h.payload_attnums, h.watched_attnums, h.condition, h.on_create, h.on_write, h.on_unlink
              FROM api_gateway.webhook h
             WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.condition IS NOT NULL
               AND CASE TG_OP WHEN 'INSERT' THEN h.on_create
                              WHEN 'UPDATE' THEN h.on_write OR (h.on_create AND _queued)
                              ELSE h.on_unlink OR _queued END
        LOOP
            IF TG_OP = 'INSERT' THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''create'', t.id, api_gateway._webhook_row_json(t, $2), $3
                       FROM agw_new t WHERE %s', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts;
            ELSIF TG_OP = 'UPDATE' AND NOT _queued THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''write'', c.id, c.d, $3
                       FROM (SELECT t.id, api_gateway._webhook_write_json(t, o, $2, $4) AS d
                               FROM agw_new t JOIN agw_old o ON o.id = t.id WHERE %s) c
                      WHERE c.d IS NOT NULL', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts, _w.watched_attnums;
            ELSIF TG_OP = 'UPDATE' THEN
                -- Rows the domain matches now, and rows with a pending event of this transaction.
                EXECUTE format(
                    'MERGE INTO api_gateway.webhook_job j
                     USING (SELECT s.id, s.d, s.hit, p.id AS pid,
                                   CASE WHEN p.id IS NOT NULL THEN
                                        api_gateway._webhook_merge(p.action, p.data, s.d,
                                            CASE WHEN s.d IS NULL THEN api_gateway._webhook_row_json(s.t, $2) END, $5)
                                   END AS m
                              FROM (SELECT t.id, t, h.hit,
                                           CASE WHEN $6 AND h.hit THEN api_gateway._webhook_write_json(t, o, $2, $4) END AS d
                                      FROM agw_new t JOIN agw_old o ON o.id = t.id
                                     CROSS JOIN LATERAL (SELECT coalesce(%s, false) AS hit) h) s
                              LEFT JOIN LATERAL (
                                   SELECT q.id, q.action, q.data FROM api_gateway.webhook_job q
                                    WHERE q.webhook_id = $1 AND q.record_id = s.id AND q.state IN (''pending'', ''failed'')
                                      AND q.action <> ''unlink'' AND api_gateway._webhook_own(q.xmin)
                                    ORDER BY q.id DESC LIMIT 1) p ON true
                             WHERE s.hit OR p.id IS NOT NULL) x
                        ON j.id = x.pid
                     WHEN MATCHED AND x.m IS NULL THEN DELETE
                     WHEN MATCHED THEN UPDATE SET data = x.m, created_at = $3, updated_at = now()
                     WHEN NOT MATCHED AND x.d IS NOT NULL THEN
                         INSERT (event_id, webhook_id, action, record_id, data, created_at)
                         VALUES (gen_random_uuid(), $1, ''write'', x.id, x.d, $3)', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts, _w.watched_attnums, TG_RELID, _w.on_write;
            ELSIF NOT _queued THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''unlink'', t.id, NULL, $2
                       FROM agw_old t WHERE %s', _w.condition)
                  USING _w.id, _ts;
            ELSE
                EXECUTE format(
                    'MERGE INTO api_gateway.webhook_job j
                     USING (SELECT t.id, h.hit, p.id AS pid, p.action AS pact
                              FROM agw_old t
                             CROSS JOIN LATERAL (SELECT coalesce(%s, false) AS hit) h
                              LEFT JOIN LATERAL (
                                   SELECT q.id, q.action FROM api_gateway.webhook_job q
                                    WHERE q.webhook_id = $1 AND q.record_id = t.id AND q.state IN (''pending'', ''failed'')
                                      AND q.action <> ''unlink'' AND api_gateway._webhook_own(q.xmin)
                                    ORDER BY q.id DESC LIMIT 1) p ON true
                             WHERE h.hit OR p.id IS NOT NULL) x
                        ON j.id = x.pid
                     WHEN MATCHED AND x.pact = ''create'' THEN DELETE
                     WHEN MATCHED AND $3 THEN UPDATE SET action = ''unlink'', data = NULL, created_at = $2, updated_at = now()
                     WHEN NOT MATCHED AND $3 AND x.hit THEN
                         INSERT (event_id, webhook_id, action, record_id, data, created_at)
                         VALUES (gen_random_uuid(), $1, ''unlink'', x.id, NULL, $2)', _w.condition)
                  USING _w.id, _ts, _w.on_unlink;
            END IF;
            GET DIAGNOSTICS _n = ROW_COUNT;
            _total := _total + _n;
        END LOOP;
    END IF;
    IF _total > 0 AND NOT _queued THEN
        -- Later statements of this transaction merge into what this one queued.
        PERFORM api_gateway._webhook_mark_queued();
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION api_gateway._webhook_capture() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', '_webhook_capture_wrapper';

CREATE FUNCTION api_gateway._webhook_capture_config(tbl text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN json_build_object(
           'job', 'api_gateway.webhook_job'::regclass::oid::bigint,
           'seq', 'api_gateway.webhook_job_id_seq'::regclass::oid::bigint,
           'slow', 'api_gateway._webhook_capture_sql()'::regprocedure::oid::bigint,
           'webhook', 'api_gateway.webhook'::regclass::oid::bigint,
           'hooks', coalesce((SELECT json_agg(json_build_object('id', h.id, 'c', h.on_create, 'w', h.on_write,
                                                                'u', h.on_unlink, 'p', h.payload_attnums,
                                                                'd', h.watched_attnums) ORDER BY h.id)
                                FROM api_gateway.webhook h
                               WHERE h.table_name = tbl AND h.active AND h.condition IS NULL), '[]'::json))::text;

CREATE OR REPLACE FUNCTION api_gateway._webhook_apply() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Every backend's capture cache (_webhook_capture) is dropped when this commits.
    PERFORM api_gateway._webhook_invalidate(TG_RELID);
    IF TG_OP = 'DELETE' THEN
        DELETE FROM api_gateway.webhook_job WHERE webhook_id = OLD.id;
        PERFORM api_gateway._webhook_sync(OLD.table_name);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.table_name IS DISTINCT FROM NEW.table_name THEN
        PERFORM api_gateway._webhook_sync(OLD.table_name);
    END IF;
    IF TG_OP = 'INSERT' OR OLD.active IS DISTINCT FROM NEW.active OR OLD.table_name IS DISTINCT FROM NEW.table_name
       OR OLD.on_create IS DISTINCT FROM NEW.on_create OR OLD.on_write IS DISTINCT FROM NEW.on_write
       OR OLD.on_unlink IS DISTINCT FROM NEW.on_unlink OR (OLD.condition IS NULL) <> (NEW.condition IS NULL) THEN
        PERFORM api_gateway._webhook_sync(NEW.table_name);
    END IF;
    IF NEW.active THEN
        PERFORM pg_notify('api_gateway_webhook', '');
    END IF;
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION api_gateway._webhook_invalidate(oid), api_gateway._webhook_capture_sql(),
    api_gateway._webhook_capture_config(text) FROM PUBLIC;

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

-- == schema (issue 18, part 4): fields_get per model (every field, labels and help in the
-- == request's language, where the gateway reads it from), a language per request ==

-- The reads take an optional language (a trailing `lang DEFAULT NULL`): each is dropped and
-- created again with it (the library keeps the 0.4.0 entry points, so a 0.4.0 schema keeps
-- working until this update). The roles that could execute an old one may execute the new one:
-- their grants are noted (in a setting local to this transaction) and given again below.
DO $schema$
BEGIN
    PERFORM set_config('api_gateway.schema_regrant', coalesce((
        SELECT jsonb_agg(jsonb_build_array(p.proname, a.grantee::regrole::text))::text
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid IN ('api_gateway.search_read(integer, text, text, text[], integer, integer, text)'::regprocedure, 'api_gateway.search_page(integer, text, text, text[], integer, text, text)'::regprocedure, 'api_gateway.search_count(integer, text, text)'::regprocedure, 'api_gateway.read(integer, text, integer, text[])'::regprocedure, 'api_gateway.read_versioned(integer, text, integer, text[])'::regprocedure)
           AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner), '[]'), true);
END
$schema$;

DROP FUNCTION api_gateway.search_read(integer, text, text, text[], integer, integer, text);
DROP FUNCTION api_gateway.search_page(integer, text, text, text[], integer, text, text);
DROP FUNCTION api_gateway.search_count(integer, text, text);
DROP FUNCTION api_gateway.read(integer, text, integer, text[]);
DROP FUNCTION api_gateway.read_versioned(integer, text, integer, text[]);

-- src/api/data.rs
CREATE  FUNCTION "search_read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]', /* Option < & str > */
	"fields" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"limit" INT DEFAULT NULL, /* Option < i32 > */
	"offset" INT DEFAULT 0, /* Option < i32 > */
	"order" TEXT DEFAULT NULL, /* Option < & str > */
	"lang" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* RawJsonb */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_read_lang_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "search_page"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]', /* Option < & str > */
	"fields" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"limit" INT DEFAULT NULL, /* Option < i32 > */
	"order" TEXT DEFAULT NULL, /* Option < & str > */
	"after" TEXT DEFAULT NULL, /* Option < & str > */
	"lang" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* RawJsonb */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_page_lang_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "search_count"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]', /* Option < & str > */
	"lang" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_count_lang_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"fields" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"lang" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* Option < RawJsonb > */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'data_read_lang_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "read_versioned"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"fields" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"lang" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* Option < RawJsonb > */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'read_versioned_lang_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "fields_get"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"lang" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* pgrx :: JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fields_get_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "negotiate_language"(
	"accept_language" TEXT /* Option < & str > */
) RETURNS TEXT /* Option < String > */
STABLE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'negotiate_language_wrapper';

-- src/sql/describe.sql
-- `describe_models(uid)`: the models the user may read, each with every field `fields_get`
-- describes to that user in en_US (stored or not; type, label, help, required, readonly,
-- relation, selection values, and `source`: read by the gateway in SQL, or through Odoo), for
-- OpenAPI schemas and admin screens. plpgsql so that CREATE EXTENSION works in a database
-- without Odoo's tables; VOLATILE because `fields_get` may refresh the per-backend caches.
CREATE OR REPLACE FUNCTION api_gateway.describe_models(uid integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (
        WITH RECURSIVE g(gid) AS (
            SELECT r.gid FROM public.res_groups_users_rel r WHERE r.uid = describe_models.uid
            UNION SELECT i.hid FROM public.res_groups_implied_rel i JOIN g ON i.gid = g.gid),
        readable AS (
            SELECT m.id, m.model, coalesce(m.name->>'en_US', m.model) AS label
              FROM public.ir_model m
             WHERE NOT coalesce(m.abstract, false)
               -- the names the gateway serves (lower-case dotted identifiers)
               AND m.model ~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$' AND length(m.model) <= 128
               AND to_regclass('public.' || quote_ident(replace(m.model, '.', '_'))) IS NOT NULL
               AND (describe_models.uid = 1 OR EXISTS (
                    SELECT 1 FROM public.ir_model_access a
                     WHERE a.model_id = m.id AND a.active AND a.perm_read
                       AND (a.group_id IS NULL OR a.group_id IN (SELECT gid FROM g)))))
        SELECT coalesce(jsonb_object_agg(r.model, jsonb_build_object(
                   'name', r.label,
                   'fields', api_gateway.fields_get(describe_models.uid, r.model, 'en_US'))),
               '{}'::jsonb)
          FROM readable r);
END;
$$;

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
        'api_gateway.search_read(integer, text, text, text[], integer, integer, text, text)',
        'api_gateway.search_count(integer, text, text, text)',
        'api_gateway.read(integer, text, integer, text[], text)',
        'api_gateway.create(integer, text, jsonb)',
        'api_gateway.write(integer, text, integer, jsonb)',
        'api_gateway.unlink(integer, text, integer)',
        'api_gateway.read_versioned(integer, text, integer, text[], text)',
        'api_gateway.write_if_match(integer, text, integer, jsonb, text[])',
        'api_gateway.unlink_if_match(integer, text, integer, text[])',
        'api_gateway.search_page(integer, text, text, text[], integer, text, text, text)',
        -- Schema per model and language per request.
        'api_gateway.fields_get(integer, text, text)',
        'api_gateway.negotiate_language(text)',
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

REVOKE ALL ON FUNCTION api_gateway.search_read(integer, text, text, text[], integer, integer, text, text),
    api_gateway.search_page(integer, text, text, text[], integer, text, text, text),
    api_gateway.search_count(integer, text, text, text),
    api_gateway.read(integer, text, integer, text[], text),
    api_gateway.read_versioned(integer, text, integer, text[], text),
    api_gateway.fields_get(integer, text, text),
    api_gateway.negotiate_language(text) FROM PUBLIC;
ALTER FUNCTION api_gateway.search_read(integer, text, text, text[], integer, integer, text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.search_count(integer, text, text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.read(integer, text, integer, text[], text) SET plan_cache_mode = force_generic_plan;

DO $schema$
DECLARE
    g jsonb;
BEGIN
    FOR g IN SELECT jsonb_array_elements(current_setting('api_gateway.schema_regrant')::jsonb) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', (CASE g->>0
            WHEN 'search_read' THEN 'api_gateway.search_read(integer, text, text, text[], integer, integer, text, text)'
            WHEN 'search_page' THEN 'api_gateway.search_page(integer, text, text, text[], integer, text, text, text)'
            WHEN 'search_count' THEN 'api_gateway.search_count(integer, text, text, text)'
            WHEN 'read' THEN 'api_gateway.read(integer, text, integer, text[], text)'
            WHEN 'read_versioned' THEN 'api_gateway.read_versioned(integer, text, integer, text[], text)' END)::regprocedure, g->>1);
    END LOOP;
END
$schema$;
REVOKE ALL ON FUNCTION api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text),
    api_gateway.web_read(integer, text, integer, jsonb),
    api_gateway.web_read_versioned(integer, text, integer, jsonb),
    api_gateway._nested_read_refused(integer, text, integer) FROM PUBLIC;
ALTER FUNCTION api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.web_read(integer, text, integer, jsonb) SET plan_cache_mode = force_generic_plan;
-- == end schema, nested ==

-- == httpread: the settings are noted in the data caches' change log; run_maintenance purges it ==
-- The page limits in api_gateway.settings are cached with the rest (the data statements of a
-- call run on the cache do not re-read them): a change to the settings is noted too.
CREATE TRIGGER settings_note_security_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_gateway.settings
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._note_odoo_security_change();

-- `run_maintenance(job)`: 'logs' (retention: drop old partitions, delete old default rows in
-- batches, prepare the next partitions, trim rollups older than a year), 'webhook_jobs'
-- (delivered/dead jobs past retention), 'secret_display' (one-time secret displays), 'tokens'
-- (tokens expired more than 7 days ago), 'throttles' (ended rate-limit windows),
-- 'upstream_keys' (OAuth2 clients' Odoo keys: renew those with less than 7 days left, remove
-- expired ones), 'idempotency' (idempotency keys older than 24 hours), 'security_changes' (the
-- data caches' change log: transactions finished more than 10 minutes ago), or 'all'.
CREATE OR REPLACE FUNCTION api_gateway.run_maintenance(job text DEFAULT 'all') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep_days integer;
    cutoff timestamptz;
    part record;
    n bigint;
    orphans bigint := 0;
    dropped integer := 0;
    result jsonb;
BEGIN
    IF job = 'all' THEN
        RETURN jsonb_build_object(
            'logs', api_gateway.run_maintenance('logs'),
            'webhook_jobs', api_gateway.run_maintenance('webhook_jobs'),
            'secret_display', api_gateway.run_maintenance('secret_display'),
            'tokens', api_gateway.run_maintenance('tokens'),
            'throttles', api_gateway.run_maintenance('throttles'),
            'upstream_keys', api_gateway.run_maintenance('upstream_keys'),
            'idempotency', api_gateway.run_maintenance('idempotency'),
            'security_changes', api_gateway.run_maintenance('security_changes'));
    END IF;
    IF job NOT IN ('logs', 'webhook_jobs', 'secret_display', 'tokens', 'throttles', 'upstream_keys', 'idempotency',
                   'security_changes') THEN
        RAISE EXCEPTION 'unknown maintenance job "%": use logs, webhook_jobs, secret_display, tokens, throttles, upstream_keys, idempotency, security_changes or all', job
            USING ERRCODE = '22023';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('api_gateway.maintenance'), hashtext(job)) THEN
        RETURN jsonb_build_object('skipped', 'another session is running this job');
    END IF;
    SELECT log_retention_days INTO keep_days FROM api_gateway.settings;
    cutoff := now() - make_interval(days => keep_days);
    IF job = 'logs' THEN
        FOR part IN
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'api_gateway.request_log'::regclass AND c.relname ~ '^request_log_[0-9]{8}$'
               AND to_date(substr(c.relname, 13), 'YYYYMMDD') + 1 <= cutoff::date
        LOOP
            EXECUTE format('DROP TABLE api_gateway.%I', part.relname);
            dropped := dropped + 1;
        END LOOP;
        n := 0;
        LOOP
            DELETE FROM api_gateway.request_log_default
             WHERE ctid IN (SELECT ctid FROM api_gateway.request_log_default WHERE at < cutoff LIMIT 10000);
            EXIT WHEN NOT FOUND;
            n := n + 10000;
        END LOOP;
        DELETE FROM api_gateway.request_stats WHERE bucket < now() - interval '400 days';
        DELETE FROM api_gateway.request_stats_ip WHERE bucket < now() - interval '400 days';
        result := jsonb_build_object('partitions_dropped', dropped, 'default_rows_deleted_about', n,
                                     'partitions_created', api_gateway.ensure_log_partitions());
    ELSIF job = 'webhook_jobs' THEN
        IF to_regprocedure('api_gateway.purge_webhook_jobs(interval)') IS NOT NULL THEN
            EXECUTE 'SELECT to_jsonb(api_gateway.purge_webhook_jobs($1))' INTO result USING make_interval(days => keep_days);
            result := jsonb_build_object('purged', result);
        ELSE
            result := jsonb_build_object('purged', 0);
        END IF;
    ELSIF job = 'secret_display' THEN
        -- Client secrets are returned by create_client once and never stored in clear, so there
        -- is no display to clear; webhook signing secrets must stay readable to sign.
        result := jsonb_build_object('cleared', 0);
    ELSIF job = 'tokens' THEN
        DELETE FROM api_gateway.token WHERE expires_at < now() - interval '7 days';
        GET DIAGNOSTICS n = ROW_COUNT;
        DELETE FROM api_gateway.signing_key WHERE valid_until < now();
        result := jsonb_build_object('tokens_deleted', n);
    ELSIF job = 'upstream_keys' THEN
        DELETE FROM api_gateway.upstream_key u WHERE u.expires_at < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        -- The gateway's keys no row knows (after a restore: the plaintexts are not dumped).
        IF to_regclass('public.res_users_apikeys') IS NOT NULL THEN
            EXECUTE 'DELETE FROM public.res_users_apikeys k
                      WHERE k.name LIKE ''api\_gateway: OAuth2 client gw\_%''
                        AND NOT EXISTS (SELECT 1 FROM api_gateway.upstream_key u WHERE u.apikey_id = k.id)';
            GET DIAGNOSTICS orphans = ROW_COUNT;
        END IF;
        dropped := 0;
        FOR part IN
            SELECT DISTINCT u.client_id FROM api_gateway.upstream_key u
              JOIN api_gateway.client c ON c.client_id = u.client_id AND c.active
             WHERE u.key IS NOT NULL AND u.expires_at < now() + interval '7 days'
        LOOP
            PERFORM api_gateway._renew_upstream_key(part.client_id);
            dropped := dropped + 1;
        END LOOP;
        result := jsonb_build_object('expired_removed', n, 'orphans_removed', orphans, 'renewed', dropped);
    ELSIF job = 'idempotency' THEN
        DELETE FROM api_gateway.idempotency i WHERE i.started_at < now() - interval '24 hours';
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('keys_deleted', n);
    ELSIF job = 'security_changes' THEN
        result := jsonb_build_object('forgotten', api_gateway._purge_security_changes());
    ELSE
        DELETE FROM api_gateway.throttle WHERE window_start + make_interval(secs => window_s) < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('windows_deleted', n);
    END IF;
    RETURN api_gateway._record_run(job, result);
END;
$$;

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
        'api_gateway.search_read(integer, text, text, text[], integer, integer, text, text)',
        'api_gateway.search_count(integer, text, text, text)',
        'api_gateway.read(integer, text, integer, text[], text)',
        'api_gateway.create(integer, text, jsonb)',
        'api_gateway.write(integer, text, integer, jsonb)',
        'api_gateway.unlink(integer, text, integer)',
        'api_gateway.read_versioned(integer, text, integer, text[], text)',
        'api_gateway.write_if_match(integer, text, integer, jsonb, text[])',
        'api_gateway.unlink_if_match(integer, text, integer, text[])',
        'api_gateway.search_page(integer, text, text, text[], integer, text, text, text)',
        -- Schema per model and language per request.
        'api_gateway.fields_get(integer, text, text)',
        'api_gateway.negotiate_language(text)',
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

-- == feed (issue 18.3): the change feed: feed_enable / feed_disable, capture triggers and log,
-- changes(), retention in run_maintenance('feeds') ==

-- src/sql/feed.sql
-- The change feed (`api_gateway.changes`, `GET /api/v1/<model>/changes`): per model, enabled by
-- the DBA. Statement-level triggers on the model's table log (record id, operation, writing
-- transaction's id as xid8) in the writer's transaction; a poll returns the records whose
-- transaction was not visible in the previous poll's snapshot and is now (commit order, so a
-- long transaction that commits after a later one is never skipped; core/src/feed.rs).
--
-- Not the webhook capture triggers: those serialise rows per webhook, skip writes that change
-- no watched field and merge events per transaction, while the feed must log every write of
-- every record at the cost of one INSERT ... SELECT of ids; sharing would make each path pay
-- for the other and couple two contracts. Both coexist on a table (a few microseconds each).

-- One row per enabled model. Not dumped: a restored database has other transaction ids, so
-- its feeds are enabled again after a restore (their cursors then expire: 410).
CREATE TABLE api_gateway.feed (
    model        text PRIMARY KEY,
    table_name   text NOT NULL,
    -- Random, new at every enabling: the cursors of an earlier enabling (or of another
    -- database) name another id and expire.
    id           bigint NOT NULL UNIQUE,
    -- Log rows (and so deletions) are kept this long after their transaction committed; a
    -- cursor not used for longer expires.
    retention    interval NOT NULL DEFAULT '7 days'
                 CHECK (retention BETWEEN interval '1 hour' AND interval '3650 days'),
    enabled_at   timestamptz NOT NULL DEFAULT now(),
    -- Log rows of transactions below this id may have been purged: a cursor whose snapshot did
    -- not see one of them expires (core::feed::expired).
    purged_below xid8 NOT NULL,
    purged_at    timestamptz
);
COMMENT ON TABLE api_gateway.feed IS
    'Models whose change feed is enabled (feed_enable / feed_disable); retention of their change log.';

-- The log: at most one row per record, operation and transaction ('c' created, 'u' updated,
-- 'd' deleted). Keyed by transaction first: a poll reads the transactions after its cursor's
-- xmin with one range scan.
CREATE TABLE api_gateway.feed_log (
    feed_id bigint NOT NULL,
    xact    xid8   NOT NULL,
    res_id  bigint NOT NULL,
    op      "char" NOT NULL CHECK (op IN ('c', 'u', 'd')),
    PRIMARY KEY (feed_id, xact, res_id, op)
);
COMMENT ON TABLE api_gateway.feed_log IS
    'Change feed log: which records each transaction created, updated or deleted (written by the feed triggers).';

-- Purge horizons: at `at`, every transaction below `below` had ended. run_maintenance('feeds')
-- adds one per run and purges a feed's rows below the newest horizon older than its retention.
CREATE TABLE api_gateway.feed_horizon (
    at    timestamptz PRIMARY KEY,
    below xid8 NOT NULL
);

-- The capture trigger function: AFTER INSERT / UPDATE / DELETE FOR EACH STATEMENT with the
-- transition table, one INSERT ... SELECT of the ids per statement. TG_ARGV[0] is the feed id.
-- ON CONFLICT: a transaction that writes a record many times logs it once. Transactions never
-- conflict with each other (the key holds the transaction id), so writers never wait here.
-- SECURITY DEFINER: Odoo's role has no right on the api_gateway schema.
CREATE FUNCTION api_gateway._feed_capture() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO api_gateway.feed_log (feed_id, xact, res_id, op)
        SELECT TG_ARGV[0]::bigint, pg_current_xact_id(), n.id, 'c' FROM agw_feed_new n
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO api_gateway.feed_log (feed_id, xact, res_id, op)
        SELECT TG_ARGV[0]::bigint, pg_current_xact_id(), n.id, 'u' FROM agw_feed_new n
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO api_gateway.feed_log (feed_id, xact, res_id, op)
        SELECT TG_ARGV[0]::bigint, pg_current_xact_id(), o.id, 'd' FROM agw_feed_old o
        ON CONFLICT DO NOTHING;
    ELSE
        -- TRUNCATE names no record: every cursor taken before it commits expires (410), so
        -- its clients read everything again rather than miss the deletions.
        UPDATE api_gateway.feed f
           SET purged_below = greatest(f.purged_below, (pg_current_xact_id()::text::numeric + 1)::text::xid8),
               purged_at = now()
         WHERE f.id = TG_ARGV[0]::bigint;
    END IF;
    RETURN NULL;
END;
$$;

-- The feed triggers a table should have: (name, event, REFERENCING clause).
CREATE FUNCTION api_gateway._feed_triggers() RETURNS TABLE (name text, event text, ref text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    VALUES ('api_gateway_feed_insert', 'INSERT', 'REFERENCING NEW TABLE AS agw_feed_new'),
           ('api_gateway_feed_update', 'UPDATE', 'REFERENCING NEW TABLE AS agw_feed_new'),
           ('api_gateway_feed_delete', 'DELETE', 'REFERENCING OLD TABLE AS agw_feed_old'),
           ('api_gateway_feed_truncate', 'TRUNCATE', '');
$$;

-- Whether `tbl` has every feed trigger, enabled, for feed `feed_id` (a disabled or missing one
-- means writes may have gone unlogged: the feed refuses to answer rather than skip them).
CREATE FUNCTION api_gateway._feed_intact(tbl text, feed_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*) = 4
      FROM pg_trigger t
     WHERE t.tgrelid = to_regclass(format('public.%I', tbl))
       AND t.tgname IN (SELECT name FROM api_gateway._feed_triggers())
       AND t.tgfoid = 'api_gateway._feed_capture()'::regprocedure
       AND t.tgenabled <> 'D'
       AND t.tgargs = convert_to(feed_id::text, 'UTF8') || '\x00'::bytea;
$$;

-- Installs (or, with feed_id NULL, removes) the feed triggers on `tbl`. CREATE TRIGGER waits for
-- the table's running writers (SHARE ROW EXCLUSIVE), at most webhook_settings.ddl_lock_timeout.
CREATE FUNCTION api_gateway._feed_sync(tbl text, feed_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel regclass := to_regclass(format('public.%I', tbl));
    trg record;
    wait interval;
BEGIN
    IF rel IS NULL THEN
        RETURN;
    END IF;
    SELECT s.ddl_lock_timeout INTO wait FROM api_gateway.webhook_settings s;
    PERFORM set_config('lock_timeout', (extract(epoch FROM coalesce(wait, interval '2 seconds')) * 1000)::bigint::text, true);
    FOR trg IN SELECT * FROM api_gateway._feed_triggers() LOOP
        BEGIN
            IF feed_id IS NULL THEN
                EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', trg.name, rel);
            ELSE
                EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._feed_capture(%L)',
                               trg.name, trg.event, rel, trg.ref, feed_id::text);
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE EXCEPTION 'could not lock table % within % to change the change feed trigger', rel, wait
                USING ERRCODE = '55P03',
                      HINT = 'a long transaction is using the table; retry, or raise api_gateway.webhook_settings.ddl_lock_timeout';
        END;
    END LOOP;
END;
$$;

-- `feed_enable(model, retention)`: start logging the model's changes (or change the retention
-- of an enabled feed; or repair one whose triggers were dropped or disabled, which expires its
-- cursors). Returns the feed as JSON.
CREATE FUNCTION api_gateway.feed_enable(model text, retention interval DEFAULT '7 days') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text := btrim(model);
    tbl text;
    f api_gateway.feed;
BEGIN
    IF m IS NULL OR m !~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$' THEN
        RAISE EXCEPTION 'invalid model name "%"', left(model, 100) USING ERRCODE = '22023';
    END IF;
    IF retention IS NULL OR retention < interval '1 hour' OR retention > interval '3650 days' THEN
        RAISE EXCEPTION 'invalid retention %: from 1 hour to 3650 days', retention USING ERRCODE = '22023';
    END IF;
    IF to_regclass('public.ir_model') IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM public.ir_model im WHERE im.model = m) THEN
            RAISE EXCEPTION 'unknown model "%"', m USING ERRCODE = '42P01';
        END IF;
    END IF;
    tbl := replace(m, '.', '_');
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = to_regclass(format('public.%I', tbl)) AND a.attname = 'id' AND NOT a.attisdropped)
       OR (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(format('public.%I', tbl))) <> 'r' THEN
        RAISE EXCEPTION 'model "%" has no table public.% with an id column', m, tbl USING ERRCODE = '42P01';
    END IF;
    SELECT * INTO f FROM api_gateway.feed x WHERE x.model = m FOR UPDATE;
    IF FOUND AND f.table_name = tbl AND api_gateway._feed_intact(tbl, f.id) THEN
        UPDATE api_gateway.feed x SET retention = feed_enable.retention WHERE x.model = m RETURNING * INTO f;
    ELSE
        IF FOUND THEN
            DELETE FROM api_gateway.feed_log l WHERE l.feed_id = f.id;
            DELETE FROM api_gateway.feed x WHERE x.model = m;
        END IF;
        INSERT INTO api_gateway.feed (model, table_name, id, retention, purged_below)
        VALUES (m, tbl, (('x' || left(replace(gen_random_uuid()::text, '-', ''), 16))::bit(64)::bigint & 9223372036854775807),
                feed_enable.retention, pg_snapshot_xmin(pg_current_snapshot()))
        RETURNING * INTO f;
        PERFORM api_gateway._feed_sync(tbl, f.id);
    END IF;
    RETURN jsonb_build_object('model', f.model, 'table', f.table_name, 'retention', f.retention::text,
                              'enabled_at', f.enabled_at);
END;
$$;

-- `feed_disable(model)`: stop logging, forget the log; the feed's cursors expire. True when the
-- model had a feed.
CREATE FUNCTION api_gateway.feed_disable(model text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f api_gateway.feed;
BEGIN
    DELETE FROM api_gateway.feed x WHERE x.model = btrim(feed_disable.model) RETURNING * INTO f;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM api_gateway._feed_sync(f.table_name, NULL);
    DELETE FROM api_gateway.feed_log l WHERE l.feed_id = f.id;
    RETURN true;
END;
$$;

-- Maintenance (run_maintenance('feeds')): note a horizon, then drop each feed's log rows of
-- transactions that ended more than its retention ago, and the rows no feed owns (triggers
-- restored from a dump before their feed was enabled again). Returns the rows deleted.
CREATE FUNCTION api_gateway._feed_purge() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f record;
    horizon xid8;
    n bigint;
    total bigint := 0;
BEGIN
    -- The snapshot first, the time after it: every transaction below xmin ended before `at`.
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    INSERT INTO api_gateway.feed_horizon (at, below) VALUES (clock_timestamp(), horizon) ON CONFLICT DO NOTHING;
    FOR f IN SELECT x.id, x.retention, x.purged_below FROM api_gateway.feed x LOOP
        SELECT h.below INTO horizon FROM api_gateway.feed_horizon h
         WHERE h.at <= now() - f.retention ORDER BY h.at DESC LIMIT 1;
        CONTINUE WHEN horizon IS NULL OR horizon <= f.purged_below;
        DELETE FROM api_gateway.feed_log l WHERE l.feed_id = f.id AND l.xact < horizon;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        UPDATE api_gateway.feed x SET purged_below = horizon, purged_at = now() WHERE x.id = f.id;
    END LOOP;
    DELETE FROM api_gateway.feed_log l WHERE NOT EXISTS (SELECT 1 FROM api_gateway.feed x WHERE x.id = l.feed_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    -- Horizons: keep those a feed may still need (the newest one older than the longest
    -- retention, and every later one).
    DELETE FROM api_gateway.feed_horizon h
     WHERE h.at < (SELECT max(g.at) FROM api_gateway.feed_horizon g
                    WHERE g.at <= now() - coalesce((SELECT max(x.retention) FROM api_gateway.feed x), interval '0'));
    RETURN total;
END;
$$;

-- src/api/data.rs
CREATE  FUNCTION "changes"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"since" TEXT DEFAULT NULL, /* Option < & str > */
	"fields" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"limit" INT DEFAULT NULL /* Option < i32 > */
) RETURNS jsonb /* RawJsonb */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'changes_wrapper';

REVOKE ALL ON TABLE api_gateway.feed, api_gateway.feed_log, api_gateway.feed_horizon FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._feed_capture(), api_gateway._feed_triggers(), api_gateway._feed_intact(text, bigint),
    api_gateway._feed_sync(text, bigint), api_gateway.feed_enable(text, interval), api_gateway.feed_disable(text),
    api_gateway._feed_purge(),
    api_gateway.changes(integer, text, text, text[], integer) FROM PUBLIC;

-- src/sql/observability.sql
-- `run_maintenance(job)`: 'logs' (retention: drop old partitions, delete old default rows in
-- batches, prepare the next partitions, trim rollups older than a year), 'webhook_jobs'
-- (delivered/dead jobs past retention), 'secret_display' (one-time secret displays), 'tokens'
-- (tokens expired more than 7 days ago), 'throttles' (ended rate-limit windows),
-- 'upstream_keys' (OAuth2 clients' Odoo keys: renew those with less than 7 days left, remove
-- expired ones), 'idempotency' (idempotency keys older than 24 hours), 'security_changes' (the
-- data caches' change log: transactions finished more than 10 minutes ago), 'feeds' (change feed
-- log rows past each feed's retention), or 'all'.
CREATE OR REPLACE FUNCTION api_gateway.run_maintenance(job text DEFAULT 'all') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep_days integer;
    cutoff timestamptz;
    part record;
    n bigint;
    orphans bigint := 0;
    dropped integer := 0;
    result jsonb;
BEGIN
    IF job = 'all' THEN
        RETURN jsonb_build_object(
            'logs', api_gateway.run_maintenance('logs'),
            'webhook_jobs', api_gateway.run_maintenance('webhook_jobs'),
            'secret_display', api_gateway.run_maintenance('secret_display'),
            'tokens', api_gateway.run_maintenance('tokens'),
            'throttles', api_gateway.run_maintenance('throttles'),
            'upstream_keys', api_gateway.run_maintenance('upstream_keys'),
            'idempotency', api_gateway.run_maintenance('idempotency'),
            'security_changes', api_gateway.run_maintenance('security_changes'),
            'feeds', api_gateway.run_maintenance('feeds'));
    END IF;
    IF job NOT IN ('logs', 'webhook_jobs', 'secret_display', 'tokens', 'throttles', 'upstream_keys', 'idempotency',
                   'security_changes', 'feeds') THEN
        RAISE EXCEPTION 'unknown maintenance job "%": use logs, webhook_jobs, secret_display, tokens, throttles, upstream_keys, idempotency, security_changes, feeds or all', job
            USING ERRCODE = '22023';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('api_gateway.maintenance'), hashtext(job)) THEN
        RETURN jsonb_build_object('skipped', 'another session is running this job');
    END IF;
    SELECT log_retention_days INTO keep_days FROM api_gateway.settings;
    cutoff := now() - make_interval(days => keep_days);
    IF job = 'logs' THEN
        FOR part IN
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'api_gateway.request_log'::regclass AND c.relname ~ '^request_log_[0-9]{8}$'
               AND to_date(substr(c.relname, 13), 'YYYYMMDD') + 1 <= cutoff::date
        LOOP
            EXECUTE format('DROP TABLE api_gateway.%I', part.relname);
            dropped := dropped + 1;
        END LOOP;
        n := 0;
        LOOP
            DELETE FROM api_gateway.request_log_default
             WHERE ctid IN (SELECT ctid FROM api_gateway.request_log_default WHERE at < cutoff LIMIT 10000);
            EXIT WHEN NOT FOUND;
            n := n + 10000;
        END LOOP;
        DELETE FROM api_gateway.request_stats WHERE bucket < now() - interval '400 days';
        DELETE FROM api_gateway.request_stats_ip WHERE bucket < now() - interval '400 days';
        result := jsonb_build_object('partitions_dropped', dropped, 'default_rows_deleted_about', n,
                                     'partitions_created', api_gateway.ensure_log_partitions());
    ELSIF job = 'webhook_jobs' THEN
        IF to_regprocedure('api_gateway.purge_webhook_jobs(interval)') IS NOT NULL THEN
            EXECUTE 'SELECT to_jsonb(api_gateway.purge_webhook_jobs($1))' INTO result USING make_interval(days => keep_days);
            result := jsonb_build_object('purged', result);
        ELSE
            result := jsonb_build_object('purged', 0);
        END IF;
    ELSIF job = 'secret_display' THEN
        -- Client secrets are returned by create_client once and never stored in clear, so there
        -- is no display to clear; webhook signing secrets must stay readable to sign.
        result := jsonb_build_object('cleared', 0);
    ELSIF job = 'tokens' THEN
        DELETE FROM api_gateway.token WHERE expires_at < now() - interval '7 days';
        GET DIAGNOSTICS n = ROW_COUNT;
        DELETE FROM api_gateway.signing_key WHERE valid_until < now();
        result := jsonb_build_object('tokens_deleted', n);
    ELSIF job = 'upstream_keys' THEN
        DELETE FROM api_gateway.upstream_key u WHERE u.expires_at < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        -- The gateway's keys no row knows (after a restore: the plaintexts are not dumped).
        IF to_regclass('public.res_users_apikeys') IS NOT NULL THEN
            EXECUTE 'DELETE FROM public.res_users_apikeys k
                      WHERE k.name LIKE ''api\_gateway: OAuth2 client gw\_%''
                        AND NOT EXISTS (SELECT 1 FROM api_gateway.upstream_key u WHERE u.apikey_id = k.id)';
            GET DIAGNOSTICS orphans = ROW_COUNT;
        END IF;
        dropped := 0;
        FOR part IN
            SELECT DISTINCT u.client_id FROM api_gateway.upstream_key u
              JOIN api_gateway.client c ON c.client_id = u.client_id AND c.active
             WHERE u.key IS NOT NULL AND u.expires_at < now() + interval '7 days'
        LOOP
            PERFORM api_gateway._renew_upstream_key(part.client_id);
            dropped := dropped + 1;
        END LOOP;
        result := jsonb_build_object('expired_removed', n, 'orphans_removed', orphans, 'renewed', dropped);
    ELSIF job = 'idempotency' THEN
        DELETE FROM api_gateway.idempotency i WHERE i.started_at < now() - interval '24 hours';
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('keys_deleted', n);
    ELSIF job = 'security_changes' THEN
        result := jsonb_build_object('forgotten', api_gateway._purge_security_changes());
    ELSIF job = 'feeds' THEN
        IF to_regprocedure('api_gateway._feed_purge()') IS NOT NULL THEN
            EXECUTE 'SELECT api_gateway._feed_purge()' INTO n;
        ELSE
            n := 0;
        END IF;
        result := jsonb_build_object('log_rows_deleted', n);
    ELSE
        DELETE FROM api_gateway.throttle WHERE window_start + make_interval(secs => window_s) < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('windows_deleted', n);
    END IF;
    RETURN api_gateway._record_run(job, result);
END;
$$;


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
        'api_gateway.search_read(integer, text, text, text[], integer, integer, text, text)',
        'api_gateway.search_count(integer, text, text, text)',
        'api_gateway.read(integer, text, integer, text[], text)',
        'api_gateway.create(integer, text, jsonb)',
        'api_gateway.write(integer, text, integer, jsonb)',
        'api_gateway.unlink(integer, text, integer)',
        'api_gateway.read_versioned(integer, text, integer, text[], text)',
        'api_gateway.write_if_match(integer, text, integer, jsonb, text[])',
        'api_gateway.unlink_if_match(integer, text, integer, text[])',
        'api_gateway.search_page(integer, text, text, text[], integer, text, text, text)',
        -- Schema per model and language per request.
        'api_gateway.fields_get(integer, text, text)',
        'api_gateway.negotiate_language(text)',
        'api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text)',
        'api_gateway.web_read(integer, text, integer, jsonb)',
        'api_gateway.web_read_versioned(integer, text, integer, jsonb)',
        -- --odoo-url: the fields Odoo fills in a read, and binary fields served as files.
        'api_gateway.fields_in_sql(integer, text, text[])',
        'api_gateway.odoo_fill(integer, text, text[])',
        'api_gateway.binary_file(integer, text, integer, text)',
        'api_gateway.changes(integer, text, text, text[], integer)',
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

-- == dropext (issue 13): one DROP EXTENSION guard for every trigger the extension puts on Odoo's tables ==
DROP EVENT TRIGGER api_gateway_webhook_drop_start;
DROP EVENT TRIGGER api_gateway_webhook_drop_end;
DROP EVENT TRIGGER api_gateway_security_drop_start;
DROP EVENT TRIGGER api_gateway_security_drop_end;
DROP FUNCTION api_gateway._webhook_before_drop_extension();
DROP FUNCTION api_gateway._webhook_after_drop_extension();
DROP FUNCTION api_gateway._security_before_drop_extension();
DROP FUNCTION api_gateway._security_after_drop_extension();
-- src/sql/drop_extension.sql
-- DROP EXTENSION api_gateway: the triggers the extension puts on Odoo's tables (webhook
-- capture, change feed, security cache) depend on its functions, so without this the DROP would
-- fail or need CASCADE. Before any DROP EXTENSION whose text names api_gateway, every trigger on
-- a table outside the extension's schema whose function is the extension's is removed (the
-- triggers on its own tables go with it); if the DROP named another extension after all, each
-- kind is installed again at its end.
CREATE FUNCTION api_gateway._before_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    IF current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    -- Facts kept by any backend's gate go with the extension (src/gate_generation.rs).
    PERFORM api_gateway._note_gate_change();
    FOR t IN SELECT tg.tgname, tg.tgrelid::regclass AS rel
               FROM pg_trigger tg
               JOIN pg_proc p ON p.oid = tg.tgfoid
               JOIN pg_class c ON c.oid = tg.tgrelid
              WHERE NOT tg.tgisinternal
                AND p.pronamespace = 'api_gateway'::regnamespace
                AND c.relnamespace <> 'api_gateway'::regnamespace LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    END LOOP;
END;
$$;

CREATE FUNCTION api_gateway._after_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regnamespace('api_gateway') IS NULL OR current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    BEGIN
        PERFORM api_gateway._webhook_sync(t.table_name)
           FROM (SELECT DISTINCT table_name FROM api_gateway.webhook) t;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'api_gateway could not reinstall its webhook triggers after DROP EXTENSION (%); save a webhook of each model again', SQLERRM;
    END;
    BEGIN
        PERFORM api_gateway._feed_sync(f.table_name, f.id) FROM api_gateway.feed f;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'api_gateway could not reinstall its change feed triggers after DROP EXTENSION (%); run feed_enable for each feed', SQLERRM;
    END;
    -- Never raises (a table it cannot lock is left for the next data call).
    PERFORM api_gateway._install_security_triggers();
END;
$$;

CREATE EVENT TRIGGER api_gateway_drop_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._before_drop_extension();
CREATE EVENT TRIGGER api_gateway_drop_end ON ddl_command_end
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._after_drop_extension();
REVOKE ALL ON FUNCTION api_gateway._before_drop_extension(), api_gateway._after_drop_extension() FROM PUBLIC;

-- == webhookprep: a webhook saved before Odoo's ir_model exists is no longer refused by the restore check ==
-- src/sql/webhooks.sql
CREATE OR REPLACE FUNCTION api_gateway._webhook_prepare() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    port text;
    recompile boolean;
BEGIN
    NEW.name := btrim(NEW.name);
    NEW.model := btrim(NEW.model);
    NEW.url := btrim(NEW.url);
    NEW.headers := coalesce(NEW.headers, '{}'::jsonb);
    IF NEW.secret IS NULL THEN
        NEW.secret := api_gateway._new_webhook_secret();
    ELSIF NOT api_gateway._webhook_secret_valid(NEW.secret) THEN
        RAISE EXCEPTION 'invalid webhook secret: expected whsec_ followed by the base64 of 24 to 64 random bytes'
            USING ERRCODE = '22023', COLUMN = 'secret', HINT = 'leave secret NULL to have one generated';
    END IF;
    -- Rotation: the previous secret stays valid (deliveries carry both signatures) until
    -- previous_secret_expires_at: 24 hours unless the same UPDATE sets it (rotate_webhook_secret
    -- does). previous_secret itself is never taken from the statement.
    IF TG_OP = 'INSERT' THEN
        NEW.previous_secret := NULL;
        NEW.previous_secret_expires_at := NULL;
    ELSIF NEW.secret IS DISTINCT FROM OLD.secret THEN
        NEW.previous_secret := OLD.secret;
        IF NEW.previous_secret_expires_at IS NOT DISTINCT FROM OLD.previous_secret_expires_at THEN
            NEW.previous_secret_expires_at := now() + interval '24 hours';
        END IF;
    ELSE
        NEW.previous_secret := OLD.previous_secret;
    END IF;
    IF NEW.previous_secret IS NULL OR NEW.previous_secret_expires_at IS NULL OR NEW.previous_secret_expires_at <= now() THEN
        NEW.previous_secret := NULL;
        NEW.previous_secret_expires_at := NULL;
    END IF;
    IF length(NEW.url) > 2048 OR NEW.url !~* '^https?://[^\s/?#@]+([/?#]\S*)?$' THEN
        RAISE EXCEPTION 'invalid webhook url: expected http(s)://host[:port][/path], without credentials or spaces'
            USING ERRCODE = '22023', COLUMN = 'url', HINT = 'put credentials in headers, e.g. {"Authorization": "Bearer ..."}';
    END IF;
    -- The port, when given: digits, 1 to 65535 (an IPv6 literal's colons are inside brackets).
    port := substring(NEW.url from '^[A-Za-z]+://(?:\[[^]]*\]|[^:/?#\[]*)(:[^/?#]*)?');
    IF port IS NOT NULL AND (CASE WHEN port ~ '^:[0-9]{1,5}$' THEN substr(port, 2)::integer NOT BETWEEN 1 AND 65535 ELSE true END) THEN
        RAISE EXCEPTION 'invalid webhook url: port "%" is not a number from 1 to 65535', left(substr(port, 2), 20)
            USING ERRCODE = '22023', COLUMN = 'url';
    END IF;
    IF jsonb_typeof(NEW.headers) <> 'object' THEN
        RAISE EXCEPTION 'invalid webhook headers: expected a JSON object of header names to string values'
            USING ERRCODE = '22023', COLUMN = 'headers';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(NEW.headers) LOOP
        IF k !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]{1,100}$' THEN
            RAISE EXCEPTION 'invalid webhook header name "%"', left(k, 100) USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
        IF lower(k) IN ('webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type') THEN
            RAISE EXCEPTION 'webhook header "%" is set by the gateway and cannot be configured', k
                USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
        -- Hop-by-hop and framing headers (RFC 9110 sections 7.6.1, 7.2, 8.6, 10.1.1, 11.7.2;
        -- RFC 9112 section 6.1): the HTTP client sets or refuses them; configured, they would
        -- break or smuggle the request.
        IF lower(k) IN ('connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer',
                        'upgrade', 'expect', 'proxy-authorization', 'proxy-authenticate', 'host', 'content-length') THEN
            RAISE EXCEPTION 'webhook header "%" is a hop-by-hop or framing header and cannot be configured', k
                USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
        IF jsonb_typeof(v) <> 'string' OR (v #>> '{}') ~ '[\r\n\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' OR length(v #>> '{}') > 8192 THEN
            RAISE EXCEPTION 'invalid value for webhook header "%": expected a string without control characters', k
                USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        NEW.created_at := OLD.created_at;
        NEW.updated_at := now();
        recompile := NEW.model IS DISTINCT FROM OLD.model OR NEW.fields IS DISTINCT FROM OLD.fields
                     OR NEW.domain IS DISTINCT FROM OLD.domain OR (NEW.active AND NOT OLD.active);
    ELSE
        recompile := true;
    END IF;
    IF NOT recompile THEN
        NEW.table_name := OLD.table_name;
        NEW.payload_fields := OLD.payload_fields;
        NEW.watched_fields := OLD.watched_fields;
        NEW.condition := OLD.condition;
        -- Always from the table as it is now (see _webhook_after_alter_table).
        NEW.payload_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.payload_fields);
        NEW.watched_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.watched_fields);
        RETURN NEW;
    END IF;
    -- Nested: PL/pgSQL plans a whole condition at once, and public.ir_model may not exist
    -- (Odoo installed after the extension).
    IF to_regclass('public.ir_model') IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM public.ir_model) THEN
            -- Odoo's metadata is not there yet: this is pg_restore replaying the webhook rows
            -- before public's data. Keep the row, inactive, to be re-enabled after the restore.
            NEW.active := false;
            NEW.disabled_reason := 'saved while Odoo''s ir_model was empty (a restore?): re-enable with UPDATE api_gateway.webhook SET active = true';
            NEW.table_name := replace(NEW.model, '.', '_');
            NEW.payload_fields := '{id}';
            NEW.watched_fields := '{}';
            NEW.payload_attnums := '{}';
            NEW.watched_attnums := '{}';
            NEW.condition := NULL;
            RETURN NEW;
        END IF;
    END IF;
    NEW.payload_fields := api_gateway._webhook_fields(NEW.model, NEW.fields);
    NEW.condition := api_gateway._webhook_condition(NEW.model, NEW.domain);
    NEW.table_name := replace(NEW.model, '.', '_');
    -- Odoo stamps write_date/write_uid on every write: they alone never make a write fire.
    NEW.watched_fields := ARRAY(SELECT f FROM unnest(NEW.payload_fields) AS f
                                 WHERE f NOT IN ('id', 'write_date', 'write_uid'));
    NEW.payload_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.payload_fields);
    NEW.watched_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.watched_fields);
    IF NEW.active THEN
        NEW.disabled_reason := NULL;
    END IF;
    RETURN NEW;
END;
$$;

-- == gate generation (issue 17): kept gate facts checked against a number in shared memory ==
-- `_note_gate_change()` and the trigger `_gate_change()` mark a transaction that changes the
-- gate's kept facts; with shared memory the gate's generation moves when it commits
-- (src/gate_generation.rs). The gate's own triggers, the security tables' trigger, and new
-- triggers on res_users (active) and res_users_apikeys call them.
CREATE FUNCTION api_gateway."_note_gate_change"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_note_gate_change_wrapper';
CREATE FUNCTION api_gateway."_gate_change"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', '_gate_change_wrapper';
REVOKE ALL ON FUNCTION api_gateway._note_gate_change(), api_gateway._gate_change() FROM PUBLIC;

-- With shared memory, the same changes also move the gate's generation when they commit
-- (`_note_gate_change`, src/gate_generation.rs): kept facts are then checked without a statement.
CREATE OR REPLACE FUNCTION api_gateway._bump_gate_epoch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE api_gateway.gate_epoch SET epoch = nextval('api_gateway.gate_epoch_seq');
    PERFORM api_gateway._note_gate_change();
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION api_gateway._bump_gate_epoch_if_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE api_gateway.gate_epoch SET epoch = nextval('api_gateway.gate_epoch_seq');
        PERFORM api_gateway._note_gate_change();
    END IF;
    RETURN NULL;
END;
$$;
-- The trigger function: at most one INSERT per transaction (a transaction-local setting
-- remembers it; a rolled-back savepoint reverts both). SECURITY DEFINER: Odoo's role has no
-- right on the api_gateway schema.
CREATE OR REPLACE FUNCTION api_gateway._note_odoo_security_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_setting('api_gateway_cache.noted', true) IS DISTINCT FROM pg_current_xact_id()::text THEN
        INSERT INTO api_gateway.odoo_security_change (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
        PERFORM set_config('api_gateway_cache.noted', pg_current_xact_id()::text, true);
        -- Group memberships are among the gate's kept facts too (the admin scope).
        PERFORM api_gateway._note_gate_change();
    END IF;
    RETURN NULL;
END;
$$;

-- The Odoo rows behind the gate's kept facts that no security table covers: a user's active
-- flag and the API key rows (a new key changes nothing kept). Their trigger only marks the
-- transaction (`_gate_change`, in Rust): the gate's generation moves when it commits.
CREATE FUNCTION api_gateway._gate_tables() RETURNS text[][]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN ARRAY[['res_users', 'UPDATE OF active OR DELETE OR TRUNCATE'],
             ['res_users_apikeys', 'UPDATE OR DELETE OR TRUNCATE']];

-- Installs the triggers on each of those tables that exists and lacks them; true when every
-- existing one has them. Run by CREATE EXTENSION, by the first data call of each backend and by
-- the gate's first kept facts (so an Odoo installed after the extension is covered). Never
-- raises: a table it cannot lock within 1 s is left for a later call (WARNING), and the caller
-- serves that backend uncached meanwhile.
CREATE OR REPLACE FUNCTION api_gateway._install_security_triggers() RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl text;
    events text;
    i integer;
    rel regclass;
    complete boolean := true;
BEGIN
    FOREACH tbl IN ARRAY api_gateway._security_tables() LOOP
        rel := to_regclass(format('public.%I', tbl));
        CONTINUE WHEN rel IS NULL
            OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'api_gateway_security_change');
        BEGIN
            PERFORM set_config('lock_timeout', '1000', true);
            EXECUTE format('CREATE TRIGGER api_gateway_security_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._note_odoo_security_change()', rel);
        EXCEPTION WHEN OTHERS THEN
            complete := false;
            RAISE WARNING 'api_gateway could not install its cache trigger on % (%); data calls run uncached until it is', rel, SQLERRM;
        END;
    END LOOP;
    FOR i IN 1 .. array_length(api_gateway._gate_tables(), 1) LOOP
        tbl := (api_gateway._gate_tables())[i][1];
        events := (api_gateway._gate_tables())[i][2];
        rel := to_regclass(format('public.%I', tbl));
        CONTINUE WHEN rel IS NULL
            OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'api_gateway_gate_change');
        BEGIN
            PERFORM set_config('lock_timeout', '1000', true);
            EXECUTE format('CREATE TRIGGER api_gateway_gate_change AFTER %s ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._gate_change()', events, rel);
        EXCEPTION WHEN OTHERS THEN
            complete := false;
            RAISE WARNING 'api_gateway could not install its gate trigger on % (%); requests re-read their credentials until it is', rel, SQLERRM;
        END;
    END LOOP;
    RETURN complete;
END;
$$;

REVOKE ALL ON FUNCTION api_gateway._gate_tables() FROM PUBLIC;
SELECT api_gateway._install_security_triggers();
-- A new version: facts kept by any backend's gate are read again.
SELECT api_gateway._note_gate_change();
-- The gate's functions pin search_path (and plan_cache_mode) around their statements only
-- (src/spi.rs, pinned_generic), as rate_limit_hit does: with kept facts they run none, and a setting of
-- the function is applied and undone on every call.
ALTER FUNCTION api_gateway.verify_api_key(text, text) RESET ALL;

-- authenticate returns rows of a named type (its shape from the type cache, not rebuilt from
-- pg_proc on every call) and says it returns one row (ROWS 1: statements that join it to a data
-- call keep one generic plan): re-created, keeping the EXECUTE rights granted on it.
CREATE TYPE api_gateway.gate_answer AS (
    status integer, uid integer, client_id text, scopes text[], error text, rate_limit integer,
    remaining integer, reset_s integer, detail text, window_s integer
);
SELECT set_config('api_gateway.authenticate_regrant', coalesce((
    SELECT jsonb_agg(a.grantee::regrole::text)::text
      FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = 'api_gateway.authenticate(text, inet, text)'::regprocedure
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner), '[]'), true);
DROP FUNCTION api_gateway.authenticate(text, inet, text);
CREATE FUNCTION api_gateway.authenticate(authorization text, client_ip inet, method text)
RETURNS SETOF api_gateway.gate_answer
VOLATILE SECURITY DEFINER ROWS 1
LANGUAGE c AS 'MODULE_PATHNAME', 'authenticate_wrapper';
REVOKE ALL ON FUNCTION api_gateway.authenticate(text, inet, text) FROM PUBLIC;
DO $regrant$
DECLARE
    g text;
BEGIN
    FOR g IN SELECT jsonb_array_elements_text(current_setting('api_gateway.authenticate_regrant')::jsonb) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION api_gateway.authenticate(text, inet, text) TO %s', g);
    END LOOP;
END
$regrant$;

-- rate_limit_hit returns rows of a named type (its shape from the type cache, not rebuilt from
-- pg_proc on every call), one row (ROWS 1): both overloads re-created, keeping the EXECUTE
-- rights granted on them.
CREATE TYPE api_gateway.rate_limit_answer AS (allowed boolean, remaining integer, reset_s integer);
SELECT set_config('api_gateway.rate_limit_regrant', coalesce((
    SELECT jsonb_agg(jsonb_build_array(p.oid::regprocedure::text, a.grantee::regrole::text))::text
      FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid IN ('api_gateway.rate_limit_hit(text, integer, integer)'::regprocedure,
                     'api_gateway.rate_limit_hit(text, integer, integer, integer, text)'::regprocedure)
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner), '[]'), true);
DROP FUNCTION api_gateway.rate_limit_hit(text, integer, integer);
DROP FUNCTION api_gateway.rate_limit_hit(text, integer, integer, integer, text);
CREATE FUNCTION api_gateway.rate_limit_hit(subject text, max_requests integer, window_s integer)
RETURNS SETOF api_gateway.rate_limit_answer
VOLATILE SECURITY DEFINER ROWS 1
LANGUAGE c AS 'MODULE_PATHNAME', 'rate_limit_hit_wrapper';
CREATE FUNCTION api_gateway.rate_limit_hit(subject text, max_requests integer, window_s integer,
                                           cost integer, algorithm text DEFAULT 'sliding')
RETURNS SETOF api_gateway.rate_limit_answer
VOLATILE SECURITY DEFINER ROWS 1
LANGUAGE c AS 'MODULE_PATHNAME', 'rate_limit_hit_cost_wrapper';
REVOKE ALL ON FUNCTION api_gateway.rate_limit_hit(text, integer, integer),
    api_gateway.rate_limit_hit(text, integer, integer, integer, text) FROM PUBLIC;
DO $regrant$
DECLARE
    g jsonb;
BEGIN
    FOR g IN SELECT jsonb_array_elements(current_setting('api_gateway.rate_limit_regrant')::jsonb) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', (g->>0)::regprocedure, g->>1);
    END LOOP;
END
$regrant$;

-- webhook_claim reads about as many jobs as it claims, whatever the statistics of the outbox
-- say (src/sql/webhooks.sql): one claim of 32 jobs over 20,000 queued took 51 s when they said
-- "empty". Same signature, so its grants stay.
CREATE OR REPLACE FUNCTION api_gateway.webhook_claim(
    worker text, slots integer, slot_ids integer[] DEFAULT '{}', slot_counts integer[] DEFAULT '{}')
RETURNS TABLE (job_id bigint, event_id uuid, webhook_id integer, attempt integer, url text,
               headers jsonb, secret text, timeout_ms integer, payload text, created_at timestamptz,
               previous_secret text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH orphan AS (
        SELECT j.id FROM api_gateway.webhook_job j
         WHERE j.leased_pid IS NOT NULL AND j.state IN ('pending', 'failed') AND j.next_attempt_at > now()
           AND NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(j.leased_pid) a
                            WHERE a.backend_start IS NOT DISTINCT FROM j.leased_backend_start)
           FOR UPDATE SKIP LOCKED)
    UPDATE api_gateway.webhook_job j
       SET next_attempt_at = now(), leased_by = NULL, leased_pid = NULL, leased_backend_start = NULL,
           updated_at = now()
      FROM orphan o
     WHERE j.id = o.id AND j.id = ANY (ARRAY(SELECT o2.id FROM orphan o2));
    WITH margin AS (SELECT s.lease_margin FROM api_gateway.webhook_settings s),
    w AS (
        SELECT h.id, h.model, h.payload_fields, h.url, h.headers, h.secret, h.timeout,
               CASE WHEN h.previous_secret_expires_at > now() THEN h.previous_secret END AS previous_secret,
               greatest(coalesce(f.n, slots), 0) AS n
          FROM api_gateway.webhook h
          LEFT JOIN unnest(slot_ids, slot_counts) AS f(id, n) ON f.id = h.id
         WHERE h.active),
    c AS (
        SELECT j.id, w.model, w.payload_fields, w.url, w.headers, w.secret, w.timeout, w.previous_secret
          FROM w CROSS JOIN LATERAL (
               SELECT q.id FROM api_gateway.webhook_job q
                WHERE q.webhook_id = w.id AND q.state IN ('pending', 'failed') AND q.next_attempt_at <= now()
                  -- the oldest unfinished job of its record (a subquery, not NOT EXISTS: one
                  -- probe per candidate, never a join)
                  AND (q.record_id IS NULL
                       OR q.id = (SELECT o.id FROM api_gateway.webhook_job o
                                   WHERE o.webhook_id = q.webhook_id AND o.record_id = q.record_id
                                     AND o.state IN ('pending', 'failed')
                                   ORDER BY o.id LIMIT 1))
                ORDER BY q.next_attempt_at
                LIMIT w.n
                  FOR UPDATE SKIP LOCKED) j
         WHERE w.n > 0),
    me AS (SELECT a.pid, a.backend_start FROM pg_stat_get_activity(pg_backend_pid()) a)
    UPDATE api_gateway.webhook_job j
       SET attempts = j.attempts + 1,
           next_attempt_at = now() + c.timeout + coalesce((SELECT lease_margin FROM margin), interval '30 seconds'),
           leased_by = worker,
           leased_pid = (SELECT me.pid FROM me),
           leased_backend_start = (SELECT me.backend_start FROM me),
           updated_at = now()
      FROM c
     -- (the array makes the planner fetch the few claimed rows by primary key, whatever it
     -- estimates for LIMIT w.n, instead of scanning the whole outbox)
     WHERE j.id = c.id AND j.id = ANY (ARRAY(SELECT c2.id FROM c c2))
    RETURNING j.id, j.event_id, j.webhook_id, j.attempts, c.url, c.headers, c.secret,
              (extract(epoch FROM c.timeout) * 1000)::integer,
              api_gateway._webhook_payload(j.event_id, j.created_at, j.action, c.model, j.record_id, j.data, c.payload_fields)::text,
              j.created_at, c.previous_secret;
$$;
