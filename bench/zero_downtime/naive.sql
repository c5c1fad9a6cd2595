-- bench/zero_downtime/naive.sql: run 2, the migration done the naive way,
-- in one transaction.  The safe-DDL policy would refuse it, so it is
-- switched off: the point is to see what it costs.
SET safe_migrate.policy = off;
BEGIN;
ALTER TABLE users ADD COLUMN full_name text;
UPDATE users SET full_name = first_name || ' ' || last_name;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;
CREATE INDEX users_full_name ON users (full_name);
COMMIT;
