#!/usr/bin/env bash
# bench/backfill.sh — the throttled backfill (migrate_backfill) of
# safe_migrate, side by side with what it replaces, on a table users of ROWS
# rows (a fresh copy for every measurement):
#   A. throughput: one plain UPDATE of every row versus an unthrottled
#      backfill (batch_size => 10000, target_batch_ms => 1000) of the same
#      change, wall time from submit to completion;
#   B. foreground latency: a fixed-rate pgbench load (point UPDATE + point
#      SELECT by primary key) for DURATION seconds, alone and with a backfill
#      at the default settings submitted START_DELAY seconds into the load.
#
# Run as root on Debian 12 with PostgreSQL 15 and safe_migrate installed
# (`make install`).  Installs nothing.  See bench/README.md.
#
# Parameters (environment variables):
#   ROWS            rows in users                              (default 2000000)
#   DURATION (or D) seconds of each pgbench run in part B      (default 30)
#   RATE            pgbench target rate, transactions/s (-R)   (default 200)
#   CLIENTS         pgbench clients (-c)                       (default 4)
#   JOBS            pgbench threads (-j)                       (default 2)
#   START_DELAY     seconds into the load the backfill is submitted (default 2)
#   PORT            port of the throwaway cluster              (default 54700)
#   RUN_TIMEOUT     seconds one timed run may take             (default 3600)
#   PG_BIN          PostgreSQL 15 server binaries   (default /usr/lib/postgresql/15/bin)
#   PG_CONF_EXTRA   extra lines appended to postgresql.conf    (default empty)
#   KEEP_CLUSTER=1  keep the cluster directory on exit (for debugging)

set -euo pipefail
shopt -s inherit_errexit

ROWS="${ROWS:-2000000}"
DURATION="${DURATION:-${D:-30}}"
RATE="${RATE:-200}"
CLIENTS="${CLIENTS:-4}"
JOBS="${JOBS:-2}"
START_DELAY="${START_DELAY:-2}"
PORT="${PORT:-54700}"
RUN_TIMEOUT="${RUN_TIMEOUT:-3600}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
USERS_SQL="$BENCH_DIR/backfill/users.sql"
LOAD_SQL="$BENCH_DIR/backfill/foreground.sql"
# The change both sides of A make, and the backfill of B.
SET_CLAUSE="full_name = first_name || ' ' || last_name"

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
[[ -f "$USERS_SQL" && -f "$LOAD_SQL" ]] || die "missing $USERS_SQL or $LOAD_SQL"

# ---------------------------------------------------------------- cluster
bench_start_bench_db sm_backfill "shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32"
n="$(sql -c "SHOW shared_preload_libraries")"
[[ "$n" == *safe_migrate* ]] || die "shared_preload_libraries is '$n', expected safe_migrate"

# ---------------------------------------------------------------- helpers
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# fresh_users: a new table users of ROWS rows (VACUUM ANALYZE included),
# then a CHECKPOINT so that every timed run starts from one.
fresh_users() {
    local t0
    t0="$(now)"
    sql -v rows="$ROWS" -f "$USERS_SQL" >/dev/null
    sql -c "CHECKPOINT"
    log "fresh users table of $ROWS rows in $(elapsed "$t0" "$(now)") s"
}

# check_filled WHAT: every row has full_name = first_name || ' ' || last_name.
check_filled() {
    local bad
    bad="$(sql -c "SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM first_name || ' ' || last_name")"
    [[ "$bad" == 0 ]] || die "$1: $bad rows without the expected full_name"
}

# submit_backfill ARGS: queue the backfill of SET_CLAUSE with the extra
# arguments ARGS (SQL, starting with ", " or empty); prints the job id.
submit_backfill() {
    sql -c "SELECT migrate_backfill('users', \$\$$SET_CLAUSE\$\$$1)"
}

# wait_backfill ID LABEL: block until the job has completed.
wait_backfill() {
    local out
    if ! out="$(timeout "$RUN_TIMEOUT" "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d bench \
            -c "SELECT migrate_backfill_wait($1, '$RUN_TIMEOUT seconds')" 2>&1)" \
            || [[ "$out" != completed ]]; then
        printf '[bench] ---- migrate_backfill_wait: %s\n' "$out" >&2
        sql -x -c "SELECT * FROM safe_migrate.backfills WHERE id = $1" >&2 || true
        show_server_log
        die "$2: backfill job $1 did not complete"
    fi
}

# start_sampler ID FILE: every second, one line of the job's progress
# ("epoch|status|rows_done|batches|current_batch_size|rows_per_second").
start_sampler() {
    local id="$1" file="$2"
    (
        while :; do
            "$PSQL" -X -q -At -d bench -c "SELECT extract(epoch FROM clock_timestamp()), status, rows_done,
                    batches, current_batch_size, rows_per_second
               FROM safe_migrate.backfills WHERE id = $id" 2>/dev/null || true
            sleep 1
        done
    ) >"$file" &
    SAMPLER_PID=$!
    BG_PIDS+=("$SAMPLER_PID")
}
stop_sampler() {
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
}

# job_summary ID SAMPLES: one line describing the finished job.
job_summary() {
    local id="$1" samples="$2" row sizes
    row="$(sql -F ' ' -c "SELECT rows_done, batches, current_batch_size, rows_per_second,
            retries
          FROM safe_migrate.backfills WHERE id = $id")"
    read -r J_ROWS J_BATCHES J_LAST J_RATE J_RETRIES <<<"$row"
    # batch sizes seen by the sampler, in order, repeats collapsed
    sizes="$(awk -F'|' '$5 != "" && $5 != prev { printf "%s%s", (n++ ? " " : ""), $5; prev = $5 }' "$samples")"
    J_SIZES="$sizes"
    # rows per batch between consecutive samples (rows_done and batches
    # deltas), the largest: compare with the batch sizes asked for
    J_ROWS_PER_BATCH="$(awk -F'|' '$4 != "" {
            if (seen && $4 > pb) { r = ($3 - pr) / ($4 - pb); if (r > m) m = r }
            seen = 1; pr = $3; pb = $4 }
        END { printf "%.0f", m }' "$samples")"
}

# failed FILES...: how many transactions of pgbench -l logs did not
# complete (a non-numeric latency column, e.g. "failed").
failed() { awk '$3 !~ /^[0-9]+$/ { n++ } END { print n + 0 }' "$@"; }

# latency FILES...: "count p50 p99 max max_lag" in ms from pgbench -l logs
# (column 3: latency in us, with -R measured from the scheduled start;
# column 7: schedule lag; columns 5, 6: when the transaction ended).
# WIN_FROM / WIN_TO (epoch seconds), when set, keep only transactions that
# ended in that window.  Percentiles are nearest-rank.
latency() {
    awk -v from="${WIN_FROM:-0}" -v to="${WIN_TO:-0}" '
        $3 !~ /^[0-9]+$/ { next }
        { t = $5 + $6 / 1e6; if (to > 0 && (t < from || t > to)) next;
          print $3, ($7 == "" ? 0 : $7) }' "$@" \
    | sort -n -k1,1 \
    | awk '{ v[NR] = $1; if ($2 > lag) lag = $2 }
        END {
            if (NR == 0) { print "0 - - - -"; exit }
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
            printf "%d %.2f %.2f %.2f %.2f\n", NR, v[i50] / 1000, v[i99] / 1000, v[NR] / 1000, lag / 1000
        }'
}

# run_load NAME: start the pgbench load in the background (PGBENCH_PID).
run_load() {
    "$PGBENCH" -n -c "$CLIENTS" -j "$JOBS" -R "$RATE" -T "$DURATION" -f "$LOAD_SQL" \
        -D rows="$ROWS" --random-seed=1 -l --log-prefix="$OUT/$1" bench >"$OUT/$1.out" 2>&1 &
    PGBENCH_PID=$!
    BG_PIDS+=("$PGBENCH_PID")
}
finish_load() {
    local rc=0
    wait "$PGBENCH_PID" || rc=$?
    if (( rc != 0 )) || grep -q 'aborted' "$OUT/$1.out"; then
        printf '[bench] ---- pgbench output (last 30 lines) ----\n' >&2
        tail -n 30 "$OUT/$1.out" >&2
        show_server_log
        die "$1: pgbench failed (exit status $rc)"
    fi
    compgen -G "$OUT/$1.[0-9]*" >/dev/null || die "$1: pgbench wrote no per-transaction log"
}

# ---------------------------------------------------------------- A. throughput
log "A1: one UPDATE of all $ROWS rows"
fresh_users
TABLE_MB="$(sql -c "SELECT round(pg_total_relation_size('users') / 1048576.0)")"
t0="$(now)"
timeout "$RUN_TIMEOUT" "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d bench \
    -c "UPDATE users SET $SET_CLAUSE" >"$OUT/a1.out" 2>&1 \
    || { cat "$OUT/a1.out" >&2; show_server_log; die "A1: the UPDATE failed"; }
t1="$(now)"
A_UPDATE_S="$(elapsed "$t0" "$t1")"
check_filled "A1"
log "A1: $A_UPDATE_S s"

log "A2: unthrottled backfill (batch_size => 10000, target_batch_ms => 1000)"
fresh_users
t0="$(now)"
A_ID="$(submit_backfill ", NULL, batch_size => 10000, target_batch_ms => 1000")"
start_sampler "$A_ID" "$OUT/a2.samples"
wait_backfill "$A_ID" "A2"
t1="$(now)"
stop_sampler
A_BACKFILL_S="$(elapsed "$t0" "$t1")"
check_filled "A2"
job_summary "$A_ID" "$OUT/a2.samples"
A_JOB="batches $J_BATCHES, last batch size $J_LAST, rows_per_second $J_RATE, retries $J_RETRIES"
A_SIZES="$J_SIZES"
A_ROWS_PER_BATCH="$J_ROWS_PER_BATCH"
[[ "$J_ROWS" == "$ROWS" ]] || die "A2: the job reports rows_done $J_ROWS, expected $ROWS"
log "A2: $A_BACKFILL_S s ($A_JOB)"

# ---------------------------------------------------------------- B. latency
log "B1: pgbench -R $RATE -c $CLIENTS -j $JOBS for ${DURATION}s, no backfill"
fresh_users
run_load b1
finish_load b1

log "B2: the same load, a default backfill submitted after ${START_DELAY}s"
fresh_users
run_load b2
sleep "$START_DELAY"
t0="$(now)"
B_ID="$(submit_backfill "")"
start_sampler "$B_ID" "$OUT/b2.samples"
( wait_backfill "$B_ID" "B2"; now >"$OUT/b2.done" ) &
WAITER_PID=$!
BG_PIDS+=("$WAITER_PID")
finish_load b2
t_load_end="$(now)"
wait "$WAITER_PID" || die "B2: waiting for the backfill failed"
t1="$(<"$OUT/b2.done")"
stop_sampler
B_BACKFILL_S="$(elapsed "$t0" "$t1")"
check_filled "B2"
job_summary "$B_ID" "$OUT/b2.samples"
B_JOB="batches $J_BATCHES, last batch size $J_LAST, rows_per_second $J_RATE, retries $J_RETRIES"
B_SIZES="$J_SIZES"
B_ROWS_PER_BATCH="$J_ROWS_PER_BATCH"
[[ "$J_ROWS" == "$ROWS" ]] || die "B2: the job reports rows_done $J_ROWS, expected $ROWS"
if awk -v a="$t1" -v b="$t_load_end" 'BEGIN { exit !(a <= b) }'; then
    B_WHEN="finished during the load, $(elapsed "$t1" "$t_load_end") s before its end"
else
    B_WHEN="finished $(elapsed "$t_load_end" "$t1") s after the load ended"
fi
log "B2: backfill $B_BACKFILL_S s ($B_WHEN)"

for run in b1 b2; do
    n="$(failed "$OUT/$run".[0-9]*)"
    [[ "$n" == 0 ]] || die "${run^^}: $n failed transactions in the pgbench log"
done
read -r B1_N B1_P50 B1_P99 B1_MAX B1_LAG <<<"$(latency "$OUT"/b1.[0-9]*)"
read -r B2_N B2_P50 B2_P99 B2_MAX B2_LAG <<<"$(latency "$OUT"/b2.[0-9]*)"
read -r W_N W_P50 W_P99 W_MAX W_LAG <<<"$(WIN_FROM="$t0" WIN_TO="$t1" latency "$OUT"/b2.[0-9]*)"

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
rps() { awk -v r="$ROWS" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? r / s : 0) }'; }

echo
echo "safe_migrate backfill benchmark: users, $ROWS rows ($TABLE_MB MB with its index)"
echo "PostgreSQL $(sql -c 'SHOW server_version'), shared_preload_libraries = safe_migrate, $(nproc) CPUs," \
     "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "A. Throughput: SET $SET_CLAUSE on every row"
printf '  %-44s %10s s %12s rows/s\n' "single UPDATE" "$A_UPDATE_S" "$(rps "$A_UPDATE_S")"
printf '  %-44s %10s s %12s rows/s\n' "backfill (batch_size 10000, target 1000 ms)" "$A_BACKFILL_S" "$(rps "$A_BACKFILL_S")"
echo "  backfill job: $A_JOB"
echo "  batch sizes seen (1 s samples): $A_SIZES"
echo "  largest rows/batch between two samples: $A_ROWS_PER_BATCH"
A_RATIO="$(ratio "$A_UPDATE_S" "$A_BACKFILL_S")"
if awk -v r="$A_RATIO" 'BEGIN { exit !(r >= 0.8) }'; then v=met; else v=missed; fi
echo "  speed ratio backfill/UPDATE: $A_RATIO (target >= 0.8) $v"
echo
echo "B. Foreground latency: pgbench -R $RATE -c $CLIENTS -j $JOBS, ${DURATION}s, point UPDATE + SELECT by id (bench/backfill/foreground.sql)"
printf '  %-26s %12s %14s %18s\n' "" "baseline" "with backfill" "(while it ran)"
printf '  %-26s %12s %14s %18s\n' "transactions" "$B1_N" "$B2_N" "$W_N"
printf '  %-26s %12s %14s %18s\n' "latency p50 ms" "$B1_P50" "$B2_P50" "$W_P50"
printf '  %-26s %12s %14s %18s\n' "latency p99 ms" "$B1_P99" "$B2_P99" "$W_P99"
printf '  %-26s %12s %14s %18s\n' "latency max ms" "$B1_MAX" "$B2_MAX" "$W_MAX"
printf '  %-26s %12s %14s %18s\n' "max schedule lag ms" "$B1_LAG" "$B2_LAG" "$W_LAG"
echo "  (latency: pgbench -l per-transaction time, with -R measured from the scheduled start, so it includes schedule lag)"
echo "  backfill (defaults), submitted ${START_DELAY}s into the load: wall time $B_BACKFILL_S s, $B_WHEN"
echo "  backfill job: $B_JOB"
echo "  batch sizes seen (1 s samples): $B_SIZES"
echo "  largest rows/batch between two samples: $B_ROWS_PER_BATCH"
echo
if awk -v a="$B2_P99" -v b="$B1_P99" 'BEGIN { exit !(a <= 2 * b) }'; then v=yes; else v=no; fi
echo "p99 within 2x of baseline: $v ($B2_P99 ms vs $B1_P99 ms)"
if awk -v a="$B2_MAX" 'BEGIN { exit !(a < 50) }'; then v=yes; else v=no; fi
echo "max under 50 ms: $v ($B2_MAX ms)"
