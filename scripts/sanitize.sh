#!/usr/bin/env bash
# The whole safe_migrate test suite under AddressSanitizer and
# UndefinedBehaviorSanitizer, as root on a Debian machine.
#
#   bash scripts/sanitize.sh                (the whole suite)
#   bash scripts/sanitize.sh --setup-only   (only the sanitized installation)
#
# 1. Makes a private, relocated copy of the system PostgreSQL 15 (the three
#    trees /usr/lib/postgresql/15, /usr/share/postgresql/15 and
#    /usr/include/postgresql; pg_config and postgres find everything relative
#    to their own location), so the system installation is never touched.
# 2. In that copy, bin/postgres becomes a small wrapper that starts the real
#    (uninstrumented) server with the ASan runtime preloaded and the sanitizer
#    options set.  Every server of the suite -- the pg_regress cluster of
#    scripts/cluster.sh, the TAP tests' PostgreSQL::Test::Cluster nodes,
#    initdb's bootstrap backend -- is started through it, and nothing else
#    (perl, psql, node, python) runs with the preload.
# 3. Runs scripts/test.sh with SANITIZE=1 against that copy: the extension
#    and the GoogleTest core are built with -fsanitize=address,undefined.
# 4. Scans the sanitizer reports and every server log, copies the reports to
#    test/logs/sanitizer/, and ends with one line:
#      SANITIZE: findings=N (...)  tests: RESULT ...
#    Exit status is non-zero on any finding or any failed test.
#
# Environment: SAFE_MIGRATE_TAP_EXCLUDE (default "long alone", see below),
# SAFE_MIGRATE_TEST_PORT (default 54339), SAFE_MIGRATE_TAP (as
# for test.sh), SAFE_MIGRATE_SANITIZE_DIR (default build/sanitize).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SAFE_MIGRATE_SANITIZE_DIR:-$ROOT/build/sanitize}
SYS_PG=/usr/lib/postgresql/15
started=$(date +%s)

# PostgreSQL and the compiler must exist before they can be copied and used;
# scripts/setup.sh (run by test.sh) installs the rest.
need=()
for p in postgresql-15 postgresql-server-dev-15 g++ make; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null ||
        { echo "SANITIZE: findings=? (could not install ${need[*]})"; exit 1; }
fi
LIBASAN=$(gcc -print-file-name=libasan.so)
LIBASAN=$(readlink -f "$LIBASAN")
if [ ! -f "$LIBASAN" ]; then
    echo "SANITIZE: findings=? (no ASan runtime: install libasan8)"; exit 1
fi

# 1. the private installation
PG=$BUILD/pg
mkdir -p "$BUILD"
echo "== private PostgreSQL in $PG (ASan runtime $LIBASAN)"
rm -rf "$PG"
mkdir -p "$PG/usr/lib/postgresql" "$PG/usr/share/postgresql" "$PG/usr/include"
cp -a "$SYS_PG" "$PG/usr/lib/postgresql/15"
cp -a /usr/share/postgresql/15 "$PG/usr/share/postgresql/15"
cp -a /usr/include/postgresql "$PG/usr/include/postgresql"
# The system copy may hold a plain safe_migrate build; never let a server
# here load it by mistake (the install step below puts the sanitized one).
rm -f "$PG/usr/lib/postgresql/15/lib/safe_migrate.so"

# 2. the server wrapper.  Options:
#  - log_path: each report goes to a file <dir>/asan.<pid> / ubsan.<pid>;
#    server stderr is the server log, which tests may rotate or ignore.
#  - detect_leaks=0: memory contexts are freed wholesale at exit (or never,
#    in the postmaster); LeakSanitizer would report all of them.
#  - abort_on_error=1: a process with an ASan error dies by SIGABRT, so the
#    postmaster treats it as a crash (a plain exit(1) of a background worker
#    would pass as a normal worker failure).  SIGSEGV is caught by ASan
#    (handle_segv, PostgreSQL installs no SIGSEGV handler) and reported with
#    a stack before the same abort.
#  - detect_stack_use_after_return=0: PostgreSQL's error handling longjmps
#    across frames of uninstrumented code; ASan's fake stacks do not mix
#    well with that.  longjmp/siglongjmp themselves are intercepted.
#  - the fast (frame-pointer) unwinder for allocation and free stacks:
#    PostgreSQL is built without frame pointers, so those stacks are cut
#    short in its frames, but the slow unwinder on every malloc made the
#    whole suite about 1.4 times slower (CI has 90 minutes for all its
#    stages).  The stack of the bad access itself is still unwound in full
#    (fast_unwind_on_fatal=0, the default); set
#    SAFE_MIGRATE_ASAN_OPTIONS=fast_unwind_on_malloc=0 to chase a report.
#  - UBSan: recoverable (see Makefile), every report logged with a stack.
#
# A second preload works around a deadlock at startup: libgpg-error and
# gnutls (linked into postgres through libldap/libpq) call bindtextdomain()
# from their constructors, which run before ASan's own.  ASan then
# initialises inside that call's first malloc(), while glibc holds its
# gettext lock for writing; its initialisation calls dlerror(), which takes
# the same lock for reading and corrupts it, and the server hangs for ever
# in its own bindtextdomain() in main().  The shim makes sure ASan is
# initialised (one malloc) before glibc takes that lock.
# It also gives UBSan its options: the UBSan runtime initialises at its
# first report, in a backend whose original environment block PostgreSQL
# has already overwritten with the process title (ps_status.c), and the
# sanitizers read their options from /proc/self/environ, i.e. that block;
# UBSAN_OPTIONS would be lost and reports would come without a stack.
# __ubsan_default_options() is the runtime's documented hook.  (UBSan still
# writes its reports to stderr, i.e. the server log, whatever log_path says
# -- it never opens the file in a backend -- so the scan below reads the
# server logs for them.)
cat > "$BUILD/asan_early_init.c" <<'SHIM'
/* scripts/sanitize.sh: initialise the preloaded ASan runtime before glibc's
 * gettext lock is held (see there). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

typedef char *(*textdomain_fn)(const char *, const char *);

const char *__ubsan_default_options(void)
{
    return UBSAN_DEFAULTS;
}

static void asan_ready(void)
{
    void *volatile p = malloc(1); /* volatile: the pair must not be elided */
    free(p);
}

char *bindtextdomain(const char *domain, const char *dir)
{
    static textdomain_fn real;
    asan_ready();
    if (!real)
        real = (textdomain_fn) dlsym(RTLD_NEXT, "bindtextdomain");
    return real(domain, dir);
}

char *bind_textdomain_codeset(const char *domain, const char *codeset)
{
    static textdomain_fn real;
    asan_ready();
    if (!real)
        real = (textdomain_fn) dlsym(RTLD_NEXT, "bind_textdomain_codeset");
    return real(domain, codeset);
}
SHIM
SHIM_SO=$BUILD/asan_early_init.so
SANLOG=$BUILD/reports
UBSAN_DEFAULTS="print_stacktrace=1:halt_on_error=0"
gcc -shared -fPIC -O2 -DUBSAN_DEFAULTS="\"$UBSAN_DEFAULTS\"" -o "$SHIM_SO" "$BUILD/asan_early_init.c" -ldl ||
    { echo "SANITIZE: findings=? (could not build $SHIM_SO)"; exit 1; }
rm -rf "$SANLOG"; mkdir -p "$SANLOG"; chmod 1777 "$SANLOG"
BIN=$PG/usr/lib/postgresql/15/bin
mv "$BIN/postgres" "$BIN/postgres.bin"
cat > "$BIN/postgres" <<WRAP
#!/bin/bash
# Written by scripts/sanitize.sh: the server with the ASan runtime preloaded.
# argv[0] stays this wrapper's path: the postmaster records it in
# postmaster.opts, and "pg_ctl restart" starts that again (the real binary
# would start without the preload).
LD_PRELOAD="$LIBASAN:$SHIM_SO\${LD_PRELOAD:+:\$LD_PRELOAD}"
ASAN_OPTIONS="log_path=$SANLOG/asan:detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0:malloc_context_size=30:print_suppressions=0\${SAFE_MIGRATE_ASAN_OPTIONS:+:\$SAFE_MIGRATE_ASAN_OPTIONS}"
UBSAN_OPTIONS="$UBSAN_DEFAULTS"
export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
exec -a "$BIN/postgres" "$BIN/postgres.bin" "\$@"
WRAP
chmod 755 "$BIN/postgres"
# Every build and install from here on goes into the private copy only.
export PG_CONFIG=$BIN/pg_config
# The wrapped server must start at all (a hang here is what the shim is for).
if ! timeout 60 "$BIN/postgres" -V >/dev/null; then
    echo "SANITIZE: findings=? (the wrapped server does not start: $BIN/postgres -V)"; exit 1
fi

if [ "${1:-}" = --setup-only ]; then
    # For a manual session: build and install the sanitized module here, then
    #   PG_CONFIG=$BIN/pg_config; source scripts/cluster.sh; cluster_start ...
    SANITIZE=1 bash "$ROOT/scripts/setup.sh" || exit 1
    echo "PG_CONFIG=$BIN/pg_config (reports in $SANLOG)"
    exit 0
fi

# 3. the suite.  SANITIZE=1 reaches every make (setup.sh's build and
# install, the installcheck runs) and test.sh's cmake.  ASAN_OPTIONS here
# only matter to the instrumented GoogleTest binary (the server wrapper sets
# its own); leak checking is fine there.
export SANITIZE=1
export SAFE_MIGRATE_KEEP_SERVER_LOGS=1
# The TAP tests that run for minutes ('# tap: long': the same paths again
# and again, a crash at each of twenty statements, a thousand-migration
# fingerprint) and the latency test ('# tap: alone', meaningless under a
# sanitizer) are left out here unless SAFE_MIGRATE_TAP_EXCLUDE says
# otherwise (set it empty for all): under the sanitizer they took most of
# the run, and CI has 90 minutes for every pass.  Their code paths are
# reached by the shorter tests too; .ci/run runs them on 15.
export SAFE_MIGRATE_TAP_EXCLUDE=${SAFE_MIGRATE_TAP_EXCLUDE-long alone}
export SAFE_MIGRATE_TEST_PORT=${SAFE_MIGRATE_TEST_PORT:-54339}
export ASAN_OPTIONS="log_path=$SANLOG/asan:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$SANLOG/ubsan:print_stacktrace=1"
bash "$ROOT/scripts/test.sh" 2>&1 | tee "$BUILD/test.out"
test_rc=${PIPESTATUS[0]}
unset ASAN_OPTIONS UBSAN_OPTIONS
LOGS=$ROOT/test/logs
result=$(grep '^RESULT:' "$BUILD/test.out" | tail -1)

# 4. the scan
OUT=$LOGS/sanitizer
rm -rf "$OUT"; mkdir -p "$OUT"
cp "$SANLOG"/* "$OUT"/ 2>/dev/null
echo "== sanitizer reports ($OUT)"
asan_files=$(ls "$OUT"/asan.* 2>/dev/null | wc -l)
ubsan_files=$(ls "$OUT"/ubsan.* 2>/dev/null | wc -l)
# One finding per distinct defect: ASan's SUMMARY line names the kind and
# the top frame; UBSan's "file:line:col: runtime error: ..." names the site.
asan_sites=$(cat "$OUT"/asan.* 2>/dev/null | grep -h '^SUMMARY: AddressSanitizer' | sort -u)
# UBSan in a server writes to the server log (see the shim above).
ubsan_sites=$(cat "$OUT"/ubsan.* "$OUT"/asan.* "$LOGS"/regress_server.log \
                  "$LOGS"/tap_server_logs/*.log 2>/dev/null | grep -h 'runtime error:' |
              sed -E 's/^==[0-9]+==//' | sort -u)
# Reports an instrumented process wrote to its stderr instead (the
# GoogleTest binary under ctest, a server before its log_path applies).
stray=$(grep -lE 'ERROR: AddressSanitizer|runtime error:' "$LOGS"/ctest.log "$LOGS"/installcheck.log \
        "$LOGS"/examples.log "$LOGS"/tap.log 2>/dev/null)
# Server processes that died by a signal.  SIGKILL is what the crash tests
# send on purpose; anything else (SIGSEGV, SIGABRT from ASan, SIGBUS, ...)
# is a finding.
crashes=$(grep -rhE 'terminated by signal [0-9]+' "$LOGS"/regress_server.log "$LOGS"/tap_server_logs \
          2>/dev/null | grep -vE 'terminated by signal 9:' )
killed=$(grep -rhcE 'terminated by signal 9:' "$LOGS"/regress_server.log "$LOGS"/tap_server_logs \
         2>/dev/null | awk '{s+=$1} END {print s+0}')
n_asan=$(printf '%s' "$asan_sites" | grep -c .)
n_ubsan=$(printf '%s' "$ubsan_sites" | grep -c .)
n_stray=$(printf '%s' "$stray" | grep -c .)
n_crash=$(printf '%s' "$crashes" | grep -c .)
[ -n "$asan_sites" ] && { echo "-- AddressSanitizer ($asan_files report files):"; echo "$asan_sites"; }
[ -n "$ubsan_sites" ] && { echo "-- UndefinedBehaviorSanitizer ($ubsan_files report files):"; echo "$ubsan_sites"; }
[ -n "$stray" ] && { echo "-- sanitizer output in test logs:"; echo "$stray"; }
[ -n "$crashes" ] && { echo "-- server processes terminated by a signal:"; echo "$crashes"; }
echo "   (processes killed by SIGKILL on purpose by the crash tests: $killed)"
# An ASan abort shows up both as a report and as a signal-6 line: count the
# crash lines only when they are not explained by an ASan report.
asan_aborts=$(printf '%s\n' "$crashes" | grep -c 'terminated by signal 6:')
if [ "$n_asan" -gt 0 ] && [ "$asan_aborts" -le "$asan_files" ]; then
    n_crash=$((n_crash - asan_aborts))
fi
findings=$((n_asan + n_ubsan + n_stray + n_crash))
# The module the servers loaded must be the instrumented one, and the
# server suites must have run (test.sh counts 0/0 when a cluster fails).
# (ldd's output is read whole first: under pipefail, `ldd | grep -q` fails
# whenever grep's early exit kills ldd with SIGPIPE before it has written
# its last line -- which made a CI run report a sanitized module as plain.)
module_deps=$(ldd "$($PG_CONFIG --pkglibdir)/safe_migrate.so" 2>&1)
if ! printf '%s\n' "$module_deps" | grep libasan >/dev/null; then
    echo "   the installed safe_migrate.so is not instrumented"; test_rc=1
fi
if printf '%s' "$result" | grep -E 'regress\+isolation 0/0|tap 0/0' >/dev/null; then
    echo "   no pg_regress or TAP test ran"; test_rc=1
fi
echo "   elapsed $(( $(date +%s) - started ))s"
echo "SANITIZE: findings=$findings (asan=$n_asan ubsan=$n_ubsan stray=$n_stray crashes=$n_crash)" \
     "tests: ${result:-RESULT: none (test.sh exit $test_rc)}"
[ "$findings" -eq 0 ] && [ "$test_rc" -eq 0 ]
