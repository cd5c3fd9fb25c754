-- DROP EXTENSION api_gateway: the triggers the extension puts on Odoo's tables (webhook
-- capture, change feed, security cache) depend on its functions, so without this the DROP would
-- fail or need CASCADE. Before any DROP EXTENSION whose text names api_gateway, every trigger on
-- a table outside the extension's schema whose function is the extension's is removed (the
-- triggers on its own tables go with it); if the DROP named another extension after all, each
-- kind is installed again at its end.
CREATE FUNCTION api_gateway._before_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    IF current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    -- Facts kept by any backend's gate go with the extension (src/gate_generation.rs).
    PERFORM api_gateway._note_gate_change();
    FOR t IN SELECT tg.tgname, tg.tgrelid::regclass AS rel
               FROM pg_trigger tg
               JOIN pg_proc p ON p.oid = tg.tgfoid
               JOIN pg_class c ON c.oid = tg.tgrelid
              WHERE NOT tg.tgisinternal
                AND p.pronamespace = 'api_gateway'::regnamespace
                AND c.relnamespace <> 'api_gateway'::regnamespace LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    END LOOP;
END;
$$;

CREATE FUNCTION api_gateway._after_drop_extension() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regnamespace('api_gateway') IS NULL OR current_query() !~* 'api_gateway' THEN
        RETURN;
    END IF;
    BEGIN
        PERFORM api_gateway._webhook_sync(t.table_name)
           FROM (SELECT DISTINCT table_name FROM api_gateway.webhook) t;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'api_gateway could not reinstall its webhook triggers after DROP EXTENSION (%); save a webhook of each model again', SQLERRM;
    END;
    BEGIN
        PERFORM api_gateway._feed_sync(f.table_name, f.id) FROM api_gateway.feed f;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'api_gateway could not reinstall its change feed triggers after DROP EXTENSION (%); run feed_enable for each feed', SQLERRM;
    END;
    -- Never raises (a table it cannot lock is left for the next data call).
    PERFORM api_gateway._install_security_triggers();
END;
$$;

CREATE EVENT TRIGGER api_gateway_drop_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._before_drop_extension();
CREATE EVENT TRIGGER api_gateway_drop_end ON ddl_command_end
    WHEN TAG IN ('DROP EXTENSION') EXECUTE FUNCTION api_gateway._after_drop_extension();
