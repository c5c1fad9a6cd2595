# Copyright: safe_migrate authors
#
# A migration run by a background runner commits in steps.  Each committed
# step is recorded in the same transaction as the step, so after the runner
# is killed (kill -9, or terminated) once some steps committed:
#  - the history says which steps committed (statements, steps_committed,
#    safe_migrate.history_steps) instead of 'statements = 0' and "its
#    uncommitted effects were rolled back";
#  - applying the same script again continues after the last committed step:
#    a counter UPDATE in step 1 runs once (2 -> 3, not 4);
#  - another script for that version is refused (SM001) naming the committed
#    steps, with migrate_abandon as the way out; migrate_rollback is refused
#    while a version is partly applied;
#  - migrate_abandon (the applier, its members, admins; nobody else) records
#    the abandon, after which the version is applied from scratch.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('step_journal');
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->restart;
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE app LOGIN;
	CREATE ROLE other LOGIN;
	CREATE ROLE admin LOGIN;
	GRANT safe_migrate_admin TO admin;
	GRANT CREATE ON SCHEMA public TO app;
	CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);
	INSERT INTO counter VALUES (1, 2);
	CREATE TABLE ctl (slow boolean NOT NULL);
	INSERT INTO ctl VALUES (true);
	ALTER TABLE counter OWNER TO app;
	ALTER TABLE ctl OWNER TO app;
});

my $psql = $node->installed_command('psql');

sub q1 { return $node->safe_psql('postgres', $_[0]) }

sub counter { return q1('SELECT n FROM counter WHERE id = 1') }

# Three steps: the UPDATE, the concurrent build, then a sleep (while the
# flag says so) and a table.
my $script = <<'EOS';
UPDATE counter SET n = n + 1 WHERE id = 1;
CREATE INDEX CONCURRENTLY counter_n ON counter (n);
SELECT pg_sleep(CASE WHEN (SELECT slow FROM ctl) THEN 300 ELSE 0 END);
CREATE TABLE after_sleep (id int);
EOS

sub start_apply
{
	my ($script, $version, $out, $err) = @_;
	$$out = '';
	$$err = '';
	return IPC::Run::start(
		[
			$psql, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres') . ' user=app',
			'-c', "SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$version')"
		],
		'>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

sub runner_sleeping
{
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner' "
			  . "AND wait_event = 'PgSleep'"),
		"$_[0]: the runner sleeps in step 3");
	return q1("SELECT pid FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'");
}

# ---------------------------------------------------------------------
# kill -9 of the runner after steps 1 and 2 committed
# ---------------------------------------------------------------------
{
	my ($out, $err);
	my $h = start_apply($script, 'v1', \$out, \$err);
	my $pid = runner_sleeping('kill -9');
	is(counter(), '3', 'step 1 committed: the counter went 2 -> 3');
	is( q1("SELECT string_agg(step::text || ':' || array_to_string(commands, '+'), ',' ORDER BY step) "
			  . "FROM safe_migrate.history_steps WHERE version = 'v1'"),
		'1:UPDATE,2:CREATE INDEX',
		'while step 3 runs, the history shows steps 1 and 2 committed');
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	eval { $h->finish };
	isnt($h->result(0), 0, 'the caller fails when its runner is killed');
	ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset),
		'the postmaster reinitialized');
	ok(server_accepts($node), 'the server is back');
}
is(counter(), '3', 'after the crash the counter is 3');
is( q1("SELECT status, statements, steps, steps_committed, partly_applied FROM safe_migrate.history "
		  . "WHERE version = 'v1'"),
	'interrupted|2|3|2|t',
	'the history says interrupted after steps 1 and 2 of 3 (2 statements), partly applied');
is(q1("SELECT count(*) FROM safe_migrate.history_steps WHERE version = 'v1'"),
	'2', 'the step journal survived the crash');

# another script for the partly applied version: refused, naming the steps
{
	my ($rc, $stdout, $stderr) = try_as_role($node, 'app',
		"SELECT migrate_apply('CREATE TABLE other_script (id int);', 'v1')", verbose => 1);
	isnt($rc, 0, 'another script for a partly applied version fails');
	like($stderr, qr/SM001: migration "v1" is partly applied with a different checksum/,
		'... with SM001 saying it is partly applied');
	like($stderr, qr/steps 1 to 2 of 3 \(statements 1 to 2\)/, '... naming the committed steps');
	like($stderr, qr/HINT:.*safe_migrate\.migrate_abandon\('v1'\)/, '... with migrate_abandon as the way out');
	is(q1("SELECT to_regclass('other_script') IS NULL"), 't', '... and runs nothing');
	# the same through the runner path
	($rc, $stdout, $stderr) = try_as_role($node, 'app',
		"SELECT migrate_apply('VACUUM counter; CREATE TABLE other_script (id int);', 'v1')",
		verbose => 1);
	like($stderr, qr/SM001: migration "v1" is partly applied with a different checksum/,
		'a runner refuses another script too');
}

# no rollback while a version is half done
{
	my ($rc, $stdout, $stderr) =
	  try_as_role($node, 'postgres', 'SELECT * FROM migrate_rollback()', verbose => 1);
	isnt($rc, 0, 'migrate_rollback is refused while a version is partly applied');
	like($stderr, qr/55000: migration "v1" is partly applied/, '... saying which');
}

# the same script continues after step 2: the UPDATE does not run again
q1('UPDATE ctl SET slow = false');
{
	my ($rc, $stdout, $stderr) = try_as_role($node, 'app',
		"SELECT status, statements FROM migrate_apply(\$m\$$script\$m\$, 'v1')");
	is($rc, 0, 'applying the same script again succeeds') or diag($stderr);
	is($stdout, 'applied|4', '... applied, 4 statements committed in all');
	like($stderr, qr/NOTICE:  migration "v1" is partly applied: continuing after step 2/,
		'... with a NOTICE saying it continues after step 2');
}
is(counter(), '3', 'the counter UPDATE ran exactly once (2 -> 3, not 4)');
is(q1("SELECT to_regclass('after_sleep') IS NOT NULL"), 't', 'the remaining steps ran');
is( q1("SELECT string_agg(status || ':' || statements || ':' || steps_committed || ':' "
		  . "|| coalesce(resumed_from::text, '-'), ',' ORDER BY id) FROM safe_migrate.history "
		  . "WHERE version = 'v1'"),
	q1("SELECT 'interrupted:2:2:-,applied:4:3:' || min(id) FROM safe_migrate.migrations WHERE version = 'v1'"),
	'history: the interrupted attempt, then the applied one resuming it');
like( q1("SELECT error_message FROM safe_migrate.migrations WHERE version = 'v1' AND status = 'interrupted'"),
	qr/interrupted .* after steps 1 to 2 of 3 had committed \(statements 1 to 2\); the uncommitted rest was rolled back/,
	'the interrupted attempt says which steps had committed');
is( q1("SELECT string_agg(step::text, ',' ORDER BY migration_id, step) FROM safe_migrate.history_steps "
		  . "WHERE version = 'v1'"),
	'1,2,3', 'the journal: steps 1 and 2 by the first attempt, 3 by the second');
is(as_role($node, 'app', "SELECT status FROM migrate_apply(\$m\$$script\$m\$, 'v1')"),
	'already_applied', 'once more: already applied');
is(counter(), '3', 'still 3');

# ---------------------------------------------------------------------
# pg_terminate_backend of the runner, all steps committed but the outcome
# not recorded: applying again only records it
# ---------------------------------------------------------------------
q1('UPDATE ctl SET slow = true');
{
	my $script2 = "UPDATE counter SET n = n + 1 WHERE id = 1;\nVACUUM counter;\n"
	  . "SELECT pg_sleep(CASE WHEN (SELECT slow FROM ctl) THEN 300 ELSE 0 END);\n";
	my ($out, $err);
	my $h = start_apply($script2, 'v2', \$out, \$err);
	my $pid = runner_sleeping('terminate');
	q1("SELECT pg_terminate_backend($pid)");
	eval { $h->finish };
	isnt($h->result(0), 0, 'the caller fails when its runner is terminated');
	is( q1("SELECT status, statements, steps_committed, partly_applied FROM safe_migrate.history "
			  . "WHERE version = 'v2'"),
		'interrupted|2|2|t', 'terminated: steps 1 and 2 of 3 are recorded');
	is(counter(), '4', 'the counter went 3 -> 4');
	q1('UPDATE ctl SET slow = false');
	is(as_role($node, 'app', "SELECT status FROM migrate_apply(\$m\$$script2\$m\$, 'v2')"),
		'applied', 'applied again: continues with step 3');
	is(counter(), '4', 'the counter UPDATE ran once');
}

# ---------------------------------------------------------------------
# a failure after committed steps; abandon
# ---------------------------------------------------------------------
my $failing = "UPDATE counter SET n = n + 10 WHERE id = 1;\n"
  . "CREATE INDEX CONCURRENTLY counter_n_10 ON counter (n);\nSELECT 1 / 0;\n";
{
	my ($rc, $stdout, $stderr) = try_as_role($node, 'app',
		"SELECT migrate_apply(\$m\$$failing\$m\$, 'v3')", verbose => 1);
	isnt($rc, 0, 'a failing step 3 fails the migration');
	like($stderr, qr/Steps 1 to 2 are committed: applying the same script again continues after step 2/,
		'the error says which steps are committed and how to continue');
	is( q1("SELECT status, statements, steps_committed, partly_applied FROM safe_migrate.history "
			  . "WHERE version = 'v3'"),
		'failed|2|2|t', 'failed after 2 committed steps: partly applied');
}
is(counter(), '14', 'the counter went 4 -> 14');
fails_as_role($node, 'other', "SELECT migrate_abandon('v3')",
	qr/42501: permission denied to abandon migration "v3"/, 'another role may not abandon it');
fails_as_role($node, 'app', "SELECT migrate_abandon('v1')",
	qr/55000: migration "v1" is applied, not partly applied/, 'an applied version cannot be abandoned');
fails_as_role($node, 'app', "SELECT migrate_abandon('nope')",
	qr/42704: migration "nope" has no recorded attempt/, 'an unknown version cannot be abandoned');
like(as_role($node, 'admin', "SELECT safe_migrate.migrate_abandon(E' v3\\t')"),
	qr/abandoned migration "v3" \(attempt \d+\): its steps 1 to 2 of 3 \(statements 1 to 2\) stay committed/,
	'an admin abandons it (qualified name)');
is( q1("SELECT abandoned_by, abandoned_at IS NOT NULL, partly_applied FROM safe_migrate.history "
		  . "WHERE version = 'v3'"),
	'admin|t|f', 'the history records who abandoned it');
fails_as_role($node, 'app', "SELECT migrate_abandon('v3')",
	qr/55000: migration "v3" is not partly applied/, 'abandoning twice is refused');
# now from scratch, with another script
is( as_role($node, 'app',
		"SELECT status FROM migrate_apply('UPDATE counter SET n = n - 10 WHERE id = 1;', 'v3')"),
	'applied', 'after the abandon, the version is applied from scratch with another script');
is(counter(), '4', 'the corrected script ran');
# rollbacks work again
{
	my ($rc, $stdout, $stderr) =
	  try_as_role($node, 'postgres', 'SELECT * FROM migrate_rollback()', verbose => 1);
	unlike($stderr, qr/partly applied/, 'migrate_rollback is no longer refused for a partly applied version');
}

# the app role applied v1's steps; it may read the steps, like everybody
is(as_role($node, 'other', "SELECT count(*) FROM safe_migrate.history_steps"),
	q1("SELECT count(*) FROM safe_migrate.migration_steps"),
	'everybody reads the step journal through safe_migrate.history_steps');
fails_as_role($node, 'other', 'SELECT * FROM safe_migrate.migration_steps',
	qr/42501: permission denied for table migration_steps/, 'the table itself is for admins only');

# a resumed migration runs its remaining steps with the session settings its
# committed steps made (they used to be skipped: a SET search_path in step 1
# was lost and step 3 created its table in another schema)
{
	q1('CREATE SCHEMA sj AUTHORIZATION app; CREATE TABLE sj_gate (open boolean); INSERT INTO sj_gate VALUES (false)');
	q1('GRANT SELECT ON sj_gate TO app');
	my $script = "SET search_path = sj, public;\nCREATE TABLE t1 (i int);\n"
	  . "CREATE INDEX CONCURRENTLY t1_i ON t1 (i);\nCREATE TABLE t2 (i int);\n"
	  . "SELECT 1 / (SELECT CASE WHEN open THEN 1 ELSE 0 END FROM public.sj_gate);\n";
	my ($rc, $stdout, $stderr) = try_as_role($node, 'app',
		"SELECT status FROM migrate_apply(\$m\$$script\$m\$, 'sj')");
	isnt($rc, 0, 'settings: the first attempt fails after two committed steps');
	q1('UPDATE sj_gate SET open = true');
	($rc, $stdout, $stderr) = try_as_role($node, 'app',
		"SELECT status FROM migrate_apply(\$m\$$script\$m\$, 'sj')");
	is($stdout, 'applied', 'settings: the same script continues') or diag($stderr);
	like($stderr, qr/statement 1 of committed step 1 made again: SET search_path = sj, public/,
		'settings: the SET of the committed step is made again');
	is(q1("SELECT string_agg(n.nspname || '.' || c.relname, ',' ORDER BY c.relname) FROM pg_class c "
			  . "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname IN ('t1', 't2')"),
		'sj.t1,sj.t2', 'settings: both tables are in the schema the script chose');
}

# a down script is journaled too: a rollback that fails after committing
# steps leaves the migration applied, partly rolled back (apply refuses it),
# and the next rollback continues after those steps (they used to run again)
{
	q1('CREATE TABLE rb_gate (open boolean); INSERT INTO rb_gate VALUES (false)');
	q1('CREATE TABLE rb_count (n int); INSERT INTO rb_count VALUES (0)');
	my $script = "-- migrate:up\nUPDATE rb_count SET n = n + 1;\n"
	  . "-- migrate:down\nUPDATE rb_count SET n = n - 100;\nVACUUM rb_count;\n"
	  . "SELECT 1 / (SELECT CASE WHEN open THEN 1 ELSE 0 END FROM rb_gate);\n";
	is(q1("SELECT status FROM migrate_apply(\$m\$$script\$m\$, 'rb')"), 'applied', 'rollback journal: applied');
	my ($rc, $stdout, $stderr) = $node->psql('postgres', 'SELECT * FROM migrate_rollback()');
	isnt($rc, 0, 'rollback journal: the rollback fails in its third step');
	like($stderr, qr/Statements 1 to 2 of the down script are committed/, 'rollback journal: the error says so');
	is(q1("SELECT status, down_statements_committed FROM safe_migrate.history WHERE version = 'rb'"),
		'applied|2', 'rollback journal: applied, the two statements of two down steps committed');
	($rc, $stdout, $stderr) = $node->psql('postgres', "SELECT status FROM migrate_apply(\$m\$$script\$m\$, 'rb')");
	like($stderr, qr/migration "rb" is partly rolled back/, 'rollback journal: applying it again is refused');
	q1('UPDATE rb_gate SET open = true');
	($rc, $stdout, $stderr) = $node->psql('postgres', 'SELECT status FROM migrate_rollback()');
	is($stdout, 'rolled_back', 'rollback journal: the next rollback finishes') or diag($stderr);
	like($stderr, qr/continuing its down script after statement 2/, 'rollback journal: after the committed steps');
	is(q1('SELECT n FROM rb_count'), '-99', 'rollback journal: the committed down step ran once');
}

is(q1("SELECT count(*) FROM safe_migrate.migrations WHERE status = 'running'"), '0',
	'no attempt is left running');

$node->stop;
done_testing();
