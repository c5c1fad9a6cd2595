# Copyright: safe_migrate authors
#
# Online execution (issue 13) on a real server:
#  A. the seed's change written naively (add full_name, one UPDATE of every
#     row, SET NOT NULL, CREATE INDEX) with "-- safe_migrate:online", while
#     the application updates rows of the same table: every one of the
#     application's writes is there afterwards (its counter sums to the
#     transactions pgbench ran), every row has its full_name, the column is
#     NOT NULL, the index valid, nothing of the machinery left behind, and
#     the UPDATE ran as a backfill job;
#  B. a crash (kill -9 of the runner) while the migration waits for its
#     backfill: applied again, the migration continues after its last
#     committed step (the job is not submitted twice) and completes.
#  C. ADD COLUMN ... NOT NULL DEFAULT gen_random_uuid() written naively
#     with "-- safe_migrate:online" on a table of 100k rows while the
#     application inserts and updates rows: afterwards every row, old and
#     new, has its own value, every inserted row and every update is there,
#     the column is NOT NULL with its default, no helper constraint is left,
#     and the existing rows were filled by one backfill job.
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

my $node = start_node('online');
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->restart;
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	SET safe_migrate.policy = off;
	CREATE TABLE a_users (id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL,
	                      hits int NOT NULL DEFAULT 0);
	INSERT INTO a_users SELECT g, 'first' || g, 'last' || g FROM generate_series(1, 200000) g;
	CREATE TABLE b_users (LIKE a_users INCLUDING ALL);
	INSERT INTO b_users SELECT g, 'first' || g, 'last' || g FROM generate_series(1, 1000000) g;
	VACUUM ANALYZE;
});

sub q1 { return $node->safe_psql('postgres', $_[0]) }

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

sub check_result
{
	my ($table, $rows, $what) = @_;
	is( q1( "SELECT count(*) FILTER (WHERE full_name = first_name || ' ' || last_name), count(*) FROM $table"),
		"$rows|$rows", "$what: every row has its full_name");
	is( q1( "SELECT attnotnull FROM pg_attribute WHERE attrelid = '$table'::regclass AND attname = 'full_name'"),
		't', "$what: full_name is NOT NULL");
	is( q1( "SELECT indisvalid FROM pg_index WHERE indexrelid = '${table}_full_name'::regclass"),
		't', "$what: the index is valid");
	is( q1( "SELECT count(*) FROM pg_constraint WHERE conrelid = '$table'::regclass AND contype = 'c'"),
		'0', "$what: no helper constraint left");
	is( q1(
			"SELECT count(*) FROM safe_migrate.backfills WHERE relation = 'public.$table' AND status = 'completed' "
			  . "AND operation = 'update'"),
		'1', "$what: the UPDATE ran as one backfill job");
	# its vacuum: not the job's own (it would have held the table against
	# the next steps) but one job queued by the last step, after the fill
	is( q1(
			"SELECT j.vacuum, v.id > j.id FROM safe_migrate.backfill_jobs j, safe_migrate.backfill_jobs v "
			  . "WHERE j.relation = 'public.$table' AND j.operation = 'update' "
			  . "AND v.relation = 'public.$table' AND v.operation = 'vacuum'"),
		'f|t', "$what: the fill did not vacuum; one vacuum job came after it");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT status = 'completed' AND vacuumed_at IS NOT NULL FROM safe_migrate.backfills "
			  . "WHERE relation = 'public.$table' AND operation = 'vacuum'"),
		"$what: the vacuum job vacuumed the table");
}

# ---- A. with the application writing
my $pgbench = $node->installed_command('pgbench');
my $fg = $node->basedir . '/fg.sql';
open(my $fh, '>', $fg) or die;
print $fh "\\set id random(1, 200000)\nUPDATE a_users SET hits = hits + 1 WHERE id = :id;\n";
close($fh);
my ($pb_out, $pb_err) = ('', '');
my $load = IPC::Run::start(
	[ $pgbench, '-n', '-c', '2', '-j', '2', '-R', '100', '-T', '15', '-f', $fg, $node->connstr('postgres') ],
	'>', \$pb_out, '2>', \$pb_err);
sleep 1;
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT status FROM migrate_apply(\$m\$" . script_for('a_users') . "\$m\$, 'online-a')");
is($out, 'applied', 'A: the online migration is applied while the application writes') or diag($err);
$load->finish;
my ($processed) = $pb_out =~ /number of transactions actually processed: (\d+)/;
ok(defined $processed && $processed > 0, 'A: the application ran') or diag($pb_out . $pb_err);
is(q1('SELECT sum(hits) FROM a_users'), $processed, "A: every one of the application's writes is there");
check_result('a_users', 200000, 'A');
is(q1("SELECT statements FROM safe_migrate.migrations WHERE version = 'online-a'"),
	'9', 'A: the history counts the statements that ran (the expanded script: 9)');

# ---- B. a crash while waiting for the backfill, then applied again
my $psql = $node->installed_command('psql');
my ($a_out, $a_err) = ('', '');
my $apply = IPC::Run::start(
	[
		$psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres'),
		'-c', "SELECT status FROM migrate_apply(\$m\$" . script_for('b_users') . "\$m\$, 'online-b')"
	],
	'>', \$a_out, '2>', \$a_err);
# hold the job back so that the runner is met waiting for it
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM safe_migrate.backfills WHERE relation = 'public.b_users' AND "
		  . "migrate_backfill_pause(id) = 'paused'"),
	'B: the backfill job was submitted (and is paused by the test)');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner' "
		  . "AND query LIKE '%migrate_backfill_wait%'"),
	'B: the runner waits for the backfill in a step of its own');
my $runner = q1("SELECT pid FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'");
my $log_offset = -s $node->logfile;
kill 'KILL', $runner;
$apply->finish;
ok($a_err =~ /terminat|crash|connection|lost/i, 'B: the first apply ended with the crash') or diag($a_err);
wait_after_kill($node, $log_offset) or die 'the server did not come back';
is(q1("SELECT count(*) FROM b_users WHERE full_name IS NOT NULL") < 1000000 ? 'partial' : 'done',
	'partial', 'B: the backfill had not finished');
q1("SELECT migrate_backfill_resume(id) FROM safe_migrate.backfills WHERE relation = 'public.b_users'");
($rc, $out, $err) = $node->psql('postgres',
	"SELECT status FROM migrate_apply(\$m\$" . script_for('b_users') . "\$m\$, 'online-b')");
is($out, 'applied', 'B: applied again, the migration completes') or diag($err);
check_result('b_users', 1000000, 'B');
is( q1(
		"SELECT count(*) FILTER (WHERE operation = 'update'), count(*) FILTER (WHERE operation = 'vacuum') "
		  . "FROM safe_migrate.backfills WHERE relation = 'public.b_users'"),
	'1|1', 'B: the backfill job was not submitted again (and the vacuum job once)');

# ---- C. a volatile default, NOT NULL, while the application inserts and updates
q1(q{
	SET safe_migrate.policy = off;
	CREATE TABLE c_users (id bigint PRIMARY KEY, name text NOT NULL, hits int NOT NULL DEFAULT 0);
	INSERT INTO c_users SELECT g, 'user' || g FROM generate_series(1, 100000) g;
	CREATE SEQUENCE c_ids START 1000001;
	VACUUM ANALYZE c_users;
});
my $fc = $node->basedir . '/fc.sql';
open($fh, '>', $fc) or die;
print $fh "\\set id random(1, 100000)\n"
  . "UPDATE c_users SET hits = hits + 1 WHERE id = :id;\n"
  . "INSERT INTO c_users (id, name) VALUES (nextval('c_ids'), 'new');\n";
close($fh);
($pb_out, $pb_err) = ('', '');
$load = IPC::Run::start(
	[ $pgbench, '-n', '-c', '2', '-j', '2', '-R', '100', '-T', '15', '-f', $fc, $node->connstr('postgres') ],
	'>', \$pb_out, '2>', \$pb_err);
sleep 1;
my $script_c = <<'EOS';
-- safe_migrate:online
ALTER TABLE c_users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();
EOS
($rc, $out, $err) =
  $node->psql('postgres', "SELECT status FROM migrate_apply(\$m\$$script_c\$m\$, 'online-c')");
is($out, 'applied', 'C: the online ADD COLUMN is applied while the application writes') or diag($err);
$load->finish;
($processed) = $pb_out =~ /number of transactions actually processed: (\d+)/;
ok(defined $processed && $processed > 0, 'C: the application ran') or diag($pb_out . $pb_err);
is( q1("SELECT count(*) FILTER (WHERE id <= 100000), count(*) FILTER (WHERE id > 100000), sum(hits) FROM c_users"),
	"100000|$processed|$processed", "C: every row inserted and every update of the application is there");
is( q1("SELECT count(*) FILTER (WHERE token IS NULL), count(DISTINCT token) = count(*) FROM c_users"),
	'0|t', 'C: every row, old and new, has its own token');
is( q1(
		"SELECT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
		  . "JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
		  . "WHERE a.attrelid = 'c_users'::regclass AND a.attname = 'token'"),
	't|gen_random_uuid()', 'C: token is NOT NULL, with its default');
is(q1("SELECT count(*) FROM pg_constraint WHERE conrelid = 'c_users'::regclass AND contype = 'c'"),
	'0', 'C: no helper constraint left');
is( q1(
		"SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FROM safe_migrate.backfills "
		  . "WHERE relation = 'public.c_users' AND operation = 'update'"),
	'1|1', 'C: the existing rows were filled by one backfill job');
is(q1("SELECT statements FROM safe_migrate.migrations WHERE version = 'online-c'"),
	'9', 'C: the history counts the expanded script (9 statements)');

$node->stop;
done_testing();
