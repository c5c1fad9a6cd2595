#!/usr/bin/env bash
# bench/zero_downtime.sh — one schema change (add users.full_name, fill it,
# make it NOT NULL, index it) done three ways under the same fixed-rate
# foreground load, next to a run without any migration:
#   1. baseline: no migration;
#   2. naive: one transaction (bench/zero_downtime/naive.sql, policy off);
#   3. careful by hand: lock_timeout, 10000-row batches, NOT VALID CHECK +
#      VALIDATE, SET NOT NULL, CREATE INDEX CONCURRENTLY
#      (bench/zero_downtime/careful.sql, policy off);
#   4. safe_migrate: migrate_apply + migrate_backfill + migrate_apply
#      (bench/zero_downtime/safe_migrate.sql, policy on);
#   5. online: run 2's naive script as one migrate_apply with the line
#      "-- safe_migrate:online" (bench/zero_downtime/online.sql, policy on):
#      safe_migrate runs the careful sequence itself.
# Each run gets a fresh users table of ROWS rows; the pgbench load (point
# UPDATE of note + point SELECT by id) runs DURATION seconds and the
# migration starts START_DELAY seconds into it.  Prints the migration wall
# time and the foreground p50/p99/max per run, over the whole load and over
# the migration's own window (the baseline over run 4's), and draws the foreground
# latency over time of runs 2-5 to bench/zero_downtime/latency.png from
# bench/zero_downtime/latency.dat (max latency per 100 ms per run).  The
# disk is sampled every 50 ms (bench/lib.sh, "the disk"): for each
# transaction over 50 ms the report says whether the disk was holding a
# write or flush then, and how fast it was being written to before.
#
# Run as root on Debian 12 with PostgreSQL 15, safe_migrate installed
# (`make install`) and gnuplot (apt-get install gnuplot-nox).  See
# bench/README.md.
#
# Parameters (environment variables):
#   ROWS            rows in users                              (default 2000000)
#   DURATION (or D) seconds of each pgbench run                (default 60)
#   RATE            pgbench target rate, transactions/s (-R)   (default 200)
#   CLIENTS         pgbench clients (-c)                       (default 4)
#   JOBS            pgbench threads (-j)                       (default 2)
#   START_DELAY     seconds into the load the migration starts (default 5)
#   PORT            port of the throwaway cluster              (default 54710)
#   RUN_TIMEOUT     seconds one migration may take             (default 3600)
#   OUT_DIR         where latency.dat / latency.png go   (default bench/zero_downtime)
#   PG_BIN          PostgreSQL 15 server binaries   (default /usr/lib/postgresql/15/bin)
#   PG_CONF_EXTRA   extra lines appended to postgresql.conf    (default empty;
#                   the cluster has min_wal_size = max_wal_size = 2GB)
#   KEEP_CLUSTER=1  keep the cluster directory on exit (for debugging)

set -euo pipefail
shopt -s inherit_errexit

ROWS="${ROWS:-2000000}"
DURATION="${DURATION:-${D:-60}}"
RATE="${RATE:-200}"
CLIENTS="${CLIENTS:-4}"
JOBS="${JOBS:-2}"
START_DELAY="${START_DELAY:-5}"
PORT="${PORT:-54710}"
RUN_TIMEOUT="${RUN_TIMEOUT:-3600}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZD="$BENCH_DIR/zero_downtime"
OUT_DIR="${OUT_DIR:-$ZD}"
USERS_SQL="$ZD/users.sql"
LOAD_SQL="$ZD/foreground.sql"
RUN_NAMES=(baseline naive careful safe_migrate online)
RUN_SQL=("" "$ZD/naive.sql" "$ZD/careful.sql" "$ZD/safe_migrate.sql" "$ZD/online.sql")

source "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- checks
bench_check_common pgbench
posint ROWS "$ROWS"
posint DURATION "$DURATION"
posint RATE "$RATE"
posint CLIENTS "$CLIENTS"
posint JOBS "$JOBS"
posint RUN_TIMEOUT "$RUN_TIMEOUT"
[[ "$START_DELAY" =~ ^[0-9]+$ ]] || die "START_DELAY must be a whole number of seconds (got '$START_DELAY')"
(( ROWS <= 2000000000 ))       || die "ROWS must be at most 2000000000 (got '$ROWS')"
(( START_DELAY < DURATION ))   || die "START_DELAY ($START_DELAY) must be less than DURATION ($DURATION)"
(( JOBS <= CLIENTS ))          || die "JOBS ($JOBS) must not exceed CLIENTS ($CLIENTS)"
for f in "$USERS_SQL" "$LOAD_SQL" "${RUN_SQL[@]:1}"; do
    [[ -f "$f" ]] || die "missing $f"
done
command -v gnuplot >/dev/null || die "gnuplot not found (apt-get install gnuplot-nox)"
mkdir -p "$OUT_DIR"

# ---------------------------------------------------------------- cluster
# WAL sized for the change, its files made in advance (see warm_up)
bench_start_bench_db sm_zero_downtime "shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32
$BENCH_WAL_CONF"
bench_disk_watch_start "$WORK/disk.txt"

# ---------------------------------------------------------------- helpers
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# fresh_users: drop the previous copy and everything the migrations left
# (history, backfill jobs), make a new users table, VACUUM ANALYZE, CHECKPOINT.
fresh_users() {
    local t0
    t0="$(now)"
    sql -c "DELETE FROM safe_migrate.migrations" \
        -c "DELETE FROM safe_migrate.backfill_jobs" >/dev/null
    sql -v rows="$ROWS" -f "$USERS_SQL" >/dev/null
    log "fresh users table of $ROWS rows in $(elapsed "$t0" "$(now)") s"
}

# check_migrated NAME: full_name filled everywhere, NOT NULL, indexed (valid).
check_migrated() {
    local r
    r="$(sql -F ' ' -c "SELECT
        (SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'full_name'),
        (SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_full_name'::regclass),
        (SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM first_name || ' ' || last_name)")"
    [[ "$r" == "t t 0" ]] || die "$1: migration incomplete (not null, index valid, bad rows: $r)"
}

# latency FILES...: "count p50 p99 max" in ms from pgbench -l logs (column
# 3: latency in us, with -R measured from the scheduled start, so it
# includes schedule lag).  Percentiles are nearest-rank.
latency() {
    awk '$3 ~ /^[0-9]+$/ { print $3 }' "$@" | bench_percentiles
}
# latency_window T0 FROM TO FILES...: the same, for the transactions that
# were under way at some point between FROM and TO seconds after the load
# started at epoch T0 (scheduled start <= TO and end >= FROM; pgbench -l
# gives the end time, the latency counts from the scheduled start).
latency_window() {
    local t0=$1 from=$2 to=$3
    shift 3
    awk -v t0="$t0" -v from="$from" -v to="$to" \
        '$3 ~ /^[0-9]+$/ { e = $5 + $6 / 1e6 - t0; s = e - $3 / 1e6
                           if (s <= to && e >= from) print $3 }' "$@" \
    | bench_percentiles
}
failed() { awk '$3 !~ /^[0-9]+$/ { n++ } END { print n + 0 }' "$@"; }

# one_run I: run number I (0-based) of RUN_NAMES: fresh table, load, and
# the migration START_DELAY s in.  Sets LOAD_T0[I], MIG_FROM[I], MIG_TO[I]
# (seconds since the load start) and WALL[I].
declare -a LOAD_T0 MIG_FROM MIG_TO WALL
one_run() {
    local i=$1 name=${RUN_NAMES[$1]} t0 t1 rc=0 pid
    log "run $((i + 1)) ($name): pgbench -R $RATE -c $CLIENTS for ${DURATION}s"
    fresh_users
    LOAD_T0[$i]="$(now)"
    "$PGBENCH" -n -c "$CLIENTS" -j "$JOBS" -R "$RATE" -T "$DURATION" -f "$LOAD_SQL" \
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
    [[ -n "${RUN_SQL[$i]}" ]] && check_migrated "run $((i + 1)) ($name)"
    log "run $((i + 1)) ($name): $(sql -c "SELECT count(*) FROM pg_ls_waldir()") WAL segment files"
    return 0
}

# warm_up: the WAL segment files made in advance, then one untimed pass of
# the migration without load.  A new cluster has few segment files; a
# backend that needs a new one zero-fills and fsyncs 16 MB while holding the
# WAL write lock, and every other commit waits: 50-80 ms foreground stalls
# (one 225 ms) wherever a run's WAL outgrew the files already there.  A
# server that has been running has as many as its recent WAL needed; the
# log line after each run shows that the count did not grow.
warm_up() {
    local t0
    bench_fill_wal bench 128
    fresh_users
    t0="$(now)"
    "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d bench -f "${RUN_SQL[3]}" >"$OUT/warm_up.migration" 2>&1 \
        || { cat "$OUT/warm_up.migration" >&2; die "warm-up: the migration failed"; }
    sql -c "CHECKPOINT" >/dev/null
    log "warm-up: one untimed pass of the migration in $(elapsed "$t0" "$(now)") s;" \
        "$(sql -c "SELECT count(*) FROM pg_ls_waldir()") WAL segment files"
}

# ---------------------------------------------------------------- runs
warm_up
for i in 0 1 2 3 4; do one_run "$i"; done
declare -a N P50 P99 MAX WN WP50 WP99 WMAX
for i in 0 1 2 3 4; do
    read -r N[$i] P50[$i] P99[$i] MAX[$i] <<<"$(latency "$OUT/${RUN_NAMES[$i]}".[0-9]*)"
done
# while each migration ran; the baseline over run 4's window
for i in 0 1 2 3 4; do
    w=$(( i == 0 ? 3 : i ))
    read -r WN[$i] WP50[$i] WP99[$i] WMAX[$i] <<<"$(latency_window "${LOAD_T0[$i]}" \
        "${MIG_FROM[$w]}" "${MIG_TO[$w]}" "$OUT/${RUN_NAMES[$i]}".[0-9]*)"
done

# ---------------------------------------------------------------- data + plot
# latency.dat: per 100 ms since the load start (by transaction end time,
# pgbench -l columns 5 and 6), the largest foreground latency (ms) per run;
# NaN where no transaction ended in that slot.
DAT="$OUT_DIR/latency.dat"
{
    echo "# bench/zero_downtime.sh: ROWS=$ROWS DURATION=$DURATION RATE=$RATE CLIENTS=$CLIENTS START_DELAY=$START_DELAY"
    echo "# max foreground latency (ms, pgbench -l, incl. schedule lag) of the transactions that ended in each 100 ms slot"
    for i in 1 2 3 4; do
        echo "# run $((i + 1)) ${RUN_NAMES[$i]}: migration from ${MIG_FROM[$i]} s to ${MIG_TO[$i]} s (wall ${WALL[$i]} s)"
    done
    echo "# t_s baseline naive careful safe_migrate online"
    args=()
    for i in 0 1 2 3 4; do
        args+=("run=$i" "t0=${LOAD_T0[$i]}" "$OUT/${RUN_NAMES[$i]}".[0-9]*)
    done
    awk '$3 ~ /^[0-9]+$/ {
            b = int(($5 + $6 / 1e6 - t0) * 10); if (b < 0) b = 0
            v = $3 / 1000; k = b SUBSEP run
            if (!(k in m) || v > m[k]) m[k] = v
            if (b > last) last = b
        }
        END {
            for (b = 0; b <= last; b++) {
                printf "%.1f", b / 10
                for (r = 0; r < 5; r++) {
                    k = b SUBSEP r
                    if (k in m) printf " %.2f", m[k]; else printf " NaN"
                }
                printf "\n"
            }
        }' "${args[@]}"
} >"$DAT"

PNG="$OUT_DIR/latency.png"
arrows=""
colors=("" "#d62728" "#1f77b4" "#2ca02c" "#9467bd")
for i in 1 2 3 4; do
    arrows+="set object rect from ${MIG_FROM[$i]}, graph $(( (i - 1) * 2 ))e-2 to ${MIG_TO[$i]}, graph $(( i * 2 - 1 ))e-2 fc rgb '${colors[$i]}' fs solid 0.7 noborder
"
done
gnuplot <<GP || die "gnuplot failed"
set terminal pngcairo size 1200,650 font ",10"
set output '$PNG'
set title "Foreground latency during the migration: users, $ROWS rows, pgbench -R $RATE -c $CLIENTS (max per 100 ms)"
set xlabel 'seconds since the load started (bars at the bottom: the migration of each run, start to end)'
set ylabel 'latency, ms (log scale)'
set logscale y
set grid
set key top right
# no 'set datafile missing': a NaN slot (no transaction ended in it, e.g.
# while the naive run holds its lock) breaks the line instead of bridging it
$arrows
plot '$DAT' using 1:3 with lines lw 1.5 lc rgb '${colors[1]}' title 'naive (one transaction)', \
     ''     using 1:4 with lines lw 1.5 lc rgb '${colors[2]}' title 'careful by hand', \
     ''     using 1:5 with lines lw 1.5 lc rgb '${colors[3]}' title 'safe\_migrate (three migrations by hand)', \
     ''     using 1:6 with lines lw 1.5 lc rgb '${colors[4]}' title 'safe\_migrate:online (the naive script)'
GP

# ---------------------------------------------------------------- report
echo
echo "safe_migrate zero-downtime benchmark: add users.full_name (fill, NOT NULL, index) on $ROWS rows"
echo "PostgreSQL $(sql -c 'SHOW server_version'), $(nproc) CPUs; load: pgbench -R $RATE -c $CLIENTS -j $JOBS," \
     "${DURATION}s, point UPDATE + SELECT by id; migration starts ${START_DELAY}s in"
echo
printf '  %-22s %14s %8s %10s %10s %10s\n' "run" "migration s" "txns" "p50 ms" "p99 ms" "max ms"
for i in 0 1 2 3 4; do
    printf '  %-22s %14s %8s %10s %10s %10s\n' "$((i + 1)). ${RUN_NAMES[$i]}" "${WALL[$i]:--}" \
        "${N[$i]}" "${P50[$i]}" "${P99[$i]}" "${MAX[$i]}"
done
echo "  (latency: pgbench -l per transaction over the whole load, with -R measured from the scheduled start)"
echo
echo "  only the transactions under way while the run's migration ran (baseline: run 4's window):"
printf '  %-22s %14s %8s %10s %10s %10s\n' "run" "window s" "txns" "p50 ms" "p99 ms" "max ms"
for i in 0 1 2 3 4; do
    w=$(( i == 0 ? 3 : i ))
    printf '  %-22s %14s %8s %10s %10s %10s\n' "$((i + 1)). ${RUN_NAMES[$i]}" \
        "${MIG_FROM[$w]}-${MIG_TO[$w]}" "${WN[$i]}" "${WP50[$i]}" "${WP99[$i]}" "${WMAX[$i]}"
done
echo "  latency over time: $PNG (data: $DAT)"
echo
args=()
for i in 0 1 2 3 4; do args+=("$((i + 1)). ${RUN_NAMES[$i]}" "${LOAD_T0[$i]}" "$OUT/${RUN_NAMES[$i]}"); done
bench_disk_report "$OUT_DIR" "${args[@]}"
yn() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo no; fi; }
echo "run 4 p99 within 2x of run 1: $(yn "${P99[3]} <= 2 * ${P99[0]}") (${P99[3]} ms vs ${P99[0]} ms)"
echo "run 4 max under 50 ms: $(yn "${MAX[3]} < 50") (${MAX[3]} ms)"
if [[ "${HOTHER[3]:--}" != - ]]; then
    echo "run 4 max under 50 ms apart from the disk's holds: $(yn "${HOTHER[3]} < 50") (${HOTHER[3]} ms)"
fi
echo "run 4 wall time within 1.5x of run 2: $(yn "${WALL[3]} <= 1.5 * ${WALL[1]}") (${WALL[3]} s vs ${WALL[1]} s)"
echo "run 5 (online) p99 within 2x of run 1: $(yn "${P99[4]} <= 2 * ${P99[0]}") (${P99[4]} ms vs ${P99[0]} ms)"
echo "run 5 (online) max under 50 ms: $(yn "${MAX[4]} < 50") (${MAX[4]} ms)"
if [[ "${HOTHER[4]:--}" != - ]]; then
    echo "run 5 (online) max under 50 ms apart from the disk's holds: $(yn "${HOTHER[4]} < 50") (${HOTHER[4]} ms)"
fi
echo "run 5 (online) wall time within 1.5x of run 2: $(yn "${WALL[4]} <= 1.5 * ${WALL[1]}") (${WALL[4]} s vs ${WALL[1]} s)"
