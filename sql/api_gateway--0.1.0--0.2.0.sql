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
	"detail" TEXT  /* Option < String > */
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
