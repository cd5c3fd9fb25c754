-- The change feed (`api_gateway.changes`, `GET /api/v1/<model>/changes`): per model, enabled by
-- the DBA. Statement-level triggers on the model's table log (record id, operation, writing
-- transaction's id as xid8) in the writer's transaction; a poll returns the records whose
-- transaction was not visible in the previous poll's snapshot and is now (commit order, so a
-- long transaction that commits after a later one is never skipped; core/src/feed.rs).
--
-- Not the webhook capture triggers: those serialise rows per webhook, skip writes that change
-- no watched field and merge events per transaction, while the feed must log every write of
-- every record at the cost of one INSERT ... SELECT of ids; sharing would make each path pay
-- for the other and couple two contracts. Both coexist on a table (a few microseconds each).

-- One row per enabled model. Not dumped: a restored database has other transaction ids, so
-- its feeds are enabled again after a restore (their cursors then expire: 410).
CREATE TABLE api_gateway.feed (
    model        text PRIMARY KEY,
    table_name   text NOT NULL,
    -- Random, new at every enabling: the cursors of an earlier enabling (or of another
    -- database) name another id and expire.
    id           bigint NOT NULL UNIQUE,
    -- Log rows (and so deletions) are kept this long after their transaction committed; a
    -- cursor not used for longer expires.
    retention    interval NOT NULL DEFAULT '7 days'
                 CHECK (retention BETWEEN interval '1 hour' AND interval '3650 days'),
    enabled_at   timestamptz NOT NULL DEFAULT now(),
    -- Log rows of transactions below this id may have been purged: a cursor whose snapshot did
    -- not see one of them expires (core::feed::expired).
    purged_below xid8 NOT NULL,
    purged_at    timestamptz
);
COMMENT ON TABLE api_gateway.feed IS
    'Models whose change feed is enabled (feed_enable / feed_disable); retention of their change log.';

-- The log: at most one row per record, operation and transaction ('c' created, 'u' updated,
-- 'd' deleted). Keyed by transaction first: a poll reads the transactions after its cursor's
-- xmin with one range scan.
CREATE TABLE api_gateway.feed_log (
    feed_id bigint NOT NULL,
    xact    xid8   NOT NULL,
    res_id  bigint NOT NULL,
    op      "char" NOT NULL CHECK (op IN ('c', 'u', 'd')),
    PRIMARY KEY (feed_id, xact, res_id, op)
);
COMMENT ON TABLE api_gateway.feed_log IS
    'Change feed log: which records each transaction created, updated or deleted (written by the feed triggers).';

-- Purge horizons: at `at`, every transaction below `below` had ended. run_maintenance('feeds')
-- adds one per run and purges a feed's rows below the newest horizon older than its retention.
CREATE TABLE api_gateway.feed_horizon (
    at    timestamptz PRIMARY KEY,
    below xid8 NOT NULL
);

-- The capture trigger function: AFTER INSERT / UPDATE / DELETE FOR EACH STATEMENT with the
-- transition table, one INSERT ... SELECT of the ids per statement. TG_ARGV[0] is the feed id.
-- ON CONFLICT: a transaction that writes a record many times logs it once. Transactions never
-- conflict with each other (the key holds the transaction id), so writers never wait here.
-- SECURITY DEFINER: Odoo's role has no right on the api_gateway schema.
CREATE FUNCTION api_gateway._feed_capture() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO api_gateway.feed_log (feed_id, xact, res_id, op)
        SELECT TG_ARGV[0]::bigint, pg_current_xact_id(), n.id, 'c' FROM agw_feed_new n
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO api_gateway.feed_log (feed_id, xact, res_id, op)
        SELECT TG_ARGV[0]::bigint, pg_current_xact_id(), n.id, 'u' FROM agw_feed_new n
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO api_gateway.feed_log (feed_id, xact, res_id, op)
        SELECT TG_ARGV[0]::bigint, pg_current_xact_id(), o.id, 'd' FROM agw_feed_old o
        ON CONFLICT DO NOTHING;
    ELSE
        -- TRUNCATE names no record: every cursor taken before it commits expires (410), so
        -- its clients read everything again rather than miss the deletions.
        UPDATE api_gateway.feed f
           SET purged_below = greatest(f.purged_below, (pg_current_xact_id()::text::numeric + 1)::text::xid8),
               purged_at = now()
         WHERE f.id = TG_ARGV[0]::bigint;
    END IF;
    RETURN NULL;
END;
$$;

-- The feed triggers a table should have: (name, event, REFERENCING clause).
CREATE FUNCTION api_gateway._feed_triggers() RETURNS TABLE (name text, event text, ref text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    VALUES ('api_gateway_feed_insert', 'INSERT', 'REFERENCING NEW TABLE AS agw_feed_new'),
           ('api_gateway_feed_update', 'UPDATE', 'REFERENCING NEW TABLE AS agw_feed_new'),
           ('api_gateway_feed_delete', 'DELETE', 'REFERENCING OLD TABLE AS agw_feed_old'),
           ('api_gateway_feed_truncate', 'TRUNCATE', '');
$$;

-- Whether `tbl` has every feed trigger, enabled, for feed `feed_id` (a disabled or missing one
-- means writes may have gone unlogged: the feed refuses to answer rather than skip them).
CREATE FUNCTION api_gateway._feed_intact(tbl text, feed_id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*) = 4
      FROM pg_trigger t
     WHERE t.tgrelid = to_regclass(format('public.%I', tbl))
       AND t.tgname IN (SELECT name FROM api_gateway._feed_triggers())
       AND t.tgfoid = 'api_gateway._feed_capture()'::regprocedure
       AND t.tgenabled <> 'D'
       AND t.tgargs = convert_to(feed_id::text, 'UTF8') || '\x00'::bytea;
$$;

-- Installs (or, with feed_id NULL, removes) the feed triggers on `tbl`. CREATE TRIGGER waits for
-- the table's running writers (SHARE ROW EXCLUSIVE), at most webhook_settings.ddl_lock_timeout.
CREATE FUNCTION api_gateway._feed_sync(tbl text, feed_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel regclass := to_regclass(format('public.%I', tbl));
    trg record;
    wait interval;
BEGIN
    IF rel IS NULL THEN
        RETURN;
    END IF;
    SELECT s.ddl_lock_timeout INTO wait FROM api_gateway.webhook_settings s;
    PERFORM set_config('lock_timeout', (extract(epoch FROM coalesce(wait, interval '2 seconds')) * 1000)::bigint::text, true);
    FOR trg IN SELECT * FROM api_gateway._feed_triggers() LOOP
        BEGIN
            IF feed_id IS NULL THEN
                EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', trg.name, rel);
            ELSE
                EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._feed_capture(%L)',
                               trg.name, trg.event, rel, trg.ref, feed_id::text);
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE EXCEPTION 'could not lock table % within % to change the change feed trigger', rel, wait
                USING ERRCODE = '55P03',
                      HINT = 'a long transaction is using the table; retry, or raise api_gateway.webhook_settings.ddl_lock_timeout';
        END;
    END LOOP;
END;
$$;

-- `feed_enable(model, retention)`: start logging the model's changes (or change the retention
-- of an enabled feed; or repair one whose triggers were dropped or disabled, which expires its
-- cursors). Returns the feed as JSON.
CREATE FUNCTION api_gateway.feed_enable(model text, retention interval DEFAULT '7 days') RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text := btrim(model);
    tbl text;
    f api_gateway.feed;
BEGIN
    IF m IS NULL OR m !~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$' THEN
        RAISE EXCEPTION 'invalid model name "%"', left(model, 100) USING ERRCODE = '22023';
    END IF;
    IF retention IS NULL OR retention < interval '1 hour' OR retention > interval '3650 days' THEN
        RAISE EXCEPTION 'invalid retention %: from 1 hour to 3650 days', retention USING ERRCODE = '22023';
    END IF;
    IF to_regclass('public.ir_model') IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM public.ir_model im WHERE im.model = m) THEN
            RAISE EXCEPTION 'unknown model "%"', m USING ERRCODE = '42P01';
        END IF;
    END IF;
    tbl := replace(m, '.', '_');
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = to_regclass(format('public.%I', tbl)) AND a.attname = 'id' AND NOT a.attisdropped)
       OR (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(format('public.%I', tbl))) <> 'r' THEN
        RAISE EXCEPTION 'model "%" has no table public.% with an id column', m, tbl USING ERRCODE = '42P01';
    END IF;
    SELECT * INTO f FROM api_gateway.feed x WHERE x.model = m FOR UPDATE;
    IF FOUND AND f.table_name = tbl AND api_gateway._feed_intact(tbl, f.id) THEN
        UPDATE api_gateway.feed x SET retention = feed_enable.retention WHERE x.model = m RETURNING * INTO f;
    ELSE
        IF FOUND THEN
            DELETE FROM api_gateway.feed_log l WHERE l.feed_id = f.id;
            DELETE FROM api_gateway.feed x WHERE x.model = m;
        END IF;
        INSERT INTO api_gateway.feed (model, table_name, id, retention, purged_below)
        VALUES (m, tbl, (('x' || left(replace(gen_random_uuid()::text, '-', ''), 16))::bit(64)::bigint & 9223372036854775807),
                feed_enable.retention, pg_snapshot_xmin(pg_current_snapshot()))
        RETURNING * INTO f;
        PERFORM api_gateway._feed_sync(tbl, f.id);
    END IF;
    RETURN jsonb_build_object('model', f.model, 'table', f.table_name, 'retention', f.retention::text,
                              'enabled_at', f.enabled_at);
END;
$$;

-- `feed_disable(model)`: stop logging, forget the log; the feed's cursors expire. True when the
-- model had a feed.
CREATE FUNCTION api_gateway.feed_disable(model text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f api_gateway.feed;
BEGIN
    DELETE FROM api_gateway.feed x WHERE x.model = btrim(feed_disable.model) RETURNING * INTO f;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM api_gateway._feed_sync(f.table_name, NULL);
    DELETE FROM api_gateway.feed_log l WHERE l.feed_id = f.id;
    RETURN true;
END;
$$;

-- Maintenance (run_maintenance('feeds')): note a horizon, then drop each feed's log rows of
-- transactions that ended more than its retention ago, and the rows no feed owns (triggers
-- restored from a dump before their feed was enabled again). Returns the rows deleted.
CREATE FUNCTION api_gateway._feed_purge() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f record;
    horizon xid8;
    n bigint;
    total bigint := 0;
BEGIN
    -- The snapshot first, the time after it: every transaction below xmin ended before `at`.
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    INSERT INTO api_gateway.feed_horizon (at, below) VALUES (clock_timestamp(), horizon) ON CONFLICT DO NOTHING;
    FOR f IN SELECT x.id, x.retention, x.purged_below FROM api_gateway.feed x LOOP
        SELECT h.below INTO horizon FROM api_gateway.feed_horizon h
         WHERE h.at <= now() - f.retention ORDER BY h.at DESC LIMIT 1;
        CONTINUE WHEN horizon IS NULL OR horizon <= f.purged_below;
        DELETE FROM api_gateway.feed_log l WHERE l.feed_id = f.id AND l.xact < horizon;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        UPDATE api_gateway.feed x SET purged_below = horizon, purged_at = now() WHERE x.id = f.id;
    END LOOP;
    DELETE FROM api_gateway.feed_log l WHERE NOT EXISTS (SELECT 1 FROM api_gateway.feed x WHERE x.id = l.feed_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    -- Horizons: keep those a feed may still need (the newest one older than the longest
    -- retention, and every later one).
    DELETE FROM api_gateway.feed_horizon h
     WHERE h.at < (SELECT max(g.at) FROM api_gateway.feed_horizon g
                    WHERE g.at <= now() - coalesce((SELECT max(x.retention) FROM api_gateway.feed x), interval '0'));
    RETURN total;
END;
$$;

