-- Webhooks: configuration (api_gateway.webhook), capture by statement-level triggers on the
-- watched Odoo tables into a WAL-logged outbox (api_gateway.webhook_job) in the writer's own
-- transaction, and the bookkeeping functions the delivery worker of `api-gateway` calls.
-- docs/webhooks.md explains the whole flow, the payloads, the locks and the failure modes.

-- One row of delivery settings (the worker reads them on every cycle).
CREATE TABLE api_gateway.webhook_settings (
    singleton             boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Deliver to loopback and private addresses (RFC 1918, unique-local, CGNAT). Link-local and
    -- cloud metadata addresses are refused whatever this says.
    allow_private_targets boolean NOT NULL DEFAULT false,
    -- Seconds to wait before retry 1, 2, ...; NULL: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    -- Attempts in all: one more than the schedule has steps. Each wait gets +-10 % jitter.
    retry_schedule_s      integer[] CHECK (retry_schedule_s IS NULL OR (
                              cardinality(retry_schedule_s) BETWEEN 1 AND 30
                              AND array_position(retry_schedule_s, NULL) IS NULL
                              AND 0 <= ALL (retry_schedule_s) AND 604800 >= ALL (retry_schedule_s))),
    -- A claimed job is leased for the webhook's timeout plus this margin: if the worker dies,
    -- another worker (or the same one restarted) takes the job again once the lease is over.
    lease_margin          interval NOT NULL DEFAULT '30 seconds'
                          CHECK (lease_margin BETWEEN '0 seconds' AND '1 hour'),
    -- Default age of delivered and dead jobs removed by purge_webhook_jobs().
    retention             interval NOT NULL DEFAULT '14 days' CHECK (retention >= '0 seconds'),
    -- How long saving a webhook may wait for the lock that installs its trigger on the Odoo
    -- table before failing (so it never queues behind a long transaction, blocking writers).
    ddl_lock_timeout      interval NOT NULL DEFAULT '2 seconds'
                          CHECK (ddl_lock_timeout BETWEEN '1 millisecond' AND '10 minutes'),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE api_gateway.webhook_settings IS
    'Webhook delivery settings (one row): private targets allowed, retry schedule, lease margin, retention, DDL lock timeout.';

CREATE FUNCTION api_gateway._webhook_settings_singleton() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- pg_restore replays the dumped row after CREATE EXTENSION inserted the default one.
    DELETE FROM api_gateway.webhook_settings;
    RETURN NEW;
END;
$$;
CREATE TRIGGER webhook_settings_singleton BEFORE INSERT ON api_gateway.webhook_settings
    FOR EACH ROW EXECUTE FUNCTION api_gateway._webhook_settings_singleton();
CREATE TRIGGER webhook_settings_updated_at BEFORE UPDATE ON api_gateway.webhook_settings
    FOR EACH ROW EXECUTE FUNCTION api_gateway._touch_updated_at();
INSERT INTO api_gateway.webhook_settings DEFAULT VALUES;

-- The webhooks. A DBA inserts, updates or deletes rows; the triggers below validate them,
-- compile the domain and install or remove the capture triggers on the model's table.
CREATE SEQUENCE api_gateway.webhook_id_seq AS integer;
CREATE TABLE api_gateway.webhook (
    id              integer PRIMARY KEY DEFAULT nextval('api_gateway.webhook_id_seq'),
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    model           text NOT NULL,
    on_create       boolean NOT NULL DEFAULT true,
    on_write        boolean NOT NULL DEFAULT true,
    on_unlink       boolean NOT NULL DEFAULT true,
    url             text NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}',
    -- whsec_ + base64 of 32 random bytes when not given; read it with webhook_secret(id).
    secret          text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    fields          text[],
    domain          text,
    timeout         interval NOT NULL DEFAULT '10 seconds'
                    CHECK (timeout BETWEEN '100 milliseconds' AND '5 minutes'),
    -- Derived when the row is saved (never set them by hand; they are recomputed):
    table_name      text NOT NULL,
    payload_fields  text[] NOT NULL,
    watched_fields  text[] NOT NULL,
    -- The same as column numbers of the table (what capture reads; recomputed after ALTER TABLE).
    payload_attnums smallint[] NOT NULL,
    watched_attnums smallint[] NOT NULL,
    condition       text,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- The secret before the last rotation: deliveries are signed with it too until
    -- previous_secret_expires_at (set by the rotation; never set previous_secret by hand).
    previous_secret text,
    previous_secret_expires_at timestamptz,
    CHECK (on_create OR on_write OR on_unlink)
);
ALTER SEQUENCE api_gateway.webhook_id_seq OWNED BY api_gateway.webhook.id;
COMMENT ON TABLE api_gateway.webhook IS
    'Outbound webhooks: changes to model (create/write/unlink, optional domain filter) are captured by triggers and POSTed to url, signed per Standard Webhooks.';
CREATE INDEX webhook_table_name_idx ON api_gateway.webhook (table_name);

-- The outbox: one row per event and webhook, written by the capture trigger in the writer's
-- transaction. WAL-logged, so a crash loses nothing that committed. Kept small on purpose
-- (it is written on Odoo's hot path): `data` holds only what the event captured, as JSON text
-- without NULLs, and the payload is rendered from it when the job is delivered
-- (_webhook_payload). No CHECK constraint either: only this extension's functions write it.
CREATE SEQUENCE api_gateway.webhook_job_id_seq AS bigint;
CREATE TABLE api_gateway.webhook_job (
    id              bigint PRIMARY KEY DEFAULT nextval('api_gateway.webhook_job_id_seq'),
    -- The Standard Webhooks message id (header webhook-id), the same on every retry.
    event_id        uuid NOT NULL,
    webhook_id      integer NOT NULL,
    -- create, write or unlink
    action          text NOT NULL,
    record_id       integer,
    -- JSON text. create: the record's non-NULL payload values; write: {"r": record, "c":
    -- changed fields, "p": their previous values}; unlink: NULL.
    data            text,
    -- pending: not tried yet; failed: tried, will be retried; delivered; dead: gave up.
    state           text NOT NULL DEFAULT 'pending',
    -- Delivery attempts started (counted when a worker claims the job).
    attempts        integer NOT NULL DEFAULT 0,
    -- When the job may be claimed: the retry time, or the end of a worker's lease.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_by       text,
    last_status     integer,
    last_error      text,
    -- When the change was captured (the payload's timestamp).
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    -- The database session of the worker that leased the job (pid and start time, so that a
    -- reused pid does not count): when it is gone, the job is claimable at once.
    leased_pid      integer,
    leased_backend_start timestamptz
);
ALTER SEQUENCE api_gateway.webhook_job_id_seq OWNED BY api_gateway.webhook_job.id;
COMMENT ON TABLE api_gateway.webhook_job IS
    'Webhook outbox: one event per row (pending, failed = will retry, delivered, dead), claimed by workers with FOR UPDATE SKIP LOCKED.';
-- What workers claim: due jobs of one webhook, oldest first.
CREATE INDEX webhook_job_due_idx ON api_gateway.webhook_job (webhook_id, next_attempt_at)
    WHERE state IN ('pending', 'failed');
-- One record's undelivered events of one webhook, in order: what capture merges into (the
-- pending event of the same transaction) and what holds later events of the record back.
CREATE INDEX webhook_job_record_idx ON api_gateway.webhook_job (webhook_id, record_id, id)
    WHERE state IN ('pending', 'failed');
-- Leased jobs (few: those in flight), checked for workers whose session ended.
CREATE INDEX webhook_job_leased_idx ON api_gateway.webhook_job (leased_pid)
    WHERE leased_pid IS NOT NULL AND state IN ('pending', 'failed');
-- What purge_webhook_jobs() removes.
CREATE INDEX webhook_job_done_idx ON api_gateway.webhook_job (updated_at)
    WHERE state IN ('delivered', 'dead');

-- The body POSTed for a job: {"event_id", "timestamp", "action", "model", "record"} plus
-- "changed" and "previous" for writes. `record` has every payload field of the webhook (NULL
-- ones as null) for create and write, only {"id"} for unlink. The same job always renders the
-- same text (jsonb's canonical output), so retries send identical bodies.
CREATE FUNCTION api_gateway._webhook_payload(
    event_id uuid, created_at timestamptz, action text, model text, record_id integer,
    data text, payload_fields text[])
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
           'event_id', event_id,
           'timestamp', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'action', action,
           'model', model,
           'record', CASE WHEN action = 'unlink' THEN jsonb_build_object('id', record_id)
                          ELSE coalesce((SELECT jsonb_object_agg(f, NULL::jsonb) FROM unnest(payload_fields) AS f), '{}'::jsonb)
                               || coalesce(CASE WHEN action = 'write' THEN data::jsonb -> 'r' ELSE data::jsonb END, '{}'::jsonb)
                               || jsonb_build_object('id', record_id) END)
       || CASE WHEN action = 'write'
               THEN jsonb_build_object('changed', coalesce(data::jsonb -> 'c', '[]'::jsonb),
                                       'previous', coalesce(data::jsonb -> 'p', '{}'::jsonb))
               ELSE '{}'::jsonb END;

-- Operators' view of the outbox: `status` adds `in_flight` (leased by a worker right now).
CREATE VIEW api_gateway.webhook_queue AS
SELECT j.id,
       j.event_id,
       j.webhook_id,
       w.name AS webhook,
       w.model,
       j.action,
       j.record_id,
       CASE WHEN j.state IN ('pending', 'failed') AND j.leased_by IS NOT NULL AND j.next_attempt_at > now()
            THEN 'in_flight' ELSE j.state END AS status,
       j.state,
       j.attempts,
       j.next_attempt_at,
       j.leased_by,
       j.last_status,
       j.last_error,
       j.created_at,
       j.updated_at,
       j.delivered_at,
       api_gateway._webhook_payload(j.event_id, j.created_at, j.action, w.model, j.record_id, j.data, w.payload_fields) AS payload
  FROM api_gateway.webhook_job j
  LEFT JOIN api_gateway.webhook w ON w.id = j.webhook_id;

SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_settings', '');
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook', '');
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_id_seq', '');
-- Undelivered events survive a dump and restore; the history does not.
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_job', $$WHERE state IN ('pending', 'failed')$$);
SELECT pg_catalog.pg_extension_config_dump('api_gateway.webhook_job_id_seq', '');

-- The capture, in SQL: what api_gateway._webhook_capture() (below, the trigger function of
-- every watched table, in Rust) calls with its own trigger context for the cases it does not
-- write itself: tables with a webhook that has a domain, UPDATE and DELETE in a transaction
-- that already queued an event (the merges), an outbox of a shape it does not know. It
-- implements every case, and is the reference the Rust path is tested against.
--
-- AFTER ... FOR EACH STATEMENT with transition tables (agw_new, agw_old), so a statement
-- touching 10,000 rows is one call and one set-based statement per webhook. Rows are serialised by _webhook_row_json and
-- _webhook_write_json (Rust: column numbers in, JSON text out, no jsonb tree), which also
-- compares old and new rows for writes; a column dropped later is skipped, never an error.
-- The domain condition was compiled and tried when the webhook was saved.
--
-- One event per record, per webhook, per transaction. The first statement of a transaction
-- that queues anything inserts its events and marks the transaction (_webhook_mark_queued: the
-- backend remembers its transaction id; a savepoint rolled back after it only costs a lookup
-- that finds nothing). In a marked transaction, UPDATE and
-- DELETE merge into the pending event the same transaction already queued for the record
-- (found by webhook_job_record_idx, and written by this transaction: _webhook_own(xmin)):
-- create + write: the create, with the record as it is now (any UPDATE refreshes it, even one
-- changing no watched field); write + write: one write whose changed/previous cover both
-- (_webhook_merge; nothing left changed: no event); create + unlink: no event; write +
-- unlink: the unlink. A webhook merges into its pending event even for an event it does not
-- send and a record its domain no longer matches (a create-only webhook's create still gets
-- the values Odoo's flush writes right after the INSERT); that is why _webhook_sync installs
-- the UPDATE trigger for create-only webhooks and the DELETE trigger for every webhook.
-- INSERT never merges: a record inserted again after its unlink in the same transaction (raw
-- SQL reusing an id) gets a create after the unlink.
--
-- No NOTIFY: PostgreSQL serialises the commits of notifying transactions (a global lock held
-- through the WAL flush), which would cost every writer of a watched table its group commit.
-- Idle workers poll (webhook_next_due) instead.
--
-- SECURITY DEFINER: Odoo's role has no right on the api_gateway schema; `public` (after
-- pg_catalog) is on the path for the Odoo tables a compiled domain names, as for the data
-- functions. Webhooks without a domain are served by static statements (planned once per
-- backend); webhooks with one by an EXECUTE each, with the domain's condition spliced in (it
-- was generated by _webhook_condition, its values are quoted literals; `t` is the row it is
-- about: the new row, or the old one for unlink). The trigger has the argument 'filtered' only
-- when such webhooks exist, so the common case runs no loop at all.
CREATE FUNCTION api_gateway._webhook_capture_sql() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    _w record;
    _ts timestamptz := clock_timestamp();
    -- Whether this transaction queued an event already (else there is nothing to merge into).
    _queued boolean := api_gateway._webhook_queued();
    _n bigint := 0;
    _total bigint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), w.id, 'create', t.id, api_gateway._webhook_row_json(t, w.payload_attnums), _ts
          FROM (SELECT h.id, h.payload_attnums FROM api_gateway.webhook h
                 WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_create AND h.condition IS NULL) w
         CROSS JOIN agw_new t;
        GET DIAGNOSTICS _total = ROW_COUNT;
    ELSIF TG_OP = 'UPDATE' AND NOT _queued THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), c.wid, 'write', c.id, c.d, _ts
          FROM (SELECT w.id AS wid, t.id, api_gateway._webhook_write_json(t, o, w.payload_attnums, w.watched_attnums) AS d
                  FROM (SELECT h.id, h.payload_attnums, h.watched_attnums FROM api_gateway.webhook h
                         WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_write AND h.condition IS NULL) w
                 CROSS JOIN agw_new t
                  JOIN agw_old o ON o.id = t.id) c
         WHERE c.d IS NOT NULL;
        GET DIAGNOSTICS _total = ROW_COUNT;
    ELSIF TG_OP = 'UPDATE' THEN
        MERGE INTO api_gateway.webhook_job j
        USING (SELECT s.wid, s.id, s.d, s.wants, p.id AS pid,
                      CASE WHEN p.id IS NOT NULL THEN
                           api_gateway._webhook_merge(p.action, p.data, s.d,
                               CASE WHEN s.d IS NULL THEN api_gateway._webhook_row_json(s.t, s.attnums) END, TG_RELID)
                      END AS m
                 FROM (SELECT w.id AS wid, w.on_write AS wants, w.payload_attnums AS attnums, t.id, t,
                              CASE WHEN w.on_write THEN api_gateway._webhook_write_json(t, o, w.payload_attnums, w.watched_attnums) END AS d
                         FROM (SELECT h.id, h.on_write, h.payload_attnums, h.watched_attnums FROM api_gateway.webhook h
                                WHERE h.table_name = TG_TABLE_NAME AND h.active AND (h.on_write OR h.on_create)
                                  AND h.condition IS NULL) w
                        CROSS JOIN agw_new t
                         JOIN agw_old o ON o.id = t.id) s
                 LEFT JOIN LATERAL (
                      SELECT q.id, q.action, q.data FROM api_gateway.webhook_job q
                       WHERE q.webhook_id = s.wid AND q.record_id = s.id AND q.state IN ('pending', 'failed')
                         AND q.action <> 'unlink' AND api_gateway._webhook_own(q.xmin)
                       ORDER BY q.id DESC LIMIT 1) p ON true) x
           ON j.id = x.pid
        WHEN MATCHED AND x.m IS NULL THEN DELETE
        WHEN MATCHED THEN UPDATE SET data = x.m, created_at = _ts, updated_at = now()
        WHEN NOT MATCHED AND x.d IS NOT NULL THEN
            INSERT (event_id, webhook_id, action, record_id, data, created_at)
            VALUES (gen_random_uuid(), x.wid, 'write', x.id, x.d, _ts);
    ELSIF NOT _queued THEN
        INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
        SELECT gen_random_uuid(), w.id, 'unlink', t.id, NULL, _ts
          FROM (SELECT h.id FROM api_gateway.webhook h
                 WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.on_unlink AND h.condition IS NULL) w
         CROSS JOIN agw_old t;
        GET DIAGNOSTICS _total = ROW_COUNT;
    ELSE
        MERGE INTO api_gateway.webhook_job j
        USING (SELECT w.id AS wid, w.on_unlink AS wants, t.id, p.id AS pid, p.action AS pact
                 FROM (SELECT h.id, h.on_unlink FROM api_gateway.webhook h
                        WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.condition IS NULL) w
                CROSS JOIN agw_old t
                 LEFT JOIN LATERAL (
                      SELECT q.id, q.action FROM api_gateway.webhook_job q
                       WHERE q.webhook_id = w.id AND q.record_id = t.id AND q.state IN ('pending', 'failed')
                         AND q.action <> 'unlink' AND api_gateway._webhook_own(q.xmin)
                       ORDER BY q.id DESC LIMIT 1) p ON true) x
           ON j.id = x.pid
        WHEN MATCHED AND x.pact = 'create' THEN DELETE
        WHEN MATCHED AND x.wants THEN UPDATE SET action = 'unlink', data = NULL, created_at = _ts, updated_at = now()
        WHEN NOT MATCHED AND x.wants THEN
            INSERT (event_id, webhook_id, action, record_id, data, created_at)
            VALUES (gen_random_uuid(), x.wid, 'unlink', x.id, NULL, _ts);
    END IF;
    -- Webhooks with a domain (the trigger's argument says there are some): one EXECUTE each.
    IF TG_NARGS > 0 THEN
        FOR _w IN
            SELECT h.id, h.payload_attnums, h.watched_attnums, h.condition, h.on_create, h.on_write, h.on_unlink
              FROM api_gateway.webhook h
             WHERE h.table_name = TG_TABLE_NAME AND h.active AND h.condition IS NOT NULL
               AND CASE TG_OP WHEN 'INSERT' THEN h.on_create
                              WHEN 'UPDATE' THEN h.on_write OR (h.on_create AND _queued)
                              ELSE h.on_unlink OR _queued END
        LOOP
            IF TG_OP = 'INSERT' THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''create'', t.id, api_gateway._webhook_row_json(t, $2), $3
                       FROM agw_new t WHERE %s', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts;
            ELSIF TG_OP = 'UPDATE' AND NOT _queued THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''write'', c.id, c.d, $3
                       FROM (SELECT t.id, api_gateway._webhook_write_json(t, o, $2, $4) AS d
                               FROM agw_new t JOIN agw_old o ON o.id = t.id WHERE %s) c
                      WHERE c.d IS NOT NULL', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts, _w.watched_attnums;
            ELSIF TG_OP = 'UPDATE' THEN
                -- Rows the domain matches now, and rows with a pending event of this transaction.
                EXECUTE format(
                    'MERGE INTO api_gateway.webhook_job j
                     USING (SELECT s.id, s.d, s.hit, p.id AS pid,
                                   CASE WHEN p.id IS NOT NULL THEN
                                        api_gateway._webhook_merge(p.action, p.data, s.d,
                                            CASE WHEN s.d IS NULL THEN api_gateway._webhook_row_json(s.t, $2) END, $5)
                                   END AS m
                              FROM (SELECT t.id, t, h.hit,
                                           CASE WHEN $6 AND h.hit THEN api_gateway._webhook_write_json(t, o, $2, $4) END AS d
                                      FROM agw_new t JOIN agw_old o ON o.id = t.id
                                     CROSS JOIN LATERAL (SELECT coalesce(%s, false) AS hit) h) s
                              LEFT JOIN LATERAL (
                                   SELECT q.id, q.action, q.data FROM api_gateway.webhook_job q
                                    WHERE q.webhook_id = $1 AND q.record_id = s.id AND q.state IN (''pending'', ''failed'')
                                      AND q.action <> ''unlink'' AND api_gateway._webhook_own(q.xmin)
                                    ORDER BY q.id DESC LIMIT 1) p ON true
                             WHERE s.hit OR p.id IS NOT NULL) x
                        ON j.id = x.pid
                     WHEN MATCHED AND x.m IS NULL THEN DELETE
                     WHEN MATCHED THEN UPDATE SET data = x.m, created_at = $3, updated_at = now()
                     WHEN NOT MATCHED AND x.d IS NOT NULL THEN
                         INSERT (event_id, webhook_id, action, record_id, data, created_at)
                         VALUES (gen_random_uuid(), $1, ''write'', x.id, x.d, $3)', _w.condition)
                  USING _w.id, _w.payload_attnums, _ts, _w.watched_attnums, TG_RELID, _w.on_write;
            ELSIF NOT _queued THEN
                EXECUTE format(
                    'INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, data, created_at)
                     SELECT gen_random_uuid(), $1, ''unlink'', t.id, NULL, $2
                       FROM agw_old t WHERE %s', _w.condition)
                  USING _w.id, _ts;
            ELSE
                EXECUTE format(
                    'MERGE INTO api_gateway.webhook_job j
                     USING (SELECT t.id, h.hit, p.id AS pid, p.action AS pact
                              FROM agw_old t
                             CROSS JOIN LATERAL (SELECT coalesce(%s, false) AS hit) h
                              LEFT JOIN LATERAL (
                                   SELECT q.id, q.action FROM api_gateway.webhook_job q
                                    WHERE q.webhook_id = $1 AND q.record_id = t.id AND q.state IN (''pending'', ''failed'')
                                      AND q.action <> ''unlink'' AND api_gateway._webhook_own(q.xmin)
                                    ORDER BY q.id DESC LIMIT 1) p ON true
                             WHERE h.hit OR p.id IS NOT NULL) x
                        ON j.id = x.pid
                     WHEN MATCHED AND x.pact = ''create'' THEN DELETE
                     WHEN MATCHED AND $3 THEN UPDATE SET action = ''unlink'', data = NULL, created_at = $2, updated_at = now()
                     WHEN NOT MATCHED AND $3 AND x.hit THEN
                         INSERT (event_id, webhook_id, action, record_id, data, created_at)
                         VALUES (gen_random_uuid(), $1, ''unlink'', x.id, NULL, $2)', _w.condition)
                  USING _w.id, _ts, _w.on_unlink;
            END IF;
            GET DIAGNOSTICS _n = ROW_COUNT;
            _total := _total + _n;
        END LOOP;
    END IF;
    IF _total > 0 AND NOT _queued THEN
        -- Later statements of this transaction merge into what this one queued.
        PERFORM api_gateway._webhook_mark_queued();
    END IF;
    RETURN NULL;
END;
$$;

-- The trigger function of every watched table (src/api/webhook_capture.rs), the one entry
-- point of capture. It writes the common cases itself, without PL/pgSQL, SPI or a GUC change
-- (docs/webhooks.md, "What capture costs"): INSERT, and the first UPDATE or DELETE of a
-- transaction, for tables whose active webhooks have no domain. Their webhooks come from a
-- per-backend cache (_webhook_capture_config, dropped by the relation cache invalidation that
-- _webhook_apply sends with every change of a webhook); the events are serialised as
-- _webhook_row_json and _webhook_write_json do and written into the outbox as the INSERTs of
-- _webhook_capture_sql would write them (same columns, defaults, index entries, WAL, in the
-- writer's (sub)transaction). Everything else is delegated to _webhook_capture_sql().
CREATE FUNCTION api_gateway._webhook_capture() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', '_webhook_capture_wrapper';

-- What _webhook_capture() keeps per backend for the watched table `tbl`: the oids it needs and
-- the table's active webhooks without a domain (JSON text). SECURITY DEFINER: the writer has
-- no right on this schema. STABLE: the caller reads it with the latest snapshot.
CREATE FUNCTION api_gateway._webhook_capture_config(tbl text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN json_build_object(
           'job', 'api_gateway.webhook_job'::regclass::oid::bigint,
           'seq', 'api_gateway.webhook_job_id_seq'::regclass::oid::bigint,
           'slow', 'api_gateway._webhook_capture_sql()'::regprocedure::oid::bigint,
           'webhook', 'api_gateway.webhook'::regclass::oid::bigint,
           'hooks', coalesce((SELECT json_agg(json_build_object('id', h.id, 'c', h.on_create, 'w', h.on_write,
                                                                'u', h.on_unlink, 'p', h.payload_attnums,
                                                                'd', h.watched_attnums) ORDER BY h.id)
                                FROM api_gateway.webhook h
                               WHERE h.table_name = tbl AND h.active AND h.condition IS NULL), '[]'::json))::text;

-- Installs the capture triggers the active webhooks of `tbl` need and removes the others.
-- CREATE TRIGGER takes SHARE ROW EXCLUSIVE on the table (it waits for running writers and
-- blocks new ones until the transaction that saved the webhook ends); DROP TRIGGER takes
-- ACCESS EXCLUSIVE. Both wait at most settings.ddl_lock_timeout. A trigger that cannot be
-- dropped in time is left in place (it captures nothing for inactive webhooks) with a NOTICE;
-- one that cannot be created fails the statement that saved the webhook with 55P03.
CREATE FUNCTION api_gateway._webhook_sync(tbl text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    rel regclass;
    ev record;
    want boolean;
    filtered boolean;
    have text;
    args text;
    wait interval;
BEGIN
    IF tbl IS NULL THEN
        RETURN;
    END IF;
    rel := to_regclass(format('public.%I', tbl));
    IF rel IS NULL THEN
        RETURN;
    END IF;
    SELECT s.ddl_lock_timeout INTO wait FROM api_gateway.webhook_settings s;
    PERFORM set_config('lock_timeout', (extract(epoch FROM coalesce(wait, interval '2 seconds')) * 1000)::bigint::text, true);
    FOR ev IN
        SELECT * FROM (VALUES ('INSERT', 'api_gateway_webhook_insert', 'NEW TABLE AS agw_new'),
                              ('UPDATE', 'api_gateway_webhook_update', 'OLD TABLE AS agw_old NEW TABLE AS agw_new'),
                              ('DELETE', 'api_gateway_webhook_delete', 'OLD TABLE AS agw_old')) AS v(op, name, ref)
    LOOP
        SELECT count(*) > 0, coalesce(bool_or(h.condition IS NOT NULL), false) INTO want, filtered
          FROM api_gateway.webhook h
         WHERE h.table_name = tbl AND h.active
           -- UPDATE and DELETE also merge into the events of creates (and writes) of the
           -- same transaction (see _webhook_capture).
           AND CASE ev.op WHEN 'INSERT' THEN h.on_create WHEN 'UPDATE' THEN h.on_create OR h.on_write ELSE true END;
        args := CASE WHEN filtered THEN '''filtered''' ELSE '' END;
        -- What is installed: NULL (nothing), or its argument as in `args`.
        have := NULL;
        SELECT CASE WHEN t.tgnargs > 0 THEN '''filtered''' ELSE '' END INTO have
          FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = ev.name;
        IF want AND have IS DISTINCT FROM args THEN
            BEGIN
                EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._webhook_capture(%s)',
                               ev.name, ev.op, rel, ev.ref, args);
            EXCEPTION WHEN lock_not_available THEN
                RAISE EXCEPTION 'could not lock table % within % to install the webhook capture trigger', rel, wait
                    USING ERRCODE = '55P03',
                          HINT = 'a long transaction is using the table; retry, or raise api_gateway.webhook_settings.ddl_lock_timeout';
            END;
        ELSIF have IS NOT NULL AND NOT want THEN
            BEGIN
                EXECUTE format('DROP TRIGGER %I ON %s', ev.name, rel);
            EXCEPTION WHEN lock_not_available THEN
                RAISE NOTICE 'webhook capture trigger % on % left in place (table busy); it captures nothing and is removed by the next change of a webhook on this table',
                    ev.name, rel;
            END;
        END IF;
    END LOOP;
END;
$$;

-- BEFORE INSERT OR UPDATE on api_gateway.webhook: validate the row and derive the compiled
-- state (table, payload fields, watched fields, domain condition), so that capture cannot fail.
CREATE FUNCTION api_gateway._webhook_prepare() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    port text;
    recompile boolean;
BEGIN
    NEW.name := btrim(NEW.name);
    NEW.model := btrim(NEW.model);
    NEW.url := btrim(NEW.url);
    NEW.headers := coalesce(NEW.headers, '{}'::jsonb);
    IF NEW.secret IS NULL THEN
        NEW.secret := api_gateway._new_webhook_secret();
    ELSIF NOT api_gateway._webhook_secret_valid(NEW.secret) THEN
        RAISE EXCEPTION 'invalid webhook secret: expected whsec_ followed by the base64 of 24 to 64 random bytes'
            USING ERRCODE = '22023', COLUMN = 'secret', HINT = 'leave secret NULL to have one generated';
    END IF;
    -- Rotation: the previous secret stays valid (deliveries carry both signatures) until
    -- previous_secret_expires_at: 24 hours unless the same UPDATE sets it (rotate_webhook_secret
    -- does). previous_secret itself is never taken from the statement.
    IF TG_OP = 'INSERT' THEN
        NEW.previous_secret := NULL;
        NEW.previous_secret_expires_at := NULL;
    ELSIF NEW.secret IS DISTINCT FROM OLD.secret THEN
        NEW.previous_secret := OLD.secret;
        IF NEW.previous_secret_expires_at IS NOT DISTINCT FROM OLD.previous_secret_expires_at THEN
            NEW.previous_secret_expires_at := now() + interval '24 hours';
        END IF;
    ELSE
        NEW.previous_secret := OLD.previous_secret;
    END IF;
    IF NEW.previous_secret IS NULL OR NEW.previous_secret_expires_at IS NULL OR NEW.previous_secret_expires_at <= now() THEN
        NEW.previous_secret := NULL;
        NEW.previous_secret_expires_at := NULL;
    END IF;
    IF length(NEW.url) > 2048 OR NEW.url !~* '^https?://[^\s/?#@]+([/?#]\S*)?$' THEN
        RAISE EXCEPTION 'invalid webhook url: expected http(s)://host[:port][/path], without credentials or spaces'
            USING ERRCODE = '22023', COLUMN = 'url', HINT = 'put credentials in headers, e.g. {"Authorization": "Bearer ..."}';
    END IF;
    -- The port, when given: digits, 1 to 65535 (an IPv6 literal's colons are inside brackets).
    port := substring(NEW.url from '^[A-Za-z]+://(?:\[[^]]*\]|[^:/?#\[]*)(:[^/?#]*)?');
    IF port IS NOT NULL AND (CASE WHEN port ~ '^:[0-9]{1,5}$' THEN substr(port, 2)::integer NOT BETWEEN 1 AND 65535 ELSE true END) THEN
        RAISE EXCEPTION 'invalid webhook url: port "%" is not a number from 1 to 65535', left(substr(port, 2), 20)
            USING ERRCODE = '22023', COLUMN = 'url';
    END IF;
    IF jsonb_typeof(NEW.headers) <> 'object' THEN
        RAISE EXCEPTION 'invalid webhook headers: expected a JSON object of header names to string values'
            USING ERRCODE = '22023', COLUMN = 'headers';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(NEW.headers) LOOP
        IF k !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]{1,100}$' THEN
            RAISE EXCEPTION 'invalid webhook header name "%"', left(k, 100) USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
        IF lower(k) IN ('webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type') THEN
            RAISE EXCEPTION 'webhook header "%" is set by the gateway and cannot be configured', k
                USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
        -- Hop-by-hop and framing headers (RFC 9110 sections 7.6.1, 7.2, 8.6, 10.1.1, 11.7.2;
        -- RFC 9112 section 6.1): the HTTP client sets or refuses them; configured, they would
        -- break or smuggle the request.
        IF lower(k) IN ('connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer',
                        'upgrade', 'expect', 'proxy-authorization', 'proxy-authenticate', 'host', 'content-length') THEN
            RAISE EXCEPTION 'webhook header "%" is a hop-by-hop or framing header and cannot be configured', k
                USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
        IF jsonb_typeof(v) <> 'string' OR (v #>> '{}') ~ '[\r\n\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' OR length(v #>> '{}') > 8192 THEN
            RAISE EXCEPTION 'invalid value for webhook header "%": expected a string without control characters', k
                USING ERRCODE = '22023', COLUMN = 'headers';
        END IF;
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        NEW.created_at := OLD.created_at;
        NEW.updated_at := now();
        recompile := NEW.model IS DISTINCT FROM OLD.model OR NEW.fields IS DISTINCT FROM OLD.fields
                     OR NEW.domain IS DISTINCT FROM OLD.domain OR (NEW.active AND NOT OLD.active);
    ELSE
        recompile := true;
    END IF;
    IF NOT recompile THEN
        NEW.table_name := OLD.table_name;
        NEW.payload_fields := OLD.payload_fields;
        NEW.watched_fields := OLD.watched_fields;
        NEW.condition := OLD.condition;
        -- Always from the table as it is now (see _webhook_after_alter_table).
        NEW.payload_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.payload_fields);
        NEW.watched_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.watched_fields);
        RETURN NEW;
    END IF;
    -- Nested: PL/pgSQL plans a whole condition at once, and public.ir_model may not exist
    -- (Odoo installed after the extension).
    IF to_regclass('public.ir_model') IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM public.ir_model) THEN
            -- Odoo's metadata is not there yet: this is pg_restore replaying the webhook rows
            -- before public's data. Keep the row, inactive, to be re-enabled after the restore.
            NEW.active := false;
            NEW.disabled_reason := 'saved while Odoo''s ir_model was empty (a restore?): re-enable with UPDATE api_gateway.webhook SET active = true';
            NEW.table_name := replace(NEW.model, '.', '_');
            NEW.payload_fields := '{id}';
            NEW.watched_fields := '{}';
            NEW.payload_attnums := '{}';
            NEW.watched_attnums := '{}';
            NEW.condition := NULL;
            RETURN NEW;
        END IF;
    END IF;
    NEW.payload_fields := api_gateway._webhook_fields(NEW.model, NEW.fields);
    NEW.condition := api_gateway._webhook_condition(NEW.model, NEW.domain);
    NEW.table_name := replace(NEW.model, '.', '_');
    -- Odoo stamps write_date/write_uid on every write: they alone never make a write fire.
    NEW.watched_fields := ARRAY(SELECT f FROM unnest(NEW.payload_fields) AS f
                                 WHERE f NOT IN ('id', 'write_date', 'write_uid'));
    NEW.payload_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.payload_fields);
    NEW.watched_attnums := api_gateway._webhook_attnums(NEW.table_name, NEW.watched_fields);
    IF NEW.active THEN
        NEW.disabled_reason := NULL;
    END IF;
    RETURN NEW;
END;
$$;

-- AFTER INSERT, UPDATE or DELETE on api_gateway.webhook: invalidate the capture caches,
-- adjust the capture triggers, drop the jobs of a deleted webhook, wake the workers.
CREATE FUNCTION api_gateway._webhook_apply() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Every backend's capture cache (_webhook_capture) is dropped when this commits.
    PERFORM api_gateway._webhook_invalidate(TG_RELID);
    IF TG_OP = 'DELETE' THEN
        DELETE FROM api_gateway.webhook_job WHERE webhook_id = OLD.id;
        PERFORM api_gateway._webhook_sync(OLD.table_name);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.table_name IS DISTINCT FROM NEW.table_name THEN
        PERFORM api_gateway._webhook_sync(OLD.table_name);
    END IF;
    IF TG_OP = 'INSERT' OR OLD.active IS DISTINCT FROM NEW.active OR OLD.table_name IS DISTINCT FROM NEW.table_name
       OR OLD.on_create IS DISTINCT FROM NEW.on_create OR OLD.on_write IS DISTINCT FROM NEW.on_write
       OR OLD.on_unlink IS DISTINCT FROM NEW.on_unlink OR (OLD.condition IS NULL) <> (NEW.condition IS NULL) THEN
        PERFORM api_gateway._webhook_sync(NEW.table_name);
    END IF;
    IF NEW.active THEN
        PERFORM pg_notify('api_gateway_webhook', '');
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER webhook_prepare BEFORE INSERT OR UPDATE ON api_gateway.webhook
    FOR EACH ROW EXECUTE FUNCTION api_gateway._webhook_prepare();
CREATE TRIGGER webhook_apply AFTER INSERT OR UPDATE OR DELETE ON api_gateway.webhook
    FOR EACH ROW EXECUTE FUNCTION api_gateway._webhook_apply();

-- The column numbers of public.<tbl> for the column names `names` (missing ones left out).
CREATE FUNCTION api_gateway._webhook_attnums(tbl text, names text[]) RETURNS smallint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}')
      FROM pg_attribute a
     WHERE a.attrelid = to_regclass(format('public.%I', tbl)) AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname::text = ANY (names);
$$;

-- After ALTER TABLE on a watched table (a module install adds columns, a migration renames or
-- drops one): recompute its webhooks' column numbers and re-try their domain condition. A
-- webhook whose condition no longer runs is deactivated with the reason and a WARNING rather
-- than making every later write to the table fail.
CREATE FUNCTION api_gateway._webhook_after_alter_table() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    w record;
BEGIN
    IF to_regclass('api_gateway.webhook') IS NULL THEN
        RETURN;
    END IF;
    -- Never in the way of Odoo's own DDL (module installs and upgrades): a problem here is a
    -- WARNING, not an error.
    BEGIN
        FOR w IN
            SELECT h.id, h.name, h.table_name, h.payload_fields, h.condition, h.active
              FROM api_gateway.webhook h
             WHERE to_regclass(format('public.%I', h.table_name)) IN (
                   SELECT c.objid FROM pg_event_trigger_ddl_commands() c WHERE c.classid = 'pg_class'::regclass)
        LOOP
            -- Saving the row again recomputes the column numbers from the table as it is now.
            UPDATE api_gateway.webhook h SET updated_at = now() WHERE h.id = w.id;
            IF w.active AND w.condition IS NOT NULL THEN
                BEGIN
                    EXECUTE format('SELECT 1 FROM public.%I t WHERE %s LIMIT 0', w.table_name, w.condition);
                EXCEPTION WHEN OTHERS THEN
                    RAISE WARNING 'webhook "%" deactivated: its domain no longer applies to table % (%)', w.name, w.table_name, SQLERRM;
                    UPDATE api_gateway.webhook h
                       SET active = false, disabled_reason = left('domain no longer applies after ALTER TABLE: ' || SQLERRM, 500)
                     WHERE h.id = w.id;
                END;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'api_gateway could not re-check its webhooks after ALTER TABLE: %', SQLERRM;
    END;
END;
$$;

CREATE EVENT TRIGGER api_gateway_webhook_alter_table ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION api_gateway._webhook_after_alter_table();

-- `webhook_secret(webhook_id)`: the signing secret receivers verify with.
CREATE FUNCTION api_gateway.webhook_secret(webhook_id integer) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT w.secret FROM api_gateway.webhook w WHERE w.id = webhook_id);

-- `rotate_webhook_secret(webhook_id, overlap)`: a new signing secret (returned); the current
-- one stays valid for `overlap` (24 hours by default; 0 ends it at once): until then every
-- delivery carries both signatures, `v1,<new> v1,<old>`, so receivers can switch to the new
-- secret without losing an event. NULL when there is no such webhook.
CREATE FUNCTION api_gateway.rotate_webhook_secret(webhook_id integer, overlap interval DEFAULT '24 hours')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_secret text;
BEGIN
    IF overlap IS NULL OR overlap < interval '0' OR overlap > interval '30 days' THEN
        RAISE EXCEPTION 'invalid overlap %: expected an interval from 0 to 30 days', overlap
            USING ERRCODE = '22023', COLUMN = 'overlap';
    END IF;
    -- NULL: the row's trigger generates the new secret and keeps the old one as previous;
    -- then the overlap (an end at or before now drops the previous secret).
    UPDATE api_gateway.webhook w SET secret = NULL
     WHERE w.id = rotate_webhook_secret.webhook_id
    RETURNING w.secret INTO new_secret;
    UPDATE api_gateway.webhook w SET previous_secret_expires_at = now() + overlap
     WHERE w.id = rotate_webhook_secret.webhook_id;
    RETURN new_secret;
END;
$$;

-- `replay_webhook_job(job_id)`: deliver a dead, delivered or failed job again now, with the
-- same event id (receivers de-duplicate on webhook-id). False when there is no such job or it
-- is still pending.
CREATE FUNCTION api_gateway.replay_webhook_job(job_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE api_gateway.webhook_job j
       SET state = 'pending', attempts = 0, next_attempt_at = now(), leased_by = NULL,
           last_error = NULL, last_status = NULL, delivered_at = NULL, updated_at = now()
     WHERE j.id = job_id AND j.state IN ('dead', 'delivered', 'failed');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('api_gateway_webhook', '');
    RETURN true;
END;
$$;

-- `purge_webhook_jobs(older_than)`: delete delivered and dead jobs last changed longer ago
-- than `older_than` (NULL: webhook_settings.retention). Returns how many were deleted.
CREATE FUNCTION api_gateway.purge_webhook_jobs(older_than interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    keep interval := coalesce(older_than, (SELECT s.retention FROM api_gateway.webhook_settings s), interval '14 days');
BEGIN
    DELETE FROM api_gateway.webhook_job j
     WHERE j.state IN ('delivered', 'dead') AND j.updated_at < now() - keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

-- The delivery worker's calls (granted to the front's role, see docs/webhooks.md).

-- `webhook_worker_settings()`: what the worker needs from webhook_settings.
CREATE FUNCTION api_gateway.webhook_worker_settings()
RETURNS TABLE (allow_private_targets boolean, retry_schedule_s integer[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.allow_private_targets, s.retry_schedule_s FROM api_gateway.webhook_settings s;
$$;

-- `webhook_claim(worker, slots, slot_ids, slot_counts)`: lease due jobs of active webhooks,
-- at most `slots` per webhook (or the count given for it in slot_ids/slot_counts: the worker's
-- free capacity per endpoint). FOR UPDATE SKIP LOCKED: concurrent workers never get the same
-- job. Each claim counts an attempt, moves next_attempt_at to the end of the lease and records
-- the claiming session (pid and start time).
--
-- Per record, in order: a job is not claimed while an older job of the same webhook and record
-- is pending or failed (being delivered, or waiting for its retry); other records go on. A
-- dead job no longer holds the record's later jobs back.
--
-- No wait after a crash: first, jobs leased by a session that no longer exists (the worker
-- was killed, or lost its connection) become claimable at once, whatever their lease says.
-- The lease time stays the bound for a worker that is alive but stuck.
--
-- `previous_secret`: the secret before the last rotation while its overlap lasts (deliveries
-- are signed with both), else NULL.
--
-- Planned for an outbox that fills faster than its statistics follow (a burst after quiet
-- hours, a worker back from an outage): the older-job check is one probe of
-- webhook_job_record_idx per candidate, and orphans are updated by primary key. Planned from
-- statistics that said "empty", the older-job check (NOT EXISTS) became a join of the backlog
-- with itself, and one claim of 32 jobs over 20,000 queued took 51 s; the orphan update read
-- the whole outbox on every claim.
CREATE FUNCTION api_gateway.webhook_claim(
    worker text, slots integer, slot_ids integer[] DEFAULT '{}', slot_counts integer[] DEFAULT '{}')
RETURNS TABLE (job_id bigint, event_id uuid, webhook_id integer, attempt integer, url text,
               headers jsonb, secret text, timeout_ms integer, payload text, created_at timestamptz,
               previous_secret text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH orphan AS (
        SELECT j.id FROM api_gateway.webhook_job j
         WHERE j.leased_pid IS NOT NULL AND j.state IN ('pending', 'failed') AND j.next_attempt_at > now()
           AND NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(j.leased_pid) a
                            WHERE a.backend_start IS NOT DISTINCT FROM j.leased_backend_start)
           FOR UPDATE SKIP LOCKED)
    UPDATE api_gateway.webhook_job j
       SET next_attempt_at = now(), leased_by = NULL, leased_pid = NULL, leased_backend_start = NULL,
           updated_at = now()
      FROM orphan o
     WHERE j.id = o.id AND j.id = ANY (ARRAY(SELECT o2.id FROM orphan o2));
    WITH margin AS (SELECT s.lease_margin FROM api_gateway.webhook_settings s),
    w AS (
        SELECT h.id, h.model, h.payload_fields, h.url, h.headers, h.secret, h.timeout,
               CASE WHEN h.previous_secret_expires_at > now() THEN h.previous_secret END AS previous_secret,
               greatest(coalesce(f.n, slots), 0) AS n
          FROM api_gateway.webhook h
          LEFT JOIN unnest(slot_ids, slot_counts) AS f(id, n) ON f.id = h.id
         WHERE h.active),
    c AS (
        SELECT j.id, w.model, w.payload_fields, w.url, w.headers, w.secret, w.timeout, w.previous_secret
          FROM w CROSS JOIN LATERAL (
               SELECT q.id FROM api_gateway.webhook_job q
                WHERE q.webhook_id = w.id AND q.state IN ('pending', 'failed') AND q.next_attempt_at <= now()
                  -- the oldest unfinished job of its record (a subquery, not NOT EXISTS: one
                  -- probe per candidate, never a join)
                  AND (q.record_id IS NULL
                       OR q.id = (SELECT o.id FROM api_gateway.webhook_job o
                                   WHERE o.webhook_id = q.webhook_id AND o.record_id = q.record_id
                                     AND o.state IN ('pending', 'failed')
                                   ORDER BY o.id LIMIT 1))
                ORDER BY q.next_attempt_at
                LIMIT w.n
                  FOR UPDATE SKIP LOCKED) j
         WHERE w.n > 0),
    me AS (SELECT a.pid, a.backend_start FROM pg_stat_get_activity(pg_backend_pid()) a)
    UPDATE api_gateway.webhook_job j
       SET attempts = j.attempts + 1,
           next_attempt_at = now() + c.timeout + coalesce((SELECT lease_margin FROM margin), interval '30 seconds'),
           leased_by = worker,
           leased_pid = (SELECT me.pid FROM me),
           leased_backend_start = (SELECT me.backend_start FROM me),
           updated_at = now()
      FROM c
     -- (the array makes the planner fetch the few claimed rows by primary key, whatever it
     -- estimates for LIMIT w.n, instead of scanning the whole outbox)
     WHERE j.id = c.id AND j.id = ANY (ARRAY(SELECT c2.id FROM c c2))
    RETURNING j.id, j.event_id, j.webhook_id, j.attempts, c.url, c.headers, c.secret,
              (extract(epoch FROM c.timeout) * 1000)::integer,
              api_gateway._webhook_payload(j.event_id, j.created_at, j.action, c.model, j.record_id, j.data, c.payload_fields)::text,
              j.created_at, c.previous_secret;
$$;

-- `webhook_complete(job_ids, attempts, outcomes, statuses, errors, delays_s)`: record what
-- the worker's attempts gave, in one statement for a batch. Outcomes: `delivered`, `retry`
-- (next attempt in delays_s seconds), `dead` (no attempt left), `gone` (410: the job waits,
-- the webhook is deactivated). A result whose attempt number no longer matches the job (its
-- lease ran out and another worker took it) is ignored. Returns the number of jobs updated.
CREATE FUNCTION api_gateway.webhook_complete(
    job_ids bigint[], attempts integer[], outcomes text[], statuses integer[], errors text[],
    delays_s double precision[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    WITH r AS (
        SELECT * FROM unnest(job_ids, attempts, outcomes, statuses, errors, delays_s)
                      AS r(id, attempt, outcome, status, error, delay))
    UPDATE api_gateway.webhook_job j
       SET state = CASE r.outcome WHEN 'delivered' THEN 'delivered' WHEN 'dead' THEN 'dead' ELSE 'failed' END,
           next_attempt_at = CASE WHEN r.outcome IN ('retry', 'gone')
                                  THEN now() + make_interval(secs => greatest(coalesce(r.delay, 0), 0))
                                  ELSE j.next_attempt_at END,
           leased_by = NULL,
           leased_pid = NULL,
           leased_backend_start = NULL,
           last_status = r.status,
           last_error = left(r.error, 2000),
           delivered_at = CASE WHEN r.outcome = 'delivered' THEN now() END,
           updated_at = now()
      FROM r
     WHERE j.id = r.id AND j.attempts = r.attempt AND j.state IN ('pending', 'failed');
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE api_gateway.webhook h
       SET active = false,
           disabled_reason = format('the endpoint answered 410 Gone at %s', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'))
     WHERE h.active
       AND h.id IN (SELECT q.webhook_id FROM api_gateway.webhook_job q
                     WHERE q.id = ANY (SELECT x.id FROM unnest(job_ids, outcomes) AS x(id, outcome) WHERE x.outcome = 'gone'));
    RETURN n;
END;
$$;

-- `webhook_next_due()`: when the earliest waiting job of an active webhook that is not held
-- back by an older job of its record becomes due (now when a job's lease belongs to a session
-- that ended; NULL when none waits), so that an idle worker sleeps exactly until then.
CREATE FUNCTION api_gateway.webhook_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least(
        (SELECT min(d.t) FROM api_gateway.webhook h
          CROSS JOIN LATERAL (SELECT q.next_attempt_at AS t FROM api_gateway.webhook_job q
                               WHERE q.webhook_id = h.id AND q.state IN ('pending', 'failed')
                                 AND NOT EXISTS (SELECT 1 FROM api_gateway.webhook_job o
                                                  WHERE o.webhook_id = q.webhook_id AND o.record_id = q.record_id
                                                    AND o.state IN ('pending', 'failed') AND o.id < q.id)
                               ORDER BY q.next_attempt_at LIMIT 1) d
          WHERE h.active),
        (SELECT now() WHERE EXISTS (
             SELECT 1 FROM api_gateway.webhook_job j
              WHERE j.leased_pid IS NOT NULL AND j.state IN ('pending', 'failed') AND j.next_attempt_at > now()
                AND NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(j.leased_pid) a
                                 WHERE a.backend_start IS NOT DISTINCT FROM j.leased_backend_start))));
$$;
