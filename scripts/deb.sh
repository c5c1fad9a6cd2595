#!/usr/bin/env bash
# Build the Debian packages postgresql-MAJOR-safe-migrate the way
# PostgreSQL extensions are packaged for Debian (debian/: pg_buildext,
# debian/pgversions), from the files git knows (committed or not) in a
# scratch copy of the tree.  One package per version in debian/pgversions
# (15, 17, 18) for which this machine has postgresql-server-dev-MAJOR
# (pg_buildext supported-versions); it says which it built.  On Debian 12
# that is 15 alone: Debian's packages for 17 and 18 come with newer Debian
# releases (or apt.postgresql.org), and the servers scripts/test.sh builds
# from source for PG_MAJOR=17/18 are not Debian packages to depend on.
#
#   bash scripts/deb.sh            (or: make deb)
# Packages land in $DEB_OUT (default: build/deb in the tree).  Needs root
# for the build dependencies only (installed if missing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${DEB_OUT:-$ROOT/build/deb}

need=(debhelper postgresql-server-dev-all dpkg-dev g++ make)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing build dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
upstream=${version%-*}
WORK=$(mktemp -d /tmp/safe_migrate_deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/safe-migrate-$upstream
mkdir -p "$SRC"
# the tree as git sees it (tracked and new files, not ignored ones: no
# objects, logs or earlier packages)
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' | tar --null -T - -cf -) |
    tar -xf - -C "$SRC"

cd "$SRC"
versions=$(pg_buildext supported-versions)
[ -n "$versions" ] || { echo "deb: no PostgreSQL version of debian/pgversions is supported here" >&2; exit 1; }
echo "== building safe-migrate $version for PostgreSQL: $(echo $versions)"
echo "   (debian/pgversions: $(echo $(cat debian/pgversions)); not supported on this machine:" \
     "$(echo $(grep -vxF -f <(echo "$versions") debian/pgversions) ))"
pg_buildext updatecontrol
dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$WORK/build.log" 2>&1 ||
    { tail -40 "$WORK/build.log"; echo "deb: dpkg-buildpackage failed" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/postgresql-*-safe-migrate*_"$version"_*.deb
cp "$WORK"/*.deb "$OUT"/
for deb in "$WORK"/*.deb; do echo "built $OUT/$(basename "$deb")"; done
