-- -D key=<Odoo API key> (cached per backend after its first call)
SELECT status FROM api_gateway.authenticate('Bearer ' || :key::text, '127.0.0.1', 'GET');
