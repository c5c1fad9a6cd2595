
# Copyright: safe_migrate authors
#
# Streaming replication: migrations applied on the primary reach a standby
# (objects and history), and migrate_apply / migrate_rollback refuse to run
# on the standby with SQLSTATE 25006 (read_only_sql_transaction).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'safe_migrate'\nmax_worker_processes = 32\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION safe_migrate;');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

# Apply on the primary.
is( $primary->safe_psql(
		'postgres',
		"SELECT status FROM migrate_apply(\$m\$-- migrate:up\n"
		  . "CREATE TABLE replicated (id int PRIMARY KEY);\n"
		  . "INSERT INTO replicated VALUES (1), (2);\n"
		  . "-- migrate:down\nDROP TABLE replicated;\n\$m\$, 'rep-1', 'replicated table')"),
	'applied',
	'rep-1 applied on the primary');

$primary->wait_for_catchup($standby);

# The standby sees the migration and its effects.
is( $standby->safe_psql(
		'postgres',
		"SELECT version || '|' || status || '|' || description || '|' || has_down "
		  . "FROM safe_migrate.history"),
	'rep-1|applied|replicated table|true',
	'the standby history shows rep-1 as applied');
is( $standby->safe_psql('postgres', 'SELECT checksum FROM safe_migrate.history'),
	$primary->safe_psql('postgres', 'SELECT checksum FROM safe_migrate.history'),
	'the standby history has the same checksum as the primary');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM replicated'),
	'2', 'the table created by the migration exists on the standby, with its rows');

# migrate_apply and migrate_rollback refuse on the standby.
my %calls = (
	'migrate_apply (new version)' =>
	  "SELECT * FROM migrate_apply('CREATE TABLE on_standby (id int);', 'rep-2')",
	'migrate_apply (applied version)' =>
	  "SELECT * FROM migrate_apply('CREATE TABLE replicated (id int PRIMARY KEY);', 'rep-1')",
	'migrate_rollback' => 'SELECT * FROM migrate_rollback()',
	'migrate_rollback(to_version)' => "SELECT * FROM migrate_rollback('rep-1')",);

for my $name (sort keys %calls)
{
	my ($fname) = $name =~ /^(\w+)/;
	my ($stdout, $stderr);
	my $rc = $standby->psql(
		'postgres',
		"\\set VERBOSITY verbose\n$calls{$name}",
		stdout => \$stdout,
		stderr => \$stderr);
	isnt($rc, 0, "$name on the standby fails");
	like(
		$stderr,
		qr/ERROR:  25006: $fname cannot run on a standby server/,
		"$name on the standby reports SQLSTATE 25006 and the standby error");
}

# Nothing changed on either side.
is($standby->safe_psql('postgres', "SELECT to_regclass('on_standby') IS NULL"),
	't', 'nothing was created on the standby');
is($primary->safe_psql('postgres', "SELECT to_regclass('on_standby') IS NULL"),
	't', 'nothing was created on the primary');
is( $primary->safe_psql(
		'postgres',
		"SELECT string_agg(version || ':' || status, ',' ORDER BY id) FROM safe_migrate.migrations"
	),
	'rep-1:applied',
	'the primary history still has only rep-1, applied');

# The primary keeps working and the standby follows.
is( $primary->safe_psql(
		'postgres', "SELECT status FROM migrate_apply('CREATE TABLE later (id int);', 'rep-3')"),
	'applied',
	'a later migration applies on the primary');
$primary->wait_for_catchup($standby);
is( $standby->safe_psql(
		'postgres',
		"SELECT string_agg(version || ':' || status, ',' ORDER BY id) FROM safe_migrate.history"
	),
	'rep-1:applied,rep-3:applied',
	'the standby follows the primary history');
is($standby->safe_psql('postgres', "SELECT to_regclass('later') IS NOT NULL"),
	't', 'the later table exists on the standby');

$standby->stop;
$primary->stop;
done_testing();
