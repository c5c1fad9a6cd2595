# Copyright: safe_migrate authors
#
# A backfill never lets a replica fall further behind than its
# max_replica_lag: before each batch the worker measures, in bytes of WAL,
# how far the most lagging replica's replay is behind the primary (one that
# streams, or catches up after a reconnect: core::replica_lag_bytes),
# and waits (waiting_for says why) while it is above the limit.
#
# The standby's replay is paused, so its lag only grows; the job must stop
# making progress (still 'running', waiting_for set), although
# pg_stat_replication's replay_lag interval is stale meanwhile.  Once replay
# resumes the job completes, and the standby shows every row updated once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $N = 200_000;
my $max_lag = 1024 * 1024;

my $primary = PostgreSQL::Test::Cluster->new('bf_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'safe_migrate'\nmax_worker_processes = 32\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION safe_migrate;');
$primary->safe_psql(
	'postgres', qq{
	CREATE TABLE wide (id bigint PRIMARY KEY, counter int NOT NULL DEFAULT 0, payload text NOT NULL)
		WITH (autovacuum_enabled = false);
	INSERT INTO wide (id, payload) SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, $N) g;
});
# Vacuumed and frozen now: an autovacuum of the fresh table after the backup
# (the first change of each page after a checkpoint logs the whole page)
# would put the standby megabytes behind before the job's first batch.
$primary->safe_psql('postgres', 'VACUUM (FREEZE, ANALYZE) wide');

# The standby streams through a slot: the primary keeps every segment it has
# not received, so however far it falls behind (the test pauses its replay;
# a reconnect on a loaded machine) it can always catch up.
$primary->safe_psql('postgres',
	"SELECT pg_create_physical_replication_slot('bf_standby', true)");
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('bf_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', "primary_slot_name = 'bf_standby'");
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT count(*) FROM wide'), $N, 'the standby has the table');
is( $primary->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
	1,
	'the standby streams');

# Pause replay on the standby.
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
isnt($standby->safe_psql('postgres', 'SELECT pg_get_wal_replay_pause_state()'),
	'not paused', 'replay on the standby is paused');
my $replay_lsn_paused = $standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()');

# Each batch rewrites ~200-byte rows: a few batches put the standby over 1MB.
my $id = $primary->safe_psql('postgres',
	"SELECT migrate_backfill('wide', 'counter = counter + 1, payload = upper(payload)', "
	  . "batch_size => 1000, max_replica_lag => $max_lag)");
like($id, qr/^\d+$/, 'migrate_backfill returns a job id');

ok( $primary->poll_query_until(
		'postgres',
		"SELECT waiting_for IS NOT NULL OR status NOT IN ('queued', 'running') FROM safe_migrate.backfills WHERE id = $id"
	),
	'the job starts waiting for the replica');

sub job_value
{
	my ($expr) = @_;
	return $primary->safe_psql('postgres',
		"SELECT $expr FROM safe_migrate.backfills WHERE id = $id");
}

# Poll $sql on the primary for up to $secs seconds (a failure here must not
# cost the default timeout).
sub poll_for
{
	my ($sql, $secs) = @_;
	for (my $i = 0; $i < $secs * 10; $i++)
	{
		return 1 if $primary->safe_psql('postgres', $sql) eq 't';
		usleep(100_000);
	}
	return 0;
}

my $first_wait = job_value('waiting_for');
is(job_value('status'), 'running', 'the waiting job is still running');
my $done1 = job_value('rows_done');
my $batches1 = job_value('batches');
cmp_ok($done1, '>', 0, "some batches ran before the lag grew ($done1 rows in $batches1 batches)");
cmp_ok($done1, '<', $N, 'the job has not finished');

# It stopped at its first check above the limit: the standby fell behind by
# the limit plus about a batch, not by a large part of the table.  (1MB is
# a few thousand of these rows; the first batches are 1000, 2000, 4000.)
my ($first_lag) = ($first_wait // '') =~ /(\d+)/;
cmp_ok($first_lag // 0, '<', 8 * $max_lag,
	"when the job started waiting the standby was less than 8MB behind ('$first_wait')");
cmp_ok($done1, '<=', 15_000, "the job did at most a few batches before it waited ($done1 rows)");

# Progress stops while the replica is behind.
sleep 2;
my $done2 = job_value('rows_done');
my $batches2 = job_value('batches');
sleep 2;
my $done3 = job_value('rows_done');
is($done2, $done1, 'no rows done while the replica is behind (after 2 s)');
is($done3, $done1, 'no rows done while the replica is behind (after 4 s)');
is($batches2, $batches1, 'no batch ran while the replica is behind');
is(job_value('status'), 'running', 'the job is still running, not failed or paused');

# The measure: bytes between the primary's WAL position and the standby's
# replay position, whatever pg_stat_replication's (stale) replay_lag says.
my $waiting = job_value('waiting_for');
like($waiting, qr/^a replica is \d+ bytes behind$/, "waiting_for says why: '$waiting'");
my ($reported) = $waiting =~ /(\d+)/;
cmp_ok($reported, '>', $max_lag, 'the reported lag is above max_replica_lag');
is($standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()'),
	$replay_lsn_paused, 'the standby has not replayed anything meanwhile');
my $actual = $primary->safe_psql('postgres',
	    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$replay_lsn_paused')::bigint");
cmp_ok($reported, '<=', $actual,
	"the reported lag is at most the current distance to the standby's replay position ($actual)");
# everything the job wrote before waiting is in that distance, and more
# than the limit: it stopped at its first check above the limit
cmp_ok($actual, '>', $max_lag, 'the standby is really more than max_replica_lag behind');
is( $primary->safe_psql(
		'postgres',
		"SELECT replay_lsn = '$replay_lsn_paused' FROM pg_stat_replication WHERE state = 'streaming'"),
	't',
	"pg_stat_replication's replay_lsn is the standby's replay position");
note 'pg_stat_replication while paused: '
  . $primary->safe_psql('postgres',
	"SELECT coalesce(replay_lag::text, 'null') FROM pg_stat_replication");

# The lag is measured again and again (every 0.5 s): WAL written by others
# meanwhile shows up in waiting_for.
$primary->safe_psql('postgres',
	"SELECT pg_logical_emit_message(false, 'bf', repeat('x', 2 * $max_lag))");
my $lag_now = $primary->safe_psql('postgres',
	"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$replay_lsn_paused')::bigint");
# (the message's WAL size depends on record layout: only require growth)
cmp_ok($lag_now, '>', $actual, "more WAL: the standby is $lag_now bytes behind");
ok( poll_for(
		"SELECT substring(waiting_for FROM '\\d+')::bigint >= $lag_now "
		  . "FROM safe_migrate.backfills WHERE id = $id", 10),
	'the worker measures the lag again: waiting_for shows the new, larger lag')
  or diag('waiting_for: ' . job_value('waiting_for'));

# Its record of the job is kept current while it waits.
my $updated1 = job_value('updated_at');
ok( poll_for(
		"SELECT updated_at > '$updated1' FROM safe_migrate.backfills WHERE id = $id", 10),
	'updated_at advances while the job waits')
  or diag('started_at, updated_at, now: '
	  . job_value("started_at || ', ' || updated_at || ', ' || now()"));
is(job_value('rows_done'), $done1, 'still no batch ran');
is(job_value('status'), 'running', 'the job is still running');

# Resume replay: the job completes.
my $resumed_at = $primary->safe_psql('postgres', 'SELECT clock_timestamp()');
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
ok( $primary->poll_query_until(
		'postgres',
		"SELECT status IN ('completed', 'failed', 'cancelled', 'paused') FROM safe_migrate.backfills WHERE id = $id"
	),
	'the job finishes once the standby replays again');
is(job_value('status'), 'completed', 'the job completed');
is(job_value('rows_done'), $N, 'rows_done is the row count');
is(job_value('waiting_for IS NULL'), 't', 'waiting_for is cleared');
is(job_value("finished_at > '$resumed_at'"), 't',
	'finished_at is after replay resumed (the job could not finish before)')
  or diag('started_at, updated_at, finished_at: '
	  . job_value("started_at || ', ' || updated_at || ', ' || finished_at"));
is($primary->safe_psql('postgres', 'SELECT count(*) FROM wide WHERE counter <> 1 OR payload <> upper(payload)'),
	0, 'every row was updated once on the primary');

$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT count(*) FROM wide WHERE counter <> 1 OR payload <> upper(payload)'),
	0, 'the standby shows every row updated');
is( $standby->safe_psql('postgres', 'SELECT md5(string_agg(id || payload || counter, \',\' ORDER BY id)) FROM wide'),
	$primary->safe_psql('postgres', 'SELECT md5(string_agg(id || payload || counter, \',\' ORDER BY id)) FROM wide'),
	'the standby has the same rows as the primary');
is( $standby->safe_psql('postgres', "SELECT status || ' ' || rows_done FROM safe_migrate.backfills WHERE id = $id"),
	"completed $N", 'the standby shows the job completed');

$standby->stop;
$primary->stop;
done_testing();
