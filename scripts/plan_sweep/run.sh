#!/usr/bin/env bash
# PostgreSQL's own regression SQL through migrate_plan: a crash hunt for
# the analysis behind it (the parse tree walk, the catalog facts, the lock
# and effect predictions) on every kind of statement PostgreSQL tests.
#
#   bash scripts/plan_sweep/run.sh [SUITE_VERSION]     (as root; default 17)
#
# Each file of the regression suite of PostgreSQL SUITE_VERSION (its
# parallel_schedule, in order; statements of newer syntax are syntax
# errors on 15, which is part of the test) becomes a sweep file
# (split.py): every statement first given to public.migrate_plan(), then
# run.  Against the installed safe_migrate on a private PostgreSQL 15
# cluster with the extension preloaded and the policy on (its refusals are
# ordinary errors here).  Fails on a server crash, PANIC or failed
# assertion; prints how many statements ended in an ordinary error.
#
# The regression SQL comes from the source tree scripts/pgbuild.sh keeps in
# its cache ($SAFE_MIGRATE_PG_CACHE/src/postgresql-V/tree, the one the
# 17/18 CI passes use); when it is missing, scripts/pgbuild.sh V is run to
# get it (deb-src lines, download, build).  Environment: PLAN_SWEEP_DIR
# (default /tmp/safe_migrate_plan_sweep), PLAN_SWEEP_PORT (default 54390),
# PLAN_SWEEP_PLAIN=1: the analysis runs as a plain role (no superuser, no
# membership), through a SECURITY DEFINER wrapper it owns, while the
# statements themselves still run as the files run them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
V=${1:-17}
[[ "$V" =~ ^[0-9]+$ ]] || { echo "SUITE_VERSION must be a major version number" >&2; exit 2; }
DIR=${PLAN_SWEEP_DIR:-/tmp/safe_migrate_plan_sweep}
PORT=${PLAN_SWEEP_PORT:-54390}
# shellcheck source=scripts/cluster.sh
source "$ROOT/scripts/cluster.sh"

REG=${SAFE_MIGRATE_PG_CACHE:-/var/cache/safe_migrate}/src/postgresql-$V/tree/src/test/regress
if [ ! -f "$REG/parallel_schedule" ]; then
    bash "$ROOT/scripts/pgbuild.sh" "$V" >/dev/null
    [ -f "$REG/parallel_schedule" ] || { echo "plan_sweep: no regression suite at $REG" >&2; exit 1; }
fi

cluster_stop "$DIR/cluster"
rm -rf "$DIR/cluster" "$DIR/sweep"
mkdir -p "$DIR/sweep"
cluster_start "$DIR/cluster" "$PORT"
trap 'cluster_stop "$DIR/cluster"' EXIT
PSQL=(runuser -u postgres -- "$PGBIN/psql" -X -q -h "$DIR/cluster" -p "$PORT")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE sweep"
"${PSQL[@]}" -d sweep -c "CREATE EXTENSION safe_migrate"
FN=public.migrate_plan
if [ "${PLAN_SWEEP_PLAIN:-0}" = 1 ]; then
    FN=sweep_plain.plan
    "${PSQL[@]}" -d sweep -v ON_ERROR_STOP=1 <<'SQL'
CREATE ROLE sweep_plain_role LOGIN;
CREATE SCHEMA sweep_plain AUTHORIZATION sweep_plain_role;
SET ROLE sweep_plain_role;
CREATE FUNCTION sweep_plain.plan(script text) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT count(*) FROM public.migrate_plan(script) $$;
GRANT USAGE ON SCHEMA sweep_plain TO PUBLIC;
RESET ROLE;
SQL
fi

n=0
for t in $(sed -n 's/^test: *//p' "$REG/parallel_schedule"); do
    [ -f "$REG/sql/$t.sql" ] || continue
    out=$DIR/sweep/$(printf '%03d' "$n")_$t.sql
    python3 "$ROOT/scripts/plan_sweep/split.py" "$REG/sql/$t.sql" "$out" "$FN"
    n=$((n + 1))
done
chmod -R a+rX "$DIR/sweep"
calls=$(cat "$DIR"/sweep/*.sql | grep -c "^SELECT count(\*) FROM $FN(" || true)
echo "plan_sweep: $n files of PostgreSQL $V's regression suite, $calls statements, analysed by $FN"

crashed() { grep -qE 'terminated by signal|was terminated|PANIC|TRAP:' "$DIR/cluster/server.log"; }
for f in "$DIR"/sweep/*.sql; do
    timeout 300 "${PSQL[@]}" -d sweep -v ON_ERROR_STOP=0 -f "$f" >/dev/null 2>&1 || true
    if crashed; then
        echo "plan_sweep: the server crashed during $f:" >&2
        grep -E -B5 'terminated by signal|was terminated|PANIC|TRAP:' "$DIR/cluster/server.log" | tail -n 30 >&2
        exit 1
    fi
done
failed=$(grep -c 'ERROR:' "$DIR/cluster/server.log" || true)
echo "plan_sweep: no crash; $failed statements or plans failed with an ordinary error (expected: policy refusals, newer syntax, missing data files)"
