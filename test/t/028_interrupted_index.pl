# Copyright: safe_migrate authors
#
# A CREATE INDEX CONCURRENTLY that stops before its end leaves an INVALID
# index.  However the build stops, the next apply must neither fail with
# "relation already exists" nor succeed on the unusable index (IF NOT
# EXISTS): before a concurrent build step, the runner drops the invalid
# index the step would trip over, unless another session is building it.
#   kill -9 of the runner, pg_terminate_backend of the runner, a failed
#   build whose in-runner drop hit its lock timeout, a build cancelled
#   outside any migration, IF NOT EXISTS, an unnamed build (an older invalid
#   index is reported, not dropped), a build in progress elsewhere,
#   REINDEX CONCURRENTLY's _ccnew copies, and a cancelled caller (the runner
#   stops, drops the index itself and records the failure).
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('interrupted_index');
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->restart;
# slow(x) sleeps 0.1 s per row while ctl.slow: an index on slow(id) over
# 100 rows takes 10 s to build
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE ctl (slow boolean NOT NULL);
	INSERT INTO ctl VALUES (true);
	CREATE FUNCTION slow(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
	BEGIN
	    IF (SELECT c.slow FROM public.ctl c) THEN PERFORM pg_sleep(0.1); END IF;
	    RETURN x;
	END $f$;
	CREATE TABLE items (id int PRIMARY KEY);
	INSERT INTO items SELECT generate_series(1, 100);
});

my $psql = $node->installed_command('psql');

sub q1 { return $node->safe_psql('postgres', $_[0]) }

sub start_psql
{
	my ($sql, $out, $err, $connopts) = @_;
	$$out = '';
	$$err = '';
	return IPC::Run::start(
		[
			$psql, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres') . ($connopts // ''), '-c', $sql
		],
		'>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

sub build_sql
{
	my ($index, $version, $ine) = @_;
	my $if = $ine ? 'IF NOT EXISTS ' : '';
	return "SELECT status FROM migrate_apply(\$m\$CREATE INDEX CONCURRENTLY $if$index "
	  . "ON items (slow(id));\$m\$, '$version')";
}

# The pid of whoever builds $index, once its invalid index exists.
sub building
{
	my ($index) = @_;
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 1 FROM pg_stat_progress_create_index p JOIN pg_index i "
			  . "ON i.indexrelid = p.index_relid WHERE i.indexrelid = to_regclass('$index') "
			  . "AND p.phase = 'building index: scanning table'"),
		"$index: the build is under way");
	return q1("SELECT pid FROM pg_stat_progress_create_index WHERE index_relid = to_regclass('$index')");
}

sub index_state
{
	return q1(
		"SELECT coalesce(string_agg(c.relname || ':' || i.indisvalid, ',' ORDER BY c.relname), 'none') "
		  . "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
		  . "WHERE c.relname LIKE '$_[0]%'");
}

# Apply again (fast now) and check: the leftover is dropped with a NOTICE
# and built again, valid.
sub apply_again
{
	my ($index, $version, $ine) = @_;
	q1('UPDATE ctl SET slow = false');
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', build_sql($index, $version, $ine),
		stdout => \$out, stderr => \$err);
	is($rc, 0, "$index: applying again succeeds") or diag($err);
	is($out, 'applied', "$index: applied");
	like($err, qr/NOTICE:  dropping invalid index public\.$index left by an interrupted build/,
		"$index: a NOTICE says the invalid leftover is dropped");
	is(index_state($index), "$index:true", "$index: one valid index");
	q1('UPDATE ctl SET slow = true');
}

# ---------------------------------------------------------------------
# kill -9 and pg_terminate_backend of the runner
# ---------------------------------------------------------------------
for my $how ('kill', 'terminate')
{
	my $index = "items_$how";
	my ($out, $err);
	my $h = start_psql(build_sql($index, "v-$how"), \$out, \$err);
	my $pid = building($index);
	is(q1("SELECT backend_type FROM pg_stat_activity WHERE pid = $pid"),
		'safe_migrate runner', "$how: the runner builds it");
	my $log_offset = -s $node->logfile;
	if ($how eq 'kill')
	{
		kill 'KILL', $pid;
		ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset),
			'kill: the postmaster reinitialized');
		ok(server_accepts($node), 'kill: the server is back');
	}
	else
	{
		q1("SELECT pg_terminate_backend($pid)");
	}
	eval { $h->finish };
	isnt($h->result(0), 0, "$how: the caller fails");
	is(index_state($index), "$index:false", "$how: the invalid index is left behind");
	apply_again($index, "v-$how");
}

# ---------------------------------------------------------------------
# a build cancelled outside migrations (the same leftover as an in-runner
# drop that could not get its lock); then IF NOT EXISTS must not take the
# invalid index for the index
# ---------------------------------------------------------------------
for my $ine (0, 1)
{
	my $index = $ine ? 'items_ine' : 'items_cancelled';
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '1s'; CREATE INDEX CONCURRENTLY $index ON items (slow(id));");
	like($err, qr/canceling statement due to statement timeout/, "$index: a plain build times out");
	is(index_state($index), "$index:false", "$index: and leaves an invalid index");
	apply_again($index, "v-$index", $ine);
}

# ---------------------------------------------------------------------
# a failed build whose in-runner drop would wait for a lock (a session took
# a SHARE lock on the table as soon as the build let go of it): the error
# says so, and the next apply drops the leftover before building again
# ---------------------------------------------------------------------
{
	q1('CREATE TABLE dup (id int); INSERT INTO dup SELECT g % 20 FROM generate_series(1, 40) g');
	my ($out, $err);
	# unique over duplicates: fails once the slow build (4 s) has sorted
	my $h = start_psql(
		"SELECT status FROM migrate_apply(\$m\$CREATE UNIQUE INDEX CONCURRENTLY dup_u ON dup (slow(id));\$m\$, 'v-dup')",
		\$out, \$err,
		" options='-c safe_migrate.lock_timeout=500 -c safe_migrate.lock_retries=0'");
	building('dup_u');
	# queued behind the build's lock, granted when the build fails, held
	# while the runner tries to drop the index
	my ($lout, $lerr);
	my $locker = start_psql(
		"BEGIN; LOCK TABLE dup IN SHARE MODE; SELECT pg_sleep(8); COMMIT;", \$lout, \$lerr);
	eval { $h->finish };
	isnt($h->result(0), 0, 'lock: the failing build fails the migration');
	like($err, qr/could not create unique index "dup_u"/, 'lock: with the build\'s error');
	like($err, qr/The invalid index public\.dup_u was not dropped: another session holds a lock on its table/,
		'lock: the detail says the invalid index could not be dropped');
	$locker->finish;
	is(index_state('dup_u'), 'dup_u:false', 'lock: the invalid index is left behind');
	q1('UPDATE ctl SET slow = false');
	my ($rc, $o2, $e2) = $node->psql('postgres',
		"SELECT status FROM migrate_apply(\$m\$CREATE INDEX CONCURRENTLY dup_u ON dup (slow(id));\$m\$, 'v-dup')");
	is($o2, 'applied', 'lock: the corrected migration is applied') or diag($e2);
	like($e2, qr/NOTICE:  dropping invalid index public\.dup_u left by an interrupted build/,
		'lock: the leftover is dropped first');
	is(index_state('dup_u'), 'dup_u:true', 'lock: one valid index');
	q1('UPDATE ctl SET slow = true');
}

# ---------------------------------------------------------------------
# an unnamed build gets a free name: an older invalid index on its table is
# reported, not dropped (nothing says it is this statement's)
# ---------------------------------------------------------------------
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '1s'; CREATE INDEX CONCURRENTLY ON items ((slow(id) + 1));");
	like($err, qr/canceling statement due to statement timeout/, 'unnamed: a plain build times out');
	my $left = q1("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
		  . "WHERE i.indrelid = 'items'::regclass AND NOT i.indisvalid");
	like($left, qr/^items_expr_idx$/, 'unnamed: it leaves items_expr_idx invalid');
	q1('UPDATE ctl SET slow = false');
	($rc, $out, $err) = $node->psql('postgres',
		"SELECT status FROM migrate_apply('CREATE INDEX CONCURRENTLY ON items ((slow(id) + 1));', 'v-unnamed')");
	is($out, 'applied', 'unnamed: the migration is applied') or diag($err);
	like($err, qr/WARNING:  table "items" has an invalid index public\.items_expr_idx/,
		'unnamed: a WARNING names the invalid index');
	like($err, qr/HINT:  Drop it with DROP INDEX CONCURRENTLY public\.items_expr_idx/,
		'unnamed: and says how to drop it');
	is(index_state('items_expr_idx'), 'items_expr_idx:false,items_expr_idx1:true',
		'unnamed: the new index is built under another name, the old one is left');
	q1('DROP INDEX items_expr_idx, items_expr_idx1');
	q1('UPDATE ctl SET slow = true');
}

# ---------------------------------------------------------------------
# a build in progress in another session is not touched
# ---------------------------------------------------------------------
{
	my $index = 'items_elsewhere';
	my ($out, $err);
	my $h = start_psql("CREATE INDEX CONCURRENTLY $index ON items (slow(id))", \$out, \$err);
	my $pid = building($index);
	q1('UPDATE ctl SET slow = false');
	my ($rc, $mout, $merr) = $node->psql('postgres',
		"\\set VERBOSITY verbose\n" . build_sql($index, 'v-elsewhere'));
	isnt($rc, 0, 'elsewhere: the migration fails');
	like($merr, qr/55006: index public\.items_elsewhere is being built by another session \(PID $pid\)/,
		'elsewhere: it says another session builds the index');
	unlike($merr, qr/dropping invalid index/, 'elsewhere: the index is not dropped');
	$h->finish;
	is(index_state($index), "$index:true", 'elsewhere: the other build completed');
	q1('UPDATE ctl SET slow = true');
}

# ---------------------------------------------------------------------
# REINDEX CONCURRENTLY leaves <index>_ccnew; a migration that reindexes
# drops it first
# ---------------------------------------------------------------------
{
	q1('UPDATE ctl SET slow = false');
	q1('CREATE INDEX items_re ON items (slow(id))');
	q1('UPDATE ctl SET slow = true');
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET statement_timeout = '1s'; REINDEX INDEX CONCURRENTLY items_re;");
	like($err, qr/canceling statement due to statement timeout/, 'reindex: times out');
	is(index_state('items_re'), 'items_re:true,items_re_ccnew:false',
		'reindex: the invalid copy items_re_ccnew is left');
	q1('UPDATE ctl SET slow = false');
	($rc, $out, $err) = $node->psql('postgres',
		"SELECT status FROM migrate_apply('REINDEX INDEX CONCURRENTLY items_re;', 'v-reindex')");
	is($out, 'applied', 'reindex: the migration is applied') or diag($err);
	like($err, qr/dropping invalid index public\.items_re_ccnew left by an interrupted build/,
		'reindex: its leftover copy is dropped first');
	is(index_state('items_re'), 'items_re:true', 'reindex: no copy left');
	q1('UPDATE ctl SET slow = true');
}

# ---------------------------------------------------------------------
# the caller is cancelled during the runner's build: the runner stops,
# drops the invalid index itself and records the failure
# ---------------------------------------------------------------------
{
	my $index = 'items_caller';
	my ($out, $err);
	my $h = start_psql(build_sql($index, 'v-caller'), \$out, \$err);
	my $runner = building($index);
	my $caller = q1("SELECT pid FROM pg_stat_activity WHERE query LIKE '%migrate_apply%$index%' "
		  . "AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
	like($caller, qr/^\d+$/, 'caller: found the calling backend');
	q1("SELECT pg_cancel_backend($caller)");
	eval { $h->finish };
	isnt($h->result(0), 0, 'caller: the cancelled call fails');
	like($err, qr/canceling statement due to user request/, 'caller: cancelled');
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'"),
		'caller: the runner stopped');
	is(index_state($index), 'none', 'caller: the runner dropped the invalid index');
	is( q1("SELECT status, sqlstate FROM safe_migrate.history WHERE version = 'v-caller'"),
		'failed|57014', 'caller: the runner recorded the cancelled build as failed');
	q1('UPDATE ctl SET slow = false');
	is(q1(build_sql($index, 'v-caller')), 'applied', 'caller: applying again succeeds');
	is(index_state($index), "$index:true", 'caller: one valid index');
}

# ---------------------------------------------------------------------
# a migration's build that fails drops its own invalid index only, never
# the one another session is building meanwhile on another table (it used
# to drop every index that became invalid while the step ran)
# ---------------------------------------------------------------------
{
	q1('CREATE TABLE dups (v int); INSERT INTO dups VALUES (1), (1)');
	q1('CREATE TABLE others (id int); INSERT INTO others SELECT generate_series(1, 40)');
	q1('UPDATE ctl SET slow = true');
	my ($out, $err);
	my $h = start_psql('CREATE INDEX CONCURRENTLY others_slow ON others (slow(id))', \$out, \$err);
	building('others_slow');
	my ($rc, $mout, $merr) = $node->psql('postgres',
		"SELECT status FROM migrate_apply('CREATE UNIQUE INDEX CONCURRENTLY dups_v ON dups (v);', 'v-fails-beside')");
	isnt($rc, 0, "beside: the migration's unique build fails");
	like($merr, qr/could not create unique index "dups_v"/, 'beside: on the duplicates');
	like($merr, qr/dropped invalid index public\.dups_v left by the failed statement/,
		'beside: its own invalid index is dropped');
	unlike($merr, qr/others_slow/, 'beside: the other build is not touched');
	q1('UPDATE ctl SET slow = false');
	$h->finish;
	is($h->result(0), 0, "beside: the other session's build completed") or diag($err);
	is(index_state('others_slow'), 'others_slow:true', 'beside: its index is there and valid');
	is(index_state('dups_v'), 'none', 'beside: no index dups_v left');
	q1('DROP INDEX others_slow');
}

is(q1('SELECT count(*) FROM pg_index WHERE NOT indisvalid'), '0', 'no invalid index is left');
$node->stop;
done_testing();
