-- Runs last: default rows that need the extension's functions, then privileges.

INSERT INTO api_gateway.settings (jwt_kid, jwt_secret)
VALUES (substr(api_gateway._new_signing_secret(), 1, 16), api_gateway._new_signing_secret());

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
        'api_gateway.search_read(integer, text, text, text[], integer, integer, text, text)',
        'api_gateway.search_count(integer, text, text, text)',
        'api_gateway.read(integer, text, integer, text[], text)',
        'api_gateway.create(integer, text, jsonb)',
        'api_gateway.write(integer, text, integer, jsonb)',
        'api_gateway.unlink(integer, text, integer)',
        'api_gateway.read_versioned(integer, text, integer, text[], text)',
        'api_gateway.write_if_match(integer, text, integer, jsonb, text[])',
        'api_gateway.unlink_if_match(integer, text, integer, text[])',
        'api_gateway.search_page(integer, text, text, text[], integer, text, text, text)',
        -- Schema per model and language per request.
        'api_gateway.fields_get(integer, text, text)',
        'api_gateway.negotiate_language(text)',
        'api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text)',
        'api_gateway.web_read(integer, text, integer, jsonb)',
        'api_gateway.web_read_versioned(integer, text, integer, jsonb)',
        -- --odoo-url: the fields Odoo fills in a read, and binary fields served as files.
        'api_gateway.fields_in_sql(integer, text, text[])',
        'api_gateway.odoo_fill(integer, text, text[])',
        'api_gateway.binary_file(integer, text, integer, text)',
        'api_gateway.changes(integer, text, text, text[], integer)',
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

-- Least privilege: nothing in the schema is readable or callable by PUBLIC unless granted here.
REVOKE ALL ON ALL TABLES IN SCHEMA api_gateway FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api_gateway FROM PUBLIC;
GRANT USAGE ON SCHEMA api_gateway TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.version() TO PUBLIC;
-- The statements of reads are planned once per backend (kept SPI plans); their custom plans are
-- rarely better than the generic one, and re-planning each call costs more than running them.
-- (The gate's functions set this around their statements only: src/spi.rs, pinned_generic.)
ALTER FUNCTION api_gateway.search_read(integer, text, text, text[], integer, integer, text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.search_count(integer, text, text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.read(integer, text, integer, text[], text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.web_read(integer, text, integer, jsonb) SET plan_cache_mode = force_generic_plan;

-- Pure helpers that hold no secret: anyone may use them.
GRANT EXECUTE ON FUNCTION api_gateway.jwt_sign(jsonb, text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.jwt_verify(text, text, text, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.ip_allowed(inet, cidr[]) TO PUBLIC;
-- Everything else is granted by the DBA to named roles: grant_front(role) for the front,
-- grant_worker(role) for the webhook worker (above; docs/sql.md#grants).
-- The capture trigger function runs as the extension owner (SECURITY DEFINER), so Odoo's role
-- needs no right on the schema.
