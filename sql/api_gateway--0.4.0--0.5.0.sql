-- api_gateway 0.4.0 -> 0.5.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.5.0'" to load this file. \quit

-- == oread (issue 20): fields Odoo fills in a read (--odoo-url) and binary fields as files ==

-- src/api/data.rs
CREATE  FUNCTION "fields_in_sql"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"fields" TEXT[] /* Option < Vec < Option < String > > > */
) RETURNS TEXT[] /* Option < Vec < String > > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'fields_in_sql_wrapper';

CREATE  FUNCTION "odoo_fill"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"fields" TEXT[] /* Option < Vec < Option < String > > > */
) RETURNS jsonb /* Option < pgrx :: JsonB > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'odoo_fill_wrapper';

CREATE  FUNCTION "binary_file"(
	"uid" INT, /* Option < i32 > */
	"model" TEXT, /* Option < & str > */
	"id" INT, /* Option < i32 > */
	"field" TEXT /* Option < & str > */
) RETURNS jsonb /* Option < pgrx :: JsonB > */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, public, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'binary_file_wrapper';

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
        -- --odoo-url: the fields Odoo fills in a read, and binary fields served as files.
        'api_gateway.fields_in_sql(integer, text, text[])',
        'api_gateway.odoo_fill(integer, text, text[])',
        'api_gateway.binary_file(integer, text, integer, text)',
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

REVOKE ALL ON FUNCTION api_gateway.fields_in_sql(integer, text, text[]),
    api_gateway.odoo_fill(integer, text, text[]),
    api_gateway.binary_file(integer, text, integer, text) FROM PUBLIC;
