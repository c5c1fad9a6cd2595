#!/usr/bin/env bash
# bench/apply_vs_dbmate.sh — wall-clock comparison of applying N migrations
# with dbmate (`dbmate up`) versus safe_migrate (`SELECT migrate_apply(...)`,
# N statements in one psql session).
#
# Run as root on Debian 12 with PostgreSQL 15 and safe_migrate installed
# (`make install`).  See bench/README.md.
#
# Parameters (environment variables):
#   N               migrations per run                         (default 1000)
#   RUNS            repetitions of each tool, alternating A/B  (default 3)
#   PORT            port of the throwaway cluster              (default 54400)
#   DBMATE_VERSION  npm version of dbmate to install           (default 2.36.0)
#   DBMATE_PREFIX   where dbmate is npm-installed              (default bench/.npm)
#   RUN_TIMEOUT     seconds one timed run may take             (default 3600)
#   PG_BIN          PostgreSQL 15 server binaries   (default /usr/lib/postgresql/15/bin)
#   PG_CONF_EXTRA   extra lines appended to postgresql.conf    (default empty)
#   KEEP_CLUSTER=1  keep the cluster directory on exit (for debugging)

set -euo pipefail
shopt -s inherit_errexit

N="${N:-1000}"
RUNS="${RUNS:-3}"
PORT="${PORT:-54400}"
DBMATE_VERSION="${DBMATE_VERSION:-2.36.0}"
RUN_TIMEOUT="${RUN_TIMEOUT:-3600}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DBMATE_PREFIX="${DBMATE_PREFIX:-$BENCH_DIR/.npm}"

source "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- checks
bench_check_common
posint N "$N"
posint RUNS "$RUNS"
(( N <= 999999 ))              || die "N must be at most 999999 (versions are 20260101NNNNNN)"

# ---------------------------------------------------------------- dbmate
DBMATE="$DBMATE_PREFIX/node_modules/.bin/dbmate"
if ! { [[ -x "$DBMATE" ]] && "$DBMATE" --version 2>/dev/null | grep -F "$DBMATE_VERSION" >/dev/null; }; then
    if ! command -v npm >/dev/null; then
        log "npm not found: installing nodejs and npm with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq nodejs npm >&2
    fi
    log "installing dbmate@$DBMATE_VERSION from npm into $DBMATE_PREFIX"
    mkdir -p "$DBMATE_PREFIX"
    npm install --prefix "$DBMATE_PREFIX" --no-audit --no-fund --no-save --loglevel=error \
        "dbmate@$DBMATE_VERSION" >&2 || die "npm install dbmate@$DBMATE_VERSION failed"
    [[ -x "$DBMATE" ]] || die "dbmate binary not found at $DBMATE after npm install"
fi
log "using $("$DBMATE" --version) ($DBMATE)"

# ---------------------------------------------------------------- cluster
bench_cluster_start sm_bench "max_worker_processes = 16"
MIGDIR="$WORK/db/migrations"
mkdir -p "$MIGDIR"

# psql as the superuser over the private socket; -X ignores ~/.psqlrc.
export PGOPTIONS="-c client_min_messages=warning"
sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }

# ---------------------------------------------------------------- migrations
log "generating $N dbmate migration files in $MIGDIR"
versions=()
names=()
for (( i = 1; i <= N; i++ )); do
    v="$(printf '20260101%06d' "$i")"
    t="$(printf 't_%04d' "$i")"
    versions+=("$v")
    names+=("create_$t")
    printf -- '-- migrate:up\nCREATE TABLE %s (id bigint primary key, name text, created_at timestamptz default now());\n\n-- migrate:down\nDROP TABLE %s;\n' \
        "$t" "$t" >"$MIGDIR/${v}_create_${t}.sql"
done

# A dollar-quote tag that occurs in no migration file.
tag_n=0
while grep -rqF -- "\$sm${tag_n}\$" "$MIGDIR"; do tag_n=$((tag_n + 1)); done
TAG="\$sm${tag_n}\$"

APPLY_SQL="$WORK/apply.sql"
{
    for (( i = 0; i < N; i++ )); do
        f="$MIGDIR/${versions[i]}_${names[i]}.sql"
        printf 'SELECT version, status FROM migrate_apply(%s%s%s, %s, %s);\n' \
            "$TAG" "$(<"$f")" "$TAG" "'${versions[i]}'" "'${names[i]}'"
    done
} >"$APPLY_SQL"
chmod -R a+rX "$WORK"
log "generated $APPLY_SQL ($(wc -l <"$APPLY_SQL") lines incl. line breaks inside scripts; dollar-quote tag $TAG)"

# ---------------------------------------------------------------- runs
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

count_tables() {
    sql -d "$1" -c "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'public' AND tablename ~ '^t_[0-9]+\$'"
}

# run_dbmate RUN -> prints seconds on stdout
run_dbmate() {
    local db="bench_dbmate_$1" out="$WORK/dbmate_$1.out" t0 t1 n
    sql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    local url="postgres://postgres@/$db?socket=$SOCK&port=$PORT&sslmode=disable"
    t0="$(now)"
    if ! timeout "$RUN_TIMEOUT" "$DBMATE" --url "$url" --migrations-dir "$MIGDIR" \
            --no-dump-schema up >"$out" 2>&1; then
        t1="$(now)"
        printf '[bench] ---- dbmate output (last 30 lines) ----\n' >&2
        tail -n 30 "$out" >&2
        show_server_log
        die "run A$1: dbmate up failed after $(elapsed "$t0" "$t1") s (exit status above; timeout is ${RUN_TIMEOUT}s)"
    fi
    t1="$(now)"
    n="$(count_tables "$db")"
    [[ "$n" == "$N" ]] || die "run A$1: expected $N tables t_NNNN after dbmate up, found $n"
    n="$(sql -d "$db" -c "SELECT count(*) FROM schema_migrations")"
    [[ "$n" == "$N" ]] || die "run A$1: expected $N rows in schema_migrations, found $n"
    sql -d postgres -c "DROP DATABASE $db"
    elapsed "$t0" "$t1"
}

# run_safe_migrate RUN -> prints seconds on stdout
run_safe_migrate() {
    local db="bench_sm_$1" out="$WORK/sm_$1.out" t0 t1 n bad
    sql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    sql -d "$db" -c "CREATE EXTENSION safe_migrate"
    t0="$(now)"
    if ! timeout "$RUN_TIMEOUT" "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" \
            -U postgres -d "$db" -f "$APPLY_SQL" >"$out" 2>&1; then
        t1="$(now)"
        printf '[bench] ---- psql output (last 30 lines) ----\n' >&2
        tail -n 30 "$out" >&2
        show_server_log
        die "run B$1: applying with migrate_apply failed after $(elapsed "$t0" "$t1") s (timeout is ${RUN_TIMEOUT}s)"
    fi
    t1="$(now)"
    # Every call must have answered "<version>|applied".
    n="$(grep -c '|applied$' "$out" || true)"
    if [[ "$n" != "$N" ]]; then
        printf '[bench] ---- psql output, lines not "|applied" (first 20) ----\n' >&2
        grep -v '|applied$' "$out" | head -n 20 >&2 || true
        die "run B$1: expected $N calls returning status 'applied', got $n"
    fi
    n="$(count_tables "$db")"
    [[ "$n" == "$N" ]] || die "run B$1: expected $N tables t_NNNN after migrate_apply, found $n"
    n="$(sql -d "$db" -c "SELECT count(*) FROM safe_migrate.migrations")"
    bad="$(sql -d "$db" -c "SELECT count(*) FROM safe_migrate.migrations WHERE status <> 'applied'")"
    if [[ "$n" != "$N" || "$bad" != 0 ]]; then
        sql -d "$db" -c "SELECT status, count(*) FROM safe_migrate.migrations GROUP BY 1" >&2 || true
        die "run B$1: expected $N rows in safe_migrate.migrations all 'applied', found $n rows of which $bad not 'applied'"
    fi
    sql -d postgres -c "DROP DATABASE $db"
    elapsed "$t0" "$t1"
}

median() { bench_median 3 "$@"; }

a_times=()
b_times=()
for (( r = 1; r <= RUNS; r++ )); do
    log "run $r/$RUNS  A: dbmate up ($N migrations)"
    a="$(run_dbmate "$r")"
    log "run $r/$RUNS  A: ${a} s"
    log "run $r/$RUNS  B: safe_migrate migrate_apply x $N (one psql session)"
    b="$(run_safe_migrate "$r")"
    log "run $r/$RUNS  B: ${b} s"
    a_times+=("$a")
    b_times+=("$b")
done

# ---------------------------------------------------------------- report
med_a="$(median "${a_times[@]}")"
med_b="$(median "${b_times[@]}")"

echo
echo "safe_migrate vs dbmate: $N migrations (CREATE TABLE each), $RUNS runs each, alternating"
echo "dbmate $("$DBMATE" --version | awk '{print $NF}'), PostgreSQL $(sql -d postgres -c 'SHOW server_version'), $(nproc) CPUs"
echo
printf '%-8s %14s %18s %10s\n' "run" "dbmate (s)" "safe_migrate (s)" "ratio"
printf '%-8s %14s %18s %10s\n' "--------" "--------------" "------------------" "----------"
for (( r = 0; r < RUNS; r++ )); do
    printf '%-8s %14s %18s %10s\n' "$((r + 1))" "${a_times[r]}" "${b_times[r]}" \
        "$(awk -v a="${a_times[r]}" -v b="${b_times[r]}" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')"
done
printf '%-8s %14s %18s %10s\n' "--------" "--------------" "------------------" "----------"
printf '%-8s %14s %18s %10s\n' "median" "$med_a" "$med_b" \
    "$(awk -v a="$med_a" -v b="$med_b" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')"
printf '%-8s %14s %18s\n' "ms/migr" \
    "$(awk -v s="$med_a" -v n="$N" 'BEGIN { printf "%.3f", s * 1000 / n }')" \
    "$(awk -v s="$med_b" -v n="$N" 'BEGIN { printf "%.3f", s * 1000 / n }')"
echo
ratio="$(awk -v a="$med_a" -v b="$med_b" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')"
echo "ratio safe_migrate/dbmate (medians): $ratio"
if awk -v a="$med_a" -v b="$med_b" 'BEGIN { exit !(b <= a) }'; then
    echo "safe_migrate is not slower than dbmate: yes"
else
    echo "safe_migrate is not slower than dbmate: no"
fi
