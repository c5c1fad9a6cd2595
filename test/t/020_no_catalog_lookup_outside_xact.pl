# Copyright: safe_migrate authors
#
# Catalog lookups need a transaction.  A runner that checks a role's rights
# (superuser_arg, role membership) between its transactions crashes
# (SIGSEGV in the syscache) instead of failing, and the crash restarts the
# whole server.  policy::may_override refuses to look anything up outside
# a transaction, so such a path ends as an error at worst.
#
# migrate_rollback runs in a runner connected as the caller; it checks the
# caller's override rights for the stored "-- safe_migrate:allow" lines.
# The bootstrap superuser takes a shortcut in superuser_arg that needs no
# lookup, so the roles here are a second superuser and an ordinary owner.
# Whatever the outcome (rolled back, or an error), no server process may
# die by a signal.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_lookup_outside_xact');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'safe_migrate'\nmax_worker_processes = 32\n");
$node->start;

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
	my $script = "-- migrate:up\nCREATE TABLE ${role}_t (id int);\n"
	  . "-- migrate:down\nDROP TABLE ${role}_t;\n";
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
	# rolled back, or refused with an error: never half-done
	my $status = $node->safe_psql('postgres',
		"SELECT status FROM safe_migrate.history WHERE version = '$version'");
	if ($ret == 0)
	{
		is($out, "$version|rolled_back", "$role: rolled back");
		is($status, 'rolled_back', "$role: history says rolled back");
	}
	else
	{
		like($err, qr/ERROR:/, "$role: an error, not a crash");
		is($status, 'applied', "$role: history says still applied");
	}
}

done_testing();
