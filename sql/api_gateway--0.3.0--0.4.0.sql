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

-- == issue 17, rate limits: sliding window by default, a cost per request, counters in shared
-- memory (src/counter.rs), authenticate on the same counter path ==
ALTER TABLE api_gateway.settings
    ADD COLUMN rate_limit_algorithm text NOT NULL DEFAULT 'sliding' CHECK (rate_limit_algorithm IN ('sliding', 'fixed'));
ALTER TABLE api_gateway.profile
    ADD COLUMN rate_limit_algorithm text NOT NULL DEFAULT 'sliding' CHECK (rate_limit_algorithm IN ('sliding', 'fixed'));
-- Rows counted before 0.4.0 are fixed windows (window_start, hits) and keep counting as such.
ALTER TABLE api_gateway.throttle
    ADD COLUMN algorithm text NOT NULL DEFAULT 'fixed',
    ADD COLUMN head      bigint NOT NULL DEFAULT 0,
    ADD COLUMN counts    integer[] NOT NULL DEFAULT '{}';

CREATE FUNCTION api_gateway."rate_limit_hit"(
	"subject" TEXT,
	"max_requests" INT,
	"window_s" INT,
	"cost" INT,
	"algorithm" TEXT DEFAULT 'sliding'
) RETURNS TABLE (
	"allowed" bool,
	"remaining" INT,
	"reset_s" INT
)
VOLATILE SECURITY DEFINER
LANGUAGE c
AS 'MODULE_PATHNAME', 'rate_limit_hit_cost_wrapper';
-- Both forms pin the search path around the statements they run (src/counter.rs), not for the
-- whole call: a hit counted in shared memory runs none.
ALTER FUNCTION api_gateway.rate_limit_hit(text, integer, integer) RESET search_path;

CREATE FUNCTION api_gateway."_shared_counters"() RETURNS TABLE (
	"subject" TEXT,
	"hits" INT,
	"max_requests" INT,
	"window_s" INT,
	"clears_at" timestamp with time zone
)
STRICT VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', '_shared_counters_wrapper';

CREATE FUNCTION api_gateway."_forget_shared_counter"(
	"subject" TEXT
) RETURNS INT
STRICT VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', '_forget_shared_counter_wrapper';

CREATE OR REPLACE VIEW api_gateway.active_throttles AS
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


CREATE OR REPLACE FUNCTION api_gateway.admin_update_settings(actor_uid integer, actor_client text, changes jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur api_gateway.settings;
    dl integer;
    ml integer;
    issuer text;
BEGIN
    PERFORM api_gateway._admin_unknown_keys(changes, ARRAY['default_limit', 'max_limit', 'rate_limit',
        'rate_limit_window', 'rate_limit_algorithm', 'log_level', 'log_retention_days', 'token_lifetime_s', 'jwt_issuer']);
    SELECT * INTO cur FROM api_gateway.settings FOR UPDATE;
    dl := coalesce(api_gateway._admin_int(changes, 'default_limit', 1, 10000), cur.default_limit);
    ml := coalesce(api_gateway._admin_int(changes, 'max_limit', 1, 100000), cur.max_limit);
    IF dl > ml THEN
        RAISE EXCEPTION 'default_limit (%) cannot exceed max_limit (%)', dl, ml
            USING ERRCODE = '22023', COLUMN = 'default_limit';
    END IF;
    issuer := coalesce(btrim(changes ->> 'jwt_issuer'), cur.jwt_issuer);
    IF issuer = '' OR length(issuer) > 200 THEN
        RAISE EXCEPTION 'jwt_issuer must be 1 to 200 characters' USING ERRCODE = '22023', COLUMN = 'jwt_issuer';
    END IF;
    UPDATE api_gateway.settings SET
        default_limit = dl,
        max_limit = ml,
        rate_limit = coalesce(api_gateway._admin_int(changes, 'rate_limit', 0, 1000000000), cur.rate_limit),
        rate_limit_window = coalesce(api_gateway._admin_word(changes, 'rate_limit_window', '{minute,hour,day}'), cur.rate_limit_window),
        rate_limit_algorithm = coalesce(api_gateway._admin_word(changes, 'rate_limit_algorithm', '{sliding,fixed}'), cur.rate_limit_algorithm),
        log_level = coalesce(api_gateway._admin_word(changes, 'log_level', '{errors,metadata,payloads}'), cur.log_level),
        log_retention_days = coalesce(api_gateway._admin_int(changes, 'log_retention_days', 1, 3650), cur.log_retention_days),
        token_lifetime_s = coalesce(api_gateway._admin_int(changes, 'token_lifetime_s', 60, 2592000), cur.token_lifetime_s),
        jwt_issuer = issuer;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'settings.update', 'settings', changes);
    RETURN api_gateway.admin_settings();
END;
$$;

CREATE OR REPLACE FUNCTION api_gateway.admin_save_profile(actor_uid integer, actor_client text, profile jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    uid integer;
    existed boolean;
    saved api_gateway.profile;
BEGIN
    PERFORM api_gateway._admin_unknown_keys(profile, ARRAY['user_id', 'rate_limit', 'rate_limit_window',
        'rate_limit_algorithm', 'allowed_ips', 'active', 'note']);
    uid := api_gateway._admin_int(profile, 'user_id', 1, 2147483647);
    IF uid IS NULL THEN
        RAISE EXCEPTION 'user_id is required: the Odoo user this profile applies to' USING ERRCODE = '22023', COLUMN = 'user_id';
    END IF;
    PERFORM api_gateway._admin_need_odoo('admin_save_profile');
    existed := EXISTS (SELECT 1 FROM api_gateway.profile p WHERE p.user_id = uid);
    IF NOT existed AND NOT EXISTS (SELECT 1 FROM public.res_users u WHERE u.id = uid AND u.active) THEN
        RAISE EXCEPTION 'Odoo user % does not exist or is archived', uid USING ERRCODE = '22023', COLUMN = 'user_id';
    END IF;
    IF profile ? 'active' AND jsonb_typeof(profile -> 'active') <> 'boolean' THEN
        RAISE EXCEPTION 'active must be true or false' USING ERRCODE = '22023', COLUMN = 'active';
    END IF;
    INSERT INTO api_gateway.profile AS p (user_id, rate_limit, rate_limit_window, rate_limit_algorithm, allowed_ips, active, note)
    VALUES (uid,
            api_gateway._admin_int(profile, 'rate_limit', 0, 1000000000),
            coalesce(api_gateway._admin_word(profile, 'rate_limit_window', '{minute,hour,day}'), 'minute'),
            coalesce(api_gateway._admin_word(profile, 'rate_limit_algorithm', '{sliding,fixed}'), 'sliding'),
            api_gateway._admin_cidrs(profile, 'allowed_ips'),
            coalesce((profile ->> 'active')::boolean, true),
            nullif(btrim(profile ->> 'note'), ''))
    ON CONFLICT (user_id) DO UPDATE SET
        rate_limit = EXCLUDED.rate_limit,
        rate_limit_window = EXCLUDED.rate_limit_window,
        rate_limit_algorithm = EXCLUDED.rate_limit_algorithm,
        allowed_ips = EXCLUDED.allowed_ips,
        active = EXCLUDED.active,
        note = EXCLUDED.note
    RETURNING * INTO saved;
    PERFORM api_gateway._audit(actor_uid, actor_client, CASE WHEN existed THEN 'profile.update' ELSE 'profile.create' END,
                               'profile:' || uid, to_jsonb(saved) - 'created_at' - 'updated_at');
    RETURN to_jsonb(saved);
END;
$$;

CREATE OR REPLACE FUNCTION api_gateway.admin_reset_throttle(actor_uid integer, actor_client text, subject text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hits integer;
    shared_hits integer;
BEGIN
    shared_hits := api_gateway._forget_shared_counter(admin_reset_throttle.subject);
    DELETE FROM api_gateway.throttle t WHERE t.subject = admin_reset_throttle.subject RETURNING t.hits INTO hits;
    IF NOT FOUND AND shared_hits IS NULL THEN
        RETURN false;
    END IF;
    hits := coalesce(hits, 0) + coalesce(shared_hits, 0);
    PERFORM api_gateway._audit(actor_uid, actor_client, 'throttle.reset', 'throttle:' || subject,
                               jsonb_build_object('hits', hits));
    RETURN true;
END;
$$;

-- New functions are not PUBLIC (as finalize.sql leaves a fresh install).
REVOKE ALL ON FUNCTION api_gateway.rate_limit_hit(text, integer, integer, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._shared_counters() FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._forget_shared_counter(text) FROM PUBLIC;

-- == speed (issue 14): per-backend cache of Odoo's security tables, checked by one probe ==
-- (identical to src/sql/security_cache.sql)
-- The data functions keep per backend what they derive from Odoo's security and metadata
-- tables (group closure, companies, access rights, record rules, model and field metadata).
-- Statement-level triggers on those tables note each transaction that changes them here, in
-- that transaction: a backend's cache is used only while no noted transaction has committed
-- since the snapshot it was read under (checked with one index probe per call), so a change is
-- seen by the very next call and a rolled-back one never is (its row never becomes visible).
-- One row per transaction, keyed by its id (xid8, never reused): writers never wait for each
-- other here, unlike a single counter row, so the triggers cannot block or deadlock an Odoo
-- write. Derived state only: not dumped; api_gateway._purge_security_changes() forgets old rows.
CREATE TABLE api_gateway.odoo_security_change (
    xact    xid8 PRIMARY KEY,
    -- When run_maintenance first found the transaction finished; the row is deleted 10 minutes
    -- later (backends re-read their cache at least once a minute whatever the log says).
    done_at timestamptz
);
COMMENT ON TABLE api_gateway.odoo_security_change IS
    'Transactions that changed Odoo''s security or metadata tables (noted by triggers); the data functions'' per-backend caches are valid only while none committed after the snapshot they were read under.';

-- The trigger function: at most one INSERT per transaction (a transaction-local setting
-- remembers it; a rolled-back savepoint reverts both). SECURITY DEFINER: Odoo's role has no
-- right on the api_gateway schema.
CREATE FUNCTION api_gateway._note_odoo_security_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_setting('api_gateway_cache.noted', true) IS DISTINCT FROM pg_current_xact_id()::text THEN
        INSERT INTO api_gateway.odoo_security_change (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
        PERFORM set_config('api_gateway_cache.noted', pg_current_xact_id()::text, true);
    END IF;
    RETURN NULL;
END;
$$;

-- The Odoo tables the cached facts come from. res_users is not among them: what the data
-- functions use from it (active, company, partner, language) is read on every call.
CREATE FUNCTION api_gateway._security_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN ARRAY['res_groups', 'res_groups_users_rel', 'res_groups_implied_rel', 'res_company',
             'res_company_users_rel', 'ir_model', 'ir_model_fields', 'ir_model_fields_group_rel',
             'ir_model_access', 'ir_rule', 'rule_group_rel'];

-- Installs the trigger on each of those tables that exists and lacks it; true when every
-- existing one has it. Run by CREATE EXTENSION and by the first data call of each backend (so an
-- Odoo installed after the extension is covered). Never raises: a table it cannot lock within
-- 1 s is left for a later call (WARNING), and the caller serves that backend uncached meanwhile.
CREATE FUNCTION api_gateway._install_security_triggers() RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl text;
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
    RETURN complete;
END;
$$;

-- DROP EXTENSION api_gateway: the triggers on Odoo's tables depend on the trigger function,
-- so they are removed first (as the webhook capture triggers are); if the DROP named another
-- extension after all, they are installed again at its end.
CREATE FUNCTION api_gateway._security_before_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    IF current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    FOR t IN SELECT tg.tgname, tg.tgrelid::regclass AS rel FROM pg_trigger tg
              WHERE tg.tgfoid = 'api_gateway._note_odoo_security_change()'::regprocedure LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    END LOOP;
END;
$$;

CREATE FUNCTION api_gateway._security_after_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regprocedure('api_gateway._install_security_triggers()') IS NULL OR current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    PERFORM api_gateway._install_security_triggers();
END;
$$;

CREATE EVENT TRIGGER api_gateway_security_drop_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._security_before_drop_extension();
CREATE EVENT TRIGGER api_gateway_security_drop_end ON ddl_command_end
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._security_after_drop_extension();

-- Maintenance: a noted transaction is forgotten 10 minutes after it was first seen finished.
-- A backend's cache is never older than a minute, so no backend can still need the row.
CREATE FUNCTION api_gateway._purge_security_changes() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE api_gateway.odoo_security_change c SET done_at = now()
     WHERE c.done_at IS NULL AND c.xact < pg_snapshot_xmin(pg_current_snapshot());
    DELETE FROM api_gateway.odoo_security_change c WHERE c.done_at < now() - interval '10 minutes';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

SELECT api_gateway._install_security_triggers();
REVOKE ALL ON TABLE api_gateway.odoo_security_change FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._note_odoo_security_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._security_tables() FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._install_security_triggers() FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._security_before_drop_extension() FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._security_after_drop_extension() FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._purge_security_changes() FROM PUBLIC;
-- == end speed ==

-- == webhooks (issue 16): one event per record and transaction, per-record order, no wait after
-- a crash, capture without NOTIFY, secret rotation with overlap; (issue 19) hop-by-hop headers
-- and ports refused ==
ALTER TABLE api_gateway.webhook ADD COLUMN previous_secret text, ADD COLUMN previous_secret_expires_at timestamptz;
ALTER TABLE api_gateway.webhook_job ADD COLUMN leased_pid integer, ADD COLUMN leased_backend_start timestamptz;
CREATE INDEX webhook_job_record_idx ON api_gateway.webhook_job (webhook_id, record_id, id)
    WHERE state IN ('pending', 'failed');
-- Leased jobs (few: those in flight), checked for workers whose session ended.
CREATE INDEX webhook_job_leased_idx ON api_gateway.webhook_job (leased_pid)
    WHERE leased_pid IS NOT NULL AND state IN ('pending', 'failed');

CREATE FUNCTION api_gateway."_webhook_merge"(
	"prev_action" TEXT, /* & str */
	"prev_data" TEXT, /* & str */
	"new_write" TEXT, /* Option < & str > */
	"new_row" TEXT, /* Option < & str > */
	"rel" oid /* pg_sys :: Oid */
) RETURNS TEXT /* Option < String > */
STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_merge_wrapper';
CREATE FUNCTION api_gateway."_webhook_mark_queued"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_mark_queued_wrapper';
CREATE FUNCTION api_gateway."_webhook_queued"() RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_queued_wrapper';
CREATE FUNCTION api_gateway."_webhook_own"(
	"xmin" xid /* pg_sys :: TransactionId */
) RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_webhook_own_wrapper';

CREATE OR REPLACE FUNCTION api_gateway._webhook_capture() RETURNS trigger
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

CREATE OR REPLACE FUNCTION api_gateway._webhook_sync(tbl text) RETURNS void
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
           -- UPDATE and DELETE also merge into the events of creates (and writes) of the
           -- same transaction (see _webhook_capture).
           AND CASE ev.op WHEN 'INSERT' THEN h.on_create WHEN 'UPDATE' THEN h.on_create OR h.on_write ELSE true END;
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

CREATE OR REPLACE FUNCTION api_gateway.webhook_complete(
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
           leased_pid = NULL,
           leased_backend_start = NULL,
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

CREATE OR REPLACE FUNCTION api_gateway.webhook_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least(
        (SELECT min(d.t) FROM api_gateway.webhook h
          CROSS JOIN LATERAL (SELECT q.next_attempt_at AS t FROM api_gateway.webhook_job q
                               WHERE q.webhook_id = h.id AND q.state IN ('pending', 'failed')
                                 AND NOT EXISTS (SELECT 1 FROM api_gateway.webhook_job o
                                                  WHERE o.webhook_id = q.webhook_id AND o.record_id = q.record_id
                                                    AND o.state IN ('pending', 'failed') AND o.id < q.id)
                               ORDER BY q.next_attempt_at LIMIT 1) d
          WHERE h.active),
        (SELECT now() WHERE EXISTS (
             SELECT 1 FROM api_gateway.webhook_job j
              WHERE j.leased_pid IS NOT NULL AND j.state IN ('pending', 'failed') AND j.next_attempt_at > now()
                AND NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(j.leased_pid) a
                                 WHERE a.backend_start IS NOT DISTINCT FROM j.leased_backend_start))));
$$;

CREATE FUNCTION api_gateway.rotate_webhook_secret(webhook_id integer, overlap interval DEFAULT '24 hours')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_secret text;
BEGIN
    IF overlap IS NULL OR overlap < interval '0' OR overlap > interval '30 days' THEN
        RAISE EXCEPTION 'invalid overlap %: expected an interval from 0 to 30 days', overlap
            USING ERRCODE = '22023', COLUMN = 'overlap';
    END IF;
    -- NULL: the row's trigger generates the new secret and keeps the old one as previous;
    -- then the overlap (an end at or before now drops the previous secret).
    UPDATE api_gateway.webhook w SET secret = NULL
     WHERE w.id = rotate_webhook_secret.webhook_id
    RETURNING w.secret INTO new_secret;
    UPDATE api_gateway.webhook w SET previous_secret_expires_at = now() + overlap
     WHERE w.id = rotate_webhook_secret.webhook_id;
    RETURN new_secret;
END;
$$;

-- webhook_claim returns previous_secret too and admin_rotate_webhook_secret takes an overlap:
-- both are dropped and created again, with the EXECUTE grants the DBA gave on the old ones.
SELECT set_config('api_gateway_upgrade.webhook_grants', coalesce(string_agg(p.proname || ' ' || a.grantee::regrole::text, ','), ''), true)
  FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
 WHERE p.oid IN ('api_gateway.webhook_claim(text, integer, integer[], integer[])'::regprocedure,
                 'api_gateway.admin_rotate_webhook_secret(integer, text, integer)'::regprocedure)
   AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner;
DROP FUNCTION api_gateway.webhook_claim(text, integer, integer[], integer[]);
DROP FUNCTION api_gateway.admin_rotate_webhook_secret(integer, text, integer);
CREATE FUNCTION api_gateway.webhook_claim(
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
     WHERE j.id = o.id;
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
                  AND NOT EXISTS (SELECT 1 FROM api_gateway.webhook_job o
                                   WHERE o.webhook_id = q.webhook_id AND o.record_id = q.record_id
                                     AND o.state IN ('pending', 'failed') AND o.id < q.id)
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

CREATE FUNCTION api_gateway.admin_rotate_webhook_secret(actor_uid integer, actor_client text, webhook_id integer,
                                                        overlap interval DEFAULT '24 hours')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_secret text;
BEGIN
    new_secret := api_gateway.rotate_webhook_secret(webhook_id, overlap);
    IF new_secret IS NULL THEN
        RAISE EXCEPTION 'no webhook %', webhook_id USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook.rotate_secret', 'webhook:' || webhook_id,
                               jsonb_build_object('overlap_s', extract(epoch FROM overlap)));
    RETURN new_secret;
END;
$$;

REVOKE ALL ON FUNCTION api_gateway.webhook_claim(text, integer, integer[], integer[]),
    api_gateway.admin_rotate_webhook_secret(integer, text, integer, interval),
    api_gateway.rotate_webhook_secret(integer, interval),
    api_gateway._webhook_merge(text, text, text, text, oid), api_gateway._webhook_own(xid),
    api_gateway._webhook_queued(), api_gateway._webhook_mark_queued() FROM PUBLIC;
DO $$
DECLARE
    g text;
BEGIN
    FOREACH g IN ARRAY coalesce(string_to_array(nullif(current_setting('api_gateway_upgrade.webhook_grants', true), ''), ','), '{}') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s',
                       CASE split_part(g, ' ', 1) WHEN 'webhook_claim' THEN 'api_gateway.webhook_claim(text, integer, integer[], integer[])'
                            ELSE 'api_gateway.admin_rotate_webhook_secret(integer, text, integer, interval)' END,
                       split_part(g, ' ', 2));
    END LOOP;
END;
$$;
CREATE OR REPLACE FUNCTION api_gateway.admin_webhooks() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'id', w.id, 'name', w.name, 'model', w.model, 'url', w.url, 'headers', w.headers,
                   'events', to_jsonb(array_remove(ARRAY[CASE WHEN w.on_create THEN 'create' END,
                                                         CASE WHEN w.on_write THEN 'write' END,
                                                         CASE WHEN w.on_unlink THEN 'unlink' END], NULL)),
                   'fields', w.fields, 'domain', w.domain, 'timeout_ms', (extract(epoch FROM w.timeout) * 1000)::integer,
                   'active', w.active, 'disabled_reason', w.disabled_reason,
                   'created_at', w.created_at, 'updated_at', w.updated_at,
                   'previous_secret_valid_until', CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_expires_at END,
                   'jobs', (SELECT coalesce(jsonb_object_agg(j.state, j.n), '{}'::jsonb)
                              FROM (SELECT state, count(*) AS n FROM api_gateway.webhook_job
                                     WHERE webhook_id = w.id GROUP BY state) j))
               ORDER BY w.id), '[]'::jsonb)
          FROM api_gateway.webhook w);

-- Create-only webhooks now need the UPDATE trigger and every webhook the DELETE one (they
-- merge into the creates of their transaction): install what is missing.
DO $$
BEGIN
    PERFORM api_gateway._webhook_sync(t.table_name) FROM (SELECT DISTINCT table_name FROM api_gateway.webhook) t;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'api_gateway could not update its webhook triggers (%); save a webhook of each model again', SQLERRM;
END;
$$;

-- == fwd (issue 15): writes and business methods forwarded to Odoo's JSON-2 ==
-- SQL writes are opt-in per model.
ALTER TABLE api_gateway.settings ADD COLUMN sql_write_models text[] NOT NULL DEFAULT '{}';

-- Functions implemented in Rust (text as generated by pgrx).
-- api_gateway::api::api_key::_new_odoo_api_key
CREATE  FUNCTION "_new_odoo_api_key"() RETURNS TABLE (
	"key" TEXT,  /* String */
	"index" TEXT,  /* String */
	"hash" TEXT  /* String */
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_new_odoo_api_key_wrapper';

-- src/sql/forward.sql, as in a fresh install.

-- One Odoo API key per OAuth2 client, made in Odoo's own table res_users_apikeys exactly as
-- Odoo 19 makes keys (res.users.apikeys._generate: 20 random bytes in hex, pbkdf2_sha512 with
-- 6000 rounds, index = first 8 characters), scope 'rpc', named after the client, with an expiry.
-- The plaintext is kept here because the front must send it to Odoo on every forwarded call; it
-- is readable only by the extension owner and returned only by upstream_key(). A renewed key's
-- predecessor keeps working for 10 minutes (calls in flight) with its plaintext erased, then
-- maintenance removes it. Deleting a row here removes its Odoo key (trigger below).
CREATE TABLE api_gateway.upstream_key (
    apikey_id  integer PRIMARY KEY,
    client_id  text NOT NULL REFERENCES api_gateway.client (client_id) ON DELETE CASCADE,
    user_id    integer NOT NULL,
    key        text CHECK (key IS NULL OR key ~ '^[0-9a-f]{40}$'),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE api_gateway.upstream_key IS
    'Odoo API keys (res_users_apikeys.id) the gateway holds for its OAuth2 clients, to call Odoo''s JSON-2 as the client''s user. key is the plaintext of the current key (NULL once superseded); owner only.';
CREATE INDEX upstream_key_client_id_idx ON api_gateway.upstream_key (client_id);
-- Not in pg_dump (no pg_extension_config_dump): a dump of the database never carries the
-- plaintexts. After a restore the clients get new keys on first use, and maintenance removes
-- the gateway's keys that no row here knows any more.

-- A row removed (client deleted, deactivated, secret rotated, user changed, key expired):
-- its key is removed from Odoo in the same transaction.
CREATE FUNCTION api_gateway._upstream_key_removed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF to_regclass('public.res_users_apikeys') IS NOT NULL THEN
        DELETE FROM public.res_users_apikeys k WHERE k.id = OLD.apikey_id AND k.user_id = OLD.user_id;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER upstream_key_removed AFTER DELETE ON api_gateway.upstream_key
    FOR EACH ROW EXECUTE FUNCTION api_gateway._upstream_key_removed();

CREATE FUNCTION api_gateway._client_upstream_key_revoke() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM api_gateway.upstream_key u WHERE u.client_id = NEW.client_id;
    RETURN NEW;
END;
$$;
CREATE TRIGGER client_upstream_key_revoke AFTER UPDATE ON api_gateway.client
    FOR EACH ROW WHEN (NOT NEW.active OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
                       OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION api_gateway._client_upstream_key_revoke();

-- A new upstream key for an active client (its predecessors expire in 10 minutes). Internal.
CREATE FUNCTION api_gateway._renew_upstream_key(p_client_id text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    c record;
    fresh record;
    new_id integer;
    lifetime constant interval := interval '30 days';
BEGIN
    SELECT cl.client_id, cl.name, cl.user_id, cl.active INTO c FROM api_gateway.client cl WHERE cl.client_id = p_client_id;
    IF NOT FOUND OR NOT c.active THEN
        RAISE EXCEPTION 'OAuth2 client % is unknown or inactive', p_client_id USING ERRCODE = '28000';
    END IF;
    SELECT * INTO fresh FROM api_gateway._new_odoo_api_key();
    INSERT INTO public.res_users_apikeys (name, user_id, scope, expiration_date, key, index)
    VALUES (format('api_gateway: OAuth2 client %s (%s)', c.client_id, left(c.name, 100)), c.user_id, 'rpc',
            (now() + lifetime) AT TIME ZONE 'utc', fresh.hash, fresh.index)
    RETURNING id INTO new_id;
    UPDATE public.res_users_apikeys k SET expiration_date = least(k.expiration_date, (now() + interval '10 minutes') AT TIME ZONE 'utc')
     WHERE k.id IN (SELECT u.apikey_id FROM api_gateway.upstream_key u WHERE u.client_id = c.client_id);
    UPDATE api_gateway.upstream_key u SET key = NULL, expires_at = least(u.expires_at, now() + interval '10 minutes')
     WHERE u.client_id = c.client_id;
    INSERT INTO api_gateway.upstream_key (apikey_id, client_id, user_id, key, expires_at)
    VALUES (new_id, c.client_id, c.user_id, fresh.key, now() + lifetime);
    RETURN fresh.key;
END;
$$;

-- `upstream_key(client_id)`: the plaintext Odoo API key the front forwards for this OAuth2
-- client (made on first use, renewed when it has less than 7 days left or was removed from
-- Odoo). For the front's role only; never log the result.
CREATE FUNCTION api_gateway.upstream_key(client_id text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    found_key text;
    attempt integer;
BEGIN
    FOR attempt IN 1..2 LOOP
        SELECT u.key INTO found_key
          FROM api_gateway.upstream_key u
          JOIN api_gateway.client c ON c.client_id = u.client_id AND c.active AND c.user_id = u.user_id
          JOIN public.res_users_apikeys k ON k.id = u.apikey_id AND k.user_id = u.user_id
         WHERE u.client_id = upstream_key.client_id AND u.key IS NOT NULL
           AND u.expires_at > now() + interval '7 days'
         ORDER BY u.expires_at DESC LIMIT 1;
        IF found_key IS NOT NULL THEN
            RETURN found_key;
        END IF;
        -- One maker per client at a time; the second look sees what the first one made.
        IF attempt = 1 THEN
            PERFORM pg_advisory_xact_lock(hashtext('api_gateway.upstream_key'), hashtext(upstream_key.client_id));
        END IF;
    END LOOP;
    RETURN api_gateway._renew_upstream_key(upstream_key.client_id);
END;
$$;

-- Idempotency keys (draft-ietf-httpapi-idempotency-key-header) of forwarded writes and method
-- calls: per (caller, key), the request's fingerprint and, once answered, the response, kept
-- 24 hours. caller is 'user:<uid>' (Odoo API key) or 'client:<client_id>' (OAuth2).
CREATE TABLE api_gateway.idempotency (
    caller       text NOT NULL CHECK (length(caller) BETWEEN 1 AND 100),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint  text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    started_at   timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz NOT NULL,
    completed_at timestamptz,
    status       integer CHECK (status BETWEEN 100 AND 599),
    headers      jsonb,
    body         jsonb,
    PRIMARY KEY (caller, key)
);
COMMENT ON TABLE api_gateway.idempotency IS
    'Idempotency keys of forwarded writes: the first response per (caller, key) for 24 hours, with the request fingerprint.';
CREATE INDEX idempotency_started_at_idx ON api_gateway.idempotency (started_at);

-- `idempotency_begin(caller, key, fingerprint, lease_s)`: outcome 'new' (go ahead: the key is
-- now in flight for lease_s seconds), 'replay' (with the stored status, headers and body),
-- 'mismatch' (the key was used for another request) or 'in_flight' (the first request is still
-- running). A key in flight past its lease (the front that held it died) is taken over ('new').
CREATE FUNCTION api_gateway.idempotency_begin(caller text, key text, fingerprint text, lease_s integer)
RETURNS TABLE (outcome text, status integer, headers jsonb, body jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r api_gateway.idempotency;
    lease interval := make_interval(secs => greatest(coalesce(lease_s, 60), 1));
BEGIN
    IF key IS NULL OR length(key) NOT BETWEEN 1 AND 255 OR key !~ '^[\x21-\x7e]+$' THEN
        RAISE EXCEPTION 'an idempotency key is 1 to 255 printable ASCII characters without spaces' USING ERRCODE = '22023';
    END IF;
    INSERT INTO api_gateway.idempotency AS i (caller, key, fingerprint, lease_until)
    VALUES (idempotency_begin.caller, idempotency_begin.key, idempotency_begin.fingerprint, now() + lease)
    ON CONFLICT ON CONSTRAINT idempotency_pkey DO NOTHING;
    IF FOUND THEN
        RETURN QUERY SELECT 'new'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
        RETURN;
    END IF;
    SELECT * INTO r FROM api_gateway.idempotency i
     WHERE i.caller = idempotency_begin.caller AND i.key = idempotency_begin.key FOR UPDATE;
    IF r.started_at < now() - interval '24 hours' THEN
        UPDATE api_gateway.idempotency i
           SET fingerprint = idempotency_begin.fingerprint, started_at = now(), lease_until = now() + lease,
               completed_at = NULL, status = NULL, headers = NULL, body = NULL
         WHERE i.caller = idempotency_begin.caller AND i.key = idempotency_begin.key;
        RETURN QUERY SELECT 'new'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    ELSIF r.fingerprint <> idempotency_begin.fingerprint THEN
        RETURN QUERY SELECT 'mismatch'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    ELSIF r.completed_at IS NOT NULL THEN
        RETURN QUERY SELECT 'replay'::text, r.status, r.headers, r.body;
    ELSIF r.lease_until > now() THEN
        RETURN QUERY SELECT 'in_flight'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    ELSE
        UPDATE api_gateway.idempotency i SET lease_until = now() + lease
         WHERE i.caller = idempotency_begin.caller AND i.key = idempotency_begin.key;
        RETURN QUERY SELECT 'new'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    END IF;
END;
$$;

-- `idempotency_finish(caller, key, fingerprint, status, headers, body)`: store the response of
-- the request holding the key. False when the key is no longer held by this request.
CREATE FUNCTION api_gateway.idempotency_finish(caller text, key text, fingerprint text, status integer,
                                               headers jsonb, body jsonb) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE api_gateway.idempotency i
       SET completed_at = now(), status = idempotency_finish.status,
           headers = idempotency_finish.headers, body = idempotency_finish.body
     WHERE i.caller = idempotency_finish.caller AND i.key = idempotency_finish.key
       AND i.fingerprint = idempotency_finish.fingerprint AND i.completed_at IS NULL;
    RETURN FOUND;
END;
$$;

-- `idempotency_release(caller, key, fingerprint)`: forget a key whose request wrote nothing
-- (Odoo could not be reached), so that a retry runs.
CREATE FUNCTION api_gateway.idempotency_release(caller text, key text, fingerprint text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM api_gateway.idempotency i
     WHERE i.caller = idempotency_release.caller AND i.key = idempotency_release.key
       AND i.fingerprint = idempotency_release.fingerprint AND i.completed_at IS NULL;
    RETURN FOUND;
END;
$$;

-- `run_maintenance(job)`: 'logs' (retention: drop old partitions, delete old default rows in
-- batches, prepare the next partitions, trim rollups older than a year), 'webhook_jobs'
-- (delivered/dead jobs past retention), 'secret_display' (one-time secret displays), 'tokens'
-- (tokens expired more than 7 days ago), 'throttles' (ended rate-limit windows),
-- 'upstream_keys' (OAuth2 clients' Odoo keys: renew those with less than 7 days left, remove
-- expired ones), 'idempotency' (idempotency keys older than 24 hours), or 'all'.
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
            'idempotency', api_gateway.run_maintenance('idempotency'));
    END IF;
    IF job NOT IN ('logs', 'webhook_jobs', 'secret_display', 'tokens', 'throttles', 'upstream_keys', 'idempotency') THEN
        RAISE EXCEPTION 'unknown maintenance job "%": use logs, webhook_jobs, secret_display, tokens, throttles, upstream_keys, idempotency or all', job
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
    ELSE
        DELETE FROM api_gateway.throttle WHERE window_start + make_interval(secs => window_s) < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('windows_deleted', n);
    END IF;
    RETURN api_gateway._record_run(job, result);
END;
$$;

-- Nothing new is PUBLIC (finalize.sql revokes everything in a fresh install).
REVOKE ALL ON TABLE api_gateway.upstream_key, api_gateway.idempotency FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._new_odoo_api_key(), api_gateway._upstream_key_removed(),
    api_gateway._client_upstream_key_revoke(), api_gateway._renew_upstream_key(text),
    api_gateway.upstream_key(text), api_gateway.idempotency_begin(text, text, text, integer),
    api_gateway.idempotency_finish(text, text, text, integer, jsonb, jsonb),
    api_gateway.idempotency_release(text, text, text) FROM PUBLIC;

-- grant_front covers the forwarding functions the front calls (src/sql/finalize.sql).
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

REVOKE ALL ON FUNCTION api_gateway.read_versioned(integer, text, integer, text[]),
    api_gateway.write_if_match(integer, text, integer, jsonb, text[]),
    api_gateway.unlink_if_match(integer, text, integer, text[]),
    api_gateway.search_page(integer, text, text, text[], integer, text, text) FROM PUBLIC;
