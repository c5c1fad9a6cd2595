-- bench/type_change/online.sql: the same statement handed to migrate_apply
-- with "-- safe_migrate:online" (policy on): shadow column kept in step by a
-- trigger, backfill, indexes built concurrently, one short swap.
SELECT version, status, statements, duration, lock_retries
  FROM migrate_apply($m$
-- safe_migrate:online
ALTER TABLE users ALTER COLUMN id TYPE bigint;
$m$, 'bigint');
