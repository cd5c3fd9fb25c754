-- What `api-gateway serve` sends for GET /api/v1/res.partner?limit=80&fields=name,email,phone,city,is_company
-- (front/src/gate.rs and routes/records.rs, --single-statement false, reaching PostgreSQL
-- directly): the gate, then the data call, each statement alone as its own transaction (the
-- pooled connection has the statement timeout from its start-up packet: --connection-settings),
-- one round trip each.
-- -D cred=<JWT or Odoo API key> -D uid=<the uid it authenticates as>; run with -M prepared
-- (the front prepares its statements once per connection).
SELECT status, uid, client_id, scopes, error, rate_limit, remaining, reset_s, detail, window_s
  FROM api_gateway.authenticate(('Bearer ' || :cred)::text, '127.0.0.1'::inet, 'GET'::text);
WITH g AS (SELECT 200 AS status, :uid::int AS uid)
SELECT CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, 'res.partner'::text, '[]'::text, '{name,email,phone,city,is_company}'::text[], 80, 0, NULL::text) END,
       CASE WHEN g.status = 200 AND false THEN api_gateway.search_count(g.uid, 'res.partner'::text, '[]'::text) END
  FROM g;
