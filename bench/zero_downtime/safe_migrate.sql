-- bench/zero_downtime/safe_migrate.sql: run 4, the same migration through
-- safe_migrate, policy on (the default).  Each migrate_apply is its own
-- top-level statement (psql autocommit), never inside a transaction block.
-- 0001 expand: add the column.
SELECT version, status, statements, duration, lock_retries
  FROM migrate_apply('ALTER TABLE users ADD COLUMN full_name text;', '0001');
-- the throttled background backfill
SELECT migrate_backfill('users', $$full_name = first_name || ' ' || last_name$$, 'full_name IS NULL');
-- 0002 contract, step 1: wait for the backfill, then the CHECK without
-- validation (a brief ACCESS EXCLUSIVE, no scan).  It commits on its own: a
-- VALIDATE in the same transaction would scan the table while that lock is
-- still held.
SELECT version, status, statements, duration, lock_retries
  FROM migrate_apply($m$
SELECT migrate_backfill_wait((SELECT max(id) FROM safe_migrate.backfills), '1 hour');
ALTER TABLE users ADD CONSTRAINT users_full_name_nn CHECK (full_name IS NOT NULL) NOT VALID;
$m$, '0002');
-- 0003 contract, step 2: validate (a scan under SHARE UPDATE EXCLUSIVE, which
-- blocks neither reads nor writes), SET NOT NULL proven by the CHECK (no
-- scan), then the index, built concurrently.
SELECT version, status, statements, duration, lock_retries
  FROM migrate_apply($m$
ALTER TABLE users VALIDATE CONSTRAINT users_full_name_nn;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_full_name_nn;
CREATE INDEX CONCURRENTLY users_full_name ON users (full_name);
$m$, '0003');
