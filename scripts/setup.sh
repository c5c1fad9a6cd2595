#!/usr/bin/env bash
# Install what safe_migrate needs on a Debian machine (as root), then build
# and install the extension.  Idempotent: packages already present are not
# fetched again.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PACKAGES=(postgresql-15 postgresql-server-dev-15 libipc-run-perl g++ make cmake
          googletest libgtest-dev libbenchmark-dev libboost-dev
          python3-alembic python3-psycopg2 pgbouncer)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian starts a "main" cluster on port 5432 when postgresql-15 is
# installed; we never use it (our clusters run on private ports).
# PG_CONFIG may name another (e.g. relocated private) installation.
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PATH=$("$PG_CONFIG" --bindir):$PATH
echo "== building safe_migrate"
make -C "$ROOT" -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" ${SAFE_MIGRATE_MAKE_FLAGS:-} >/dev/null
make -C "$ROOT" -s install PG_CONFIG="$PG_CONFIG" ${SAFE_MIGRATE_MAKE_FLAGS:-} >/dev/null
echo "== installed into $("$PG_CONFIG" --pkglibdir)"
