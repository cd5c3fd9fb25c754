-- api_gateway 0.4.0 -> 0.5.0. Each section names the work it belongs to; every statement here
-- has its twin in src/sql/*.sql (fresh install), and tests/upgrade/check.sh proves both equal.
\echo Use "ALTER EXTENSION api_gateway UPDATE TO '0.5.0'" to load this file. \quit

-- == httpread: the settings are noted in the data caches' change log; run_maintenance purges it ==
-- The page limits in api_gateway.settings are cached with the rest (the data statements of a
-- call run on the cache do not re-read them): a change to the settings is noted too.
CREATE TRIGGER settings_note_security_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_gateway.settings
    FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._note_odoo_security_change();

-- `run_maintenance(job)`: 'logs' (retention: drop old partitions, delete old default rows in
-- batches, prepare the next partitions, trim rollups older than a year), 'webhook_jobs'
-- (delivered/dead jobs past retention), 'secret_display' (one-time secret displays), 'tokens'
-- (tokens expired more than 7 days ago), 'throttles' (ended rate-limit windows),
-- 'upstream_keys' (OAuth2 clients' Odoo keys: renew those with less than 7 days left, remove
-- expired ones), 'idempotency' (idempotency keys older than 24 hours), 'security_changes' (the
-- data caches' change log: transactions finished more than 10 minutes ago), or 'all'.
CREATE OR REPLACE FUNCTION api_gateway.run_maintenance(job text DEFAULT 'all') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep_days integer;
    cutoff timestamptz;
    part record;
    n bigint;
    orphans bigint := 0;
    dropped integer := 0;
    result jsonb;
BEGIN
    IF job = 'all' THEN
        RETURN jsonb_build_object(
            'logs', api_gateway.run_maintenance('logs'),
            'webhook_jobs', api_gateway.run_maintenance('webhook_jobs'),
            'secret_display', api_gateway.run_maintenance('secret_display'),
            'tokens', api_gateway.run_maintenance('tokens'),
            'throttles', api_gateway.run_maintenance('throttles'),
            'upstream_keys', api_gateway.run_maintenance('upstream_keys'),
            'idempotency', api_gateway.run_maintenance('idempotency'),
            'security_changes', api_gateway.run_maintenance('security_changes'));
    END IF;
    IF job NOT IN ('logs', 'webhook_jobs', 'secret_display', 'tokens', 'throttles', 'upstream_keys', 'idempotency',
                   'security_changes') THEN
        RAISE EXCEPTION 'unknown maintenance job "%": use logs, webhook_jobs, secret_display, tokens, throttles, upstream_keys, idempotency, security_changes or all', job
            USING ERRCODE = '22023';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('api_gateway.maintenance'), hashtext(job)) THEN
        RETURN jsonb_build_object('skipped', 'another session is running this job');
    END IF;
    SELECT log_retention_days INTO keep_days FROM api_gateway.settings;
    cutoff := now() - make_interval(days => keep_days);
    IF job = 'logs' THEN
        FOR part IN
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'api_gateway.request_log'::regclass AND c.relname ~ '^request_log_[0-9]{8}$'
               AND to_date(substr(c.relname, 13), 'YYYYMMDD') + 1 <= cutoff::date
        LOOP
            EXECUTE format('DROP TABLE api_gateway.%I', part.relname);
            dropped := dropped + 1;
        END LOOP;
        n := 0;
        LOOP
            DELETE FROM api_gateway.request_log_default
             WHERE ctid IN (SELECT ctid FROM api_gateway.request_log_default WHERE at < cutoff LIMIT 10000);
            EXIT WHEN NOT FOUND;
            n := n + 10000;
        END LOOP;
        DELETE FROM api_gateway.request_stats WHERE bucket < now() - interval '400 days';
        DELETE FROM api_gateway.request_stats_ip WHERE bucket < now() - interval '400 days';
        result := jsonb_build_object('partitions_dropped', dropped, 'default_rows_deleted_about', n,
                                     'partitions_created', api_gateway.ensure_log_partitions());
    ELSIF job = 'webhook_jobs' THEN
        IF to_regprocedure('api_gateway.purge_webhook_jobs(interval)') IS NOT NULL THEN
            EXECUTE 'SELECT to_jsonb(api_gateway.purge_webhook_jobs($1))' INTO result USING make_interval(days => keep_days);
            result := jsonb_build_object('purged', result);
        ELSE
            result := jsonb_build_object('purged', 0);
        END IF;
    ELSIF job = 'secret_display' THEN
        -- Client secrets are returned by create_client once and never stored in clear, so there
        -- is no display to clear; webhook signing secrets must stay readable to sign.
        result := jsonb_build_object('cleared', 0);
    ELSIF job = 'tokens' THEN
        DELETE FROM api_gateway.token WHERE expires_at < now() - interval '7 days';
        GET DIAGNOSTICS n = ROW_COUNT;
        DELETE FROM api_gateway.signing_key WHERE valid_until < now();
        result := jsonb_build_object('tokens_deleted', n);
    ELSIF job = 'upstream_keys' THEN
        DELETE FROM api_gateway.upstream_key u WHERE u.expires_at < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        -- The gateway's keys no row knows (after a restore: the plaintexts are not dumped).
        IF to_regclass('public.res_users_apikeys') IS NOT NULL THEN
            EXECUTE 'DELETE FROM public.res_users_apikeys k
                      WHERE k.name LIKE ''api\_gateway: OAuth2 client gw\_%''
                        AND NOT EXISTS (SELECT 1 FROM api_gateway.upstream_key u WHERE u.apikey_id = k.id)';
            GET DIAGNOSTICS orphans = ROW_COUNT;
        END IF;
        dropped := 0;
        FOR part IN
            SELECT DISTINCT u.client_id FROM api_gateway.upstream_key u
              JOIN api_gateway.client c ON c.client_id = u.client_id AND c.active
             WHERE u.key IS NOT NULL AND u.expires_at < now() + interval '7 days'
        LOOP
            PERFORM api_gateway._renew_upstream_key(part.client_id);
            dropped := dropped + 1;
        END LOOP;
        result := jsonb_build_object('expired_removed', n, 'orphans_removed', orphans, 'renewed', dropped);
    ELSIF job = 'idempotency' THEN
        DELETE FROM api_gateway.idempotency i WHERE i.started_at < now() - interval '24 hours';
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('keys_deleted', n);
    ELSIF job = 'security_changes' THEN
        result := jsonb_build_object('forgotten', api_gateway._purge_security_changes());
    ELSE
        DELETE FROM api_gateway.throttle WHERE window_start + make_interval(secs => window_s) < now();
        GET DIAGNOSTICS n = ROW_COUNT;
        result := jsonb_build_object('windows_deleted', n);
    END IF;
    RETURN api_gateway._record_run(job, result);
END;
$$;
