# Copyright: safe_migrate authors
#
# What the TAP tests share: a node with safe_migrate preloaded, and running
# SQL as a given role (the security tests play several).
package SafeMigrateTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Test::More;

our @EXPORT = qw(start_node as_role try_as_role fails_as_role);

# A started node with shared_preload_libraries = 'safe_migrate' (the
# backfill launcher) and room for workers; %init goes to init().
sub start_node
{
	my ($name, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'safe_migrate'\nmax_worker_processes = 32\n");
	$node->start;
	return $node;
}

# $sql as $role (ON_ERROR_STOP: dies on an error); $db defaults to postgres.
sub as_role
{
	my ($node, $role, $sql, $db) = @_;
	$db //= 'postgres';
	return $node->safe_psql($db, $sql, connstr => $node->connstr($db) . " user=$role");
}

# ($rc, $stdout, $stderr) of $sql as $role.  Options: db => name,
# verbose => 1 for errors in verbose form (SQLSTATE, location).
sub try_as_role
{
	my ($node, $role, $sql, %opt) = @_;
	my $db = $opt{db} // 'postgres';
	my ($stdout, $stderr);
	my $rc = $node->psql(
		$db, ($opt{verbose} ? "\\set VERBOSITY verbose\n" : '') . $sql,
		connstr => $node->connstr($db) . " user=$role",
		stdout => \$stdout,
		stderr => \$stderr);
	return ($rc, $stdout, $stderr);
}

# $sql as $role fails, with an error matching $re; returns the error text.
sub fails_as_role
{
	my ($node, $role, $sql, $re, $name) = @_;
	my ($rc, $stdout, $stderr) = try_as_role($node, $role, $sql, verbose => 1);
	isnt($rc, 0, "$name: fails");
	like($stderr, $re, "$name: error message");
	return $stderr;
}

1;
