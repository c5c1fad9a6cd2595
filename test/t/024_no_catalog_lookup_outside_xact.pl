# Copyright: safe_migrate authors
#
# Catalog lookups need a transaction.  A runner that checks a role's rights
# (superuser_arg, role membership) between its transactions crashed
# (SIGSEGV in the syscache), and the crash restarts the whole server.
# policy::may_override does its lookups in a transaction of its own when
# it is asked outside one.
#
# migrate_rollback runs in a runner connected as the caller; it checks the
# caller's override rights for the stored "-- safe_migrate:allow" lines.
# The bootstrap superuser takes a shortcut in superuser_arg that needs no
# lookup, so the roles here are a second superuser and an ordinary owner.
# No server process may die by a signal, and the rollback must happen.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('no_lookup_outside_xact');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE second_superuser LOGIN SUPERUSER;
	CREATE ROLE owner_role LOGIN;
	GRANT CREATE ON SCHEMA public TO owner_role;
});

for my $role ('second_superuser', 'owner_role')
{
	my $version = "$role-1";
	# The superuser's override is looked up and honoured by the runner; the
	# owner has none and needs none (a view is dropped without a rule).
	my $script = $role eq 'second_superuser'
	  ? "-- safe_migrate:allow ban-drop-table the down script drops what up created\n"
	  . "-- migrate:up\nCREATE TABLE ${role}_t (id int);\n"
	  . "-- migrate:down\nDROP TABLE ${role}_t;\n"
	  : "-- migrate:up\nCREATE VIEW ${role}_t AS SELECT 1 AS one;\n"
	  . "-- migrate:down\nDROP VIEW ${role}_t;\n";
	is( $node->safe_psql(
			'postgres',
			"SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$version')",
			extra_params => [ '-U', $role ]),
		'applied',
		"$role: applied");

	my $log_offset = -s $node->logfile;
	my ($ret, $out, $err) = $node->psql(
		'postgres',
		'SELECT version, status FROM migrate_rollback()',
		extra_params => [ '-U', $role ]);
	unlike($err, qr/server closed the connection|terminated abnormally/,
		"$role: migrate_rollback returns to its caller");
	ok( !$node->log_contains(qr/terminated by signal/, $log_offset),
		"$role: no server process died by a signal")
	  or diag(slurp_file($node->logfile, $log_offset));
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "$role: the server is up");
	is($ret, 0, "$role: migrate_rollback succeeds") or diag($err);
	is($out, "$version|rolled_back", "$role: rolled back");
	is( $node->safe_psql(
			'postgres',
			"SELECT status FROM safe_migrate.history WHERE version = '$version'"),
		'rolled_back',
		"$role: history says rolled back");
	is($node->safe_psql('postgres', "SELECT to_regclass('${role}_t') IS NULL"),
		't', "$role: the down script ran");
}

done_testing();
