-- The data functions keep per backend what they derive from Odoo's security and metadata
-- tables (group closure, companies, access rights, record rules, model and field metadata).
-- Statement-level triggers on those tables note each transaction that changes them here, in
-- that transaction: a backend's cache is used only while no noted transaction has committed
-- since the snapshot it was read under (checked with one index probe per call), so a change is
-- seen by the very next call and a rolled-back one never is (its row never becomes visible).
-- One row per transaction, keyed by its id (xid8, never reused): writers never wait for each
-- other here, unlike a single counter row, so the triggers cannot block or deadlock an Odoo
-- write. Derived state only: not dumped; api_gateway._purge_security_changes() forgets old rows.
CREATE TABLE api_gateway.odoo_security_change (
    xact    xid8 PRIMARY KEY,
    -- When run_maintenance first found the transaction finished; the row is deleted 10 minutes
    -- later (backends re-read their cache at least once a minute whatever the log says).
    done_at timestamptz
);
COMMENT ON TABLE api_gateway.odoo_security_change IS
    'Transactions that changed Odoo''s security or metadata tables (noted by triggers); the data functions'' per-backend caches are valid only while none committed after the snapshot they were read under.';

-- The trigger function: at most one INSERT per transaction (a transaction-local setting
-- remembers it; a rolled-back savepoint reverts both). SECURITY DEFINER: Odoo's role has no
-- right on the api_gateway schema.
CREATE FUNCTION api_gateway._note_odoo_security_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_setting('api_gateway_cache.noted', true) IS DISTINCT FROM pg_current_xact_id()::text THEN
        INSERT INTO api_gateway.odoo_security_change (xact) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
        PERFORM set_config('api_gateway_cache.noted', pg_current_xact_id()::text, true);
        -- Group memberships are among the gate's kept facts too (the admin scope).
        PERFORM api_gateway._note_gate_change();
    END IF;
    RETURN NULL;
END;
$$;

-- The Odoo tables the cached facts come from. res_users is not among them: what the data
-- functions use from it (active, company, partner, language) is read on every call.
CREATE FUNCTION api_gateway._security_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN ARRAY['res_groups', 'res_groups_users_rel', 'res_groups_implied_rel', 'res_company',
             'res_company_users_rel', 'ir_model', 'ir_model_fields', 'ir_model_fields_group_rel',
             'ir_model_access', 'ir_rule', 'rule_group_rel'];

-- The Odoo rows behind the gate's kept facts that no security table covers: a user's active
-- flag and the API key rows (a new key changes nothing kept). Their trigger only marks the
-- transaction (`_gate_change`, in Rust): the gate's generation moves when it commits.
CREATE FUNCTION api_gateway._gate_tables() RETURNS text[][]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
RETURN ARRAY[['res_users', 'UPDATE OF active OR DELETE OR TRUNCATE'],
             ['res_users_apikeys', 'UPDATE OR DELETE OR TRUNCATE']];

-- Installs the triggers on each of those tables that exists and lacks them; true when every
-- existing one has them. Run by CREATE EXTENSION, by the first data call of each backend and by
-- the gate's first kept facts (so an Odoo installed after the extension is covered). Never
-- raises: a table it cannot lock within 1 s is left for a later call (WARNING), and the caller
-- serves that backend uncached meanwhile.
CREATE FUNCTION api_gateway._install_security_triggers() RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl text;
    events text;
    i integer;
    rel regclass;
    complete boolean := true;
BEGIN
    FOREACH tbl IN ARRAY api_gateway._security_tables() LOOP
        rel := to_regclass(format('public.%I', tbl));
        CONTINUE WHEN rel IS NULL
            OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'api_gateway_security_change');
        BEGIN
            PERFORM set_config('lock_timeout', '1000', true);
            EXECUTE format('CREATE TRIGGER api_gateway_security_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._note_odoo_security_change()', rel);
        EXCEPTION WHEN OTHERS THEN
            complete := false;
            RAISE WARNING 'api_gateway could not install its cache trigger on % (%); data calls run uncached until it is', rel, SQLERRM;
        END;
    END LOOP;
    FOR i IN 1 .. array_length(api_gateway._gate_tables(), 1) LOOP
        tbl := (api_gateway._gate_tables())[i][1];
        events := (api_gateway._gate_tables())[i][2];
        rel := to_regclass(format('public.%I', tbl));
        CONTINUE WHEN rel IS NULL
            OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'api_gateway_gate_change');
        BEGIN
            PERFORM set_config('lock_timeout', '1000', true);
            EXECUTE format('CREATE TRIGGER api_gateway_gate_change AFTER %s ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._gate_change()', events, rel);
        EXCEPTION WHEN OTHERS THEN
            complete := false;
            RAISE WARNING 'api_gateway could not install its gate trigger on % (%); requests re-read their credentials until it is', rel, SQLERRM;
        END;
    END LOOP;
    RETURN complete;
END;
$$;

-- Maintenance: a noted transaction is forgotten 10 minutes after it was first seen finished.
-- A backend's cache is never older than a minute, so no backend can still need the row.
CREATE FUNCTION api_gateway._purge_security_changes() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE api_gateway.odoo_security_change c SET done_at = now()
     WHERE c.done_at IS NULL AND c.xact < pg_snapshot_xmin(pg_current_snapshot());
    DELETE FROM api_gateway.odoo_security_change c WHERE c.done_at < now() - interval '10 minutes';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- The page limits in api_gateway.settings are cached with the rest (the data statements of a
-- call run on the cache do not re-read them): a change to the settings is noted too.
CREATE TRIGGER settings_note_security_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_gateway.settings
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._note_odoo_security_change();

SELECT api_gateway._install_security_triggers();
-- A new extension (or a new version of it): facts kept by any backend's gate are read again.
SELECT api_gateway._note_gate_change();
