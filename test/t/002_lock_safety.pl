
# Copyright: safe_migrate authors
#
# Lock safety: a migration that needs an ACCESS EXCLUSIVE lock held off by a
# long transaction must not make other sessions queue behind its lock
# request.  It waits at most safe_migrate.lock_timeout, steps out of the lock
# queue, backs off and retries until the long transaction ends.
#
# Timeline of the main part:
#   session L   BEGIN; SELECT * FROM t;            (ACCESS SHARE on t, held >= 4 s)
#   session M   migrate_apply('ALTER TABLE t ADD COLUMN c int')  (background)
#   session R   20 x SELECT count(*) FROM t, one every ~100 ms, each timed
#   session L   COMMIT  ->  M finishes
#
# Without safe_migrate's behaviour, M's ACCESS EXCLUSIVE request would sit in
# the lock queue until L commits (>= 4 s, see $hold_seconds) and every reader
# of t would queue behind it for that long.  With lock_timeout = 200ms a
# reader waits at most ~200 ms per attempt of M, so the bound of 2 s is
# generous.  (safe_migrate.lock_strategy = retry: the default strategy,
# waiting outside the lock queue, is tested in 040_lock_wait.pl.)  The control sub-test shows that a plain ALTER TABLE (no lock
# timeout) does block a reader for longer than that bound, so the main
# assertion can fail.
use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $reader_bound = 2.0;    # seconds; the lock timeout is 0.2 s
my $hold_seconds = 4.5;    # the long transaction is held at least this long
                           # after the migration starts (>= 4 s)
my $n_readers = 20;

my $node = start_node('lock_safety');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE t (id int PRIMARY KEY);
	INSERT INTO t SELECT g FROM generate_series(1, 100) g;
});

my $psql = $node->installed_command('psql');

# Start psql in the background with the given -c commands.
sub start_psql
{
	my ($out, $err, @commands) = @_;
	$$out = '';
	$$err = '';
	return IPC::Run::start(
		[
			$psql, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'),
			map { ('-c', $_) } @commands
		],
		'>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

# Session L: the long transaction.
my $long = $node->background_psql('postgres');
$long->query_safe('BEGIN');
$long->query_safe('SELECT * FROM t');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_locks WHERE relation = 't'::regclass "
		  . "AND mode = 'AccessShareLock' AND granted AND pid <> pg_backend_pid()"),
	1,
	'the long transaction holds ACCESS SHARE on t');

# Session R: the reader.
my $reader = $node->background_psql('postgres');

# ---------------------------------------------------------------------------
# Control: a plain ALTER TABLE without a lock timeout blocks readers.
# ---------------------------------------------------------------------------
{
	my ($out, $err);
	my $plain = start_psql(\$out, \$err, 'SET lock_timeout = 0',
		'ALTER TABLE t ADD COLUMN d int');

	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
			  . "AND query LIKE 'ALTER TABLE t ADD COLUMN d%' AND wait_event_type = 'Lock'"),
		'control: the plain ALTER TABLE waits in the lock queue');

	# A reader queues behind the ALTER; a statement_timeout of 3 s ends its
	# wait (the long transaction would keep it waiting indefinitely).
	my ($c_out, $c_err);
	my $t0 = time;
	my $rc = $node->psql(
		'postgres',
		"SET statement_timeout = '3s'; SELECT count(*) FROM t",
		stdout => \$c_out,
		stderr => \$c_err);
	my $elapsed = time - $t0;
	note sprintf('control reader waited %.3f s', $elapsed);
	ok($elapsed > $reader_bound,
		"control: a reader behind a plain ALTER TABLE is blocked for more than ${reader_bound} s"
	);
	isnt($rc, 0, 'control: the blocked reader did not complete');
	like($c_err, qr/canceling statement due to statement timeout/,
		'control: the blocked reader was ended by its statement timeout');

	# Clean up: cancel the plain ALTER.
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM (SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
			  . "WHERE pid <> pg_backend_pid() AND query LIKE 'ALTER TABLE t ADD COLUMN d%') s"
		),
		1,
		'control: the plain ALTER TABLE is cancelled');
	eval { $plain->finish; };
	isnt($plain->result(0), 0, 'control: the cancelled ALTER TABLE exited non-zero');
	like($err, qr/canceling statement due to user request/,
		'control: the ALTER TABLE was cancelled');
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'd'"
		),
		0,
		'control: column d was not added');
}

# ---------------------------------------------------------------------------
# The migration, while the long transaction holds its lock.
# ---------------------------------------------------------------------------
my ($mig_out, $mig_err);
my $mig_start = time;
my $migration = start_psql(
	\$mig_out, \$mig_err,
	'SET safe_migrate.lock_strategy = retry',    # the behaviour tested here
	"SET safe_migrate.lock_timeout = '200ms'",
	'SET safe_migrate.lock_retries = 100',
	"SELECT status || '|' || lock_retries FROM migrate_apply("
	  . "'ALTER TABLE t ADD COLUMN c int', 'lock-1')");

ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
		  . "AND state = 'active' AND query LIKE '%ALTER TABLE t ADD COLUMN c int%'"),
	'the migration is running');

my @times;
for my $i (1 .. $n_readers)
{
	my $t0 = time;
	my ($res, $failed) = $reader->query('SELECT count(*) FROM t');
	push @times, time - $t0;
	ok(!$failed && $res eq '100', "reader query $i succeeded")
	  or diag("output: $res, stderr: $reader->{stderr}");
	sleep(0.1);
}
my ($max) = sort { $b <=> $a } @times;
note sprintf('reader times (s): %s', join(' ', map { sprintf('%.3f', $_) } @times));
note sprintf('slowest reader: %.3f s', $max);
ok($max < $reader_bound,
	sprintf('while the migration retries, no reader waits %.1f s or more (max %.3f s)',
		$reader_bound, $max));

# Keep the long transaction open at least $hold_seconds after the migration
# started: a migration sitting in the lock queue would have blocked the
# readers above for that long.
my $remaining = $mig_start + $hold_seconds - time;
sleep($remaining) if $remaining > 0;

$migration->pump_nb;
ok($migration->pumpable, 'the migration is still waiting while the long transaction is open');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'"),
	0,
	'column c is not there yet');

# End the long transaction; the migration's next retry succeeds.
$long->query_safe('COMMIT');
$long->quit;

my $finished = eval { $migration->finish; 1 };
ok($finished, 'the migration finished after the long transaction ended') or diag($@);
is($migration->result(0), 0, 'the migration psql exited with status 0')
  or diag("stderr: $mig_err");
my ($status, $retries) = split /\|/, ($mig_out =~ s/\s+$//r);
is($status, 'applied', "migrate_apply returned status 'applied'");
ok(defined $retries && $retries > 0, "lock_retries > 0 (got " . ($retries // 'none') . ")");

is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c' "
		  . "AND NOT attisdropped"),
	1,
	'column c exists');
is( $node->safe_psql(
		'postgres',
		"SELECT status || '|' || (lock_retries > 0)::int FROM safe_migrate.history WHERE version = 'lock-1'"
	),
	'applied|1',
	'the history records lock-1 as applied, with its retries');

$reader->quit;
$node->stop;
done_testing();
