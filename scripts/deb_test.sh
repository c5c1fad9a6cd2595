#!/usr/bin/env bash
# Build the Debian package postgresql-15-safe-migrate (scripts/deb.sh),
# install it with dpkg on this machine, create a fresh PostgreSQL 15
# cluster with the system's binaries and the extension preloaded, and run
# the pg_regress and isolation suites against it with `make installcheck`
# (nothing is built for that: the tests use the packaged files).  Ends with
# "deb_test: N passed, M failed".
#
# As root, deliberately: installing the package replaces the system
# PostgreSQL 15's safe_migrate files (those `make install` put there).
# They are saved first and put back afterwards, and the package is
# removed again unless it was installed before.
#
# SAFE_MIGRATE_DEB_ROOT=/some/root: leave the system alone and unpack the
# package (dpkg -x) into that root instead, which must hold a relocated
# copy of Debian's PostgreSQL 15 (usr/lib/postgresql/15, usr/share/
# postgresql/15, as scripts/sanitize.sh and the engineers' private copies
# have): the same files in the same places, tested with that copy's
# binaries.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${SAFE_MIGRATE_DEB_TEST_PORT:-54339}
MAJOR=15
DEB_ROOT=${SAFE_MIGRATE_DEB_ROOT:-}
SYS_PG_CONFIG=$DEB_ROOT/usr/lib/postgresql/$MAJOR/bin/pg_config
PKG=postgresql-$MAJOR-safe-migrate
[ "$(id -u)" = 0 ] || { echo "deb_test: run as root (it installs a package)"; exit 1; }
[ -x "$SYS_PG_CONFIG" ] || { echo "deb_test: no PostgreSQL $MAJOR at $SYS_PG_CONFIG"; exit 1; }

WORK=$(mktemp -d /tmp/safe_migrate_deb_test.XXXXXX)
LOGS=$ROOT/test/logs/deb
rm -rf "$LOGS"; mkdir -p "$LOGS"
export PG_CONFIG=$SYS_PG_CONFIG
source "$ROOT/scripts/cluster.sh"

if ! DEB_OUT=$WORK/deb bash "$ROOT/scripts/deb.sh" >"$LOGS/deb.log" 2>&1; then
    cat "$LOGS/deb.log"; echo "deb_test: 0 passed, 1 failed (the package did not build)"; exit 1
fi
grep -E '^(==|   |built)' "$LOGS/deb.log"

# what the package replaces: save it, to put it back afterwards
LIBDIR=$("$SYS_PG_CONFIG" --pkglibdir)
EXTDIR=$("$SYS_PG_CONFIG" --sharedir)/extension
was_installed=0
[ -z "$DEB_ROOT" ] && dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep "install ok installed" >/dev/null &&
    was_installed=1
mkdir -p "$WORK/saved"
cp -a "$LIBDIR"/safe_migrate.so "$EXTDIR"/safe_migrate.control "$EXTDIR"/safe_migrate--*.sql \
    "$WORK/saved/" 2>/dev/null
restore() {
    cluster_stop "$WORK/cluster"
    if [ "$was_installed" = 0 ]; then
        [ -z "$DEB_ROOT" ] && dpkg -r "$PKG" >/dev/null 2>&1
        rm -f "$LIBDIR"/safe_migrate.so "$EXTDIR"/safe_migrate.control "$EXTDIR"/safe_migrate--*.sql
        # the files of an earlier `make install`, as they were
        for f in "$WORK"/saved/*; do
            [ -e "$f" ] || continue
            case "$f" in
                *.so) cp -a "$f" "$LIBDIR"/ ;;
                *) cp -a "$f" "$EXTDIR"/ ;;
            esac
        done
    fi
    rm -rf "$WORK"
}
trap restore EXIT

passed=0; failed=0
check() {  # name, then the command
    local name=$1; shift
    if "$@" >>"$LOGS/checks.log" 2>&1; then passed=$((passed + 1)); echo "ok $name"
    else failed=$((failed + 1)); echo "FAILED $name"; fi
}

deb=$(ls "$WORK"/deb/"$PKG"_*.deb)
if [ -z "$DEB_ROOT" ]; then
    check "dpkg -i $(basename "$deb")" dpkg -i "$deb"
    check "the extension files belong to $PKG" dpkg -S "$LIBDIR/safe_migrate.so" "$EXTDIR/safe_migrate.control"
    check "the installed files are the package's (dpkg --verify)" dpkg --verify "$PKG"
else
    rm -f "$LIBDIR"/safe_migrate.so "$EXTDIR"/safe_migrate.control "$EXTDIR"/safe_migrate--*.sql
    check "dpkg -x $(basename "$deb") $DEB_ROOT" dpkg -x "$deb" "$DEB_ROOT"
fi
check "the package puts the library and the extension files where pg_config says" \
    test -f "$LIBDIR/safe_migrate.so" -a -f "$EXTDIR/safe_migrate.control" \
    -a -f "$EXTDIR/safe_migrate--$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/safe_migrate.control").sql"

# a fresh cluster of the system's PostgreSQL 15, the extension preloaded
chown postgres "$WORK"
cluster_start "$WORK/cluster" "$PORT"
check "the fresh cluster loads the packaged library" runuser -u postgres -- \
    "$("$SYS_PG_CONFIG" --bindir)/psql" -X -h "$WORK/cluster" -p "$PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -c "CREATE EXTENSION safe_migrate" \
    -c "SELECT status FROM migrate_apply('CREATE TABLE deb_probe (id int)', 'deb-probe')" \
    -c "SET safe_migrate.policy = off" -c "DROP TABLE deb_probe" -c "DROP EXTENSION safe_migrate"

# the suites, from a copy of the sources (they write next to their inputs)
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' | tar --null -T - -cf -) |
    tar -xf - -C "$WORK/src"
chown -R postgres "$WORK"
for suite in "ISOLATION=" "REGRESS="; do
    runuser -u postgres -- make -C "$WORK/src" installcheck PG_CONFIG="$SYS_PG_CONFIG" TAP_TESTS= \
        "$suite" PGHOST="$WORK/cluster" PGPORT="$PORT" PGUSER=postgres >>"$LOGS/installcheck.log" 2>&1
done
grep -E '^(test|not ok|ok) ' "$LOGS/installcheck.log"
r_ok=$(grep -cE '^test .* \.\.\. ok' "$LOGS/installcheck.log")
r_bad=$(grep -cE '^test .* \.\.\. FAILED' "$LOGS/installcheck.log")
[ "$r_ok" -gt 0 ] || r_bad=$((r_bad + 1))
for f in regression.diffs test/isolation/output_iso/regression.diffs; do
    [ -f "$WORK/src/$f" ] && cp "$WORK/src/$f" "$LOGS/$(echo "$f" | tr / _)"
done
# nothing was compiled for the suites: they ran against the package
if ls "$WORK"/src/src/*.o "$WORK"/src/*.so >/dev/null 2>&1; then
    echo "FAILED installcheck built the extension instead of using the package"; failed=$((failed + 1))
fi
passed=$((passed + r_ok)); failed=$((failed + r_bad))
echo "deb_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
