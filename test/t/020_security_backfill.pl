# Copyright: safe_migrate authors
#
# Backfill security: each attack played as an attacker would, with
#  - app: an unprivileged application role (LOGIN) that owns schemas and
#    tables,
#  - upd: a role with SELECT and UPDATE on one table of app's only,
# asserting the safe outcome: nobody becomes superuser, the server never
# restarts, and what cannot be made safe is refused at submit time.
#
#  1. The worker is the owner: session_user and current_user in the job's
#     code are the submitter, and pg_stat_activity shows the worker as it.
#  2. The job's code cannot plant objects in pg_temp (a function, a domain
#     named int8) for the worker's own SQL to run later, cannot SET ROLE or
#     SET SESSION AUTHORIZATION, even from a deferred trigger at commit.
#  3. Multi-statement set clauses and a where clause that escapes its
#     parentheses are refused at submit; nothing they carry ever runs.
#  4. A set clause that assigns a key column is refused.
#  5. Names resolve with the submitter's search_path at submit time.
#  6. Jobs on different tables run at once while an older one is paused.
#  7. Cancelling a job that sleeps (pause_ms of an hour) returns at once and
#     the worker ends.
#  8. Option bounds, temporary tables, roles without LOGIN are refused; a
#     job whose owner lost LOGIN fails with why, instead of running.
#  9. A standby refuses migrate_backfill and the controls, saying why.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;
use Time::HiRes qw(time usleep);

my $node = start_node('bf_security', allows_streaming => 1);

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE app LOGIN;
	CREATE ROLE upd LOGIN;
	CREATE ROLE gone LOGIN;
	CREATE SCHEMA app AUTHORIZATION app;
	CREATE SCHEMA m AUTHORIZATION app;
	GRANT USAGE ON SCHEMA app TO upd;
});

my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

sub as { return as_role($node, @_) }

# ($rc, $stdout, $stderr) of $sql as $role, errors in verbose form
sub try_as { return try_as_role($node, @_, verbose => 1) }

sub fails_like { return fails_as_role($node, @_) }

sub job_value
{
	my ($id, $expr) = @_;
	return $node->safe_psql('postgres',
		"SELECT $expr FROM safe_migrate.backfill_jobs WHERE id = $id");
}

sub job_count
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.backfill_jobs');
}

sub nobody_escalated
{
	my ($name) = @_;
	is( $node->safe_psql('postgres',
			"SELECT string_agg(rolname || '=' || rolsuper, ',' ORDER BY rolname) FROM pg_roles "
			  . "WHERE rolname IN ('app', 'upd', 'gone')"),
		'app=false,gone=false,upd=false',
		"$name: no attacker is superuser");
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
		$started, "$name: the server did not restart");
}

# The workers of running jobs (backend type 'safe_migrate backfill').
sub workers
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill'");
}

as('app', q{
	CREATE TABLE app.items (id int PRIMARY KEY, name text, note text, who text);
	INSERT INTO app.items SELECT g, 'Name' || g FROM generate_series(1, 200) g;
	CREATE TABLE app.log (what text, result text);
	CREATE TABLE app.secret (s text);
	INSERT INTO app.secret VALUES ('s3cret');
	GRANT SELECT, UPDATE ON app.items TO upd;
	GRANT INSERT ON app.log TO upd;
});

# ---------------------------------------------------------------------------
# 1. The worker is connected as the job's owner
# ---------------------------------------------------------------------------
{
	my $id = as('app',
		"SELECT migrate_backfill('app.items', 'who = session_user || ''/'' || current_user')");
	is(as('app', "SELECT migrate_backfill_wait($id, '3 min')"), 'completed', 'identity: the job completes');
	is(as('app', 'SELECT who, count(*) FROM app.items GROUP BY who'),
		'app/app|200', 'identity: session_user and current_user of the job are app');

	# seen from outside while it runs
	my $slow = as('app',
		"SELECT migrate_backfill('app.items', 'note = ''x''', batch_size => 1, pause_ms => 300)");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill' "
			  . "AND usename = 'app' AND application_name = 'safe_migrate backfill'"),
		"identity: the job's worker shows in pg_stat_activity as app");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill' "
			  . "AND usesysid IN (SELECT oid FROM pg_roles WHERE rolsuper)"),
		0, 'identity: no backfill worker is connected as a superuser');
	is(as('app', "SELECT migrate_backfill_cancel($slow)"), 'cancelled', 'identity: the slow job is cancelled');
}

# ---------------------------------------------------------------------------
# 2. Code of the job cannot leave anything behind for the worker's own SQL,
#    nor change who it is
# ---------------------------------------------------------------------------
as('app', q{
	-- what the attacker hopes a superuser runs later
	CREATE FUNCTION app.escalate() RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		ALTER ROLE app SUPERUSER;
		RETURN true;
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO app.log VALUES ('escalate as ' || current_user, SQLERRM);
		RETURN true;
	END $$;
	-- every trick, each one's outcome logged
	CREATE FUNCTION app.plant(i int) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
		tries text[] := ARRAY[
			'CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (app.escalate())',
			'CREATE FUNCTION pg_temp.count(anyelement) RETURNS bigint LANGUAGE sql AS ''SELECT 1::bigint''',
			'CREATE TEMP TABLE backfill_jobs (id int)',
			'SET ROLE postgres',
			'SET SESSION AUTHORIZATION postgres',
			'ALTER ROLE app SUPERUSER',
			'SELECT pg_catalog.set_config(''search_path'', ''pg_temp, app'', false)'];
		t text;
	BEGIN
		IF i <> 1 THEN RETURN 'x'; END IF;
		FOREACH t IN ARRAY tries LOOP
			BEGIN
				EXECUTE t;
				INSERT INTO app.log VALUES (t, 'ok');
			EXCEPTION WHEN OTHERS THEN
				INSERT INTO app.log VALUES (t, SQLERRM);
			END;
		END LOOP;
		RETURN 'planted';
	END $$;
});
{
	my $id = as('app', "SELECT migrate_backfill('app.items', 'note = app.plant(id)')");
	is(as('app', "SELECT migrate_backfill_wait($id, '3 min')"), 'completed',
		'pg_temp: the job whose code tries every trick completes');
	my %log = map { split /\|/, $_, 2 } split /\n/, as('app', 'SELECT what, result FROM app.log');
	note "pg_temp: $_ => $log{$_}" for sort keys %log;
	like($log{'CREATE TEMP TABLE backfill_jobs (id int)'},
		qr/cannot create temporary table within security-restricted operation/,
		'pg_temp: no temporary table can be planted (a security-restricted operation)');
	# a domain named int8 is what the worker's own "::int8" would have
	# picked up; PostgreSQL refuses types in pg_temp inside a restricted
	# operation where it can (and the worker's SQL is qualified anyway)
	# PostgreSQL refuses only temporary tables in a restricted operation
	# (tablecmds.c); whether a domain can be created in pg_temp depends on
	# whether the session's temporary schema exists already (it does on the
	# assert-enabled builds of 15.18, 17.11 and 18.6, it did not with
	# Debian's 15.20).  Either way it must change nothing: the assertions
	# below (escalate() never ran as another role, the bookkeeping is right)
	# are what the worker's qualified SQL guarantees.
	note "pg_temp: CREATE DOMAIN pg_temp.int8 => "
	  . $log{'CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (app.escalate())'};
	like($log{'SET ROLE postgres'},
		qr/cannot set parameter "role" within security-(definer function|restricted operation)/,
		'pg_temp: SET ROLE is refused');
	like($log{'SET SESSION AUTHORIZATION postgres'},
		qr/cannot set parameter "session_authorization" within security-(definer function|restricted operation)|permission denied/,
		'pg_temp: SET SESSION AUTHORIZATION is refused');
	like($log{'ALTER ROLE app SUPERUSER'}, qr/permission denied|must be superuser/,
		'pg_temp: ALTER ROLE ... SUPERUSER is refused (the job runs as app)');
	is( as('app', "SELECT count(*) FROM app.log WHERE what LIKE 'escalate as %' AND what <> 'escalate as app'"),
		0, 'pg_temp: escalate() never ran as another role than app');
	is(job_value($id, "status || ' ' || rows_done || ' ' || rows_examined"), 'completed 200 200',
		"pg_temp: the worker's own bookkeeping was not disturbed");
	nobody_escalated('pg_temp');
}

# the same from a deferred trigger, which fires when the batch commits
as('app', q{
	DELETE FROM app.log;
	CREATE TABLE app.trig (id int PRIMARY KEY, v int);
	INSERT INTO app.trig SELECT g, 0 FROM generate_series(1, 5) g;
	CREATE FUNCTION app.at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		BEGIN
			CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (app.escalate());
			INSERT INTO app.log VALUES ('domain at commit', 'ok');
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO app.log VALUES ('domain at commit', SQLERRM);
		END;
		INSERT INTO app.log VALUES ('trigger as', session_user || '/' || current_user);
		RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER trig_deferred AFTER UPDATE ON app.trig
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app.at_commit();
});
{
	my $id = as('app', "SELECT migrate_backfill('app.trig', 'v = v + 1')");
	is(as('app', "SELECT migrate_backfill_wait($id, '3 min')"), 'completed',
		'deferred trigger: the job completes');
	as('app', q{CREATE OR REPLACE FUNCTION app.at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		BEGIN
			CREATE TEMP TABLE planted (id int);
			INSERT INTO app.log VALUES ('temp table at commit', 'ok');
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO app.log VALUES ('temp table at commit', SQLERRM);
		END;
		INSERT INTO app.log VALUES ('trigger as', session_user || '/' || current_user);
		RETURN NULL;
	END $$});
	my $id2 = as('app', "SELECT migrate_backfill('app.trig', 'v = v + 1')");
	is(as('app', "SELECT migrate_backfill_wait($id2, '3 min')"), 'completed',
		'deferred trigger: the second job completes');
	like( as('app', "SELECT DISTINCT result FROM app.log WHERE what = 'temp table at commit'"),
		qr/^cannot create temporary table within security-restricted operation$/,
		'deferred trigger: it runs as a restricted operation too (no temporary table)');
	is(as('app', "SELECT DISTINCT result FROM app.log WHERE what = 'trigger as'"),
		'app/app', 'deferred trigger: it ran as app, in a session of app');
	nobody_escalated('deferred trigger');
}

# ---------------------------------------------------------------------------
# 3. Clauses are one assignment list and one expression
# ---------------------------------------------------------------------------
{
	my $before = job_count();
	fails_like('app',
		q{SELECT migrate_backfill('app.items', $$note = note WHERE false; CREATE FUNCTION app.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'; UPDATE app.items SET note = 'pwned'$$)},
		qr/ERROR:  42601: set_clause of a backfill must be one list of column assignments\nDETAIL:  It holds more than one statement/,
		'multi-statement set clause');
	is(as('app', "SELECT count(*) FROM pg_proc WHERE proname = 'evil'"), 0,
		'multi-statement set clause: its CREATE FUNCTION never ran');
	fails_like('app', q{SELECT migrate_backfill('app.items', 'note = ''pwned''', 'false) OR (id = 1')},
		qr/ERROR:  42601: syntax error at or near "\)"\n.*where_clause of a backfill of app\.items/s,
		'where clause escaping its parentheses');
	fails_like('app', q{SELECT migrate_backfill('app.items', 'note = ''pwned''', 'true; DELETE FROM app.items')},
		qr/ERROR:  42601: where_clause of a backfill must be one boolean expression/,
		'where clause with a second statement');
	fails_like('app', q{SELECT migrate_backfill('app.items', 'note = ''pwned''', 'true UNION SELECT false')},
		qr/ERROR:  42601: where_clause of a backfill must be one boolean expression/,
		'where clause that is a query');
	fails_like('app', q{SELECT migrate_backfill('app.items', 'note = ''pwned'' RETURNING (SELECT s FROM app.secret)')},
		qr/ERROR:  42601: set_clause of a backfill must be one list of column assignments/,
		'set clause with RETURNING');
	is(job_count(), $before, 'refused clauses: no job was recorded');
	is(as('app', "SELECT count(*) FROM app.items WHERE note = 'pwned'"), 0,
		'refused clauses: no row was touched');
}

# ---------------------------------------------------------------------------
# 4. No key column assigned
# ---------------------------------------------------------------------------
{
	my $before = job_count();
	fails_like('app', q{SELECT migrate_backfill('app.items', 'id = id + 10000')},
		qr/ERROR:  22023: set_clause of a backfill of app\.items must not assign key column "id"/,
		'assigning the key column');
	fails_like('app', q{SELECT migrate_backfill('app.items', 'note = ''y'', id = id')},
		qr/must not assign key column "id"/, 'assigning the key column among others');
	is(job_count(), $before, 'key column: no job was recorded');
	is(as('app', 'SELECT max(id) FROM app.items'), 200, 'key column: no key changed');
}

# ---------------------------------------------------------------------------
# 5. Names resolve with the submitter's search_path, at submit time
# ---------------------------------------------------------------------------
as('app', q{
	CREATE FUNCTION m.norm(t text) RETURNS text LANGUAGE sql AS $$SELECT 'm:' || lower(t)$$;
	CREATE FUNCTION app.norm(t text) RETURNS text LANGUAGE sql AS $$SELECT 'app:' || lower(t)$$;
});
$node->safe_psql('postgres',
	q{CREATE FUNCTION public.norm(t text) RETURNS text LANGUAGE sql AS $$SELECT 'public:' || t$$});
{
	my $id = as('app',
		"SET search_path = m, app, public; SELECT migrate_backfill('app.items', 'note = norm(name)', 'norm(name) IS NOT NULL')");
	is(as('app', "SELECT migrate_backfill_wait($id, '3 min')"), 'completed', 'search_path: the job completes');
	is( as('app', "SELECT count(*) FILTER (WHERE note = 'm:' || lower(name)) || '/' || count(*) FROM app.items"),
		'200/200', "search_path: every row got m.norm(), the submitter's, not app.norm() or public.norm()");
	is(job_value($id, 'set_clause'), 'note = m.norm(name)', 'search_path: the stored clause is qualified');
}

# The table is the one submitted (by OID), whatever its name has become: a
# look-alike created under the old name is not touched
as('app', q{
	CREATE TABLE app.r (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
	INSERT INTO app.r SELECT g FROM generate_series(1, 50) g;
});
{
	my $id = as('app', q{
		BEGIN;
		SELECT migrate_backfill('app.r', 'v = v + 1') AS id \gset
		SELECT migrate_backfill_pause(:id) \g /dev/null
		COMMIT;
		SELECT :id;});
	# (the safe-DDL policy would rather keep a view under the old name)
	$node->safe_psql('postgres', q{
		SET safe_migrate.policy = 'warn';
		SET client_min_messages = error;
		ALTER TABLE app.r RENAME TO r_renamed;
		CREATE TABLE app.r (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
		ALTER TABLE app.r OWNER TO app;
		INSERT INTO app.r SELECT g FROM generate_series(1, 50) g;
	});
	as('app', "SELECT migrate_backfill_resume($id)");
	is(as('app', "SELECT migrate_backfill_wait($id, '3 min')"), 'completed', 'renamed table: the job completes');
	is(as('app', 'SELECT count(*) FILTER (WHERE v = 1) || \'/\' || count(*) FROM app.r_renamed'),
		'50/50', 'renamed table: the submitted table was updated under its new name');
	is(as('app', 'SELECT count(*) FROM app.r WHERE v <> 0'), 0,
		'renamed table: the look-alike under the old name was not touched');
}

# ---------------------------------------------------------------------------
# The worker holds the owner's rights and no more: upd may update app.items,
# but not read app.secret nor touch any other table
# ---------------------------------------------------------------------------
{
	fails_like('upd', q{SELECT migrate_backfill('app.log', 'what = ''x''')},
		qr/ERROR:  42501: permission denied for table log/,
		'upd backfilling a table it may not update');
	# UPDATE alone is not enough: every batch reads the key
	$node->safe_psql('postgres',
		'CREATE ROLE upd_only LOGIN; GRANT USAGE ON SCHEMA app TO upd_only; GRANT UPDATE ON app.items TO upd_only');
	fails_like('upd_only', q{SELECT migrate_backfill('app.items', 'note = NULL')},
		qr/ERROR:  42501: permission denied for column "id" of table app\.items\nDETAIL:  A backfill reads the key/,
		'a role with UPDATE but no SELECT on the key');
	my $id = as('upd', q{SELECT migrate_backfill('app.items', 'note = (SELECT s FROM app.secret LIMIT 1)')});
	like($id, qr/^\d+$/, 'upd submits a job that reads a table it may not read');
	fails_like('upd', "SELECT migrate_backfill_wait($id, '3 min')",
		qr/backfill job $id failed\nDETAIL:  permission denied for table secret/,
		"upd's job fails: it runs with upd's rights");
	is(job_value($id, 'last_sqlstate'), '42501', "upd's job: last_sqlstate 42501");
	is(as('app', "SELECT count(*) FROM app.items WHERE note = 's3cret'"), 0,
		"upd's job: the secret went nowhere");
	is(as('upd', "SELECT migrate_backfill_cancel($id)"), 'cancelled', 'upd controls its own job');
	my $app_job = as('app', q{SELECT max(id) FROM safe_migrate.backfills});
	fails_like('upd', "SELECT migrate_backfill_resume($app_job)",
		qr/ERROR:  42704: backfill job $app_job does not exist/, "upd controlling app's job");
	nobody_escalated('upd');
}

# ---------------------------------------------------------------------------
# 6. Several jobs at once; a paused one holds nothing back
# ---------------------------------------------------------------------------
as('app', q{
	CREATE TABLE app.p (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
	CREATE TABLE app.a (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
	CREATE TABLE app.b (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
	INSERT INTO app.p SELECT g FROM generate_series(1, 1000) g;
	INSERT INTO app.a SELECT g FROM generate_series(1, 1000) g;
	INSERT INTO app.b SELECT g FROM generate_series(1, 1000) g;
});
{
	my $paused = as('app', q{
		BEGIN;
		SELECT migrate_backfill('app.p', 'v = v + 1') AS id \gset
		SELECT migrate_backfill_pause(:id) \g /dev/null
		COMMIT;
		SELECT :id;});
	my $slow = "batch_size => 5, target_batch_ms => 1, pause_ms => 200";
	my $a = as('app', "SELECT migrate_backfill('app.a', 'v = v + 1', $slow)");
	my $b = as('app', "SELECT migrate_backfill('app.b', 'v = v + 1', $slow)");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 2 FROM safe_migrate.backfill_jobs WHERE id IN ($a, $b) "
			  . "AND status = 'running' AND rows_done > 0"),
		'concurrent: both jobs make progress while an older job is paused');
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill' "
			  . "AND query LIKE 'safe_migrate backfill job%'"),
		'concurrent: two workers run at once, one per job');
	# each goes on from where it was seen (polled: a slow server, a
	# sanitizer build, or the pacer seeing this test's own queries as an
	# application may space their batches by more than a second)
	my ($a1, $b1) = (job_value($a, 'rows_done'), job_value($b, 'rows_done'));
	ok( $node->poll_query_until(
			'postgres', "SELECT rows_done > $a1 FROM safe_migrate.backfill_jobs WHERE id = $a"),
		'concurrent: the first keeps going');
	ok( $node->poll_query_until(
			'postgres', "SELECT rows_done > $b1 FROM safe_migrate.backfill_jobs WHERE id = $b"),
		'concurrent: the second keeps going');
	is(job_value($paused, "status || ' ' || rows_done"), 'paused 0', 'concurrent: the paused job stays paused');
	as('app', "SELECT migrate_backfill_cancel($a), migrate_backfill_cancel($b), migrate_backfill_cancel($paused)");
	ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill'"),
		'concurrent: the workers end after the cancels');
}

# ---------------------------------------------------------------------------
# 7. Cancel wakes a sleeping worker at once
# ---------------------------------------------------------------------------
{
	my $id = as('app', "SELECT migrate_backfill('app.a', 'v = v + 1', batch_size => 5, pause_ms => 3600000)");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT rows_done > 0 FROM safe_migrate.backfill_jobs WHERE id = $id"),
		'sleeping: the first batch ran');
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill' "
			  . "AND wait_event = 'Extension'"),
		'sleeping: the worker sleeps (pause_ms is an hour)');
	my $t0 = time();
	is(as('app', "SELECT migrate_backfill_cancel($id)"), 'cancelled', 'sleeping: cancelled');
	my $cancel_s = time() - $t0;
	cmp_ok($cancel_s, '<', 5, "sleeping: migrate_backfill_cancel returned in $cancel_s s");
	my $gone = 0;
	for (my $i = 0; $i < 100; $i++)
	{
		if (workers() == 0) { $gone = 1; last; }
		usleep(100_000);
	}
	my $ended_s = time() - $t0;
	ok($gone, "sleeping: the worker ended within 10 s of the cancel (${ended_s} s), not after its hour");
	is(job_value($id, "status || ' ' || batches"), 'cancelled 1', 'sleeping: the job ran one batch and is cancelled');
}

# ---------------------------------------------------------------------------
# 7b. One role cannot take every background worker: beyond
#     safe_migrate.backfill_workers_per_role its jobs wait, queued, and
#     another role's job still runs
# ---------------------------------------------------------------------------
{
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET safe_migrate.backfill_workers_per_role = 2; SELECT pg_reload_conf()");
	as('app', 'CREATE TABLE app.q1 (id int PRIMARY KEY, v int); INSERT INTO app.q1 SELECT g, 0 FROM generate_series(1, 50) g');
	as('app', 'CREATE TABLE app.q2 (LIKE app.q1 INCLUDING ALL); INSERT INTO app.q2 SELECT * FROM app.q1');
	as('app', 'CREATE TABLE app.q3 (LIKE app.q1 INCLUDING ALL); INSERT INTO app.q3 SELECT * FROM app.q1');
	as('upd', 'SELECT 1');
	$node->safe_psql('postgres',
		'CREATE TABLE public.q4 (id int PRIMARY KEY, v int); INSERT INTO public.q4 SELECT g, 0 FROM generate_series(1, 50) g; '
		  . 'GRANT SELECT, UPDATE ON public.q4 TO upd');
	my @ids = map {
		as('app', "SELECT migrate_backfill('app.q$_', 'v = v + 1', batch_size => 5, pause_ms => 3600000)")
	} (1, 2, 3);
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 2 FROM safe_migrate.backfill_jobs WHERE id IN (" . join(',', @ids) . ") AND rows_done > 0"),
		'per role: two of app\'s three jobs run');
	sleep 2;
	is(job_value($ids[2], 'status'), 'queued', 'per role: the third waits, queued');
	my $other = as('upd', "SELECT migrate_backfill('public.q4', 'v = v + 1', batch_size => 5)");
	is(as('upd', "SELECT migrate_backfill_wait($other, '2 min')"), 'completed',
		'per role: another role\'s job still runs');
	is(as('app', "SELECT migrate_backfill_cancel($ids[0])"), 'cancelled', 'per role: one of app\'s jobs cancelled');
	ok( $node->poll_query_until('postgres',
			"SELECT rows_done > 0 FROM safe_migrate.backfill_jobs WHERE id = $ids[2]"),
		'per role: then the queued one starts');
	as('app', "SELECT migrate_backfill_cancel($_)") for ($ids[1], $ids[2]);
	ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill'"),
		'per role: the workers end after the cancels');
	$node->safe_psql('postgres',
		"ALTER SYSTEM RESET safe_migrate.backfill_workers_per_role; SELECT pg_reload_conf()");
	nobody_escalated('per role');
}

# ---------------------------------------------------------------------------
# 8. Bounds, temporary tables, roles without LOGIN
# ---------------------------------------------------------------------------
{
	my $before = job_count();
	for my $case (
		[ 'pause_ms => 3600001', qr/pause_ms 3600001 is out of range/ ],
		[ 'pause_ms => -1', qr/pause_ms -1 is out of range/ ],
		[ 'batch_size => 1000000', qr/batch_size 1000000 is out of range/ ],
		[ 'target_batch_ms => 600000', qr/target_batch_ms 600000 is out of range/ ],
		[ 'max_rows_per_second => 2000000000', qr/max_rows_per_second 2000000000 is out of range/ ],
		[ 'max_replica_lag => -5', qr/max_replica_lag -5 is out of range/ ])
	{
		my $stderr = fails_like('app', "SELECT migrate_backfill('app.items', 'note = ''z''', $case->[0])",
			qr/ERROR:  22023: $case->[1]/, "bounds: $case->[0]");
		like($stderr, qr/HINT:  /, "bounds: $case->[0]: with a hint");
	}
	fails_like('app',
		"CREATE TEMP TABLE tmp (id int PRIMARY KEY, v int); SELECT migrate_backfill('tmp', 'v = 1')",
		qr/ERROR:  0A000: cannot backfill temporary table "tmp"/, 'temporary table');
	$node->safe_psql('postgres',
		'CREATE ROLE nologin NOLOGIN; GRANT USAGE ON SCHEMA app TO nologin; '
		  . 'GRANT SELECT, UPDATE ON app.items TO nologin; GRANT nologin TO upd');
	fails_like('upd', "SET ROLE nologin; SELECT migrate_backfill('app.items', 'note = ''z''')",
		qr/ERROR:  55000: role "nologin" cannot log in, so no backfill worker can run as it/,
		'a role without LOGIN (after SET ROLE)');
	is(job_count(), $before, 'bounds, temporary table, NOLOGIN: no job was recorded');
}

# A job whose owner lost LOGIN (or was dropped) fails, saying why, at the
# next look of its database instead of running as somebody else.
{
	$node->safe_psql('postgres',
		'GRANT USAGE ON SCHEMA app TO gone; GRANT SELECT, UPDATE ON app.b TO gone');
	my $id = as('gone', "SELECT migrate_backfill('app.b', 'v = v + 1', batch_size => 5, pause_ms => 500)");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT rows_done > 0 FROM safe_migrate.backfill_jobs WHERE id = $id"),
		'lost LOGIN: the job runs');
	$node->safe_psql('postgres', 'ALTER ROLE gone NOLOGIN');
	# its worker goes (a restart, say): the job must not come back as anybody
	$node->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'safe_migrate backfill'");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT status = 'failed' FROM safe_migrate.backfill_jobs WHERE id = $id"),
		'lost LOGIN: the job fails');
	is(job_value($id, 'last_sqlstate'), '28000', 'lost LOGIN: last_sqlstate 28000');
	like(job_value($id, 'last_error'), qr/role gone cannot log in/, 'lost LOGIN: last_error says why');
	fails_like('postgres', "SELECT migrate_backfill_resume($id)",
		qr/ERROR:  55000: role "gone" cannot log in/, 'lost LOGIN: resume says why it cannot');
	nobody_escalated('lost LOGIN');
}

# ---------------------------------------------------------------------------
# 9. A standby refuses, with the reason and a hint
# ---------------------------------------------------------------------------
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('bf_security_standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
for my $call ("migrate_backfill('app.items', 'note = ''s''')", 'migrate_backfill_pause(1)',
	'migrate_backfill_resume(1)', 'migrate_backfill_cancel(1)')
{
	my ($stdout, $stderr);
	my $fn = $call =~ s/\(.*//r;
	$standby->psql('postgres', "\\set VERBOSITY verbose\nSELECT $call",
		stdout => \$stdout, stderr => \$stderr);
	like($stderr, qr/ERROR:  25006: $fn cannot run on a standby/, "standby: $fn refused with 25006");
	like($stderr, qr/HINT:  Connect to the primary server and call $fn there\./,
		"standby: $fn: the hint says to use the primary");
}
$standby->stop;

nobody_escalated('at the end');
$node->stop;
done_testing();
