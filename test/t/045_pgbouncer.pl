# Copyright: safe_migrate authors
#
# Behind PgBouncer in transaction mode (issue 14).
#
# Debian's pgbouncer, started here on a unix socket of its own with
# pool_mode = transaction and two server connections per pool (one for the
# "solo" database, so that consecutive clients share one server connection
# for sure), in front of a node with safe_migrate preloaded.  Everything
# below goes through PgBouncer, as an application's deploy step would:
#  - several clients apply the same migrations concurrently, each in its
#    own order: every version applied exactly once (history, schema, a log
#    table its script writes), the rest 'already_applied';
#  - a migration with CREATE INDEX CONCURRENTLY (a background runner while
#    the caller's server connection waits), and a rollback of it;
#  - backfill submit / pause / resume / wait / cancel;
#  - a client killed (kill -9) while its migration waits, with and without
#    client_connection_check_interval, and a caller whose server process
#    is terminated while its runner waits: afterwards no lock is left on
#    any server connection, the next migration proceeds, the history says
#    what happened and a rerun completes the version exactly once;
#  - what a migration changes in its session (SET, SET LOCAL, set_config,
#    safe_migrate.* settings) is not seen by the next client on the same
#    server connection, on either path, after success or failure; a
#    client's own session-level SET is (that is PgBouncer's transaction
#    mode, documented in the README), and the pooler-safe ways to set a
#    migration's settings work.
use strict;
use warnings;

use IPC::Run;
use List::Util qw(shuffle);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $seed = $ENV{SAFE_MIGRATE_TEST_SEED} // 20261201;
note "shuffle seed: $seed";
srand($seed);

# Debian's pgbouncer (scripts/setup.sh installs it).  Not a skip: without it
# this test fails, as any missing test dependency should.
my $pgbouncer = $ENV{PGBOUNCER} // '/usr/sbin/pgbouncer';
-x $pgbouncer
  or die "$pgbouncer not found: install Debian's pgbouncer (scripts/setup.sh)";

my $node = start_node('pgbouncer');
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE deployer LOGIN;
	CREATE ROLE watcher LOGIN;
	GRANT safe_migrate_admin TO deployer;
	GRANT deployer TO watcher;
	CREATE SCHEMA app AUTHORIZATION deployer;
	-- a role setting: PgBouncer's server connections for deployer get it
	ALTER ROLE deployer SET search_path = app, public;
	-- waits in the scripts below are on advisory locks the test holds:
	-- long enough that no lock timeout ends them first
	ALTER ROLE deployer SET safe_migrate.lock_timeout = '60s';
	-- the same role with PostgreSQL's check for a vanished client
	CREATE ROLE checker LOGIN IN ROLE deployer;
	ALTER ROLE checker SET search_path = app, public;
	ALTER ROLE checker SET safe_migrate.lock_timeout = '60s';
	ALTER ROLE checker SET client_connection_check_interval = '200ms';
});
$node->safe_psql(
	'postgres', q{
	SET ROLE deployer;
	CREATE TABLE app.apply_log (version text NOT NULL);
	CREATE TABLE app.base (id int PRIMARY KEY, a int, b int, c int, d int, e int);
	INSERT INTO app.base SELECT g, g, g, g, g, g FROM generate_series(1, 20000) g;
	CREATE TABLE app.k0 (id int PRIMARY KEY);
	INSERT INTO app.k0 SELECT generate_series(1, 1000);
});

# ---------------------------------------------------------------------------
# PgBouncer
# ---------------------------------------------------------------------------
my $pgb_dir = PostgreSQL::Test::Utils::tempdir_short;
my $pgb_port = PostgreSQL::Test::Cluster::get_free_port();
my ($node_host, $node_port) = ($node->host, $node->port);
my $pgb_log = "$pgb_dir/pgbouncer.log";
PostgreSQL::Test::Utils::append_to_file("$pgb_dir/users.txt",
	join('', map { qq{"$_" ""\n} } ($superuser, 'deployer', 'watcher', 'checker')));
PostgreSQL::Test::Utils::append_to_file(
	"$pgb_dir/pgbouncer.ini", qq{
[databases]
postgres = host=$node_host port=$node_port dbname=postgres
solo = host=$node_host port=$node_port dbname=postgres pool_size=1

[pgbouncer]
listen_addr =
listen_port = $pgb_port
unix_socket_dir = $pgb_dir
auth_type = trust
auth_file = $pgb_dir/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
server_lifetime = 86400
server_idle_timeout = 0
logfile = $pgb_log
pidfile = $pgb_dir/pgbouncer.pid
});
my ($pgb_out, $pgb_err) = ('', '');
my $pgb = IPC::Run::start([ $pgbouncer, "$pgb_dir/pgbouncer.ini" ],
	'>', \$pgb_out, '2>', \$pgb_err);
END { $pgb->kill_kill if $pgb; }
for (my $i = 0; !-S "$pgb_dir/.s.PGSQL.$pgb_port"; $i++)
{
	die "pgbouncer did not start: $pgb_err" if $i > 100 || !$pgb->pumpable;
	usleep(100_000);
}
note "pgbouncer on $pgb_dir port $pgb_port";

sub pgb_connstr
{
	my ($role, $db) = @_;
	return "host=$pgb_dir port=$pgb_port dbname=" . ($db // 'postgres') . " user=$role";
}

# ($rc, $stdout, $stderr) of $sql as $role through PgBouncer
sub pgb_try
{
	my ($role, $sql, $db) = @_;
	my ($out, $err);
	my $rc = $node->psql('postgres', $sql,
		connstr => pgb_connstr($role, $db), stdout => \$out, stderr => \$err);
	return ($rc, $out, $err);
}

# $sql as $role through PgBouncer; dies on an error
sub pgb
{
	my ($role, $sql, $db) = @_;
	my ($rc, $out, $err) = pgb_try($role, $sql, $db);
	die "through pgbouncer as $role: $sql\nfailed: $err" if $rc != 0;
	return $out;
}

# psql through PgBouncer in the background, one -c per query (each its own
# transaction, so its own trip through the pool)
sub pgb_start
{
	my ($role, @queries) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', pgb_connstr($role),
		  map { ('-c', $_) } @queries ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return { h => $h, out => \$out, err => \$err };
}

sub direct { return $node->safe_psql('postgres', $_[0]); }

sub apply_sql
{
	my ($script, $version) = @_;
	return "SELECT version || '|' || status FROM migrate_apply(\$m\$$script\$m\$, '$version')";
}

sub history
{
	my ($version) = @_;
	return direct(
		"SELECT string_agg(status, ',' ORDER BY id) FROM safe_migrate.history WHERE version = '$version'");
}

# No lock held by any server connection (every client backend but ours and
# the test's own direct session that holds locks on purpose) nor by a
# runner, and no migration lock at all.  Backfill workers are waited for by
# the callers.
my $holder_pid = 0;
sub no_locks_left
{
	my ($name) = @_;
	my $q = qq{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	   WHERE l.pid <> pg_backend_pid() AND l.pid <> $holder_pid AND l.locktype <> 'virtualxid'
	     AND (a.backend_type = 'client backend' OR a.backend_type = 'safe_migrate runner')};
	my $ok = $node->poll_query_until('postgres', "SELECT ($q) = 0 AND NOT EXISTS (
	  SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 1526608231 AND objsubid = 3)");
	ok($ok, "$name: no lock left on any server connection, no migration lock")
	  or diag(direct(q{SELECT l.pid, a.backend_type, a.state, l.locktype, l.relation::regclass,
	      l.mode, l.granted, l.objid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	     WHERE l.pid <> pg_backend_pid() AND l.locktype <> 'virtualxid'}));
}

sub wait_for_advisory_waiter
{
	my ($key, $what) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = $key AND NOT granted")
	  or die "$what never waited on advisory lock $key";
}

# the server connections PgBouncer holds to the node (client backends whose
# application is not ours)
sub server_connection_count
{
	return direct(q{SELECT count(*) FROM pg_stat_activity
	   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
	     AND usename IN ('deployer', 'watcher', 'checker')});
}

is(pgb('deployer', 'SELECT current_user || \'|\' || current_setting(\'search_path\')'),
	'deployer|app, public', 'a client reaches the node through pgbouncer');

# ---------------------------------------------------------------------------
# 1. Several clients apply the same migrations concurrently
# ---------------------------------------------------------------------------
# plain migrations (in the caller's server connection) and concurrent index
# builds (a background runner; the caller's server connection waits)
my %scripts;
for my $i (1 .. 8)
{
	my $v = sprintf('c%02d', $i);
	$scripts{$v} = "CREATE TABLE app.t_$v (id int); INSERT INTO app.apply_log VALUES ('$v');";
}
my @cols = qw(a b c d);
for my $i (0 .. $#cols)
{
	my $v = sprintf('c%02d', 9 + $i);
	$scripts{$v} = "INSERT INTO app.apply_log VALUES ('$v'); "
	  . "CREATE INDEX CONCURRENTLY base_$cols[$i]_idx ON app.base ($cols[$i]);";
}
my @versions = sort keys %scripts;
my $n_clients = 6;
my @clients;
for my $c (1 .. $n_clients)
{
	my @order = shuffle(@versions);
	note "client $c order: @order";
	push @clients, pgb_start('deployer', map { apply_sql($scripts{$_}, $_) } @order);
}
my %outcomes;
for my $c (0 .. $#clients)
{
	my $cl = $clients[$c];
	$cl->{h}->finish;
	is($cl->{h}->result(0), 0, "concurrent client " . ($c + 1) . " finished without error")
	  or diag(${ $cl->{err} });
	for my $line (split /\n/, ${ $cl->{out} })
	{
		my ($v, $status) = split /\|/, $line;
		$outcomes{$v}{$status}++;
	}
}
for my $v (@versions)
{
	is($outcomes{$v}{applied} // 0, 1, "$v: applied by exactly one client");
	is($outcomes{$v}{already_applied} // 0,
		$n_clients - 1, "$v: the other clients were told it is already applied");
}
is( direct(q{SELECT string_agg(version || ':' || n, ',' ORDER BY version) FROM
	  (SELECT version, count(*) n FROM app.apply_log GROUP BY version) s}),
	join(',', map { "$_:1" } @versions),
	'every script ran exactly once');
is( direct(q{SELECT string_agg(version || ':' || status, ',' ORDER BY version)
	  FROM safe_migrate.history WHERE version LIKE 'c%'}),
	join(',', map { "$_:applied" } @versions),
	'one applied history row per version, no failed one');
is( direct(q{SELECT count(*) FROM pg_tables WHERE schemaname = 'app' AND tablename LIKE 't\_c%'}),
	'8', 'the tables of the plain migrations exist');
is( direct(q{SELECT string_agg(indexrelid::regclass::text || ':' || indisvalid, ','
	    ORDER BY indexrelid::regclass::text)
	  FROM pg_index WHERE indrelid = 'app.base'::regclass AND NOT indisprimary}),
	join(',', map { "app.base_${_}_idx:true" } @cols),
	'the concurrent builds produced valid indexes');
cmp_ok(server_connection_count(), '<=', 2,
	'the clients shared at most two server connections');
no_locks_left('after the concurrent clients');

# ---------------------------------------------------------------------------
# 2. CREATE INDEX CONCURRENTLY while other clients use the pool, rollback
# ---------------------------------------------------------------------------
{
	# a reader through the pool keeps running queries while the build runs
	my $reader = pgb_start('watcher',
		map { ('SELECT count(*) FROM app.k0', 'SELECT pg_sleep(0.05)') } 1 .. 20);
	is( pgb('deployer', apply_sql(q{
-- migrate:up
CREATE INDEX CONCURRENTLY base_e_idx ON app.base (e);
-- migrate:down
DROP INDEX CONCURRENTLY app.base_e_idx;
}, 'cic')),
		'cic|applied', 'a migration with CREATE INDEX CONCURRENTLY applies through pgbouncer');
	$reader->{h}->finish;
	is($reader->{h}->result(0), 0, 'a client using the pool meanwhile was not held up')
	  or diag(${ $reader->{err} });
	is(direct(q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.base_e_idx'::regclass}),
		't', 'its index is valid');
	is( pgb('deployer', q{SELECT string_agg(version || '|' || status, ',') FROM migrate_rollback()}),
		'cic|rolled_back', 'migrate_rollback through pgbouncer undoes it');
	is(direct(q{SELECT to_regclass('app.base_e_idx') IS NULL}), 't', 'the index is gone');
	is(history('cic'), 'rolled_back', 'the history says rolled_back');
	no_locks_left('after the build and its rollback');
}

# ---------------------------------------------------------------------------
# 3. Backfills: submit, pause, resume, wait, cancel
# ---------------------------------------------------------------------------
{
	my $job = pgb('deployer',
		q{SELECT migrate_backfill('app.base', 'e = -id', 'e > 0', batch_size => 100,
		    target_batch_ms => 25, max_rows_per_second => 4000)});
	like($job, qr/^\d+$/, 'a backfill is submitted through pgbouncer');
	$node->poll_query_until('postgres',
		"SELECT rows_done > 0 FROM safe_migrate.backfills WHERE id = $job")
	  or die 'the backfill never started';
	like(pgb('deployer', "SELECT migrate_backfill_pause($job)"), qr/paus/, 'paused through pgbouncer');
	$node->poll_query_until('postgres',
		"SELECT status = 'paused' FROM safe_migrate.backfills WHERE id = $job")
	  or die 'the backfill did not pause';
	# a batch in flight when the status changed commits; then nothing
	usleep(500_000);
	my $done = direct("SELECT rows_done FROM safe_migrate.backfills WHERE id = $job");
	sleep 1;
	is(direct("SELECT rows_done FROM safe_migrate.backfills WHERE id = $job"),
		$done, 'a paused backfill updates no rows');
	cmp_ok($done, '<', 20000, 'it had not finished when paused');
	like(pgb('deployer', "SELECT migrate_backfill_resume($job)"),
		qr/^(running|queued|resum)/, 'resumed through pgbouncer');
	is(pgb('deployer', "SELECT migrate_backfill_wait($job, '3 min')"),
		'completed', 'migrate_backfill_wait through pgbouncer sees it complete');
	is(direct('SELECT count(*) FROM app.base WHERE e > 0'), '0', 'every row was updated');

	my $slow = pgb('deployer',
		q{SELECT migrate_backfill('app.base', 'e = id', 'e < 0', batch_size => 50,
		    target_batch_ms => 25, max_rows_per_second => 500)});
	$node->poll_query_until('postgres',
		"SELECT rows_done > 0 FROM safe_migrate.backfills WHERE id = $slow")
	  or die 'the second backfill never started';
	like(pgb('deployer', "SELECT migrate_backfill_cancel($slow)"), qr/cancel/,
		'cancelled through pgbouncer');
	my ($rc, $out, $err) = pgb_try('deployer', "SELECT migrate_backfill_wait($slow, '1 min')");
	like($err, qr/backfill job $slow cancelled/, 'and migrate_backfill_wait says so');
	is(direct("SELECT status FROM safe_migrate.backfills WHERE id = $slow"), 'cancelled',
		'the job is cancelled');
	my $left = direct('SELECT count(*) FROM app.base WHERE e < 0');
	cmp_ok($left, '>', 0, 'the cancelled backfill stopped before the end');
	no_locks_left('after the backfills');
}

# ---------------------------------------------------------------------------
# 4. A client killed in the middle of a migration
# ---------------------------------------------------------------------------
my $holder = $node->background_psql('postgres');
$holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
chomp $holder_pid;

# 4a. kill -9 of the client while its migration (in its server connection)
#     waits.  PgBouncer closes that server connection ("client disconnect
#     while server was not ready"); without client_connection_check_interval
#     the server process notices only when it next talks to the client, as
#     for any statement: it finishes the migration it was given and records
#     it.  Meanwhile the next client's migration waits, then proceeds.
{
	$holder->query_safe('SELECT pg_advisory_lock(4201)');
	my $victim = pgb_start('deployer',
		apply_sql(q{ALTER TABLE app.k0 ADD COLUMN k1 int; INSERT INTO app.apply_log VALUES ('k1');
		  SELECT pg_advisory_xact_lock(4201);}, 'k1'));
	wait_for_advisory_waiter(4201, 'migration k1');
	$victim->{h}->signal('KILL');
	$victim->{h}->finish;
	my $next = pgb_start('deployer', apply_sql('CREATE TABLE app.after_k1 (id int);', 'k1-next'));
	$node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_locks
		 WHERE locktype = 'advisory' AND objid = 1526608231 AND objsubid = 3 AND NOT granted})
	  or die 'the next migration does not wait for the first';
	$holder->query_safe('SELECT pg_advisory_unlock(4201)');
	$next->{h}->finish;
	is(${ $next->{out} }, "k1-next|applied\n", 'after the killed client, the next migration proceeds')
	  or diag(${ $next->{err} });
	is(history('k1'), 'applied', "the killed client's migration ran to its end and is recorded");
	is(direct(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'app.k0'::regclass AND attname = 'k1'})
		  . direct(q{SELECT count(*) FROM app.apply_log WHERE version = 'k1'}),
		'11', 'its statements ran once');
	is(pgb('deployer', apply_sql(q{ALTER TABLE app.k0 ADD COLUMN k1 int; INSERT INTO app.apply_log VALUES ('k1');
		  SELECT pg_advisory_xact_lock(4201);}, 'k1')),
		'k1|already_applied', 'the killed deploy, run again, finds it applied');
	like(slurp_file($pgb_log), qr/client disconnect while server was not ready/,
		'pgbouncer closed the server connection of the killed client');
	no_locks_left('after the killed client (4a)');
}

# 4b. The same with client_connection_check_interval (role checker): the
#     server process sees its client gone while the migration waits and
#     stops it; nothing of it commits, no history row claims it, the next
#     migration proceeds at once and a rerun applies it.
{
	$holder->query_safe('SELECT pg_advisory_lock(4202)');
	my $script = q{ALTER TABLE app.k0 ADD COLUMN k2 int; INSERT INTO app.apply_log VALUES ('k2');
		  SELECT pg_advisory_xact_lock(4202);};
	my $victim = pgb_start('checker', apply_sql($script, 'k2'));
	wait_for_advisory_waiter(4202, 'migration k2');
	$victim->{h}->signal('KILL');
	$victim->{h}->finish;
	ok( $node->poll_query_until('postgres',
			q{SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4202 AND NOT granted}),
		'the server process of the killed client stops waiting by itself');
	is(pgb('checker', apply_sql('CREATE TABLE app.after_k2 (id int);', 'k2-next')),
		'k2-next|applied', 'the next migration proceeds while the blocker still holds its lock');
	no_locks_left('after the killed client (4b)');
	is(history('k2') // '', '', 'the stopped migration left no history row (nothing committed)');
	is(direct(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'app.k0'::regclass AND attname = 'k2'}),
		'0', 'and none of its effects');
	$holder->query_safe('SELECT pg_advisory_unlock(4202)');
	is(pgb('checker', apply_sql($script, 'k2')), 'k2|applied', 'run again, it applies');
	is(direct(q{SELECT count(*) FROM app.apply_log WHERE version = 'k2'}), '1', 'once');
}

# 4c. The caller's server process terminated (pg_terminate_backend) while
#     its runner waits in the third step of a migration in steps: the runner
#     stops too, the history shows the attempt interrupted with the steps
#     that committed, and applying the script again continues after them.
{
	$holder->query_safe('SELECT pg_advisory_lock(4203)');
	my $script = q{INSERT INTO app.apply_log VALUES ('k3');
CREATE INDEX CONCURRENTLY k0_k1_idx ON app.k0 (k1);
SELECT pg_advisory_xact_lock(4203);};
	my $victim = pgb_start('deployer', apply_sql($script, 'k3'));
	wait_for_advisory_waiter(4203, 'migration k3');
	is( direct(q{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		   WHERE l.objid = 4203 AND NOT l.granted AND a.backend_type = 'safe_migrate runner'}),
		'1', 'the third step waits in the runner');
	is( direct(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		   WHERE backend_type = 'client backend' AND query LIKE '%migrate_apply%k3%' AND pid <> pg_backend_pid()}),
		't', "the caller's server process is terminated");
	$victim->{h}->finish;
	isnt($victim->{h}->result(0), 0, 'the client gets an error');
	ok( $node->poll_query_until('postgres',
			q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'}),
		'the runner stops too');
	no_locks_left('after the terminated caller (4c)');
	like(history('k3'), qr/^(interrupted|failed)$/, 'the history shows the attempt stopped');
	is( direct(q{SELECT steps_committed FROM safe_migrate.history WHERE version = 'k3'}),
		'2', 'with the two steps that committed');
	is(pgb('deployer', apply_sql('CREATE TABLE app.after_k3 (id int);', 'k3-next')),
		'k3-next|applied', 'the next migration proceeds');
	$holder->query_safe('SELECT pg_advisory_unlock(4203)');
	is(pgb('deployer', apply_sql($script, 'k3')), 'k3|applied',
		'the same script, applied again, completes the version');
	is( direct(q{SELECT count(*) FROM app.apply_log WHERE version = 'k3'})
		  . direct(q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.k0_k1_idx'::regclass}),
		'1t', 'its committed steps did not run again');
	no_locks_left('after the rerun (4c)');
}
$holder->quit;

# ---------------------------------------------------------------------------
# 5. Session state: what one client's migration does to its session is not
#    seen by the next client on the same server connection
# ---------------------------------------------------------------------------
{
	# the "solo" database: one server connection per role, shared by every
	# client of that role in turn
	my $state = q{SELECT concat_ws('|', pg_backend_pid(), current_user, session_user,
	    current_setting('search_path'), current_setting('lock_timeout'),
	    current_setting('statement_timeout'), current_setting('max_parallel_maintenance_workers'),
	    current_setting('safe_migrate.policy'), current_setting('safe_migrate.lock_timeout'),
	    current_setting('safe_migrate.lock_retries'), current_setting('default_transaction_read_only'),
	    coalesce(current_setting('myapp.tenant', true), ''),
	    (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()
	        AND (locktype = 'advisory' OR (locktype = 'relation' AND relation >= 16384))),
	    (SELECT count(*) FROM pg_prepared_statements), (SELECT count(*) FROM pg_cursors),
	    pg_my_temp_schema())};
	my $before = pgb('deployer', $state, 'solo');
	my ($pid) = split /\|/, $before;
	note "solo server connection: $before";
	my $scripts = q{SET search_path = pg_catalog;
SET lock_timeout = '7s';
SET LOCAL statement_timeout = '1h';
SET max_parallel_maintenance_workers = 3;
SET safe_migrate.policy = warn;
SET safe_migrate.lock_timeout = '9s';
SELECT pg_catalog.set_config('myapp.tenant', 'leaked', false);
SET default_transaction_read_only = off;
};
	my @cases = (
		[ 'a plain migration (in the server connection)', "${scripts}CREATE TABLE app.s1 (id int);", 's1', 0 ],
		[ 'a migration with a runner', "${scripts}CREATE INDEX CONCURRENTLY s2_idx ON app.k0 (id);", 's2', 0 ],
		[ 'a failing plain migration', "${scripts}CREATE TABLE app.s3 (id int); SELECT 1/0;", 's3', 1 ],
		[ 'a failing migration with a runner',
		  "${scripts}CREATE INDEX CONCURRENTLY s4_idx ON app.k0 (id); SELECT 1/0;", 's4', 1 ],
		[ 'a dry run', undef, 'plan', 0 ],
		# what a script leaves in its session besides settings: its session
		# ends with the migration on both paths
		[ 'a plain migration that takes a session-level advisory lock',
		  "CREATE TABLE app.s6 (id int); SELECT pg_advisory_lock(4301);", 's6', 0 ],
		[ 'a failing plain migration that takes one',
		  "SELECT pg_advisory_lock(4302); CREATE TABLE app.s7 (id int); SELECT 1/0;", 's7', 1 ],
		[ 'a migration with a runner that takes one',
		  "SELECT pg_advisory_lock(4303); CREATE INDEX CONCURRENTLY s8_idx ON app.k0 (id);", 's8', 0 ],
		[ 'a migration that leaves a temporary table, a prepared statement and a cursor WITH HOLD',
		  "CREATE TEMP TABLE s9_stage AS SELECT 1 AS x; PREPARE s9_p AS SELECT 1;
		   DECLARE s9_c CURSOR WITH HOLD FOR SELECT 1; CREATE TABLE app.s9 AS SELECT x FROM s9_stage;",
		  's9', 0 ],
		# migrate_test rolls its scripts back, but PREPARE and session-level
		# advisory locks are not transactional
		[ 'migrate_test of a script that prepares a statement and takes an advisory lock',
		  undef, 'test', 0, q{SELECT count(*) FROM migrate_test($$
-- migrate:up
CREATE TABLE app.mt (id int); PREPARE mt_p AS SELECT 1; SELECT pg_advisory_lock(4304);
-- migrate:down
DROP TABLE app.mt;
$$)} ],
		# LISTEN would listen for nobody (the caller's server connection or a
		# runner): refused
		[ 'a migration with LISTEN', "LISTEN s11; CREATE TABLE app.s11 (id int);", 's11', 1 ],
	);
	for my $case (@cases)
	{
		my ($name, $script, $version, $fails, $sql) = @$case;
		$sql //= defined $script ? apply_sql($script, $version)
		  : q{SELECT count(*) FROM migrate_plan($$SET lock_timeout = '7s'; ALTER TABLE app.k0 ADD COLUMN p int$$)};
		my ($rc, $out, $err) = pgb_try('deployer', $sql, 'solo');
		is($rc == 0 ? 0 : 1, $fails, "$name: " . ($fails ? 'fails' : 'succeeds'))
		  or diag($err);
		is(pgb('deployer', $state, 'solo'), $before,
			"$name: the next client on server connection $pid sees the session as it was");
	}
	is(direct(q{SELECT count(*) FROM app.s9}), '1', 'the temporary table served its migration');
	like((pgb_try('deployer', apply_sql('LISTEN s11;', 's11')))[2],
		qr/LISTEN is not allowed in a migration/, 'LISTEN is refused, saying why');
	is( direct(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid BETWEEN 4301 AND 4304}),
		'0', "no script's session-level advisory lock is held anywhere");

	# a caller that holds advisory locks of its own keeps them
	{
		my $own = $node->background_psql('postgres');
		$own->query_safe('SELECT pg_advisory_lock(4310)');
		$own->query_safe(apply_sql('CREATE TABLE app.s10 (id int);', 's10'));
		is( $own->query_safe(q{SELECT count(*) FROM pg_locks
			   WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objid = 4310}),
			'1', "a caller's own session-level advisory lock is left alone");
		$own->quit;
	}

	my ($rc, $out, $err) = pgb_try('deployer',
		apply_sql('ALTER TABLE app.k0 RENAME COLUMN k1 TO k1_renamed;', 's5'), 'solo');
	isnt($rc, 0,
		"the policy that an earlier client's script set to warn is enforced again for the next client");
	like($err, qr/renaming-column/, 'it names the rule');

	# a pooler-safe way to choose the policy for one migration: SET in the
	# script; it holds for that script's statements and ends with it
	is( pgb('deployer',
			apply_sql('SET safe_migrate.policy = warn; ALTER TABLE app.k0 RENAME COLUMN k1 TO k1_renamed;', 's5'),
			'solo'),
		's5|applied', 'a SET in the script holds for the migration');
	is(pgb('deployer', $state, 'solo'), $before, 'and is gone for the next client');

	# a client's own session-level SET stays on the server connection and
	# the next client of the same role sees it: PgBouncer's transaction
	# mode (the README says so and what to do instead)
	pgb('deployer', q{SET safe_migrate.lock_timeout = '3s'}, 'solo');
	is(pgb('deployer', q{SHOW safe_migrate.lock_timeout}, 'solo'), '3s',
		"a client's own SET is seen by the next client of its role (transaction pooling)");
	pgb('deployer', q{RESET safe_migrate.lock_timeout}, 'solo');
	is(pgb('deployer', q{SHOW safe_migrate.lock_timeout}, 'solo'), '1min',
		'the role setting (ALTER ROLE ... SET) is what every server connection starts with');
	pgb('deployer', q{SET myapp.tenant = 'deployer-only'}, 'solo');
	is(pgb('deployer', q{SHOW myapp.tenant}, 'solo'), 'deployer-only',
		'(the same for any setting)');
	is(pgb('watcher', q{SELECT current_setting('myapp.tenant', true) IS NULL}, 'solo'), 't',
		'a client of another role does not see it: PgBouncer pools per role');
	pgb('deployer', q{RESET myapp.tenant}, 'solo');
	no_locks_left('after the session checks');
}

$pgb->kill_kill;
undef $pgb;
$node->stop;
done_testing();
