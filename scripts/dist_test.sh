#!/usr/bin/env bash
# The PGXN distribution: META.json validates against the PGXN Meta Spec
# 1.0.0 (scripts/pgxn_meta_check.pl) and agrees with the control file;
# `make dist` produces safe_migrate-VERSION.zip of the committed tree with
# everything under safe_migrate-VERSION/; the archive's own META.json
# validates, and the unpacked archive builds and installs with PGXS (into a
# scratch DESTDIR: nothing on the machine changes).  The checker itself
# must refuse a broken META.json.  Ends with "dist_test: N passed, M failed".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
WORK=$(mktemp -d /tmp/safe_migrate_dist.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LOG=$ROOT/test/logs/dist.log
mkdir -p "$(dirname "$LOG")"; : >"$LOG"

passed=0; failed=0
check() {  # name, then the command
    local name=$1; shift
    if "$@" >>"$LOG" 2>&1; then passed=$((passed + 1)); echo "ok $name"
    else failed=$((failed + 1)); echo "FAILED $name"; fi
}
refuses() { ! "$@"; }

version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/safe_migrate.control")
check "META.json validates against the PGXN Meta Spec 1.0.0" \
    perl "$ROOT/scripts/pgxn_meta_check.pl" "$ROOT/META.json"
meta_field() { perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or die; my $m = decode_json(<$f>);
    my $v = $m; $v = $v->{$_} for split /\./, $ARGV[1]; print $v' "$ROOT/META.json" "$1"; }
check "META.json's version is the control file's default_version ($version)" \
    test "$(meta_field version)" = "$version"
check "META.json provides safe_migrate $version in sql/safe_migrate--$version.sql" \
    test "$(meta_field provides.safe_migrate.version)|$(meta_field provides.safe_migrate.file)" = \
         "$version|sql/safe_migrate--$version.sql"

# the checker can fail: a META.json missing a required key, with a bad
# version, an unknown key, a bad license and a missing file
perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[0] or die; my $m = decode_json(<$f>);
    delete $m->{abstract}; $m->{version} = "1.0"; $m->{license} = "gpl"; $m->{homepage} = "x";
    $m->{provides}{safe_migrate}{file} = "sql/none.sql";
    open my $o, ">", $ARGV[1] or die; print $o encode_json($m)' "$ROOT/META.json" "$WORK/bad.json"
check "the checker refuses a broken META.json" refuses perl "$ROOT/scripts/pgxn_meta_check.pl" \
    --dir "$ROOT" "$WORK/bad.json"
for what in '"abstract" is missing' '"1.0" is not a semantic version' '"gpl" is not a license' \
            'unknown key "homepage"' '"sql/none.sql" does not exist'; do
    check "  naming the problem: $what" grep -qF "$what" <(perl "$ROOT/scripts/pgxn_meta_check.pl" \
        --dir "$ROOT" "$WORK/bad.json")
done

# make dist: the committed tree
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
    echo "(note: make dist archives HEAD; uncommitted changes are not in it)"
fi
zip=$WORK/safe_migrate-$version.zip
check "make dist produces safe_migrate-$version.zip" \
    sh -c "cd '$WORK' && make -s -f '$ROOT/Makefile' srcdir='$ROOT' PG_CONFIG='$PG_CONFIG' dist && test -s '$zip'"
check "the archive unpacks" unzip -q "$zip" -d "$WORK/unpacked"
top=$(ls "$WORK/unpacked" 2>/dev/null)
check "everything in it is under safe_migrate-$version/" test "$top" = "safe_migrate-$version"
D=$WORK/unpacked/safe_migrate-$version
for f in META.json Makefile safe_migrate.control "sql/safe_migrate--$version.sql" README.md src/safe_migrate.cpp; do
    check "  it holds $f" test -f "$D/$f"
done
check "the archive's META.json validates, its files present" perl "$ROOT/scripts/pgxn_meta_check.pl" "$D/META.json"
check "the unpacked archive builds with PGXS" make -C "$D" -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG"
check "and installs (into a scratch DESTDIR)" make -C "$D" -s install PG_CONFIG="$PG_CONFIG" DESTDIR="$WORK/root"
check "  the library, control file and script where pg_config says" \
    test -f "$WORK/root$("$PG_CONFIG" --pkglibdir)/safe_migrate.so" -a \
         -f "$WORK/root$("$PG_CONFIG" --sharedir)/extension/safe_migrate.control" -a \
         -f "$WORK/root$("$PG_CONFIG" --sharedir)/extension/safe_migrate--$version.sql"

[ "$failed" -eq 0 ] || tail -30 "$LOG"
echo "dist_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
