# Copyright: safe_migrate authors
#
# Issue 16: a backfill paced on the application's latency, on a real server.
#  - Idle server: the default backfill never sees an application (no quiet
#    baseline measured, duty 1 throughout, nothing holds it back) and runs
#    at a speed comparable to one UPDATE of the same rows.
#  - Under a foreground load (pgbench, point UPDATE + SELECT on another
#    table), with a budget the load's own noise exceeds, the worker slows
#    down and says why (throttled_by = 'foreground latency', the
#    application's statement latency as its sessions recorded it and its
#    quiet baseline shown, duty cut); when the load stops it speeds up again
#    (rate after >> rate during, duty back to 1).
#  - The budget is recorded with the job; the setting refuses nonsense.
# No timing thresholds that a busy machine could break: the assertions are
# on the controller's decisions and on relative rates with wide margins.
# It compares rates and reads the server's latencies: scripts/test.sh runs
# it by itself, after the tests that run side by side.
# tap: alone
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;
use IPC::Run;
use Time::HiRes qw(time sleep);

my $node = start_node('bf_latency');
# what the application feels of a backfill is mostly its commits waiting
# behind the backfill's WAL: with the test clusters' fsync = off they would
# cost nothing
$node->append_conf('postgresql.conf', "fsync = on\n");
# the background writer would clean some of the buffers the write-out check
# below counts
$node->append_conf('postgresql.conf', "bgwriter_lru_maxpages = 0\n");
$node->restart;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE i1 (id int PRIMARY KEY, a text NOT NULL, b text);
	INSERT INTO i1 SELECT g, 'x' || g, NULL FROM generate_series(1, 200000) g;
	CREATE TABLE i2 (LIKE i1 INCLUDING ALL);
	INSERT INTO i2 SELECT * FROM i1;
	ALTER TABLE i1 SET (autovacuum_enabled = off);
	ALTER TABLE i2 SET (autovacuum_enabled = off);
	CREATE EXTENSION pg_buffercache;
	CREATE TABLE big (id int PRIMARY KEY, a text NOT NULL, b text);
	INSERT INTO big SELECT g, 'x' || g, NULL FROM generate_series(1, 2000000) g;
	CREATE TABLE fg (id int PRIMARY KEY, v int NOT NULL);
	INSERT INTO fg SELECT g, 0 FROM generate_series(1, 1000) g;
	VACUUM ANALYZE;
	CHECKPOINT;
});

# ---- the setting
my ($rc, $out, $err) = $node->psql('postgres', 'SET safe_migrate.backfill_latency_budget = -1');
isnt($rc, 0, 'a negative latency budget is refused');
like($err, qr/backfill_latency_budget/, '... naming the setting');
is($node->safe_psql('postgres', 'SHOW safe_migrate.backfill_latency_budget'),
	'1', 'the default budget is 1 ms');

# ---- idle server
my $t0 = time;
$node->safe_psql('postgres', 'UPDATE i1 SET b = a');
my $update_s = time - $t0;

$t0 = time;
my $idle = $node->safe_psql('postgres',
	q{SELECT migrate_backfill('i2', 'b = a') AS id \gset
	  SELECT migrate_backfill_wait(:id) \g /dev/null
	  SELECT :id});
my $backfill_s = time - $t0;
# The job writes out the pages it dirtied as it goes (and its last batch's
# when it ends), so they do not wait in shared buffers for the application's
# sessions to evict them into the kernel's page cache.  Counted before
# anything reads i2 again (a read sets hint bits: dirty pages of its own).
# The plain UPDATE's pages are still dirty (no checkpoint since, background
# writer off): the count would see them.
my $dirty = q{
	SELECT count(*) FILTER (WHERE b.isdirty), count(*)
	  FROM pg_buffercache b JOIN pg_class c ON b.relfilenode = pg_relation_filenode(c.oid)
	 WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
	   AND c.oid IN (SELECT '%1$s'::regclass UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = '%1$s'::regclass)};
my ($i1_dirty, $i1_buffers) = split /\|/, $node->safe_psql('postgres', sprintf($dirty, 'i1'));
note("after the UPDATE: $i1_dirty of i1's $i1_buffers buffers dirty");
cmp_ok($i1_dirty, '>', $i1_buffers / 2, 'a plain UPDATE leaves most of its pages dirty in shared buffers');
ok($node->poll_query_until('postgres',
		sprintf("SELECT d < greatest(t / 100, 5) FROM ($dirty) s(d, t)", 'i2')),
	'the backfill wrote out the pages it dirtied')
  or diag($node->safe_psql('postgres', sprintf($dirty, 'i2')));
my $row = $node->safe_psql('postgres',
	"SELECT status, duty, foreground_baseline_ms IS NULL, latency_budget_ms, rows_done
	   FROM safe_migrate.backfills WHERE id = $idle");
is($row, 'completed|1.000|t|1|200000',
	'idle: completed at duty 1, never measured a quiet baseline (saw no application), default budget recorded');
is($node->safe_psql('postgres', 'SELECT count(*) FROM i2 WHERE b IS DISTINCT FROM a'),
	'0', 'idle: every row filled');
my $ratio = $update_s / $backfill_s;
note(sprintf('idle: UPDATE %.2f s, backfill %.2f s, ratio %.2f', $update_s, $backfill_s, $ratio));
# the benchmark measures >= 0.8; here only that it is not throttled into
# another order of magnitude on a shared machine
cmp_ok($ratio, '>', 0.3, 'idle: the backfill runs at a speed comparable to one UPDATE');

# ---- under a foreground load
# 24 s: room for several quiet windows (every 2.5 s after the load arrives
# until three were taken, then every 10 s), so that one caught in a stall of
# the server (its p99 then above what the load shows: no excess, no cut) is
# outvoted while the test watches.  Seen once on the assert-enabled 18 in
# CI, before the quick first windows: duty 1 for the first 9 s of 12.
my $load_s = 24;
# what every session records (the pacing's signal), summed
sub recorded
{
	return $node->safe_psql('postgres',
		'SELECT coalesce(sum(statements), 0) FROM safe_migrate.application_latency()');
}
my $recorded_before = recorded();
my ($pgbench, $pgb_out, $pgb_err) = start_point_load($node, $load_s);
my $load_start = time;
sleep(1);

# a budget the load's own noise exceeds: the controller must hold back
my $job = $node->safe_psql('postgres',
	q{SET safe_migrate.backfill_latency_budget = 0.001;
	  SELECT migrate_backfill('big', 'b = a')});
is($node->safe_psql('postgres', "SELECT latency_budget_ms FROM safe_migrate.backfills WHERE id = $job"),
	'0.001', 'the budget in force at submit time is recorded with the job');

# once a second (a monitoring query, not an application): what the view says
my @samples;
while (time - $load_start < $load_s - 2)
{
	sleep(1);
	my $s = $node->safe_psql('postgres',
		"SELECT status, coalesce(throttled_by, ''), coalesce(duty, 1), rows_done,
		        foreground_latency_ms BETWEEN 0 AND 10000, foreground_baseline_ms BETWEEN 0 AND 10000
		   FROM safe_migrate.backfills WHERE id = $job");
	push @samples, [ time, split(/\|/, $s) ];
}
$pgbench->finish;
is($pgbench->result(0), 0, 'the foreground load ran') or diag($$pgb_err);
my ($transactions) = $$pgb_out =~ /number of transactions actually processed: (\d+)/;
my $recorded = recorded() - $recorded_before;
note("pgbench: $transactions transactions (2 statements each); recorded: $recorded statements");
cmp_ok($recorded, '>=', 2 * $transactions,
	"every statement of the application was recorded in the sessions' latency counters");
# and nothing else but this test's few monitoring queries (the backfill's
# worker, migrate_backfill and migrate_backfill_wait are not the application)
cmp_ok($recorded, '<=', 2 * $transactions + 50, '... and not much more');
my $load_end = time;
my $rows_at_load_end =
  $node->safe_psql('postgres', "SELECT rows_done FROM safe_migrate.backfills WHERE id = $job");

# skip the samples before the first batch was recorded
my @seen = grep { $_->[1] eq 'running' && $_->[4] > 0 } @samples;
cmp_ok(scalar(@seen), '>=', 3, 'the job was seen running under the load') or diag(explain(\@samples));
ok((grep { $_->[2] eq 'foreground latency' } @seen),
	"under load: throttled_by = 'foreground latency' was shown")
  or diag(explain(\@seen));
ok(!(grep { $_->[2] eq '' } @seen), 'under load: something holds it back at every look')
  or diag(explain(\@seen));
ok((grep { $_->[3] < 0.5 } @seen), 'under load: the duty cycle was cut') or diag(explain(\@seen));
ok((grep { $_->[5] eq 't' && $_->[6] eq 't' } @seen),
	"under load: the application's latency and its quiet baseline are shown")
  or diag(explain(\@seen));

# the load is gone: full speed again
$node->safe_psql('postgres', "SELECT migrate_backfill_wait($job)");
my $done_at = time;
my ($total, $duty, $started, $finished) = split(
	/\|/,
	$node->safe_psql('postgres',
		"SELECT rows_done, duty, extract(epoch FROM started_at), extract(epoch FROM finished_at)
		   FROM safe_migrate.backfills WHERE id = $job"));
is($total, '2000000', 'the job completed every row');
is($duty, '1.000', 'after the load: its last batches ran at duty 1');
my $during_s = $load_end - $started;
my $after_s = $finished - $load_end;
$after_s = 0.05 if $after_s < 0.05;
my $rate_during = $rows_at_load_end / $during_s;
my $rate_after = ($total - $rows_at_load_end) / $after_s;
note(sprintf('rate under load %.0f rows/s (%d rows in %.1f s), after %.0f rows/s',
	$rate_during, $rows_at_load_end, $during_s, $rate_after));
cmp_ok($rows_at_load_end, '<', $total, 'the load ended before the job did');
# The rates are reported, not asserted: speed is the benchmark's business
# (bench/backfill_latency.sh), and on a shared 2-CPU CI machine the rate
# after the load swings with whatever else runs (98k rows/s once, 156k
# another time). What the controller decided is asserted above from the
# view: the duty was cut under the load and back at 1 after it.
is($node->safe_psql('postgres', 'SELECT count(*) FROM big WHERE b IS DISTINCT FROM a'),
	'0', 'under load: every row filled');

# ---- the aftermath: the worker vacuums what it left behind
# A job whose last batch is done while the application is there vacuums
# its table (VACUUM ANALYZE as the job's owner, at autovacuum's pace, its
# pages written out as it goes) before it completes, instead of leaving
# 100,000 dead row versions to autovacuum; migrate_backfill_wait returns
# after it.  Not with
# safe_migrate.backfill_vacuum off, nor for a table with autovacuum_enabled
# = off, nor on an idle server (the idle job above).  Autovacuum itself is
# kept away from these tables by its naptime, so the counts below are the
# worker's.
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET autovacuum_naptime = '1h';
	SELECT pg_reload_conf();
	CREATE TABLE av1 (id int PRIMARY KEY, a text NOT NULL, b text);
	INSERT INTO av1 SELECT g, 'x' || g, NULL FROM generate_series(1, 100000) g;
	CREATE TABLE av2 (LIKE av1 INCLUDING ALL);
	INSERT INTO av2 SELECT * FROM av1;
	CREATE TABLE av3 (LIKE av1 INCLUDING ALL) WITH (autovacuum_enabled = off);
	INSERT INTO av3 SELECT * FROM av1;
	VACUUM ANALYZE av1, av2, av3;
});
is($node->safe_psql('postgres', "SELECT vacuumed_at IS NULL FROM safe_migrate.backfills WHERE id = $idle"),
	't', 'idle: the job left its vacuum to autovacuum (nobody there to feel it)');
my $vacuums = q{SELECT string_agg(relname || ':' || vacuum_count || ':' || (n_dead_tup > 50000), ' ' ORDER BY relname)
	FROM pg_stat_user_tables WHERE relname IN ('av1', 'av2', 'av3')};
is($node->safe_psql('postgres', $vacuums), 'av1:1:false av2:1:false av3:1:false',
	'before: one vacuum each, no dead rows');
my ($av_load) = start_point_load($node, 900);   # ended by kill_kill below
sleep(1);
my @av_jobs = map { $node->safe_psql('postgres', $_) } (
	q{SELECT migrate_backfill('av1', 'b = a')},
	q{SET safe_migrate.backfill_vacuum = off; SELECT migrate_backfill('av2', 'b = a')},
	q{SELECT migrate_backfill('av3', 'b = a')});
my $av_ids = join(',', @av_jobs);
is($node->safe_psql('postgres',
		"SELECT string_agg(vacuum::text, ',' ORDER BY id) FROM safe_migrate.backfill_jobs WHERE id IN ($av_ids)"),
	'true,false,true', 'safe_migrate.backfill_vacuum in force at submit time is recorded with the job');
$node->safe_psql('postgres', "SELECT migrate_backfill_wait($_)") for @av_jobs;
my $av_running = $av_load->pumpable;
$av_load->kill_kill;
$av_load->finish;
ok($av_running, 'the load was still running when the jobs completed');
is($node->safe_psql('postgres',
		"SELECT string_agg(status || ':' || (vacuumed_at IS NOT NULL) || ':' || coalesce(waiting_for, '-')
		                   || ':' || (coalesce(vacuumed_at, finished_at) <= finished_at), ' ' ORDER BY id)
		   FROM safe_migrate.backfills WHERE id IN ($av_ids)"),
	'completed:true:-:true completed:false:-:true completed:false:-:true',
	'under load: the job vacuumed its table before it completed; not with the setting off, nor with autovacuum off for the table');
is($node->safe_psql('postgres', $vacuums), 'av1:2:false av2:1:true av3:1:true',
	'the vacuumed table has no dead row versions left; the others have them (one per row changed)');
is($node->safe_psql('postgres', q{SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'av1'}), '0',
	'... none at all: no snapshot kept them');
is($node->safe_psql('postgres', "SELECT last_analyze BETWEEN started_at AND finished_at
		FROM pg_stat_user_tables, safe_migrate.backfills WHERE relname = 'av1' AND id = $av_jobs[0]"),
	't', '... and analyzed it');
is($node->safe_psql('postgres', 'SELECT count(*) FROM av1 WHERE b IS DISTINCT FROM a'), '0',
	'every row of the vacuumed table filled');

# The vacuum yields to the migration's next step as autovacuum does: a
# session that waits for a lock it holds cancels it after deadlock_timeout
# (here 100 ms; the statement then runs), and the job says it left the
# vacuum to autovacuum.
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET deadlock_timeout = '100ms';
	SELECT pg_reload_conf();
	CREATE TABLE av4 (id int PRIMARY KEY, a text NOT NULL, b text);
	INSERT INTO av4 SELECT g, 'x' || g, NULL FROM generate_series(1, 600000) g;
	VACUUM ANALYZE av4;
});
($av_load) = start_point_load($node, 900);   # ended by kill_kill below
sleep(1);
my $av4 = $node->safe_psql('postgres', q{SELECT migrate_backfill('av4', 'b = a')});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE application_name = 'safe_migrate backfill' AND query LIKE '%VACUUM%av4%'}),
	'the job\'s vacuum: seen running');
is($node->safe_psql('postgres', "SELECT status || ': ' || waiting_for FROM safe_migrate.backfills WHERE id = $av4"),
	"running: the vacuum of the old row versions (VACUUM ANALYZE at autovacuum's pace)", '... and shown');
my $log_at = -s $node->logfile;
$node->safe_psql('postgres', 'ALTER TABLE av4 ADD COLUMN c int');
pass('a statement that needs a lock the vacuum holds ran');
is($node->safe_psql('postgres', "SELECT migrate_backfill_wait($av4)"), 'completed', 'the job completed');
is($node->safe_psql('postgres', "SELECT vacuumed_at IS NULL AND waiting_for IS NULL FROM safe_migrate.backfills
		WHERE id = $av4"),
	't', '... without its vacuum');
like(slurp_file($node->logfile, $log_at),
	qr/backfill job $av4 left the vacuum of public.av4 to autovacuum: a session waited for a lock the vacuum held/,
	'... and said so');

# A cancel stops the vacuum at once (a job's vacuum can take minutes on a
# large table): the job ends cancelled, without it.
$node->safe_psql('postgres', q{UPDATE av4 SET b = NULL; VACUUM av4});
my $av5 = $node->safe_psql('postgres', q{SELECT migrate_backfill('av4', 'b = a')});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE application_name = 'safe_migrate backfill' AND query LIKE '%VACUUM%av4%'}),
	'another job\'s vacuum: seen running');
$log_at = -s $node->logfile;
$node->safe_psql('postgres', "SELECT migrate_backfill_cancel($av5)");
ok($node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'safe_migrate backfill')"),
	'a cancel during the vacuum: the worker is gone');
is($node->safe_psql('postgres', "SELECT status || ':' || (vacuumed_at IS NULL) FROM safe_migrate.backfills
		WHERE id = $av5"),
	'cancelled:true', '... the job cancelled, not vacuumed');
like(slurp_file($node->logfile, $log_at),
	qr/backfill job $av5 left the vacuum of public.av4 to autovacuum: the job was paused or cancelled/,
	'... and the log says why');
$av_load->kill_kill;
$av_load->finish;
$node->safe_psql('postgres', q{ALTER SYSTEM RESET autovacuum_naptime; ALTER SYSTEM RESET deadlock_timeout;
	SELECT pg_reload_conf()});

# ---- sessions waiting on the job's locks
# Each batch runs the table owner's statement trigger, which takes an
# advisory lock for the batch's transaction and holds it 0.3 s; another
# session takes the same lock in a loop (one transaction each), so it waits
# on the worker's transaction during most batches.  The worker finds it
# (the status array, then pg_blocking_pids() of the waiting session), cuts
# its duty cycle and says why.  A session waiting on another lock, not the
# job's, does not count.
$node->safe_psql('postgres', q{
	CREATE TABLE lw (id int PRIMARY KEY, a int NOT NULL, b int);
	INSERT INTO lw SELECT g, g, NULL FROM generate_series(1, 20000) g;
	CREATE FUNCTION lw_hold() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_advisory_xact_lock(4242);
		PERFORM pg_catalog.pg_sleep(0.3);
		RETURN NULL;
	END $$;
	CREATE TRIGGER lw_hold AFTER UPDATE ON lw FOR EACH STATEMENT EXECUTE FUNCTION lw_hold();
});
# first a session waiting on a lock the job does not hold: no cut for it
my $other_holder = $node->background_psql('postgres');
$other_holder->query_safe('BEGIN; SELECT pg_advisory_xact_lock(777)');
my $other_waiter = $node->background_psql('postgres');
$other_waiter->query_until(qr/waiting/, "\\echo waiting\nSELECT pg_advisory_lock(777);\n");
my $lw_job = $node->safe_psql('postgres', q{SELECT migrate_backfill('lw', 'b = a', batch_size => 1000)});
my $lw_seen = '';
for (my $i = 0; $i < 50; $i++)
{
	$lw_seen = $node->safe_psql('postgres',
		"SELECT batches >= 3 FROM safe_migrate.backfills WHERE id = $lw_job");
	last if $lw_seen eq 't';
	sleep 0.2;
}
is($lw_seen, 't', 'lock waiters: the job ran three batches');
is($node->safe_psql('postgres',
		"SELECT coalesce(throttled_by, '') FROM safe_migrate.backfills WHERE id = $lw_job") ne 'lock waiters',
	1, '... not held back by a session that waits on a lock that is not the job\'s');
$other_holder->query_safe('COMMIT');
$other_holder->quit;
$other_waiter->quit;

# now one that waits on the job's batches
my ($w_in, $w_out, $w_err) = ('', '', '');
my $waiter = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c',
	  q{DO $$ BEGIN FOR i IN 1..600 LOOP
			PERFORM pg_catalog.pg_advisory_xact_lock(4242); COMMIT;
			PERFORM pg_catalog.pg_sleep(0.05);
		END LOOP; END $$} ],
	\$w_in, \$w_out, \$w_err);
$lw_seen = '';
for (my $i = 0; $i < 300; $i++)
{
	$lw_seen = $node->safe_psql('postgres',
		"SELECT coalesce(throttled_by, '') || ' ' || (duty < 1) FROM safe_migrate.backfills WHERE id = $lw_job");
	last if $lw_seen eq 'lock waiters true';
	sleep 0.1;
}
is($lw_seen, 'lock waiters true', 'a session waiting on the batch\'s lock cut the duty cycle, shown as lock waiters');
$node->safe_psql('postgres', "SELECT migrate_backfill_cancel($lw_job)");
$waiter->kill_kill;
$waiter->finish;

# ---- the counters are aggregates for monitoring roles, not for everyone
$node->safe_psql('postgres', q{
	CREATE ROLE plain LOGIN;
	CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
});
($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM safe_migrate.application_latency()',
	extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied/, 'a plain role may not read the latency counters');
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM safe_migrate.application_latency()',
		extra_params => [ '-U', 'watcher' ]),
	't', 'a member of pg_monitor may');

$node->stop;
done_testing();
