#!/usr/bin/env bash
# Run the client examples against a running cluster that has safe_migrate
# installed (PGHOST, PGPORT, PGUSER from the environment); each gets a fresh
# database.  Prints one line per check and "examples: N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
passed=0; failed=0
check() {  # name expected actual
    if [[ "$2" == "$3" ]]; then
        echo "ok     $1"; passed=$((passed + 1))
    else
        printf 'FAILED %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3"; failed=$((failed + 1))
    fi
}
fresh_db() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1 &&
        psql -X -q -d "$1" -c "CREATE EXTENSION safe_migrate" >/dev/null
}
history() { psql -X -At -d "$1" -c "SELECT string_agg(version || ':' || status, ' ' ORDER BY id) FROM safe_migrate.history"; }

# 1. a folder of dbmate files, applied with psql
fresh_db ex_dbmate
out=$(PGDATABASE=ex_dbmate bash "$HERE/dbmate-folder/apply.sh" 2>&1)
check "dbmate folder: applied" "20260101000001 applied
20260101000002 applied
20260101000003 applied" "$out"
out=$(PGDATABASE=ex_dbmate bash "$HERE/dbmate-folder/apply.sh" 2>/dev/null)
check "dbmate folder: applied again is a no-op" "20260101000001 already_applied
20260101000002 already_applied
20260101000003 already_applied" "$out"
check "dbmate folder: index built concurrently and valid" "t" \
    "$(psql -X -At -d ex_dbmate -c "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ex_users_full_name'::regclass")"

# 2. Alembic (Debian's python3-alembic)
fresh_db ex_alembic
url="postgresql+psycopg2://${PGUSER:-postgres}@/ex_alembic?host=${PGHOST}&port=${PGPORT}"
(cd "$HERE/alembic" && SAFE_MIGRATE_URL="$url" /usr/bin/python3 -m alembic -c alembic.ini upgrade head) >/tmp/ex_alembic.log 2>&1
check "alembic: upgrade head" "alembic-0001:applied" "$(history ex_alembic)"
check "alembic: its own version table" "0001" "$(psql -X -At -d ex_alembic -c 'SELECT version_num FROM alembic_version')"
(cd "$HERE/alembic" && SAFE_MIGRATE_URL="$url" /usr/bin/python3 -m alembic -c alembic.ini downgrade base) >>/tmp/ex_alembic.log 2>&1
check "alembic: downgrade base" "alembic-0001:rolled_back" "$(history ex_alembic)"
[[ $failed -eq 0 ]] || tail -20 /tmp/ex_alembic.log

# 3. node: knex's migrator (npm packages knex and pg)
fresh_db ex_knex
if [[ ! -d "$HERE/node/node_modules/knex" ]]; then
    (cd "$HERE/node" && npm install --no-audit --no-fund --silent) >/tmp/ex_npm.log 2>&1
fi
out=$(cd "$HERE/node" && PGDATABASE=ex_knex node migrate.js latest 2>&1)
check "knex: migrate latest" "latest: 20260101000001_users_full_name.js" "$out"
check "knex: history" "knex-0001:applied" "$(history ex_knex)"
out=$(cd "$HERE/node" && PGDATABASE=ex_knex node migrate.js rollback 2>&1)
check "knex: migrate rollback" "rollback: 20260101000001_users_full_name.js" "$out"
check "knex: history after rollback" "knex-0001:rolled_back" "$(history ex_knex)"

echo "examples: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
