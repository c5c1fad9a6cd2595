-- bench/zero_downtime/online.sql: run 5, the naive migration of run 2 as a
-- developer writes it, one script, handed to migrate_apply with the line
-- "-- safe_migrate:online" (issue 13): safe_migrate runs the careful
-- sequence itself (the UPDATE as a throttled background backfill waited
-- for, SET NOT NULL through a validated CHECK, CREATE INDEX CONCURRENTLY).
-- Policy on (the default).
SELECT version, status, statements, duration, lock_retries
  FROM migrate_apply($m$
-- safe_migrate:online
ALTER TABLE users ADD COLUMN full_name text;
UPDATE users SET full_name = first_name || ' ' || last_name;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;
CREATE INDEX users_full_name ON users (full_name);
$m$, '0001');
