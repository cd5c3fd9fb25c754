-- HS256 JWT verification in plain SQL + pgcrypto, written the way pgjwt does it
-- (https://github.com/michelp/pgjwt: url_decode / url_encode / algorithm_sign / verify).
-- Baseline for api_gateway.jwt_verify in bench/gate.sh. Needs CREATE EXTENSION pgcrypto (public).
CREATE SCHEMA IF NOT EXISTS bench;

-- base64url (no padding) -> bytea: translate the alphabet, pad to a multiple of 4, decode.
CREATE OR REPLACE FUNCTION bench.url_decode(data text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    WITH t AS (SELECT translate(data, '-_', '+/') AS trans),
         rem AS (SELECT length(t.trans) % 4 AS remainder FROM t)
    SELECT decode(t.trans || CASE WHEN rem.remainder > 0 THEN repeat('=', 4 - rem.remainder) ELSE '' END,
                  'base64')
      FROM t, rem;
$$;

-- bytea -> base64url without padding (encode() wraps lines at 76 characters: drop the newlines).
CREATE OR REPLACE FUNCTION bench.url_encode(data bytea) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(encode(data, 'base64'), E'+/=\n', '-_');
$$;

-- HS256 signature of "header.payload".
CREATE OR REPLACE FUNCTION bench.hs256_sign(signables text, secret text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT bench.url_encode(public.hmac(signables, secret, 'sha256'));
$$;

-- The payload when the signature matches, the header says HS256 and exp/nbf (if present, with
-- 30 s of leeway like api_gateway.jwt_verify) hold; NULL otherwise. STABLE because of now().
CREATE OR REPLACE FUNCTION bench.pgjwt_verify(token text, secret text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT CASE
             WHEN jwt.signature_ok
              AND jwt.header->>'alg' = 'HS256'
              AND (jwt.payload->>'exp' IS NULL
                   OR to_timestamp((jwt.payload->>'exp')::double precision + 30) > now())
              AND (jwt.payload->>'nbf' IS NULL
                   OR to_timestamp((jwt.payload->>'nbf')::double precision - 30) <= now())
             THEN jwt.payload
           END
      FROM (SELECT convert_from(bench.url_decode(r[1]), 'utf8')::json AS header,
                   convert_from(bench.url_decode(r[2]), 'utf8')::json AS payload,
                   r[3] = bench.hs256_sign(r[1] || '.' || r[2], secret) AS signature_ok
              FROM regexp_split_to_array(token, '\.') AS r
             WHERE cardinality(r) = 3) AS jwt;
$$;
