# Copyright: safe_migrate authors
#
# What the TAP tests share: a node with safe_migrate preloaded, running SQL
# as a given role (the security tests play several), and the gate that
# holds a migration's runner at a chosen DDL statement so that a test can
# interrupt it there.
package SafeMigrateTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;

our @EXPORT = qw(start_node start_crash_node as_role try_as_role fails_as_role install_gate hold_runner_at
  release_runner runner_held interrupt_runner server_accepts wait_after_kill start_point_load);

# An application's load for the pacing tests: pgbench, 2 clients at 200
# transactions/s for $seconds, each a point UPDATE and a point SELECT on the
# table fg (id int PRIMARY KEY, v int, ids 1-1000, which the test creates).
# Returns the IPC::Run handle and references to pgbench's stdout and stderr;
# the test ends it (finish, or kill_kill for one longer than it needs).
sub start_point_load
{
	my ($node, $seconds) = @_;
	my $script = $node->basedir . '/point_load.sql';
	open(my $fh, '>', $script) or die "cannot write $script: $!";
	print $fh "\\set id random(1, 1000)\nUPDATE fg SET v = v + 1 WHERE id = :id;\nSELECT v FROM fg WHERE id = :id;\n";
	close($fh);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '2', '-j', '1', '-R', '200', '-T', $seconds, '-f', $script,
		  $node->connstr('postgres') ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($seconds + $PostgreSQL::Test::Utils::timeout_default));
	return ($h, \$out, \$err);
}

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

# start_node, restarted with restart_after_crash = on: a test that kills a
# backend gets the server back.
sub start_crash_node
{
	my ($name) = @_;
	my $node = start_node($name);
	$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
	$node->restart;
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

# The gate: a ddl_command_start event trigger that, in a migration's runner
# only, counts the DDL statements it runs and at the chosen one
# (hold_runner_at) sleeps until the test interrupts the runner or releases
# it.  The count restarts with each hold_runner_at.  $grant_to: roles that
# apply migrations and may move the gate.
sub install_gate
{
	my ($node, @grant_to) = @_;
	$node->safe_psql(
		'postgres', q{
		CREATE TABLE gate (n int NOT NULL, target int NOT NULL, open bool NOT NULL);
		INSERT INTO gate VALUES (0, 0, false);
		-- lets a held runner go on (it holds gate's row until its transaction ends)
		CREATE TABLE gate_release (open bool NOT NULL);
		INSERT INTO gate_release VALUES (false);
		CREATE FUNCTION gate_fn() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
		DECLARE
		    reached int;
		    stop_at int;
		BEGIN
		    IF (SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid())
		       IS DISTINCT FROM 'safe_migrate runner' THEN
		        RETURN;
		    END IF;
		    UPDATE gate SET n = n + 1 RETURNING n, target INTO reached, stop_at;
		    IF reached = stop_at THEN
		        LOOP
		            EXIT WHEN (SELECT open FROM gate) OR (SELECT open FROM gate_release);
		            PERFORM pg_sleep(0.05);
		        END LOOP;
		    END IF;
		END $$;
		CREATE EVENT TRIGGER gate_trigger ON ddl_command_start EXECUTE FUNCTION gate_fn();
	});
	$node->safe_psql('postgres', "GRANT SELECT, UPDATE ON gate, gate_release TO $_") foreach @grant_to;
	return;
}

# The next migration's runner stops at its $k-th DDL statement (0: nowhere).
sub hold_runner_at
{
	my ($node, $k) = @_;
	$node->safe_psql('postgres', "UPDATE gate SET n = 0, target = $k, open = false; UPDATE gate_release SET open = false");
	return;
}

# Is a runner held at the gate (its statement LIKE $running, when given)?
sub runner_held
{
	my ($node, $running) = @_;
	return $node->poll_query_until('postgres',
		"SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner' "
		  . "AND wait_event = 'PgSleep'" . (defined $running ? " AND query LIKE '$running'" : '') . ')');
}

# A held runner goes on; later migrations are not held.
sub release_runner
{
	my ($node) = @_;
	$node->safe_psql('postgres', 'UPDATE gate_release SET open = true');
	return;
}

# True once the server answers a query again (false after the tests'
# timeout).  Not poll_query_until (nor a bare safe_psql): both hand psql its
# query on stdin, and while the server still refuses connections (crash
# recovery) psql can exit before it reads it; the write to its stdin then
# dies with a broken pipe and ends the test script.  That error is caught
# here like any other failed attempt.
sub server_accepts
{
	my ($node) = @_;
	for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default; $i++)
	{
		my $out = eval { $node->safe_psql('postgres', 'SELECT 1') };
		return 1 if defined $out && $out eq '1';
		usleep(100_000);
	}
	return 0;
}

# After a server process was killed by SIGKILL (the server log read from
# $log_offset, its size before the kill): true once the postmaster has
# reinitialized and the server accepts connections again.  Waiting for the
# reinitialization first keeps a query from reaching a backend that the
# restart is about to end.
sub wait_after_kill
{
	my ($node, $log_offset) = @_;
	return 0
	  unless $node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	return server_accepts($node);
}

# Interrupt the held runner: 'kill -9 of the runner' (the server restarts),
# 'termination of the runner', or 'cancel of the caller' (the session
# whose query is LIKE $caller_query); then wait until no runner is left and
# stop holding.  True if no runner is left.
sub interrupt_runner
{
	my ($node, $mode, $caller_query) = @_;
	my $runner = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'");
	my $log_offset = -s $node->logfile;
	if ($mode =~ /kill -9/)
	{
		kill 'KILL', $runner;
		wait_after_kill($node, $log_offset) or die 'the server did not come back';
	}
	elsif ($mode =~ /termination/)
	{
		$node->safe_psql('postgres', "SELECT pg_terminate_backend($runner)");
	}
	else
	{
		$node->safe_psql('postgres',
			"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' "
			  . "AND query LIKE '$caller_query' AND pid <> pg_backend_pid()");
	}
	my $gone = $node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner')");
	hold_runner_at($node, 0);
	return $gone;
}

1;
