-- api_gateway 0.2.0 -> 0.3.0

-- authenticate keeps the facts of credentials that passed per backend, under the gate epoch.
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

CREATE FUNCTION api_gateway._bump_gate_epoch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE api_gateway.gate_epoch SET epoch = nextval('api_gateway.gate_epoch_seq');
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

REVOKE ALL ON TABLE api_gateway.gate_epoch FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._bump_gate_epoch() FROM PUBLIC;
REVOKE ALL ON FUNCTION api_gateway._bump_gate_epoch_if_changed() FROM PUBLIC;
