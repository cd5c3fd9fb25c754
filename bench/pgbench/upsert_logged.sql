-- reference point: the same counter as a plain UPSERT on a logged table (WAL + commit flush)
\set s random(1, 10000)
INSERT INTO bench.counter_logged AS c (subject, hits) VALUES ('bench:' || :s, 1)
    ON CONFLICT (subject) DO UPDATE SET hits = c.hits + 1 RETURNING hits;
