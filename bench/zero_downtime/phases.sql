-- bench/zero_downtime/phases.sql: run 4's migration of bench/zero_downtime.sh
-- (safe_migrate.sql) split into one step per phase, with :pause seconds of
-- quiet between phases, for bench/phases.sh.  Prints "phase|name|start|end"
-- (epoch seconds) for each phase.  psql -v pause=N -v workers=W, W being
-- safe_migrate.parallel_maintenance_workers for the index build.
\set ON_ERROR_STOP 1
SET safe_migrate.parallel_maintenance_workers = :workers;
SELECT extract(epoch FROM clock_timestamp()) AS t \gset
SELECT status FROM migrate_apply('ALTER TABLE users ADD COLUMN full_name text;', '0001') \g /dev/null
SELECT 'phase', 'add column', :t, extract(epoch FROM clock_timestamp());
SELECT pg_sleep(:pause) \g /dev/null

SELECT extract(epoch FROM clock_timestamp()) AS t \gset
SELECT migrate_backfill('users', $$full_name = first_name || ' ' || last_name$$, 'full_name IS NULL') AS job \gset
SELECT migrate_backfill_wait(:job, '1 hour') \g /dev/null
SELECT 'phase', 'backfill', :t, extract(epoch FROM clock_timestamp());
SELECT pg_sleep(:pause) \g /dev/null

SELECT extract(epoch FROM clock_timestamp()) AS t \gset
SELECT status FROM migrate_apply('ALTER TABLE users ADD CONSTRAINT users_full_name_nn CHECK (full_name IS NOT NULL) NOT VALID;', '0002') \g /dev/null
SELECT 'phase', 'check not valid', :t, extract(epoch FROM clock_timestamp());
SELECT pg_sleep(:pause) \g /dev/null

SELECT extract(epoch FROM clock_timestamp()) AS t \gset
SELECT status FROM migrate_apply($m$
ALTER TABLE users VALIDATE CONSTRAINT users_full_name_nn;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_full_name_nn;
$m$, '0003') \g /dev/null
SELECT 'phase', 'validate, set not null', :t, extract(epoch FROM clock_timestamp());
SELECT pg_sleep(:pause) \g /dev/null

SELECT extract(epoch FROM clock_timestamp()) AS t \gset
SELECT status FROM migrate_apply('CREATE INDEX CONCURRENTLY users_full_name ON users (full_name);', '0004') \g /dev/null
SELECT 'phase', 'create index concurrently', :t, extract(epoch FROM clock_timestamp());
