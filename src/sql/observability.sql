-- Traffic logs, their hourly rollups, statistics for the dashboard and the maintenance jobs.
--
-- request_log is partitioned by day: removing a day past the retention is a DROP of its
-- partition (instant at any size) rather than a DELETE; a DEFAULT partition catches rows outside
-- the prepared days, and its old rows are deleted in batches. Every INSERT also folds its rows
-- into request_stats (hour x user x method x endpoint x status x latency bucket) and
-- request_stats_ip (hour x address) through a statement-level trigger, so the statistics read a
-- few thousand rollup rows whatever the number of log rows.

CREATE SEQUENCE api_gateway.request_log_id_seq;

CREATE TABLE api_gateway.request_log (
    id             bigint NOT NULL DEFAULT nextval('api_gateway.request_log_id_seq'),
    at             timestamptz NOT NULL DEFAULT now(),
    method         text NOT NULL,
    path           text NOT NULL,
    model          text,
    record_id      integer,
    status         smallint NOT NULL,
    latency_ms     real NOT NULL,
    client_ip      inet,
    uid            integer,
    client_id      text,
    user_agent     text,
    request_bytes  integer,
    response_bytes integer,
    request_body   text,
    response_body  text,
    error          text,
    error_chain    text
) PARTITION BY RANGE (at);
COMMENT ON TABLE api_gateway.request_log IS
    'HTTP traffic written by api-gateway serve (level in settings.log_level); never holds a secret: Authorization is stored as "Bearer **********".';
CREATE TABLE api_gateway.request_log_default PARTITION OF api_gateway.request_log DEFAULT;
CREATE INDEX request_log_at_idx ON api_gateway.request_log (at);
CREATE INDEX request_log_status_idx ON api_gateway.request_log (status, at) WHERE status >= 400;

CREATE TABLE api_gateway.request_stats (
    bucket         timestamptz NOT NULL,
    uid            integer NOT NULL,
    method         text NOT NULL,
    endpoint       text NOT NULL,
    status         smallint NOT NULL,
    latency_bucket smallint NOT NULL,
    requests       bigint NOT NULL,
    latency_sum    double precision NOT NULL,
    latency_max    real NOT NULL,
    PRIMARY KEY (bucket, uid, method, endpoint, status, latency_bucket)
);
COMMENT ON TABLE api_gateway.request_stats IS
    'Hourly rollup of request_log (uid 0 = anonymous); latency_bucket indexes api_gateway.latency_bounds().';

CREATE TABLE api_gateway.request_stats_ip (
    bucket    timestamptz NOT NULL,
    client_ip inet NOT NULL,
    requests  bigint NOT NULL,
    errors    bigint NOT NULL,
    PRIMARY KEY (bucket, client_ip)
);

-- Upper bounds (ms) of the latency buckets; the last bucket is everything above.
CREATE FUNCTION api_gateway.latency_bounds() RETURNS real[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '{1,2,5,10,20,50,100,200,500,1000,2000,5000}'::real[];

-- "GET /api/v1/res.partner/42" -> "/api/v1/res.partner/{id}": endpoints without record ids.
CREATE FUNCTION api_gateway.endpoint_of(path text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN left(regexp_replace(split_part(path, '?', 1), '/[0-9]+(?=/|$)', '/{id}', 'g'), 200);

CREATE FUNCTION api_gateway._request_log_rollup() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO api_gateway.request_stats AS s
           (bucket, uid, method, endpoint, status, latency_bucket, requests, latency_sum, latency_max)
    SELECT date_trunc('hour', n.at), coalesce(n.uid, 0), n.method, api_gateway.endpoint_of(n.path), n.status,
           width_bucket(n.latency_ms, api_gateway.latency_bounds()), count(*), sum(n.latency_ms), max(n.latency_ms)
      FROM new_rows n
     GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (bucket, uid, method, endpoint, status, latency_bucket) DO UPDATE
       SET requests = s.requests + EXCLUDED.requests,
           latency_sum = s.latency_sum + EXCLUDED.latency_sum,
           latency_max = greatest(s.latency_max, EXCLUDED.latency_max);
    INSERT INTO api_gateway.request_stats_ip AS s (bucket, client_ip, requests, errors)
    SELECT date_trunc('hour', n.at), n.client_ip, count(*), count(*) FILTER (WHERE n.status >= 400)
      FROM new_rows n WHERE n.client_ip IS NOT NULL
     GROUP BY 1, 2
    ON CONFLICT (bucket, client_ip) DO UPDATE
       SET requests = s.requests + EXCLUDED.requests, errors = s.errors + EXCLUDED.errors;
    PERFORM pg_notify('api_gateway_log', json_build_object(
        'rows', (SELECT count(*) FROM new_rows),
        'faults', (SELECT count(*) FROM new_rows WHERE status >= 400),
        'max_id', (SELECT max(id) FROM new_rows))::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER request_log_rollup AFTER INSERT ON api_gateway.request_log
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._request_log_rollup();

-- `log_requests(rows jsonb)`: what the front calls with a batch of log records (a JSON array of
-- objects with the request_log column names). Values over the size limits are cut.
CREATE FUNCTION api_gateway.log_requests(rows jsonb) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    IF rows IS NULL OR jsonb_typeof(rows) <> 'array' THEN
        RAISE EXCEPTION 'log_requests expects a JSON array of log records' USING ERRCODE = '22023';
    END IF;
    INSERT INTO api_gateway.request_log (at, method, path, model, record_id, status, latency_ms, client_ip, uid,
           client_id, user_agent, request_bytes, response_bytes, request_body, response_body, error, error_chain)
    SELECT coalesce(r.at, now()), left(r.method, 16), left(r.path, 2000), left(r.model, 128), r.record_id, r.status,
           greatest(r.latency_ms, 0), r.client_ip, r.uid, left(r.client_id, 64), left(r.user_agent, 512),
           r.request_bytes, r.response_bytes, left(r.request_body, 65536), left(r.response_body, 65536),
           left(r.error, 4000), left(r.error_chain, 16000)
      FROM jsonb_populate_recordset(NULL::api_gateway.request_log, rows) r;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- Daily partitions for today and the next `days_ahead` days (idempotent).
CREATE FUNCTION api_gateway.ensure_log_partitions(days_ahead integer DEFAULT 3) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d date;
    created integer := 0;
    part text;
BEGIN
    FOR d IN SELECT generate_series(current_date, current_date + greatest(days_ahead, 0), interval '1 day')::date LOOP
        part := 'request_log_' || to_char(d, 'YYYYMMDD');
        IF to_regclass('api_gateway.' || part) IS NULL THEN
            -- Rows already in the default partition for that day would block the new partition:
            -- move them over first.
            EXECUTE format('CREATE TABLE api_gateway.%I (LIKE api_gateway.request_log INCLUDING DEFAULTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM api_gateway.request_log_default WHERE at >= %L AND at < %L RETURNING *) '
                           'INSERT INTO api_gateway.%I SELECT * FROM moved', d, d + 1, part);
            EXECUTE format('ALTER TABLE api_gateway.request_log ATTACH PARTITION api_gateway.%I FOR VALUES FROM (%L) TO (%L)',
                           part, d::timestamptz, (d + 1)::timestamptz);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;

-- Maintenance: each job takes a transaction-level advisory lock (so several fronts may run it
-- at once: one works, the others skip) and records its last run.
CREATE TABLE api_gateway.maintenance_run (
    job         text PRIMARY KEY,
    last_run_at timestamptz NOT NULL,
    last_result jsonb NOT NULL,
    runs        bigint NOT NULL DEFAULT 1
);

CREATE FUNCTION api_gateway._record_run(job text, result jsonb) RETURNS jsonb
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO api_gateway.maintenance_run AS m (job, last_run_at, last_result) VALUES ($1, now(), $2)
    ON CONFLICT ON CONSTRAINT maintenance_run_pkey DO UPDATE
       SET last_run_at = now(), last_result = EXCLUDED.last_result, runs = m.runs + 1
    RETURNING last_result;
$$;

-- `run_maintenance(job)`: 'logs' (retention: drop old partitions, delete old default rows in
-- batches, prepare the next partitions, trim rollups older than a year), 'webhook_jobs'
-- (delivered/dead jobs past retention), 'secret_display' (one-time secret displays), 'tokens'
-- (tokens expired more than 7 days ago), 'throttles' (ended rate-limit windows),
-- 'upstream_keys' (OAuth2 clients' Odoo keys: renew those with less than 7 days left, remove
-- expired ones), 'idempotency' (idempotency keys older than 24 hours), 'security_changes' (the
-- data caches' change log: transactions finished more than 10 minutes ago), 'feeds' (change feed
-- log rows past each feed's retention), or 'all'.
CREATE FUNCTION api_gateway.run_maintenance(job text DEFAULT 'all') RETURNS jsonb
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

-- `log_level()`: the traffic log level in the settings (errors, metadata or payloads), read by
-- every front every few seconds.
CREATE FUNCTION api_gateway.log_level() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.log_level FROM api_gateway.settings s;
$$;

-- `metrics_gauges()`: what /metrics reads from the database: webhook jobs by state (NULL without
-- the webhook tables) and, per maintenance job, [last run as epoch seconds, recorded runs].
CREATE FUNCTION api_gateway.metrics_gauges() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jobs jsonb;
BEGIN
    IF to_regclass('api_gateway.webhook_job') IS NOT NULL THEN
        SELECT coalesce(jsonb_object_agg(x.state, x.n), '{}'::jsonb) INTO jobs
          FROM (SELECT j.state::text AS state, count(*) AS n FROM api_gateway.webhook_job j GROUP BY 1) x;
    END IF;
    RETURN jsonb_build_object(
        'webhook_jobs', jobs,
        'maintenance', (SELECT coalesce(jsonb_object_agg(m.job, jsonb_build_array(extract(epoch FROM m.last_run_at)::float8, m.runs)), '{}'::jsonb)
                          FROM api_gateway.maintenance_run m));
END;
$$;
