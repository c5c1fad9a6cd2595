# Copyright: safe_migrate authors
#
# Online CREATE INDEX on a partitioned table (issue 13, item 1) interrupted
# at each DDL statement of its expansion: the index ON ONLY the parent, then
# for each partition its index built concurrently and attached (a
# sub-partitioned partition gets an ON ONLY index of its own, its partitions'
# attached to it, and it attached to the parent's).  The runner is held at
# each statement in turn (the gate of SafeMigrateTest) and interrupted there
# by a crash (kill -9: the server restarts), its termination or a cancel of
# the caller; a table owner who is not an admin applies it, and applied
# again the migration completes: the parent's index valid (every partition's
# attached), each leaf partition with exactly one index on the column, valid,
# none left invalid or unattached, one applied migration in the history.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_crash_node('online_pidx');
sub q1 { return $node->safe_psql('postgres', $_[0]) }

q1(q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE owner LOGIN;
	GRANT CREATE ON DATABASE postgres TO owner;
});
install_gate($node, 'owner');

# m: partitions a and b (b partitioned again: b0, b1), 30,000 rows
sub setup
{
	my ($s) = @_;
	as_role(
		$node, 'owner', qq{
		CREATE SCHEMA $s;
		SET search_path = $s;
		CREATE TABLE m (id bigint NOT NULL, v int NOT NULL) PARTITION BY RANGE (id);
		CREATE TABLE m_a PARTITION OF m FOR VALUES FROM (0) TO (10000);
		CREATE TABLE m_b PARTITION OF m FOR VALUES FROM (10000) TO (30000) PARTITION BY RANGE (id);
		CREATE TABLE m_b0 PARTITION OF m_b FOR VALUES FROM (10000) TO (20000);
		CREATE TABLE m_b1 PARTITION OF m_b FOR VALUES FROM (20000) TO (30000);
		INSERT INTO m SELECT g, g % 97 FROM generate_series(0, 29999) g;
		ANALYZE m;
	});
	q1("ALTER ROLE owner SET search_path = $s, public");
}
my $script = "-- safe_migrate:online\nCREATE INDEX m_v ON m (v);\n";
sub apply_sql { return "SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$_[0]')" }

setup('probe');
my @plan = split /\n/, as_role($node, 'owner', "SELECT sql FROM migrate_plan(\$m\$$script\$m\$) ORDER BY statement");
is( join(' | ', @plan),
	'CREATE INDEX m_v ON ONLY m (v) | '
	  . 'CREATE INDEX CONCURRENTLY m_a_v_idx ON probe.m_a (v) | '
	  . 'ALTER INDEX probe.m_v ATTACH PARTITION probe.m_a_v_idx | '
	  . 'CREATE INDEX m_b_v_idx ON ONLY probe.m_b (v) | '
	  . 'CREATE INDEX CONCURRENTLY m_b0_v_idx ON probe.m_b0 (v) | '
	  . 'ALTER INDEX probe.m_b_v_idx ATTACH PARTITION probe.m_b0_v_idx | '
	  . 'CREATE INDEX CONCURRENTLY m_b1_v_idx ON probe.m_b1 (v) | '
	  . 'ALTER INDEX probe.m_b_v_idx ATTACH PARTITION probe.m_b1_v_idx | '
	  . 'ALTER INDEX probe.m_v ATTACH PARTITION probe.m_b_v_idx',
	'the expansion: every statement is DDL the gate counts');

my @modes = ('kill -9 of the runner', 'termination of the runner', 'cancel of the caller');
my $psql = $node->installed_command('psql');
my @schemas;
for my $k (1 .. scalar(@plan))
{
	# each statement by a mode in turn, the concurrent builds by all three
	my @these = $plan[ $k - 1 ] =~ /CONCURRENTLY/ ? @modes : ($modes[ ($k - 1) % 3 ]);
	foreach my $mode (@these)
	{
		my $s = 's' . (scalar(@schemas) + 1);
		push @schemas, $s;
		(my $short = $plan[ $k - 1 ]) =~ s/^(\S+ \S+ \S+ \S+).*/$1/;
		my $label = "$s: stopped at statement $k ($short) by $mode";
		setup($s);
		hold_runner_at($node, $k);
		my ($out, $err) = ('', '');
		my $apply = IPC::Run::start(
			[ $psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres') . ' user=owner', '-c',
			  apply_sql("pidx-$s") ],
			'>', \$out, '2>', \$err);
		ok(runner_held($node), "$label: the runner reached the gate");
		ok(interrupt_runner($node, $mode, "%migrate_apply%pidx-$s%"), "$label: no runner left");
		$apply->finish;
		chomp $out;
		isnt($out, 'applied', "$label: the first apply did not complete");

		my ($rc, $again, $again_err) = try_as_role($node, 'owner', apply_sql("pidx-$s"));
		is($again, 'applied', "$label: applied again, the migration completes") or diag($again_err);
		# every leaf's index on v: one each, valid, attached (up to m_v)
		is( q1(
				"SELECT string_agg(c.relname || ':' || (SELECT count(*) FROM pg_index i "
				  . "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
				  . "WHERE i.indrelid = c.oid AND a.attname = 'v') || ':' || (SELECT bool_and(i.indisvalid) "
				  . "FROM pg_index i WHERE i.indrelid = c.oid), ',' ORDER BY c.relname) "
				  . "FROM pg_class c WHERE c.relnamespace = '$s'::regnamespace AND c.relkind IN ('r', 'p')"),
			'm:1:true,m_a:1:true,m_b:1:true,m_b0:1:true,m_b1:1:true',
			"$label: one valid index on v for the table and each partition");
		is( q1(
				"SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
				  . "WHERE c.relnamespace = '$s'::regnamespace AND c.relkind IN ('i', 'I')"),
			'4', "$label: every partition's index attached");
		is( q1(
				"SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
				  . "WHERE c.relnamespace = '$s'::regnamespace AND NOT i.indisvalid"),
			'0', "$label: no invalid index left");
		is( q1(
				"SELECT count(*) FILTER (WHERE status = 'applied') || ',' || "
				  . "bool_and(steps_committed = steps) FILTER (WHERE status = 'applied') "
				  . "FROM safe_migrate.migrations WHERE version = 'pidx-$s'"),
			'1,true', "$label: one applied attempt, every step committed");
	}
}

# the index is used: the planner takes the parent's for a query on m
is( q1(
		"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT count(*) FROM s1.m WHERE v = 5"
	) =~ /Index Only Scan using m_a_v_idx|Bitmap Index Scan on m_a_v_idx|Index Scan using m_a_v_idx/ ? 1 : 0,
	1, 'the partitions\' indexes serve queries on the table');

$node->stop;
done_testing();
