-- What `api-gateway serve --single-statement false` sends for issue 14's query on the real Odoo
-- database: GET /api/v1/res.partner?domain=[["is_company","=",true]]&fields=name,email&limit=10.
-- The gate, then the data call, each statement alone as its own transaction (reaching
-- PostgreSQL directly, the pooled connection has the statement timeout from its start-up
-- packet: --connection-settings), one round trip each.
-- -D cred=<JWT or Odoo API key> -D uid=<the uid it authenticates as>
-- -D domain=<the domain>; run with -M prepared (the front prepares its statements once per
-- connection).
SELECT status, uid, client_id, scopes, error, rate_limit, remaining, reset_s, detail, window_s
  FROM api_gateway.authenticate(('Bearer ' || :cred)::text, '127.0.0.1'::inet, 'GET'::text);
WITH g AS (SELECT 200 AS status, :uid::int AS uid)
SELECT CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, 'res.partner'::text, (:domain)::text, '{name,email}'::text[], 10, 0, NULL::text) END,
       CASE WHEN g.status = 200 AND false THEN api_gateway.search_count(g.uid, 'res.partner'::text, (:domain)::text) END
  FROM g;
