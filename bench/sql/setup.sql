-- Fixtures of bench/gate.sh, run once in agw_bench after the Odoo mini fixture,
-- CREATE EXTENSION api_gateway/pgcrypto and bench/sql/pgjwt_baseline.sql.
-- psql variable :jwt_secret = the HS256 secret of the jwt_verify workloads.
\set ON_ERROR_STOP 1
CREATE SCHEMA IF NOT EXISTS bench;

-- Server-side stopwatch: runs q (which must return one bigint) and says how long it took,
-- so client round trips and psql do not enter the loop measurements.
CREATE OR REPLACE FUNCTION bench.time_us(q text, OUT us double precision, OUT n bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q INTO n;
    us := extract(epoch FROM clock_timestamp() - t0) * 1e6;
END;
$$;

-- One token for the jwt_verify loops, read from a table so that nothing is constant-folded.
CREATE TABLE bench.tok (t text NOT NULL);
INSERT INTO bench.tok
SELECT api_gateway.jwt_sign(
           jsonb_build_object('iss', 'bench', 'sub', '5', 'scope', 'read write',
                              'iat', extract(epoch FROM now())::bigint,
                              'exp', extract(epoch FROM now())::bigint + 3600,
                              'jti', 'bench-loop'),
           :'jwt_secret');

-- Reference counters for the rate_limit_hit workload.
CREATE UNLOGGED TABLE bench.counter_unlogged (subject text PRIMARY KEY, hits integer NOT NULL);
CREATE TABLE bench.counter_logged (subject text PRIMARY KEY, hits integer NOT NULL);

-- authenticate: an OAuth2 client acting as admin (uid 2), one access token; both users get a
-- profile with a limit nobody reaches in a run, so no request is answered 429.
INSERT INTO api_gateway.profile (user_id, rate_limit) VALUES (2, 100000000), (5, 100000000);
CREATE TABLE bench.auth (kind text PRIMARY KEY, credential text NOT NULL);
WITH c AS (SELECT * FROM api_gateway.create_client('bench', 2, '{read,write}')),
     t AS (SELECT i.status, i.body FROM c, LATERAL api_gateway.issue_token(c.client_id, c.client_secret) AS i)
INSERT INTO bench.auth SELECT 'jwt', t.body->>'access_token' FROM t WHERE t.status = 200;
SELECT count(*) = 1 AS token_issued FROM bench.auth WHERE kind = 'jwt' \gset
\if :token_issued
\else
    \echo 'api_gateway.issue_token did not answer 200 for the bench client'
    SELECT 1/0 AS issue_token_failed;
\endif

-- The uncached verify_api_key workload: keys generated and hashed by bench/apikeys.py.
CREATE TABLE bench.keys (k text NOT NULL, idx text NOT NULL, h text NOT NULL);
