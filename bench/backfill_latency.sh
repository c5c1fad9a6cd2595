#!/usr/bin/env bash
# bench/backfill_latency.sh — issue 16: a backfill the application cannot
# feel.  Side by side in one cluster, on a fresh users table of ROWS rows for
# every measurement:
#   A. idle server: one plain UPDATE of every row versus the DEFAULT backfill
#      of the same change (wall time from submit to completion; nothing polls
#      the server meanwhile), IDLE_RUNS pairs one after the other (this
#      machine's disk moves either one by 40 % from one minute to the next);
#      target: the median of the pairs' ratios, backfill >= 0.8x the
#      UPDATE's speed;
#   B. RUNS times: a fixed-rate foreground load (pgbench -R RATE, point
#      UPDATE + SELECT by primary key, per-transaction log) for DURATION
#      seconds, first alone (the run's own baseline), then with the seed's
#      change (full_name = first_name || ' ' || last_name) submitted with the
#      default settings START_DELAY seconds into the load.  Per run: p99 and
#      max of the whole run (aftermath included: the load goes on after the
#      backfill ends) against the baseline's; targets p99 <= 1.5x baseline,
#      max < 50 ms.  A 1 Hz sampler records the job's progress view
#      (rate, throttled_by, the worker's probe, duty): a monitoring query
#      once a second over one connection, as a DBA would run, in the
#      baseline runs too.
# The disk is sampled every 50 ms (bench/lib.sh, "the disk"): each run
# also says which of its stalls over 50 ms met a write or flush the disk
# held 40 ms or more (and how fast it was being written to before), and the
# largest latency outside such holds; the count of runs meeting the target
# is given again with that latency in place of the maximum.
# Writes OUT_DIR/result.txt, latency.dat, rate.dat and latency.svg (the
# foreground's latency and the backfill's rate over time, last run; drawn
# by awk, no plotting tool needed).
#
# Run as root with PostgreSQL 15 and safe_migrate installed.  Parameters:
#   ROWS         rows in users                                (default 2000000)
#   RUNS         baseline + migration pairs                   (default 5)
#   DURATION     seconds of each load                         (default 300:
#                the job took 60 to 190 s of it on this machine, depending
#                on the day's disk; a run counts only if the job ended
#                AFTER_MIN seconds before the load did)
#   AFTER_MIN    seconds of load a run must still have after the job ends,
#                its aftermath (autovacuum of the old row versions, the
#                write-back, the next checkpoint's start)   (default 30)
#   RATE         pgbench target rate, transactions/s (-R)     (default 200)
#   CLIENTS/JOBS pgbench clients / threads                    (default 4 / 2)
#   START_DELAY  seconds into the load the backfill is submitted (default 5)
#   WARMUP       seconds of untimed load on the fresh table before each
#                measured load (its first reads and plans; default 5)
#   IDLE=0       skip part A;  LOADED=0 skip part B
#   IDLE_RUNS    UPDATE + backfill pairs of part A            (default 3)
#   PORT         port of the throwaway cluster                (default 54740)
#   OUT_DIR      where the results go          (default bench/backfill_latency)
#   PG_BIN       PostgreSQL 15 binaries        (default /usr/lib/postgresql/15/bin)
#   PG_CONF_EXTRA extra postgresql.conf lines;  KEEP_CLUSTER=1 keep it
#   BACKFILL_ARGS extra migrate_backfill arguments for part B (SQL, e.g.
#                 ", max_rows_per_second => 20000"); default none: the defaults
#   BUDGET       SET safe_migrate.backfill_latency_budget before submitting (default: unset)

set -euo pipefail
shopt -s inherit_errexit

ROWS="${ROWS:-2000000}"
RUNS="${RUNS:-5}"
DURATION="${DURATION:-300}"
AFTER_MIN="${AFTER_MIN:-30}"
RATE="${RATE:-200}"
CLIENTS="${CLIENTS:-4}"
JOBS="${JOBS:-2}"
START_DELAY="${START_DELAY:-5}"
WARMUP="${WARMUP:-5}"
IDLE="${IDLE:-1}"
IDLE_RUNS="${IDLE_RUNS:-3}"
LOADED="${LOADED:-1}"
PORT="${PORT:-54740}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
BACKFILL_ARGS="${BACKFILL_ARGS:-}"
BUDGET="${BUDGET:-}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${OUT_DIR:-$BENCH_DIR/backfill_latency}"
USERS_SQL="$BENCH_DIR/backfill/users.sql"
LOAD_SQL="$BENCH_DIR/backfill/foreground.sql"
SET_CLAUSE="full_name = first_name || ' ' || last_name"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

for v in ROWS RUNS IDLE_RUNS DURATION RATE CLIENTS JOBS; do posint "$v" "${!v}"; done
[[ "$START_DELAY" =~ ^[0-9]+$ ]] || die "START_DELAY must be a whole number of seconds"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a whole number of seconds"
[[ "$AFTER_MIN" =~ ^[0-9]+$ ]] || die "AFTER_MIN must be a whole number of seconds"
(( START_DELAY < DURATION )) || die "START_DELAY must be less than DURATION"
[[ -z "$BUDGET" || "$BUDGET" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BUDGET must be a number of ms"
bench_check_common pgbench
mkdir -p "$OUT_DIR"

bench_start_bench_db sm_bf_latency "shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32
$BENCH_WAL_CONF"
bench_disk_watch_start "$WORK/disk.txt"
bench_fill_wal bench 128

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
yn() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo no; fi; }

fresh_users() {
    sql -v rows="$ROWS" -f "$USERS_SQL" >/dev/null
    sql -c "CHECKPOINT"
}
# untimed: the fresh table's first reads, the sessions' first plans (both
# the baseline's and the migration's load start after it)
warm_up() {
    (( WARMUP > 0 )) || return 0
    "$PGBENCH" -n -c "$CLIENTS" -j "$JOBS" -R "$RATE" -T "$WARMUP" -f "$LOAD_SQL" \
        -D rows="$ROWS" --random-seed=2 bench >/dev/null 2>&1 || die "warm-up load failed"
}
check_filled() {
    local bad
    bad="$(sql -c "SELECT count(*) FROM users WHERE full_name IS DISTINCT FROM first_name || ' ' || last_name")"
    [[ "$bad" == 0 ]] || die "$1: $bad rows without the expected full_name"
}
budget_sql() { [[ -n "$BUDGET" ]] && echo "SET safe_migrate.backfill_latency_budget = $BUDGET;" || true; }
submit() {
    sql -c "$(budget_sql) SELECT migrate_backfill('users', \$\$$SET_CLAUSE\$\$$1)" | tail -n 1
}
wait_job() {
    local out
    out="$("$PSQL" -X -q -At -d bench -c "SELECT migrate_backfill_wait($1, '3600 seconds')" 2>&1)" || true
    [[ "$out" == completed ]] || { sql -x -c "SELECT * FROM safe_migrate.backfills WHERE id = $1" >&2; die "job $1: $out"; }
}
# "count p50 p99 max" in ms of pgbench -l logs (column 3, us; from the
# scheduled start with -R), transactions that ended in [WIN_FROM, WIN_TO]
latency() {
    awk -v from="${WIN_FROM:-0}" -v to="${WIN_TO:-0}" '
        $3 !~ /^[0-9]+$/ { next }
        { t = $5 + $6 / 1e6; if (to > 0 && (t < from || t > to)) next; print $3 }' "$@" | bench_percentiles
}
failed() { awk '$3 !~ /^[0-9]+$/ { n++ } END { print n + 0 }' "$@"; }
load() {  # NAME: pgbench in the background (LOAD_PID)
    "$PGBENCH" -n -c "$CLIENTS" -j "$JOBS" -R "$RATE" -T "$DURATION" -f "$LOAD_SQL" \
        -D rows="$ROWS" --random-seed=1 -l --log-prefix="$OUT/$1" bench >"$OUT/$1.out" 2>&1 &
    LOAD_PID=$!
    BG_PIDS+=("$LOAD_PID")
}
finish_load() {
    wait "$LOAD_PID" || { tail -n 20 "$OUT/$1.out" >&2; die "$1: pgbench failed"; }
    compgen -G "$OUT/$1.[0-9]*" >/dev/null || die "$1: no pgbench log"
    local n; n="$(failed "$OUT/$1".[0-9]*)"
    [[ "$n" == 0 ]] || die "$1: $n failed transactions"
}
# The monitoring a DBA runs: the job's progress view once a second, over one
# connection (a monitoring agent keeps its connection; a new one every
# second would be a fork and a cold catalog cache each time, felt by the
# foreground).  In the baseline runs too (job id 0: no row), so both sides
# carry the same monitoring.
start_sampler() {  # NAME JOB_ID (SAMPLER)
    local q="SELECT extract(epoch FROM clock_timestamp()), status, rows_done, rows_per_second,
                    coalesce(throttled_by, ''), coalesce(foreground_latency_ms, -1),
                    coalesce(foreground_baseline_ms, -1), coalesce(duty, 1)
               FROM safe_migrate.backfills WHERE id = $2;"
    q="${q//$'\n'/ }"
    ( while :; do echo "$q"; sleep 1; done |
        stdbuf -oL "$PSQL" -X -q -At -F '|' -d bench >"$OUT/$1.samples" 2>/dev/null ) &
    SAMPLER=$!
    BG_PIDS+=("$SAMPLER")
}
stop_sampler() {
    pkill -P "$SAMPLER" 2>/dev/null || true
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
}

RESULT="$OUT_DIR/result.txt"
{
echo "safe_migrate backfill latency benchmark (issue 16): users, $ROWS rows"
echo "PostgreSQL $(sql -c 'SHOW server_version'), $(nproc) CPUs, started $(date -u '+%F %T') UTC," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "backfill: migrate_backfill('users', '$SET_CLAUSE'${BACKFILL_ARGS})" \
     "budget ${BUDGET:-default ($(sql -c 'SHOW safe_migrate.backfill_latency_budget'))}"
} | tee "$RESULT"

# ---------------------------------------------------------------- A. idle
if [[ "$IDLE" == 1 ]]; then
    A_RATIOS=()
    {
    echo
    echo "A. idle server, the same change on every row ($IDLE_RUNS pairs, one after the other)"
    printf '  %-4s %12s %12s %12s %12s  %s\n' pair "UPDATE s" "rows/s" "backfill s" "rows/s" "ratio  (job: batches, last rate, throttled_by, duty)"
    } | tee -a "$RESULT"
    for (( i = 1; i <= IDLE_RUNS; i++ )); do
        log "A$i: one UPDATE of all $ROWS rows, idle server"
        fresh_users
        t0="$(now)"
        sql -c "UPDATE users SET $SET_CLAUSE" >/dev/null
        a_update="$(elapsed "$t0" "$(now)")"
        check_filled "A$i UPDATE"
        log "A$i: the default backfill, idle server"
        fresh_users
        t0="$(now)"
        id="$(submit "")"
        wait_job "$id"
        a_backfill="$(elapsed "$t0" "$(now)")"
        check_filled "A$i backfill"
        a_job="$(sql -F ' ' -c "SELECT batches, rows_per_second, coalesce(throttled_by, '-'), duty FROM safe_migrate.backfills WHERE id = $id")"
        r="$(ratio "$a_update" "$a_backfill")"
        A_RATIOS+=("$r")
        printf '  %-4s %12s %12.0f %12s %12.0f %6s  (%s)\n' "$i" "$a_update" \
            "$(awk -v r="$ROWS" -v s="$a_update" 'BEGIN { print r / s }')" "$a_backfill" \
            "$(awk -v r="$ROWS" -v s="$a_backfill" 'BEGIN { print r / s }')" "$r" "$a_job" | tee -a "$RESULT"
    done
    A_RATIO="$(bench_median 2 "${A_RATIOS[@]}")"
    echo "  speed ratio backfill / UPDATE, median of the pairs: $A_RATIO (target >= 0.8): $( [[ "$(yn "$A_RATIO >= 0.8")" == yes ]] && echo met || echo missed)" | tee -a "$RESULT"
fi

# ---------------------------------------------------------------- B. loaded
if [[ "$LOADED" == 1 ]]; then
{
echo
echo "B. foreground pgbench -R $RATE -c $CLIENTS -j $JOBS for ${DURATION}s (point UPDATE + SELECT by id);"
echo "   the backfill submitted ${START_DELAY}s in; whole-run figures include the aftermath"
printf '  %-4s %9s %9s %9s | %9s %9s %9s | %8s %8s | %10s %8s %5s %6s %s\n' run "base p50" "base p99" "base max" \
    "mig p50" "mig p99" "mig max" "p99 x" "max<50" "backfill s" "ends at" ckpts "WAL MB" "met"
} | tee -a "$RESULT"
MET=0
MET_DISK=0
for run in $(seq 1 "$RUNS"); do
    log "B$run: baseline, no migration"
    fresh_users
    warm_up
    BT0="$(now)"
    load "base$run"
    sleep "$START_DELAY"
    start_sampler "base$run" 0   # the same monitoring, of no job
    finish_load "base$run"
    stop_sampler
    read -r _ BP50 BP99 BMAX <<<"$(latency "$OUT/base$run".[0-9]*)"

    log "B$run: the same load, the default backfill after ${START_DELAY}s"
    fresh_users
    warm_up
    read -r CK0 LSN0 <<<"$(sql -F ' ' -c "SELECT checkpoints_timed + checkpoints_req, pg_current_wal_lsn() FROM pg_stat_bgwriter")"
    T0="$(now)"
    load "mig$run"
    sleep "$START_DELAY"
    ts="$(now)"
    id="$(submit "$BACKFILL_ARGS")"
    start_sampler "mig$run" "$id"
    wait_job "$id"
    te="$(now)"
    finish_load "mig$run"
    stop_sampler
    read -r CKS WALMB <<<"$(sql -F ' ' -c "SELECT checkpoints_timed + checkpoints_req - $CK0,
        round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$LSN0') / 1048576) FROM pg_stat_bgwriter")"
    check_filled "B$run"
    read -r _ MP50 MP99 MMAX <<<"$(latency "$OUT/mig$run".[0-9]*)"
    BF_S="$(elapsed "$ts" "$te")"
    ENDS="$(elapsed "$T0" "$te")"
    X="$(ratio "$MP99" "$BP99")"
    ok=no
    if [[ "$(yn "$MP99 <= 1.5 * $BP99 && $MMAX < 50 && $ENDS + $AFTER_MIN <= $DURATION")" == yes ]]; then ok=yes; MET=$((MET + 1)); fi
    printf '  %-4s %9s %9s %9s | %9s %9s %9s | %8s %8s | %10s %8s %5s %6s %s\n' "$run" "$BP50" "$BP99" "$BMAX" \
        "$MP50" "$MP99" "$MMAX" "$X" "$(yn "$MMAX < 50")" "$BF_S" "$ENDS" "$CKS" "$WALMB" "$ok" | tee -a "$RESULT"
    # where it was felt: while the backfill ran, and after it (the aftermath)
    read -r _ DP50 DP99 DMAX <<<"$(WIN_FROM="$ts" WIN_TO="$te" latency "$OUT/mig$run".[0-9]*)"
    read -r _ AP50 AP99 AMAX <<<"$(WIN_FROM="$te" WIN_TO=9999999999 latency "$OUT/mig$run".[0-9]*)"
    printf '  %-4s while the backfill ran: p50 %s p99 %s max %s;  after it: p50 %s p99 %s max %s\n' "" \
        "$DP50" "$DP99" "$DMAX" "$AP50" "$AP99" "$AMAX" | tee -a "$RESULT"
    # the disk's holds (bench/lib.sh): which stalls the disk made, in both loads
    if [[ -n "$DISK_WATCH" ]]; then
        read -r BHO BHH BHX <<<"$(bench_disk_holds "$DISK_WATCH" "$OUT/base$run".[0-9]*)"
        read -r MHO MHH MHX <<<"$(bench_disk_holds "$DISK_WATCH" "$OUT/mig$run".[0-9]*)"
        if [[ "$MHX" != - && "$(yn "$MP99 <= 1.5 * $BP99 && $MHX < 50 && $ENDS + $AFTER_MIN <= $DURATION")" == yes ]]; then
            MET_DISK=$((MET_DISK + 1))
        fi
        printf '  %-4s disk holds: baseline %s txns > 50 ms, %s of them < 50 ms outside the holds, max outside them %s;  migration %s, %s, %s\n' "" \
            "$BHO" "$BHH" "$BHX" "$MHO" "$MHH" "$MHX" | tee -a "$RESULT"
        { bench_disk_hold_list "$DISK_WATCH" "$BT0" "$OUT/base$run".[0-9]* | sed 's/^/         baseline at /'
          bench_disk_hold_list "$DISK_WATCH" "$T0" "$OUT/mig$run".[0-9]* | sed 's/^/         migration at /'
        } | tee -a "$RESULT"
    fi
    LAST_T0="$T0"; LAST_BT0="$BT0"; LAST_RUN="$run"; LAST_TS="$ts"; LAST_TE="$te"
done
{
echo "  (ms; 'ends at': seconds into the load the backfill completed; ckpts / WAL MB: checkpoints and WAL"
echo "   during the migration run; a run meets the target with"
echo "   p99 <= 1.5x its baseline's, max < 50 ms, and the backfill done ${AFTER_MIN} s or more before the load ends)"
echo "runs meeting the target: $MET of $RUNS"
if [[ -n "$DISK_WATCH" ]]; then
    echo "runs meeting it outside the disk's holds (each transaction's latency less its time in one): $MET_DISK of $RUNS"
    cp "$DISK_WATCH" "$OUT_DIR/disk.txt"
fi
} | tee -a "$RESULT"

# ---------------------------------------------------------------- picture (last run)
DAT="$OUT_DIR/latency.dat"
RDAT="$OUT_DIR/rate.dat"
{
    echo "# t_s  baseline_max_ms  migration_max_ms  (max foreground latency per 250 ms, run $LAST_RUN)"
    # each run's seconds from its own load's start (the baseline ran first)
    awk -v t0m="$LAST_T0" -v t0b="$LAST_BT0" -v run=0 'FNR == 1 { run = (FILENAME ~ /mig/); t0 = run ? t0m : t0b }
        $3 ~ /^[0-9]+$/ { b = int(($5 + $6 / 1e6 - t0) * 4); if (b < 0) b = 0; v = $3 / 1000
            if (v > m[b, run]) m[b, run] = v; if (b > last) last = b }
        END { for (b = 0; b <= last; b++) printf "%.2f %.2f %.2f\n", b / 4, m[b, 0], m[b, 1] }' \
        "$OUT/base$LAST_RUN".[0-9]* "$OUT/mig$LAST_RUN".[0-9]*
} >"$DAT"
{
    echo "# t_s  rows_per_second(from rows_done)  throttled_by  probe_ms  baseline_ms  duty"
    awk -F'|' -v t0="$LAST_T0" '$1 ~ /^[0-9.]+$/ { t = $1 - t0
            if (n++) { r = (t > pt) ? ($3 - pr) / (t - pt) : 0; printf "%.2f %.0f %s %s %s %s\n", t, r, ($5 == "" ? "-" : $5), $6, $7, $8 }
            pt = t; pr = $3 }' "$OUT/mig$LAST_RUN.samples" | sed 's/foreground latency/foreground_latency/; s/foreground active/foreground_active/; s/lock waiters/lock_waiters/; s/rate cap/rate_cap/'
} >"$RDAT"
SVG="$OUT_DIR/latency.svg"
MAXR="$(awk '!/^#/ && $2 > m { m = $2 } END { print (m > 0 ? m : 1) }' "$RDAT")"
awk -v dur="$DURATION" -v maxr="$MAXR" -v ts="$(elapsed "$LAST_T0" "$LAST_TS")" -v te="$(elapsed "$LAST_T0" "$LAST_TE")" \
    -v title="Foreground latency (max per 250 ms) and backfill rate: $ROWS rows, pgbench -R $RATE, default backfill (run $LAST_RUN)" '
    function X(t) { return 70 + t / dur * 820 }
    function Y(ms) { if (ms < 0.5) ms = 0.5; if (ms > 200) ms = 200; return 40 + (1 - log(ms / 0.5) / log(400)) * 260 }
    function R(r) { return 470 - r / maxr * 120 }
    FNR == 1 { f++ }
    /^#/ { next }
    f == 1 { if ($2 > 0) pb = pb sprintf("%.1f,%.1f ", X($1), Y($2)); if ($3 > 0) pm = pm sprintf("%.1f,%.1f ", X($1), Y($3)) }
    f == 2 { pr = pr sprintf("%.1f,%.1f ", X($1), R($2)); if ($3 != "-") held = held sprintf("<rect x=\"%.1f\" y=\"350\" width=\"%.1f\" height=\"120\" fill=\"#fde0c5\"/>", X($1) - 820 / dur, 820 / dur) }
    END {
        print "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"540\" font-family=\"sans-serif\" font-size=\"12\">"
        print "<rect width=\"960\" height=\"540\" fill=\"white\"/>"
        printf "<text x=\"480\" y=\"22\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", title
        printf "<rect x=\"%.1f\" y=\"40\" width=\"%.1f\" height=\"430\" fill=\"#eef3ff\"/>\n", X(ts), X(te) - X(ts)
        printf "<text x=\"%.1f\" y=\"54\" fill=\"#557\">backfill running</text>\n", X(ts) + 4
        print held
        split("1 2 5 10 20 50 100", tk, " ")
        for (i = 1; i <= 7; i++) {
            printf "<line x1=\"70\" x2=\"890\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\"/>", Y(tk[i]), Y(tk[i])
            printf "<text x=\"64\" y=\"%.1f\" text-anchor=\"end\">%s ms</text>\n", Y(tk[i]) + 4, tk[i]
        }
        printf "<line x1=\"70\" x2=\"890\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-dasharray=\"4,3\"/>", Y(50), Y(50)
        printf "<text x=\"64\" y=\"%.1f\" text-anchor=\"end\">0</text><text x=\"64\" y=\"%.1f\" text-anchor=\"end\">%.0f rows/s</text>\n", R(0) + 4, R(maxr) + 4, maxr
        for (t = 0; t <= dur; t += 10) printf "<text x=\"%.1f\" y=\"488\" text-anchor=\"middle\">%d s</text>\n", X(t), t
        print "<rect x=\"70\" y=\"40\" width=\"820\" height=\"260\" fill=\"none\" stroke=\"black\"/>"
        print "<rect x=\"70\" y=\"350\" width=\"820\" height=\"120\" fill=\"none\" stroke=\"black\"/>"
        printf "<polyline fill=\"none\" stroke=\"#888888\" stroke-width=\"1\" points=\"%s\"/>\n", pb
        printf "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\" points=\"%s\"/>\n", pm
        printf "<polyline fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"1.5\" points=\"%s\"/>\n", pr
        print "<line x1=\"70\" x2=\"95\" y1=\"515\" y2=\"515\" stroke=\"#888888\" stroke-width=\"3\"/><text x=\"100\" y=\"519\">foreground, no migration (baseline)</text>"
        print "<line x1=\"330\" x2=\"355\" y1=\"515\" y2=\"515\" stroke=\"#1f77b4\" stroke-width=\"3\"/><text x=\"360\" y=\"519\">foreground, with the backfill</text>"
        print "<line x1=\"560\" x2=\"585\" y1=\"515\" y2=\"515\" stroke=\"#2ca02c\" stroke-width=\"3\"/><text x=\"590\" y=\"519\">backfill rows/s (orange: throttled_by set)</text>"
        print "</svg>"
    }' "$DAT" "$RDAT" >"$SVG"
echo "latency over time: $SVG (data: $DAT, $RDAT)" | tee -a "$RESULT"
fi
