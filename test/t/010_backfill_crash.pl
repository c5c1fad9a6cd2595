# Copyright: safe_migrate authors
#
# Backfills are exactly once across crashes: every batch commits its rows
# and the job's progress (last_key, rows_done) in one transaction, so after
# any crash the job resumes after the last committed key, no row skipped and
# none updated twice.
#
# The backfill is 'counter = counter + 1' over every row: a row updated twice
# shows counter = 2, a skipped row counter = 0.  Mid-job and after each
# crash, in one snapshot, the committed progress must match the committed
# rows; and batches must keep to their (throttled) size.
#
#   crash-worker:    kill -9 of the backfill worker, mid-job
#   crash-midbatch:  kill -9 of the backfill worker while it is inside a
#                    batch (blocked on a row lock in the middle of its UPDATE)
#   crash-immediate: immediate shutdown of the whole server mid-job, restart
#   crash-other:     kill -9 of an unrelated ordinary backend mid-job
#   failure:         a permanent error (division by zero on one row) fails the
#                    job without a partial batch; once the data is fixed,
#                    migrate_backfill_resume() completes it
# It runs for minutes: scripts/test.sh starts it first.
# tap: long
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $N = 300_000;

my $node = PostgreSQL::Test::Cluster->new('backfill_crash');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'safe_migrate'\nmax_worker_processes = 32\n"
	  . "restart_after_crash = on\n"
	  # the worker's batches commit asynchronously (synchronous_commit =
	  # off): with the WAL writer this slow an immediate shutdown takes
	  # back seconds of them, rows and progress together, every time (and
	  # progress lost without its rows, or rows without their progress,
	  # would show up every time rather than now and then)
	  . "wal_writer_delay = '10s'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION safe_migrate;');

my $psql = $node->installed_command('psql');

sub make_table
{
	my ($t) = @_;
	$node->safe_psql(
		'postgres', qq{
		CREATE TABLE $t (id bigint PRIMARY KEY, counter int NOT NULL DEFAULT 0, note text);
		INSERT INTO $t (id) SELECT g FROM generate_series(1, $N) g;
		ANALYZE $t;
	});
}

sub job_value
{
	my ($id, $expr) = @_;
	return $node->safe_psql('postgres',
		"SELECT $expr FROM safe_migrate.backfills WHERE id = $id");
}

# Wait until the job is in a final state (or paused); its status.
sub wait_final
{
	my ($name, $id, $expected) = @_;
	$expected //= 'completed';
	ok( $node->poll_query_until(
			'postgres',
			"SELECT status IN ('completed', 'failed', 'cancelled', 'paused') "
			  . "FROM safe_migrate.backfills WHERE id = $id"),
		"$name: the job reaches a final state");
	my $status = job_value($id, 'status');
	diag("$name: job $id ended "
		  . job_value($id, "status || ' ' || coalesce(last_sqlstate, '') || ' ' || coalesce(last_error, '')"))
	  if $status ne $expected;
	return $status;
}

# In one snapshot: the committed progress matches the committed rows, no
# row was updated twice, and the updated rows are exactly those up to
# last_key.
sub check_consistent
{
	my ($name, $t, $id, $when) = @_;
	my $res = $node->safe_psql(
		'postgres', qq{
		SELECT b.rows_done = (SELECT count(*) FROM $t WHERE counter = 1),
		       (SELECT count(*) FROM $t WHERE counter NOT IN (0, 1)),
		       (SELECT count(*) FROM $t
		         WHERE (counter = 1) IS DISTINCT FROM (id <= coalesce(b.last_key[1]::bigint, 0))),
		       b.rows_done
		  FROM safe_migrate.backfills b WHERE b.id = $id});
	my ($same, $twice, $nonprefix, $done) = split /\|/, $res;
	is($same, 't', "$name ($when): rows_done equals the rows updated (rows_done $done)");
	is($twice, 0, "$name ($when): no row was updated twice");
	is($nonprefix, 0, "$name ($when): exactly the rows up to last_key are updated");
}

# Batches are walked in key order and sized by the throttle: the first has
# batch_size rows, each later one at most twice the previous (a restart
# begins again at batch_size), so after B batches at most
# batch_size * (2^B - 1) rows are done.
sub check_batch_bound
{
	my ($name, $id, $initial) = @_;
	my ($done, $batches) = split /\|/, job_value($id, "rows_done || '|' || batches");
	my $bound = $initial * (2**$batches - 1);
	cmp_ok($done, '<=', $bound,
		"$name: no batch was larger than its size ($done rows in $batches batches of at most $initial, 2x, 4x, ...)");
}

sub check_exactly_once
{
	my ($name, $t, $id) = @_;
	is( $node->safe_psql('postgres', "SELECT count(*) FROM $t WHERE counter <> 1"),
		0, "$name: every row was updated exactly once");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FILTER (WHERE counter = 0) || ',' || count(*) FILTER (WHERE counter > 1) FROM $t"),
		'0,0',
		"$name: no row skipped (counter 0), none updated twice (counter > 1)");
	is(job_value($id, 'rows_done'), $N, "$name: rows_done is the row count");
	is(job_value($id, 'last_key[1]'), $N, "$name: last_key is the last key");
	is(job_value($id, 'finished_at IS NOT NULL AND waiting_for IS NULL'),
		't', "$name: finished_at set, waiting_for cleared");
}

sub start_job
{
	my ($t, $set, @opts) = @_;
	my $args = join '', map { ", $_" } @opts;
	return $node->safe_psql('postgres', "SELECT migrate_backfill('$t', '$set'$args)");
}

sub worker_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill'");
}

# Wait until rows_done is past 20%, check it is still below 80%.
sub wait_mid_job
{
	my ($name, $id) = @_;
	my $from = int($N * 0.2);
	ok( $node->poll_query_until(
			'postgres',
			"SELECT rows_done >= $from OR status NOT IN ('queued', 'running') "
			  . "FROM safe_migrate.backfills WHERE id = $id"),
		"$name: the job made progress");
	is(job_value($id, 'status'), 'running', "$name: the job is running");
}

sub wait_reinitialized
{
	my ($name, $log_offset) = @_;
	ok( $node->wait_for_log(
			qr/all server processes terminated; reinitializing/, $log_offset),
		"$name: the postmaster reinitialized after the kill");
	ok(server_accepts($node), "$name: the server accepts connections again");
}

# A background psql running $sql, expected to be killed.
sub start_session
{
	my ($sql, $out, $err) = @_;
	$$out = '';
	$$err = '';
	return IPC::Run::start(
		[ $psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres'), '-c', $sql ],
		'>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

sub finish_session
{
	my ($name, $h) = @_;
	my $finished = eval { $h->finish; 1 };
	ok($finished, "$name: the killed session's psql ended (did not hang)") or diag($@);
}

my $set = 'counter = counter + 1';

# ---------------------------------------------------------------------------
# crash-worker: kill -9 of the backfill worker, mid-job
# ---------------------------------------------------------------------------
{
	my $name = 'crash-worker';
	make_table('t_worker');
	my $id = start_job('t_worker', $set, 'NULL', 'batch_size => 500', 'max_rows_per_second => 20000');
	like($id, qr/^\d+$/, "$name: migrate_backfill returns a job id");
	wait_mid_job($name, $id);
	check_consistent($name, 't_worker', $id, 'while running');
	check_batch_bound($name, $id, 500);

	my $victim = worker_pid();
	like($victim, qr/^\d+$/, "$name: exactly one backfill worker runs");
	my $done = job_value($id, 'rows_done');
	cmp_ok($done, '<', int($N * 0.8), "$name: killed before 80% of the rows were done");
	note "$name: killing backfill worker $victim at rows_done $done";
	my $log_offset = -s $node->logfile;
	kill 'KILL', $victim;
	wait_reinitialized($name, $log_offset);

	check_consistent($name, 't_worker', $id, 'after the crash');
	is(wait_final($name, $id), 'completed', "$name: the job resumes and completes");
	check_exactly_once($name, 't_worker', $id);
	cmp_ok(job_value($id, 'batches'), '>', 1, "$name: it ran in several batches");
}

# ---------------------------------------------------------------------------
# crash-midbatch: the worker is killed inside a batch.  Another session holds
# a row lock in the middle of the table; the batch that reaches that row has
# updated (uncommitted) the rows before it and waits for the lock: kill it
# then.
# ---------------------------------------------------------------------------
{
	my $name = 'crash-midbatch';
	make_table('t_midbatch');
	my $locked = int($N / 2);
	my ($out, $err);
	my $holder = start_session(
		"SELECT id FROM t_midbatch WHERE id = $locked FOR UPDATE; SELECT pg_sleep(600);",
		\$out, \$err);
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
			  . "AND query LIKE '%t_midbatch%'"),
		"$name: a session holds the lock of row $locked");

	my $id = start_job('t_midbatch', $set, 'NULL', 'batch_size => 500');
	my $waiting = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill' "
	  . "AND wait_event_type = 'Lock'";
	ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM ($waiting) w"),
		"$name: the worker's batch waits for the row lock");
	# the batch holding the worker started after the last committed key
	cmp_ok(job_value($id, 'coalesce(last_key[1]::bigint, 0)'),
		'<', $locked, "$name: the committed progress is before the locked row");
	my $victim = $node->safe_psql('postgres', $waiting);
	my $log_offset = -s $node->logfile;
	kill 'KILL', $victim if $victim =~ /^\d+$/;
	like($victim, qr/^\d+$/, "$name: killed the waiting worker");
	wait_reinitialized($name, $log_offset);
	finish_session($name, $holder);
	note "$name: killed worker $victim inside its batch";

	# (the job resumes at once: its progress may be past the locked row by now)
	check_consistent($name, 't_midbatch', $id, 'after the crash');
	is(wait_final($name, $id), 'completed', "$name: the job resumes and completes");
	check_exactly_once($name, 't_midbatch', $id);
}

# ---------------------------------------------------------------------------
# crash-immediate: immediate shutdown mid-job, then start
# ---------------------------------------------------------------------------
{
	my $name = 'crash-immediate';
	make_table('t_immediate');
	my $id = start_job('t_immediate', $set, 'NULL', 'batch_size => 500', 'max_rows_per_second => 20000');
	wait_mid_job($name, $id);
	check_batch_bound($name, $id, 500);
	my $done = job_value($id, 'rows_done');
	cmp_ok($done, '<', int($N * 0.8), "$name: stopped before 80% of the rows were done");
	note "$name: immediate shutdown at rows_done $done";

	$node->stop('immediate');
	$node->start;

	check_consistent($name, 't_immediate', $id, 'after the restart');
	is(wait_final($name, $id), 'completed', "$name: the job resumes and completes");
	check_exactly_once($name, 't_immediate', $id);
}

# ---------------------------------------------------------------------------
# crash-other: kill -9 of an unrelated ordinary backend mid-job
# ---------------------------------------------------------------------------
{
	my $name = 'crash-other';
	make_table('t_other');
	my ($out, $err);
	my $h = start_session('SELECT pg_sleep(600)', \$out, \$err);
	my $sleeper = "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
	  . "AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
	ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($sleeper) s"),
		"$name: an unrelated session is running");

	my $id = start_job('t_other', $set, 'NULL', 'batch_size => 500', 'max_rows_per_second => 20000');
	wait_mid_job($name, $id);
	check_batch_bound($name, $id, 500);
	my $victim = $node->safe_psql('postgres', $sleeper);
	like($victim, qr/^\d+$/, "$name: found the unrelated backend");
	my $worker = worker_pid();
	like($worker, qr/^\d+$/, "$name: the backfill worker runs");
	my $done = job_value($id, 'rows_done');
	cmp_ok($done, '<', int($N * 0.8), "$name: killed before 80% of the rows were done");
	note "$name: killing client backend $victim at rows_done $done";

	my $log_offset = -s $node->logfile;
	kill 'KILL', $victim;
	wait_reinitialized($name, $log_offset);
	finish_session($name, $h);

	check_consistent($name, 't_other', $id, 'after the crash');
	is(wait_final($name, $id), 'completed', "$name: the job resumes and completes");
	check_exactly_once($name, 't_other', $id);
}

# ---------------------------------------------------------------------------
# failure: a permanent error fails the job, without a partial batch; fixing
# the data and resuming completes it
# ---------------------------------------------------------------------------
{
	my $name = 'failure';
	my $bad = 150_000;
	make_table('t_fail');
	my $id = start_job('t_fail', "counter = counter + 1, note = (1 / (id - $bad))::text",
		'NULL', 'batch_size => 500');
	is(wait_final($name, $id, 'failed'), 'failed', "$name: the job fails");
	is(job_value($id, 'last_sqlstate'), '22012', "$name: last_sqlstate is 22012 (division_by_zero)");
	like(job_value($id, 'last_error'), qr/division by zero/, "$name: last_error says why");
	ok(job_value($id, 'finished_at IS NOT NULL'), "$name: finished_at is set");

	my ($rc, $stdout, $stderr) = $node->psql('postgres', "SELECT migrate_backfill_wait($id, '10 s')");
	isnt($rc, 0, "$name: migrate_backfill_wait fails");
	like($stderr, qr/backfill job $id failed/, "$name: migrate_backfill_wait reports the failure");

	# no partial batch: the rows of the failing batch are all untouched
	check_consistent($name, 't_fail', $id, 'after the failure');
	check_batch_bound($name, $id, 500);
	my $last = job_value($id, 'coalesce(last_key[1]::bigint, 0)');
	cmp_ok($last, '<', $bad, "$name: last_key ($last) is before the failing row");
	is($node->safe_psql('postgres', "SELECT count(*) FROM t_fail WHERE id > $last AND counter <> 0"),
		0, "$name: no row after last_key was updated (no partial batch)");
	is($node->safe_psql('postgres', "SELECT counter FROM t_fail WHERE id = $bad"),
		0, "$name: the failing row is untouched");

	# fix the cause, resume
	$node->safe_psql('postgres', "DELETE FROM t_fail WHERE id = $bad");
	is($node->safe_psql('postgres', "SELECT migrate_backfill_resume($id)"),
		'running', "$name: migrate_backfill_resume returns running");
	is($node->safe_psql('postgres', "SELECT migrate_backfill_wait($id, '3 min')"),
		'completed', "$name: after the fix the job completes");
	is($node->safe_psql('postgres', "SELECT count(*) FROM t_fail WHERE counter <> 1"),
		0, "$name: every remaining row was updated exactly once");
	is(job_value($id, 'rows_done'), $N - 1, "$name: rows_done is the remaining row count");
	is(job_value($id, "coalesce(last_error, '') || coalesce(last_sqlstate, '')"),
		'', "$name: the error is cleared after the resumed job ran");
}

is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM safe_migrate.backfills WHERE status <> 'completed'"),
	0,
	'every job completed');

$node->stop;
done_testing();
