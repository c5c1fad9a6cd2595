# Copyright: safe_migrate authors
#
# The same script behaves the same in the caller's backend (all statements
# transactional) and in a background runner (a CREATE INDEX CONCURRENTLY
# sends it there): consecutive transactional statements share one
# transaction block, so LOCK TABLE works and SET LOCAL neither warns nor
# outlives its step; statement_timeout set by the script (SET or SET LOCAL)
# cancels a statement that runs too long, for each statement on its own, as
# in any backend.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('runner_transactions');
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE t (id int PRIMARY KEY);
	CREATE TABLE log (path text, what text, value text, seq serial);
});

sub q1 { return $node->safe_psql('postgres', $_[0]) }

# ($rc, $stdout, $stderr, seconds) of a migration; the runner variant
# starts with a concurrent index build
sub apply
{
	my ($path, $body, $version) = @_;
	my $script = ($path eq 'runner' ? "CREATE INDEX CONCURRENTLY t_$version ON t (id);\n" : '')
	  . $body;
	my ($out, $err) = ('', '');
	my $start = time;
	my $rc = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT status FROM migrate_apply(\$m\$$script\$m\$, '$path-$version')",
		stdout => \$out, stderr => \$err);
	return ($rc, $out, $err, time - $start);
}

# ---------------------------------------------------------------------
# LOCK TABLE and SET LOCAL in a step
# ---------------------------------------------------------------------
my $block = <<'EOS';
LOCK TABLE t IN SHARE MODE;
INSERT INTO log (path, what, value)
  SELECT current_setting('application_name'), 'lock', string_agg(mode, ',')
    FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 't'::regclass AND mode = 'ShareLock';
SET LOCAL lock_timeout = '1234ms';
INSERT INTO log (path, what, value)
  SELECT current_setting('application_name'), 'local', current_setting('lock_timeout');
EOS
my %seen;
for my $path ('caller', 'runner')
{
	my ($rc, $out, $err) = apply($path, $block, 'block');
	is($rc, 0, "$path: LOCK TABLE and SET LOCAL: applied") or diag($err);
	is($out, 'applied', "$path: status applied");
	unlike($err, qr/WARNING|can only be used in transaction blocks/, "$path: no warning");
	is( q1("SELECT warnings FROM safe_migrate.history WHERE version = '$path-block'"),
		'{}', "$path: no warning recorded");
	$seen{$path} = q1("SELECT string_agg(what || '=' || coalesce(value, 'NULL'), ',' ORDER BY seq) "
		  . "FROM log WHERE path " . ($path eq 'runner' ? "= 'safe_migrate runner'" : "<> 'safe_migrate runner'"));
}
is($seen{caller}, 'lock=ShareLock,local=1234ms', 'caller: the lock is held, SET LOCAL applies');
is($seen{runner}, $seen{caller}, 'runner: the same as in the caller');

# SET LOCAL ends with its step in the runner
{
	q1('DELETE FROM log');
	my ($rc, $out, $err) = apply('runner',
		"SET LOCAL lock_timeout = '1234ms';\nVACUUM t;\n"
		  . "INSERT INTO log (path, what, value) SELECT 'runner', 'after', current_setting('lock_timeout');\n",
		'local_ends');
	is($out, 'applied', 'runner: SET LOCAL then VACUUM: applied') or diag($err);
	isnt(q1("SELECT value FROM log WHERE what = 'after'"), '1234ms',
		'runner: SET LOCAL does not outlive its step');
}

# ---------------------------------------------------------------------
# statement_timeout set by the script
# ---------------------------------------------------------------------
my @timeouts = (
	[ 'set',       "SET statement_timeout = '500ms';\n" ],
	[ 'set_local', "SET LOCAL statement_timeout = '500ms';\n" ],);
for my $t (@timeouts)
{
	my ($name, $set) = @$t;
	# each of the short sleeps fits, together they would not: the timer
	# is per statement
	my $body = $set . "SELECT pg_sleep(0.3);\nSELECT pg_sleep(0.3);\nSELECT pg_sleep(30);\n";
	my %result;
	for my $path ('caller', 'runner')
	{
		my ($rc, $out, $err, $secs) = apply($path, $body, $name);
		isnt($rc, 0, "$path, $name: the long statement fails");
		like($err, qr/57014: canceling statement due to statement timeout/,
			"$path, $name: cancelled by statement_timeout");
		cmp_ok($secs, '<', 15, "$path, $name: well before the 30 s sleep ends");
		$result{$path} = q1("SELECT status || ':' || sqlstate || ':' || failed_statement "
			  . "FROM safe_migrate.history WHERE version = '$path-$name'");
	}
	is($result{caller}, 'failed:57014:SELECT pg_sleep(30)', "caller, $name: the history");
	is($result{runner}, $result{caller}, "runner, $name: the same history");
}

# a SET in one step applies to the steps after it, as in a session
{
	my ($rc, $out, $err, $secs) = apply('runner',
		"SET statement_timeout = '300ms';\nVACUUM t;\nSELECT pg_sleep(30);\n", 'later_step');
	like($err, qr/57014: canceling statement due to statement timeout/,
		'runner: a SET statement_timeout holds for later steps');
	cmp_ok($secs, '<', 15, 'runner: well before the sleep ends');
}

# the runner's own bookkeeping is not cancelled by the script's timeout
{
	my ($rc, $out, $err) = apply('runner', "SELECT 1;\nSET statement_timeout = '1ms';\n", 'tiny');
	is($out, 'applied', 'runner: a 1 ms statement_timeout does not hit the history writes')
	  or diag($err);
}

# the script's settings end with the migration on both paths: the caller's
# session is as it was (the next migration runs the same whichever path
# this one took)
for my $path ('caller', 'runner')
{
	my $script = ($path eq 'runner' ? "VACUUM t;\n" : '')
	  . "SET statement_timeout = '5min';\nSET search_path = pg_catalog;\nSET lock_timeout = '7s';\n";
	is( q1("SET lock_timeout = '3s';\n"
			  . "SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$path-settings');\n"
			  . "SELECT current_setting('statement_timeout') || ',' || current_setting('search_path') "
			  . "|| ',' || current_setting('lock_timeout')"),
		"applied\n0," . q1('SHOW search_path') . ',3s',
		"$path: the caller's session settings are as they were");
}

# A procedure that commits part of its work and then fails on a lock
# timeout is not run again (a lock timeout or a lost deadlock retries a step
# only when nothing of it committed): its committed row is there once, and
# the error says why there was no retry.  Without the lock holder the same
# migration, applied again, completes.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE proc_log (n int);
	CREATE TABLE proc_locked (id int);
	CREATE PROCEDURE commit_then_lock() LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO proc_log VALUES (1);
	  COMMIT;
	  LOCK TABLE proc_locked IN ACCESS EXCLUSIVE MODE;
	END $$;
});
for my $strategy ('wait', 'retry')
{
	q1('DELETE FROM proc_log');
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN; LOCK TABLE proc_locked IN ACCESS SHARE MODE;');
	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		'postgres', qq{
		SET safe_migrate.lock_timeout = '200ms';
		SET safe_migrate.lock_retries = 3;
		SET safe_migrate.lock_strategy = '$strategy';
		SELECT status FROM migrate_apply('CALL commit_then_lock();', 'proc-$strategy');},
		stdout => \$out,
		stderr => \$err);
	isnt($rc, 0, "$strategy: the procedure's lock timeout fails the migration");
	like($err, qr/committed part of its work before it failed: it is not retried/,
		"$strategy: the error says why it was not retried");
	unlike($err, qr/retry 1 of/, "$strategy: no retry was made");
	is(q1('SELECT count(*) FROM proc_log'), '1', "$strategy: the committed part is there once");
	$holder->query_safe('COMMIT;');
	$holder->quit;
}
is(q1(q{SELECT status FROM migrate_apply('CALL commit_then_lock();', 'proc-retry')}),
	'applied', 'without the lock holder it applies');

$node->stop;
done_testing();
