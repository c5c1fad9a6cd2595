# Copyright: safe_migrate authors
#
# Waiting for a backfill without holding a snapshot.
#  - A top-level "SELECT migrate_backfill_wait(...)" gives up its xmin while
#    it sleeps (pg_stat_activity.backend_xmin is NULL but in the instant of
#    each look at its job, ten a second): a snapshot held for a
#    whole backfill would keep every row version the backfill replaces.
#    Subqueries in its arguments do not change that (they ran before).
#  - Control: a query that still reads a table after the call keeps its xmin.
#  - In a migration, the wait statement runs in a transaction of its own in
#    the runner, which gives up its xmin, and so does the caller of
#    migrate_apply; the statements after it still run and are recorded.
#  - A failure after the wait says the wait's step was committed apart.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = start_node('bf_wait');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE t (id int PRIMARY KEY, v int);
	INSERT INTO t SELECT g, NULL FROM generate_series(1, 5000) g;
});

# a job that is paused from the start (submitted and paused in one
# transaction, so no batch runs before the test resumes it)
sub paused_job
{
	my ($set) = @_;
	return $node->safe_psql(
		'postgres', qq{
		BEGIN;
		SELECT migrate_backfill('t', '$set', NULL, 100) AS id \\gset
		SELECT migrate_backfill_pause(:id) \\g /dev/null
		COMMIT;
		SELECT :id;});
}

sub start_psql
{
	my (@commands) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  map { ('-c', $_) } @commands ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return { h => $h, out => \$out, err => \$err };
}

sub finish_psql
{
	my ($p, $name) = @_;
	$p->{h}->finish;
	is($p->{h}->result(0), 0, "$name: exits cleanly") or diag(${ $p->{err} });
	chomp(my $out = ${ $p->{out} });
	return $out;
}

# How many of ten looks, 200 ms apart, find the one session whose query
# matches $like holding an xmin, once it is seen waiting there.  A waiter
# takes a fresh snapshot for each look at its job (ten a second) and gives
# it up again before it sleeps, so a look can catch it in the middle of one:
# a waiter that gives up its xmin is seen holding one in few looks, one that
# keeps it in all ten.
sub xmin_looks
{
	my ($like, $type) = @_;
	$type //= 'client backend';
	my $where = qq{backend_type = '$type' AND state = 'active' AND query LIKE '$like'
		   AND pid <> pg_backend_pid()};
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE $where")
	  or die "no session runs $like";
	# the first look happens right at the start; let it settle
	sleep 1;
	my $held = 0;
	for (1 .. 10)
	{
		$held++
		  if $node->safe_psql('postgres',
			"SELECT backend_xmin IS NOT NULL FROM pg_stat_activity WHERE $where") eq 't';
		usleep(200_000);
	}
	return $held;
}

# 1: a plain wait, with a subquery in its arguments
my $id1 = paused_job('v = 1');
my $w1 = start_psql(
	"SELECT migrate_backfill_wait((SELECT max(id) FROM safe_migrate.backfills), '5 min')");
cmp_ok(xmin_looks('SELECT migrate_backfill_wait(%'), '<=', 3,
	'a top-level wait holds no xmin while it sleeps');

# 2: control: the query reads t after the call, so it keeps its snapshot
my $w2 = start_psql(
	"SELECT migrate_backfill_wait($id1, '5 min') AS status, (SELECT count(*) FROM t) AS n");
is(xmin_looks("SELECT migrate_backfill_wait($id1, %"), 10,
	'a wait in a query that reads a table afterwards keeps its xmin');

$node->safe_psql('postgres', "SELECT migrate_backfill_resume($id1)");
is(finish_psql($w1, 'plain wait'), 'completed', 'the plain wait returns completed');
is(finish_psql($w2, 'control'), 'completed|5000', 'the control returns completed');

# 2b: the job's id from an aggregate, the form online execution writes
# ("SELECT migrate_backfill_wait(max(id)) FROM safe_migrate.backfills WHERE
# ..."): the aggregate has read everything before the call, so it gives up
# its xmin too (it did not: an online migration's runner kept one xmin for
# its whole backfill).  Control: the call made for each row of a scan, with
# the scan still going, keeps it.
my $id1b = paused_job('v = 11');
my $w3 = start_psql(
	"SELECT migrate_backfill_wait(max(id), '5 min') FROM safe_migrate.backfills "
	  . "WHERE relation = 'public.t' AND submitted_by = current_user");
cmp_ok(xmin_looks('SELECT migrate_backfill_wait(max(id)%'), '<=', 3,
	'a wait on an aggregate of the jobs holds no xmin while it sleeps');
my $w4 = start_psql(
	"SELECT migrate_backfill_wait(id, '5 min') FROM safe_migrate.backfills WHERE id = $id1b");
is(xmin_looks('SELECT migrate_backfill_wait(id,%'), 10,
	'a wait called for each row of a scan keeps its xmin');
$node->safe_psql('postgres', "SELECT migrate_backfill_resume($id1b)");
is(finish_psql($w3, 'aggregate wait'), 'completed', 'the aggregate wait returns completed');
is(finish_psql($w4, 'per-row wait'), 'completed', 'the per-row wait returns completed');

# 3: a migration that waits, then adds the constraint
my $id2 = paused_job('v = 2');
my $apply = start_psql(
	"SELECT status FROM migrate_apply(\$m\$SELECT migrate_backfill_wait($id2, '5 min');
ALTER TABLE t ADD CONSTRAINT t_v_2 CHECK (v = 2) NOT VALID;\$m\$, 'wait-1')");
cmp_ok(xmin_looks('SELECT migrate_backfill_wait(%', 'safe_migrate runner'),
	'<=', 3, 'in a migration, the runner waits without an xmin');
cmp_ok(xmin_looks('SELECT status FROM migrate_apply(%'), '<=', 3, 'and so does its caller');
$node->safe_psql('postgres', "SELECT migrate_backfill_resume($id2)");
is(finish_psql($apply, 'migration'), 'applied', 'the migration is applied after the backfill');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE v = 2), count(*) FROM t}),
	'5000|5000', 'every row was backfilled before the constraint was added');
is( $node->safe_psql('postgres',
		q{SELECT statements FROM safe_migrate.history WHERE version = 'wait-1'}),
	'2', 'history counts both statements');

# 4: the wait is a step of its own: a failure after it names that step
my ($stdout, $stderr);
$node->psql(
	'postgres',
	"\\set VERBOSITY verbose\nSELECT status FROM migrate_apply(\$m\$SELECT migrate_backfill_wait($id2);
SELECT 1 / 0;\$m\$, 'wait-2')",
	stdout => \$stdout,
	stderr => \$stderr);
like($stderr, qr/division by zero/, 'the failing statement fails');
like($stderr, qr/Statements 1 to 1 of the migration were committed before the failure/,
	'the wait ran as a step of its own');

$node->stop;
done_testing();
