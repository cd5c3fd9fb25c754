-- api_gateway schema: configuration and state tables. Runs first (bootstrap), inside the
-- extension's own schema `api_gateway`. No foreign key ever points at an Odoo table: the
-- extension must install in any database and DROP EXTENSION must never touch Odoo's tables.

-- One row of gateway-wide settings. The row is created by the finalize script.
CREATE TABLE api_gateway.settings (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    default_limit      integer NOT NULL DEFAULT 80 CHECK (default_limit BETWEEN 1 AND 10000),
    max_limit          integer NOT NULL DEFAULT 1000 CHECK (max_limit BETWEEN 1 AND 100000),
    rate_limit         integer NOT NULL DEFAULT 60 CHECK (rate_limit >= 0),
    rate_limit_window  text    NOT NULL DEFAULT 'minute'
                       CHECK (rate_limit_window IN ('minute', 'hour', 'day')),
    rate_limit_algorithm text NOT NULL DEFAULT 'sliding' CHECK (rate_limit_algorithm IN ('sliding', 'fixed')),
    log_level          text    NOT NULL DEFAULT 'errors'
                       CHECK (log_level IN ('errors', 'metadata', 'payloads')),
    log_retention_days integer NOT NULL DEFAULT 30 CHECK (log_retention_days BETWEEN 1 AND 3650),
    token_lifetime_s   integer NOT NULL DEFAULT 3600 CHECK (token_lifetime_s BETWEEN 60 AND 2592000),
    jwt_issuer         text    NOT NULL DEFAULT 'api_gateway',
    jwt_kid            text    NOT NULL,
    jwt_secret         text    NOT NULL CHECK (length(jwt_secret) >= 32),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (default_limit <= max_limit)
);
COMMENT ON TABLE api_gateway.settings IS
    'Gateway-wide settings (one row). jwt_secret signs access tokens; only the extension owner can read it.';

-- pg_restore replays the dumped settings row after CREATE EXTENSION has inserted the default
-- one: this trigger lets the restored row replace it instead of failing on the primary key.
CREATE FUNCTION api_gateway._settings_singleton() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM api_gateway.settings;
    RETURN NEW;
END;
$$;
CREATE TRIGGER settings_singleton BEFORE INSERT ON api_gateway.settings
    FOR EACH ROW EXECUTE FUNCTION api_gateway._settings_singleton();

CREATE FUNCTION api_gateway._touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER settings_updated_at BEFORE UPDATE ON api_gateway.settings
    FOR EACH ROW EXECUTE FUNCTION api_gateway._touch_updated_at();

SELECT pg_catalog.pg_extension_config_dump('api_gateway.settings', '');
