-- one hot subject (every client hits the same counter row)
-- (no colon in the literal: pgbench would take ":hot" for a variable)
SELECT * FROM api_gateway.rate_limit_hit('bench-hot', 100000000, 60);
