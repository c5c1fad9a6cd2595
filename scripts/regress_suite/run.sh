#!/usr/bin/env bash
# Run PostgreSQL 15's own regression suite (src/test/regress, parallel_schedule)
# twice against a private cluster that preloads safe_migrate:
#   (a) baseline:          plain "regression" database
#   (b) with safe_migrate: "regression" database with CREATE EXTENSION safe_migrate
# then prove that (b) differs from (a) only by added WARNINGs and that no
# backend crashed.  See README.md beside this file.
#
# Environment (all optional):
#   PORT=54500                 port of the private cluster (unix socket only)
#   SAFE_MIGRATE_POLICY=warn   value written to postgresql.conf
#   PG_LOCALE=C.UTF-8          initdb --locale (encoding UTF8)
#   SCHEDULE=path              schedule file (default: the source's parallel_schedule)
#   ALLOW_DIFF="t1 t2"         tests whose differences are printed but not counted
#   REGRESS_SUITE_FAIL_ON=crash  differences are printed, only crash signs
#                              (a signal, PANIC, a failed assertion) fail
#   MAX_CONCURRENT_TESTS=20    as in src/test/regress/GNUmakefile
#   PGSRC_CACHE=/var/tmp/safe_migrate_pgsrc
#   RESULTS_ROOT=/var/tmp/safe_migrate_regress_suite
set -euo pipefail

PORT=${PORT:-54500}
POLICY=${SAFE_MIGRATE_POLICY:-warn}
PG_LOCALE=${PG_LOCALE:-C.UTF-8}
MAX_CONCURRENT_TESTS=${MAX_CONCURRENT_TESTS:-20}
PGSRC_CACHE=${PGSRC_CACHE:-/var/tmp/safe_migrate_pgsrc}
RESULTS_ROOT=${RESULTS_ROOT:-/var/tmp/safe_migrate_regress_suite}
EXTENSION=safe_migrate
# The extension created in run (b).  Only to check this script itself with a
# stand-in extension; safe_migrate is preloaded in both runs regardless.
LOAD_EXTENSION=${LOAD_EXTENSION:-$EXTENSION}
PGMAJOR=15
PKG=postgresql-$PGMAJOR
PGBIN=/usr/lib/postgresql/$PGMAJOR/bin
PG_CONFIG=$PGBIN/pg_config
PG_REGRESS=/usr/lib/postgresql/$PGMAJOR/lib/pgxs/src/test/regress/pg_regress
# PG_MAJOR=17 or 18 (or 15 with PG_ASSERT=1): the assert-enabled server of
# scripts/pgbuild.sh, with the regression tests of the very source it was
# built from (its unpacked tree stays in the build cache).
BUILT=0
if [ -n "${PG_MAJOR:-}" ] && { [ "$PG_MAJOR" != 15 ] || [ "${PG_ASSERT:-0}" = 1 ]; }; then
    BUILT=1
    PGMAJOR=$PG_MAJOR
    PKG=postgresql-$PGMAJOR
    PG_CONFIG=$(bash "$(dirname "${BASH_SOURCE[0]}")/../pgbuild.sh" "$PGMAJOR" | tail -1)
    [ -x "$PG_CONFIG" ] || { echo "regress_suite: ERROR: could not build PostgreSQL $PGMAJOR" >&2; exit 2; }
    PGBIN=$("$PG_CONFIG" --bindir)
    PG_REGRESS=$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress
    BUILT_PREFIX=$(dirname "$PGBIN")
fi

T0=$(date +%s)
log() { printf '[regress_suite %4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf 'regress_suite: ERROR: %s\n' "$*" >&2; exit 2; }

# ------------------------------------------------- 5./6. compare, report
# compare RESDIR: reads RESDIR/meta.env, RESDIR/{baseline,with_safe_migrate}/
compare() {
    local dir=$1 r
    for r in baseline with_safe_migrate; do
        [ -f "$dir/$r/pg_regress.out" ] || { echo "compare: $dir/$r has no pg_regress.out (interrupted run?)" >&2; return 2; }
    done
    # shellcheck disable=SC1091
    . "$dir/meta.env"
    /usr/bin/python3 - "$dir" "$SCHEDULE" "$REGRESS_SRC" "$SERVER_VERSION" "$SOURCE_VERSION" <<'PY'
import difflib, os, re, sys

res, schedule, srcdir, server_version, source_version = sys.argv[1:6]
runs = ("baseline", "with_safe_migrate")

# Tests in schedule order.
tests, ignored = [], set()
for line in open(schedule):
    m = re.match(r'^(test|ignore):\s*(.*)', line)
    if not m:
        continue
    names = m.group(2).split()
    if m.group(1) == "ignore":
        ignored.update(names)
    else:
        tests.extend(n for n in names if n not in tests)

# Per-test status from pg_regress's output.
status_re = re.compile(r'^\s*(?:test\s+)?(\S+)\s+\.\.\. (ok|FAILED|failed \(ignored\))')
# pg_regress 16 and later: "ok 12   + name   34 ms", "not ok 13   - name ... # (ignored)"
status_tap = re.compile(r'^(ok|not ok)\s+\d+\s+[-+]\s+(\S+)(.*)')
status = {r: {} for r in runs}
for r in runs:
    for line in open(os.path.join(res, r, "pg_regress.out"), errors="replace"):
        m = status_re.match(line)
        if m:
            status[r][m.group(1)] = {"ok": "ok", "FAILED": "FAILED"}.get(m.group(2), "failed-ign")
            continue
        m = status_tap.match(line)
        if m:
            status[r][m.group(2)] = ("ok" if m.group(1) == "ok"
                                     else "failed-ign" if "(ignored)" in m.group(3) else "FAILED")

def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None

# A message's attached lines: the fields psql prints after it, and (only after
# a CONTEXT field) the further lines of a context traceback.
field_re = re.compile(r'^(DETAIL|HINT|CONTEXT|QUERY|LOCATION):  ')
context_re = re.compile(r'^(PL/pgSQL function .* (line \d+ |during )|SQL function "|'
                        r'SQL statement "|extension script file "|parallel worker$|'
                        r'COPY \S+, line \d+|automatic analyze of )')

def strip_new_warnings(lines, reference):
    """Drop every WARNING line of `lines` (and its attached lines) that the
    reference output does not have as often; return (kept lines, dropped
    warning lines)."""
    budget = {}
    for l in reference:
        if l.startswith("WARNING:"):
            budget[l] = budget.get(l, 0) + 1
    kept, dropped, i = [], [], 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("WARNING:"):
            if budget.get(l, 0) > 0:
                budget[l] -= 1
            else:
                dropped.append(l)
                i += 1
                in_context = False
                while i < len(lines):
                    m = field_re.match(lines[i])
                    if m:
                        in_context = m.group(1) == "CONTEXT"
                    elif not (in_context and context_re.match(lines[i])):
                        break
                    i += 1
                continue
        kept.append(l)
        i += 1
    return kept, dropped

def expected_variants(t):
    d = os.path.join(srcdir, "expected")
    out = []
    for name in [t + ".out"] + ["%s_%d.out" % (t, k) for k in range(10)]:
        v = read(os.path.join(d, name))
        if v is not None:
            out.append(v)
    return out

allowed = set(os.environ.get("ALLOW_DIFF", "").split())
rows, extra, warn_total, by_rule = [], [], 0, {}
def tally(dropped):
    for w in dropped:
        m = re.match(r'WARNING:  rule "([^"]+)"', w)
        k = m.group(1) if m else ("other safe_migrate" if "safe_migrate" in w else "other (not naming a rule)")
        by_rule[k] = by_rule.get(k, 0) + 1
report_diffs = []
for t in tests:
    a = read(os.path.join(res, "baseline", "results", t + ".out"))
    b = read(os.path.join(res, "with_safe_migrate", "results", t + ".out"))
    nwarn, verdict = 0, "same"
    if a is None or b is None:
        verdict = "MISSING-OUTPUT"
    elif a != b:
        kept, dropped = strip_new_warnings(b, a)
        nwarn = len(dropped)
        tally(dropped)
        if kept == a:
            verdict = "warnings-only"
        elif any(strip_new_warnings(b, e)[0] == e for e in expected_variants(t)):
            # (b) matches PostgreSQL's expected output once the new warnings
            # are gone: the baseline's output was the odd one (flaky test).
            verdict = "baseline-flake"
            nwarn = len(strip_new_warnings(b, next(e for e in expected_variants(t)
                                                   if strip_new_warnings(b, e)[0] == e))[1])
        else:
            verdict = "DIFFERS (allowed)" if t in allowed else "DIFFERS"
            report_diffs.append((t + (" (allowed by ALLOW_DIFF)" if t in allowed else ""), list(difflib.unified_diff(
                a, kept, "baseline/results/%s.out" % t,
                "with_safe_migrate/results/%s.out (new WARNINGs stripped)" % t, lineterm="", n=3))))
    if verdict in ("DIFFERS", "MISSING-OUTPUT"):
        extra.append(t)
    warn_total += nwarn
    rows.append((t, status["baseline"].get(t, "-"), status["with_safe_migrate"].get(t, "-"), nwarn, verdict))

# Crashes: the server logs of both runs, and pg_regress's own output.
crash_re = re.compile(r'terminated by signal|server process .* was terminated|PANIC:  |^TRAP: |TRAP: failed Assert')
crashes = {}
for r in runs:
    hits = []
    for fname in ("server.log", "pg_regress.out"):
        p = os.path.join(res, r, fname)
        if os.path.exists(p):
            for n, line in enumerate(open(p, errors="replace"), 1):
                if crash_re.search(line):
                    hits.append("%s/%s:%d: %s" % (r, fname, n, line.rstrip()))
    crashes[r] = hits

failed = {r: sorted(t for t in tests if status[r].get(t) == "FAILED") for r in runs}

out = []
p = out.append
p("")
p("safe_migrate regress_suite  server %s, regression tests from source %s" % (server_version, source_version))
p("results: %s" % res)
for r in runs:
    p("  %-18s %4s s, pg_regress exit %s" % (r, open(os.path.join(res, r, "seconds")).read().strip(),
                                              open(os.path.join(res, r, "exit_code")).read().strip()))
p("")
hdr = "%-28s %-10s %-18s %8s  %s" % ("test", "baseline", "with_safe_migrate", "warnings", "a-vs-b")
full = [hdr, "-" * len(hdr)] + ["%-28s %-10s %-18s %8d  %s" % row for row in rows]
with open(os.path.join(res, "report.txt"), "w") as f:
    f.write("\n".join(full) + "\n")
notable = [row for row in rows if not (row[1] == row[2] == "ok" and row[3] == 0 and row[4] == "same")]
p("Per-test table (%d tests; full table in report.txt); rows other than ok/ok/0 warnings/same:" % len(rows))
p(hdr)
p("-" * len(hdr))
for row in notable:
    p("%-28s %-10s %-18s %8d  %s" % row)
if not notable:
    p("(none)")
p("")
for r in runs:
    p("%s FAILED tests (%d): %s" % (r, len(failed[r]), " ".join(failed[r]) or "-"))
p("safe_migrate WARNINGs added: %d in %d tests" % (warn_total, sum(1 for row in rows if row[3])))
if by_rule:
    p("  by rule: " + ", ".join("%s %d" % kv for kv in sorted(by_rule.items(), key=lambda kv: -kv[1])))
for t, d in report_diffs:
    p("")
    p("==== %s: output differs beyond WARNINGs ====" % t)
    out.extend(d[:400])
    if len(d) > 400:
        p("... (%d more diff lines)" % (len(d) - 400))
for r in runs:
    if crashes[r]:
        p("")
        p("==== CRASH SIGNS in %s ====" % r)
        out.extend(crashes[r][:50])
ncrash = len(crashes["baseline"]) + len(crashes["with_safe_migrate"])
p("")
p("crash signs: baseline %d, with safe_migrate %d" % (len(crashes["baseline"]), len(crashes["with_safe_migrate"])))
p("REGRESS-SUITE: baseline failed=%d, with safe_migrate failed=%d, extra differences=%d, crashes=%d"
  % (len(failed["baseline"]), len(failed["with_safe_migrate"]), len(extra), ncrash))
text = "\n".join(out) + "\n"
with open(os.path.join(res, "summary.txt"), "w") as f:
    f.write(text)
sys.stdout.write(text)
# REGRESS_SUITE_FAIL_ON=crash (CI): differences are reported, only crash
# signs fail the run
crash_only = os.environ.get("REGRESS_SUITE_FAIL_ON", "") == "crash"
sys.exit(1 if (ncrash or (extra and not crash_only)) else 0)
PY
}

if [ "${1:-}" = --compare-only ]; then
    [ -f "${2:-}/meta.env" ] || die "usage: $0 --compare-only RESULTS_DIR (a directory with meta.env)"
    compare "$2"
    exit $?
fi

[ "$(id -u)" = 0 ] || die "run as root (it installs packages, and runs the cluster as the postgres OS user)"

# ---------------------------------------------------------------- 0. tools
need_pkgs=()
command -v dpkg-source >/dev/null || need_pkgs+=(dpkg-dev)
command -v gcc >/dev/null || need_pkgs+=(gcc)
command -v make >/dev/null || need_pkgs+=(make)
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
if [ "$BUILT" = 0 ]; then
    [ -x "$PG_REGRESS" ] && [ -x "$PG_CONFIG" ] || need_pkgs+=("postgresql-server-dev-$PGMAJOR")
    [ -x "$PGBIN/postgres" ] || need_pkgs+=("$PKG")
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || die "no postgres OS user"
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
if [ ! -f "$PKGLIBDIR/$EXTENSION.so" ] || [ ! -f "$SHAREDIR/extension/$EXTENSION.control" ]; then
    die "$EXTENSION is not installed (cd /work/main && make && make install)"
fi
if [ "$BUILT" = 1 ]; then
    SERVER_VERSION=$(sed -n "s/^source=${PKG}_//p" "$BUILT_PREFIX/.safe_migrate-pgbuild")
else
    SERVER_VERSION=$(dpkg-query -W -f='${Version}' "$PKG")
fi
log "installed server: $PKG $SERVER_VERSION ($("$PGBIN/postgres" --version))"

# ------------------------------------------------- 1. PostgreSQL's source
# The unpacked source is cached: $PGSRC_CACHE/source-for-<installed version>
# holds the name of the unpacked tree used for that installed version.
mkdir -p "$PGSRC_CACHE"
pointer="$PGSRC_CACHE/source-for-$SERVER_VERSION"
SRCTREE=""
if [ "$BUILT" = 1 ]; then
    SRCTREE="$(dirname "$BUILT_PREFIX")/src/$PKG/tree"
    [ -f "$SRCTREE/src/test/regress/parallel_schedule" ] || die "no source tree at $SRCTREE (rebuild: rm -rf $BUILT_PREFIX)"
    log "using the build's source $SRCTREE"
elif [ -f "$pointer" ] && [ -f "$PGSRC_CACHE/$(cat "$pointer")/src/test/regress/parallel_schedule" ]; then
    SRCTREE="$PGSRC_CACHE/$(cat "$pointer")"
    log "using cached source $SRCTREE"
else
    if ! apt-cache showsrc "$PKG" 2>/dev/null | grep '^Version:' >/dev/null; then
        # Enable deb-src for the Debian entries the machine already uses.
        srcfile=/etc/apt/sources.list.d/safe_migrate-deb-src.sources
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            log "enabling deb-src in $srcfile (from debian.sources)"
            sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$srcfile"
        elif [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
            log "enabling deb-src in /etc/apt/sources.list.d/safe_migrate-deb-src.list"
            grep '^deb ' /etc/apt/sources.list | grep -v '^deb-src' | sed 's/^deb /deb-src /' \
                > /etc/apt/sources.list.d/safe_migrate-deb-src.list
        else
            log "enabling deb-src in $srcfile (bookworm defaults)"
            cat > "$srcfile" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        fi
        apt-get update -qq
    fi
    # Prefer the installed version; else the closest older one; else newer ones.
    mapfile -t versions < <(apt-cache showsrc "$PKG" | awk '/^Version:/ {print $2}' | sort -u)
    [ ${#versions[@]} -gt 0 ] || die "apt-cache showsrc $PKG finds no source package"
    older=() newer=()
    for v in "${versions[@]}"; do
        [ "$v" = "$SERVER_VERSION" ] && continue
        if dpkg --compare-versions "$v" lt "$SERVER_VERSION"; then older+=("$v"); else newer+=("$v"); fi
    done
    candidates=("$SERVER_VERSION")
    [ ${#older[@]} -gt 0 ] && mapfile -t -O 1 candidates < <(printf '%s\n' "${older[@]}" | sort -r -V)
    [ ${#newer[@]} -gt 0 ] && mapfile -t -O ${#candidates[@]} candidates < <(printf '%s\n' "${newer[@]}" | sort -V)
    dl="$PGSRC_CACHE/download"
    got=""
    for v in "${candidates[@]}"; do
        rm -rf "$dl"; mkdir -p "$dl"; chown _apt "$dl" 2>/dev/null || true
        log "apt-get source --download-only $PKG=$v"
        if (cd "$dl" && apt-get source -qq --download-only "$PKG=$v" >"$dl/apt.log" 2>&1); then
            got=$v; break
        fi
        log "  not available: $(grep -m1 '^E:' "$dl/apt.log" || tail -1 "$dl/apt.log")"
    done
    [ -n "$got" ] || die "could not download any source version of $PKG"
    [ "$got" = "$SERVER_VERSION" ] ||
        log "NOTE: source $got differs from the installed server $SERVER_VERSION (the exact source is not served); baseline may show version-related failures"
    tree="$PKG-$got"
    rm -rf "${PGSRC_CACHE:?}/$tree"
    log "unpacking into $PGSRC_CACHE/$tree"
    (cd "$dl" && dpkg-source -q -x ./*.dsc "$PGSRC_CACHE/$tree" >"$dl/unpack.log" 2>&1) ||
        { cat "$dl/unpack.log"; die "dpkg-source -x failed"; }
    rm -rf "$dl"
    echo "$tree" > "$pointer"
    SRCTREE="$PGSRC_CACHE/$tree"
fi
SOURCE_VERSION=${SRCTREE##*/"$PKG"-}
[ "$BUILT" = 1 ] && SOURCE_VERSION=$SERVER_VERSION
REGRESS_SRC="$SRCTREE/src/test/regress"
SCHEDULE=${SCHEDULE:-$REGRESS_SRC/parallel_schedule}
[ -f "$SCHEDULE" ] || die "no schedule $SCHEDULE"

# The tests' expected output is written for the psql of the same release
# (psql's behaviour is part of it, e.g. 15.20's psql skips the inline data
# of a COPY FROM STDIN that failed, where 15.18's expected files don't).
# When the source is not the installed version, the tests run with the psql
# of the source's version (unpacked from its postgresql-client-15 package)
# against the installed server.
CLIENT_BINDIR=$PGBIN
if [ "$SOURCE_VERSION" != "$SERVER_VERSION" ] && [ "${MATCH_PSQL:-1}" = 1 ]; then
    cdir="$PGSRC_CACHE/client-$SOURCE_VERSION"
    if [ ! -x "$cdir/usr/lib/postgresql/$PGMAJOR/bin/psql" ]; then
        log "unpacking psql of postgresql-client-$PGMAJOR=$SOURCE_VERSION into $cdir"
        rm -rf "$cdir" "$cdir.dl"; mkdir -p "$cdir.dl"; chown _apt "$cdir.dl" 2>/dev/null || true
        if (cd "$cdir.dl" && apt-get download -qq "postgresql-client-$PGMAJOR=$SOURCE_VERSION" >apt.log 2>&1); then
            dpkg-deb -x "$cdir.dl"/*.deb "$cdir"
        else
            log "  not available: $(grep -m1 '^E:' "$cdir.dl/apt.log" || true)"
        fi
        rm -rf "$cdir.dl"
    fi
    if [ -x "$cdir/usr/lib/postgresql/$PGMAJOR/bin/psql" ]; then
        CLIENT_BINDIR="$cdir/usr/lib/postgresql/$PGMAJOR/bin"
    else
        log "NOTE: using the installed psql $SERVER_VERSION with tests of $SOURCE_VERSION"
    fi
fi
log "tests: $REGRESS_SRC ($(grep -c '^test:' "$SCHEDULE") groups), psql: $("$CLIENT_BINDIR/psql" --version)"

# --------------------------------------- 2. regress.so (+ autoinc, refint)
# --dlpath directory: regress.so built with PGXS against the installed server
# headers; autoinc.so and refint.so (contrib/spi) ship with postgresql-15.
DLPATH="$PGSRC_CACHE/dlpath-$SERVER_VERSION-src-$SOURCE_VERSION"
if [ ! -f "$DLPATH/regress.so" ] || [ "$REGRESS_SRC/regress.c" -nt "$DLPATH/regress.so" ]; then
    log "building regress.so in $DLPATH"
    rm -rf "$DLPATH"; mkdir -p "$DLPATH"
    cp "$REGRESS_SRC/regress.c" "$DLPATH/"
    cat > "$DLPATH/Makefile" <<EOF
MODULES = regress
PG_CONFIG = $PG_CONFIG
PGXS := \$(shell \$(PG_CONFIG) --pgxs)
include \$(PGXS)
EOF
    make -s -C "$DLPATH" with_llvm=no >"$DLPATH/build.log" 2>&1 || { cat "$DLPATH/build.log"; die "regress.so build failed"; }
fi
for m in autoinc refint; do
    [ -f "$PKGLIBDIR/$m.so" ] || die "$PKGLIBDIR/$m.so missing (package $PKG)"
    ln -sf "$PKGLIBDIR/$m.so" "$DLPATH/$m.so"
done
chmod -R a+rX "$PGSRC_CACHE"

# ------------------------------------------------------- 3. private cluster
STAMP=$(date +%Y%m%d-%H%M%S)
RES="$RESULTS_ROOT/$STAMP"
mkdir -p "$RES"
cat > "$RES/meta.env" <<EOF
SCHEDULE='$SCHEDULE'
REGRESS_SRC='$REGRESS_SRC'
SERVER_VERSION='$SERVER_VERSION'
SOURCE_VERSION='$SOURCE_VERSION'
EOF
WORK=$(mktemp -d /tmp/safe_migrate_regress.XXXXXX)
chmod 755 "$WORK"
chown postgres "$WORK"
PGDATA="$WORK/data"
SOCKDIR="$WORK"

as_pg() { runuser -u postgres -- "$@"; }
# shellcheck disable=SC2317  # (called from the EXIT trap)
server_running() { [ -f "$PGDATA/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    if server_running; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
REGRESS_PID=""
trap '[ -n "$REGRESS_PID" ] && kill "$REGRESS_PID" 2>/dev/null; exit 130' INT TERM

log "initdb $PGDATA (UTF8, locale $PG_LOCALE)"
as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale="$PG_LOCALE" >"$RES/initdb.log" 2>&1 ||
    { cat "$RES/initdb.log"; die "initdb failed"; }
cat >> "$PGDATA/postgresql.conf" <<CONF

# ---- safe_migrate regress_suite
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCKDIR'
shared_preload_libraries = '$EXTENSION'
max_worker_processes = 32
# Unknown until the extension defines it: PostgreSQL then warns in the log
# and ignores it.
safe_migrate.policy = '$POLICY'
# What pg_regress's own temp instance adds (pg_regress.c, --temp-instance).
log_autovacuum_min_duration = 0
log_checkpoints = on
log_line_prefix = '%m %b[%p] %q%a '
log_lock_waits = on
log_temp_files = 128kB
max_prepared_transactions = 2
# A throw-away cluster.
fsync = off
CONF

start_server() { # LOGFILE
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$1" -w -t 120 start >/dev/null ||
        { tail -20 "$1"; die "server did not start"; }
}
stop_server() {
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 120 stop >/dev/null ||
        log "WARNING: the server was not running (or did not stop) at the end of the run"
}
psql_pg() { # DB SQL
    as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -d "$1" -c "$2"
}

# ------------------------------------------------------------- 4. the runs
# The invocation of `make installcheck-parallel` in src/test/regress
# (GNUmakefile + Makefile.global's pg_regress_installcheck), against our
# private server.  pg_regress creates "regression" FROM template0 (so an
# extension in template1 would not reach it); --load-extension is its own way
# to CREATE EXTENSION in the fresh database before the tests.
run_suite() { # NAME [extra pg_regress options]
    local name=$1; shift
    local out="$RES/$name"
    mkdir -p "$out"; chown postgres "$out"
    start_server "$out/server.log"
    log "run $name: pg_regress $* (log: $out/pg_regress.out)"
    local t rc=0
    t=$(date +%s)
    # In the background, so that INT/TERM are handled at once (see trap).
    (cd "$out" && exec runuser -u postgres -- env PGAPPNAME=pg_regress "$PG_REGRESS" \
        --inputdir="$REGRESS_SRC" \
        --outputdir="$out" \
        --bindir="$CLIENT_BINDIR" \
        --dlpath="$DLPATH" \
        --max-concurrent-tests="$MAX_CONCURRENT_TESTS" \
        --schedule="$SCHEDULE" \
        --host="$SOCKDIR" --port="$PORT" \
        "$@") >"$out/pg_regress.out" 2>&1 &
    REGRESS_PID=$!
    wait "$REGRESS_PID" || rc=$?
    REGRESS_PID=""
    echo $(( $(date +%s) - t )) > "$out/seconds"
    echo $rc > "$out/exit_code"
    grep -E '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)' "$out/pg_regress.out" | sed "s/^ */[$name] /" || true
    if [ "$rc" -gt 1 ]; then
        tail -20 "$out/pg_regress.out"
        log "pg_regress exited $rc (not a test failure: the run broke)"
    fi
    if [ "$name" = with_safe_migrate ]; then
        {
            echo "extension: $(psql_pg regression "SELECT extname || ' ' || extversion FROM pg_extension WHERE extname = '$LOAD_EXTENSION'" 2>&1 || true)"
            echo "event triggers of the extension: $(psql_pg regression "SELECT count(*) FROM pg_event_trigger e JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid AND d.deptype = 'e' JOIN pg_extension x ON x.oid = d.refobjid WHERE x.extname = '$LOAD_EXTENSION'" 2>&1 || true)"
            echo "safe_migrate.policy: $(psql_pg regression "SELECT coalesce(current_setting('safe_migrate.policy', true), '(not defined)')" 2>&1 || true)"
        } > "$out/extension_state.txt"
        sed 's/^/[with_safe_migrate] /' "$out/extension_state.txt"
    fi
    stop_server
    return 0
}

run_suite baseline
run_suite with_safe_migrate --load-extension="$LOAD_EXTENSION"

log "comparing"
rc=0
compare "$RES" || rc=$?
ln -sfn "$STAMP" "$RESULTS_ROOT/latest"
log "done in $(( $(date +%s) - T0 )) s; results kept in $RES"
exit $rc
