-- Runs last: default rows that need the extension's functions, then privileges.

INSERT INTO api_gateway.settings (jwt_kid, jwt_secret)
VALUES (substr(api_gateway._new_signing_secret(), 1, 16), api_gateway._new_signing_secret());

-- Least privilege: nothing in the schema is readable or callable by PUBLIC unless granted here.
REVOKE ALL ON ALL TABLES IN SCHEMA api_gateway FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api_gateway FROM PUBLIC;
GRANT USAGE ON SCHEMA api_gateway TO PUBLIC;
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
-- Webhooks: nothing is PUBLIC. The delivery worker's role needs EXECUTE on
-- webhook_worker_settings(), webhook_claim(text, integer, integer[], integer[]),
-- webhook_complete(bigint[], integer[], text[], integer[], text[], double precision[]) and
-- webhook_next_due(); see docs/webhooks.md.
-- The capture trigger function runs as the extension owner (SECURITY DEFINER), so Odoo's role
-- needs no right on the schema.
