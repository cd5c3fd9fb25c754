-- Forwarding writes and business methods to Odoo (api-gateway serve --odoo-url, issue 15):
-- the upstream Odoo API key of each OAuth2 client, and the idempotency keys of write requests.
-- The front calls the functions here and never the tables.

-- One Odoo API key per OAuth2 client, made in Odoo's own table res_users_apikeys exactly as
-- Odoo 19 makes keys (res.users.apikeys._generate: 20 random bytes in hex, pbkdf2_sha512 with
-- 6000 rounds, index = first 8 characters), scope 'rpc', named after the client, with an expiry.
-- The plaintext is kept here because the front must send it to Odoo on every forwarded call; it
-- is readable only by the extension owner and returned only by upstream_key(). A renewed key's
-- predecessor keeps working for 10 minutes (calls in flight) with its plaintext erased, then
-- maintenance removes it. Deleting a row here removes its Odoo key (trigger below).
CREATE TABLE api_gateway.upstream_key (
    apikey_id  integer PRIMARY KEY,
    client_id  text NOT NULL REFERENCES api_gateway.client (client_id) ON DELETE CASCADE,
    user_id    integer NOT NULL,
    key        text CHECK (key IS NULL OR key ~ '^[0-9a-f]{40}$'),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE api_gateway.upstream_key IS
    'Odoo API keys (res_users_apikeys.id) the gateway holds for its OAuth2 clients, to call Odoo''s JSON-2 as the client''s user. key is the plaintext of the current key (NULL once superseded); owner only.';
CREATE INDEX upstream_key_client_id_idx ON api_gateway.upstream_key (client_id);
-- Not in pg_dump (no pg_extension_config_dump): a dump of the database never carries the
-- plaintexts. After a restore the clients get new keys on first use, and maintenance removes
-- the gateway's keys that no row here knows any more.

-- A row removed (client deleted, deactivated, secret rotated, user changed, key expired):
-- its key is removed from Odoo in the same transaction.
CREATE FUNCTION api_gateway._upstream_key_removed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF to_regclass('public.res_users_apikeys') IS NOT NULL THEN
        DELETE FROM public.res_users_apikeys k WHERE k.id = OLD.apikey_id AND k.user_id = OLD.user_id;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER upstream_key_removed AFTER DELETE ON api_gateway.upstream_key
    FOR EACH ROW EXECUTE FUNCTION api_gateway._upstream_key_removed();

CREATE FUNCTION api_gateway._client_upstream_key_revoke() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM api_gateway.upstream_key u WHERE u.client_id = NEW.client_id;
    RETURN NEW;
END;
$$;
CREATE TRIGGER client_upstream_key_revoke AFTER UPDATE ON api_gateway.client
    FOR EACH ROW WHEN (NOT NEW.active OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
                       OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION api_gateway._client_upstream_key_revoke();

-- A new upstream key for an active client (its predecessors expire in 10 minutes). Internal.
CREATE FUNCTION api_gateway._renew_upstream_key(p_client_id text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    c record;
    fresh record;
    new_id integer;
    lifetime constant interval := interval '30 days';
BEGIN
    SELECT cl.client_id, cl.name, cl.user_id, cl.active INTO c FROM api_gateway.client cl WHERE cl.client_id = p_client_id;
    IF NOT FOUND OR NOT c.active THEN
        RAISE EXCEPTION 'OAuth2 client % is unknown or inactive', p_client_id USING ERRCODE = '28000';
    END IF;
    SELECT * INTO fresh FROM api_gateway._new_odoo_api_key();
    INSERT INTO public.res_users_apikeys (name, user_id, scope, expiration_date, key, index)
    VALUES (format('api_gateway: OAuth2 client %s (%s)', c.client_id, left(c.name, 100)), c.user_id, 'rpc',
            (now() + lifetime) AT TIME ZONE 'utc', fresh.hash, fresh.index)
    RETURNING id INTO new_id;
    UPDATE public.res_users_apikeys k SET expiration_date = least(k.expiration_date, (now() + interval '10 minutes') AT TIME ZONE 'utc')
     WHERE k.id IN (SELECT u.apikey_id FROM api_gateway.upstream_key u WHERE u.client_id = c.client_id);
    UPDATE api_gateway.upstream_key u SET key = NULL, expires_at = least(u.expires_at, now() + interval '10 minutes')
     WHERE u.client_id = c.client_id;
    INSERT INTO api_gateway.upstream_key (apikey_id, client_id, user_id, key, expires_at)
    VALUES (new_id, c.client_id, c.user_id, fresh.key, now() + lifetime);
    RETURN fresh.key;
END;
$$;

-- `upstream_key(client_id)`: the plaintext Odoo API key the front forwards for this OAuth2
-- client (made on first use, renewed when it has less than 7 days left or was removed from
-- Odoo). For the front's role only; never log the result.
CREATE FUNCTION api_gateway.upstream_key(client_id text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    found_key text;
    attempt integer;
BEGIN
    FOR attempt IN 1..2 LOOP
        SELECT u.key INTO found_key
          FROM api_gateway.upstream_key u
          JOIN api_gateway.client c ON c.client_id = u.client_id AND c.active AND c.user_id = u.user_id
          JOIN public.res_users_apikeys k ON k.id = u.apikey_id AND k.user_id = u.user_id
         WHERE u.client_id = upstream_key.client_id AND u.key IS NOT NULL
           AND u.expires_at > now() + interval '7 days'
         ORDER BY u.expires_at DESC LIMIT 1;
        IF found_key IS NOT NULL THEN
            RETURN found_key;
        END IF;
        -- One maker per client at a time; the second look sees what the first one made.
        IF attempt = 1 THEN
            PERFORM pg_advisory_xact_lock(hashtext('api_gateway.upstream_key'), hashtext(upstream_key.client_id));
        END IF;
    END LOOP;
    RETURN api_gateway._renew_upstream_key(upstream_key.client_id);
END;
$$;

-- Idempotency keys (draft-ietf-httpapi-idempotency-key-header) of forwarded writes and method
-- calls: per (caller, key), the request's fingerprint and, once answered, the response, kept
-- 24 hours. caller is 'user:<uid>' (Odoo API key) or 'client:<client_id>' (OAuth2).
CREATE TABLE api_gateway.idempotency (
    caller       text NOT NULL CHECK (length(caller) BETWEEN 1 AND 100),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint  text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    started_at   timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz NOT NULL,
    completed_at timestamptz,
    status       integer CHECK (status BETWEEN 100 AND 599),
    headers      jsonb,
    body         jsonb,
    PRIMARY KEY (caller, key)
);
COMMENT ON TABLE api_gateway.idempotency IS
    'Idempotency keys of forwarded writes: the first response per (caller, key) for 24 hours, with the request fingerprint.';
CREATE INDEX idempotency_started_at_idx ON api_gateway.idempotency (started_at);

-- `idempotency_begin(caller, key, fingerprint, lease_s)`: outcome 'new' (go ahead: the key is
-- now in flight for lease_s seconds), 'replay' (with the stored status, headers and body),
-- 'mismatch' (the key was used for another request) or 'in_flight' (the first request is still
-- running). A key in flight past its lease (the front that held it died) is taken over ('new').
CREATE FUNCTION api_gateway.idempotency_begin(caller text, key text, fingerprint text, lease_s integer)
RETURNS TABLE (outcome text, status integer, headers jsonb, body jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r api_gateway.idempotency;
    lease interval := make_interval(secs => greatest(coalesce(lease_s, 60), 1));
BEGIN
    IF key IS NULL OR length(key) NOT BETWEEN 1 AND 255 OR key !~ '^[\x21-\x7e]+$' THEN
        RAISE EXCEPTION 'an idempotency key is 1 to 255 printable ASCII characters without spaces' USING ERRCODE = '22023';
    END IF;
    INSERT INTO api_gateway.idempotency AS i (caller, key, fingerprint, lease_until)
    VALUES (idempotency_begin.caller, idempotency_begin.key, idempotency_begin.fingerprint, now() + lease)
    ON CONFLICT ON CONSTRAINT idempotency_pkey DO NOTHING;
    IF FOUND THEN
        RETURN QUERY SELECT 'new'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
        RETURN;
    END IF;
    SELECT * INTO r FROM api_gateway.idempotency i
     WHERE i.caller = idempotency_begin.caller AND i.key = idempotency_begin.key FOR UPDATE;
    IF r.started_at < now() - interval '24 hours' THEN
        UPDATE api_gateway.idempotency i
           SET fingerprint = idempotency_begin.fingerprint, started_at = now(), lease_until = now() + lease,
               completed_at = NULL, status = NULL, headers = NULL, body = NULL
         WHERE i.caller = idempotency_begin.caller AND i.key = idempotency_begin.key;
        RETURN QUERY SELECT 'new'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    ELSIF r.fingerprint <> idempotency_begin.fingerprint THEN
        RETURN QUERY SELECT 'mismatch'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    ELSIF r.completed_at IS NOT NULL THEN
        RETURN QUERY SELECT 'replay'::text, r.status, r.headers, r.body;
    ELSIF r.lease_until > now() THEN
        RETURN QUERY SELECT 'in_flight'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    ELSE
        UPDATE api_gateway.idempotency i SET lease_until = now() + lease
         WHERE i.caller = idempotency_begin.caller AND i.key = idempotency_begin.key;
        RETURN QUERY SELECT 'new'::text, NULL::integer, NULL::jsonb, NULL::jsonb;
    END IF;
END;
$$;

-- `idempotency_finish(caller, key, fingerprint, status, headers, body)`: store the response of
-- the request holding the key. False when the key is no longer held by this request.
CREATE FUNCTION api_gateway.idempotency_finish(caller text, key text, fingerprint text, status integer,
                                               headers jsonb, body jsonb) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE api_gateway.idempotency i
       SET completed_at = now(), status = idempotency_finish.status,
           headers = idempotency_finish.headers, body = idempotency_finish.body
     WHERE i.caller = idempotency_finish.caller AND i.key = idempotency_finish.key
       AND i.fingerprint = idempotency_finish.fingerprint AND i.completed_at IS NULL;
    RETURN FOUND;
END;
$$;

-- `idempotency_release(caller, key, fingerprint)`: forget a key whose request wrote nothing
-- (Odoo could not be reached), so that a retry runs.
CREATE FUNCTION api_gateway.idempotency_release(caller text, key text, fingerprint text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM api_gateway.idempotency i
     WHERE i.caller = idempotency_release.caller AND i.key = idempotency_release.key
       AND i.fingerprint = idempotency_release.fingerprint AND i.completed_at IS NULL;
    RETURN FOUND;
END;
$$;
