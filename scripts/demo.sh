#!/usr/bin/env bash
# The main job, end to end on a local cluster: split users.first_name /
# last_name into full_name with expand, backfill, contract — each phase one
# migrate_apply call, recorded in safe_migrate.history.
# Run as root on Debian: installs what it needs, builds, starts a private
# cluster (port $DEMO_PORT, default 54330), walks the example, cleans up.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${DEMO_PORT:-54330}
ROWS=${DEMO_ROWS:-500000}

bash "$ROOT/scripts/setup.sh"
source "$ROOT/scripts/cluster.sh"
DIR=$(mktemp -d /tmp/safe_migrate_demo.XXXXXX)
trap 'cluster_stop "$DIR"; rm -rf "$DIR"' EXIT
cluster_start "$DIR" "$PORT"
psql() { command psql -X -q -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

psql -d postgres -c "CREATE DATABASE shop"
psql -d shop -c "CREATE EXTENSION safe_migrate"

step "0001: the table as the application has it today ($ROWS users)"
psql -d shop <<SQL
SELECT version, status, statements, duration FROM migrate_apply(\$m\$
-- migrate:up
CREATE TABLE users (id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL);
INSERT INTO users SELECT g, 'first' || g, 'last' || g FROM generate_series(1, $ROWS) g;
-- migrate:down
DROP TABLE users;
\$m\$, '0001', 'users table');
SQL

step "0002 expand: add the nullable column (metadata only, no rewrite)"
psql -d shop <<'SQL'
SELECT version, status, statements, duration FROM migrate_apply($m$
-- migrate:up
ALTER TABLE users ADD COLUMN full_name text;
-- migrate:down
ALTER TABLE users DROP COLUMN full_name;
$m$, '0002', 'add users.full_name');
SQL

step "0003 backfill: a throttled background job, batches by primary key, each its own transaction"
psql -d shop <<'SQL'
SELECT version, status, statements, duration FROM migrate_apply($m$
SELECT migrate_backfill('users', $$full_name = first_name || ' ' || last_name$$, 'full_name IS NULL');
$m$, '0003', 'backfill users.full_name');
SQL
while :; do
    line=$(psql -d shop -At -F ' | ' -c "SELECT status, rows_done, current_batch_size, rows_per_second, eta FROM safe_migrate.backfills ORDER BY id DESC LIMIT 1")
    echo "   backfill: status | rows done | batch size | rows/s | eta = $line"
    case "$line" in completed*|failed*|cancelled*) break ;; esac
    sleep 0.5
done
psql -d shop -c "SELECT backend_type, application_name FROM pg_stat_activity WHERE backend_type LIKE 'safe_migrate%'"

step "0004 contract: wait for the backfill, make it required without a long lock, index it"
psql -d shop <<'SQL'
SELECT version, status, statements, duration FROM migrate_apply($m$
-- migrate:up
SELECT migrate_backfill_wait((SELECT max(id) FROM safe_migrate.backfills
                               WHERE relation = 'public.users'), '1 hour');
ALTER TABLE users ADD CONSTRAINT users_full_name_not_null CHECK (full_name IS NOT NULL) NOT VALID;
-- migrate:down
ALTER TABLE users DROP CONSTRAINT users_full_name_not_null;
$m$, '0004a', 'wait for the backfill, add the NOT NULL proof unvalidated');
SQL
# The CHECK commits before it is validated: a VALIDATE in the same
# transaction would scan the table under ADD CONSTRAINT's ACCESS EXCLUSIVE.
psql -d shop <<'SQL'
SELECT version, status, statements, duration FROM migrate_apply($m$
-- migrate:up
ALTER TABLE users VALIDATE CONSTRAINT users_full_name_not_null;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_full_name_not_null;
CREATE INDEX CONCURRENTLY users_full_name_idx ON users (full_name);
-- migrate:down
DROP INDEX CONCURRENTLY users_full_name_idx;
ALTER TABLE users ALTER COLUMN full_name DROP NOT NULL;
$m$, '0004', 'require and index users.full_name');
SQL

step "the unsafe shortcuts are refused, each with the safe way in its hint"
psql -d shop <<'SQL'
\set ON_ERROR_STOP 0
SELECT * FROM migrate_apply('ALTER TABLE users ADD COLUMN nickname text NOT NULL;', 'x-1');
SELECT * FROM migrate_apply('CREATE INDEX users_first_name_idx ON users (first_name);', 'x-2');
SELECT * FROM migrate_apply('ALTER TABLE users ALTER COLUMN id TYPE numeric;', 'x-3');
SELECT * FROM migrate_apply('ALTER TABLE users DROP COLUMN first_name;', 'x-4');
SQL

step "0005 contract: drop the old columns (after the application stopped reading them)"
# Dropping columns is refused unless the migration says why (an audited
# override, honoured for superusers and members of safe_migrate_admin).
psql -d shop <<'SQL'
SELECT version, status, statements, duration FROM migrate_apply($m$
-- safe_migrate:allow ban-drop-column the application reads full_name only since release 42
ALTER TABLE users DROP COLUMN first_name, DROP COLUMN last_name;
$m$, '0005', 'drop users.first_name and last_name');
SQL

step "applying 0004 again is a no-op; a changed 0004 is refused"
psql -d shop <<'SQL'
\set ON_ERROR_STOP 0
SELECT version, status FROM migrate_apply($m$
-- migrate:up
ALTER TABLE users VALIDATE CONSTRAINT users_full_name_not_null;
ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_full_name_not_null;
CREATE INDEX CONCURRENTLY users_full_name_idx ON users (full_name);
-- migrate:down
DROP INDEX CONCURRENTLY users_full_name_idx;
ALTER TABLE users ALTER COLUMN full_name DROP NOT NULL;
$m$, '0004', 'require and index users.full_name');
SELECT version, status FROM migrate_apply('ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;', '0004');
SQL

step "the history"
psql -d shop -c "SELECT version, description, status, statements, lock_retries, duration FROM safe_migrate.history ORDER BY id"
psql -d shop -c "SELECT version, o->>'rule' AS rule, o->>'reason' AS reason, o->>'role' AS by_role FROM safe_migrate.history, jsonb_array_elements(overrides) o"
step "the schema as it should be"
psql -d shop -c '\d users'
psql -d shop -At -c "SELECT 'sample: ' || full_name FROM users WHERE id = 42"
