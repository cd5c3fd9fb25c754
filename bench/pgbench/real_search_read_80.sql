-- api_gateway.search_read on the real demo database, 80 partners x 5 stored fields: -D uid=<user>
-- (the baseline of real_search_read_display_80.sql).
SELECT api_gateway.search_read(:uid, 'res.partner', '[]', array['name','email','phone','city','is_company'], 80);
