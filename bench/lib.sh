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
