-- api_gateway 0.3.0 -> 0.4.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.4.0'" to load this file. \quit

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
