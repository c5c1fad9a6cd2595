#!/usr/bin/env bash
# bench/lock_wait.sh — issue 15: a migration that needs ACCESS EXCLUSIVE for
# a few milliseconds (add a nullable column) while a reporting transaction
# holds the table for READER_SECONDS, under a steady foreground load.  Side
# by side in one run, each on a fresh table of ROWS rows:
#   1. baseline:    the reader, no migration;
#   2. plain:       ALTER TABLE (lock_timeout 0): queues behind the reader;
#   3. retry:       migrate_apply with safe_migrate.lock_strategy = retry
#                   (the behaviour before issue 15: lock_timeout 2 s,
#                   retries with backoff);
#   4. wait:        migrate_apply with the defaults (lock_strategy = wait:
#                   waits for the reader outside the lock queue, then asks
#                   with lock_timeout = lock_wait_max_stall).
# The load (pgbench -R RATE, point UPDATE + SELECT by id, per-transaction
# log) runs DURATION seconds; the reader starts READER_AT seconds in (BEGIN;
# SELECT count(*); pg_sleep(READER_SECONDS); COMMIT), the migration one
# second after it.  Prints per run the foreground p50/p99/max and when the
# migration ended relative to the reader's end, checks the targets (run 4:
# max < 50 ms, p99 <= 2x run 1's, ends within 1 s after the reader), and
# draws the foreground latency over time (max per 100 ms) to
# OUT_DIR/latency.svg (data: latency.dat).
#
# Run as root with PostgreSQL 15 and safe_migrate installed (make install);
# no plotting tool needed (the SVG is written by awk).
#
# Parameters (environment variables):
#   ROWS            rows in the table                          (default 500000)
#   RATE            pgbench target rate, transactions/s (-R)   (default 200)
#   CLIENTS         pgbench clients (-c)                       (default 4)
#   JOBS            pgbench threads (-j)                       (default 2)
#   READER_AT       seconds into the load the reader starts    (default 3)
#   READER_SECONDS  how long the reader holds its transaction  (default 12)
#   DURATION        seconds of each pgbench run                (default 20)
#   PORT            port of the throwaway cluster              (default 54720)
#   OUT_DIR         where latency.dat / latency.svg go   (default bench/lock_wait)
#   PG_BIN          PostgreSQL 15 server binaries   (default /usr/lib/postgresql/15/bin)
#   PG_CONF_EXTRA   extra lines appended to postgresql.conf    (default empty)
#   KEEP_CLUSTER=1  keep the cluster directory on exit (for debugging)

set -euo pipefail
shopt -s inherit_errexit

ROWS="${ROWS:-500000}"
RATE="${RATE:-200}"
CLIENTS="${CLIENTS:-4}"
JOBS="${JOBS:-2}"
READER_AT="${READER_AT:-3}"
READER_SECONDS="${READER_SECONDS:-12}"
DURATION="${DURATION:-20}"
PORT="${PORT:-54720}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONF_EXTRA="${PG_CONF_EXTRA:-}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${OUT_DIR:-$BENCH_DIR/lock_wait}"
RUN_NAMES=(baseline plain retry wait)
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

for v in ROWS RATE CLIENTS JOBS READER_AT READER_SECONDS DURATION; do posint "$v" "${!v}"; done
(( DURATION >= READER_AT + READER_SECONDS + 3 )) \
    || die "DURATION must leave 3 s after the reader ends (>= $((READER_AT + READER_SECONDS + 3)))"
bench_check_common pgbench
mkdir -p "$OUT_DIR"

bench_start_bench_db lock_wait "max_connections = 50
shared_buffers = '256MB'
autovacuum = off"

now() { date +%s.%N; }

LOAD_SQL="$WORK/load.sql"
cat >"$LOAD_SQL" <<'SQL'
\set id random(1, :rows)
UPDATE accounts SET balance = balance + 1 WHERE id = :id;
SELECT balance FROM accounts WHERE id = :id;
SQL

fresh_table() {
    sql >/dev/null <<SQL
SET safe_migrate.policy = off;
DROP TABLE IF EXISTS accounts;
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, filler text);
INSERT INTO accounts SELECT g, 0, repeat('x', 80) FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE accounts;
CHECKPOINT;
SQL
}

# the migration of run $1 (a psql script), its output in $2
migrate() {
    case "$1" in
        plain) sql -c "SET lock_timeout = 0" \
                   -c "ALTER TABLE accounts ADD COLUMN note_plain text" ;;
        retry) sql -c "SET safe_migrate.lock_strategy = retry" \
                   -c "SELECT status, lock_retries FROM migrate_apply('ALTER TABLE accounts ADD COLUMN note_retry text;', 'lw-retry')" ;;
        wait)  sql -c "SELECT status, lock_retries FROM migrate_apply('ALTER TABLE accounts ADD COLUMN note_wait text;', 'lw-wait')" ;;
    esac
}

declare -a LOAD_T0 READER_END MIG_FROM MIG_TO
one_run() {
    local i=$1 name=${RUN_NAMES[$1]} t0 pg_pid reader_pid mig_pid
    fresh_table
    log "run $((i + 1)) ($name): pgbench -R $RATE -c $CLIENTS for ${DURATION}s"
    t0="$(now)"
    "$PGBENCH" -n -f "$LOAD_SQL" -R "$RATE" -c "$CLIENTS" -j "$JOBS" -T "$DURATION" \
        -D rows="$ROWS" --random-seed=1 -l --log-prefix="$OUT/$name" bench >"$OUT/$name.out" 2>&1 &
    pg_pid=$!
    BG_PIDS+=("$pg_pid")
    LOAD_T0[$i]=$t0
    sleep "$READER_AT"
    (
        sql -c "BEGIN" -c "SELECT count(*) FROM accounts" -c "SELECT pg_sleep($READER_SECONDS)" \
            -c "COMMIT" >/dev/null
        now >"$OUT/$name.reader_end"
    ) &
    reader_pid=$!
    BG_PIDS+=("$reader_pid")
    if [[ "$name" != baseline ]]; then
        sleep 1
        MIG_FROM[$i]="$(now)"
        migrate "$name" >"$OUT/$name.migration" 2>&1 \
            || { cat "$OUT/$name.migration" >&2; die "run $((i + 1)) ($name): the migration failed"; }
        MIG_TO[$i]="$(now)"
    fi
    wait "$reader_pid" || die "run $((i + 1)) ($name): the reader failed"
    READER_END[$i]="$(cat "$OUT/$name.reader_end")"
    wait "$pg_pid" || { cat "$OUT/$name.out" >&2; die "run $((i + 1)) ($name): pgbench failed"; }
    compgen -G "$OUT/$name.[0-9]*" >/dev/null || die "run $((i + 1)) ($name): no pgbench log"
}

# latency FILES...: "count p50 p99 max" in ms (pgbench -l column 3, us; with
# -R measured from the scheduled start)
latency() { awk '$3 ~ /^[0-9]+$/ { print $3 }' "$@" | bench_percentiles; }
rel() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }
# max_at T0 FILES...: when (s since T0, by its end) the slowest transaction ended
max_at() {
    local t0=$1; shift
    awk -v t0="$t0" '$3 ~ /^[0-9]+$/ && $3 > m { m = $3; at = $5 + $6 / 1e6 - t0 }
        END { printf "%.1f", at }' "$@"
}

for i in 0 1 2 3; do one_run "$i"; done
declare -a N P50 P99 MAX
for i in 0 1 2 3; do
    read -r N[$i] P50[$i] P99[$i] MAX[$i] <<<"$(latency "$OUT/${RUN_NAMES[$i]}".[0-9]*)"
done

# ---------------------------------------------------------------- data + picture
DAT="$OUT_DIR/latency.dat"
{
    echo "# bench/lock_wait.sh: ROWS=$ROWS RATE=$RATE CLIENTS=$CLIENTS READER_AT=$READER_AT READER_SECONDS=$READER_SECONDS DURATION=$DURATION"
    echo "# max foreground latency (ms, pgbench -l, from the scheduled start) of the transactions that ended in each 100 ms slot"
    echo "# t_s baseline plain retry wait"
    args=()
    for i in 0 1 2 3; do args+=("run=$i" "t0=${LOAD_T0[$i]}" "$OUT/${RUN_NAMES[$i]}".[0-9]*); done
    awk '$3 ~ /^[0-9]+$/ {
            b = int(($5 + $6 / 1e6 - t0) * 10); if (b < 0) b = 0
            v = $3 / 1000; k = b SUBSEP run
            if (!(k in m) || v > m[k]) m[k] = v
            if (b > last) last = b
        }
        END {
            for (b = 0; b <= last; b++) {
                printf "%.1f", b / 10
                for (r = 0; r < 4; r++) { k = b SUBSEP r; if (k in m) printf " %.2f", m[k]; else printf " NaN" }
                printf "\n"
            }
        }' "${args[@]}"
} >"$DAT"

# latency.svg: log-scale y (1 ms .. 20 s), one polyline per run, the
# reader's transaction shaded
SVG="$OUT_DIR/latency.svg"
awk -v dur="$DURATION" -v rs="$READER_AT" -v re="$((READER_AT + READER_SECONDS))" \
    -v title="Foreground latency (max per 100 ms), pgbench -R $RATE, $ROWS rows; a reader holds the table ${READER_SECONDS} s" '
    function X(t) { return 70 + t / dur * 820 }
    function Y(ms) { if (ms < 1) ms = 1; if (ms > 20000) ms = 20000; return 40 + (1 - log(ms) / log(20000)) * 380 }
    /^#/ { next }
    { for (r = 2; r <= 5; r++) if ($r != "NaN") pts[r] = pts[r] sprintf("%.1f,%.1f ", X($1), Y($r)) }
    END {
        print "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"500\" font-family=\"sans-serif\" font-size=\"12\">"
        print "<rect width=\"960\" height=\"500\" fill=\"white\"/>"
        printf "<text x=\"480\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">%s</text>\n", title
        printf "<rect x=\"%.1f\" y=\"40\" width=\"%.1f\" height=\"380\" fill=\"#eeeeee\"/>\n", X(rs), X(re) - X(rs)
        printf "<text x=\"%.1f\" y=\"54\" fill=\"#777\">reader open</text>\n", X(rs) + 4
        split("1 10 50 100 1000 10000", ticks, " ")
        for (i = 1; i <= 6; i++) {
            printf "<line x1=\"70\" x2=\"890\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\"/>", Y(ticks[i]), Y(ticks[i])
            printf "<text x=\"64\" y=\"%.1f\" text-anchor=\"end\">%s ms</text>\n", Y(ticks[i]) + 4, ticks[i]
        }
        for (t = 0; t <= dur; t += 2)
            printf "<text x=\"%.1f\" y=\"438\" text-anchor=\"middle\">%d s</text>\n", X(t), t
        print "<rect x=\"70\" y=\"40\" width=\"820\" height=\"380\" fill=\"none\" stroke=\"black\"/>"
        split("#888888 #d62728 #1f77b4 #2ca02c", col, " ")
        split("baseline (no migration)|plain ALTER TABLE|migrate_apply, lock_strategy = retry|migrate_apply, lock_strategy = wait (default)", lab, "|")
        for (r = 2; r <= 5; r++) {
            printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>\n", col[r - 1], pts[r]
            printf "<line x1=\"%d\" x2=\"%d\" y1=\"470\" y2=\"470\" stroke=\"%s\" stroke-width=\"3\"/>", 70 + (r - 2) * 215, 95 + (r - 2) * 215, col[r - 1]
            printf "<text x=\"%d\" y=\"474\">%s</text>\n", 100 + (r - 2) * 215, lab[r - 1]
        }
        print "</svg>"
    }' "$DAT" >"$SVG"

# ---------------------------------------------------------------- report
echo
echo "safe_migrate lock-wait benchmark: ADD COLUMN (nullable) on $ROWS rows while a reader holds the table ${READER_SECONDS} s"
echo "PostgreSQL $(sql -c 'SHOW server_version'), $(nproc) CPUs; load: pgbench -R $RATE -c $CLIENTS -j $JOBS," \
     "${DURATION}s, point UPDATE + SELECT; reader at ${READER_AT}s, migration at $((READER_AT + 1))s"
echo
printf '  %-12s %8s %9s %9s %10s %9s %24s %12s\n' "run" "txns" "p50 ms" "p99 ms" "max ms" "max at s" \
    "migration end - reader end" "reader end s"
for i in 0 1 2 3; do
    end="-"
    [[ -n "${MIG_TO[$i]:-}" ]] && end="$(rel "${MIG_TO[$i]}" "${READER_END[$i]}") s"
    printf '  %-12s %8s %9s %9s %10s %9s %24s %12s\n' "$((i + 1)). ${RUN_NAMES[$i]}" "${N[$i]}" "${P50[$i]}" \
        "${P99[$i]}" "${MAX[$i]}" "$(max_at "${LOAD_T0[$i]}" "$OUT/${RUN_NAMES[$i]}".[0-9]*)" "$end" \
        "$(rel "${READER_END[$i]}" "${LOAD_T0[$i]}" | tr -d +)"
done
echo "  (max at / reader end: seconds since the load started; on a busy machine a max far from the"
echo "   reader's end is noise, not the migration: compare run 1)"
for i in 2 3; do
    echo "  run $((i + 1)) migration: $(tr '\n' ' ' <"$OUT/${RUN_NAMES[$i]}.migration")"
done
echo "  latency over time: $SVG (data: $DAT)"
echo
yn() { if awk "BEGIN { exit !($1) }"; then echo yes; else echo no; fi; }
ENDREL="$(rel "${MIG_TO[3]}" "${READER_END[3]}")"
echo "run 4 max under 50 ms: $(yn "${MAX[3]} < 50") (${MAX[3]} ms)"
echo "run 4 p99 within 2x of run 1: $(yn "${P99[3]} <= 2 * ${P99[0]}") (${P99[3]} ms vs ${P99[0]} ms)"
echo "run 4 ends within 1 s after the reader: $(yn "$ENDREL <= 1") ($ENDREL s)"
