-- The admin console's SQL API (issue 9): what the Odoo menus of the product we replace offer,
-- as functions the front's console pages call (never SQL text built in a browser).
--
-- * Reads (`admin_*` returning jsonb) never show a secret: no client secret hash, no JWT or
--   webhook signing secret.
-- * Changes take the actor first (`actor_uid`: the Odoo user the gate authenticated,
--   `actor_client`: the OAuth2 client, NULL for an Odoo API key), validate their input with
--   SQLSTATE 22023 (invalid parameter) or 02000 (no such row) and a message naming the field,
--   and write one row of api_gateway.audit in the same transaction: who, what, when, on which
--   target, with details that never hold a secret.
-- * Secrets a change creates (client secret, webhook signing secret) are returned once, by
--   that call, and are never readable through this API again.
-- Nothing here is PUBLIC (finalize.sql revokes it): the DBA grants them to the front's role.

-- Who changed what, when. Never holds a secret; kept by pg_dump (it is the operators' record).
CREATE TABLE api_gateway.audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    -- The Odoo user and OAuth2 client the front authenticated (NULL when called from SQL).
    actor_uid    integer,
    actor_client text,
    -- The database role that made the call (the front's role, or a DBA's).
    actor_role   text NOT NULL DEFAULT session_user,
    action       text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target       text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
COMMENT ON TABLE api_gateway.audit IS
    'Every change made through the admin functions (api_gateway.admin_*): actor (Odoo user, OAuth2 client, role), action, target, details without secrets.';
CREATE INDEX audit_at_idx ON api_gateway.audit (at);
SELECT pg_catalog.pg_extension_config_dump('api_gateway.audit', '');

CREATE FUNCTION api_gateway._audit(
    actor_uid integer, actor_client text, action text, target text, details jsonb)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO api_gateway.audit (actor_uid, actor_client, action, target, details)
    VALUES (actor_uid, actor_client, action, target, coalesce(details, '{}'::jsonb));
END;

-- Input helpers: a JSON member as a bounded integer, one of a set of words, a CIDR list; each
-- raises 22023 naming the field, so the console can put the message next to it.
CREATE FUNCTION api_gateway._admin_int(args jsonb, field text, lo bigint, hi bigint) RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := args -> field;
    n numeric;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    BEGIN
        n := (v #>> '{}')::numeric;
    EXCEPTION WHEN invalid_text_representation THEN
        n := NULL;
    END;
    IF n IS NULL OR n <> trunc(n) OR n < lo OR n > hi THEN
        RAISE EXCEPTION '% must be a whole number between % and %', field, lo, hi
            USING ERRCODE = '22023', COLUMN = field;
    END IF;
    RETURN n::integer;
END;
$$;

CREATE FUNCTION api_gateway._admin_word(args jsonb, field text, allowed text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := args ->> field;
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT (v = ANY (allowed)) THEN
        RAISE EXCEPTION '% must be one of %', field, array_to_string(allowed, ', ')
            USING ERRCODE = '22023', COLUMN = field;
    END IF;
    RETURN v;
END;
$$;

-- A JSON array of addresses or CIDR ranges (or one string of them separated by commas, spaces
-- or new lines) as cidr[]; NULL or empty: any address. '10.0.0.1/8' is refused (host bits set):
-- the operator probably meant 10.0.0.0/8 and should say so.
CREATE FUNCTION api_gateway._admin_cidrs(args jsonb, field text) RETURNS cidr[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := args -> field;
    items text[];
    item text;
    ranges cidr[] := '{}';
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) = 'string' THEN
        items := regexp_split_to_array(btrim(v #>> '{}'), '[\s,]+');
    ELSIF jsonb_typeof(v) = 'array' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
            RAISE EXCEPTION '% must be a list of IP addresses or CIDR ranges', field
                USING ERRCODE = '22023', COLUMN = field;
        END IF;
        items := ARRAY(SELECT btrim(e) FROM jsonb_array_elements_text(v) e);
    ELSE
        RAISE EXCEPTION '% must be a list of IP addresses or CIDR ranges', field
            USING ERRCODE = '22023', COLUMN = field;
    END IF;
    FOREACH item IN ARRAY items LOOP
        CONTINUE WHEN item = '';
        BEGIN
            ranges := ranges || item::cidr;
        EXCEPTION WHEN invalid_text_representation OR invalid_binary_representation THEN
            RAISE EXCEPTION '%: "%" is not an IP address or CIDR range (e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32; no host bits after the mask)',
                field, left(item, 100) USING ERRCODE = '22023', COLUMN = field;
        END;
    END LOOP;
    IF cardinality(ranges) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN ranges;
END;
$$;

CREATE FUNCTION api_gateway._admin_scopes(args jsonb, field text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := args -> field;
    picked text[];
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'array' OR EXISTS (
           SELECT 1 FROM jsonb_array_elements(v) e
            WHERE jsonb_typeof(e) <> 'string' OR (e #>> '{}') NOT IN ('read', 'write', 'delete', 'admin')) THEN
        RAISE EXCEPTION '% must be a list among read, write, delete, admin', field
            USING ERRCODE = '22023', COLUMN = field;
    END IF;
    picked := ARRAY(SELECT DISTINCT e FROM jsonb_array_elements_text(v) e ORDER BY 1);
    IF cardinality(picked) = 0 THEN
        RAISE EXCEPTION '% needs at least one scope among read, write, delete, admin', field
            USING ERRCODE = '22023', COLUMN = field;
    END IF;
    RETURN picked;
END;
$$;

CREATE FUNCTION api_gateway._admin_unknown_keys(args jsonb, known text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
BEGIN
    IF args IS NULL OR jsonb_typeof(args) <> 'object' THEN
        RAISE EXCEPTION 'expected a JSON object' USING ERRCODE = '22023';
    END IF;
    SELECT key INTO k FROM jsonb_object_keys(args) AS key WHERE NOT (key = ANY (known)) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown field "%": expected %', left(k, 100), array_to_string(known, ', ')
            USING ERRCODE = '22023', COLUMN = left(k, 100);
    END IF;
END;
$$;

CREATE FUNCTION api_gateway._admin_need_odoo(fn text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('public.res_users') IS NULL THEN
        RAISE EXCEPTION 'api_gateway.% needs Odoo''s table public.res_users, which this database does not have', fn
            USING ERRCODE = '42P01';
    END IF;
END;
$$;

------------------------------------------------------------------------------------------------
-- Settings
------------------------------------------------------------------------------------------------

-- `admin_settings()`: the settings without the signing secret, the current key id and the
-- retired keys still verifying, and the webhook delivery settings.
CREATE FUNCTION api_gateway.admin_settings() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT to_jsonb(s) - 'jwt_secret' - 'singleton'
               || jsonb_build_object(
                      'retired_keys', coalesce((SELECT jsonb_agg(jsonb_build_object('kid', k.kid, 'retired_at', k.retired_at,
                                                                                    'valid_until', k.valid_until) ORDER BY k.retired_at DESC)
                                                  FROM api_gateway.signing_key k WHERE k.valid_until > now()), '[]'::jsonb),
                      'webhooks', (SELECT to_jsonb(w) - 'singleton'
                                          || jsonb_build_object('retention_days', floor(extract(epoch FROM w.retention) / 86400)::integer)
                                     FROM api_gateway.webhook_settings w))
          FROM api_gateway.settings s);

-- `admin_update_settings(actor_uid, actor_client, changes)`: change some of default_limit,
-- max_limit, rate_limit, rate_limit_window, rate_limit_algorithm, log_level, log_retention_days, token_lifetime_s,
-- jwt_issuer. Returns admin_settings().
CREATE FUNCTION api_gateway.admin_update_settings(actor_uid integer, actor_client text, changes jsonb)
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

-- `admin_update_webhook_settings(actor_uid, actor_client, changes)`: change some of the
-- delivery settings: allow_private_targets (true/false), retry_schedule_s (seconds before each
-- retry, 1 to 30 steps of 0 to 604800; null = the built-in schedule), retention_days (how long
-- delivered and dead jobs are kept, 0 to 3650). Returns admin_settings().
CREATE FUNCTION api_gateway.admin_update_webhook_settings(actor_uid integer, actor_client text, changes jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schedule integer[];
BEGIN
    PERFORM api_gateway._admin_unknown_keys(changes, ARRAY['allow_private_targets', 'retry_schedule_s', 'retention_days']);
    IF changes ? 'allow_private_targets' AND jsonb_typeof(changes -> 'allow_private_targets') <> 'boolean' THEN
        RAISE EXCEPTION 'allow_private_targets must be true or false' USING ERRCODE = '22023', COLUMN = 'allow_private_targets';
    END IF;
    IF jsonb_typeof(changes -> 'retry_schedule_s') = 'array' THEN
        IF jsonb_array_length(changes -> 'retry_schedule_s') NOT BETWEEN 1 AND 30 OR EXISTS (
               SELECT 1 FROM jsonb_array_elements(changes -> 'retry_schedule_s') e
                WHERE jsonb_typeof(e) <> 'number' OR (e #>> '{}')::numeric <> trunc((e #>> '{}')::numeric)
                   OR (e #>> '{}')::numeric NOT BETWEEN 0 AND 604800) THEN
            RAISE EXCEPTION 'retry_schedule_s must be 1 to 30 whole numbers of seconds between 0 and 604800'
                USING ERRCODE = '22023', COLUMN = 'retry_schedule_s';
        END IF;
        schedule := ARRAY(SELECT (e #>> '{}')::integer FROM jsonb_array_elements(changes -> 'retry_schedule_s') e);
    ELSIF changes ? 'retry_schedule_s' AND jsonb_typeof(changes -> 'retry_schedule_s') <> 'null' THEN
        RAISE EXCEPTION 'retry_schedule_s must be a list of seconds, or null for the built-in schedule'
            USING ERRCODE = '22023', COLUMN = 'retry_schedule_s';
    END IF;
    UPDATE api_gateway.webhook_settings w SET
        allow_private_targets = coalesce((changes ->> 'allow_private_targets')::boolean, w.allow_private_targets),
        retry_schedule_s = CASE WHEN changes ? 'retry_schedule_s' THEN schedule ELSE w.retry_schedule_s END,
        retention = coalesce(make_interval(days => api_gateway._admin_int(changes, 'retention_days', 0, 3650)), w.retention);
    PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook_settings.update', 'webhook_settings', changes);
    RETURN api_gateway.admin_settings();
END;
$$;

-- `admin_rotate_signing_key(actor_uid, actor_client)`: rotate_signing_key(), audited. Returns
-- the new kid; tokens signed with the old key keep verifying until they expire.
CREATE FUNCTION api_gateway.admin_rotate_signing_key(actor_uid integer, actor_client text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_kid text := (SELECT s.jwt_kid FROM api_gateway.settings s);
    new_kid text := api_gateway.rotate_signing_key();
BEGIN
    PERFORM api_gateway._audit(actor_uid, actor_client, 'settings.rotate_signing_key', 'settings',
                               jsonb_build_object('old_kid', old_kid, 'new_kid', new_kid));
    RETURN new_kid;
END;
$$;

------------------------------------------------------------------------------------------------
-- Odoo's users and models (what the forms pick from)
------------------------------------------------------------------------------------------------

-- `admin_odoo_users()`: active Odoo users (id, login, name), for the profile and client forms.
CREATE FUNCTION api_gateway.admin_odoo_users() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM api_gateway._admin_need_odoo('admin_odoo_users');
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('id', u.id, 'login', u.login::text, 'name', p.name::text)
                                      ORDER BY u.login), '[]'::jsonb)
              FROM public.res_users u LEFT JOIN public.res_partner p ON p.id = u.partner_id
             WHERE u.active);
END;
$$;

-- `admin_odoo_models()`: Odoo's models (ir_model: technical name and English label) that have
-- a table, for the webhook form.
CREATE FUNCTION api_gateway.admin_odoo_models() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('public.ir_model') IS NULL THEN
        RAISE EXCEPTION 'api_gateway.admin_odoo_models needs Odoo''s table public.ir_model, which this database does not have'
            USING ERRCODE = '42P01';
    END IF;
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('model', m.model::text,
                                                         'name', coalesce(m.name ->> 'en_US', m.model::text))
                                      ORDER BY m.model), '[]'::jsonb)
              FROM public.ir_model m
             WHERE to_regclass('public.' || quote_ident(replace(m.model::text, '.', '_'))) IS NOT NULL);
END;
$$;

------------------------------------------------------------------------------------------------
-- API profiles
------------------------------------------------------------------------------------------------

-- `admin_profiles()`: every profile with the user's login, name and Odoo active flag.
CREATE FUNCTION api_gateway.admin_profiles() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('public.res_users') IS NULL THEN
        RETURN (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.user_id), '[]'::jsonb) FROM api_gateway.profile p);
    END IF;
    RETURN (SELECT coalesce(jsonb_agg(to_jsonb(p) || jsonb_build_object('login', u.login::text, 'name', rp.name::text,
                                                                         'user_active', u.active)
                                      ORDER BY p.user_id), '[]'::jsonb)
              FROM api_gateway.profile p
              LEFT JOIN public.res_users u ON u.id = p.user_id
              LEFT JOIN public.res_partner rp ON rp.id = u.partner_id);
END;
$$;

-- `admin_save_profile(actor_uid, actor_client, profile)`: create or replace the profile of
-- profile.user_id (an active Odoo user): rate_limit (null = the global one, 0 = unlimited),
-- rate_limit_window, rate_limit_algorithm ('sliding' by default, or 'fixed'), allowed_ips, active, note. Returns the saved row.
CREATE FUNCTION api_gateway.admin_save_profile(actor_uid integer, actor_client text, profile jsonb)
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

-- `admin_set_profile_active(actor_uid, actor_client, user_id, active)`: (de)activate one
-- profile (an inactive profile refuses its user's requests). 02000 when there is none.
CREATE FUNCTION api_gateway.admin_set_profile_active(actor_uid integer, actor_client text, user_id integer, active boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE api_gateway.profile p SET active = coalesce(admin_set_profile_active.active, false)
     WHERE p.user_id = admin_set_profile_active.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no profile for Odoo user %', user_id USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, CASE WHEN active THEN 'profile.activate' ELSE 'profile.deactivate' END,
                               'profile:' || user_id, '{}');
END;
$$;

------------------------------------------------------------------------------------------------
-- OAuth2 clients and tokens
------------------------------------------------------------------------------------------------

-- `admin_clients()`: every client (never its secret hash) with its user's login and its
-- count of live tokens.
CREATE FUNCTION api_gateway.admin_clients() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    odoo boolean := to_regclass('public.res_users') IS NOT NULL;
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(to_jsonb(c) - 'secret_hash'
                                      || jsonb_build_object(
                                             'login', CASE WHEN odoo THEN (SELECT u.login::text FROM public.res_users u WHERE u.id = c.user_id) END,
                                             'live_tokens', (SELECT count(*) FROM api_gateway.token t
                                                              WHERE t.client_id = c.client_id AND t.revoked_at IS NULL AND t.expires_at > now()))
                                      ORDER BY c.created_at, c.client_id), '[]'::jsonb)
              FROM api_gateway.client c);
END;
$$;

-- `admin_create_client(actor_uid, actor_client, client)`: create_client() from {name,
-- user_id, scopes, allowed_ips}, audited. Returns {client_id, client_secret}: the only time the
-- secret is shown.
CREATE FUNCTION api_gateway.admin_create_client(actor_uid integer, actor_client text, client jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    created record;
    scopes text[];
BEGIN
    PERFORM api_gateway._admin_unknown_keys(client, ARRAY['name', 'user_id', 'scopes', 'allowed_ips']);
    scopes := coalesce(api_gateway._admin_scopes(client, 'scopes'), '{read}');
    SELECT * INTO created
      FROM api_gateway.create_client(client ->> 'name', api_gateway._admin_int(client, 'user_id', 1, 2147483647),
                                     scopes, api_gateway._admin_cidrs(client, 'allowed_ips'));
    PERFORM api_gateway._audit(actor_uid, actor_client, 'client.create', 'client:' || created.client_id,
                               client - 'allowed_ips' || jsonb_build_object('scopes', to_jsonb(scopes),
                                   'allowed_ips', to_jsonb(api_gateway._admin_cidrs(client, 'allowed_ips')::text[])));
    RETURN jsonb_build_object('client_id', created.client_id, 'client_secret', created.client_secret);
END;
$$;

-- `admin_update_client(actor_uid, actor_client, client_id, changes)`: change some of name,
-- scopes, allowed_ips (null = any), active. Returns the client as admin_clients() shows it.
CREATE FUNCTION api_gateway.admin_update_client(actor_uid integer, actor_client text, client_id text, changes jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved api_gateway.client;
    new_name text := btrim(changes ->> 'name');
BEGIN
    PERFORM api_gateway._admin_unknown_keys(changes, ARRAY['name', 'scopes', 'allowed_ips', 'active']);
    IF new_name = '' OR length(new_name) > 200 THEN
        RAISE EXCEPTION 'name must be 1 to 200 characters' USING ERRCODE = '22023', COLUMN = 'name';
    END IF;
    IF changes ? 'active' AND jsonb_typeof(changes -> 'active') <> 'boolean' THEN
        RAISE EXCEPTION 'active must be true or false' USING ERRCODE = '22023', COLUMN = 'active';
    END IF;
    UPDATE api_gateway.client c SET
        name = coalesce(new_name, c.name),
        scopes = coalesce(api_gateway._admin_scopes(changes, 'scopes'), c.scopes),
        allowed_ips = CASE WHEN changes ? 'allowed_ips' THEN api_gateway._admin_cidrs(changes, 'allowed_ips') ELSE c.allowed_ips END,
        active = coalesce((changes ->> 'active')::boolean, c.active)
     WHERE c.client_id = admin_update_client.client_id
    RETURNING * INTO saved;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no OAuth2 client %', left(client_id, 100) USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'client.update', 'client:' || saved.client_id,
                               to_jsonb(saved) - 'secret_hash' - 'created_at' - 'updated_at');
    RETURN to_jsonb(saved) - 'secret_hash';
END;
$$;

-- `admin_rotate_client_secret(actor_uid, actor_client, client_id)`: a new secret for the
-- client, returned once; the old one stops working at once. Tokens already issued stay valid
-- until they expire (revoke them with admin_revoke_client_tokens).
CREATE FUNCTION api_gateway.admin_rotate_client_secret(actor_uid integer, actor_client text, client_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_secret text := api_gateway._new_client_secret();
BEGIN
    UPDATE api_gateway.client c SET secret_hash = encode(sha256(convert_to(new_secret, 'UTF8')), 'hex')
     WHERE c.client_id = admin_rotate_client_secret.client_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no OAuth2 client %', left(client_id, 100) USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'client.rotate_secret', 'client:' || client_id, '{}');
    RETURN new_secret;
END;
$$;

-- `admin_tokens(client_id, include_inactive, max_rows)`: issued tokens, newest first, with
-- their state (live, expired, revoked); NULL client_id: every client's.
CREATE FUNCTION api_gateway.admin_tokens(client_id text DEFAULT NULL, include_inactive boolean DEFAULT true,
                                         max_rows integer DEFAULT 500)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(jsonb_agg(x ORDER BY x ->> 'issued_at' DESC, x ->> 'jti'), '[]'::jsonb)
          FROM (SELECT to_jsonb(t) || jsonb_build_object(
                           'client_name', c.name,
                           'state', CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'
                                         WHEN t.expires_at <= now() THEN 'expired' ELSE 'live' END) AS x
                  FROM api_gateway.token t JOIN api_gateway.client c ON c.client_id = t.client_id
                 WHERE (admin_tokens.client_id IS NULL OR t.client_id = admin_tokens.client_id)
                   AND (include_inactive OR (t.revoked_at IS NULL AND t.expires_at > now()))
                 ORDER BY t.issued_at DESC, t.jti
                 LIMIT least(greatest(coalesce(max_rows, 500), 1), 10000)) s);

-- `admin_revoke_token(actor_uid, actor_client, jti)`: revoke one issued token by its id; the
-- next request with it is refused. False when it was revoked already; 02000 when unknown.
CREATE FUNCTION api_gateway.admin_revoke_token(actor_uid integer, actor_client text, jti text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner text;
BEGIN
    SELECT t.client_id INTO owner FROM api_gateway.token t WHERE t.jti = admin_revoke_token.jti;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no token with id %', left(jti, 100) USING ERRCODE = '02000';
    END IF;
    UPDATE api_gateway.token t SET revoked_at = now() WHERE t.jti = admin_revoke_token.jti AND t.revoked_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'token.revoke', 'token:' || jti,
                               jsonb_build_object('client_id', owner));
    RETURN true;
END;
$$;

-- `admin_revoke_client_tokens(actor_uid, actor_client, client_id)`: revoke every live token of
-- a client. Returns how many.
CREATE FUNCTION api_gateway.admin_revoke_client_tokens(actor_uid integer, actor_client text, client_id text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM api_gateway.client c WHERE c.client_id = admin_revoke_client_tokens.client_id) THEN
        RAISE EXCEPTION 'no OAuth2 client %', left(client_id, 100) USING ERRCODE = '02000';
    END IF;
    UPDATE api_gateway.token t SET revoked_at = now()
     WHERE t.client_id = admin_revoke_client_tokens.client_id AND t.revoked_at IS NULL AND t.expires_at > now();
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'client.revoke_tokens', 'client:' || client_id,
                               jsonb_build_object('revoked', n));
    RETURN n;
END;
$$;

------------------------------------------------------------------------------------------------
-- Throttles
------------------------------------------------------------------------------------------------

-- `admin_throttles()`: the current rate-limit windows (active_throttles), busiest first.
CREATE FUNCTION api_gateway.admin_throttles() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(jsonb_agg(to_jsonb(a) || jsonb_build_object(
                                      'reset_s', greatest(ceil(extract(epoch FROM a.resets_at - now())), 0)::integer)
                                  ORDER BY a.count DESC, a.subject), '[]'::jsonb)
          FROM api_gateway.active_throttles a);

-- `admin_reset_throttle(actor_uid, actor_client, subject)`: forget a subject's current window
-- (its next request starts a new one), in the table and in shared memory. False when it had none.
CREATE FUNCTION api_gateway.admin_reset_throttle(actor_uid integer, actor_client text, subject text)
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

------------------------------------------------------------------------------------------------
-- Webhooks and their queue
------------------------------------------------------------------------------------------------

-- `admin_webhooks()`: every webhook (never its secret) with its jobs counted by state.
CREATE FUNCTION api_gateway.admin_webhooks() RETURNS jsonb
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

-- `admin_save_webhook(actor_uid, actor_client, webhook)`: create (no id) or update (id) a
-- webhook from {name, model, events: [create, write, unlink], url, headers, fields, domain,
-- timeout_ms, active}. The row's triggers validate URL, headers, fields and domain (22023).
-- Returns the webhook as admin_webhooks() shows it, plus `secret` on creation only.
CREATE FUNCTION api_gateway.admin_save_webhook(actor_uid integer, actor_client text, webhook jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wid integer := api_gateway._admin_int(webhook, 'id', 1, 2147483647);
    events text[];
    flds text[];
    saved api_gateway.webhook;
    tmo interval;
BEGIN
    PERFORM api_gateway._admin_unknown_keys(webhook, ARRAY['id', 'name', 'model', 'events', 'url', 'headers',
        'fields', 'domain', 'timeout_ms', 'active']);
    IF webhook ? 'events' THEN
        IF jsonb_typeof(webhook -> 'events') <> 'array' OR EXISTS (
               SELECT 1 FROM jsonb_array_elements(webhook -> 'events') e
                WHERE jsonb_typeof(e) <> 'string' OR (e #>> '{}') NOT IN ('create', 'write', 'unlink')) THEN
            RAISE EXCEPTION 'events must be a list among create, write, unlink' USING ERRCODE = '22023', COLUMN = 'events';
        END IF;
        events := ARRAY(SELECT jsonb_array_elements_text(webhook -> 'events'));
        IF cardinality(events) = 0 THEN
            RAISE EXCEPTION 'events needs at least one of create, write, unlink' USING ERRCODE = '22023', COLUMN = 'events';
        END IF;
    END IF;
    IF jsonb_typeof(webhook -> 'fields') = 'array' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(webhook -> 'fields') e WHERE jsonb_typeof(e) <> 'string') THEN
            RAISE EXCEPTION 'fields must be a list of field names' USING ERRCODE = '22023', COLUMN = 'fields';
        END IF;
        flds := nullif(ARRAY(SELECT btrim(e) FROM jsonb_array_elements_text(webhook -> 'fields') e WHERE btrim(e) <> ''), '{}');
    ELSIF jsonb_typeof(webhook -> 'fields') = 'string' THEN
        flds := nullif(ARRAY(SELECT f FROM regexp_split_to_table(btrim(webhook ->> 'fields'), '[\s,]+') f WHERE f <> ''), '{}');
    ELSIF webhook ? 'fields' AND jsonb_typeof(webhook -> 'fields') <> 'null' THEN
        RAISE EXCEPTION 'fields must be a list of field names' USING ERRCODE = '22023', COLUMN = 'fields';
    END IF;
    IF webhook ? 'headers' AND jsonb_typeof(webhook -> 'headers') NOT IN ('object', 'null') THEN
        RAISE EXCEPTION 'headers must be a JSON object of header names to string values' USING ERRCODE = '22023', COLUMN = 'headers';
    END IF;
    IF webhook ? 'active' AND jsonb_typeof(webhook -> 'active') <> 'boolean' THEN
        RAISE EXCEPTION 'active must be true or false' USING ERRCODE = '22023', COLUMN = 'active';
    END IF;
    tmo := make_interval(secs => api_gateway._admin_int(webhook, 'timeout_ms', 100, 300000) / 1000.0);
    IF wid IS NULL THEN
        IF coalesce(btrim(webhook ->> 'name'), '') = '' THEN
            RAISE EXCEPTION 'name is required' USING ERRCODE = '22023', COLUMN = 'name';
        END IF;
        IF coalesce(btrim(webhook ->> 'model'), '') = '' THEN
            RAISE EXCEPTION 'model is required (an Odoo model such as res.partner)' USING ERRCODE = '22023', COLUMN = 'model';
        END IF;
        IF coalesce(btrim(webhook ->> 'url'), '') = '' THEN
            RAISE EXCEPTION 'url is required' USING ERRCODE = '22023', COLUMN = 'url';
        END IF;
        IF EXISTS (SELECT 1 FROM api_gateway.webhook w WHERE w.name = btrim(webhook ->> 'name')) THEN
            RAISE EXCEPTION 'a webhook named "%" exists already', btrim(webhook ->> 'name') USING ERRCODE = '23505', COLUMN = 'name';
        END IF;
        INSERT INTO api_gateway.webhook (name, model, on_create, on_write, on_unlink, url, headers, secret, active,
                                         fields, domain, timeout)
        VALUES (webhook ->> 'name', webhook ->> 'model',
                coalesce('create' = ANY (events), true), coalesce('write' = ANY (events), true),
                coalesce('unlink' = ANY (events), true), webhook ->> 'url',
                coalesce(nullif(webhook -> 'headers', 'null'::jsonb), '{}'::jsonb), NULL,
                coalesce((webhook ->> 'active')::boolean, true), flds,
                nullif(btrim(webhook ->> 'domain'), ''), coalesce(tmo, interval '10 seconds'))
        RETURNING * INTO saved;
        PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook.create', 'webhook:' || saved.id,
                                   webhook - 'headers' || jsonb_build_object('header_names',
                                       (SELECT coalesce(jsonb_agg(k), '[]'::jsonb) FROM jsonb_object_keys(saved.headers) k)));
        RETURN (SELECT x FROM jsonb_array_elements(api_gateway.admin_webhooks()) x WHERE (x ->> 'id')::int = saved.id)
               || jsonb_build_object('secret', saved.secret);
    END IF;
    IF EXISTS (SELECT 1 FROM api_gateway.webhook w WHERE w.name = btrim(webhook ->> 'name') AND w.id <> wid) THEN
        RAISE EXCEPTION 'a webhook named "%" exists already', btrim(webhook ->> 'name') USING ERRCODE = '23505', COLUMN = 'name';
    END IF;
    UPDATE api_gateway.webhook w SET
        name = coalesce(webhook ->> 'name', w.name),
        model = coalesce(webhook ->> 'model', w.model),
        on_create = CASE WHEN events IS NULL THEN w.on_create ELSE 'create' = ANY (events) END,
        on_write = CASE WHEN events IS NULL THEN w.on_write ELSE 'write' = ANY (events) END,
        on_unlink = CASE WHEN events IS NULL THEN w.on_unlink ELSE 'unlink' = ANY (events) END,
        url = coalesce(webhook ->> 'url', w.url),
        headers = CASE WHEN webhook ? 'headers' THEN coalesce(nullif(webhook -> 'headers', 'null'::jsonb), '{}'::jsonb) ELSE w.headers END,
        fields = CASE WHEN webhook ? 'fields' THEN flds ELSE w.fields END,
        domain = CASE WHEN webhook ? 'domain' THEN nullif(btrim(webhook ->> 'domain'), '') ELSE w.domain END,
        timeout = coalesce(tmo, w.timeout),
        active = coalesce((webhook ->> 'active')::boolean, w.active)
     WHERE w.id = wid
    RETURNING * INTO saved;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no webhook %', wid USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook.update', 'webhook:' || wid,
                               webhook - 'headers' || CASE WHEN webhook ? 'headers' THEN jsonb_build_object('header_names',
                                   (SELECT coalesce(jsonb_agg(k), '[]'::jsonb) FROM jsonb_object_keys(saved.headers) k)) ELSE '{}' END);
    RETURN (SELECT x FROM jsonb_array_elements(api_gateway.admin_webhooks()) x WHERE (x ->> 'id')::int = wid);
END;
$$;

-- `admin_set_webhook_active(actor_uid, actor_client, webhook_id, active)`.
CREATE FUNCTION api_gateway.admin_set_webhook_active(actor_uid integer, actor_client text, webhook_id integer, active boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE api_gateway.webhook w SET active = coalesce(admin_set_webhook_active.active, false) WHERE w.id = webhook_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no webhook %', webhook_id USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, CASE WHEN active THEN 'webhook.activate' ELSE 'webhook.deactivate' END,
                               'webhook:' || webhook_id, '{}');
END;
$$;

-- `admin_rotate_webhook_secret(actor_uid, actor_client, webhook_id, overlap)`: a new signing
-- secret, returned once (receivers must be given it); the previous one stays valid for
-- `overlap` (24 hours by default): until then deliveries carry both signatures.
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

-- `admin_webhook_test_event(actor_uid, actor_client, webhook_id)`: what the front POSTs as a
-- test event (action "test", a record with only an id of 0), with what it needs to sign and
-- send it: url, headers, secret, timeout_ms, allow_private (webhook_settings.allow_private_targets,
-- for the SSRF guard). Audited; nothing is queued: the front delivers it
-- at once and shows the receiver's answer. Works on an inactive webhook too (to test it before
-- turning it on).
CREATE FUNCTION api_gateway.admin_webhook_test_event(actor_uid integer, actor_client text, webhook_id integer)
RETURNS TABLE (event_id text, url text, headers jsonb, secret text, timeout_ms integer, payload text,
               allow_private boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w api_gateway.webhook;
    eid uuid := gen_random_uuid();
BEGIN
    SELECT * INTO w FROM api_gateway.webhook x WHERE x.id = webhook_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no webhook %', webhook_id USING ERRCODE = '02000';
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook.test_event', 'webhook:' || webhook_id,
                               jsonb_build_object('event_id', eid, 'url', w.url));
    event_id := eid::text;
    url := w.url;
    headers := w.headers;
    secret := w.secret;
    timeout_ms := (extract(epoch FROM w.timeout) * 1000)::integer;
    payload := jsonb_build_object('event_id', eid,
                                  'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                  'action', 'test', 'model', w.model, 'record', jsonb_build_object('id', 0),
                                  'test', true)::text;
    allow_private := coalesce((SELECT s.allow_private_targets FROM api_gateway.webhook_settings s), false);
    RETURN NEXT;
END;
$$;

-- `admin_webhook_queue(state, webhook_id, max_rows)`: jobs of the outbox, newest first, with
-- attempts, next attempt and last error (webhook_queue without the payload), and the count of
-- every status. state: pending, failed, in_flight, delivered, dead or NULL for all.
CREATE FUNCTION api_gateway.admin_webhook_queue(state text DEFAULT NULL, webhook_id integer DEFAULT NULL,
                                                max_rows integer DEFAULT 200)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF state IS NOT NULL AND state NOT IN ('pending', 'failed', 'in_flight', 'delivered', 'dead') THEN
        RAISE EXCEPTION 'state must be one of pending, failed, in_flight, delivered, dead' USING ERRCODE = '22023', COLUMN = 'state';
    END IF;
    RETURN jsonb_build_object(
        'counts', (SELECT coalesce(jsonb_object_agg(c.status, c.n), '{}'::jsonb)
                     FROM (SELECT q.status, count(*) AS n FROM api_gateway.webhook_queue q
                            WHERE admin_webhook_queue.webhook_id IS NULL OR q.webhook_id = admin_webhook_queue.webhook_id
                            GROUP BY q.status) c),
        'jobs', (SELECT coalesce(jsonb_agg(to_jsonb(j) ORDER BY j.id DESC), '[]'::jsonb)
                   FROM (SELECT q.id, q.event_id, q.webhook_id, q.webhook, q.model, q.action, q.record_id, q.status,
                                q.attempts, q.next_attempt_at, q.last_status, q.last_error, q.created_at, q.updated_at,
                                q.delivered_at
                           FROM api_gateway.webhook_queue q
                          WHERE (admin_webhook_queue.state IS NULL OR q.status = admin_webhook_queue.state)
                            AND (admin_webhook_queue.webhook_id IS NULL OR q.webhook_id = admin_webhook_queue.webhook_id)
                          ORDER BY q.id DESC
                          LIMIT least(greatest(coalesce(max_rows, 200), 1), 5000)) j));
END;
$$;

-- `admin_replay_job(actor_uid, actor_client, job_id)`: replay_webhook_job(), audited. False
-- when the job is pending already; 02000 when there is no such job.
CREATE FUNCTION api_gateway.admin_replay_job(actor_uid integer, actor_client text, job_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was text;
BEGIN
    SELECT j.state INTO was FROM api_gateway.webhook_job j WHERE j.id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no webhook job %', job_id USING ERRCODE = '02000';
    END IF;
    IF NOT api_gateway.replay_webhook_job(job_id) THEN
        RETURN false;
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook_job.replay', 'webhook_job:' || job_id,
                               jsonb_build_object('was', was));
    RETURN true;
END;
$$;

-- `admin_replay_dead_jobs(actor_uid, actor_client, webhook_id)`: every dead job of a webhook
-- back to pending. Returns how many.
CREATE FUNCTION api_gateway.admin_replay_dead_jobs(actor_uid integer, actor_client text, webhook_id integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM api_gateway.webhook w WHERE w.id = webhook_id) THEN
        RAISE EXCEPTION 'no webhook %', webhook_id USING ERRCODE = '02000';
    END IF;
    UPDATE api_gateway.webhook_job j
       SET state = 'pending', attempts = 0, next_attempt_at = now(), leased_by = NULL,
           last_error = NULL, last_status = NULL, delivered_at = NULL, updated_at = now()
     WHERE j.webhook_id = admin_replay_dead_jobs.webhook_id AND j.state = 'dead';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('api_gateway_webhook', '');
    END IF;
    PERFORM api_gateway._audit(actor_uid, actor_client, 'webhook.replay_dead', 'webhook:' || webhook_id,
                               jsonb_build_object('replayed', n));
    RETURN n;
END;
$$;

------------------------------------------------------------------------------------------------
-- Traffic logs and the audit trail
------------------------------------------------------------------------------------------------

-- The traffic-log filter: {from, to (timestamps), user (uid, 0 = anonymous), client
-- (client_id), status (2xx, 3xx, 4xx, 5xx, 429), path (a piece of the path, case-insensitive)}.
CREATE FUNCTION api_gateway._admin_log_filter(filters jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f jsonb := coalesce(filters, '{}'::jsonb);
    k text;
BEGIN
    PERFORM api_gateway._admin_unknown_keys(f, ARRAY['from', 'to', 'user', 'client', 'status', 'path']);
    FOREACH k IN ARRAY ARRAY['from', 'to'] LOOP
        IF nullif(f ->> k, '') IS NOT NULL THEN
            BEGIN
                PERFORM (f ->> k)::timestamptz;
            EXCEPTION WHEN OTHERS THEN
                RAISE EXCEPTION '% must be a timestamp such as 2026-11-28T10:00:00Z', k USING ERRCODE = '22023', COLUMN = k;
            END;
        END IF;
    END LOOP;
    PERFORM api_gateway._admin_int(f, 'user', 0, 2147483647);
    PERFORM api_gateway._admin_word(f, 'status', '{2xx,3xx,4xx,5xx,429}');
    RETURN f;
END;
$$;

-- `admin_logs(filters, max_rows)`: traffic-log records, newest first (metadata only: open one
-- with its id for bodies and error chain).
CREATE FUNCTION api_gateway.admin_logs(filters jsonb DEFAULT '{}', max_rows integer DEFAULT 200)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f jsonb := api_gateway._admin_log_filter(filters);
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.at DESC, l.id DESC), '[]'::jsonb)
              FROM (SELECT r.id, r.at, r.method, r.path, r.status, r.latency_ms, host(r.client_ip) AS client_ip,
                           r.uid, r.client_id, r.user_agent, r.error
                      FROM api_gateway.request_log r
                     WHERE (nullif(f ->> 'from', '') IS NULL OR r.at >= (f ->> 'from')::timestamptz)
                       AND (nullif(f ->> 'to', '') IS NULL OR r.at < (f ->> 'to')::timestamptz)
                       AND (f ->> 'user' IS NULL OR coalesce(r.uid, 0) = (f ->> 'user')::int)
                       AND (nullif(f ->> 'client', '') IS NULL OR r.client_id = f ->> 'client')
                       AND api_gateway._status_matches(r.status, nullif(f ->> 'status', ''))
                       AND (nullif(f ->> 'path', '') IS NULL OR strpos(lower(r.path), lower(f ->> 'path')) > 0)
                     ORDER BY r.at DESC, r.id DESC
                     LIMIT least(greatest(coalesce(max_rows, 200), 1), 10000)) l);
END;
$$;

-- `admin_logs_grouped(filters, group_by)`: the filtered records counted by date (UTC day),
-- user, status or endpoint: [{key, requests, errors, avg_latency_ms}], largest first (dates in
-- order).
CREATE FUNCTION api_gateway.admin_logs_grouped(filters jsonb, group_by text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f jsonb := api_gateway._admin_log_filter(filters);
BEGIN
    IF group_by IS NULL OR group_by NOT IN ('date', 'user', 'status', 'endpoint') THEN
        RAISE EXCEPTION 'group_by must be one of date, user, status, endpoint' USING ERRCODE = '22023', COLUMN = 'group_by';
    END IF;
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('key', g.key, 'requests', g.requests, 'errors', g.errors,
                                                         'avg_latency_ms', round(g.avg_latency::numeric, 3))
                                      ORDER BY CASE WHEN group_by = 'date' THEN g.key END, g.requests DESC, g.key), '[]'::jsonb)
              FROM (SELECT CASE group_by
                               WHEN 'date' THEN to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                               WHEN 'user' THEN coalesce(r.uid, 0)::text
                               WHEN 'status' THEN r.status::text
                               ELSE r.method || ' ' || api_gateway.endpoint_of(r.path) END AS key,
                           count(*) AS requests, count(*) FILTER (WHERE r.status >= 400) AS errors,
                           avg(r.latency_ms) AS avg_latency
                      FROM api_gateway.request_log r
                     WHERE (nullif(f ->> 'from', '') IS NULL OR r.at >= (f ->> 'from')::timestamptz)
                       AND (nullif(f ->> 'to', '') IS NULL OR r.at < (f ->> 'to')::timestamptz)
                       AND (f ->> 'user' IS NULL OR coalesce(r.uid, 0) = (f ->> 'user')::int)
                       AND (nullif(f ->> 'client', '') IS NULL OR r.client_id = f ->> 'client')
                       AND api_gateway._status_matches(r.status, nullif(f ->> 'status', ''))
                       AND (nullif(f ->> 'path', '') IS NULL OR strpos(lower(r.path), lower(f ->> 'path')) > 0)
                     GROUP BY 1 LIMIT 1000) g);
END;
$$;

-- `admin_audit(max_rows)`: the latest changes, newest first.
CREATE FUNCTION api_gateway.admin_audit(max_rows integer DEFAULT 100) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.id DESC), '[]'::jsonb)
          FROM (SELECT * FROM api_gateway.audit ORDER BY id DESC
                 LIMIT least(greatest(coalesce(max_rows, 100), 1), 5000)) a);

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
