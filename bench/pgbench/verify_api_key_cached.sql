-- -D key=<Odoo API key>: the same key every time, so PBKDF2 runs once per backend
SELECT api_gateway.verify_api_key(:key::text);
