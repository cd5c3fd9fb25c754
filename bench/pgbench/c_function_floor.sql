-- The floor of a function answering one row in FROM: PostgreSQL's own pg_walfile_name_offset,
-- C code computing a two-column row from its argument (no lock, no table, nothing kept), called
-- as rate_limit_10k.sql calls rate_limit_hit (the argument built from a random number per call).
\set s random(1, 10000)
SELECT * FROM pg_catalog.pg_walfile_name_offset(('0/' || :s)::pg_lsn);
