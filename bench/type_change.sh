#!/usr/bin/env bash
# bench/type_change.sh — ALTER TABLE users ALTER COLUMN id TYPE bigint (the
# primary key, integer, with a foreign key from orders pointing at it) under
# a fixed-rate foreground load that reads, updates and inserts rows, next to
# a run without any migration:
#   1. baseline: no migration;
#   2. naive: the statement as PostgreSQL runs it (bench/type_change/naive.sql,
#      policy off): one table rewrite under ACCESS EXCLUSIVE;
#   3. online: the same statement in one migrate_apply with the line
#      "-- safe_migrate:online" (bench/type_change/online.sql, policy on).
# Each run gets fresh tables (users of ROWS rows, orders of ROWS/4); the
# pgbench load (bench/type_change/foreground.sql: a point UPDATE, an INSERT
# of a user and of an order, then a point SELECT) runs DURATION seconds and
# the migration starts START_DELAY seconds into it.  After each run the
# application's own logs of its writes are checked against the table: every
# row written during the change present, with its latest value.  Prints the
# migration wall time and the foreground p50/p99/max per run (whole load
# and the migration's own window), and draws the foreground latency over
# time to bench/type_change/latency.png (data: latency.dat).  The disk is
# sampled every 50 ms (bench/lib.sh, "the disk"): for each transaction over
# 50 ms the report says whether the disk was holding a write or flush then.
#
# Run as root on Debian 12 with PostgreSQL 15, safe_migrate installed
# (`make install`) and gnuplot (apt-get install gnuplot-nox).
#
# Parameters (environment variables):
#   ROWS            rows in users                              (default 2000000)
#   DURATION (or D) seconds of each pgbench run                (default 240)
#   RATE            pgbench target rate, transactions/s (-R)   (default 200)
#   CLIENTS         pgbench clients (-c)                       (default 4)
#   JOBS            pgbench threads (-j)                       (default 2)
#   START_DELAY     seconds into the load the migration starts (default 5)
#   PORT            port of the throwaway cluster              (default 54720)
#   RUN_TIMEOUT     seconds one migration may take             (default 3600)
#   OUT_DIR         where latency.dat / latency.png go   (default bench/type_change)
#   PG_BIN          PostgreSQL 15 server binaries   (default /usr/lib/postgresql/15/bin)
#   PG_CONF_EXTRA   extra lines appended to postgresql.conf    (default empty)
#   KEEP_CLUSTER=1  keep the cluster directory on exit (for debugging)

set -euo pipefail
shopt -s inherit_errexit

ROWS="${ROWS:-2000000}"
DURATION="${DURATION:-${D:-240}}"
RATE="${RATE:-200}"
CLIENTS="${CLIENTS:-4}"
JOBS="${JOBS:-2}"
START_DELAY="${START_DELAY:-5}"
PORT="${PORT:-54720}"
RUN_TIMEOUT="${RUN_TIMEOUT:-3600}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TC="$BENCH_DIR/type_change"
OUT_DIR="${OUT_DIR:-$TC}"
RUN_NAMES=(baseline naive online)
RUN_SQL=("" "$TC/naive.sql" "$TC/online.sql")

source "$BENCH_DIR/lib.sh"

bench_check_common pgbench
posint ROWS "$ROWS"
posint DURATION "$DURATION"
posint RATE "$RATE"
posint CLIENTS "$CLIENTS"
posint JOBS "$JOBS"
posint RUN_TIMEOUT "$RUN_TIMEOUT"
[[ "$START_DELAY" =~ ^[0-9]+$ ]] || die "START_DELAY must be a whole number of seconds (got '$START_DELAY')"
(( ROWS <= 1000000000 ))       || die "ROWS must be at most 1000000000 (got '$ROWS')"
(( START_DELAY < DURATION ))   || die "START_DELAY ($START_DELAY) must be less than DURATION ($DURATION)"
(( JOBS <= CLIENTS ))          || die "JOBS ($JOBS) must not exceed CLIENTS ($CLIENTS)"
for f in "$TC/tables.sql" "$TC/foreground.sql" "${RUN_SQL[@]:1}"; do
    [[ -f "$f" ]] || die "missing $f"
done
command -v gnuplot >/dev/null || die "gnuplot not found (apt-get install gnuplot-nox)"
mkdir -p "$OUT_DIR"

bench_start_bench_db sm_type_change "shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32
$BENCH_WAL_CONF"
bench_disk_watch_start "$WORK/disk.txt"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

fresh_tables() {
    local t0
    t0="$(now)"
    sql -c "DELETE FROM safe_migrate.migrations" -c "DELETE FROM safe_migrate.backfill_jobs" >/dev/null
    sql -v rows="$ROWS" -f "$TC/tables.sql" >/dev/null
    log "fresh tables (users: $ROWS rows) in $(elapsed "$t0" "$(now)") s"
}

# check_run NAME MIGRATED: the writes against the table (every update's
# user has v = its number of logged updates, every inserted user is there,
# no user is there that was neither loaded nor inserted); after a migration
# also: id bigint, primary key valid, the foreign key there and valid.
check_run() {
    local r
    r="$(sql -F ' ' -c "SELECT
        (SELECT count(*) FROM users u LEFT JOIN (SELECT id, count(*) AS n FROM wlog GROUP BY id) w USING (id)
          WHERE u.v <> coalesce(w.n, 0)),
        (SELECT count(*) FROM ilog LEFT JOIN users USING (id) WHERE users.id IS NULL),
        (SELECT count(*) FROM users) - $ROWS - (SELECT count(*) FROM ilog),
        (SELECT count(*) FROM wlog)")"
    read -r bad_v missing extra updates <<<"$r"
    [[ "$bad_v $missing $extra" == "0 0 0" ]] \
        || die "$1: writes lost or wrong (users with a wrong v: $bad_v, inserted users missing: $missing, unexplained rows: $extra)"
    log "$1: all $updates updates and $(sql -c "SELECT count(*) FROM ilog") inserts present with their latest values"
    if [[ "$2" == 1 ]]; then
        r="$(sql -F ' ' -c "SELECT format_type(a.atttypid, a.atttypmod),
            (SELECT indisvalid AND indisprimary FROM pg_index WHERE indexrelid = 'users_pkey'::regclass),
            (SELECT convalidated FROM pg_constraint WHERE conname = 'orders_user_id_fkey')
            FROM pg_attribute a WHERE a.attrelid = 'users'::regclass AND a.attname = 'id'")"
        [[ "$r" == "bigint t t" ]] || die "$1: migration incomplete (type, primary key valid, foreign key valid: $r)"
    fi
}

latency() { awk '$3 ~ /^[0-9]+$/ { print $3 }' "$@" | bench_percentiles; }
latency_window() {
    local t0=$1 from=$2 to=$3
    shift 3
    awk -v t0="$t0" -v from="$from" -v to="$to" \
        '$3 ~ /^[0-9]+$/ { e = $5 + $6 / 1e6 - t0; s = e - $3 / 1e6
                           if (s <= to && e >= from) print $3 }' "$@" \
    | bench_percentiles
}
failed() { awk '$3 !~ /^[0-9]+$/ { n++ } END { print n + 0 }' "$@"; }

declare -a LOAD_T0 MIG_FROM MIG_TO WALL
one_run() {
    local i=$1 name=${RUN_NAMES[$1]} t0 t1 rc=0 pid
    log "run $((i + 1)) ($name): pgbench -R $RATE -c $CLIENTS for ${DURATION}s"
    fresh_tables
    LOAD_T0[$i]="$(now)"
    "$PGBENCH" -n -c "$CLIENTS" -j "$JOBS" -R "$RATE" -T "$DURATION" -f "$TC/foreground.sql" \
        -D rows="$ROWS" --random-seed=1 -l --log-prefix="$OUT/$name" bench >"$OUT/$name.out" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    if [[ -n "${RUN_SQL[$i]}" ]]; then
        sleep "$START_DELAY"
        t0="$(now)"
        timeout "$RUN_TIMEOUT" "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d bench \
            -f "${RUN_SQL[$i]}" >"$OUT/$name.migration" 2>&1 \
            || { cat "$OUT/$name.migration" >&2; show_server_log; die "run $((i + 1)) ($name): the migration failed"; }
        t1="$(now)"
        WALL[$i]="$(elapsed "$t0" "$t1")"
        MIG_FROM[$i]="$(elapsed "${LOAD_T0[$i]}" "$t0")"
        MIG_TO[$i]="$(elapsed "${LOAD_T0[$i]}" "$t1")"
        log "run $((i + 1)) ($name): migration $(tr '\n' ' ' <"$OUT/$name.migration")in ${WALL[$i]} s"
        awk -v to="${MIG_TO[$i]}" -v d="$DURATION" 'BEGIN { exit !(to < d) }' \
            || log "run $((i + 1)) ($name): WARNING: the migration outlasted the load (raise DURATION)"
    fi
    wait "$pid" || rc=$?
    if (( rc != 0 )) || grep -q 'aborted' "$OUT/$name.out"; then
        tail -n 30 "$OUT/$name.out" >&2
        show_server_log
        die "run $((i + 1)) ($name): pgbench failed (exit status $rc)"
    fi
    compgen -G "$OUT/$name.[0-9]*" >/dev/null || die "run $((i + 1)) ($name): pgbench wrote no per-transaction log"
    local n; n="$(failed "$OUT/$name".[0-9]*)"
    [[ "$n" == 0 ]] || die "run $((i + 1)) ($name): $n failed transactions in the pgbench log"
    check_run "run $((i + 1)) ($name)" "$([[ -n "${RUN_SQL[$i]}" ]] && echo 1 || echo 0)"
    return 0
}

bench_fill_wal bench 128
for i in 0 1 2; do one_run "$i"; done
declare -a N P50 P99 MAX WN WP50 WP99 WMAX
for i in 0 1 2; do
    read -r N[$i] P50[$i] P99[$i] MAX[$i] <<<"$(latency "$OUT/${RUN_NAMES[$i]}".[0-9]*)"
    w=$(( i == 0 ? 2 : i ))
    read -r WN[$i] WP50[$i] WP99[$i] WMAX[$i] <<<"$(latency_window "${LOAD_T0[$i]}" \
        "${MIG_FROM[$w]}" "${MIG_TO[$w]}" "$OUT/${RUN_NAMES[$i]}".[0-9]*)"
done

DAT="$OUT_DIR/latency.dat"
{
    echo "# bench/type_change.sh: ROWS=$ROWS DURATION=$DURATION RATE=$RATE CLIENTS=$CLIENTS START_DELAY=$START_DELAY"
    echo "# max foreground latency (ms, pgbench -l, incl. schedule lag) of the transactions that ended in each 100 ms slot"
    for i in 1 2; do
        echo "# run $((i + 1)) ${RUN_NAMES[$i]}: migration from ${MIG_FROM[$i]} s to ${MIG_TO[$i]} s (wall ${WALL[$i]} s)"
    done
    echo "# t_s baseline naive online"
    args=()
    for i in 0 1 2; do args+=("run=$i" "t0=${LOAD_T0[$i]}" "$OUT/${RUN_NAMES[$i]}".[0-9]*); done
    awk '$3 ~ /^[0-9]+$/ {
            b = int(($5 + $6 / 1e6 - t0) * 10); if (b < 0) b = 0
            v = $3 / 1000; k = b SUBSEP run
            if (!(k in m) || v > m[k]) m[k] = v
            if (b > last) last = b
        }
        END {
            for (b = 0; b <= last; b++) {
                printf "%.1f", b / 10
                for (r = 0; r < 3; r++) { k = b SUBSEP r; if (k in m) printf " %.2f", m[k]; else printf " NaN" }
                printf "\n"
            }
        }' "${args[@]}"
} >"$DAT"

PNG="$OUT_DIR/latency.png"
gnuplot <<GP || die "gnuplot failed"
set terminal pngcairo size 1200,600 font ",10"
set output '$PNG'
set title "ALTER COLUMN id TYPE bigint: users $ROWS rows, orders -> users, pgbench -R $RATE -c $CLIENTS (max per 100 ms)"
set xlabel 'seconds since the load started (bars at the bottom: the migration of each run)'
set ylabel 'latency, ms (log scale)'
set logscale y
set grid
set key top right
set object rect from ${MIG_FROM[1]}, graph 0 to ${MIG_TO[1]}, graph 0.01 fc rgb '#d62728' fs solid 0.7 noborder
set object rect from ${MIG_FROM[2]}, graph 0.02 to ${MIG_TO[2]}, graph 0.03 fc rgb '#9467bd' fs solid 0.7 noborder
plot '$DAT' using 1:2 with lines lw 1 lc rgb '#7f7f7f' title 'no migration', \
     ''     using 1:3 with lines lw 1.5 lc rgb '#d62728' title 'naive ALTER COLUMN TYPE', \
     ''     using 1:4 with lines lw 1.5 lc rgb '#9467bd' title 'safe\_migrate:online'
GP

echo
echo "safe_migrate type change benchmark: ALTER TABLE users ALTER COLUMN id TYPE bigint on $ROWS rows (orders -> users)"
echo "PostgreSQL $(sql -c 'SHOW server_version'), $(nproc) CPUs; load: pgbench -R $RATE -c $CLIENTS -j $JOBS," \
     "${DURATION}s, point UPDATE + INSERTs + SELECT; migration starts ${START_DELAY}s in"
echo
printf '  %-14s %12s %8s %10s %10s %10s\n' "run" "migration s" "txns" "p50 ms" "p99 ms" "max ms"
for i in 0 1 2; do
    printf '  %-14s %12s %8s %10s %10s %10s\n' "$((i + 1)). ${RUN_NAMES[$i]}" "${WALL[$i]:--}" \
        "${N[$i]}" "${P50[$i]}" "${P99[$i]}" "${MAX[$i]}"
done
echo
echo "  only the transactions under way while the run's migration ran (baseline: run 3's window):"
for i in 0 1 2; do
    w=$(( i == 0 ? 2 : i ))
    printf '  %-14s %12s %8s %10s %10s %10s\n' "$((i + 1)). ${RUN_NAMES[$i]}" \
        "${MIG_FROM[$w]}-${MIG_TO[$w]}" "${WN[$i]}" "${WP50[$i]}" "${WP99[$i]}" "${WMAX[$i]}"
done
echo "  latency over time: $PNG (data: $DAT)"
echo
args=()
for i in 0 1 2; do args+=("$((i + 1)). ${RUN_NAMES[$i]}" "${LOAD_T0[$i]}" "$OUT/${RUN_NAMES[$i]}"); done
bench_disk_report "$OUT_DIR" "${args[@]}"
yn() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo no; fi; }
# The verdict compares the migration's own window with the same window of
# the baseline: over the whole load, the quiet time after the migration
# would dilute the online run's p99.
echo "online p99 within 2x of the baseline, the migration's window: $(yn "${WP99[2]} <= 2 * ${WP99[0]}") (${WP99[2]} ms vs ${WP99[0]} ms)"
echo "online p99 within 2x of the baseline, the whole load: $(yn "${P99[2]} <= 2 * ${P99[0]}") (${P99[2]} ms vs ${P99[0]} ms)"
echo "the migration ended within the load: $(yn "${MIG_TO[2]} < $DURATION") (at ${MIG_TO[2]} s of ${DURATION} s)"
echo "online max under 100 ms: $(yn "${MAX[2]} < 100") (${MAX[2]} ms)"
if [[ "${HOTHER[2]:--}" != - ]]; then
    echo "online max under 100 ms apart from the disk's holds: $(yn "${HOTHER[2]} < 100") (${HOTHER[2]} ms)"
fi
echo "naive statement's stall (max): ${MAX[1]} ms"
echo "every write present with its latest value after each run: yes (checked)"
