-- api_gateway 0.3.0 -> 0.4.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.4.0'" to load this file. \quit

-- == lp (issue 19, least privilege): the front touches only functions; grant_front/grant_worker;
-- == the admin scope follows base.group_system; expired API keys; audited deletion in the console ==

-- src/api/oauth.rs
CREATE  FUNCTION "oauth_client_check"(
	"client_id" TEXT, /* Option < & str > */
	"client_secret" TEXT, /* Option < & str > */
	"client_ip" inet DEFAULT NULL /* Option < pgrx :: Inet > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'oauth_client_check_wrapper';

CREATE  FUNCTION "revoke_token_as_client"(
	"token" TEXT, /* Option < & str > */
	"client_id" TEXT /* Option < & str > */
) RETURNS bool /* core::option::Option<bool> */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_token_as_client_wrapper';

-- src/sql/gate.sql
-- The `admin` scope is for Odoo settings administrators only (base.group_system), as for API
-- keys: checked here on every insert or change of a client (create_client, the console, plain
-- SQL), and again by authenticate on every call (a user removed from the group loses it at
-- once). Skipped while the database has no such group (not Odoo, or a restore that has not yet
-- loaded ir_model_data): authenticate still refuses the scope there.
CREATE FUNCTION api_gateway._client_admin_scope_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    system_gid integer;
BEGIN
    -- An update that leaves scopes and user alone grants nothing new (deactivating, renaming).
    IF TG_OP = 'UPDATE' AND NEW.scopes = OLD.scopes AND NEW.user_id = OLD.user_id THEN
        RETURN NEW;
    END IF;
    IF to_regclass('public.ir_model_data') IS NULL OR to_regclass('public.res_groups_users_rel') IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT d.res_id INTO system_gid FROM public.ir_model_data d
     WHERE d.module = 'base' AND d.name = 'group_system' AND d.model = 'res.groups';
    IF system_gid IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM public.res_groups_users_rel r WHERE r.uid = NEW.user_id AND r.gid = system_gid) THEN
        RAISE EXCEPTION 'the "admin" scope is only for Odoo settings administrators (base.group_system): user % is not one', NEW.user_id
            USING ERRCODE = '22023', COLUMN = 'scopes';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER client_admin_scope_check BEFORE INSERT OR UPDATE OF scopes, user_id ON api_gateway.client
    FOR EACH ROW WHEN ('admin' = ANY (NEW.scopes)) EXECUTE FUNCTION api_gateway._client_admin_scope_check();

-- src/sql/observability.sql

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

-- src/sql/stats.sql

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

-- src/sql/admin.sql

------------------------------------------------------------------------------------------------
-- Deletion (what Odoo's menus allow: unlink a client, a profile, a webhook), audited
------------------------------------------------------------------------------------------------

-- `admin_delete_client(actor_uid, actor_client, client_id)`: the client and its tokens (which
-- stop working on the next request). 02000 when there is none.
CREATE FUNCTION api_gateway.admin_delete_client(actor_uid integer, actor_client text, client_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone api_gateway.client;
    tokens bigint;
BEGIN
    SELECT count(*) INTO tokens FROM api_gateway.token t WHERE t.client_id = admin_delete_client.client_id;
    DELETE FROM api_gateway.client c WHERE c.client_id = admin_delete_client.client_id RETURNING * INTO gone;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no OAuth2 client %', left(client_id, 100) USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'client.delete', 'client:' || gone.client_id,
                               to_jsonb(gone) - 'secret_hash' - 'created_at' - 'updated_at'
                               || jsonb_build_object('tokens_deleted', tokens));
END;
$$;

-- `admin_delete_profile(actor_uid, actor_client, user_id)`: the user falls back to the global
-- rate limit and no IP list. 02000 when there is none.
CREATE FUNCTION api_gateway.admin_delete_profile(actor_uid integer, actor_client text, user_id integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone api_gateway.profile;
BEGIN
    DELETE FROM api_gateway.profile p WHERE p.user_id = admin_delete_profile.user_id RETURNING * INTO gone;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no profile for Odoo user %', user_id USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'profile.delete', 'profile:' || gone.user_id,
                               to_jsonb(gone) - 'created_at' - 'updated_at');
END;
$$;

-- `admin_delete_webhook(actor_uid, actor_client, webhook_id)`: the webhook, its queued jobs and,
-- when no other webhook watches the model, its capture triggers (the webhook table's own
-- trigger does that). 02000 when there is none.
CREATE FUNCTION api_gateway.admin_delete_webhook(actor_uid integer, actor_client text, webhook_id integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone_name text;
    gone_model text;
    gone_url text;
BEGIN
    DELETE FROM api_gateway.webhook w WHERE w.id = webhook_id RETURNING w.name, w.model, w.url
      INTO gone_name, gone_model, gone_url;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no webhook %', webhook_id USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook.delete', 'webhook:' || webhook_id,
                               jsonb_build_object('name', gone_name, 'model', gone_model, 'url', gone_url));
END;
$$;

-- src/sql/finalize.sql
-- Roles for the front and the webhook worker: what each calls, nothing more (USAGE on the schema
-- and EXECUTE on functions; no table). Idempotent; run again after ALTER EXTENSION UPDATE, which
-- may add functions. SECURITY INVOKER: only a role that may grant them (the extension's owner, a
-- superuser) can call these.

-- `_grant_execute(role, functions)`: USAGE on the schema and EXECUTE on each function to role.
CREATE FUNCTION api_gateway._grant_execute(role name, functions text[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text;
    n integer := 0;
BEGIN
    IF role IS NULL OR to_regrole(quote_ident(role)) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist: CREATE ROLE it first', role USING ERRCODE = '42704';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA api_gateway TO %I', role);
    FOREACH f IN ARRAY functions LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f::regprocedure, role);
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

-- `grant_front(role)`: everything `api-gateway serve` calls: the gate, OAuth2, the data
-- functions, the traffic log writer and maintenance, the dashboard's statistics, /metrics and
-- the admin console (every admin_* function). Returns the number of functions granted. Serve
-- also delivers webhooks unless --webhooks false: then grant_worker(role) too.
CREATE FUNCTION api_gateway.grant_front(role name) RETURNS integer
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
        'api_gateway.log_requests(jsonb)',
        'api_gateway.log_level()',
        'api_gateway.ensure_log_partitions(integer)',
        'api_gateway.run_maintenance(text)',
        'api_gateway.metrics_gauges()']
        -- The dashboard's and the console's families, whole: stats_* and admin_*.
        || ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                  WHERE p.pronamespace = 'api_gateway'::regnamespace
                    AND (p.proname LIKE 'stats\_%' OR p.proname LIKE 'admin\_%')
                  ORDER BY 1));
END;
$$;

-- `grant_worker(role)`: the webhook delivery worker's protocol (`api-gateway worker`, or the
-- worker inside serve). `webhook_claim` returns the webhooks' secrets: grant it to that role only.
CREATE FUNCTION api_gateway.grant_worker(role name) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN api_gateway._grant_execute(role, ARRAY[
        'api_gateway.version()',
        'api_gateway.webhook_worker_settings()',
        'api_gateway.webhook_claim(text, integer, integer[], integer[])',
        'api_gateway.webhook_complete(bigint[], integer[], text[], integer[], text[], double precision[])',
        'api_gateway.webhook_next_due()']);
END;
$$;

-- New functions are PUBLIC by default in an upgrade: as finalize.sql does, nothing is.
REVOKE ALL ON FUNCTION api_gateway.oauth_client_check(text, text, inet), api_gateway.revoke_token_as_client(text, text),
    api_gateway._client_admin_scope_check(), api_gateway.log_level(), api_gateway.metrics_gauges(),
    api_gateway.stats_faults(timestamptz, integer, text, integer), api_gateway.stats_log_record(bigint, timestamptz),
    api_gateway.stats_users(timestamptz), api_gateway.admin_delete_client(integer, text, text),
    api_gateway.admin_delete_profile(integer, text, integer), api_gateway.admin_delete_webhook(integer, text, integer),
    api_gateway._grant_execute(name, text[]), api_gateway.grant_front(name), api_gateway.grant_worker(name) FROM PUBLIC;

-- == nest (issue 18): ETags: versioned reads, writes and unlinks conditioned on the row version ==

-- src/api/data.rs
CREATE  FUNCTION "read_versioned"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"fields" TEXT[] DEFAULT NULL /* :: std :: option :: Option < Vec < Option < String > > > */
) RETURNS jsonb /* Option < RawJsonb > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'read_versioned_wrapper';

CREATE  FUNCTION "write_if_match"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"vals" jsonb, /* Option < pgrx :: JsonB > */
	"versions" TEXT[] /* :: std :: option :: Option < Vec < Option < String > > > */
) RETURNS TEXT /* & '_ str */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'write_if_match_wrapper';

CREATE  FUNCTION "unlink_if_match"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"versions" TEXT[] /* :: std :: option :: Option < Vec < Option < String > > > */
) RETURNS TEXT /* & '_ str */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'unlink_if_match_wrapper';

-- == nest (issue 18): cursor pagination: search_page (keyset, signed cursors) ==

-- src/api/data.rs
CREATE  FUNCTION "search_page"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]', /* Option < & str > */
	"fields" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"limit" INT DEFAULT NULL, /* Option < i32 > */
	"order" TEXT DEFAULT NULL, /* Option < & str > */
	"after" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* RawJsonb */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'search_page_wrapper';

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
        'api_gateway.log_requests(jsonb)',
        'api_gateway.log_level()',
        'api_gateway.ensure_log_partitions(integer)',
        'api_gateway.run_maintenance(text)',
        'api_gateway.metrics_gauges()']
        -- The dashboard's and the console's families, whole: stats_* and admin_*.
        || ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                  WHERE p.pronamespace = 'api_gateway'::regnamespace
                    AND (p.proname LIKE 'stats\_%' OR p.proname LIKE 'admin\_%')
                  ORDER BY 1));
END;
$$;

REVOKE ALL ON FUNCTION api_gateway.read_versioned(integer, text, integer, text[]),
    api_gateway.write_if_match(integer, text, integer, jsonb, text[]),
    api_gateway.unlink_if_match(integer, text, integer, text[]),
    api_gateway.search_page(integer, text, text, text[], integer, text, text) FROM PUBLIC;
