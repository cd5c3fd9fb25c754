-- api_gateway 0.4.0 -> 0.5.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.5.0'" to load this file. \quit

-- == nested: nested reads (issue 18.1): fields=name{...}, web_read specifications ==

-- src/api/data.rs
CREATE  FUNCTION "web_search_read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"domain" TEXT DEFAULT '[]', /* Option < & str > */
	"specification" jsonb DEFAULT '{}', /* Option < pgrx :: JsonB > */
	"limit" INT DEFAULT NULL, /* Option < i32 > */
	"offset" INT DEFAULT 0, /* Option < i32 > */
	"order" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS jsonb /* RawJsonb */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'web_search_read_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "web_read"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"specification" jsonb DEFAULT '{}' /* Option < pgrx :: JsonB > */
) RETURNS jsonb /* Option < RawJsonb > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'web_read_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "web_read_versioned"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"specification" jsonb DEFAULT '{}' /* Option < pgrx :: JsonB > */
) RETURNS jsonb /* Option < RawJsonb > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'web_read_versioned_wrapper';

-- src/api/data.rs
CREATE  FUNCTION "_nested_read_refused"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT /* Option < i32 > */
) RETURNS jsonb /* Option < pgrx :: JsonB > */
VOLATILE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_nested_read_refused_wrapper';

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
        'api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text)',
        'api_gateway.web_read(integer, text, integer, jsonb)',
        'api_gateway.web_read_versioned(integer, text, integer, jsonb)',
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

REVOKE ALL ON FUNCTION api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text),
    api_gateway.web_read(integer, text, integer, jsonb),
    api_gateway.web_read_versioned(integer, text, integer, jsonb),
    api_gateway._nested_read_refused(integer, text, integer) FROM PUBLIC;
ALTER FUNCTION api_gateway.web_search_read(integer, text, text, jsonb, integer, integer, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION api_gateway.web_read(integer, text, integer, jsonb) SET plan_cache_mode = force_generic_plan;
