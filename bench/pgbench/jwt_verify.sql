-- -D tok=<JWT> -D secret=<its HS256 secret>
SELECT api_gateway.jwt_verify(:tok::text, :secret::text);
