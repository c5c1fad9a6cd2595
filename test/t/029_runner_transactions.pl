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

use IPC::Run;
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

# A migration that loses a deadlock to the application is rolled back and
# run again (as after a lock timeout): the application's transaction goes
# ahead, the migration applies once, after it.  The application session
# waits with a long deadlock_timeout, so the migration is the one that
# finds the cycle (3 s after it starts waiting: time enough, on a loaded
# machine, for the application to close the cycle before that one check).
q1(q{ALTER SYSTEM SET deadlock_timeout = '3s'; SELECT pg_reload_conf();});
q1(q{CREATE TABLE dl_a (id int PRIMARY KEY, v int); CREATE TABLE dl_b (id int PRIMARY KEY, v int);
	CREATE TABLE dl_c (id int);
	INSERT INTO dl_a VALUES (1, 0); INSERT INTO dl_b VALUES (1, 0);});
for my $path ('caller', 'runner')
{
	my $app = $node->background_psql('postgres');
	$app->query_safe(q{SET deadlock_timeout = '60s'; BEGIN; UPDATE dl_b SET v = 1 WHERE id = 1;});
	my $script = ($path eq 'runner' ? 'VACUUM dl_c; ' : '')
	  . 'UPDATE dl_a SET v = 2 WHERE id = 1; UPDATE dl_b SET v = 2 WHERE id = 1;';
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  '-c', "SET safe_migrate.lock_timeout = '30s'",
		  '-c', "SELECT status || ',' || lock_retries FROM migrate_apply('$script', 'deadlock-$path')" ],
		'>', \$out, '2>', \$err);
	# the migration holds dl_a's row and waits for dl_b's
	$node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted})
	  or die 'the migration does not wait for the row';
	# the application now waits for the migration's row: a cycle
	$app->query_safe('UPDATE dl_a SET v = 1 WHERE id = 1; COMMIT;');
	$app->quit;
	$h->finish;
	chomp $out;
	is($out, 'applied,1', "$path: the migration applies, after one retry") or diag($err);
	like($err, qr/deadlock on statement \d of the migration, retry 1 of 10/,
		"$path: the lost deadlock is retried, with a notice");
	is(q1('SELECT a.v || \',\' || b.v FROM dl_a a, dl_b b'), '2,2',
		"$path: the application's transaction went ahead, the migration ran after it");
	is(q1("SELECT count(*) FROM safe_migrate.history WHERE version = 'deadlock-$path'"), '1',
		"$path: recorded once");
}
q1(q{ALTER SYSTEM RESET deadlock_timeout; SELECT pg_reload_conf();});

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
