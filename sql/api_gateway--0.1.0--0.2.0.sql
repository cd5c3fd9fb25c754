-- api_gateway 0.1.0 -> 0.2.0: the gate (JWT, OAuth2 clients and tokens, Odoo API keys,
-- IP allow-lists, rate limits, authenticate) and Odoo-faithful data access.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.2.0'" to load this file. \quit

-- The gate: who may call (OAuth2 clients, Odoo users' profiles), what was issued (tokens),
-- which signing keys still verify, and the rate-limit counters. No foreign key to Odoo tables:
-- user_id columns hold res_users ids and are checked against res_users when used.

-- Per Odoo user: rate limit, allowed IPs, on/off. A user without a profile gets the global limit.
CREATE TABLE api_gateway.profile (
    user_id           integer PRIMARY KEY CHECK (user_id > 0),
    rate_limit        integer CHECK (rate_limit >= 0),
    rate_limit_window text NOT NULL DEFAULT 'minute' CHECK (rate_limit_window IN ('minute', 'hour', 'day')),
    allowed_ips       cidr[],
    active            boolean NOT NULL DEFAULT true,
    note              text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE api_gateway.profile IS
    'Per Odoo user (res_users.id): rate limit (NULL = the global one, 0 = unlimited) per window, allowed IPs (NULL or empty = any), active.';
CREATE TRIGGER profile_updated_at BEFORE UPDATE ON api_gateway.profile
    FOR EACH ROW EXECUTE FUNCTION api_gateway._touch_updated_at();

-- OAuth2 clients (client credentials grant). The secret is stored only as its SHA-256: it is
-- 32 random characters (190 bits), so a slow hash would add cost and no safety.
CREATE TABLE api_gateway.client (
    client_id   text PRIMARY KEY CHECK (client_id ~ '^gw_[0-9a-f]{12}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    user_id     integer NOT NULL CHECK (user_id > 0),
    scopes      text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write', 'delete', 'admin']),
    allowed_ips cidr[],
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE api_gateway.client IS
    'OAuth2 clients: client_id gw_ + 12 hex, secret shown once and stored as SHA-256, acting as Odoo user user_id with the given scopes.';
CREATE INDEX client_user_id_idx ON api_gateway.client (user_id);
CREATE TRIGGER client_updated_at BEFORE UPDATE ON api_gateway.client
    FOR EACH ROW EXECUTE FUNCTION api_gateway._touch_updated_at();

-- Every access token issued, by its jti, so that revocation takes effect on the next request.
CREATE TABLE api_gateway.token (
    jti        text PRIMARY KEY,
    client_id  text NOT NULL REFERENCES api_gateway.client (client_id) ON DELETE CASCADE,
    user_id    integer NOT NULL,
    scopes     text[] NOT NULL,
    kid        text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX token_client_id_idx ON api_gateway.token (client_id);
CREATE INDEX token_expires_at_idx ON api_gateway.token (expires_at);

-- Retired JWT signing keys: tokens signed with them verify until valid_until (their last expiry).
CREATE TABLE api_gateway.signing_key (
    kid         text PRIMARY KEY,
    secret      text NOT NULL,
    retired_at  timestamptz NOT NULL DEFAULT now(),
    valid_until timestamptz NOT NULL
);

-- Rate-limit counters: one row per subject, overwritten when a new window starts, so the table
-- holds at most one row per active subject. UNLOGGED: no WAL on the hot path; after a crash the
-- counters restart at zero (a fresh window), which errs on the side of letting requests through.
CREATE UNLOGGED TABLE api_gateway.throttle (
    subject      text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    window_s     integer NOT NULL,
    hits         integer NOT NULL,
    max_requests integer NOT NULL
);

CREATE VIEW api_gateway.active_throttles AS
SELECT subject,
       hits AS count,
       max_requests AS "limit",
       greatest(max_requests - hits, 0) AS remaining,
       hits > max_requests AS throttled,
       window_start,
       window_s,
       window_start + make_interval(secs => window_s) AS resets_at
  FROM api_gateway.throttle
 WHERE window_start + make_interval(secs => window_s) > now();

SELECT pg_catalog.pg_extension_config_dump('api_gateway.profile', '');
SELECT pg_catalog.pg_extension_config_dump('api_gateway.client', '');
SELECT pg_catalog.pg_extension_config_dump('api_gateway.token', '');
SELECT pg_catalog.pg_extension_config_dump('api_gateway.signing_key', '');

-- `ip_allowed(ip, allowlist)`: NULL or empty list allows all; otherwise the address must lie in
-- one of the ranges (IPv4 and IPv6, single addresses and CIDR). A NULL ip is refused by a list.
-- No SET search_path (it is not SECURITY DEFINER and names only pg_catalog objects), so the
-- planner can inline it into the caller's query.
CREATE FUNCTION api_gateway.ip_allowed(ip inet, allowlist cidr[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN allowlist IS NULL OR cardinality(allowlist) = 0
       OR coalesce(EXISTS (SELECT 1 FROM unnest(allowlist) AS c(range) WHERE ip <<= c.range), false);

-- `create_client(name, user_id, scopes, allowed_ips)`: a new OAuth2 client; the secret is
-- returned here once and never again.
CREATE FUNCTION api_gateway.create_client(
    name text, user_id integer, scopes text[] DEFAULT '{read}', allowed_ips cidr[] DEFAULT NULL)
RETURNS TABLE (client_id text, client_secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id text := api_gateway._new_client_id();
    new_secret text := api_gateway._new_client_secret();
    bad text;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'a client needs a name' USING ERRCODE = '22023';
    END IF;
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'a client needs the id of the Odoo user it acts as' USING ERRCODE = '22023';
    END IF;
    IF scopes IS NULL OR cardinality(scopes) = 0 THEN
        RAISE EXCEPTION 'a client needs at least one scope among read, write, delete, admin' USING ERRCODE = '22023';
    END IF;
    SELECT s INTO bad FROM unnest(scopes) AS s WHERE s IS NULL OR s NOT IN ('read', 'write', 'delete', 'admin') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown scope "%": scopes are read, write, delete, admin', bad USING ERRCODE = '22023';
    END IF;
    IF to_regclass('public.res_users') IS NULL THEN
        RAISE EXCEPTION 'api_gateway.create_client needs Odoo''s table public.res_users, which this database does not have'
            USING ERRCODE = '42P01';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.res_users u WHERE u.id = create_client.user_id AND u.active) THEN
        RAISE EXCEPTION 'Odoo user % does not exist or is archived', user_id USING ERRCODE = '22023';
    END IF;
    INSERT INTO api_gateway.client (client_id, name, secret_hash, user_id, scopes, allowed_ips)
    VALUES (new_id, btrim(name), encode(sha256(convert_to(new_secret, 'UTF8')), 'hex'), user_id,
            ARRAY(SELECT DISTINCT s FROM unnest(scopes) AS s ORDER BY 1), allowed_ips);
    client_id := new_id;
    client_secret := new_secret;
    RETURN NEXT;
END;
$$;

-- `rotate_signing_key()`: new tokens are signed with a new key; tokens signed with the old one
-- keep verifying until the longest of them expires. Returns the new kid.
CREATE FUNCTION api_gateway.rotate_signing_key() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_kid text := substr(api_gateway._new_signing_secret(), 1, 16);
BEGIN
    INSERT INTO api_gateway.signing_key (kid, secret, valid_until)
    SELECT s.jwt_kid, s.jwt_secret,
           greatest(now() + make_interval(secs => s.token_lifetime_s + 60),
                    coalesce((SELECT max(t.expires_at) + interval '60 seconds' FROM api_gateway.token t
                               WHERE t.kid = s.jwt_kid), now()))
      FROM api_gateway.settings s;
    UPDATE api_gateway.settings SET jwt_kid = new_kid, jwt_secret = api_gateway._new_signing_secret();
    DELETE FROM api_gateway.signing_key WHERE valid_until < now();
    RETURN new_kid;
END;
$$;

-- `describe_models(uid)`: the models the user may read, with their stored fields (type, label,
-- required, readonly, relation, selection values), for OpenAPI schemas and admin screens.
-- plpgsql so that CREATE EXTENSION works in a database without Odoo's tables.
CREATE FUNCTION api_gateway.describe_models(uid integer) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
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
               AND to_regclass('public.' || quote_ident(replace(m.model, '.', '_'))) IS NOT NULL
               AND (describe_models.uid = 1 OR EXISTS (
                    SELECT 1 FROM public.ir_model_access a
                     WHERE a.model_id = m.id AND a.active AND a.perm_read
                       AND (a.group_id IS NULL OR a.group_id IN (SELECT gid FROM g)))))
        SELECT coalesce(jsonb_object_agg(r.model, jsonb_build_object(
                   'name', r.label,
                   'fields', (SELECT coalesce(jsonb_object_agg(f.name, jsonb_build_object(
                                  'type', f.ttype,
                                  'string', coalesce(f.field_description->>'en_US', f.name),
                                  'required', coalesce(f.required, false),
                                  'readonly', coalesce(f.readonly, false),
                                  'relation', f.relation,
                                  'selection', (SELECT jsonb_agg(jsonb_build_array(s.value, coalesce(s.name->>'en_US', s.value))
                                                          ORDER BY s.sequence, s.id)
                                                  FROM public.ir_model_fields_selection s WHERE s.field_id = f.id))), '{}'::jsonb)
                                FROM public.ir_model_fields f
                               WHERE f.model = r.model AND coalesce(f.store, false) AND f.ttype <> 'binary'))),
               '{}'::jsonb)
          FROM readable r);
END;
$$;

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
-- (tokens expired more than 7 days ago), 'throttles' (ended rate-limit windows), or 'all'.
CREATE FUNCTION api_gateway.run_maintenance(job text DEFAULT 'all') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep_days integer;
    cutoff timestamptz;
    part record;
    n bigint;
    dropped integer := 0;
    result jsonb;
BEGIN
    IF job = 'all' THEN
        RETURN jsonb_build_object(
            'logs', api_gateway.run_maintenance('logs'),
            'webhook_jobs', api_gateway.run_maintenance('webhook_jobs'),
            'secret_display', api_gateway.run_maintenance('secret_display'),
            'tokens', api_gateway.run_maintenance('tokens'),
            'throttles', api_gateway.run_maintenance('throttles'));
    END IF;
    IF job NOT IN ('logs', 'webhook_jobs', 'secret_display', 'tokens', 'throttles') THEN
        RAISE EXCEPTION 'unknown maintenance job "%": use logs, webhook_jobs, secret_display, tokens, throttles or all', job
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
    ELSE
        DELETE FROM api_gateway.throttle WHERE window_start + make_interval(secs => window_s) < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('windows_deleted', n);
    END IF;
    RETURN api_gateway._record_run(job, result);
END;
$$;

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

-- Functions implemented in Rust (text as generated by pgrx).
-- src/api/secrets.rs:4
-- api_gateway::api::secrets::_new_client_id
CREATE  FUNCTION "_new_client_id"() RETURNS TEXT /* String */
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_new_client_id_wrapper';

-- src/api/secrets.rs:9
-- api_gateway::api::secrets::_new_client_secret
CREATE  FUNCTION "_new_client_secret"() RETURNS TEXT /* String */
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_new_client_secret_wrapper';

-- src/api/authenticate.rs:235
-- api_gateway::api::authenticate::authenticate
CREATE  FUNCTION "authenticate"(
	"authorization" TEXT, /* Option < & str > */
	"client_ip" inet, /* Option < pgrx :: Inet > */
	"method" TEXT /* Option < & str > */
) RETURNS TABLE (
	"status" INT,  /* i32 */
	"uid" INT,  /* Option < i32 > */
	"client_id" TEXT,  /* Option < String > */
	"scopes" TEXT[],  /* :: std :: option :: Option < Vec < String > > */
	"error" TEXT,  /* Option < String > */
	"rate_limit" INT,  /* Option < i32 > */
	"remaining" INT,  /* Option < i32 > */
	"reset_s" INT,  /* Option < i32 > */
	"detail" TEXT,  /* Option < String > */
	"window_s" INT  /* Option < i32 > */
)
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'authenticate_wrapper';

-- src/api/data.rs:101
-- api_gateway::api::data::check_access
CREATE  FUNCTION "check_access"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"operation" TEXT /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'check_access_wrapper';

-- src/api/data.rs:68
-- api_gateway::api::data::create
CREATE  FUNCTION "create"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"vals" jsonb /* Option < pgrx :: JsonB > */
) RETURNS INT /* i32 */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'data_create_wrapper';

-- src/api/oauth.rs:267
-- api_gateway::api::oauth::introspect_token
CREATE  FUNCTION "introspect_token"(
	"token" TEXT /* Option < & str > */
) RETURNS jsonb /* pgrx :: JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'introspect_token_wrapper';

-- src/api/oauth.rs:60
-- api_gateway::api::oauth::issue_token
CREATE  FUNCTION "issue_token"(
	"client_id" TEXT, /* Option < & str > */
	"client_secret" TEXT, /* Option < & str > */
	"scope" TEXT DEFAULT NULL, /* Option < & str > */
	"client_ip" inet DEFAULT NULL /* Option < pgrx :: Inet > */
) RETURNS TABLE (
	"status" INT,  /* i32 */
	"body" jsonb  /* pgrx :: JsonB */
)
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'issue_token_wrapper';

-- src/api/jwt.rs:44
-- api_gateway::api::jwt::jwt_sign
CREATE  FUNCTION "jwt_sign"(
	"claims" jsonb, /* Option < pgrx :: JsonB > */
	"secret" TEXT, /* Option < & str > */
	"alg" TEXT DEFAULT 'HS256' /* Option < & str > */
) RETURNS TEXT /* String */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'jwt_sign_wrapper';

-- src/api/jwt.rs:64
-- api_gateway::api::jwt::jwt_verify
CREATE  FUNCTION "jwt_verify"(
	"token" TEXT, /* Option < & str > */
	"secret" TEXT, /* Option < & str > */
	"alg" TEXT DEFAULT 'HS256', /* Option < & str > */
	"leeway_s" INT DEFAULT 30 /* Option < i32 > */
) RETURNS jsonb /* pgrx :: JsonB */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'jwt_verify_wrapper';

-- src/api/rate_limit.rs:77
-- api_gateway::api::rate_limit::rate_limit_hit
CREATE  FUNCTION "rate_limit_hit"(
	"subject" TEXT, /* Option < & str > */
	"max_requests" INT, /* Option < i32 > */
	"window_s" INT /* Option < i32 > */
) RETURNS TABLE (
	"allowed" bool,  /* bool */
	"remaining" INT,  /* i32 */
	"reset_s" INT  /* i32 */
)
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rate_limit_hit_wrapper';

-- src/api/data.rs:44
-- api_gateway::api::data::read
CREATE  FUNCTION "read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"fields" TEXT[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < String > > > */
) RETURNS jsonb /* Option < pgrx :: JsonB > */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'data_read_wrapper';

-- src/api/oauth.rs:229
-- api_gateway::api::oauth::revoke_token
CREATE  FUNCTION "revoke_token"(
	"token" TEXT /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_token_wrapper';

-- src/api/data.rs:34
-- api_gateway::api::data::search_count
CREATE  FUNCTION "search_count"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]' /* Option < & str > */
) RETURNS bigint /* i64 */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_count_wrapper';

-- src/api/data.rs:15
-- api_gateway::api::data::search_read
CREATE  FUNCTION "search_read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]', /* Option < & str > */
	"fields" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"limit" INT DEFAULT NULL, /* Option < i32 > */
	"offset" INT DEFAULT 0, /* Option < i32 > */
	"order" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* pgrx :: JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_read_wrapper';

-- src/api/data.rs:90
-- api_gateway::api::data::unlink
CREATE  FUNCTION "unlink"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT /* Option < i32 > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'data_unlink_wrapper';

-- src/api/api_key.rs:135
-- api_gateway::api::api_key::verify_api_key
CREATE  FUNCTION "verify_api_key"(
	"key" TEXT, /* Option < & str > */
	"scope" TEXT DEFAULT 'rpc' /* Option < & str > */
) RETURNS INT /* Option < i32 > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'verify_api_key_wrapper';

-- src/api/data.rs:79
-- api_gateway::api::data::write
CREATE  FUNCTION "write"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"vals" jsonb /* Option < pgrx :: JsonB > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER 
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'data_write_wrapper';

REVOKE ALL ON ALL TABLES IN SCHEMA api_gateway FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api_gateway FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.version() TO PUBLIC;
-- The statements of the gate and of reads are planned once per backend (kept SPI plans); their
-- custom plans are rarely better than the generic one, and re-planning each call costs more than running them.
ALTER FUNCTION api_gateway.authenticate(text, inet, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.verify_api_key(text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.search_read(integer, text, text, text[], integer, integer, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.search_count(integer, text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.read(integer, text, integer, text[]) SET plan_cache_mode = force_generic_plan;

-- Pure helpers that hold no secret: anyone may use them.
GRANT EXECUTE ON FUNCTION api_gateway.jwt_sign(jsonb, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.jwt_verify(text, text, text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.ip_allowed(inet, cidr[]) TO PUBLIC;
-- Everything else (authenticate, issue_token, revoke_token, verify_api_key, rate_limit_hit,
-- create_client, rotate_signing_key) is granted by the DBA to the front's role; see docs/sql.md.

-- ==== webhooks (issue 6) ====
-- Webhooks (src/sql/webhooks.sql and src/api/webhooks.rs), then the privileges finalize.sql
-- gives a fresh install, again for the new objects.

-- The Rust functions first: the webhook triggers call them.
-- src/api/webhooks.rs:100
-- api_gateway::api::webhooks::_webhook_condition
CREATE  FUNCTION "_webhook_condition"(
	"model" TEXT, /* & str */
	"domain" TEXT /* Option < & str > */
) RETURNS TEXT /* Option < String > */
STABLE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_condition_wrapper';

-- src/api/webhooks.rs:13
-- api_gateway::api::webhooks::_new_webhook_secret
CREATE  FUNCTION "_new_webhook_secret"() RETURNS TEXT /* String */
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_new_webhook_secret_wrapper';

-- src/api/webhooks.rs:20
-- api_gateway::api::webhooks::_webhook_secret_valid
CREATE  FUNCTION "_webhook_secret_valid"(
	"secret" TEXT /* & str */
) RETURNS bool /* bool */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_secret_valid_wrapper';

-- src/api/webhooks.rs:347
-- api_gateway::api::webhooks::_webhook_row_json
CREATE  FUNCTION "_webhook_row_json"(
	"row" anyelement, /* pgrx :: AnyElement */
	"attnums" smallint[] /* Vec < i16 > */
) RETURNS TEXT /* String */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_row_json_wrapper';

-- src/api/webhooks.rs:358
-- api_gateway::api::webhooks::_webhook_write_json
CREATE  FUNCTION "_webhook_write_json"(
	"new" anyelement, /* pgrx :: AnyElement */
	"old" anyelement, /* pgrx :: AnyElement */
	"attnums" smallint[], /* Vec < i16 > */
	"watched" smallint[] /* Vec < i16 > */
) RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_write_json_wrapper';

-- src/api/webhooks.rs:49
-- api_gateway::api::webhooks::_webhook_fields
CREATE  FUNCTION "_webhook_fields"(
	"model" TEXT, /* & str */
	"fields" TEXT[] /* :: std :: option :: Option < Vec < Option < String > > > */
) RETURNS TEXT[] /* Vec < String > */
STABLE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_fields_wrapper';

-- Webhooks: configuration (api_gateway.webhook), capture by statement-level triggers on the
-- watched Odoo tables into a WAL-logged outbox (api_gateway.webhook_job) in the writer's own
-- transaction, and the bookkeeping functions the delivery worker of `api-gateway` calls.
-- docs/webhooks.md explains the whole flow, the payloads, the locks and the failure modes.

-- One row of delivery settings (the worker reads them on every cycle).
CREATE TABLE api_gateway.webhook_settings (
    singleton             boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Deliver to loopback and private addresses (RFC 1918, unique-local, CGNAT). Link-local and
    -- cloud metadata addresses are refused whatever this says.
    allow_private_targets boolean NOT NULL DEFAULT false,
    -- Seconds to wait before retry 1, 2, ...; NULL: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    -- Attempts in all: one more than the schedule has steps. Each wait gets +-10 % jitter.
    retry_schedule_s      integer[] CHECK (retry_schedule_s IS NULL OR (
                              cardinality(retry_schedule_s) BETWEEN 1 AND 30
                              AND array_position(retry_schedule_s, NULL) IS NULL
                              AND 0 <= ALL (retry_schedule_s) AND 604800 >= ALL (retry_schedule_s))),
    -- A claimed job is leased for the webhook's timeout plus this margin: if the worker dies,
    -- another worker (or the same one restarted) takes the job again once the lease is over.
    lease_margin          interval NOT NULL DEFAULT '30 seconds'
                          CHECK (lease_margin BETWEEN '0 seconds' AND '1 hour'),
    -- Default age of delivered and dead jobs removed by purge_webhook_jobs().
    retention             interval NOT NULL DEFAULT '14 days' CHECK (retention >= '0 seconds'),
    -- How long saving a webhook may wait for the lock that installs its trigger on the Odoo
    -- table before failing (so it never queues behind a long transaction, blocking writers).
    ddl_lock_timeout      interval NOT NULL DEFAULT '2 seconds'
                          CHECK (ddl_lock_timeout BETWEEN '1 millisecond' AND '10 minutes'),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE api_gateway.webhook_settings IS
    'Webhook delivery settings (one row): private targets allowed, retry schedule, lease margin, retention, DDL lock timeout.';

CREATE FUNCTION api_gateway._webhook_settings_singleton() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- pg_restore replays the dumped row after CREATE EXTENSION inserted the default one.
    DELETE FROM api_gateway.webhook_settings;
    RETURN NEW;
END;
$$;
CREATE TRIGGER webhook_settings_singleton BEFORE INSERT ON api_gateway.webhook_settings
    FOR EACH ROW EXECUTE FUNCTION api_gateway._webhook_settings_singleton();
CREATE TRIGGER webhook_settings_updated_at BEFORE UPDATE ON api_gateway.webhook_settings
    FOR EACH ROW EXECUTE FUNCTION api_gateway._touch_updated_at();
INSERT INTO api_gateway.webhook_settings DEFAULT VALUES;

-- The webhooks. A DBA inserts, updates or deletes rows; the triggers below validate them,
-- compile the domain and install or remove the capture triggers on the model's table.
CREATE SEQUENCE api_gateway.webhook_id_seq AS integer;
CREATE TABLE api_gateway.webhook (
    id              integer PRIMARY KEY DEFAULT nextval('api_gateway.webhook_id_seq'),
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    model           text NOT NULL,
    on_create       boolean NOT NULL DEFAULT true,
    on_write        boolean NOT NULL DEFAULT true,
    on_unlink       boolean NOT NULL DEFAULT true,
    url             text NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}',
    -- whsec_ + base64 of 32 random bytes when not given; read it with webhook_secret(id).
    secret          text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    fields          text[],
    domain          text,
    timeout         interval NOT NULL DEFAULT '10 seconds'
                    CHECK (timeout BETWEEN '100 milliseconds' AND '5 minutes'),
    -- Derived when the row is saved (never set them by hand; they are recomputed):
    table_name      text NOT NULL,
    payload_fields  text[] NOT NULL,
    watched_fields  text[] NOT NULL,
    -- The same as column numbers of the table (what capture reads; recomputed after ALTER TABLE).
    payload_attnums smallint[] NOT NULL,
    watched_attnums smallint[] NOT NULL,
    condition       text,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (on_create OR on_write OR on_unlink)
);
ALTER SEQUENCE api_gateway.webhook_id_seq OWNED BY api_gateway.webhook.id;
COMMENT ON TABLE api_gateway.webhook IS
    'Outbound webhooks: changes to model (create/write/unlink, optional domain filter) are captured by triggers and POSTed to url, signed per Standard Webhooks.';
CREATE INDEX webhook_table_name_idx ON api_gateway.webhook (table_name);

-- The outbox: one row per event and webhook, written by the capture trigger in the writer's
-- transaction. WAL-logged, so a crash loses nothing that committed. Kept small on purpose
-- (it is written on Odoo's hot path): `data` holds only what the event captured, as JSON text
-- without NULLs, and the payload is rendered from it when the job is delivered
-- (_webhook_payload). No CHECK constraint either: only this extension's functions write it.
CREATE SEQUENCE api_gateway.webhook_job_id_seq AS bigint;
CREATE TABLE api_gateway.webhook_job (
    id              bigint PRIMARY KEY DEFAULT nextval('api_gateway.webhook_job_id_seq'),
    -- The Standard Webhooks message id (header webhook-id), the same on every retry.
    event_id        uuid NOT NULL,
    webhook_id      integer NOT NULL,
    -- create, write or unlink
    action          text NOT NULL,
    record_id       integer,
    -- JSON text. create: the record's non-NULL payload values; write: {"r": record, "c":
    -- changed fields, "p": their previous values}; unlink: NULL.
    data            text,
    -- pending: not tried yet; failed: tried, will be retried; delivered; dead: gave up.
    state           text NOT NULL DEFAULT 'pending',
    -- Delivery attempts started (counted when a worker claims the job).
    attempts        integer NOT NULL DEFAULT 0,
    -- When the job may be claimed: the retry time, or the end of a worker's lease.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_by       text,
    last_status     integer,
    last_error      text,
    -- When the change was captured (the payload's timestamp).
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
ALTER SEQUENCE api_gateway.webhook_job_id_seq OWNED BY api_gateway.webhook_job.id;
COMMENT ON TABLE api_gateway.webhook_job IS
    'Webhook outbox: one event per row (pending, failed = will retry, delivered, dead), claimed by workers with FOR UPDATE SKIP LOCKED.';
-- What workers claim: due jobs of one webhook, oldest first.
CREATE INDEX webhook_job_due_idx ON api_gateway.webhook_job (webhook_id, next_attempt_at)
    WHERE state IN ('pending', 'failed');
-- What purge_webhook_jobs() removes.
CREATE INDEX webhook_job_done_idx ON api_gateway.webhook_job (updated_at)
    WHERE state IN ('delivered', 'dead');

-- The body POSTed for a job: {"event_id", "timestamp", "action", "model", "record"} plus
-- "changed" and "previous" for writes. `record` has every payload field of the webhook (NULL
-- ones as null) for create and write, only {"id"} for unlink. The same job always renders the
-- same text (jsonb's canonical output), so retries send identical bodies.
CREATE FUNCTION api_gateway._webhook_payload(
    event_id uuid, created_at timestamptz, action text, model text, record_id integer,
    data text, payload_fields text[])
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
           'event_id', event_id,
           'timestamp', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'action', action,
           'model', model,
           'record', CASE WHEN action = 'unlink' THEN jsonb_build_object('id', record_id)
                          ELSE coalesce((SELECT jsonb_object_agg(f, NULL::jsonb) FROM unnest(payload_fields) AS f), '{}'::jsonb)
                               || coalesce(CASE WHEN action = 'write' THEN data::jsonb -> 'r' ELSE data::jsonb END, '{}'::jsonb)
                               || jsonb_build_object('id', record_id) END)
       || CASE WHEN action = 'write'
               THEN jsonb_build_object('changed', coalesce(data::jsonb -> 'c', '[]'::jsonb),
                                       'previous', coalesce(data::jsonb -> 'p', '{}'::jsonb))
               ELSE '{}'::jsonb END;

-- Operators' view of the outbox: `status` adds `in_flight` (leased by a worker right now).
CREATE VIEW api_gateway.webhook_queue AS
SELECT j.id,
       j.event_id,
       j.webhook_id,
       w.name AS webhook,
       w.model,
       j.action,
       j.record_id,
       CASE WHEN j.state IN ('pending', 'failed') AND j.leased_by IS NOT NULL AND j.next_attempt_at > now()
            THEN 'in_flight' ELSE j.state END AS status,
       j.state,
       j.attempts,
       j.next_attempt_at,
       j.leased_by,
       j.last_status,
       j.last_error,
       j.created_at,
       j.updated_at,
       j.delivered_at,
       api_gateway._webhook_payload(j.event_id, j.created_at, j.action, w.model, j.record_id, j.data, w.payload_fields) AS payload
  FROM api_gateway.webhook_job j
  LEFT JOIN api_gateway.webhook w ON w.id = j.webhook_id;

SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_settings', '');
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook', '');
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_id_seq', '');
-- Undelivered events survive a dump and restore; the history does not.
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_job', $$WHERE state IN ('pending', 'failed')$$);
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_job_id_seq', '');

-- The capture trigger function, shared by every watched table: AFTER ... FOR EACH STATEMENT
-- with transition tables (agw_new, agw_old), so a statement touching 10,000 rows is one call
-- and one set-based INSERT per webhook. Rows are serialised by _webhook_row_json and
-- _webhook_write_json (Rust: column numbers in, JSON text out, no jsonb tree), which also
-- compares old and new rows for writes; a column dropped later is skipped, never an error.
-- The domain condition was compiled and tried when the webhook was saved.
--
-- Waking the workers: pg_notify is delivered at commit, and not at all on rollback. But
-- PostgreSQL serialises the commits of notifying transactions (a global lock held through
-- the WAL flush), which would stop group commit for every writer of a watched table. So a
-- worker that is awake (claiming, or with deliveries in flight) holds the advisory lock
-- (1634170728, 1) on its LISTEN connection, and capture notifies only when it can take that
-- lock in share mode, i.e. when no worker is awake. The lock goes with the connection if the
-- worker dies.
--
-- SECURITY DEFINER: Odoo's role has no right on the api_gateway schema; `public` (after
-- pg_catalog) is on the path for the Odoo tables a compiled domain names, as for the data
-- functions. Webhooks without a domain are served by one static statement per event (planned
-- once per backend, lookup and insert together); webhooks with one by an EXECUTE each, with
-- the domain's condition spliced in (it was generated by _webhook_condition, its values are
-- quoted literals; `t` is the row it is about: the new row, or the old one for unlink). The
-- trigger has the argument 'filtered' only when such webhooks exist, so the common case runs
-- no loop at all.
CREATE FUNCTION api_gateway._webhook_capture() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    _w record;
    _ts timestamptz := clock_timestamp();
    _n bigint;
    _total bigint := 0;
BEGIN
    -- Webhooks without a domain: one statement for all of them (lookup and insert together).
    IF TG_OP = 'INSERT' THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), w.id, 'create', t.id, api_gateway._webhook_row_json(t, w.payload_attnums), _ts
          FROM (SELECT h.id, h.payload_attnums FROM api_gateway.webhook h
                 WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_create AND h.condition IS NULL) w
         CROSS JOIN agw_new t;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), c.wid, 'write', c.id, c.d, _ts
          FROM (SELECT w.id AS wid, t.id, api_gateway._webhook_write_json(t, o, w.payload_attnums, w.watched_attnums) AS d
                  FROM (SELECT h.id, h.payload_attnums, h.watched_attnums FROM api_gateway.webhook h
                         WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_write AND h.condition IS NULL) w
                 CROSS JOIN agw_new t
                  JOIN agw_old o ON o.id = t.id) c
         WHERE c.d IS NOT NULL;
    ELSE
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), w.id, 'unlink', t.id, NULL, _ts
          FROM (SELECT h.id FROM api_gateway.webhook h
                 WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_unlink AND h.condition IS NULL) w
         CROSS JOIN agw_old t;
    END IF;
    GET DIAGNOSTICS _total = ROW_COUNT;
    -- Webhooks with a domain (the trigger's argument says there are some): one EXECUTE each.
    IF TG_NARGS > 0 THEN
        FOR _w IN
            SELECT h.id, h.payload_attnums, h.watched_attnums, h.condition
              FROM api_gateway.webhook h
             WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.condition IS NOT NULL
               AND CASE TG_OP WHEN 'INSERT' THEN h.on_create WHEN 'UPDATE' THEN h.on_write ELSE h.on_unlink END
        LOOP
            IF TG_OP = 'INSERT' THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''create'', t.id, api_gateway._webhook_row_json(t, $2), $3
                       FROM agw_new t WHERE %s', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts;
            ELSIF TG_OP = 'UPDATE' THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''write'', c.id, c.d, $3
                       FROM (SELECT t.id, api_gateway._webhook_write_json(t, o, $2, $4) AS d
                               FROM agw_new t JOIN agw_old o ON o.id = t.id WHERE %s) c
                      WHERE c.d IS NOT NULL', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts, _w.watched_attnums;
            ELSE
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''unlink'', t.id, NULL, $2
                       FROM agw_old t WHERE %s', _w.condition)
                  USING _w.id, _ts;
            END IF;
            GET DIAGNOSTICS _n = ROW_COUNT;
            _total := _total + _n;
        END LOOP;
    END IF;
    IF _total > 0 AND pg_try_advisory_lock_shared(1634170728, 1) THEN
        -- No worker is awake: wake one at commit (a transaction's identical notifications
        -- are folded into one).
        PERFORM pg_advisory_unlock_shared(1634170728, 1);
        PERFORM pg_notify('api_gateway_webhook', '');
    END IF;
    RETURN NULL;
END;
$$;

-- Installs the capture triggers the active webhooks of `tbl` need and removes the others.
-- CREATE TRIGGER takes SHARE ROW EXCLUSIVE on the table (it waits for running writers and
-- blocks new ones until the transaction that saved the webhook ends); DROP TRIGGER takes
-- ACCESS EXCLUSIVE. Both wait at most settings.ddl_lock_timeout. A trigger that cannot be
-- dropped in time is left in place (it captures nothing for inactive webhooks) with a NOTICE;
-- one that cannot be created fails the statement that saved the webhook with 55P03.
CREATE FUNCTION api_gateway._webhook_sync(tbl text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    rel regclass;
    ev record;
    want boolean;
    filtered boolean;
    have text;
    args text;
    wait interval;
BEGIN
    IF tbl IS NULL THEN
        RETURN;
    END IF;
    rel := to_regclass(format('public.%I', tbl));
    IF rel IS NULL THEN
        RETURN;
    END IF;
    SELECT s.ddl_lock_timeout INTO wait FROM api_gateway.webhook_settings s;
    PERFORM set_config('lock_timeout', (extract(epoch FROM coalesce(wait, interval '2 seconds')) * 1000)::bigint::text, true);
    FOR ev IN
        SELECT * FROM (VALUES ('INSERT', 'api_gateway_webhook_insert', 'NEW TABLE AS agw_new'),
                              ('UPDATE', 'api_gateway_webhook_update', 'OLD TABLE AS agw_old NEW TABLE AS agw_new'),
                              ('DELETE', 'api_gateway_webhook_delete', 'OLD TABLE AS agw_old')) AS v(op, name, ref)
    LOOP
        SELECT count(*) > 0, coalesce(bool_or(h.condition IS NOT NULL), false) INTO want, filtered
          FROM api_gateway.webhook h
         WHERE h.table_name = tbl AND h.active
           AND CASE ev.op WHEN 'INSERT' THEN h.on_create WHEN 'UPDATE' THEN h.on_write ELSE h.on_unlink END;
        args := CASE WHEN filtered THEN '''filtered''' ELSE '' END;
        -- What is installed: NULL (nothing), or its argument as in `args`.
        have := NULL;
        SELECT CASE WHEN t.tgnargs > 0 THEN '''filtered''' ELSE '' END INTO have
          FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = ev.name;
        IF want AND have IS DISTINCT FROM args THEN
            BEGIN
                EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._webhook_capture(%s)',
                               ev.name, ev.op, rel, ev.ref, args);
            EXCEPTION WHEN lock_not_available THEN
                RAISE EXCEPTION 'could not lock table % within % to install the webhook capture trigger', rel, wait
                    USING ERRCODE = '55P03',
                          HINT = 'a long transaction is using the table; retry, or raise api_gateway.webhook_settings.ddl_lock_timeout';
            END;
        ELSIF have IS NOT NULL AND NOT want THEN
            BEGIN
                EXECUTE format('DROP TRIGGER %I ON %s', ev.name, rel);
            EXCEPTION WHEN lock_not_available THEN
                RAISE NOTICE 'webhook capture trigger % on % left in place (table busy); it captures nothing and is removed by the next change of a webhook on this table',
                    ev.name, rel;
            END;
        END IF;
    END LOOP;
END;
$$;

-- BEFORE INSERT OR UPDATE on api_gateway.webhook: validate the row and derive the compiled
-- state (table, payload fields, watched fields, domain condition), so that capture cannot fail.
CREATE FUNCTION api_gateway._webhook_prepare() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
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
            USING ERRCODE = '22023', HINT = 'leave secret NULL to have one generated';
    END IF;
    IF length(NEW.url) > 2048 OR NEW.url !~* '^https?://[^\s/?#@]+([/?#]\S*)?$' THEN
        RAISE EXCEPTION 'invalid webhook url: expected http(s)://host[:port][/path], without credentials or spaces'
            USING ERRCODE = '22023', HINT = 'put credentials in headers, e.g. {"Authorization": "Bearer ..."}';
    END IF;
    IF jsonb_typeof(NEW.headers) <> 'object' THEN
        RAISE EXCEPTION 'invalid webhook headers: expected a JSON object of header names to string values'
            USING ERRCODE = '22023';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(NEW.headers) LOOP
        IF k !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]{1,100}$' THEN
            RAISE EXCEPTION 'invalid webhook header name "%"', left(k, 100) USING ERRCODE = '22023';
        END IF;
        IF lower(k) IN ('webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type',
                        'content-length', 'host', 'transfer-encoding', 'connection') THEN
            RAISE EXCEPTION 'webhook header "%" is set by the gateway and cannot be configured', k USING ERRCODE = '22023';
        END IF;
        IF jsonb_typeof(v) <> 'string' OR (v #>> '{}') ~ '[\r\n\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' OR length(v #>> '{}') > 8192 THEN
            RAISE EXCEPTION 'invalid value for webhook header "%": expected a string without control characters', k
                USING ERRCODE = '22023';
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
    IF to_regclass('public.ir_model') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM public.ir_model) THEN
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

-- AFTER INSERT, UPDATE or DELETE on api_gateway.webhook: adjust the capture triggers, drop
-- the jobs of a deleted webhook, wake the workers.
CREATE FUNCTION api_gateway._webhook_apply() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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

CREATE TRIGGER webhook_prepare BEFORE INSERT OR UPDATE ON api_gateway.webhook
    FOR EACH ROW EXECUTE FUNCTION api_gateway._webhook_prepare();
CREATE TRIGGER webhook_apply AFTER INSERT OR UPDATE OR DELETE ON api_gateway.webhook
    FOR EACH ROW EXECUTE FUNCTION api_gateway._webhook_apply();

-- The column numbers of public.<tbl> for the column names `names` (missing ones left out).
CREATE FUNCTION api_gateway._webhook_attnums(tbl text, names text[]) RETURNS smallint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}')
      FROM pg_attribute a
     WHERE a.attrelid = to_regclass(format('public.%I', tbl)) AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname::text = ANY (names);
$$;

-- After ALTER TABLE on a watched table (a module install adds columns, a migration renames or
-- drops one): recompute its webhooks' column numbers and re-try their domain condition. A
-- webhook whose condition no longer runs is deactivated with the reason and a WARNING rather
-- than making every later write to the table fail.
CREATE FUNCTION api_gateway._webhook_after_alter_table() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    w record;
BEGIN
    IF to_regclass('api_gateway.webhook') IS NULL THEN
        RETURN;
    END IF;
    -- Never in the way of Odoo's own DDL (module installs and upgrades): a problem here is a
    -- WARNING, not an error.
    BEGIN
        FOR w IN
            SELECT h.id, h.name, h.table_name, h.payload_fields, h.condition, h.active
              FROM api_gateway.webhook h
             WHERE to_regclass(format('public.%I', h.table_name)) IN (
                   SELECT c.objid FROM pg_event_trigger_ddl_commands() c WHERE c.classid = 'pg_class'::regclass)
        LOOP
            -- Saving the row again recomputes the column numbers from the table as it is now.
            UPDATE api_gateway.webhook h SET updated_at = now() WHERE h.id = w.id;
            IF w.active AND w.condition IS NOT NULL THEN
                BEGIN
                    EXECUTE format('SELECT 1 FROM public.%I t WHERE %s LIMIT 0', w.table_name, w.condition);
                EXCEPTION WHEN OTHERS THEN
                    RAISE WARNING 'webhook "%" deactivated: its domain no longer applies to table % (%)', w.name, w.table_name, SQLERRM;
                    UPDATE api_gateway.webhook h
                       SET active = false, disabled_reason = left('domain no longer applies after ALTER TABLE: ' || SQLERRM, 500)
                     WHERE h.id = w.id;
                END;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'api_gateway could not re-check its webhooks after ALTER TABLE: %', SQLERRM;
    END;
END;
$$;

CREATE EVENT TRIGGER api_gateway_webhook_alter_table ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION api_gateway._webhook_after_alter_table();

-- DROP EXTENSION api_gateway: the capture triggers on Odoo's tables depend on
-- _webhook_capture(), so without this the DROP would fail (or need CASCADE). Before any DROP
-- EXTENSION whose text names api_gateway, they are removed; after a DROP EXTENSION that left
-- this extension in place (another extension was dropped), they are installed again.
CREATE FUNCTION api_gateway._webhook_before_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    IF current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    FOR t IN SELECT tg.tgname, tg.tgrelid::regclass AS rel FROM pg_trigger tg
              WHERE tg.tgfoid = 'api_gateway._webhook_capture()'::regprocedure LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    END LOOP;
END;
$$;

CREATE FUNCTION api_gateway._webhook_after_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('api_gateway.webhook') IS NULL OR current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    BEGIN
        PERFORM api_gateway._webhook_sync(t.table_name)
           FROM (SELECT DISTINCT table_name FROM api_gateway.webhook) t;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'api_gateway could not reinstall its webhook triggers after DROP EXTENSION (%); save a webhook of each model again', SQLERRM;
    END;
END;
$$;

CREATE EVENT TRIGGER api_gateway_webhook_drop_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._webhook_before_drop_extension();
CREATE EVENT TRIGGER api_gateway_webhook_drop_end ON ddl_command_end
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._webhook_after_drop_extension();

-- `webhook_secret(webhook_id)`: the signing secret receivers verify with.
CREATE FUNCTION api_gateway.webhook_secret(webhook_id integer) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT w.secret FROM api_gateway.webhook w WHERE w.id = webhook_id);

-- `replay_webhook_job(job_id)`: deliver a dead, delivered or failed job again now, with the
-- same event id (receivers de-duplicate on webhook-id). False when there is no such job or it
-- is still pending.
CREATE FUNCTION api_gateway.replay_webhook_job(job_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE api_gateway.webhook_job j
       SET state = 'pending', attempts = 0, next_attempt_at = now(), leased_by = NULL,
           last_error = NULL, last_status = NULL, delivered_at = NULL, updated_at = now()
     WHERE j.id = job_id AND j.state IN ('dead', 'delivered', 'failed');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('api_gateway_webhook', '');
    RETURN true;
END;
$$;

-- `purge_webhook_jobs(older_than)`: delete delivered and dead jobs last changed longer ago
-- than `older_than` (NULL: webhook_settings.retention). Returns how many were deleted.
CREATE FUNCTION api_gateway.purge_webhook_jobs(older_than interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    keep interval := coalesce(older_than, (SELECT s.retention FROM api_gateway.webhook_settings s), interval '14 days');
BEGIN
    DELETE FROM api_gateway.webhook_job j
     WHERE j.state IN ('delivered', 'dead') AND j.updated_at < now() - keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- The delivery worker's calls (granted to the front's role, see docs/webhooks.md).

-- `webhook_worker_settings()`: what the worker needs from webhook_settings.
CREATE FUNCTION api_gateway.webhook_worker_settings()
RETURNS TABLE (allow_private_targets boolean, retry_schedule_s integer[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.allow_private_targets, s.retry_schedule_s FROM api_gateway.webhook_settings s;
$$;

-- `webhook_claim(worker, slots, slot_ids, slot_counts)`: lease due jobs of active webhooks,
-- at most `slots` per webhook (or the count given for it in slot_ids/slot_counts: the worker's
-- free capacity per endpoint). FOR UPDATE SKIP LOCKED: concurrent workers never get the same
-- job. Each claim counts an attempt and moves next_attempt_at to the end of the lease.
CREATE FUNCTION api_gateway.webhook_claim(
    worker text, slots integer, slot_ids integer[] DEFAULT '{}', slot_counts integer[] DEFAULT '{}')
RETURNS TABLE (job_id bigint, event_id uuid, webhook_id integer, attempt integer, url text,
               headers jsonb, secret text, timeout_ms integer, payload text, created_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH margin AS (SELECT s.lease_margin FROM api_gateway.webhook_settings s),
    w AS (
        SELECT h.id, h.model, h.payload_fields, h.url, h.headers, h.secret, h.timeout,
               greatest(coalesce(f.n, slots), 0) AS n
          FROM api_gateway.webhook h
          LEFT JOIN unnest(slot_ids, slot_counts) AS f(id, n) ON f.id = h.id
         WHERE h.active),
    c AS (
        SELECT j.id, w.model, w.payload_fields, w.url, w.headers, w.secret, w.timeout
          FROM w CROSS JOIN LATERAL (
               SELECT q.id FROM api_gateway.webhook_job q
                WHERE q.webhook_id = w.id AND q.state IN ('pending', 'failed') AND q.next_attempt_at <= now()
                ORDER BY q.next_attempt_at
                LIMIT w.n
                  FOR UPDATE SKIP LOCKED) j
         WHERE w.n > 0)
    UPDATE api_gateway.webhook_job j
       SET attempts = j.attempts + 1,
           next_attempt_at = now() + c.timeout + coalesce((SELECT lease_margin FROM margin), interval '30 seconds'),
           leased_by = worker,
           updated_at = now()
      FROM c
     WHERE j.id = c.id
    RETURNING j.id, j.event_id, j.webhook_id, j.attempts, c.url, c.headers, c.secret,
              (extract(epoch FROM c.timeout) * 1000)::integer,
              api_gateway._webhook_payload(j.event_id, j.created_at, j.action, c.model, j.record_id, j.data, c.payload_fields)::text,
              j.created_at;
$$;

-- `webhook_complete(job_ids, attempts, outcomes, statuses, errors, delays_s)`: record what
-- the worker's attempts gave, in one statement for a batch. Outcomes: `delivered`, `retry`
-- (next attempt in delays_s seconds), `dead` (no attempt left), `gone` (410: the job waits,
-- the webhook is deactivated). A result whose attempt number no longer matches the job (its
-- lease ran out and another worker took it) is ignored. Returns the number of jobs updated.
CREATE FUNCTION api_gateway.webhook_complete(
    job_ids bigint[], attempts integer[], outcomes text[], statuses integer[], errors text[],
    delays_s double precision[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    WITH r AS (
        SELECT * FROM unnest(job_ids, attempts, outcomes, statuses, errors, delays_s)
                      AS r(id, attempt, outcome, status, error, delay))
    UPDATE api_gateway.webhook_job j
       SET state = CASE r.outcome WHEN 'delivered' THEN 'delivered' WHEN 'dead' THEN 'dead' ELSE 'failed' END,
           next_attempt_at = CASE WHEN r.outcome IN ('retry', 'gone')
                                  THEN now() + make_interval(secs => greatest(coalesce(r.delay, 0), 0))
                                  ELSE j.next_attempt_at END,
           leased_by = NULL,
           last_status = r.status,
           last_error = left(r.error, 2000),
           delivered_at = CASE WHEN r.outcome = 'delivered' THEN now() END,
           updated_at = now()
      FROM r
     WHERE j.id = r.id AND j.attempts = r.attempt AND j.state IN ('pending', 'failed');
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE api_gateway.webhook h
       SET active = false,
           disabled_reason = format('the endpoint answered 410 Gone at %s', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'))
     WHERE h.active
       AND h.id IN (SELECT q.webhook_id FROM api_gateway.webhook_job q
                     WHERE q.id = ANY (SELECT x.id FROM unnest(job_ids, outcomes) AS x(id, outcome) WHERE x.outcome = 'gone'));
    RETURN n;
END;
$$;

-- `webhook_next_due()`: when the earliest waiting job of an active webhook becomes due (NULL
-- when none waits), so that an idle worker sleeps exactly until then.
CREATE FUNCTION api_gateway.webhook_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(d.t) FROM api_gateway.webhook h
     CROSS JOIN LATERAL (SELECT q.next_attempt_at AS t FROM api_gateway.webhook_job q
                          WHERE q.webhook_id = h.id AND q.state IN ('pending', 'failed')
                          ORDER BY q.next_attempt_at LIMIT 1) d
     WHERE h.active;
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA api_gateway FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api_gateway FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.version() TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.jwt_sign(jsonb, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.jwt_verify(text, text, text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.ip_allowed(inet, cidr[]) TO PUBLIC;
-- ==== end of webhooks ====
