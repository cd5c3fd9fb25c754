-- Runs last: default rows that need the extension's functions, then privileges.

INSERT INTO api_gateway.settings (jwt_kid, jwt_secret)
VALUES (substr(api_gateway._new_signing_secret(), 1, 16), api_gateway._new_signing_secret());

-- Least privilege: nothing in the schema is readable or callable by PUBLIC unless granted here.
REVOKE ALL ON ALL TABLES IN SCHEMA api_gateway FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api_gateway FROM PUBLIC;
GRANT USAGE ON SCHEMA api_gateway TO PUBLIC;
GRANT EXECUTE ON FUNCTION api_gateway.version() TO PUBLIC;
