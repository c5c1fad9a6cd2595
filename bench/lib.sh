# bench/lib.sh — the throwaway cluster every benchmark runs on.  Source it,
# with PG_BIN, PORT, PG_CONF_EXTRA, KEEP_CLUSTER, PSQL, log() and die()
# defined, then:
#
#   bench_cluster_start PREFIX "postgresql.conf lines"
#
# sets WORK, PGDATA, SOCK and SERVER_LOG, runs initdb as the postgres OS
# user into a mktemp directory, starts the server on a private port and
# socket directory (no TCP), and installs an EXIT trap that stops it, kills
# the script's background jobs (BG_PIDS) and removes the directory (unless
# KEEP_CLUSTER=1).

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
            rm -rf -- "$WORK"
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
    log "starting the cluster (port $PORT, socket dir $SOCK)"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$SERVER_LOG" -w -t 60 start >/dev/null \
        || { show_server_log; die "the cluster did not start (port $PORT in use? set PORT=...)"; }
    STARTED=1
}
