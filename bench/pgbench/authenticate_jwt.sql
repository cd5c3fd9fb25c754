-- -D tok=<access token from issue_token> (a JWT has no spaces; the Bearer prefix is added here)
SELECT status FROM api_gateway.authenticate('Bearer ' || :tok::text, '127.0.0.1', 'GET');
