# Copyright: safe_migrate authors
#
# migrate_vacuum: a job with no batches, only the vacuum (what online
# execution queues with the last step of a migration whose jobs it ran with
# vacuum => false).
#  - It waits for the snapshots older than its queueing: a transaction that
#    holds one keeps it waiting (waiting_for says so, the table is not
#    vacuumed); once it ends, the job vacuums (vacuumed_at, the dead rows
#    gone, vacuum_count up).
#  - A snapshot taken after the queueing does not hold it back (the horizon
#    is the queueing's, not the job's start).
#  - The table dropped while it waits: the job ends, saying so, vacuumed_at
#    null (no wait to its 60 s limit).
#  - As the submitter: a role that owns the table queues it; one that may
#    only update it cannot.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;
use IPC::Run;

my $node = start_node('vacuum_job');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE vj_owner LOGIN;
	CREATE ROLE vj_writer LOGIN;
	CREATE TABLE vj (id int PRIMARY KEY, v int);
	ALTER TABLE vj OWNER TO vj_owner;
	ALTER TABLE vj SET (autovacuum_enabled = off);
	INSERT INTO vj SELECT g, 0 FROM generate_series(1, 20000) g;
	GRANT SELECT, UPDATE ON vj TO vj_writer;
	VACUUM vj;
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# A session that takes a snapshot and keeps it for $seconds (a repeatable
# read transaction asleep), seen asleep before this returns; end_hold ends
# it.
sub hold_snapshot
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  '-c', "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class; "
		  . "SELECT pg_sleep($seconds) /* vj holder */; COMMIT;" ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%vj holder%' AND backend_xmin IS NOT NULL "
		  . "AND pid <> pg_backend_pid()")
	  or die 'the snapshot holder did not start';
	return $h;
}

sub end_hold
{
	my ($h) = @_;
	q1("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%vj holder%' "
		  . "AND pid <> pg_backend_pid()");
	$h->finish;
}

# ---- 1. an older snapshot holds it back until it ends (one taken before
# the UPDATE whose dead rows the vacuum is for)
my $old = hold_snapshot(600);
q1('UPDATE vj SET v = v + 1');
$node->poll_query_until('postgres',
	"SELECT n_dead_tup >= 20000 FROM pg_stat_user_tables WHERE relname = 'vj'")
  or die 'the dead rows never reached the statistics';
my $job = $node->safe_psql('postgres', q{SET ROLE vj_owner; SELECT migrate_vacuum('vj')});
ok( $node->poll_query_until(
		'postgres',
		"SELECT waiting_for LIKE 'snapshots older than the job%' FROM safe_migrate.backfills WHERE id = $job"),
	'1: the job waits for the older snapshot');
sleep 1;
is(q1("SELECT status, vacuumed_at IS NULL FROM safe_migrate.backfills WHERE id = $job"),
	'running|t', '1: meanwhile it has not vacuumed');

# a session that waits for the job in a statement keeping its own, newer,
# snapshot (a call for each row of a scan) does not hold it back
my ($w_out, $w_err) = ('', '');
my $waiter = IPC::Run::start(
	[ 'psql', '-X', '-q', '-At', '-d', $node->connstr('postgres'),
	  '-c', "SELECT migrate_backfill_wait(id, '2 minutes') FROM safe_migrate.backfills WHERE id = $job" ],
	'>', \$w_out, '2>', \$w_err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));

end_hold($old);
ok( $node->poll_query_until(
		'postgres', "SELECT status = 'completed' FROM safe_migrate.backfills WHERE id = $job"),
	'1: the older snapshot gone, the job completes (a waiter with a newer snapshot does not hold it)');
is( q1(
		"SELECT vacuumed_at IS NOT NULL, last_error IS NULL, operation, submitted_by "
		  . "FROM safe_migrate.backfills WHERE id = $job"),
	't|t|vacuum|vj_owner', '1: it vacuumed, as its submitter');
$waiter->finish;
is($w_out, "completed\n", '1: the waiter saw it completed') or diag($w_err);
ok($node->poll_query_until('postgres', "SELECT n_dead_tup = 0 FROM pg_stat_user_tables WHERE relname = 'vj'"),
	'1: the dead rows are gone');
is(q1("SELECT vacuum_count > 0 AND analyze_count > 0 FROM pg_stat_user_tables WHERE relname = 'vj'"),
	't', '1: VACUUM (ANALYZE) ran (autovacuum is off for the table)');

# ---- 2. the table dropped while the job waits
$node->safe_psql(
	'postgres', q{
	CREATE TABLE vj_gone (id int PRIMARY KEY);
	ALTER TABLE vj_gone OWNER TO vj_owner;
});
$old = hold_snapshot(600);
q1('INSERT INTO vj_gone VALUES (1)');    # a transaction after the snapshot
$job = $node->safe_psql('postgres', q{SET ROLE vj_owner; SELECT migrate_vacuum('vj_gone')});
ok( $node->poll_query_until(
		'postgres',
		"SELECT waiting_for LIKE 'snapshots older than the job%' FROM safe_migrate.backfills WHERE id = $job"),
	'2: the job waits for the older snapshot');
$node->safe_psql('postgres', 'SET safe_migrate.policy = off; DROP TABLE vj_gone');
my $t0 = time;
ok( $node->poll_query_until(
		'postgres', "SELECT status = 'completed' FROM safe_migrate.backfills WHERE id = $job"),
	'2: the table dropped, the job ends');
ok(time - $t0 < 30, '2: without waiting to its limit');
is( q1("SELECT vacuumed_at IS NULL, last_error FROM safe_migrate.backfills WHERE id = $job"),
	't|the table no longer exists', '2: it says why it did not vacuum');
end_hold($old);

# ---- 3. who may queue it
my ($rc, $out, $err) = $node->psql('postgres', q{SET ROLE vj_writer; SELECT migrate_vacuum('vj')});
ok($rc != 0 && $err =~ /must be owner of table vj/, '3: a role that may only update the table cannot')
  or diag($err);

$node->stop;
done_testing();
