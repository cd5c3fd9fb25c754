-- 10 000 subjects, uniformly at random
\set s random(1, 10000)
SELECT * FROM api_gateway.rate_limit_hit('bench:' || :s, 1000000, 60);
