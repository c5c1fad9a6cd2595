
# Copyright: safe_migrate authors
#
# Exactly-once under concurrency: 8 sessions apply the same 50 migrations at
# the same time, each in its own shuffled order.  Every version must be
# applied exactly once (its script ran once, one 'applied' row), every other
# attempt must be a no-op reported as 'already_applied', and no attempt may
# fail.
use strict;
use warnings;

use IPC::Run;
use List::Util qw(shuffle sum);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $n_sessions = 8;
my $n_versions = 50;

# Deterministic shuffles; override with SAFE_MIGRATE_TEST_SEED to explore.
my $seed = $ENV{SAFE_MIGRATE_TEST_SEED} // 20240501;
note "shuffle seed: $seed";
srand($seed);

my $node = PostgreSQL::Test::Cluster->new('exactly_once');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'safe_migrate'\n"
	  . "max_worker_processes = 32\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION safe_migrate;');
$node->safe_psql('postgres', 'CREATE TABLE apply_log (version text NOT NULL);');

my @versions = map { sprintf('v%02d', $_) } 1 .. $n_versions;

sub migration_sql
{
	my ($v) = @_;
	# the script, as an SQL literal: quotes doubled
	my $script = "CREATE TABLE t_$v (id int); INSERT INTO apply_log VALUES (''$v'');";
	return "SELECT version || '|' || status FROM migrate_apply('$script', '$v');\n";
}

# One SQL file per session, each with its own order of the 50 versions.
my $tmp = PostgreSQL::Test::Utils::tempdir;
my @files;
for my $s (1 .. $n_sessions)
{
	my @order = shuffle(@versions);
	note "session $s order: @order";
	my $file = "$tmp/session_$s.sql";
	open my $fh, '>', $file or die "could not write $file: $!";
	print $fh "SET client_min_messages = warning;\n";
	print $fh migration_sql($_) for @order;
	close $fh;
	push @files, $file;
}

# Launch all sessions at once, then wait for all of them.
my (@harnesses, @stdout, @stderr);
my $timeout = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
for my $s (0 .. $n_sessions - 1)
{
	$stdout[$s] = '';
	$stderr[$s] = '';
	push @harnesses,
	  IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'),
			'-f', $files[$s]
		],
		'>', \$stdout[$s], '2>', \$stderr[$s], $timeout);
}

my %status_count;
for my $s (0 .. $n_sessions - 1)
{
	my $ok = eval { $harnesses[$s]->finish; 1 };
	ok($ok, "session " . ($s + 1) . " finished before the timeout")
	  or diag($@);
	is($harnesses[$s]->result(0), 0,
		"session " . ($s + 1) . " exited with status 0")
	  or diag("stderr of session " . ($s + 1) . ":\n$stderr[$s]");

	my @lines = grep { /\S/ } split /\n/, $stdout[$s];
	is(scalar(@lines), $n_versions,
		"session " . ($s + 1) . " got a result for each of the $n_versions versions");
	my %seen;
	for my $line (@lines)
	{
		my ($v, $status) = split /\|/, $line;
		$seen{$v}++;
		$status_count{$status}++;
	}
	is(scalar(keys %seen), $n_versions,
		"session " . ($s + 1) . " got one result per version");
}

is($status_count{applied} // 0,
	$n_versions, "exactly $n_versions calls (one per version) report 'applied'");
is(
	$status_count{already_applied} // 0,
	$n_versions * ($n_sessions - 1),
	"all other calls report 'already_applied'");
is(
	sum(values %status_count) // 0,
	$n_versions * $n_sessions,
	"no other status was reported");

# Each script ran exactly once.
is($node->safe_psql('postgres', 'SELECT count(*) FROM apply_log'),
	$n_versions, "apply_log has exactly $n_versions rows");
is($node->safe_psql('postgres', 'SELECT count(DISTINCT version) FROM apply_log'),
	$n_versions, "apply_log has $n_versions distinct versions");
is(
	$node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname ~ '^t_v[0-9]{2}\$'"),
	$n_versions,
	"all $n_versions tables exist");

# The history has one 'applied' row per version and nothing else.
is($node->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.migrations'),
	$n_versions, "safe_migrate.migrations has exactly $n_versions rows");
is(
	$node->safe_psql(
		'postgres',
		"SELECT count(*) FROM safe_migrate.migrations WHERE status = 'failed'"),
	0,
	'no failed attempt');
is(
	$node->safe_psql(
		'postgres', "SELECT string_agg(DISTINCT status, ',') FROM safe_migrate.migrations"),
	'applied',
	"every row is 'applied'");
is(
	$node->safe_psql(
		'postgres',
		"SELECT count(*) FROM (SELECT version FROM safe_migrate.migrations "
		  . "WHERE status = 'applied' GROUP BY version HAVING count(*) = 1) s"),
	$n_versions,
	'exactly one applied row per version');
is(
	$node->safe_psql(
		'postgres',
		"SELECT string_agg(version, ',' ORDER BY version) FROM safe_migrate.migrations"),
	join(',', @versions),
	'the applied versions are exactly v01..v50');

$node->stop;
done_testing();
