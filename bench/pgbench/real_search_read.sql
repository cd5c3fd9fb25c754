-- api_gateway.search_read on the real demo database: -D uid=<user> -D limit=<rows>
-- -D domain=<domain>; the fields of issue 14 (name, email).
SELECT api_gateway.search_read(:uid, 'res.partner', :domain, array['name','email'], :limit::int);
