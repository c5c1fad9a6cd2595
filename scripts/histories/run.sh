#!/usr/bin/env bash
# Real migration histories through safe_migrate, next to plain psql.
# See scripts/histories/README.md.  Run as root from anywhere:
#
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config HISTORIES_PORT=56401 \
#     bash scripts/histories/run.sh [project ...]
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config),
# HISTORIES_PORT (56401), HISTORIES_CLUSTER (/tmp/histories/c, removed and
# created afresh), HISTORIES_CORPUS (/work/corpus; missing projects are
# exported from HISTORIES_REPOS, default /work/.mirror, see export.py),
# HISTORIES_RESULTS (/work/results/histories/<UTC time>),
# HISTORIES_BUILD=1 to build and install the extension first,
# HISTORIES_LIMIT=N to take only the first N migrations of each project,
# HISTORIES_NO_TEST=1 to skip migrate_test, HISTORIES_EMPTY_NOOP=1 to give
# empty up/down sections a no-op SELECT (works around issue 11 item 8),
# HISTORIES_PROBE=none|flagged|all (default flagged): check migrate_test's
# down verdicts with pg_dump in a scratch database.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
port=${HISTORIES_PORT:-56401}
cdir=${HISTORIES_CLUSTER:-/tmp/histories/c}
corpus=${HISTORIES_CORPUS:-/work/corpus}
repos=${HISTORIES_REPOS:-/work/.mirror}
results=${HISTORIES_RESULTS:-/work/results/histories/$(date -u +%Y%m%dT%H%M%SZ)}
bindir=$("$PG_CONFIG" --bindir)
projects=("$@")
if [ ${#projects[@]} -eq 0 ]; then
    mapfile -t projects < <(grep -v '^#' "$here/manifest.tsv" | cut -f1 | sed '/^$/d')
fi

if [ "${HISTORIES_BUILD:-0}" = 1 ]; then
    make -C "$top" -j2 PG_CONFIG="$PG_CONFIG" >/dev/null
    make -C "$top" install PG_CONFIG="$PG_CONFIG" >/dev/null
fi

for p in "${projects[@]}"; do
    want=$(awk -F'\t' -v p="$p" '$1 == p { print $2 "\t" $3 "\t" $4 "\t" $5 }' "$here/manifest.tsv")
    if [ -z "$want" ]; then
        echo "run.sh: project $p is not in $here/manifest.tsv" >&2
        exit 2
    fi
    if [ ! -f "$corpus/$p/index.tsv" ] || [ "$(cat "$corpus/$p/SOURCE" 2>/dev/null)" != "$want" ]; then
        rm -rf "${corpus:?}/$p"
        python3 "$here/export.py" --manifest "$here/manifest.tsv" --out "$corpus" \
            --repos-root "$repos" --project "$p"
    fi
done

# shellcheck source=../cluster.sh
source "$top/scripts/cluster.sh"
cluster_stop "$cdir"
rm -rf "$cdir"
cluster_start "$cdir" "$port"
trap 'cluster_stop "$cdir"' EXIT
mkdir -p "$results"
chmod 755 "$results"

echo "safe_migrate $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?') histories experiment; results in $results" >&2
for p in "${projects[@]}"; do
    echo "== $p ($(wc -l < "$corpus/$p/index.tsv") migrations)" >&2
    args=(--project "$p" --corpus "$corpus/$p" --results "$results" --host "$cdir" --port "$port" --bindir "$bindir")
    [ -n "${HISTORIES_LIMIT:-}" ] && args+=(--limit "$HISTORIES_LIMIT")
    [ "${HISTORIES_NO_TEST:-0}" = 1 ] && args+=(--no-test)
    [ "${HISTORIES_EMPTY_NOOP:-0}" = 1 ] && args+=(--empty-noop)
    args+=(--probe "${HISTORIES_PROBE:-flagged}")
    python3 "$here/drive.py" "${args[@]}"
done
cp "$cdir/server.log" "$results/server.log" 2>/dev/null || true
if grep -E 'terminated by signal|PANIC|TRAP:|server process .* was terminated' "$results/server.log" >"$results/crashes.txt"; then
    echo "!! the server log shows crashes: $results/crashes.txt" >&2
fi
python3 "$here/summarize.py" "$results" "${projects[@]}" | tee "$results/summary.md"
