#!/usr/bin/env bash
# bench/policy_overhead.sh — throughput cost of the safe-DDL policy: pgbench
# TPS in a database without safe_migrate ("plain") versus one with
# CREATE EXTENSION safe_migrate ("guarded"), side by side in one cluster that
# has shared_preload_libraries = 'safe_migrate'.  Two workloads:
#   DDL-heavy   pgbench -n -f bench/policy/ddl.sql -c CLIENTS -j JOBS -T DURATION
#   TPC-B-like  pgbench -n -b tpcb-like            -c CLIENTS -j JOBS -T DURATION
#               (after pgbench -i -s SCALE in each database)
#
# Run as root on Debian 12 with PostgreSQL 15 and safe_migrate installed
# (`make install`).  Installs nothing.  See bench/README.md.
#
# Parameters (environment variables):
#   ROUNDS (or R)   rounds; each runs every workload once per database,
#                   the order alternating from round to round  (default 10:
#                   a DDL-heavy round's ratio moves by ±1.5 points on a
#                   2-CPU VM, so a median of 5 moved by ±0.5 between runs)
#   DURATION (or D) seconds of each pgbench run                (default 15)
#   CLIENTS         pgbench clients (-c)                       (default 2)
#   JOBS            pgbench threads (-j)                       (default 2)
#   SCALE           pgbench -i scale factor for TPC-B-like     (default 10)
#   PORT            port of the throwaway cluster              (default 54600)
#   PROFILE=1       also run the DDL-heavy workload with the rule checks
#                   off (safe_migrate.policy = off: the DDL log and the
#                   hooks only; see bench/README.md)           (default 0)
#   PG_BIN          PostgreSQL 15 server binaries   (default /usr/lib/postgresql/15/bin)
#   PG_CONF_EXTRA   extra lines appended to postgresql.conf    (default empty)
#   KEEP_CLUSTER=1  keep the cluster directory on exit (for debugging)
#   MODE            together: in each round the databases' runs of a
#                   workload go at the same time, side by side, so they share
#                   the machine's weather (this machine's fsync latency
#                   varies twofold from one 20 s window to the next); the
#                   ratio is the median over rounds of guarded/plain in the
#                   same window.  alternate: one run after the other, order
#                   alternating per round; ratio of the medians.
#                                                              (default together)

set -euo pipefail
shopt -s inherit_errexit

ROUNDS="${ROUNDS:-${R:-10}}"
DURATION="${DURATION:-${D:-15}}"
CLIENTS="${CLIENTS:-2}"
JOBS="${JOBS:-2}"
SCALE="${SCALE:-10}"
PORT="${PORT:-54600}"
PROFILE="${PROFILE:-0}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
MODE="${MODE:-together}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DDL_SCRIPT="$BENCH_DIR/policy/ddl.sql"
SETUP_SCRIPT="$BENCH_DIR/policy/setup.sql"

source "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- checks
bench_check_common pgbench
posint ROUNDS "$ROUNDS"
posint DURATION "$DURATION"
posint CLIENTS "$CLIENTS"
posint JOBS "$JOBS"
posint SCALE "$SCALE"
(( JOBS <= CLIENTS ))          || die "JOBS ($JOBS) must not exceed CLIENTS ($CLIENTS)"
[[ "$PROFILE" == 0 || "$PROFILE" == 1 ]] || die "PROFILE must be 0 or 1 (got '$PROFILE')"
[[ "$MODE" == together || "$MODE" == alternate ]] || die "MODE must be together or alternate (got '$MODE')"
[[ -f "$DDL_SCRIPT" && -f "$SETUP_SCRIPT" ]] || die "missing $DDL_SCRIPT or $SETUP_SCRIPT"

# ---------------------------------------------------------------- cluster
bench_cluster_start sm_policy "shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32"
OUT="$WORK/out"
mkdir -p "$OUT"

# Clients run as root, connect as the superuser over the private socket.
export PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres
export PGOPTIONS="-c client_min_messages=warning"
sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# ---------------------------------------------------------------- databases
# Every database gets the same objects (pgbench tables, pol_keep_<i>) before
# safe_migrate is created where it belongs: pgbench -i TRUNCATEs and adds
# primary keys to tables of an earlier transaction, which the policy refuses.
DBS=(plain guarded)
# each variant its own database: MODE=together runs them at the same time
(( PROFILE )) && DBS+=(guarded_off)
for db in "${DBS[@]}"; do
    log "creating database $db: pgbench -i -s $SCALE, bench/policy/setup.sql"
    sql -d postgres -c "CREATE DATABASE $db"
    "$PGBENCH" -i -q -s "$SCALE" "$db" >"$OUT/init_$db.out" 2>&1 \
        || { cat "$OUT/init_$db.out" >&2; show_server_log; die "pgbench -i failed in $db"; }
    sql -d "$db" -v clients="$CLIENTS" -f "$SETUP_SCRIPT" >/dev/null
    if [[ "$db" != plain ]]; then
        sql -d "$db" -c "CREATE EXTENSION safe_migrate"
    fi
    sql -d "$db" -c "VACUUM ANALYZE"
done
n="$(sql -d guarded -c "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'safe_migrate%' AND evtenabled <> 'D'")"
[[ "$n" == 1 ]] || die "expected 1 enabled safe_migrate event trigger (ddl_command_start) in database guarded, found $n"
n="$(sql -d guarded -c "SHOW shared_preload_libraries")"
[[ "$n" == *safe_migrate* ]] || die "shared_preload_libraries is '$n', expected safe_migrate"

# ---------------------------------------------------------------- runs
ddl_log_rows() { sql -d "$1" -c "SELECT count(*) FROM safe_migrate.ddl_log"; }

# A variant is "label|database|workload|extra PGOPTIONS".
VARIANTS_DDL=("plain|plain|ddl|" "guarded|guarded|ddl|")
if (( PROFILE )); then
    VARIANTS_DDL+=("guarded, policy=off|guarded_off|ddl|-c safe_migrate.policy=off")
fi
VARIANTS_TPCB=("plain|plain|tpcb|" "guarded|guarded|tpcb|")

declare -A TPS=()        # "label/workload/round" -> tps
declare -A XACTS=()      # "label/workload" -> transactions summed over rounds
declare -A LOGROWS=()    # "label/workload" -> ddl_log rows added, summed over rounds

# pgbench_args WORKLOAD: the timed run's arguments.
pgbench_args() {
    local args=(-n -c "$CLIENTS" -j "$JOBS" -T "$DURATION")
    if [[ "$1" == ddl ]]; then args+=(-f "$DDL_SCRIPT"); else args+=(-b tpcb-like); fi
    printf '%s\n' "${args[@]}"
}

# prepare_run DB WORKLOAD: untimed preparation, the same for every database.
# For TPC-B-like do the VACUUM that pgbench does itself without -n (the
# TRUNCATE of pgbench_history it also does would be refused in database
# guarded).
prepare_run() {
    if [[ "$2" == tpcb ]]; then
        sql -d "$1" -c "VACUUM pgbench_branches, pgbench_tellers, pgbench_history"
    fi
}

# collect_run LABEL DB WORKLOAD ROUND OUT RC BEFORE: read one finished run; records TPS.
collect_run() {
    local label="$1" db="$2" wl="$3" round="$4" out="$5" rc="$6" before="$7" after=0 tps xacts failed
    if (( rc != 0 )) || grep -q 'aborted' "$out"; then
        printf '[bench] ---- pgbench output (last 30 lines) ----\n' >&2
        tail -n 30 "$out" >&2
        show_server_log
        die "round $round, $wl, $label: pgbench failed (exit status $rc)"
    fi
    tps="$(awk '/^tps = / { print $3; exit }' "$out")"
    xacts="$(awk -F': ' '/^number of transactions actually processed:/ { split($2, a, "/"); print a[1]; exit }' "$out")"
    failed="$(awk -F': ' '/^number of failed transactions:/ { split($2, a, " "); print a[1]; exit }' "$out")"
    [[ -n "$tps" && -n "$xacts" ]] || { cat "$out" >&2; die "round $round, $wl, $label: cannot read tps from pgbench output"; }
    [[ -n "$failed" ]] || { cat "$out" >&2; die "round $round, $wl, $label: pgbench did not report failed transactions"; }
    [[ "$failed" == 0 ]] || { tail -n 30 "$out" >&2; die "round $round, $wl, $label: $failed failed transactions"; }
    (( xacts > 0 )) || die "round $round, $wl, $label: no transaction completed"
    [[ "$db" == plain ]] || after="$(ddl_log_rows "$db")"

    TPS["$label/$wl/$round"]="$tps"
    XACTS["$label/$wl"]=$(( ${XACTS["$label/$wl"]:-0} + xacts ))
    LOGROWS["$label/$wl"]=$(( ${LOGROWS["$label/$wl"]:-0} + after - before ))
    log "round $round/$ROUNDS  $wl  $label: $tps tps ($xacts transactions, 0 failed)"
}

# run_pgbench LABEL DB WORKLOAD OPTS ROUND: one timed run on its own.
run_pgbench() {
    local label="$1" db="$2" wl="$3" opts="$4" round="$5"
    local out="$OUT/${wl}_${db}_${round}_${#TPS[@]}.out" before=0 rc=0
    local args
    mapfile -t args < <(pgbench_args "$wl")
    prepare_run "$db" "$wl"
    sql -d "$db" -c "CHECKPOINT"
    [[ "$db" == plain ]] || before="$(ddl_log_rows "$db")"
    PGOPTIONS="$PGOPTIONS $opts" "$PGBENCH" "${args[@]}" "$db" >"$out" 2>&1 || rc=$?
    collect_run "$label" "$db" "$wl" "$round" "$out" "$rc" "$before"
}

# run_together ROUND VARIANT...: the variants' runs at the same time.
run_together() {
    local round="$1"; shift
    local list=("$@") i label db wl opts args
    local -a outs=() pids=() befores=()
    for (( i = 0; i < ${#list[@]}; i++ )); do
        IFS='|' read -r label db wl opts <<<"${list[i]}"
        prepare_run "$db" "$wl"
    done
    sql -d postgres -c "CHECKPOINT"
    for (( i = 0; i < ${#list[@]}; i++ )); do
        IFS='|' read -r label db wl opts <<<"${list[i]}"
        befores[i]=0
        [[ "$db" == plain ]] || befores[i]="$(ddl_log_rows "$db")"
        outs[i]="$OUT/${wl}_${db}_${round}_together_$i.out"
    done
    for (( i = 0; i < ${#list[@]}; i++ )); do
        IFS='|' read -r label db wl opts <<<"${list[i]}"
        mapfile -t args < <(pgbench_args "$wl")
        PGOPTIONS="$PGOPTIONS $opts" "$PGBENCH" "${args[@]}" "$db" >"${outs[i]}" 2>&1 &
        pids[i]=$!
    done
    for (( i = 0; i < ${#list[@]}; i++ )); do
        local rc=0
        wait "${pids[i]}" || rc=$?
        IFS='|' read -r label db wl opts <<<"${list[i]}"
        collect_run "$label" "$db" "$wl" "$round" "${outs[i]}" "$rc" "${befores[i]}"
    done
}

# run_variants ROUND VARIANT...: the variants in order, or reversed on even rounds.
run_variants() {
    local round="$1"; shift
    local list=("$@") i v label db wl opts
    for (( i = 0; i < ${#list[@]}; i++ )); do
        if (( round % 2 )); then v="${list[i]}"; else v="${list[${#list[@]} - 1 - i]}"; fi
        IFS='|' read -r label db wl opts <<<"$v"
        run_pgbench "$label" "$db" "$wl" "$opts" "$round"
    done
}

total=$(( ROUNDS * (${#VARIANTS_DDL[@]} + ${#VARIANTS_TPCB[@]}) ))
windows=$total
[[ "$MODE" == together ]] && windows=$(( ROUNDS * 2 ))
log "$ROUNDS rounds, $total pgbench runs of ${DURATION}s ($MODE): about $(( windows * (DURATION + 3) / 60 + 1 )) min"
for (( r = 1; r <= ROUNDS; r++ )); do
    if [[ "$MODE" == together ]]; then
        run_together "$r" "${VARIANTS_DDL[@]}"
        run_together "$r" "${VARIANTS_TPCB[@]}"
    else
        run_variants "$r" "${VARIANTS_DDL[@]}"
        run_variants "$r" "${VARIANTS_TPCB[@]}"
    fi
done

# ---------------------------------------------------------------- report
median() { bench_median 1 "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }'; }
rounds_of() { local r; for (( r = 1; r <= ROUNDS; r++ )); do printf '%.1f ' "${TPS["$1/$2/$r"]}"; done; }

median3() { bench_median 3 "$@"; }
# paired_ratios LABEL WORKLOAD: LABEL's TPS / plain's TPS, round by round.
paired_ratios() { local r; for (( r = 1; r <= ROUNDS; r++ )); do ratio "${TPS["plain/$2/$r"]}" "${TPS["$1/$2/$r"]}"; printf ' '; done; }

declare -A MED=() PAIRED=()
for v in "${VARIANTS_DDL[@]}" "${VARIANTS_TPCB[@]}"; do
    IFS='|' read -r label db wl opts <<<"$v"
    # shellcheck disable=SC2046
    MED["$label/$wl"]="$(median $(rounds_of "$label" "$wl"))"
    # shellcheck disable=SC2046
    PAIRED["$label/$wl"]="$(median3 $(paired_ratios "$label" "$wl"))"
done
# the ratio judged: paired (same window) when the runs went together
judged_ratio() {
    if [[ "$MODE" == together ]]; then echo "${PAIRED["$1/$2"]}"
    else ratio "${MED["plain/$2"]}" "${MED["$1/$2"]}"; fi
}

echo
echo "safe_migrate policy overhead: pgbench TPS, database plain (no extension) vs guarded (CREATE EXTENSION safe_migrate)"
echo "PostgreSQL $(sql -d postgres -c 'SHOW server_version'), shared_preload_libraries = safe_migrate, $(nproc) CPUs;" \
     "$ROUNDS rounds x ${DURATION}s, -c $CLIENTS -j $JOBS per database," \
     "$([[ "$MODE" == together ]] && echo "the databases' runs side by side in each round" || echo "order alternating per round")"
echo
printf '%-30s %12s %8s %8s   %s\n' "workload / database" "median TPS" "ratio" "paired" "TPS per round (1..$ROUNDS)"
printf '%-30s %12s %8s %8s   %s\n' "------------------------------" "------------" "--------" "--------" "------------------------"
print_workload() {
    local title="$1" wl="$2"; shift 2
    local v label base
    echo "$title"
    IFS='|' read -r label _ <<<"$1"
    base="${MED["$label/$wl"]}"
    for v in "$@"; do
        IFS='|' read -r label _ <<<"$v"
        printf '  %-28s %12s %8s %8s   %s\n' "$label" "${MED["$label/$wl"]}" \
            "$(ratio "$base" "${MED["$label/$wl"]}")" "${PAIRED["$label/$wl"]}" "$(rounds_of "$label" "$wl")"
    done
}
print_workload "DDL-heavy (bench/policy/ddl.sql)" ddl "${VARIANTS_DDL[@]}"
print_workload "TPC-B-like (builtin tpcb-like, scale $SCALE)" tpcb "${VARIANTS_TPCB[@]}"
echo "(ratio = median TPS / median TPS of plain; paired = median over rounds of TPS / plain's TPS in the same round)"
echo

x="${XACTS["guarded/ddl"]}"; n="${LOGROWS["guarded/ddl"]}"
echo "safe_migrate.ddl_log: the guarded DDL-heavy runs added $n rows for $x transactions" \
     "($(awk -v n="$n" -v x="$x" 'BEGIN { printf "%.2f", n / x }') per script run);" \
     "the guarded TPC-B-like runs added ${LOGROWS["guarded/tpcb"]}"
(( n > 0 )) || echo "WARNING: no rows in safe_migrate.ddl_log: the hooks logged nothing"
if (( PROFILE )); then
    echo "  (guarded, policy=off added ${LOGROWS["guarded, policy=off/ddl"]} rows)"
fi
echo

verdict() {
    local name="$1" r="$2" target="$3"
    if awk -v r="$r" -v t="$target" 'BEGIN { exit !(r >= t) }'; then
        echo "$name: ratio $r (target >= $target) met"
    else
        echo "$name: ratio $r (target >= $target) missed"
    fi
}
echo "($MODE: the ratio judged is $([[ "$MODE" == together ]] && echo "paired" || echo "the ratio of the medians"))"
verdict "DDL-heavy" "$(judged_ratio guarded ddl)" 0.98
verdict "TPC-B-like" "$(judged_ratio guarded tpcb)" 0.99
