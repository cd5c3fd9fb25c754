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
