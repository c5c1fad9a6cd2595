#!/usr/bin/env bash
# bench/phases.sh — where the foreground's slow transactions come from, phase
# by phase: run 4 of bench/zero_downtime.sh (the seed's change through
# safe_migrate) split into one step per phase with PAUSE seconds of quiet
# between them (bench/zero_downtime/phases.sql), under the same pgbench load,
# once per value of safe_migrate.parallel_maintenance_workers in WORKERS.
# For each phase (and the quiet before and after) it prints the transactions
# that ended in it, how many took longer than SLOW_MS, and the largest.
#
# Run as root on Debian 12 with PostgreSQL 15 and safe_migrate installed
# (`make install`).  See bench/README.md.
#
# Parameters (environment variables):
#   ROWS         rows in users                                     (default 2000000)
#   WORKERS      parallel_maintenance_workers values, in order     (default "-1 0")
#                (-1: the server's max_parallel_maintenance_workers, 2 by default)
#   PAUSE        seconds of quiet between phases                   (default 4)
#   SLOW_MS      a transaction slower than this counts as slow     (default 4)
#   RATE, CLIENTS, JOBS   pgbench -R, -c, -j                       (default 200, 4, 2)
#   START_DELAY  seconds into the load the migration starts        (default 5)
#   TAIL         seconds of load after the migration               (default 20)
#   PORT         port of the throwaway cluster                     (default 54720)
#   PG_BIN, PG_CONF_EXTRA, KEEP_CLUSTER   as in zero_downtime.sh

set -euo pipefail
shopt -s inherit_errexit

ROWS="${ROWS:-2000000}"
WORKERS="${WORKERS:--1 0}"
PAUSE="${PAUSE:-4}"
SLOW_MS="${SLOW_MS:-4}"
RATE="${RATE:-200}"
CLIENTS="${CLIENTS:-4}"
JOBS="${JOBS:-2}"
START_DELAY="${START_DELAY:-5}"
TAIL="${TAIL:-20}"
PORT="${PORT:-54720}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZD="$BENCH_DIR/zero_downtime"
source "$BENCH_DIR/lib.sh"

bench_check_common pgbench
posint ROWS "$ROWS"
posint RATE "$RATE"
posint CLIENTS "$CLIENTS"
posint JOBS "$JOBS"
posint SLOW_MS "$SLOW_MS"
posint TAIL "$TAIL"
[[ "$PAUSE" =~ ^[0-9]+$ ]]       || die "PAUSE must be a whole number of seconds (got '$PAUSE')"
[[ "$START_DELAY" =~ ^[0-9]+$ ]] || die "START_DELAY must be a whole number of seconds (got '$START_DELAY')"
(( JOBS <= CLIENTS ))            || die "JOBS ($JOBS) must not exceed CLIENTS ($CLIENTS)"
[[ -n "$WORKERS" ]]              || die "WORKERS must list at least one value"
for w in $WORKERS; do
    [[ "$w" =~ ^(-1|[0-9]+)$ ]]  || die "WORKERS values must be -1 or a whole number (got '$w')"
done
for f in users.sql foreground.sql phases.sql; do
    [[ -f "$ZD/$f" ]] || die "missing $ZD/$f"
done

# WAL as in zero_downtime.sh, its files made in advance (warm-up)
bench_start_bench_db sm_phases "shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32
$BENCH_WAL_CONF"

fresh_users() {
    sql -c "DELETE FROM safe_migrate.migrations" -c "DELETE FROM safe_migrate.backfill_jobs" >/dev/null
    sql -v rows="$ROWS" -f "$ZD/users.sql" >/dev/null
}
phases() {  # phases PAUSE WORKERS: the split migration; prints name|start|end lines
    sql -F '|' -v pause="$1" -v workers="$2" -f "$ZD/phases.sql" | awk -F'|' '$1 == "phase" { print $2 "|" $3 "|" $4 }'
}

log "warm-up: WAL segment files made in advance, the split migration once without load"
bench_fill_wal bench 128
fresh_users
phases 0 0 >/dev/null
sql -c "CHECKPOINT" >/dev/null

declare -a REPORT
for w in $WORKERS; do
    log "parallel_maintenance_workers = $w: fresh users table of $ROWS rows"
    fresh_users
    # long enough for the migration; stopped TAIL s after it ends
    t0="$(date +%s.%N)"
    "$PGBENCH" -n -c "$CLIENTS" -j "$JOBS" -R "$RATE" -T 3600 -f "$ZD/foreground.sql" \
        -D rows="$ROWS" --random-seed=1 -l --log-prefix="$OUT/w$w" bench >"$OUT/w$w.out" 2>&1 &
    pid=$!
    BG_PIDS+=("$pid")
    sleep "$START_DELAY"
    phases "$PAUSE" "$w" >"$OUT/w$w.phases" || { show_server_log; die "the migration failed"; }
    sleep "$TAIL"
    t_end="$(date +%s.%N)"
    # pgbench loses its buffered log lines when stopped: count only up to
    # t_end and stop it a little later
    sleep 3
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    compgen -G "$OUT/w$w.[0-9]*" >/dev/null || die "pgbench wrote no per-transaction log"
    # the phases, the quiet before the first and after the last
    {
        awk -F'|' -v t0="$t0" 'NR == 1 { print "before|" t0 "|" $2 } { print; last = $3 }
                                END { print "after the migration|" last "|" 1e12 }' "$OUT/w$w.phases"
    } >"$OUT/w$w.windows"
    REPORT+=("$(awk -v slow="$SLOW_MS" -v tend="$t_end" '
        FILENAME ~ /windows$/ { split($0, f, "|"); n++; name[n] = f[1]; from[n] = f[2]; to[n] = f[3]; next }
        $3 ~ /^[0-9]+$/ {
            e = $5 + $6 / 1e6; if (e > tend) next
            for (i = n; i >= 1; i--) if (e >= from[i]) break
            if (i < 1) next
            # between two phases: the pause belongs to the phase before it
            tot[i]++; if ($3 / 1000 > slow) cnt[i]++; if ($3 > mx[i]) mx[i] = $3
        }
        END {
            for (i = 1; i <= n; i++) {
                d = sprintf("%.1f", ((i < n) ? to[i] : tend) - from[i])
                printf "%s|%s|%d|%d|%.1f\n", name[i], d, tot[i], cnt[i], mx[i] / 1000
            }
        }' "$OUT/w$w.windows" "$OUT/w$w".[0-9]*)")
done

echo
echo "safe_migrate, the seed's migration phase by phase ($ROWS rows, pgbench -R $RATE -c $CLIENTS," \
     "${PAUSE}s pauses): transactions ending in each phase or the pause after it, slow = over ${SLOW_MS} ms"
echo
hdr="$(printf '  %-28s' "phase")"
for w in $WORKERS; do hdr+="$(printf ' | %-30s' "parallel_maintenance_workers=$w")"; done
echo "$hdr"
sub="$(printf '  %-28s' "")"
for w in $WORKERS; do sub+="$(printf ' | %6s %6s %6s %8s' "secs" "txns" "slow" "max ms")"; done
echo "$sub"
nphases="$(wc -l <<<"${REPORT[0]}")"
for ((k = 1; k <= nphases; k++)); do
    line=""
    for r in "${REPORT[@]}"; do
        IFS='|' read -r name d tot cnt mx <<<"$(sed -n "${k}p" <<<"$r")"
        [[ -z "$line" ]] && line="$(printf '  %-28s' "$name")"
        line+="$(printf ' | %6s %6s %6s %8s' "$d" "$tot" "$cnt" "$mx")"
    done
    echo "$line"
done
echo "  (secs: the phase itself, or the quiet before and after; a phase's transactions include the ${PAUSE}s pause after it)"
