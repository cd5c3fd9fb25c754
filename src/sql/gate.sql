-- The gate: who may call (OAuth2 clients, Odoo users' profiles), what was issued (tokens),
-- which signing keys still verify, and the rate-limit counters. No foreign key to Odoo tables:
-- user_id columns hold res_users ids and are checked against res_users when used.

-- Per Odoo user: rate limit, allowed IPs, on/off. A user without a profile gets the global limit.
CREATE TABLE api_gateway.profile (
    user_id           integer PRIMARY KEY CHECK (user_id > 0),
    rate_limit        integer CHECK (rate_limit >= 0),
    rate_limit_window text NOT NULL DEFAULT 'minute' CHECK (rate_limit_window IN ('minute', 'hour', 'day')),
    rate_limit_algorithm text NOT NULL DEFAULT 'sliding' CHECK (rate_limit_algorithm IN ('sliding', 'fixed')),
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

-- Rate-limit counters: one row per subject, overwritten as its window moves, so the table holds
-- at most one row per active subject. UNLOGGED: no WAL on the hot path; after a crash the
-- counters restart at zero (a fresh window), which errs on the side of letting requests through.
-- The row is the table fallback of the counters (core::counter decides; with the library in
-- shared_preload_libraries they live in shared memory, see _shared_counters()). A 'fixed' row
-- is (window_start, hits); a 'sliding' row is (head, counts): sub-bucket indexes and the hits
-- admitted in each, oldest first, with window_start + window_s when the newest one leaves and
-- hits what was counted at the last hit. Rows written before 0.4.0 are fixed windows.
CREATE UNLOGGED TABLE api_gateway.throttle (
    subject      text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    window_s     integer NOT NULL,
    hits         integer NOT NULL,
    max_requests integer NOT NULL,
    algorithm    text NOT NULL DEFAULT 'fixed',
    head         bigint NOT NULL DEFAULT 0,
    counts       integer[] NOT NULL DEFAULT '{}'
);

-- The gate's epoch: a counter bumped in the same transaction as any change to the facts that
-- `authenticate` keeps per backend (settings, profiles, clients, signing keys, token updates and
-- deletions). A backend's cached facts are used only while the epoch it read them under is still
-- the current one, so a change is seen on the very next request. A table row, not a sequence:
-- the bump becomes visible exactly when the change does (MVCC), never before it. Its values come
-- from a sequence so that an epoch seen inside a transaction that rolled back is never reused.
-- New tokens and new rate-limit counters do not bump it (nothing can have cached them).
CREATE SEQUENCE api_gateway.gate_epoch_seq;
CREATE TABLE api_gateway.gate_epoch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch     bigint NOT NULL DEFAULT 0
);
INSERT INTO api_gateway.gate_epoch DEFAULT VALUES;
COMMENT ON TABLE api_gateway.gate_epoch IS
    'Bumped by every change to the facts authenticate caches per backend; cached facts are used only under the epoch they were read in.';

-- With shared memory, the same changes also move the gate's generation when they commit
-- (`_note_gate_change`, src/gate_generation.rs): kept facts are then checked without a statement.
CREATE FUNCTION api_gateway._bump_gate_epoch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE api_gateway.gate_epoch SET epoch = nextval('api_gateway.gate_epoch_seq');
    PERFORM api_gateway._note_gate_change();
    RETURN NULL;
END;
$$;
CREATE TRIGGER settings_bump_gate_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_gateway.settings
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._bump_gate_epoch();
CREATE TRIGGER profile_bump_gate_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_gateway.profile
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._bump_gate_epoch();
CREATE TRIGGER client_bump_gate_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_gateway.client
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._bump_gate_epoch();
CREATE TRIGGER signing_key_bump_gate_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_gateway.signing_key
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._bump_gate_epoch();
-- Tokens are updated and deleted by callers (revocation of unknown tokens, expiry purges): bump
-- only when a row actually changed, so no-op statements do not empty every backend's cache.
CREATE FUNCTION api_gateway._bump_gate_epoch_if_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE api_gateway.gate_epoch SET epoch = nextval('api_gateway.gate_epoch_seq');
        PERFORM api_gateway._note_gate_change();
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER token_update_bumps_gate_epoch AFTER UPDATE ON api_gateway.token
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._bump_gate_epoch_if_changed();
CREATE TRIGGER token_delete_bumps_gate_epoch AFTER DELETE ON api_gateway.token
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._bump_gate_epoch_if_changed();
CREATE TRIGGER token_truncate_bumps_gate_epoch AFTER TRUNCATE ON api_gateway.token
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._bump_gate_epoch();

-- `authenticate(authorization, client_ip, method)`: the gate (src/api/authenticate.rs). Its rows
-- are a named type, not RETURNS TABLE: a function returning a named row type gets its result's
-- shape from the type cache, one declaring its columns has it rebuilt from pg_proc on every call.
-- SECURITY DEFINER without a SET clause: most requests are answered from kept facts and run no
-- SQL; every statement of the others runs with the search path pinned (src/spi.rs, pinned_generic).
-- ROWS 1 (it answers one row): with the default estimate of 1000, every expression on a
-- parameter in a statement joining the gate to a data call counted 1000 times in the cost of
-- its generic plan, and PostgreSQL planned such a prepared statement anew on every call (0.7x
-- the calls per second on the real Odoo database, pgbench).
CREATE TYPE api_gateway.gate_answer AS (
    status integer, uid integer, client_id text, scopes text[], error text, rate_limit integer,
    remaining integer, reset_s integer, detail text, window_s integer
);
CREATE FUNCTION api_gateway.authenticate(authorization text, client_ip inet, method text)
RETURNS SETOF api_gateway.gate_answer
VOLATILE SECURITY DEFINER ROWS 1
LANGUAGE c AS 'MODULE_PATHNAME', 'authenticate_wrapper';

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
