# Copyright: safe_migrate authors
#
# The runner's trust boundaries, played as an attacker would.  Roles: app
# (owns schema m and its table), other (a plain role), admin (member of
# safe_migrate_admin, not a superuser).  After every attack: no server
# restart, nobody's rolsuper changed, the other role's objects intact.
#  - migrate_rollback() by roles other than the bootstrap superuser works
#    (it used to look up roles between transactions and crash the server).
#  - A failing in-caller migration followed by many statements reports and
#    records its own error (its data used to live in SPI's freed memory).
#  - A down script runs with the rights of the role that applied the
#    migration and the search_path it was applied with, as a restricted
#    operation; only that role, its members and admins may roll back; an
#    allow line in a down script is honoured only if the applier may
#    override.
#  - No role can hold migrations off with an advisory lock; admins can with
#    safe_migrate.hold_migrations().
#  - A terminated caller's runner stops.
#  - A function that calls migrate_apply from inside another query keeps
#    its snapshot's xmin; a top-level call gives it up while it waits.
#  - Without a free background worker slot a failing migration still
#    reports its own error.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;
use Time::HiRes qw(usleep);

my $node = start_node('sec_runner');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE app LOGIN;
	CREATE ROLE other LOGIN;
	CREATE ROLE admin LOGIN;
	GRANT safe_migrate_admin TO admin;
	CREATE SCHEMA m AUTHORIZATION app;
	GRANT USAGE ON SCHEMA m TO other, admin;
	CREATE TABLE m.big (id int PRIMARY KEY, v int);
	INSERT INTO m.big SELECT g, g FROM generate_series(1, 10000) g;
	ALTER TABLE m.big OWNER TO app;
	-- the same name in public, with rows that must survive
	CREATE TABLE public.keep (id int);
	INSERT INTO public.keep SELECT generate_series(1, 1000);
	GRANT SELECT ON public.keep TO PUBLIC;
});
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

sub as { return as_role($node, @_) }

sub try_as { return try_as_role($node, @_) }

sub fails_like { return fails_as_role($node, @_) }

sub no_restart
{
	my ($name) = @_;
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
		$started, "$name: the server did not restart");
	is( $node->safe_psql('postgres',
			"SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles "
			  . "WHERE rolsuper AND rolname IN ('app', 'other', 'admin')"),
		'', "$name: no role became superuser");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM public.keep'),
		'1000', "$name: public.keep intact");
}

sub status_of
{
	my ($version) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(status, ',' ORDER BY id) FROM safe_migrate.history "
		  . "WHERE version = '$version'");
}

# ---------------------------------------------------------------------
# 1. migrate_rollback by roles other than the bootstrap superuser
# ---------------------------------------------------------------------
for my $who (qw(app admin))
{
	as('app',
		"SELECT migrate_apply(\$m\$-- migrate:up\nCREATE VIEW m.v_$who AS SELECT 1 AS one;\n"
		  . "-- migrate:down\nDROP VIEW m.v_$who;\n\$m\$, 'rb-by-$who')");
	is(as($who, 'SELECT version || \':\' || status FROM migrate_rollback()'),
		"rb-by-$who:rolled_back", "$who rolls back app's migration");
	is($node->safe_psql('postgres', "SELECT to_regclass('m.v_$who') IS NULL"),
		't', "$who: the view is gone");
}
is(as('other', 'SELECT count(*) FROM migrate_rollback()'), '0',
	'other: nothing applied, nothing rolled back');
no_restart('rollback by non-bootstrap roles');

# ---------------------------------------------------------------------
# 2. a failing in-caller migration followed by many statements
# ---------------------------------------------------------------------
for my $n (1, 50, 200, 400)
{
	my $script = "SELECT 1/0;\n"
	  . join('', map { "CREATE TABLE m.many_${n}_$_ (id int, note text DEFAULT 'statement $_');\n" } 1 .. $n);
	my $stderr = fails_like('app', "SELECT migrate_apply(\$m\$$script\$m\$, 'many-$n')",
		qr/division by zero/, "first of $n+1 statements fails");
	unlike($stderr, qr/could not start|statement \d+'/, "$n: the real error, nothing else");
	is( $node->safe_psql('postgres',
			"SELECT status, error_message, failed_statement FROM safe_migrate.migrations "
			  . "WHERE version = 'many-$n'"),
		"failed|division by zero|SELECT 1/0",
		"$n: the history records the failing statement and its error");
}
no_restart('in-caller failures');

# ---------------------------------------------------------------------
# 3. down scripts run with the applier's rights, search_path and no more
# ---------------------------------------------------------------------
my @escalations = (
	[ 'alter_role', 'ALTER ROLE app SUPERUSER;', qr/permission denied|must be superuser/ ],
	[ 'set_role', "SET ROLE postgres;\nALTER ROLE app SUPERUSER;",
		qr/cannot set parameter "role"|permission denied/ ],
	[ 'session_auth', "SET SESSION AUTHORIZATION postgres;\nALTER ROLE app SUPERUSER;",
		qr/cannot set parameter "session_authorization"|permission denied/ ],
	[ 'grant_admin', 'GRANT safe_migrate_admin TO app;', qr/permission denied|must have admin option/ ],
	[ 'temp_table', "CREATE TEMP TABLE leftover (id int);",
		qr/cannot create temporary table within security-restricted operation/ ],);
for my $e (@escalations)
{
	my ($name, $down, $re) = @$e;
	as('app',
		"SELECT migrate_apply(\$m\$-- migrate:up\nCREATE VIEW m.esc_$name AS SELECT 1 AS one;\n"
		  . "-- migrate:down\n$down\nDROP VIEW m.esc_$name;\n\$m\$, 'esc-$name')");
	# the bootstrap superuser rolls it back: the down still runs as app
	fails_like('postgres', 'SELECT * FROM migrate_rollback()', $re,
		"down script '$name' rolled back by the superuser");
	is(status_of("esc-$name"), 'applied', "$name: still applied");
	no_restart("down script '$name'");
	# clean up so that the next one is the last migration
	$node->safe_psql('postgres',
		"SET safe_migrate.policy = off; DROP VIEW m.esc_$name; "
		  . "UPDATE safe_migrate.migrations SET status = 'rolled_back' WHERE version = 'esc-$name'");
}

# who may roll back
as('app',
	"SELECT migrate_apply(\$m\$-- migrate:up\nCREATE VIEW m.mine AS SELECT 1 AS one;\n"
	  . "-- migrate:down\nDROP VIEW m.mine;\n\$m\$, 'mine')");
fails_like('other', 'SELECT * FROM migrate_rollback()',
	qr/permission denied to roll back migration "mine"/, 'other may not roll back app\'s migration');
is($node->safe_psql('postgres', "SELECT to_regclass('m.mine') IS NOT NULL"), 't',
	'the view of app\'s migration is intact');
$node->safe_psql('postgres', 'GRANT app TO other');
is(as('other', 'SELECT status FROM migrate_rollback()'), 'rolled_back',
	'a member of app may roll it back');
$node->safe_psql('postgres', 'REVOKE app FROM other');

# the down script runs with the search_path the migration was applied with
$node->safe_psql('postgres', 'CREATE VIEW public.sp_target AS SELECT 1 AS one');
as('app',
	"SET search_path = m; SELECT public.migrate_apply(\$m\$-- migrate:up\nCREATE VIEW sp_target AS SELECT 2 AS two;\n"
	  . "-- migrate:down\nDROP VIEW sp_target;\n\$m\$, 'sp')");
is(as('admin', 'SET search_path = public, m; SELECT status FROM migrate_rollback()'),
	'rolled_back', 'admin rolls back from another search_path');
is( $node->safe_psql('postgres',
		"SELECT to_regclass('m.sp_target') IS NULL, to_regclass('public.sp_target') IS NOT NULL"),
	't|t', 'the down script dropped m.sp_target, not public.sp_target');

# an allow line in a down script counts only if the applier may override:
# the derived down of app's CREATE TABLE carries one, admin's rollback does
# not make it count
as('app', "SELECT migrate_apply('CREATE TABLE m.derived_t (id int);', 'derived-app')");
my $err = fails_like('admin', 'SELECT * FROM migrate_rollback()', qr/ban-drop-table/,
	'the derived allow line of a non-admin applier is not honoured');
is($node->safe_psql('postgres', "SELECT to_regclass('m.derived_t') IS NOT NULL"), 't',
	'the table of app\'s migration is still there');
$node->safe_psql('postgres',
	"SET safe_migrate.policy = off; DROP TABLE m.derived_t; "
	  . "UPDATE safe_migrate.migrations SET status = 'rolled_back' WHERE version = 'derived-app'");
# ... and it is for an admin's own migration
$node->safe_psql('postgres', 'GRANT CREATE ON SCHEMA public TO admin');
as('admin', "SELECT migrate_apply(\$m\$-- migrate:up\nCREATE TABLE public.admin_t (id int);\n"
	  . "-- migrate:down\n-- safe_migrate:allow ban-drop-table the up script created it\nDROP TABLE public.admin_t;\n\$m\$, 'admin-own')");
is(as('app', "SELECT count(*) FROM safe_migrate.history WHERE version = 'admin-own'"), '1', 'admin applied');
is(as('admin', 'SELECT status FROM migrate_rollback()'), 'rolled_back',
	'the allow line of an admin\'s down script is honoured');
no_restart('rollback rights');

# ---------------------------------------------------------------------
# 4. the migration lock
# ---------------------------------------------------------------------
my $hold = $node->background_psql('postgres', on_error_stop => 0,
	connstr => $node->connstr('postgres') . ' user=other');
$hold->query_safe('SELECT pg_advisory_lock(1526608231)');
$hold->query_safe('SELECT pg_advisory_lock(0, 1526608231)');
$hold->query_safe('SELECT pg_advisory_lock(1526608231, 0)');
is(as('app', "SET safe_migrate.lock_retries = 0; SELECT status FROM migrate_apply('CREATE VIEW m.lock_free AS SELECT 1', 'lock-free')"),
	'applied', 'advisory locks of an ordinary role do not hold migrations off');
$hold->quit;
fails_like('other', 'SELECT safe_migrate.hold_migrations()', qr/permission denied/,
	'an ordinary role cannot hold migrations off');

my $admin_hold = $node->background_psql('postgres',
	connstr => $node->connstr('postgres') . ' user=admin');
$admin_hold->query_safe('BEGIN');
$admin_hold->query_safe('SELECT safe_migrate.hold_migrations()');
my $admin_pid = $admin_hold->query_safe('SELECT pg_backend_pid()');
chomp $admin_pid;
my ($out, $errout) = ('', '');
my $waiting = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $node->connstr('postgres') . ' user=app', '-c',
	  "SELECT status FROM migrate_apply('CREATE VIEW m.after_hold AS SELECT 1', 'after-hold')" ],
	'>', \$out, '2>', \$errout);
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 3 AND NOT granted")
  or die 'the migration does not wait for the admin';
is(status_of('after-hold'), '', 'held off while the admin holds the lock');
$admin_hold->query_safe('COMMIT');
$waiting->finish;
is($out, "applied\n", 'applied once the admin let go');
like($errout, qr/NOTICE:  waiting for another migration of database "postgres" to finish\n.*DETAIL:  Session $admin_pid holds the migration lock/s,
	'the waiting migration is told which session holds the lock');
$admin_hold->quit;

# ---------------------------------------------------------------------
# 5. a terminated caller's runner stops
# ---------------------------------------------------------------------
($out, $errout) = ('', '');
my $victim = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $node->connstr('postgres') . ' user=app', '-c',
	  "SELECT status FROM migrate_apply(\$m\$CREATE INDEX CONCURRENTLY big_v ON m.big (v);\n"
	  . "SELECT pg_sleep(4);\nCREATE TABLE m.after_kill (id int);\n\$m\$, 'killed')" ],
	'>', \$out, '2>', \$errout);
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner' "
	  . "AND query LIKE '%pg_sleep%'")
  or die 'the runner did not reach the sleep';
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' "
	  . "AND query LIKE '%migrate_apply%killed%' AND pid <> pg_backend_pid()");
$victim->finish;
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'")
  or die 'the runner still runs';
sleep 5;    # past the end of the sleep the runner would have reached
is($node->safe_psql('postgres', "SELECT to_regclass('m.after_kill') IS NULL"), 't',
	'the terminated caller\'s migration did not go on');
isnt(status_of('killed'), 'applied', 'and it is not recorded as applied');
no_restart('terminated caller');

# ---------------------------------------------------------------------
# 6. a nested call keeps its xmin; a top-level call gives it up
# ---------------------------------------------------------------------
as('app', q{
	CREATE FUNCTION m.apply_inside() RETURNS bigint LANGUAGE plpgsql STABLE AS $f$
	DECLARE before bigint; after bigint;
	BEGIN
		SELECT count(*) INTO before FROM m.big;
		PERFORM migrate_apply('CREATE VIEW m.from_fn AS SELECT 1', 'from-fn');
		SELECT count(*) INTO after FROM m.big;
		RETURN after - before;
	END $f$;
});
for my $case ([ 'nested', 'SELECT m.apply_inside()', 'f' ],
	[ 'top-level', "SELECT status FROM migrate_apply('CREATE VIEW m.top AS SELECT 1', 'top')", 't' ])
{
	my ($name, $sql, $xmin_null) = @$case;
	$admin_hold = $node->background_psql('postgres',
		connstr => $node->connstr('postgres') . ' user=admin');
	$admin_hold->query_safe('BEGIN');
	$admin_hold->query_safe('SELECT safe_migrate.hold_migrations()');
	($out, $errout) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', $node->connstr('postgres') . ' user=app', '-c', $sql ],
		'>', \$out, '2>', \$errout);
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 3 AND NOT granted")
	  or die "$name: the migration does not wait";
	# while the caller (or its runner) waits, the caller's own xmin
	is( $node->safe_psql('postgres',
			"SELECT backend_xmin IS NULL FROM pg_stat_activity "
			  . "WHERE backend_type = 'client backend' AND query = \$q\$$sql\$q\$"),
		$xmin_null, "$name call: xmin given up = $xmin_null");
	if ($name eq 'nested')
	{
		# rows deleted and vacuumed meanwhile must stay visible to the
		# function's snapshot
		$node->safe_psql('postgres', 'DELETE FROM m.big WHERE id > 100');
		$node->safe_psql('postgres', 'VACUUM m.big');
	}
	$admin_hold->query_safe('COMMIT');
	$h->finish;
	$admin_hold->quit;
	if ($name eq 'nested')
	{
		is($out, "0\n", 'the function saw the same rows before and after the call');
	}
	else
	{
		is($out, "applied\n", 'the top-level call applied');
	}
}
no_restart('snapshots');

# ---------------------------------------------------------------------
# 7. a migration cannot start another one (in a runner it would wait for
#    its own lock forever)
# ---------------------------------------------------------------------
my $nested_n = 0;
for my $inner ("SELECT migrate_apply('CREATE TABLE m.inner_t (id int)', 'inner')",
	'SELECT migrate_rollback()', "SELECT * FROM migrate_test('CREATE TABLE m.inner_u (id int)')")
{
	my ($rc, $o, $err) = (0, '', '');
	# through a background runner (a concurrent index build sends it there);
	# a version each: step 1 commits, so each is left partly applied
	$nested_n++;
	$rc = $node->psql('postgres',
		"SELECT migrate_apply(\$m\$CREATE INDEX CONCURRENTLY big_nested ON m.big (v);\n$inner;\n\$m\$, 'nested-$nested_n')",
		connstr => $node->connstr('postgres') . ' user=app',
		stdout => \$o, stderr => \$err, timeout => 120);
	isnt($rc, 0, "nested '$inner' in a runner: refused");
	like($err, qr/cannot be called from within a migration/, "nested '$inner' in a runner: says why");
	$node->safe_psql('postgres', 'DROP INDEX IF EXISTS m.big_nested');
	# in the caller's backend
	$rc = $node->psql('postgres', "SELECT migrate_apply(\$m\$$inner;\n\$m\$, 'nested-caller')",
		connstr => $node->connstr('postgres') . ' user=app',
		stdout => \$o, stderr => \$err, timeout => 120);
	isnt($rc, 0, "nested '$inner' in the caller: refused");
}
# two migrations in one transaction, the second in a runner: the first
# holds the migration lock until the transaction ends (it used to hang)
{
	my ($rc, $o, $err) = (0, '', '');
	$rc = $node->psql('postgres', q{DO $$ BEGIN
		PERFORM migrate_apply('CREATE TABLE m.two_a (id int)', 'two-a');
		PERFORM migrate_apply('CREATE TEMP TABLE two_tmp (i int); CREATE TABLE m.two_b (id int)', 'two-b');
	END $$},
		connstr => $node->connstr('postgres') . ' user=app',
		stdout => \$o, stderr => \$err, timeout => 60);
	isnt($rc, 0, 'a runner migration after another in the same transaction: refused');
	like($err, qr/this transaction holds the migration lock/, 'says why');
	is(status_of('two-a') . '/' . status_of('two-b'), '/', 'neither is recorded (the transaction rolled back)');
}
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'"),
	'0', 'no runner left waiting');
no_restart('nested calls');

# ---------------------------------------------------------------------
# 8. our own catalog queries in a caller's session cannot be captured by an
#    overload on the caller's search_path (migrate_test's fingerprint)
# ---------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE SCHEMA shared; GRANT CREATE, USAGE ON SCHEMA shared TO other');
as('other', q{
	CREATE FUNCTION shared.quote_ident(name) RETURNS text LANGUAGE plpgsql AS $f$
	BEGIN
		EXECUTE 'ALTER ROLE other SUPERUSER';
		RETURN pg_catalog.quote_ident($1::text);
	END $f$;
	CREATE FUNCTION shared.format(text, regclass, name) RETURNS text LANGUAGE plpgsql AS $f$
	BEGIN
		EXECUTE 'ALTER ROLE other SUPERUSER';
		RETURN pg_catalog.format($1, $2, $3);
	END $f$;
});
my ($trc, $tout, $terr) = (0, '', '');
$trc = $node->psql('postgres',
	"SET search_path = shared, public; SELECT step, ok FROM migrate_test('CREATE TABLE public.fp_t (id int, note text)')",
	stdout => \$tout, stderr => \$terr);
is($trc, 0, 'migrate_test by the superuser with a planted overload on its path runs');
like($tout, qr/up\|t/, 'migrate_test: up checked');
no_restart('planted overloads');
$node->safe_psql('postgres', 'DROP SCHEMA shared CASCADE');

# ---------------------------------------------------------------------
# 8b. a down script rolled back by an admin cannot reach the admin's rights
#     (a CALL used to run alone, outside any restriction: RESET ROLE in the
#     procedure, or DISCARD ALL, gave the rest the runner's login)
# ---------------------------------------------------------------------
# (sections 5 and 7 left versions partly applied: no rollback until abandoned)
$node->safe_psql('postgres', q{
	SELECT migrate_abandon(version)
	  FROM (SELECT DISTINCT ON (version) version, status, steps_committed, abandoned_at
	          FROM safe_migrate.migrations ORDER BY version, id DESC) latest
	 WHERE status IN ('failed', 'interrupted') AND steps_committed > 0 AND abandoned_at IS NULL});
as('app', q{
	CREATE PROCEDURE m.escalate() LANGUAGE plpgsql AS $p$
	BEGIN
		RESET ROLE;
		EXECUTE 'ALTER ROLE app SUPERUSER';
	END $p$;
	CREATE PROCEDURE m.harmless() LANGUAGE plpgsql AS $p$
	BEGIN
		INSERT INTO m.big VALUES (-1, -1);
	END $p$;
	CREATE PROCEDURE m.commits() LANGUAGE plpgsql AS $p$
	BEGIN
		INSERT INTO m.big VALUES (-2, -2);
		COMMIT;
	END $p$;
});
as('app', "SELECT migrate_apply(\$m\$-- migrate:up\nCREATE TABLE m.esc_t (id int);\n"
	  . "-- migrate:down\nCALL m.escalate();\nDROP VIEW IF EXISTS m.nothing;\n\$m\$, 'esc-call')");
my $esc = fails_like('admin', 'SELECT * FROM migrate_rollback()',
	qr/cannot set parameter "role" within security-(definer function|restricted operation)/,
	'a CALL in a down script rolled back by an admin');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'app'"), 'f',
	'the procedure did not get the admin\'s rights');
is(status_of('esc-call'), 'applied', 'the migration stays applied');
$node->safe_psql('postgres', "UPDATE safe_migrate.migrations SET status = 'rolled_back' WHERE version = 'esc-call'");
# a harmless CALL still runs when an admin rolls back
as('app', "SELECT migrate_apply(\$m\$-- migrate:up\nCREATE VIEW m.call_v AS SELECT 1;\n"
	  . "-- migrate:down\nCALL m.harmless();\nDROP VIEW m.call_v;\n\$m\$, 'call-ok')");
is(as('admin', 'SELECT status FROM migrate_rollback()'), 'rolled_back',
	'a procedure that needs nothing more runs in an admin\'s rollback');
is($node->safe_psql('postgres', 'SELECT count(*) FROM m.big WHERE id = -1'), '1', 'it ran once');
# one that commits cannot, in a rollback by another role (it runs inside
# the step's transaction) ...
as('app', "SELECT migrate_apply(\$m\$-- migrate:up\nCREATE VIEW m.call_c AS SELECT 1;\n"
	  . "-- migrate:down\nCALL m.commits();\nDROP VIEW m.call_c;\n\$m\$, 'call-commits')");
fails_like('admin', 'SELECT * FROM migrate_rollback()', qr/invalid transaction termination/,
	'a committing procedure in an admin\'s rollback');
is($node->safe_psql('postgres', 'SELECT count(*) FROM m.big WHERE id = -2'), '0', 'nothing of it committed');
# ... and can, rolled back by the role that applied it
is(as('app', 'SELECT status FROM migrate_rollback()'), 'rolled_back',
	'the applier rolls back its own committing procedure');
is($node->safe_psql('postgres', 'SELECT count(*) FROM m.big WHERE id = -2'), '1', 'it ran once');
# DISCARD ALL is refused in every migration
fails_like('app', "SELECT migrate_apply(\$m\$-- migrate:up\nCREATE TABLE m.d_t (id int);\n"
	  . "-- migrate:down\nDISCARD ALL;\nALTER ROLE app SUPERUSER;\n\$m\$, 'discard')",
	qr/DISCARD ALL is not allowed in a migration/, 'DISCARD ALL in a down script');
fails_like('app', "SELECT migrate_apply('DISCARD ALL', 'discard-up')",
	qr/DISCARD ALL is not allowed in a migration/, 'DISCARD ALL in an up script');
is(status_of('discard'), '', 'nothing recorded');
no_restart('down scripts rolled back by an admin');

# a partly rolled back down script is continued after the statements its
# committed steps hold; a rollback by another role, which groups a CALL
# with its neighbours, refuses where the steps no longer end there
as('app', q{
	CREATE TABLE m.rb2 (n int); INSERT INTO m.rb2 VALUES (0);
	CREATE TABLE m.rb2_gate (open boolean); INSERT INTO m.rb2_gate VALUES (false);
	CREATE PROCEDURE m.noop() LANGUAGE plpgsql AS $p$ BEGIN NULL; END $p$;
});
as('app', "SELECT migrate_apply(\$m\$-- migrate:up\nCREATE VIEW m.rb2_v AS SELECT 1;\n"
	  . "-- migrate:down\nUPDATE m.rb2 SET n = n - 1;\nCALL m.noop();\n"
	  . "SELECT 1 / (SELECT CASE WHEN open THEN 1 ELSE 0 END FROM m.rb2_gate);\nDROP VIEW m.rb2_v;\n\$m\$, 'rb2')");
{
	my ($rc, $o, $err) = try_as('app', 'SELECT * FROM migrate_rollback()');
	like($err, qr/Statements 1 to 2 of the down script are committed/, 'partial rollback by the applier: two statements committed');
	fails_like('admin', 'SELECT * FROM migrate_rollback()',
		qr/the down script of migration "rb2" cannot be continued after statement 2/,
		'an admin, whose steps group the CALL, does not continue it');
	as('app', 'UPDATE m.rb2_gate SET open = true');
	is(as('app', 'SELECT status FROM migrate_rollback()'), 'rolled_back', 'the applier finishes it');
	is(as('app', 'SELECT n FROM m.rb2'), '-1', 'the committed statement ran once');
}
no_restart('partly rolled back');

# ---------------------------------------------------------------------
# 8b2. what one down script sets for the session does not reach the next
# down script of the same rollback (another role's: here a superuser's),
# whose text it would otherwise be parsed under
# ---------------------------------------------------------------------
my $before_settings = $node->safe_psql('postgres',
	"SELECT version FROM safe_migrate.migrations WHERE status = 'applied' ORDER BY id DESC LIMIT 1");
$node->safe_psql('postgres',
	'CREATE TABLE public.glog (who text, ds text, scs text, x text); GRANT INSERT ON public.glog TO PUBLIC');
is( $node->safe_psql('postgres',
		"SELECT status FROM migrate_apply(\$m\$SELECT 1;\n-- migrate:down\n"
		  . "INSERT INTO public.glog VALUES ('p', current_setting('DateStyle'), "
		  . "current_setting('standard_conforming_strings'), coalesce(nullif(current_setting('app.x', true), ''), 'unset'));\n"
		  . "INSERT INTO public.glog (who) VALUES ('C:\\');\n\$m\$, 'set-p')"),
	'applied', 'settings: the superuser applies a migration whose down script reads settings');
is( as('app',
		"SELECT status FROM migrate_apply(\$m\$SELECT 1;\n-- migrate:down\n"
		  . "SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);\n"
		  . "SET DateStyle = 'German';\nSELECT pg_catalog.set_config('app.x', 'leaked', false);\n\$m\$, 'set-m')"),
	'applied', 'settings: app applies one after it whose down script changes them');
is( $node->safe_psql('postgres',
		"SELECT string_agg(version || ':' || status, ',') FROM migrate_rollback('$before_settings')"),
	'set-m:rolled_back,set-p:rolled_back', 'settings: the superuser rolls both back');
is($node->safe_psql('postgres', "SELECT ds || '|' || scs || '|' || x FROM public.glog WHERE who = 'p'"),
	'ISO, MDY|on|unset', "settings: the superuser's down script ran with the session's own settings");
is($node->safe_psql('postgres', "SELECT count(*) FROM public.glog WHERE who = 'C:\\'"),
	'1', '... and was parsed as written (standard_conforming_strings on)');
no_restart('settings');

# ---------------------------------------------------------------------
# 8b3. from a SECURITY DEFINER function, no statement that runs outside a
# transaction block (it could carry no restriction there)
# ---------------------------------------------------------------------
as('app', q{
	CREATE PROCEDURE m.definer_noop() LANGUAGE sql AS 'SELECT 1';
	CREATE FUNCTION m.definer_apply(s text, v text) RETURNS text SECURITY DEFINER
	  LANGUAGE sql AS $f$SELECT status FROM public.migrate_apply(s, v)$f$;
});
foreach my $stmt ('CALL m.definer_noop()', 'VACUUM m.big')
{
	fails_like('app', "SELECT m.definer_apply('$stmt', 'definer-$stmt')",
		qr/cannot be applied from a SECURITY DEFINER function or a security-restricted operation/,
		"SECURITY DEFINER: '$stmt' refused");
}
is(as('app', "SELECT m.definer_apply('CREATE TABLE m.from_definer (id int)', 'definer-table')"),
	'applied', 'SECURITY DEFINER: a transactional migration still applies');
no_restart('definer');

# ---------------------------------------------------------------------
# 8c. a partly applied migration is continued only by its role (another
#     role's attempt became the latest, let it abandon the version, and
#     the applier's next apply ran the committed steps again)
# ---------------------------------------------------------------------
as('app', 'CREATE TABLE m.once (v int)');
my $partial = "INSERT INTO m.once VALUES (1);\nCREATE INDEX CONCURRENTLY once_v ON m.once (v);\nSELECT 1/0;\n";
try_as('app', "SELECT migrate_apply(\$m\$$partial\$m\$, 'partial-app')");
like(status_of('partial-app'), qr/^failed$/, 'the first attempt failed after two steps');
fails_like('other', "SELECT migrate_apply(\$m\$$partial\$m\$, 'partial-app')",
	qr/permission denied to continue migration "partial-app"/, 'another role continues it');
is(status_of('partial-app'), 'failed', 'no attempt of the other role recorded');
fails_like('other', "SELECT migrate_abandon('partial-app')", qr/permission denied to abandon/,
	'another role abandons it');
like(as('app', "SELECT migrate_abandon('partial-app')"), qr/abandoned migration "partial-app"/,
	'the applier still may abandon it');
is($node->safe_psql('postgres', 'SELECT count(*) FROM m.once'), '1', 'the committed step ran once');
no_restart('partly applied');

# ---------------------------------------------------------------------
# 8d. a script that releases the migration lock is stopped there
# ---------------------------------------------------------------------
my ($lrc, $lout, $lerr) = try_as('app',
	"SELECT migrate_apply(\$m\$CREATE INDEX CONCURRENTLY once_v2 ON m.once (v);\n"
	  . "SELECT pg_advisory_unlock_all();\nINSERT INTO m.once VALUES (2);\n\$m\$, 'unlock')");
isnt($lrc, 0, 'pg_advisory_unlock_all() in a migration: the migration fails');
like($lerr, qr/statement 2 of the migration released the migration lock/, 'it says why');
is($node->safe_psql('postgres', 'SELECT count(*) FROM m.once WHERE v = 2'), '0',
	'the statements after it did not run');
is(status_of('unlock'), 'failed', 'recorded as failed');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory' AND objid = 1526608231 AND objsubid = 3"),
	'no migration lock left behind');
is(as('app', "SELECT status FROM migrate_apply('CREATE VIEW m.after_unlock AS SELECT 1', 'after-unlock')"),
	'applied', 'the next migration runs');
no_restart('released lock');

# ---------------------------------------------------------------------
# 9. no background worker slot free
# ---------------------------------------------------------------------
my $noslot = PostgreSQL::Test::Cluster->new('sec_noslot');
$noslot->init;
$noslot->append_conf('postgresql.conf', "max_worker_processes = 0\n");
$noslot->start;
$noslot->safe_psql('postgres', 'CREATE EXTENSION safe_migrate');
is($noslot->safe_psql('postgres', "SELECT status FROM migrate_apply('CREATE TABLE ok_t (id int)', 'ok')"),
	'applied', 'no worker slot: a transactional migration applies in the caller');
my ($rc, $o, $e2) = (0, '', '');
$rc = $noslot->psql('postgres', "SELECT migrate_apply('SELECT 1/0; CREATE TABLE never (id int);', 'noslot')",
	stdout => \$o, stderr => \$e2);
isnt($rc, 0, 'no worker slot: the failing migration fails');
like($e2, qr/ERROR:  division by zero/, 'no worker slot: with its own error');
like($e2, qr/WARNING:  the failure of migration "noslot" could not be recorded/,
	'no worker slot: and a warning that it could not be recorded');
$noslot->stop;

done_testing();
