#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for safe_migrate, run as the postgres OS
# user on its own port and socket directory.  Source this file, then:
#   cluster_start DIR PORT     (initdb if needed, preload safe_migrate, start)
#   cluster_stop DIR
PGBIN=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)

cluster_start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        runuser -u postgres -- "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
        cat >> "$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'safe_migrate'
max_worker_processes = 32
fsync = on
CONF
    fi
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

cluster_stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
}
