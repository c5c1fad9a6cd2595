# bench/lib.sh — what every benchmark shares.  Source it first (with PG_BIN,
# PORT, PG_CONF_EXTRA and KEEP_CLUSTER set), then:
#
#   posint NAME VALUE           die unless VALUE is a positive integer
#   bench_check_common [BIN...] die unless the machine can run a benchmark:
#                               root, a valid PORT, the PostgreSQL 15 server
#                               binaries (plus BIN... from PG_BIN), safe_migrate
#                               installed, the postgres OS user, runuser,
#                               timeout, awk; sets PSQL and PGBENCH
#   bench_cluster_start PREFIX "postgresql.conf lines"
#   bench_start_bench_db PREFIX "postgresql.conf lines"
#                               the same, plus OUT, PGHOST/PGPORT/PGUSER and
#                               database bench with safe_migrate; sql (psql on
#                               bench; a script may define its own instead)
#   bench_percentiles           "count p50 p99 max" ms of the us on stdin
#   bench_median DECIMALS V...  the median of the values, DECIMALS places
#   bench_fill_wal DB N         N WAL segment files made now (BENCH_WAL_CONF)
#
# bench_cluster_start sets WORK, PGDATA, SOCK and SERVER_LOG, runs initdb as
# the postgres OS user into a mktemp directory, starts the server on a
# private port and socket directory (no TCP), and installs an EXIT trap that
# stops it, kills the script's background jobs (BG_PIDS) and removes the
# directory (unless KEEP_CLUSTER=1).

log()  { printf '[bench] %s\n' "$*" >&2; }
die()  { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer (got '$2')"; }

bench_check_common() {
    local b sharedir pkglibdir
    [[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT > 1024 && PORT < 65536 )) \
        || die "PORT must be in 1025..65535 (got '$PORT')"
    [[ $EUID -eq 0 ]] || die "run as root (the cluster is run as the postgres OS user)"
    for b in initdb pg_ctl postgres psql "$@"; do
        [[ -x "$PG_BIN/$b" ]] || die "$PG_BIN/$b not found (apt-get install postgresql-15 postgresql-contrib)"
    done
    PSQL="$PG_BIN/psql"
    PGBENCH="$PG_BIN/pgbench"
    sharedir="$("$PG_BIN/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)"
    pkglibdir="$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)"
    [[ -f "$sharedir/extension/safe_migrate.control" && -f "$pkglibdir/safe_migrate.so" ]] \
        || die "safe_migrate is not installed (control file or safe_migrate.so missing); run 'make install' in the repo"
    id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist (it comes with the postgresql-15 package)"
    command -v runuser >/dev/null || die "runuser not found (util-linux)"
    command -v timeout >/dev/null || die "timeout not found (coreutils)"
    command -v awk >/dev/null     || die "awk not found"
}

STARTED=0
BG_PIDS=()

bench_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if (( STARTED )); then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ -n "${WORK:-}" ]]; then
        if [[ "$KEEP_CLUSTER" == 1 ]]; then
            log "KEEP_CLUSTER=1: left $WORK in place"
        else
            # (a server under valgrind may still be writing its files after
            # the immediate stop returned: try again a few times)
            local try
            for try in 1 2 3 4 5; do
                rm -rf -- "$WORK" 2>/dev/null && break
                sleep 1
            done
            [[ -e "$WORK" ]] && echo "[bench] could not remove $WORK" >&2
        fi
    fi
    exit "$rc"
}

show_server_log() {
    if [[ -f "$SERVER_LOG" ]]; then
        printf '[bench] ---- last 40 lines of the server log ----\n' >&2
        tail -n 40 "$SERVER_LOG" >&2 || true
    fi
}

bench_cluster_start() {
    local prefix=$1 conf=$2
    WORK="$(mktemp -d "/tmp/$prefix.XXXXXX")"
    PGDATA="$WORK/data"
    SOCK="$WORK/sock"      # short path: unix socket paths are limited to 107 bytes
    SERVER_LOG="$WORK/server.log"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    mkdir -p "$PGDATA" "$SOCK"
    chown -R postgres:postgres "$WORK"
    chmod 700 "$WORK"

    log "initdb into $PGDATA"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 \
        || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }

    cat >>"$PGDATA/postgresql.conf" <<CONF

# ---- added by bench/ (${0##*/}) ----
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
$conf
logging_collector = off
log_min_messages = warning
$PG_CONF_EXTRA
CONF

    if "$PSQL" -X -q -h "$SOCK" -p "$PORT" -c 'select 1' >/dev/null 2>&1; then
        die "something already answers on port $PORT"
    fi
    # BENCH_SERVER_SETUP: a function that prepares, in $WORK, an executable
    # pg_ctl starts instead of postgres (e.g. postgres under valgrind) and
    # prints its path; BENCH_START_TIMEOUT: seconds pg_ctl waits (60)
    local server=()
    if [[ -n "${BENCH_SERVER_SETUP:-}" ]]; then
        server=(-p "$("$BENCH_SERVER_SETUP")")
    fi
    log "starting the cluster (port $PORT, socket dir $SOCK)"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" "${server[@]}" -l "$SERVER_LOG" -w \
        -t "${BENCH_START_TIMEOUT:-60}" start >/dev/null \
        || { show_server_log; die "the cluster did not start (port $PORT in use? set PORT=...)"; }
    STARTED=1
}

# bench_start_bench_db PREFIX "postgresql.conf lines": bench_cluster_start,
# then OUT (a directory for per-run files), the clients' environment (the
# superuser over the private socket, warnings only), and database bench with
# safe_migrate in it; sql runs psql on it, stopping at the first error.
sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d bench "$@"; }
bench_start_bench_db() {
    bench_cluster_start "$1" "$2"
    OUT="$WORK/out"
    mkdir -p "$OUT"
    export PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres
    export PGOPTIONS="-c client_min_messages=warning"
    "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
    sql -c "CREATE EXTENSION safe_migrate"
}

# bench_percentiles: "count p50 p99 max" in ms of the latencies in us read
# one per line from stdin; nearest-rank percentiles.
bench_percentiles() {
    sort -n | awk '{ v[NR] = $1 }
        END {
            if (NR == 0) { print "0 - - -"; exit }
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
            printf "%d %.2f %.2f %.2f\n", NR, v[i50] / 1000, v[i99] / 1000, v[NR] / 1000
        }'
}

# bench_median DECIMALS V...: the median of the values (the mean of the two
# middle ones for an even count), printed with DECIMALS places.
bench_median() {
    local decimals="$1"; shift
    printf '%s\n' "$@" | sort -g | awk -v d="$decimals" '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.*f", d, m }'
}

# The WAL of the benchmarks that run the seed's migration on 2,000,000 rows:
# 2GB kept (PostgreSQL's own hint with the default 1GB is "checkpoints are
# occurring too frequently ... Consider increasing max_wal_size"), the
# files made in advance with bench_fill_wal.
BENCH_WAL_CONF="min_wal_size = '2GB'
max_wal_size = '2GB'"

# bench_fill_wal DB N: have the server create N WAL segment files now (a WAL
# record and a pg_switch_wal() each), then CHECKPOINT twice so that they are
# recycled as future segments (up to min_wal_size / max_wal_size).  A fresh
# cluster has few; a backend that needs a new one zero-fills and fsyncs 16 MB
# while holding the WAL write lock, and every commit waits for it.  A server
# that has been running holds as many as its recent WAL volume needed.
bench_fill_wal() {
    "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d "$1" >/dev/null <<SQL
SELECT pg_logical_emit_message(false, 'bench', 'wal') AS lsn, pg_switch_wal() AS sw
  FROM generate_series(1, $2);
CHECKPOINT;
CHECKPOINT;
SQL
}

# ---------------------------------------------------------------- the disk
# The disk under these benchmarks (a virtual machine's block device) now and
# then holds a write or a cache flush for 50-400 ms, whoever writes: seen
# with 2-4 MB/s going to it and nothing dirty in the page cache as well as
# under a bulk UPDATE.  Every commit waits for its WAL flush, so each such
# hold is a foreground stall of the same length, in a baseline as in a
# migration.  bench_disk_watch_start samples the block device that holds
# PGDATA every 50 ms (its /proc/diskstats line: writes and flushes completed,
# the milliseconds they took, the requests in flight), from one bash process
# that forks nothing while it samples (about 2 % of one CPU), with the page
# cache's dirty pile; the functions below then match the foreground's
# stalls against the disk's holds.
#
#   bench_disk_watch_start FILE   start sampling into FILE (nothing happens,
#                                 and DISK_WATCH stays empty, where PGDATA's
#                                 device is not in /proc/diskstats)
#   bench_disk_holds FILE LOGS... "n_over n_held max_rest" for the
#                                 pgbench -l LOGS: transactions over 50 ms,
#                                 how many of them were under 50 ms outside
#                                 the disk's holds (their latency less the
#                                 time they overlapped a hold of 40 ms or
#                                 more), and the largest such latency outside
#                                 the holds (ms) of all the transactions
#   bench_disk_hold_list FILE T0 LOGS...  one line per foreground stall over
#                                 50 ms (merged within 0.5 s): seconds since
#                                 T0, latency, the hold it overlaps
#   (a load that began before the samples or ended after them, e.g. a
#   sampler that died, gets "- - -" and "not named", never "no hold")
#   bench_disk_report DIR LABEL T0 PREFIX ...  for each run (its label, load
#                                 start, pgbench log prefix): the counts above
#                                 and the list, printed; the samples copied to
#                                 DIR/disk.txt; HOTHER[i] set per run
DISK_WATCH=""
bench_disk_watch_start() {
    local file=$1 src dev
    src="$(df --output=source "$PGDATA" 2>/dev/null | tail -n 1)"
    [[ "$src" == /dev/* ]] && src="$(readlink -f "$src")"   # /dev/mapper/x -> /dev/dm-N
    dev="${src##*/}"
    if [[ -z "$dev" || -z "${EPOCHREALTIME:-}" ]] \
        || ! awk -v d="$dev" '$3 == d { f = 1 } END { exit !f }' /proc/diskstats 2>/dev/null; then
        log "disk holds: not measured (no /proc/diskstats line for $PGDATA's device '$src')"
        return 0
    fi
    DISK_WATCH="$file"
    (
        # read -t on a FIFO nobody writes to: a 50 ms sleep without a fork
        mkfifo "$WORK/disk_watch.nap" && exec {nap}<>"$WORK/disk_watch.nap" || exit 0
        set +euo pipefail   # a sampler that skips a bad line, never one that exits
        local ds f x ok mi dirty wb
        while :; do
            # the page cache's dirty and under-write-back kB (/proc/meminfo)
            IFS= read -r -d '' mi </proc/meminfo || true
            dirty=0 wb=0
            [[ "$mi" =~ Dirty:\ +([0-9]+) ]] && dirty=${BASH_REMATCH[1]}
            [[ "$mi" =~ Writeback:\ +([0-9]+) ]] && wb=${BASH_REMATCH[1]}
            # the whole file in one go (read -d '' to its end): reading a
            # /proc file line by line seeks back, and the kernel then
            # regenerates the text from counters that moved, so a line can
            # come out shifted; and every field is checked to be a number
            # before the arithmetic (an error there ends the shell)
            IFS= read -r -d '' ds </proc/diskstats || true
            while read -r -a f; do
                [[ ${#f[@]} -ge 14 && "${f[2]}" == "$dev" ]] || continue
                ok=1
                for x in "${f[7]}" "${f[9]}" "${f[10]}" "${f[11]}" "${f[18]:-0}" "${f[19]:-0}"; do
                    [[ "$x" =~ ^[0-9]{1,18}$ ]] || ok=0
                done
                # 8 writes done, 11 ms writing, 12 in flight, 19/20 flushes done / ms, 10 sectors written
                (( ok )) && echo "$EPOCHREALTIME $(( 10#${f[7]} + 10#${f[18]:-0} )) $(( 10#${f[10]} + 10#${f[19]:-0} )) $(( 10#${f[11]} )) $(( 10#${f[9]} )) $dirty $wb"
            done <<<"$ds"
            read -r -t 0.05 -u "$nap" _ || true
        done
    ) >"$file" 2>/dev/null &
    BG_PIDS+=("$!")
}

# The samples: "epoch writes+flushes_done ms_spent in_flight sectors_written
# dirty_kB writeback_kB" (the last two the page cache's, /proc/meminfo; the
# list gives their most from 1 s before each stall).
# the holds: "start end MB/s" (epoch seconds; the MB/s written to the disk
# in the 2 s before the hold), one per line.  Between two samples the disk
# held a request if one was in flight at both and none completed; requests
# that completed between two samples taking 40 ms or more on average (ms
# spent / requests done) were held from (completion - average).
# Overlapping spans merge; spans under 40 ms are dropped.  What this misses:
# one slow request among many quick ones done in the same 50 ms (the
# average hides it), so the counts are a lower bound of the disk's part.
bench_disk_hold_spans() {
    awk 'NF >= 5 { k++; T[k] = $1; S[k] = $5 }
         NF >= 5 && k > 1 {
            dd = $2 - pd; dm = $3 - pm
            if (dd == 0 && pf >= 1 && $4 >= 1) span(pt, $1)
            else if (dd > 0 && dm / dd >= 40) span($1 - dm / dd / 1000, $1)
         }
         NF >= 5 { pt = $1; pd = $2; pm = $3; pf = $4 }
         function span(a, b,   j, i) {
            if (n && a <= e[n]) { if (b > e[n]) e[n] = b; if (a < s[n]) s[n] = a; return }
            n++; s[n] = a; e[n] = b
            for (i = k; i > 1 && T[i] > a; i--) ;
            for (j = i; j > 1 && T[j] > a - 2; j--) ;
            r[n] = (T[i] > T[j]) ? (S[i] - S[j]) * 512 / 1e6 / (T[i] - T[j]) : 0
         }
         END { for (i = 1; i <= n; i++) if (e[i] - s[i] >= 0.04) printf "%.3f %.3f %.1f\n", s[i], e[i], r[i] }' "$1"
}

bench_disk_holds() {
    local file=$1; shift
    [[ -n "$DISK_WATCH" && -s "$file" ]] || { echo "- - -"; return 0; }
    # samples that stopped before the load ended (the sampler died) name nothing
    awk -v first="$(head -n 1 "$file" | cut -d' ' -f1)" -v last="$(tail -n 1 "$file" | cut -d' ' -f1)" 'FILENAME == ARGV[1] { hs[++h] = $1; he[h] = $2; next }
         $3 ~ /^[0-9]+$/ {
            e = $5 + $6 / 1e6; l = $3 / 1000; s = e - l / 1000; inside = 0
            for (i = 1; i <= h; i++) { o = ov(s, e, hs[i], he[i]); if (o > 0) inside += o * 1000 }
            rest = l - inside   # its latency outside the holds
            if (l > 50) { over++; if (rest < 50) nh++ }
            if (rest > other) other = rest
         }
         function ov(a, b, c, d) { return (b < d ? b : d) - (a > c ? a : c) }
         $3 ~ /^[0-9]+$/ && ($5 + $6 / 1e6 > last + 1 || $5 + $6 / 1e6 - $3 / 1e6 < first - 1) { late = 1 }
         END { if (late) print "- - -"; else printf "%d %d %.2f\n", over, nh, other }' <(bench_disk_hold_spans "$file") "$@"
}

bench_disk_hold_list() {
    local file=$1 t0=$2; shift 2
    [[ -n "$DISK_WATCH" && -s "$file" ]] || return 0
    local first last
    first="$(head -n 1 "$file" | cut -d' ' -f1)"
    last="$(tail -n 1 "$file" | cut -d' ' -f1)"
    awk '$3 ~ /^[0-9]+$/ && $3 > 50000 { printf "%.6f %.3f\n", $5 + $6 / 1e6, $3 / 1000 }' "$@" | sort -n |
    awk -v t0="$t0" -v first="$first" -v last="$last" 'FILENAME == ARGV[1] { hs[++h] = $1; he[h] = $2; hr[h] = $3; next }
         FILENAME == ARGV[2] { if (NF >= 7) { q++; qt[q] = $1; qd[q] = ($6 + $7) / 1024 }; next }
         { if (n && $1 - pe <= 0.5) { if ($2 > ml[n]) { ml[n] = $2; me[n] = $1 } }
           else { n++; ml[n] = $2; me[n] = $1 }
           pe = $1 }
         function ov(a, b, c, d) { return (b < d ? b : d) - (a > c ? a : c) }
         END {
            for (k = 1; k <= n; k++) {
                e = me[k]; s = e - ml[k] / 1000; what = "no disk hold of 40 ms or more seen"
                if (s < first || e > last) what = "outside the disk samples: not named"
                for (i = 1; i <= h; i++) if (ov(s, e, hs[i], he[i]) > 0) {
                    what = sprintf("the disk held a request %.0f ms (from %.2f s; %.0f MB/s written in the 2 s before)", (he[i] - hs[i]) * 1000, hs[i] - t0, hr[i]); break }
                pile = -1   # the most dirty + under write-back in the page cache from 1 s before
                for (j = 1; j <= q; j++) if (qt[j] >= s - 1 && qt[j] <= e && qd[j] > pile) pile = qd[j]
                if (pile >= 0) what = what sprintf("; %.0f MB dirty in the page cache", pile)
                printf "%.2f s: %.1f ms, %s\n", e - t0, ml[k], what
            }
         }' <(bench_disk_hold_spans "$file") "$file" -
}

bench_disk_report() {
    local dir=$1 i=0 label t0 prefix
    shift
    HOTHER=()
    [[ -n "$DISK_WATCH" ]] || return 0
    cp "$DISK_WATCH" "$dir/disk.txt"
    echo "  the disk's holds (a write or flush it held 40 ms or more, sampled every 50 ms; $dir/disk.txt):"
    printf '  %-22s %12s %24s %28s\n' "run" "txns >50 ms" "< 50 ms outside holds" "max outside the holds, ms"
    local lists=""
    while (( $# >= 3 )); do
        label=$1 t0=$2 prefix=$3
        shift 3
        local over held other
        read -r over held other <<<"$(bench_disk_holds "$DISK_WATCH" "$prefix".[0-9]*)"
        HOTHER[$i]=$other
        printf '  %-22s %12s %24s %28s\n' "$label" "$over" "$held" "$other"
        lists+="$(bench_disk_hold_list "$DISK_WATCH" "$t0" "$prefix".[0-9]* | sed "s/^/    run ${label%%.*} at /")"$'\n'
        i=$((i + 1))
    done
    printf '%s' "$lists" | sed '/^$/d'
    echo
}
