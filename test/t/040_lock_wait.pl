
# Copyright: safe_migrate authors
#
# Lock waits (issue 15), safe_migrate.lock_strategy = wait (the default): a
# migration that needs a lock a long-lived session holds waits for that
# session outside the lock queue (the application's queries go on), says
# why (NOTICE, safe_migrate.lock_waits, migrate_plan), takes its lock within
# safe_migrate.lock_wait_max_stall once only short transactions remain, gives
# up cleanly at safe_migrate.lock_wait_deadline, and cancels blockers (when
# an admin enables it) only within the safeguards.
use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('lock_wait');
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE alice LOGIN;   -- the application: the blockers
	CREATE ROLE bob LOGIN;     -- somebody else, reading the view
	CREATE TABLE t (id int PRIMARY KEY, v int);
	INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;
	GRANT SELECT, UPDATE ON t TO alice;
	ALTER SYSTEM SET autovacuum = off;  -- no holder we did not start
	SELECT pg_reload_conf();
});

my $psql = $node->installed_command('psql');

# psql in the background (as $user when given), -c per command
sub start_psql
{
	my ($out, $err, $user, @commands) = @_;
	$$out = '';
	$$err = '';
	return IPC::Run::start(
		[
			$psql, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres') . ($user ? " user=$user" : ''),
			map { ('-c', $_) } @commands
		],
		'>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

# a session of alice's with an open transaction that read t
sub blocker
{
	my ($app, @sql) = @_;
	my $s = $node->background_psql('postgres', extra_params => [ '-U', 'alice' ]);
	$s->query_safe("SET application_name = '$app'");
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$pid =~ s/\s+//g;
	$s->query_safe('BEGIN');
	$s->query_safe($_) for (@sql ? @sql : ('SELECT count(*) FROM t'));
	return ($s, $pid);
}

sub column_exists
{
	my ($col) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass "
		  . "AND attname = '$col' AND NOT attisdropped");
}

sub wait_for_view
{
	my ($version) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM safe_migrate.lock_waits WHERE version = '$version' "
		  . "AND blocker_pid IS NOT NULL");
}

# ---------------------------------------------------------------------------
# 1. A long reader: the migration waits outside the queue, the application
#    goes on, the wait is reported, the migration ends right after the reader.
# ---------------------------------------------------------------------------
{
	my ($long, $long_pid) = blocker('report');
	my ($out, $err);
	my $mig = start_psql(\$out, \$err, undef,
		"SELECT status FROM migrate_apply('ALTER TABLE t ADD COLUMN c1 text;', 'lw-1')");
	ok(wait_for_view('lw-1'), 'lw-1: the migration waits for the reader');

	# not in the lock queue: pg_locks shows no ungranted lock on t, and the
	# migration waits on the reader's virtual transaction instead
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_locks WHERE relation = 't'::regclass AND NOT granted"),
		0, 'lw-1: nobody queues for a lock on t');
	# (it waits in slices, looking at the holders between two: polled)
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE $long_pid = ANY (pg_blocking_pids(pid)) "
			  . "AND query LIKE '%lw-1%' AND wait_event = 'virtualxid'"),
		'lw-1: the migration waits on the reader\'s virtual transaction');

	# the application reads and writes t meanwhile, without waiting for a
	# lock: each would fail at its lock_timeout if it queued behind the
	# migration (judged by the lock, not by the clock: a sanitizer build
	# makes every connection slow)
	my $t0 = time;
	my $done = 0;
	for my $i (1 .. 10)
	{
		my ($rc, $out, $err) = $node->psql('postgres',
			"SET lock_timeout = '1s'; UPDATE t SET v = v + 1 WHERE id = $i; SELECT count(*) FROM t");
		$done++ if $rc == 0 && $err eq '';
	}
	note sprintf('lw-1: 10 writes and reads while it waits took %.3f s', time - $t0);
	is($done, 10, 'lw-1: 10 writes and reads while it waits, none waiting for a lock');

	# the view: everything as superuser; bob sees no query text; alice sees
	# her own
	is( $node->safe_psql('postgres',
			"SELECT relation || '|' || wanted_mode || '|' || state || '|' || blocker_pid || '|' "
			  . "|| blocker_role || '|' || blocker_application || '|' || blocker_state || '|' "
			  . "|| regexp_replace(blocker_query, '\\s*;\$', '') || '|' || (blocker_xact_age > '0') "
			  . "FROM safe_migrate.lock_waits"),
		"public.t|ACCESS EXCLUSIVE|waiting for blocker|$long_pid|alice|report|idle in transaction|"
		  . "SELECT count(*) FROM t|true",
		'lw-1: safe_migrate.lock_waits names the blocker');
	is( as_role($node, 'bob',
			"SELECT blocker_pid || '|' || blocker_role || '|' || blocker_application || '|' "
			  . "|| coalesce(blocker_state, '(masked)') || '|' || coalesce(blocker_xact_age::text, '(masked)') "
			  . "|| '|' || coalesce(blocker_query, '(masked)') FROM safe_migrate.lock_waits"),
		"$long_pid|alice|report|(masked)|(masked)|(masked)",
		'lw-1: another role sees the blocker without its state, transaction age and query (as pg_stat_activity shows it)');
	is( as_role($node, 'alice',
			"SELECT coalesce(regexp_replace(blocker_query, '\\s*;\$', ''), '(masked)') "
			  . "FROM safe_migrate.lock_waits"),
		'SELECT count(*) FROM t',
		'lw-1: the blocker\'s role sees its query');
	is( as_role($node, 'bob',
			"SELECT count(*) FROM safe_migrate.lock_waits_raw() WHERE blocker_query IS NOT NULL "
			  . "OR blocker_state IS NOT NULL OR blocker_xact_start IS NOT NULL"),
		0, 'lw-1: the function behind the view masks too');

	# migrate_plan shows the blocker of each statement
	like(
		$node->safe_psql('postgres',
			"SELECT blockers FROM migrate_plan('ALTER TABLE t ADD COLUMN zz int;')"),
		qr/^session $long_pid \(role alice, application "report", idle in transaction, transaction open [0-9.]+ s\): SELECT count\(\*\) FROM t/,
		'lw-1: migrate_plan shows the blocker');
	is( $node->safe_psql('postgres',
			"SELECT blockers IS NULL FROM migrate_plan('CREATE INDEX CONCURRENTLY t_v ON t (v);')"),
		't', 'lw-1: no blocker for a lock the reader does not conflict with');

	sleep(1);
	$mig->pump_nb;
	ok($mig->pumpable, 'lw-1: still waiting while the reader is open');
	is(column_exists('c1'), 0, 'lw-1: column c1 not there yet');

	my $end = time;
	$long->query_safe('COMMIT');
	$mig->finish;
	my $after = time - $end;
	is($out =~ s/\s+$//r, 'applied', 'lw-1: applied');
	ok($after < 1.0, sprintf('lw-1: it ended %.3f s after the reader', $after));
	like($err,
		qr/NOTICE:  migration "lw-1" waits for session $long_pid to end before it locks table public\.t/,
		'lw-1: NOTICE names the blocker');
	like($err,
		qr/Blocker: session $long_pid \(role alice, application "report", idle in transaction, transaction open [0-9.]+ s\): SELECT count\(\*\) FROM t/,
		'lw-1: NOTICE details the blocker and its query');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.lock_waits'),
		0, 'lw-1: the view is empty afterwards');
	$long->quit;
}

# ---------------------------------------------------------------------------
# 2. The deadline: an idle-in-transaction session that never ends; the
#    migration gives up with 55P03 naming the table and the blocker, in the
#    runner too (a script with CREATE INDEX CONCURRENTLY).
# ---------------------------------------------------------------------------
for my $case (['caller', 'ALTER TABLE t ADD COLUMN c2 text;'],
	['runner', 'ALTER TABLE t ADD COLUMN c2 text; CREATE INDEX CONCURRENTLY t_v2 ON t (v);'])
{
	my ($path, $script) = @$case;
	my ($idle, $idle_pid) = blocker('idler');
	my $t0 = time;
	my ($stdout, $stderr);
	my $mig = start_psql(\$stdout, \$stderr, undef, '\\set VERBOSITY verbose',
		"SET safe_migrate.lock_wait_deadline = '3s'",
		"SELECT status FROM migrate_apply('$script', 'lw-2-$path')");
	ok(wait_for_view("lw-2-$path"), "lw-2 ($path): the wait shows in the view");
	sleep(0.5);
	# (the runner's wait runs in slices of transactions of its own)
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM safe_migrate.lock_waits WHERE version = 'lw-2-$path' "
			  . "AND blocker_pid = $idle_pid AND state = 'waiting for blocker'"),
		1, "lw-2 ($path): and stays there while it waits");
	eval { $mig->finish; };
	my $rc = $mig->result(0);
	my $took = time - $t0;
	isnt($rc, 0, "lw-2 ($path): fails at the deadline");
	like($stderr,
		qr/ERROR:  55P03: migration "lw-2-$path" could not lock table public\.t: session $idle_pid held a conflicting lock for all of safe_migrate\.lock_wait_deadline/,
		"lw-2 ($path): 55P03 naming the table and the blocker");
	like($stderr, qr/DETAIL:  It waited [0-9.]+ s outside the lock queue for ACCESS EXCLUSIVE on public\.t\. Blocker: session $idle_pid \(role alice, application "idler", idle in transaction/,
		"lw-2 ($path): DETAIL describes the blocker");
	like($stderr, qr/HINT:  End that session .*pg_terminate_backend\($idle_pid\)/,
		"lw-2 ($path): HINT says what to do");
	ok($took > 2.9 && $took < 12, sprintf("lw-2 ($path): gave up after %.3f s", $took));
	is( $node->safe_psql('postgres',
			"SELECT status || '|' || sqlstate FROM safe_migrate.history WHERE version = 'lw-2-$path'"),
		'failed|55P03', "lw-2 ($path): recorded as failed with 55P03");
	is(column_exists('c2'), 0, "lw-2 ($path): nothing applied");
	is($idle->query_safe('SELECT 1'), '1', "lw-2 ($path): the blocker was left alone");
	$idle->query_safe('COMMIT');
	$idle->quit;
}

# ---------------------------------------------------------------------------
# 2b. A cancel while it waits (here the caller's statement_timeout) is a
#     failure like any other: recorded in the history, nothing applied.
# ---------------------------------------------------------------------------
for my $case (['caller', 'ALTER TABLE t ADD COLUMN c3 text;'],
	['runner', 'ALTER TABLE t ADD COLUMN c3 text; CREATE INDEX CONCURRENTLY t_v3 ON t (v);'])
{
	my ($path, $script) = @$case;
	my ($idle, $idle_pid) = blocker('idler');
	my ($stdout, $stderr);
	my $mig = start_psql(\$stdout, \$stderr, undef,
		"SET statement_timeout = '2s'",
		"SELECT status FROM migrate_apply('$script', 'lw-2b-$path')");
	ok(wait_for_view("lw-2b-$path"), "lw-2b ($path): the wait shows in the view");
	eval { $mig->finish; };
	isnt($mig->result(0), 0, "lw-2b ($path): the timeout ends it");
	like($stderr, qr/canceling statement/, "lw-2b ($path): as a cancel");
	# (the runner records it as it stops, after its caller has returned;
	# until then its attempt is in the history as 'running')
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM safe_migrate.history WHERE version = 'lw-2b-$path' "
			  . "AND status <> 'running'"),
		"lw-2b ($path): the attempt ends");
	is( $node->safe_psql('postgres',
			"SELECT status || '|' || sqlstate FROM safe_migrate.history WHERE version = 'lw-2b-$path'"),
		'failed|57014', "lw-2b ($path): recorded as failed with 57014");
	is(column_exists('c3'), 0, "lw-2b ($path): nothing applied");
	$idle->query_safe('COMMIT');
	$idle->quit;
}

# ---------------------------------------------------------------------------
# 2c. A cancel that arrives together with a lock timeout.  PostgreSQL reports
#     the two, pending at once, as the lock timeout; a migration that waits in
#     slices of lock_timeout (or retries after one) used to go on waiting as
#     if nobody had asked it to stop: the caller got its error, and its runner
#     applied the migration later (or its own statement_timeout was ignored).
#     Made certain here: the waiting process is stopped (SIGSTOP) until its
#     slice's lock timeout and the cancel are both pending, then continued.
# ---------------------------------------------------------------------------
sub pid_of_waiter
{
	my ($version, $strategy, $who) = @_;
	if ($strategy eq 'wait')
	{
		$node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM safe_migrate.lock_waits WHERE version = '$version' "
			  . "AND blocker_pid IS NOT NULL")
		  or return undef;
		return $node->safe_psql('postgres',
			"SELECT pid FROM safe_migrate.lock_waits WHERE version = '$version'");
	}
	# retry: in the lock queue, with the step's lock_timeout; between two
	# attempts it is briefly out of the queue, so its pid is read by the
	# same query that sees it waiting
	my $which =
	  $who eq 'the runner'
	  ? "a.backend_type = 'safe_migrate runner'"
	  : "a.query LIKE '%$version%'";
	for (1 .. 1800)
	{
		my $pid = $node->safe_psql('postgres',
			"SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
			  . "WHERE l.relation = 't'::regclass AND NOT l.granted AND $which LIMIT 1");
		return $pid if $pid ne '';
		select(undef, undef, undef, 0.1);
	}
	return undef;
}

for my $case (
	# [name, strategy, script, who is stopped, how the cancel comes]
	[ 'runner-timeout', 'wait', 'ALTER TABLE t ADD COLUMN c4 text; CREATE INDEX CONCURRENTLY t_v4 ON t (v);', 'the runner', 'statement_timeout' ],
	[ 'caller-timeout', 'wait', 'ALTER TABLE t ADD COLUMN c4 text;', 'the caller', 'statement_timeout' ],
	[ 'caller-cancel', 'wait', 'ALTER TABLE t ADD COLUMN c4 text;', 'the caller', 'pg_cancel_backend' ],
	[ 'runner-cancel', 'wait', 'ALTER TABLE t ADD COLUMN c4 text; CREATE INDEX CONCURRENTLY t_v4 ON t (v);', 'the runner', 'pg_cancel_backend' ],
	[ 'retry-cancel', 'retry', 'ALTER TABLE t ADD COLUMN c4 text;', 'the caller', 'pg_cancel_backend' ],
	[ 'retry-runner', 'retry', 'ALTER TABLE t ADD COLUMN c4 text; CREATE INDEX CONCURRENTLY t_v4 ON t (v);', 'the runner', 'pg_cancel_backend' ])
{
	my ($name, $strategy, $script, $who, $how) = @$case;
	my $version = "lw-2c-$name";
	my ($idle, $idle_pid) = blocker('idler');
	my ($stdout, $stderr);
	# a deadline well short of the test's patience, well past the cancel:
	# a lost cancel shows as 55P03 at the deadline
	my @settings = (
		"SET safe_migrate.lock_strategy = $strategy",
		"SET safe_migrate.lock_wait_deadline = '20s'",
		"SET safe_migrate.lock_timeout = '300ms'",
		"SET safe_migrate.lock_retries = 100",
		"SET safe_migrate.lock_retry_delay = '10ms'");
	push @settings, "SET statement_timeout = '2s'" if $how eq 'statement_timeout';
	my $mig = start_psql(\$stdout, \$stderr, undef, @settings,
		"SELECT status FROM migrate_apply('$script', '$version')");
	my $pid = pid_of_waiter($version, $strategy, $who);
	ok(defined $pid && $pid =~ /^\d+$/, "lw-2c ($name): $who waits");
	my $t0 = time;
	kill 'STOP', $pid;
	# its slice (100 ms) or lock_timeout (300 ms) runs out while it is
	# stopped; so does the caller's statement_timeout, or the cancel comes
	if ($how eq 'statement_timeout')
	{
		sleep(2.5);
	}
	else
	{
		sleep(0.8);
		$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
		sleep(0.2);
	}
	kill 'CONT', $pid;
	eval { $mig->finish; };
	isnt($mig->result(0), 0, "lw-2c ($name): the migration fails");
	like($stderr, qr/canceling statement due to (statement timeout|user request)/,
		"lw-2c ($name): as a cancel, not at the deadline")
	  or diag($stderr);
	ok(time - $t0 < 15, sprintf("lw-2c ($name): %.1f s after the cancel", time - $t0));
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM safe_migrate.history WHERE version = '$version' "
			  . "AND status <> 'running'"),
		"lw-2c ($name): the attempt ends");
	is( $node->safe_psql('postgres',
			"SELECT status || '|' || sqlstate FROM safe_migrate.history WHERE version = '$version'"),
		'failed|57014', "lw-2c ($name): recorded as failed with 57014");
	$idle->query_safe('COMMIT');
	$idle->quit;
	# nothing applied, also once the blocker is gone: the runner stopped
	sleep(0.5);
	is(column_exists('c4'), 0, "lw-2c ($name): nothing applied");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'"),
		0, "lw-2c ($name): no runner left");
}

# ---------------------------------------------------------------------------
# 3. A stream of short transactions (no long-lived holder): the migration
#    takes its lock between them; no transaction of the stream is held up
#    for long.
# ---------------------------------------------------------------------------
{
	my @stream;
	for my $s (1 .. 3)
	{
		my ($o, $e) = ('', '');
		push @stream, [
			IPC::Run::start(
				[
					$psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres'), '-c',
					qq{DO \$\$
					DECLARE t0 timestamptz; worst float8 := 0; stop timestamptz := clock_timestamp() + interval '4 s';
					BEGIN
					  WHILE clock_timestamp() < stop LOOP
					    t0 := clock_timestamp();
					    UPDATE t SET v = v + 1 WHERE id = $s;
					    COMMIT;
					    worst := greatest(worst, extract(epoch FROM clock_timestamp() - t0));
					    PERFORM pg_sleep(0.002);
					  END LOOP;
					  RAISE NOTICE 'worst=%', worst;
					END \$\$;}
				],
				'>', \$o, '2>', \$e,
				IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default)),
			\$e ];
	}
	sleep(0.5);
	my $t0 = time;
	is( $node->safe_psql('postgres',
			"SELECT status FROM migrate_apply('ALTER TABLE t ADD COLUMN c3 text;', 'lw-3')"),
		'applied', 'lw-3: applied during a stream of short transactions');
	my $took = time - $t0;
	ok($took < 3, sprintf('lw-3: it took %.3f s', $took));
	my $worst = 0;
	for my $s (@stream)
	{
		$s->[0]->finish;
		my ($w) = ${ $s->[1] } =~ /worst=([0-9.e-]+)/;
		$worst = $w if defined $w && $w > $worst;
	}
	note "lw-3: slowest transaction of the stream: $worst s";
	ok($worst < 0.5, "lw-3: no transaction of the stream waited long ($worst s)");
}

# ---------------------------------------------------------------------------
# 4. Cancellation: off by default; admin-only; only read-only sessions
#    without a strong lock; recorded in the history.
# ---------------------------------------------------------------------------
{
	my ($rc, $o, $e) = try_as_role($node, 'alice',
		"SET safe_migrate.lock_wait_cancel_after = '1s'");
	like($e, qr/permission denied to set parameter "safe_migrate.lock_wait_cancel_after"/,
		'lw-4: a plain role may not enable cancellation');

	my $try = sub {
		my ($version, $col, $deadline) = @_;
		my ($rc, $stdout, $stderr) = $node->psql(
			'postgres',
			"SET safe_migrate.lock_wait_cancel_after = '500ms';\n"
			  . "SET safe_migrate.lock_wait_deadline = '$deadline';\n"
			  . "SELECT status FROM migrate_apply('ALTER TABLE t ADD COLUMN $col text;', '$version');");
		return ($rc, $stdout, $stderr);
	};

	# a session that wrote: never cancelled
	my ($w, $w_pid) = blocker('writer', 'UPDATE t SET v = v WHERE id = 500');
	# (migrate_plan: a foreign key to t needs SHARE ROW EXCLUSIVE on t, which
	# the writer's ROW EXCLUSIVE holds off; a reader would not)
	like(
		$node->safe_psql('postgres',
			"SELECT blockers FROM migrate_plan('CREATE TABLE t_child (id int REFERENCES t (id));')"),
		qr/^session $w_pid \(role alice, application "writer", idle in transaction/,
		'lw-4a: migrate_plan shows the blocker of a referenced table');
	($rc, $o, $e) = $try->('lw-4a', 'c4', '2s');
	isnt($rc, 0, 'lw-4a: a writer is not cancelled: the deadline passes');
	like($e, qr/does not cancel session $w_pid: it has written/, 'lw-4a: says why');
	is($w->query_safe('SELECT 1'), '1', 'lw-4a: the writer is alive');
	$w->query_safe('ROLLBACK');
	$w->quit;

	# a session that holds LOCK TABLE ... IN SHARE MODE (read-only so far)
	my ($l, $l_pid) = blocker('locker', 'LOCK TABLE t IN SHARE MODE');
	($rc, $o, $e) = $try->('lw-4b', 'c4', '2s');
	isnt($rc, 0, 'lw-4b: a LOCK TABLE holder is not cancelled');
	like($e, qr/does not cancel session $l_pid: it holds a lock of SHARE or stronger/,
		'lw-4b: says why');
	is($l->query_safe('SELECT 1'), '1', 'lw-4b: the lock holder is alive');
	$l->query_safe('COMMIT');
	$l->quit;

	# without the setting nobody is cancelled (lw-2 above); with it, a
	# read-only idle-in-transaction session is ended
	my ($r, $r_pid) = blocker('reader');
	($rc, $o, $e) = $try->('lw-4c', 'c4', '30s');
	is($rc, 0, 'lw-4c: the migration went through') or diag($e);
	like($e, qr/WARNING:  lock wait: terminated session $r_pid \(role alice, application "reader", idle in transaction/,
		'lw-4c: the termination is reported');
	like( $node->safe_psql('postgres',
			"SELECT array_to_string(warnings, ';') FROM safe_migrate.history WHERE version = 'lw-4c'"),
		qr/lock wait: terminated session $r_pid/,
		'lw-4c: and recorded in the history');
	is(column_exists('c4'), 1, 'lw-4c: column c4 added');
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $r_pid"),
		'lw-4c: the blocker is gone');
	eval { $r->quit; };

	# the same in a runner (a script with CREATE INDEX CONCURRENTLY): its
	# checks run between its transactions
	($r, $r_pid) = blocker('reader2');
	($rc, $o, $e) = $node->psql(
		'postgres',
		"SET safe_migrate.lock_wait_cancel_after = '500ms';\n"
		  . "SELECT status FROM migrate_apply('ALTER TABLE t ADD COLUMN c7 text; "
		  . "CREATE INDEX CONCURRENTLY t_v7 ON t (v);', 'lw-4e');");
	is($rc, 0, 'lw-4e (runner): the migration went through') or diag($e);
	like( $node->safe_psql('postgres',
			"SELECT array_to_string(warnings, ';') FROM safe_migrate.history WHERE version = 'lw-4e'"),
		qr/lock wait: terminated session $r_pid \(role alice, application "reader2"/,
		'lw-4e (runner): the termination is recorded in the history');
	eval { $r->quit; };

	# a migration's role that may not signal the blocker (pg_cancel_backend
	# would refuse it), or that does not own the table, cancels nobody
	$node->safe_psql('postgres', q{
		CREATE ROLE carol LOGIN;
		CREATE TABLE t_carol (id int PRIMARY KEY);
		ALTER TABLE t_carol OWNER TO carol;
		GRANT SELECT ON t_carol TO alice;
		ALTER ROLE carol SET safe_migrate.lock_wait_cancel_after = '500ms';
		ALTER ROLE carol SET safe_migrate.lock_wait_deadline = '2s';
		GRANT CREATE ON SCHEMA public TO carol;
		GRANT REFERENCES ON t TO carol;
	});
	for my $case ([ 'lw-4f', 'SELECT count(*) FROM t_carol', 'ALTER TABLE t_carol ADD COLUMN c9 text',
			qr/does not cancel session (\d+): the migration's role may not signal it/ ],
		# a foreign key to t: SHARE ROW EXCLUSIVE on a table carol may
		# reference but does not own
		[ 'lw-4g', 'UPDATE t SET v = v WHERE false', 'CREATE TABLE t_ref (id int REFERENCES t (id))',
			qr/does not cancel session (\d+): the migration's role does not own the table/ ])
	{
		my ($version, $read, $statement, $why) = @$case;
		my ($c, $c_pid) = blocker("reader-$version", $read);
		($rc, $o, $e) = try_as_role($node, 'carol',
			"SELECT status FROM migrate_apply('$statement;', '$version')");
		isnt($rc, 0, "$version: the migration waits until its deadline");
		like($e, $why, "$version: the blocker is not cancelled, and the notice says why");
		is($c->query_safe('SELECT 1'), '1', "$version: the blocker is alive");
		$c->query_safe('ROLLBACK');
		$c->quit;
	}
	# with pg_signal_backend it may, on its own table
	$node->safe_psql('postgres', 'GRANT pg_signal_backend TO carol');
	($r, $r_pid) = blocker('reader-lw-4h', 'SELECT count(*) FROM t_carol');
	($rc, $o, $e) = try_as_role($node, 'carol',
		"SELECT status FROM migrate_apply('ALTER TABLE t_carol ADD COLUMN c9 text;', 'lw-4h')");
	is($rc, 0, 'lw-4h: with pg_signal_backend the migration goes through') or diag($e);
	like($e, qr/lock wait: terminated session $r_pid/, 'lw-4h: the blocker was ended');
	eval { $r->quit; };

	# an active read-only query: cancelled (its session stays)
	my $q = $node->background_psql('postgres',
		extra_params => [ '-U', 'alice' ], on_error_stop => 0);
	$q->query_safe("SET application_name = 'querier'");
	$q->query_safe('BEGIN');
	$q->query_safe('SELECT count(*) FROM t');
	my $q_pid = $q->query_safe('SELECT pg_backend_pid()') =~ s/\s+//gr;
	$q->query_until(qr/started/, "\\echo started\nSELECT pg_sleep(20);\n");
	$node->poll_query_until('postgres',
		"SELECT state = 'active' FROM pg_stat_activity WHERE pid = $q_pid");
	($rc, $o, $e) = $try->('lw-4d', 'c5', '30s');
	is($rc, 0, 'lw-4d: the migration went through') or diag($e);
	like($e, qr/cancelled the query of session $q_pid/, 'lw-4d: the cancellation is reported');
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $q_pid"),
		1, 'lw-4d: the session itself is still there');
	$q->quit;
}

# ---------------------------------------------------------------------------
# 5. lock_strategy = retry brings back the old behaviour (lock_timeout,
#    lock_retries with backoff: the migration counts its retries).
# ---------------------------------------------------------------------------
{
	my ($long, $long_pid) = blocker('old');
	my ($out, $err);
	my $mig = start_psql(\$out, \$err, undef,
		'SET safe_migrate.lock_strategy = retry',
		"SET safe_migrate.lock_timeout = '50ms'",
		'SET safe_migrate.lock_retries = 1000',
		"SELECT status || '|' || (lock_retries > 0) FROM migrate_apply('ALTER TABLE t ADD COLUMN c6 text;', 'lw-5')");
	sleep(1.5);
	$long->query_safe('COMMIT');
	$mig->finish;
	is($out =~ s/\s+$//r, 'applied|true', 'lw-5: retry strategy: applied after retries');
	like($err, qr/lock timeout on statement 1 of the migration, retry/, 'lw-5: with the old notices');
	$long->quit;
}

# ---------------------------------------------------------------------------
# 6. An autovacuum holds the table (a slow one): it yields after
#    deadlock_timeout, as it would to a lock request in the queue.
# ---------------------------------------------------------------------------
{
	$node->safe_psql(
		'postgres', q{
		ALTER SYSTEM SET autovacuum = on;
		ALTER SYSTEM SET autovacuum_naptime = '1s';
		ALTER SYSTEM SET deadlock_timeout = '300ms';
		SELECT pg_reload_conf();
		CREATE TABLE av (id int, pad text)
		  WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
		        autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
		INSERT INTO av SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g;
		DELETE FROM av WHERE id % 2 = 0;
	});
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
			  . "AND query LIKE '%av%'"),
		'lw-6: an autovacuum works on av');
	my ($rc, $o, $e) = $node->psql('postgres',
		"SELECT status FROM migrate_apply('ALTER TABLE av ADD COLUMN note text;', 'lw-6');");
	is($rc, 0, 'lw-6: the migration went through') or diag($e);
	like($e, qr/waits for session \d+ to end before it locks table public\.av.*\n.*application "", autovacuum\b/,
		'lw-6: it waited for the autovacuum');
	ok( $node->log_contains(qr/sending cancel to blocking autovacuum PID/),
		'lw-6: the autovacuum was asked to yield');
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET ALL; SELECT pg_reload_conf();');
}

# ---------------------------------------------------------------------------
# 7. A runner whose own caller holds the lock it needs (the query calling
#    migrate_rollback reads the table): an error at once, not a wait until
#    the deadline.
# ---------------------------------------------------------------------------
{
	$node->safe_psql('postgres',
		"SELECT status FROM migrate_apply(\$\$-- migrate:up\nCREATE INDEX t_v_lw7 ON t (v);\n"
		  . "-- migrate:down\nDROP INDEX t_v_lw7;\$\$, 'lw-7')");
	my $t0 = time;
	my ($rc, $o, $e) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT r.status FROM t, migrate_rollback('lw-6') r LIMIT 1;");
	my $took = time - $t0;
	isnt($rc, 0, 'lw-7: the rollback fails');
	like($e,
		qr/ERROR:  55P03: migration "lw-7" could not lock table public\.t: the session that called the migration holds a conflicting lock on it/,
		'lw-7: it says why');
	ok($took < 5, sprintf('lw-7: at once (%.3f s), not at the deadline', $took));
}

$node->stop;
done_testing();
