# Copyright: safe_migrate authors
#
# An eager job (eager => true: online execution's fills, which the
# migration's next step waits for), on a real server under a foreground
# load (pgbench, point UPDATE + SELECT on another table):
#  - with a budget the load never exceeds, the eager job runs at duty 1 from
#    its first batch, where a job submitted the same way without eager starts
#    at the gentle start (duty 0.25, growing back);
#  - with a budget the load's own noise exceeds, the eager job is still cut
#    (throttled_by = 'foreground latency', duty below 1): eager only changes
#    where it starts, not who decides.
# The assertions are on the controller's decisions as the view shows them,
# not on timings.
# tap: alone
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;
use Time::HiRes qw(time sleep);

my $node = start_node('eager_job');
$node->append_conf('postgresql.conf', "fsync = on\n");
$node->restart;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE big (id int PRIMARY KEY, a text NOT NULL, b text);
	INSERT INTO big SELECT g, 'x' || g, NULL FROM generate_series(1, 1000000) g;
	CREATE TABLE fg (id int PRIMARY KEY, v int NOT NULL);
	INSERT INTO fg SELECT g, 0 FROM generate_series(1, 1000) g;
	VACUUM ANALYZE;
	CHECKPOINT;
});

# longer than the test: stopped at its end
my ($pgbench) = start_point_load($node, 600);
sleep(1);

# The first looks at a running job that did a batch: [duty, throttled_by],
# every 0.1 s until $n were seen or the job is no longer running.
sub first_looks
{
	my ($job, $n) = @_;
	my @looks;
	my $deadline = time + 60;
	while (@looks < $n && time < $deadline)
	{
		my ($status, $duty, $held, $batches) = split(
			/\|/,
			$node->safe_psql('postgres',
				"SELECT status, coalesce(duty, -1), coalesce(throttled_by, ''), batches
				   FROM safe_migrate.backfills WHERE id = $job"));
		last if $status ne 'running' && $status ne 'queued';
		push @looks, [ $duty, $held ] if $status eq 'running' && $batches > 0 && $duty >= 0;
		sleep(0.1);
	}
	return @looks;
}

# ---- a budget the load never exceeds: where each starts
my $eager = $node->safe_psql('postgres',
	q{SELECT migrate_backfill('big', 'b = a', latency_budget => 10000, eager => true)});
my @e = first_looks($eager, 20);
cmp_ok(scalar(@e), '>=', 1, 'the eager job was seen running under the load') or diag(explain(\@e));
ok(!(grep { $_->[0] < 1 } @e), 'eager: duty 1 from its first batches') or diag(explain(\@e));
is($node->safe_psql('postgres', "SELECT migrate_backfill_wait($eager, '2 minutes')"),
	'completed', 'the eager job completed');

my $gentle = $node->safe_psql('postgres',
	q{SELECT migrate_backfill('big', 'b = a || ''!''', latency_budget => 10000)});
my @g = first_looks($gentle, 20);
cmp_ok(scalar(@g), '>=', 1, 'the job without eager was seen running under the load')
  or diag(explain(\@g));
# (its very first batches may come before the application is seen: duty 1
# until then)
ok((grep { $_->[0] <= 0.5 } @g), 'without eager: the gentle start (duty at most 0.5 at a first look)')
  or diag(explain(\@g));
is($node->safe_psql('postgres', "SELECT migrate_backfill_wait($gentle, '2 minutes')"),
	'completed', 'the job without eager completed');
is($node->safe_psql('postgres', "SELECT count(*) FROM big WHERE b IS DISTINCT FROM a || '!'"),
	'0', 'every row has the second job\'s value');
is($node->safe_psql('postgres',
		"SELECT string_agg(eager::text, ',' ORDER BY id) FROM safe_migrate.backfills
		  WHERE id IN ($eager, $gentle)"),
	'true,false', 'the view shows which job was eager');

# ---- a budget the load's own noise exceeds: the eager job is still cut
my $held = $node->safe_psql('postgres',
	q{SELECT migrate_backfill('big', 'b = a || ''?''', latency_budget => 0.001, eager => true)});
my @h = first_looks($held, 40);
ok((grep { $_->[1] eq 'foreground latency' } @h),
	"eager with a tiny budget: throttled_by = 'foreground latency' was shown")
  or diag(explain(\@h));
ok((grep { $_->[0] < 1 } @h), 'eager with a tiny budget: its duty cycle was cut')
  or diag(explain(\@h));
is($node->safe_psql('postgres', "SELECT migrate_backfill_cancel($held)"), 'cancelled',
	'the held job is cancelled');

$pgbench->kill_kill;
$pgbench->finish;
$node->stop;
done_testing();
