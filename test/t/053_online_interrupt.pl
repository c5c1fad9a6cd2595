# Copyright: safe_migrate authors
#
# Online execution (issue 13) interrupted at each of its steps: the seed's
# change written naively with "-- safe_migrate:online" is stopped while its
# runner is about to run each DDL statement of the expanded script (the
# column, the proving CHECK, its VALIDATE, SET NOT NULL, the index built
# concurrently), by a crash (kill -9 of the runner: the server restarts),
# by the termination of the runner, or by a cancel of the session that
# called migrate_apply.  Each time, applied again, the migration continues
# and completes, with the state the uninterrupted migration leaves: every
# row filled, NOT NULL, the index valid, no helper constraint and no invalid
# index left behind, one backfill job, one applied migration in the history.
#
# The stop is the test gate of SafeMigrateTest: a ddl_command_start event
# trigger that, in the runner only, counts DDL statements and at the chosen
# one sleeps until the test interrupts the sleeper.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_crash_node('online_interrupt');
sub q1 { return $node->safe_psql('postgres', $_[0]) }

q1('CREATE EXTENSION safe_migrate');
install_gate($node);

sub script_for
{
	my ($table) = @_;
	return <<"EOS";
-- safe_migrate:online
ALTER TABLE $table ADD COLUMN full_name text;
UPDATE $table SET full_name = first_name || ' ' || last_name;
ALTER TABLE $table ALTER COLUMN full_name SET NOT NULL;
CREATE INDEX ${table}_full_name ON $table (full_name);
EOS
}

sub apply_sql
{
	my ($table) = @_;
	return "SELECT status FROM migrate_apply(\$m\$" . script_for($table) . "\$m\$, 'int-$table')";
}

# the DDL statements of the expanded script, in order (what the gate counts)
# (number, what, how the runner's statement reads in pg_stat_activity)
my @ddl = (
	[ 1, 'ADD COLUMN',                            '%ADD COLUMN full_name%' ],
	[ 2, 'ADD CONSTRAINT ... CHECK ... NOT VALID', '%ADD CONSTRAINT%NOT VALID%' ],
	[ 3, 'VALIDATE CONSTRAINT',                   '%VALIDATE CONSTRAINT%' ],
	[ 4, 'SET NOT NULL',                          '%SET NOT NULL%' ],
	[ 5, 'DROP CONSTRAINT',                       '%DROP CONSTRAINT%' ],
	[ 6, 'CREATE INDEX CONCURRENTLY',             'CREATE INDEX CONCURRENTLY%' ]);
q1("CREATE TABLE probe (id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL)");
is( q1(
		"SELECT string_agg(sql, ' | ' ORDER BY statement) FROM migrate_plan(\$m\$"
		  . script_for('probe')
		  . "\$m\$) WHERE sql NOT LIKE 'SELECT %'"),
	'ALTER TABLE probe ADD COLUMN full_name text | '
	  . 'ALTER TABLE probe ADD CONSTRAINT probe_full_name_safe_migrate_not_null CHECK (full_name IS NOT NULL) NOT VALID | '
	  . 'ALTER TABLE probe VALIDATE CONSTRAINT probe_full_name_safe_migrate_not_null | '
	  . 'ALTER TABLE probe ALTER COLUMN full_name SET NOT NULL | '
	  . 'ALTER TABLE probe DROP CONSTRAINT probe_full_name_safe_migrate_not_null | '
	  . 'CREATE INDEX CONCURRENTLY probe_full_name ON probe (full_name)',
	'the DDL statements the gate counts, in order');

my @modes = ('kill -9 of the runner', 'termination of the runner', 'cancel of the caller');
my $psql = $node->installed_command('psql');
my $i = 0;
foreach my $d (@ddl)
{
	my ($k, $what, $running) = @$d;
	foreach my $mode (@modes)
	{
		$i++;
		my $t = "u$i";
		my $label = "stopped at $what by $mode";
		q1( "SET safe_migrate.policy = off;
			 CREATE TABLE $t (id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL);
			 INSERT INTO $t SELECT g, 'first' || g, 'last' || g FROM generate_series(1, 20000) g;
			 ANALYZE $t;");
		hold_runner_at($node, $k);
		my ($out, $err) = ('', '');
		my $apply = IPC::Run::start(
			[ $psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres'), '-c', apply_sql($t) ],
			'>', \$out, '2>', \$err);
		ok(runner_held($node, $running), "$label: the runner reached the gate");
		# the runner of a cancelled caller stops too: nothing runs it any more
		ok(interrupt_runner($node, $mode, "%migrate_apply%int-$t%"), "$label: no runner left");
		$apply->finish;
		isnt($out, 'applied', "$label: the first apply did not complete") or diag($err);

		my ($rc, $again, $again_err) = $node->psql('postgres', apply_sql($t));
		is($again, 'applied', "$label: applied again, the migration completes") or diag($again_err);
		is( q1( "SELECT count(*) FILTER (WHERE full_name = first_name || ' ' || last_name), count(*) FROM $t"),
			'20000|20000', "$label: every row has its full_name");
		is( q1(
				"SELECT a.attnotnull, i.indisvalid FROM pg_attribute a, pg_index i "
				  . "WHERE a.attrelid = '$t'::regclass AND a.attname = 'full_name' "
				  . "AND i.indexrelid = '${t}_full_name'::regclass"),
			't|t', "$label: NOT NULL, the index valid");
		is( q1(
				"SELECT (SELECT count(*) FROM pg_constraint WHERE conrelid = '$t'::regclass AND contype = 'c') "
				  . "|| ',' || (SELECT count(*) FROM pg_index WHERE indrelid = '$t'::regclass AND NOT indisvalid) "
				  . "|| ',' || (SELECT count(*) FROM pg_index WHERE indrelid = '$t'::regclass)"),
			'0,0,2', "$label: no helper constraint, no invalid index, no extra index left");
		is( q1(
				"SELECT count(*) FILTER (WHERE status = 'completed' AND operation = 'update') || ',' || "
				  . "count(*) FILTER (WHERE operation = 'update') || ',' || "
				  . "count(*) FILTER (WHERE operation = 'vacuum') "
				  . "FROM safe_migrate.backfills WHERE relation = 'public.$t'"),
			'1,1,1', "$label: one backfill job, one vacuum job queued by the last step");
		# each attempt has its row; the one that completed counts the
		# statements and steps of the attempts it continued
		is( q1(
				"SELECT count(*) FILTER (WHERE status = 'applied') || ',' || "
				  . "max(statements) FILTER (WHERE status = 'applied') || ',' || "
				  . "bool_and(steps_committed = steps) FILTER (WHERE status = 'applied') || ',' || "
				  . "count(*) FILTER (WHERE status NOT IN ('applied', 'interrupted', 'failed')) "
				  . "FROM safe_migrate.migrations WHERE version = 'int-$t'"),
			'1,9,true,0', "$label: one applied migration in the history, all its 9 statements counted");
	}
}

$node->stop;
done_testing();
