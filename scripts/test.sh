#!/usr/bin/env bash
# Run every safe_migrate test, as root on a Debian machine: GoogleTest (the
# pure C++ core), pg_regress, isolation specs and TAP tests against real
# PostgreSQL servers.  Ends with the server's version() (a "SERVER:" line)
# and one line counting passed and failed tests.
#
# Which server: Debian's PostgreSQL 15 packages by default;
#   PG_MAJOR=17 or PG_MAJOR=18   an assert-enabled server of that version,
#                                built once from Debian's source package by
#                                scripts/pgbuild.sh (cached, see there);
#   PG_MAJOR=15 PG_ASSERT=1      15 built the same way, with assertions;
#   PG_CONFIG=...                any other installation (a relocated copy,
#                                the sanitizer build).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${SAFE_MIGRATE_TEST_PORT:-54329}
# SAFE_MIGRATE_TAP narrows the TAP tests (e.g. 'test/t/02*.pl').
PG_MAJOR=${PG_MAJOR:-}
PG_ASSERT=${PG_ASSERT:-0}
if [ -n "$PG_MAJOR" ] && { [ "$PG_MAJOR" != 15 ] || [ "$PG_ASSERT" = 1 ]; }; then
    [ -z "${PG_CONFIG:-}" ] || { echo "RESULT: setup failed (PG_MAJOR and PG_CONFIG both set)"; exit 1; }
    echo "== PostgreSQL $PG_MAJOR with assertions (scripts/pgbuild.sh)"
    PG_CONFIG=$(bash "$ROOT/scripts/pgbuild.sh" "$PG_MAJOR" | tail -1)
    [ -x "$PG_CONFIG" ] || { echo "RESULT: setup failed (could not build PostgreSQL $PG_MAJOR)"; exit 1; }
fi
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
TAP_SET=${SAFE_MIGRATE_TAP:-test/t/*.pl}

bash "$ROOT/scripts/setup.sh" || { echo "RESULT: setup failed"; exit 1; }
source "$ROOT/scripts/cluster.sh"

WORK=$(mktemp -d /tmp/safe_migrate_test.XXXXXX)
cleanup() { cluster_stop "$WORK/cluster"; rm -rf "$WORK"; }
trap cleanup EXIT
LOGS=$ROOT/test/logs
rm -rf "$LOGS"; mkdir -p "$LOGS"

passed=0; failed=0; summary=()
# Each section's wall time is printed after it (CI has 90 minutes for every
# stage together: where they go must show in its log).
section_t0=0
took() { echo "   ($1: $((SECONDS - section_t0)) s)"; section_t0=$SECONDS; }
took setup
count() {  # name passed failed
    passed=$((passed + $2)); failed=$((failed + $3))
    summary+=("$1 $2/$(($2 + $3))")
}

# 1. GoogleTest: the pure C++ core
# SAFE_MIGRATE_GTEST=0 (.ci/run's 17 and 18 passes) leaves it out: the core
# is pure C++ without PostgreSQL, the same whatever the server; it runs on
# 15 and under the sanitizer.
if [ "${SAFE_MIGRATE_GTEST:-1}" = 1 ]; then
echo "== GoogleTest (core)"
# SANITIZE=1 (scripts/sanitize.sh): the core and its tests under ASan/UBSan too.
cmake_sanitize=()
[ "${SANITIZE:-0}" = 1 ] && cmake_sanitize=(-DSAFE_MIGRATE_SANITIZE=ON)
cmake -S "$ROOT" -B "$WORK/core-build" -DCMAKE_BUILD_TYPE=Release "${cmake_sanitize[@]}" >"$LOGS/cmake.log" 2>&1 &&
    cmake --build "$WORK/core-build" -j"$(nproc)" >>"$LOGS/cmake.log" 2>&1
(cd "$WORK/core-build" && ctest --output-on-failure) >"$LOGS/ctest.log" 2>&1
g_total=$(grep -oE 'tests failed out of [0-9]+' "$LOGS/ctest.log" | grep -oE '[0-9]+$' || echo 0)
g_failed=$(grep -oE '[0-9]+ tests failed' "$LOGS/ctest.log" | grep -oE '^[0-9]+' || echo 1)
[ -z "$g_total" ] && g_total=0
tail -3 "$LOGS/ctest.log"
count gtest $((g_total - g_failed)) "$g_failed"
took gtest
else
echo "== GoogleTest (core): left out here (SAFE_MIGRATE_GTEST=0)"
fi

# The suites write next to their inputs; run them as postgres in a copy.
cp -a "$ROOT/." "$WORK/src"
rm -rf "$WORK/src/test/logs"
chown -R postgres "$WORK"
cluster_start "$WORK/cluster" "$PORT"
SERVER_VERSION=$("$PGBIN/psql" -X -At -h "$WORK/cluster" -p "$PORT" -U postgres -d postgres \
                  -c 'SELECT version()' 2>&1)
echo "== server: $SERVER_VERSION"

# 2. pg_regress and isolation specs against the cluster
echo "== pg_regress and isolation"
for suite in "ISOLATION=" "REGRESS="; do  # regress alone, then isolation alone
    runuser -u postgres -- make -C "$WORK/src" installcheck PG_CONFIG="$PG_CONFIG" TAP_TESTS= "$suite" \
        PGHOST="$WORK/cluster" PGPORT="$PORT" PGUSER=postgres >>"$LOGS/installcheck.log" 2>&1
done
grep -E '^(test|not ok|ok) ' "$LOGS/installcheck.log"
# pg_regress 15 prints "test name ... ok"; 16 and later TAP-like "ok 1 - name"
r_ok=$(grep -cE '^test .* \.\.\. ok|^ok [0-9]+ +- ' "$LOGS/installcheck.log")
r_bad=$(grep -cE '^test .* \.\.\. FAILED|^not ok [0-9]+ +- ' "$LOGS/installcheck.log")
for f in regression.diffs test/isolation/output_iso/regression.diffs; do
    [ -f "$WORK/src/$f" ] && cat "$WORK/src/$f" && cp "$WORK/src/$f" "$LOGS/$(echo "$f" | tr / _)"
done
count regress+isolation "$r_ok" "$r_bad"
took regress+isolation

# 3. the client examples (a dbmate folder with psql, Alembic, knex)
echo "== examples"
PATH="$PGBIN:$PATH" PGHOST="$WORK/cluster" PGPORT="$PORT" PGUSER=postgres bash "$WORK/src/examples/run.sh" \
    >"$LOGS/examples.log" 2>&1
cat "$LOGS/examples.log"
e_ok=$(grep -c '^ok ' "$LOGS/examples.log")
e_bad=$(grep -c '^FAILED ' "$LOGS/examples.log")
grep -q '^examples: ' "$LOGS/examples.log" || e_bad=$((e_bad + 1))
count examples "$e_ok" "$e_bad"
took examples
cluster_stop "$WORK/cluster"
# SAFE_MIGRATE_KEEP_SERVER_LOGS=1 (scripts/sanitize.sh scans them): keep the
# server logs of every cluster, not only those of failed TAP runs.
keep_logs=${SAFE_MIGRATE_KEEP_SERVER_LOGS:-0}
[ "$keep_logs" = 1 ] && cp "$WORK/cluster/server.log" "$LOGS/regress_server.log"

# 4. TAP tests: each starts its own clusters (crashes, restarts, a replica).
# They wait far more than they compute (a whole run: ~110 s of CPU in ~650 s
# here), so they run SAFE_MIGRATE_TAP_JOBS at a time (default: the CPU
# count, at most 4); each test has its own clusters, ports (the test
# modules' port locks) and files.  A test that compares speeds or latencies
# says so with a line "# tap: alone" and runs after the others, by itself;
# a test that runs for minutes says "# tap: long" and starts first (prove
# starts them in the order given: a long one started last would run on alone).
# Each `make tapcheck` starts from an empty tmp_check: the logs of the first
# group are kept aside.
echo "== TAP"
tap_jobs=${SAFE_MIGRATE_TAP_JOBS:-$(nproc)}
[ "$tap_jobs" -gt 4 ] && tap_jobs=4
tap_all=$(cd "$WORK/src" && ls $TAP_SET)
# SAFE_MIGRATE_TAP_EXCLUDE="long alone" leaves out the tests marked with
# any of those words (.ci/run's shorter passes: the sanitizer's and 17's;
# every test runs in full on 15 and 18).  They are named in the output and
# counted apart in the RESULT line, never as passed.
tap_left_out=""
for mark in ${SAFE_MIGRATE_TAP_EXCLUDE:-}; do
    tap_left_out="$tap_left_out $(cd "$WORK/src" && grep -lx "# tap: $mark" $tap_all 2>/dev/null || true)"
done
tap_left_out=$(printf '%s\n' $tap_left_out | sort -u)
if [ -n "$tap_left_out" ]; then
    tap_all=$(printf '%s\n' $tap_all | grep -vxF "$tap_left_out" || true)
    echo "   left out here (marked '# tap: ${SAFE_MIGRATE_TAP_EXCLUDE// /|}'): $(echo $tap_left_out)"
fi
tap_alone=$(cd "$WORK/src" && grep -lx '# tap: alone' $tap_all 2>/dev/null || true)
tap_together=$(printf '%s\n' $tap_all | grep -vxF "$(printf '%s\n' $tap_alone)" || true)
[ -z "$tap_alone" ] && tap_together=$tap_all
tap_long=$(cd "$WORK/src" && grep -lx '# tap: long' $tap_together 2>/dev/null || true)
[ -n "$tap_long" ] &&
    tap_together="$tap_long $(printf '%s\n' $tap_together | grep -vxF "$(printf '%s\n' $tap_long)" || true)"
: >"$LOGS/tap.log"
TAP_LOGS=$WORK/tap_logs
mkdir -p "$TAP_LOGS"
tap_group() {  # jobs tests...
    local jobs=$1
    shift
    [ $# -gt 0 ] || return 0
    runuser -u postgres -- make -C "$WORK/src" tapcheck PG_CONFIG="$PG_CONFIG" \
        PROVE_FLAGS="--timer -j$jobs" PROVE_TESTS="$*" >>"$LOGS/tap.log" 2>&1
    cp -r "$WORK/src/tmp_check/log/." "$TAP_LOGS"/ 2>/dev/null || true
}
tap_group "$tap_jobs" $tap_together
tap_group 1 $tap_alone
# (--timer: each line starts with the clock time and ends with the test's)
grep -E '^(\[[0-9:]+\] )?test/t/.*\.\. ' "$LOGS/tap.log"
t_ok=$(grep -cE '^(\[[0-9:]+\] )?test/t/.*\.\. ok' "$LOGS/tap.log")
t_all=$(printf '%s\n' $tap_all | grep -c .)
if [ "$t_ok" -ne "$t_all" ]; then
    tail -40 "$LOGS/tap.log"
    cp -r "$TAP_LOGS" "$LOGS/tap_server_logs" 2>/dev/null || true
fi
[ "$keep_logs" = 1 ] && [ ! -d "$LOGS/tap_server_logs" ] &&
    cp -r "$TAP_LOGS" "$LOGS/tap_server_logs" 2>/dev/null
count tap "$t_ok" $((t_all - t_ok))
[ -n "$tap_left_out" ] &&
    summary[${#summary[@]}-1]+=" ($(printf '%s\n' $tap_left_out | grep -c .) left out)"
took tap

echo "SERVER: $SERVER_VERSION"
echo "RESULT: passed=$passed failed=$failed (${summary[*]})"
[ "$failed" -eq 0 ]
