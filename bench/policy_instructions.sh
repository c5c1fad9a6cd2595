#!/usr/bin/env bash
# bench/policy_instructions.sh — the policy's cost on DDL counted exactly:
# CPU instructions per run of the DDL-heavy script (bench/policy/ddl.sql) of
# bench/policy_overhead.sh, in a database without safe_migrate ("plain")
# and one with it ("guarded"), the server run under valgrind's callgrind.
#
# Wall-clock throughput on a 2-CPU VM moves by more than the policy costs
# (see bench/README.md): an instruction count does not.  Both databases run
# the script at the same time, CLIENTS clients each (as in
# policy_overhead.sh, so each backend also sees the other sessions' catalog
# invalidations); every client backend's instructions are summed, and the
# per-run figure is the difference between a run of N2 and one of N1
# script runs per client (connection start and the first runs' cold caches
# cancel out).  Repeatable to about +-10,000 instructions per run.
#
# Run as root on Debian 12 with PostgreSQL 15, safe_migrate installed (`make
# install`) and valgrind (apt-get install valgrind).  Installs nothing.
#
# Parameters (environment variables):
#   N1, N2        script runs per client in the short and the long pass
#                 (default 30 and 90)
#   CLIENTS       clients per database                         (default 2)
#   WORKLOAD      ddl: bench/policy/ddl.sql (N1/N2 default 30/90 runs);
#                 tpcb: pgbench's built-in tpcb-like transaction after
#                 pgbench -i -s 1 in each database (N1/N2 default 1000/3000
#                 transactions): what the hooks cost a workload without DDL
#                                                              (default ddl)
#   NO_TRIGGER=1  disable the ddl_command_start event trigger in guarded
#                 (no rule checks at statement start: the DDL log and the
#                 hooks only)                                  (default 0)
#   PORT          port of the throwaway cluster                (default 54620)
#   PG_BIN        PostgreSQL 15 server binaries  (default /usr/lib/postgresql/15/bin)
#   KEEP_CLUSTER=1  keep the cluster directory and callgrind files

set -euo pipefail
shopt -s inherit_errexit

WORKLOAD="${WORKLOAD:-ddl}"
[[ "$WORKLOAD" == ddl || "$WORKLOAD" == tpcb ]] || { echo "WORKLOAD must be ddl or tpcb" >&2; exit 2; }
if [[ "$WORKLOAD" == ddl ]]; then N1="${N1:-30}"; N2="${N2:-90}"; else N1="${N1:-1000}"; N2="${N2:-3000}"; fi
CLIENTS="${CLIENTS:-2}"
NO_TRIGGER="${NO_TRIGGER:-0}"
PORT="${PORT:-54620}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
PG_CONF_EXTRA=""

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DDL_SCRIPT="$BENCH_DIR/policy/ddl.sql"
SETUP_SCRIPT="$BENCH_DIR/policy/setup.sql"
source "$BENCH_DIR/lib.sh"

bench_check_common pgbench
posint N1 "$N1"
posint N2 "$N2"
posint CLIENTS "$CLIENTS"
(( N2 > N1 )) || die "N2 ($N2) must be larger than N1 ($N1)"
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"

# ---------------------------------------------------------------- cluster
# pg_ctl starts this wrapper as the server: every process under callgrind,
# one output file per process
server_under_callgrind() {
    CG="$WORK/callgrind"
    mkdir -p "$CG"
    chown postgres:postgres "$CG"
    cat >"$WORK/postgres" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=$CG/cg.%p "$PG_BIN/postgres" "\$@"
WRAP
    chmod 755 "$WORK/postgres"
    echo "$WORK/postgres"
}
BENCH_SERVER_SETUP=server_under_callgrind
BENCH_START_TIMEOUT=300
# fsync off: instructions, not the disk, are counted
bench_cluster_start sm_instr "shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32
fsync = off
synchronous_commit = off
log_connections = on"
CG="$WORK/callgrind"

export PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres
export PGOPTIONS="-c client_min_messages=warning"
sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
for db in plain guarded; do
    sql -d postgres -c "CREATE DATABASE $db"
    sql -d "$db" -v clients="$CLIENTS" -f "$SETUP_SCRIPT" >/dev/null
    if [[ "$WORKLOAD" == tpcb ]]; then
        "$PGBENCH" -i -q -s 1 "$db" >"$WORK/init_$db.out" 2>&1 || { cat "$WORK/init_$db.out" >&2; die "pgbench -i failed"; }
    fi
    if [[ "$db" == guarded ]]; then
        sql -d "$db" -c "CREATE EXTENSION safe_migrate"
        if [[ "$NO_TRIGGER" == 1 ]]; then
            sql -d "$db" -c "ALTER EVENT TRIGGER safe_migrate_ddl_command_start DISABLE"
        fi
    fi
    sql -d "$db" -c "VACUUM ANALYZE"
done

# ---------------------------------------------------------------- passes
declare -A TOTAL=()
# pgbench -i's connections are not a pass's
SEEN=" $(sed -nE 's/.*\[([0-9]+)\].*connection authorized: .*application_name=pgbench.*/\1/p' "$SERVER_LOG" | tr '\n' ' ')"
for n in "$N1" "$N2"; do
    log "pass: $n $WORKLOAD runs per client, both databases at once"
    pids=()
    if [[ "$WORKLOAD" == ddl ]]; then script=(-f "$DDL_SCRIPT"); else script=(-b tpcb-like); fi
    for db in plain guarded; do
        "$PGBENCH" -n -c "$CLIENTS" -j "$CLIENTS" -t "$n" "${script[@]}" "$db" \
            >"$WORK/pgbench_${db}_$n.out" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do
        wait "$p" || { cat "$WORK"/pgbench_*_"$n".out >&2; die "pgbench failed"; }
    done
    for db in plain guarded; do
        total=0
        # the backends of this pass: pgbench's connections not counted before
        for pid in $(sed -nE "s/.*\[([0-9]+)\].*connection authorized: user=postgres database=$db application_name=pgbench.*/\1/p" "$SERVER_LOG"); do
            [[ "$SEEN" == *" $pid "* ]] && continue
            SEEN+="$pid "
            f="$CG/cg.$pid"
            for _ in $(seq 60); do
                [[ -s "$f" ]] && grep -q '^totals:' "$f" && break
                sleep 1
            done
            grep -q '^totals:' "$f" || die "no callgrind totals for backend $pid"
            total=$(( total + $(awk '/^totals:/ { print $2 }' "$f") ))
        done
        TOTAL[$db.$n]=$total
    done
done

per_run() { echo $(( (TOTAL[$1.$N2] - TOTAL[$1.$N1]) / (CLIENTS * (N2 - N1)) )); }
p="$(per_run plain)"
g="$(per_run guarded)"
echo
what="bench/policy/ddl.sql"; [[ "$WORKLOAD" == tpcb ]] && what="pgbench tpcb-like transaction"
echo "instructions per run of $what ($CLIENTS clients per database, runs $N2 - $N1)"
printf '  %-10s %12s\n' plain "$p" guarded "$g"
printf '  extension: %+d instructions per run (%s)%s\n' $(( g - p )) \
    "$(awk -v g="$g" -v p="$p" 'BEGIN { printf "%+.2f %%", (g - p) * 100 / p }')" \
    "$([[ "$NO_TRIGGER" == 1 ]] && echo ', event trigger disabled' || true)"
