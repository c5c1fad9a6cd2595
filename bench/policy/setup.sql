-- bench/policy/setup.sql: objects the DDL-heavy script (ddl.sql) expects.
-- Run by bench/policy_overhead.sh with psql -v clients=N in each database
-- before the measured runs (and before CREATE EXTENSION): one small table
-- pol_keep_<i> for every client id i in 0..N-1 (pgbench numbers its clients
-- from 0).  100 rows keep it far below the size-dependent rules' thresholds.
SELECT format('CREATE TABLE pol_keep_%s (id integer PRIMARY KEY, v text NOT NULL)', i),
       format('INSERT INTO pol_keep_%s SELECT g, md5(g::text) FROM generate_series(1, 100) g', i),
       format('ANALYZE pol_keep_%s', i)
  FROM generate_series(0, :clients - 1) AS i
\gexec
