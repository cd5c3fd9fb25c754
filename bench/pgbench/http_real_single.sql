-- The same request as http_real_search_read.sql with `serve --single-statement true`: the gate
-- and the data call in one statement (front/src/gate.rs, `gated_sql!`), alone as its own
-- transaction, one round trip.
WITH g AS MATERIALIZED (SELECT * FROM api_gateway.authenticate(('Bearer ' || :cred)::text, '127.0.0.1'::inet, 'GET'::text))
SELECT g.status, g.uid, g.client_id, g.scopes, g.error, g.rate_limit, g.remaining, g.reset_s, g.detail, g.window_s,
       CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, 'res.partner'::text, (:domain)::text, '{name,email}'::text[], 10, 0, NULL::text) END,
       CASE WHEN g.status = 200 AND false THEN api_gateway.search_count(g.uid, 'res.partner'::text, (:domain)::text) END
  FROM g;
