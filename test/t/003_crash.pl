
# Copyright: safe_migrate authors
#
# Crash safety: a migration interrupted by a server crash leaves no partial
# effects, and the version can be applied afterwards (exactly once).
#
# The history row follows the path the migration took:
#  - a migration whose statements all share one transaction runs in the
#    caller's backend and writes its row in that same transaction: a crash
#    rolls back the migration and its row together, so no row is left (and
#    no row says 'running' while it runs);
#  - a migration that needs a background runner (here: CREATE INDEX
#    CONCURRENTLY) commits a 'running' row first; after a crash the history
#    shows that attempt as 'interrupted'.
#
#   crash-1: immediate shutdown of the whole server while the migration runs
#   crash-2: kill -9 of only the process executing the migration's statement
#            (the postmaster then restarts every backend)
#   crash-3: as crash-2, with a script that also builds an index
#            concurrently, so it cannot run in the caller's transaction
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'safe_migrate'\nmax_worker_processes = 32\n"
	  . "restart_after_crash = on\n"
	  # A crash must not lose the record of a running migration, however
	  # late the WAL writer flushes asynchronously committed transactions;
	  # a long delay makes a record committed asynchronously (and so lost
	  # in a crash) show up every time rather than now and then.
	  . "wal_writer_delay = '10s'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION safe_migrate;');

my $psql = $node->installed_command('psql');

# Start migrate_apply(script, version) in a background psql.
sub start_migration
{
	my ($script, $version, $out, $err) = @_;
	$$out = '';
	$$err = '';
	(my $lit = $script) =~ s/'/''/g;
	return IPC::Run::start(
		[
			$psql, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'),
			'-c', "SELECT status FROM migrate_apply('$lit', '$version')"
		],
		'>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

# The statement of the migration that is sleeping, in whichever process
# (caller's backend or background runner) runs it.
my $sleeping_query =
    "FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
  . "AND query LIKE '%pg_sleep%' AND wait_event = 'PgSleep'";

sub wait_until_sleeping
{
	my ($name, $running_row) = @_;
	ok($node->poll_query_until('postgres', "SELECT count(*) > 0 $sleeping_query"),
		"$name: the migration is visibly running (in pg_sleep)");
	is( $node->safe_psql(
			'postgres',
			"SELECT string_agg(status, ',' ORDER BY id) FROM safe_migrate.history "
			  . "WHERE version = '$name'"),
		$running_row ? 'running' : '',
		$running_row
		? "$name: while it runs, the history shows the attempt as 'running'"
		: "$name: its row is not visible before it commits");
}

# The background psql must fail (its server went away), not hang.
sub check_client_failed
{
	my ($name, $h, $err) = @_;
	my $finished = eval { $h->finish; 1 };
	ok($finished, "$name: the migrating psql ended (did not hang)") or diag($@);
	isnt($h->result(0), 0, "$name: the migrating psql exited non-zero");
	note "$name: psql stderr: $$err";
}

sub table_exists
{
	my ($table) = @_;
	return $node->safe_psql('postgres', "SELECT to_regclass('$table') IS NOT NULL");
}

sub history_of
{
	my ($version) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(status, ',' ORDER BY id) FROM safe_migrate.history "
		  . "WHERE version = '$version'");
}

sub table_rows_of
{
	my ($version) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(status, ',' ORDER BY id) FROM safe_migrate.migrations "
		  . "WHERE version = '$version'");
}

# The post-crash checks and the re-application, for one version.
sub check_after_crash
{
	my ($name, $table, $runner) = @_;
	my $before = $runner ? 'interrupted,' : '';

	is(table_exists($table), 'f',
		"$name: table $table does not exist (no partial effects)");
	is(history_of($name), $runner ? 'interrupted' : '',
		$runner
		? "$name: the history shows exactly one attempt, 'interrupted'"
		: "$name: the attempt and its row were rolled back together");

	# A version whose attempt was interrupted is not applied: it may be
	# applied again, even with a different script.
	my $status = $node->safe_psql('postgres',
		"SELECT status FROM migrate_apply('CREATE TABLE $table (id int);', '$name')");
	is($status, 'applied', "$name: applying the version again succeeds");
	is(table_exists($table), 't', "$name: table $table exists now");
	is(table_rows_of($name), "${before}applied",
		"$name: safe_migrate.migrations has the rows ${before}applied");
	is(history_of($name), "${before}applied",
		"$name: the history shows ${before}applied");

	# Applying it once more is a no-op.
	is( $node->safe_psql(
			'postgres',
			"SELECT status FROM migrate_apply('CREATE TABLE $table (id int);', '$name')"),
		'already_applied',
		"$name: applying the version a third time is a no-op");
	is(table_rows_of($name), "${before}applied", "$name: no row added");
}

# ---------------------------------------------------------------------------
# crash-1: immediate shutdown while the migration runs
# ---------------------------------------------------------------------------
{
	my ($out, $err);
	my $h = start_migration('CREATE TABLE crash_t (id int); SELECT pg_sleep(60);',
		'crash-1', \$out, \$err);
	wait_until_sleeping('crash-1', 0);

	$node->stop('immediate');
	check_client_failed('crash-1', $h, \$err);
	$node->start;

	check_after_crash('crash-1', 'crash_t', 0);
}

# ---------------------------------------------------------------------------
# crash-2: kill -9 of the process running the migration's statement
# ---------------------------------------------------------------------------
{
	my $crash1_rows_before = table_rows_of('crash-1');
	my ($out, $err);
	my $h = start_migration('CREATE TABLE crash2_t (id int); SELECT pg_sleep(60);',
		'crash-2', \$out, \$err);
	wait_until_sleeping('crash-2', 0);

	my $victim = $node->safe_psql('postgres', "SELECT pid $sleeping_query");
	like($victim, qr/^\d+$/, 'crash-2: exactly one process runs the migration statement');
	my $backend_type = $node->safe_psql('postgres',
		"SELECT backend_type FROM pg_stat_activity WHERE pid = $victim");
	note "crash-2: killing pid $victim ($backend_type)";

	my $log_offset = -s $node->logfile;
	kill 'KILL', $victim;
	check_client_failed('crash-2', $h, \$err);

	# The postmaster notices the dead child and restarts every backend.
	ok( $node->wait_for_log(
			qr/all server processes terminated; reinitializing/, $log_offset),
		'crash-2: the postmaster reinitialized after the kill');
	ok(server_accepts($node), 'crash-2: the server accepts connections again');

	check_after_crash('crash-2', 'crash2_t', 0);

	# crash-1's history is untouched by the second crash and its recovery.
	is(table_rows_of('crash-1'), $crash1_rows_before,
		'crash-1: its rows are unchanged by the second crash');
}

# ---------------------------------------------------------------------------
# crash-3: as crash-2, with a script that also builds an index concurrently,
# so that it cannot run inside the caller's transaction (the background
# runner path, whichever process the implementation picks)
# ---------------------------------------------------------------------------
{
	my $rows_before = $node->safe_psql('postgres',
		'SELECT string_agg(version || \':\' || status, \',\' ORDER BY id) FROM safe_migrate.migrations'
	);
	my ($out, $err);
	my $h = start_migration(
		'CREATE TABLE crash3_t (id int); SELECT pg_sleep(60); '
		  . 'CREATE INDEX CONCURRENTLY crash3_t_id ON crash3_t (id);',
		'crash-3', \$out, \$err);
	wait_until_sleeping('crash-3', 1);

	my $victim = $node->safe_psql('postgres', "SELECT pid $sleeping_query");
	like($victim, qr/^\d+$/, 'crash-3: exactly one process runs the migration statement');
	my $backend_type = $node->safe_psql('postgres',
		"SELECT backend_type FROM pg_stat_activity WHERE pid = $victim");
	note "crash-3: killing pid $victim ($backend_type)";

	my $log_offset = -s $node->logfile;
	kill 'KILL', $victim;
	check_client_failed('crash-3', $h, \$err);
	ok( $node->wait_for_log(
			qr/all server processes terminated; reinitializing/, $log_offset),
		'crash-3: the postmaster reinitialized after the kill');
	ok(server_accepts($node), 'crash-3: the server accepts connections again');

	check_after_crash('crash-3', 'crash3_t', 1);
	is( $node->safe_psql(
			'postgres',
			'SELECT string_agg(version || \':\' || status, \',\' ORDER BY id) FROM safe_migrate.migrations '
			  . "WHERE version <> 'crash-3'"),
		$rows_before,
		'crash-3: the other rows are unchanged');
}

is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM safe_migrate.history WHERE status = 'running'"),
	0,
	'no attempt is left running');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM (SELECT version FROM safe_migrate.migrations "
		  . "WHERE status = 'applied' GROUP BY version HAVING count(*) > 1) s"),
	0,
	'no version is applied twice');

$node->stop;
done_testing();
