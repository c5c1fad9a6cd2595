#!/usr/bin/env bash
# Build an assert-enabled PostgreSQL server from Debian's source package, for
# the test suite's runs against other versions (scripts/test.sh PG_MAJOR=...).
#
#   bash scripts/pgbuild.sh MAJOR        (MAJOR = 15, 17 or 18)
#
# Prints the installation's pg_config path as its last line.  As root on a
# Debian machine (12 or later).
#
# 1. deb-src lines for the Debian suites that carry postgresql-MAJOR
#    (15: bookworm, 17: trixie, 18: sid/forky) go into
#    /etc/apt/sources.list.d/safe_migrate-pgsrc.sources, unless apt already
#    has them.  Build dependencies are installed with apt-get.
# 2. The source package: `apt-get source --download-only postgresql-MAJOR`
#    (each version apt's index lists, newest first); when the mirror no
#    longer has the files the index names (a security update that replaced
#    them), known versions are fetched straight from the pool and checked
#    against the .dsc's SHA-256 sums.  dpkg-source -x --skip-patches: the
#    upstream tree (Debian's patches move files to Debian's fixed paths,
#    /usr/lib/postgresql/MAJOR/..., which a private prefix must not use).
# 3. configure --enable-cassert --enable-debug --enable-tap-tests
#    --with-openssl --with-icu, make, install with contrib, the isolation
#    tester and the TAP modules (PostgreSQL::Test::Cluster) into
#    $SAFE_MIGRATE_PG_CACHE/pg-MAJOR (default /var/cache/safe_migrate).
# 4. A stamp file records the source version and the configure options; a
#    complete installation with a matching stamp is reused as it is (a few
#    milliseconds), anything else is rebuilt from scratch.
#
# Environment: SAFE_MIGRATE_PG_CACHE, SAFE_MIGRATE_PG_JOBS (make -j,
# default nproc).
set -euo pipefail
MAJOR=${1:?usage: pgbuild.sh MAJOR (15, 17 or 18)}
CACHE=${SAFE_MIGRATE_PG_CACHE:-/var/cache/safe_migrate}
JOBS=${SAFE_MIGRATE_PG_JOBS:-$(nproc)}
PREFIX=$CACHE/pg-$MAJOR
STAMP=$PREFIX/.safe_migrate-pgbuild
PKG=postgresql-$MAJOR
CONFIGURE_OPTS=(--enable-cassert --enable-debug --enable-tap-tests --with-openssl --with-icu)

log() { echo "pgbuild[$MAJOR]: $*" >&2; }
die() { echo "pgbuild[$MAJOR]: ERROR: $*" >&2; exit 1; }

case $MAJOR in
    15) SUITES=("http://deb.debian.org/debian bookworm bookworm-updates"
                "http://deb.debian.org/debian-security bookworm-security")
        POOL_FALLBACK=(15.18-0+deb12u1 15.14-0+deb12u1) ;;
    17) SUITES=("http://deb.debian.org/debian trixie trixie-updates"
                "http://deb.debian.org/debian-security trixie-security")
        POOL_FALLBACK=(17.11-0+deb13u1 17.10-0+deb13u1 17.9-0+deb13u1) ;;
    18) SUITES=("http://deb.debian.org/debian sid forky")
        POOL_FALLBACK=() ;;
    *) die "unsupported major version $MAJOR (15, 17 or 18)" ;;
esac

# What a complete installation has: the server, pg_config, PGXS with
# pg_regress, the isolation tester and the TAP modules, and contrib.
complete() {
    local pkglib
    [ -x "$PREFIX/bin/postgres" ] && [ -x "$PREFIX/bin/pg_config" ] || return 1
    pkglib=$("$PREFIX/bin/pg_config" --pkglibdir) || return 1
    [ -x "$pkglib/pgxs/src/test/regress/pg_regress" ] &&
        [ -x "$pkglib/pgxs/src/test/isolation/pg_isolation_regress" ] &&
        [ -f "$pkglib/pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm" ] &&
        [ -f "$pkglib/citext.so" ] && [ -f "$pkglib/file_fdw.so" ]
}
stamp_text() { printf 'source=%s\nconfigure=%s\n' "$1" "${CONFIGURE_OPTS[*]}"; }

if [ -f "$STAMP" ] && complete; then
    src=$(sed -n 's/^source=//p' "$STAMP")
    if [ "$(cat "$STAMP")" = "$(stamp_text "$src")" ]; then
        log "cached: $src in $PREFIX"
        echo "$PREFIX/bin/pg_config"
        exit 0
    fi
fi
[ "$(id -u)" = 0 ] || die "building needs root (apt-get); run as root"

# 1. build dependencies and deb-src lines
export DEBIAN_FRONTEND=noninteractive
DEPS=(build-essential bison flex libreadline-dev zlib1g-dev libssl-dev libicu-dev
      pkg-config libipc-run-perl perl dpkg-dev curl ca-certificates xz-utils bzip2)
missing=()
for p in "${DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
SRCFILE=/etc/apt/sources.list.d/safe_migrate-pgsrc-$MAJOR.sources
# A suite apt already has deb-src lines for (in a sources file other than
# ours) is not added again: apt warns about duplicates.
have_src() {  # uri suite
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && [ "$f" != "$SRCFILE" ] || continue
        awk -v uri="$1" -v suite="$2" '
            function check() { if (t ~ /deb-src/ && u == uri && (" " s " ") ~ (" " suite " ")) found = 1 }
            /^[[:space:]]*$/ { check(); t = u = s = ""; next }
            /^Types:/ { t = $0 } /^URIs:/ { u = $2 } /^Suites:/ { $1 = ""; s = $0 }
            END { check(); exit !found }' "$f" && return 0
    done
    grep -hqsE "^deb-src +(\[[^]]*\] +)?$1/? +$2 " /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}
want=""
for entry in "${SUITES[@]}"; do
    read -r uri suites <<<"$entry"
    need=()
    for s in $suites; do have_src "$uri" "$s" || need+=("$s"); done
    [ ${#need[@]} -gt 0 ] && want+="Types: deb-src
URIs: $uri
Suites: ${need[*]}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

"
done
updated=0
if { [ -n "$want" ] && ! printf '%s' "$want" | cmp -s - "$SRCFILE"; } ||
   { [ -z "$want" ] && [ -f "$SRCFILE" ]; }; then
    if [ -n "$want" ]; then
        log "writing deb-src lines to $SRCFILE"
        printf '%s' "$want" > "$SRCFILE"
    else
        rm -f "$SRCFILE"
    fi
    updated=1
fi
if [ "$updated" = 1 ] || [ ${#missing[@]} -gt 0 ] || ! apt-cache showsrc "$PKG" 2>/dev/null | grep '^Version:' >/dev/null; then
    apt-get update -qq || die "apt-get update failed"
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing build dependencies: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "could not install ${missing[*]}"
fi

# 2. the source package
DL=$CACHE/src/$PKG
rm -rf "$DL"; mkdir -p "$DL"; chmod 755 "$DL"
cd "$DL"
dsc=""
fetched_ok() { ls "$DL"/${PKG}_*.dsc >/dev/null 2>&1; }
for v in $(apt-cache showsrc "$PKG" 2>/dev/null | sed -n 's/^Version: //p' | sort -Vru); do
    log "apt-get source $PKG=$v"
    # _apt cannot write into a root-owned directory; downloading as root is fine here
    if apt-get -qq source --download-only "$PKG=$v" >"$DL/apt.log" 2>&1 && fetched_ok; then
        dsc=$(ls "$DL"/${PKG}_*.dsc | head -1); break
    fi
    log "  not downloadable ($(grep -m1 -oE '[0-9]{3} +[A-Za-z ]+' "$DL/apt.log" || echo failed))"
    rm -f "$DL"/${PKG}_*
done
if [ -z "$dsc" ]; then
    # The pool keeps older versions a while after the index has moved on.
    pool=http://deb.debian.org/debian/pool/main/p/$PKG
    for v in "${POOL_FALLBACK[@]}"; do
        f=${PKG}_$v.dsc
        log "fetching $pool/$f"
        curl -fsS -o "$DL/$f" "$pool/$f" || { rm -f "$DL/$f"; continue; }
        ok=1
        # Checksums-Sha256 lines: " sha256 size name"
        while read -r sum size name; do
            curl -fsS -o "$DL/$name" "$pool/$name" || { ok=0; break; }
            echo "$sum  $DL/$name" | sha256sum -c --quiet - || { ok=0; break; }
            [ "$(stat -c %s "$DL/$name")" = "$size" ] || { ok=0; break; }
        done < <(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && NF == 3' "$DL/$f")
        grep -q '^Checksums-Sha256:' "$DL/$f" || ok=0
        if [ "$ok" = 1 ]; then dsc=$DL/$f; break; fi
        log "  $v: incomplete or checksum mismatch"
        rm -f "$DL"/${PKG}_*
    done
fi
[ -n "$dsc" ] || die "no source package for $PKG could be fetched"
source_version=$(basename "$dsc" .dsc)
log "source: $source_version"
dpkg-source --no-check -x --skip-patches "$dsc" "$DL/tree" >/dev/null || die "dpkg-source -x $dsc failed"

# 3. build and install.  The tree is built as root: configure refuses
# nothing there, and only the installed files are used afterwards.
rm -rf "$PREFIX"
cd "$DL/tree"
log "configure ${CONFIGURE_OPTS[*]} --prefix=$PREFIX"
./configure --prefix="$PREFIX" "${CONFIGURE_OPTS[@]}" >"$DL/configure.log" 2>&1 ||
    { tail -20 "$DL/configure.log" >&2; die "configure failed (log $DL/configure.log)"; }
t0=$(date +%s)
log "make -j$JOBS (log $DL/make.log)"
{ make -j"$JOBS" -s world-bin && make -s install-world-bin &&
  make -s -C src/test/isolation install; } >"$DL/make.log" 2>&1 ||
    { tail -30 "$DL/make.log" >&2; die "build failed (log $DL/make.log)"; }
# the TAP modules (installed by install-world-bin with --enable-tap-tests;
# checked here so a missing piece fails now, not in the middle of a test run)
complete || die "installation in $PREFIX is incomplete"
stamp_text "$source_version" > "$STAMP"
log "built $source_version in $(( $(date +%s) - t0 ))s: $PREFIX"
# Keep the tree's regression inputs (scripts/regress_suite uses them), drop
# the object files.
make -s clean >/dev/null 2>&1 || true
echo "$PREFIX/bin/pg_config"
