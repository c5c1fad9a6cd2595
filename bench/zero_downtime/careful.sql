-- bench/zero_downtime/careful.sql: run 3, the same migration done carefully
-- by hand (policy off, as a DBA would without safe_migrate).  psql in
-- autocommit mode: every statement, and every batch \gexec runs, is its
-- own transaction.
SET safe_migrate.policy = off;
SET lock_timeout = '2s';
ALTER TABLE users ADD COLUMN full_name text;
-- batches of 10000 rows by id range
SELECT format('UPDATE users SET full_name = first_name || '' '' || last_name WHERE id >= %s AND id < %s',
              lo, lo + 10000)
  FROM (SELECT min(id) AS lo_id, max(id) AS hi_id FROM users) AS b,
       generate_series(b.lo_id, b.hi_id, 10000) AS lo
\gexec
ALTER TABLE users ADD CONSTRAINT users_full_name_nn CHECK (full_name IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_full_name_nn;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_full_name_nn;
CREATE INDEX CONCURRENTLY users_full_name ON users (full_name);
