# Copyright: safe_migrate authors
#
# Backfill privileges.
#  - A backfill runs as the role that submitted it: the statement, and any
#    code it sets off (triggers, including deferred ones; functions), sees
#    that role as current_user, never the worker's superuser.  Settings the
#    job's code changes do not leak into the worker's own queries.
#  - Submitting needs UPDATE on the table.
#  - A job is visible to, and controllable by, the members of the
#    submitting role and of safe_migrate_admin only; to anybody else it does
#    not exist.
#  - A table without a primary key or usable unique index is refused with a
#    clear error and hint.
#  - Without shared_preload_libraries there is no launcher: migrate_backfill
#    says so.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('bf_privileges');

my $superuser = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	CREATE ROLE carol LOGIN;
	GRANT safe_migrate_admin TO carol;
	CREATE SCHEMA alice AUTHORIZATION alice;
	CREATE SCHEMA bob AUTHORIZATION bob;
	-- each sees the other's schema, so that a refusal is about the table
	GRANT USAGE ON SCHEMA alice TO bob;
	GRANT USAGE ON SCHEMA bob TO alice;
});

sub as { return as_role($node, @_) }

# ($rc, $stdout, $stderr) of $sql as $role, errors in verbose form
sub try_as { return try_as_role($node, @_, verbose => 1) }

sub fails_like { return fails_as_role($node, @_) }

sub job_value
{
	my ($id, $expr) = @_;
	return $node->safe_psql('postgres',
		"SELECT $expr FROM safe_migrate.backfills WHERE id = $id");
}

sub job_count
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.backfill_jobs');
}

as('alice', q{
	CREATE TABLE alice.a (id int PRIMARY KEY, note text);
	INSERT INTO alice.a SELECT g FROM generate_series(1, 1000) g;
});
as('bob', q{
	CREATE TABLE bob.b (id int PRIMARY KEY, note text);
	INSERT INTO bob.b SELECT g FROM generate_series(1, 1000) g;
});

# ---------------------------------------------------------------------------
# A backfill runs as its submitter
# ---------------------------------------------------------------------------
my $a_job = as('alice', "SELECT migrate_backfill('alice.a', 'note = current_user')");
like($a_job, qr/^\d+$/, 'alice submits a backfill of her table');
is(as('alice', "SELECT migrate_backfill_wait($a_job, '3 min')"), 'completed',
	"alice's backfill completes");
is( as('alice', 'SELECT note, count(*) FROM alice.a GROUP BY note'),
	'alice|1000', "the backfill ran as alice (current_user stored in every row)");
is( as('alice',
		"SELECT submitted_by || ' ' || relation || ' ' || status FROM safe_migrate.backfills WHERE id = $a_job"),
	'alice alice.a completed',
	'alice sees her job, submitted_by alice');

my $b_job = as('bob', "SELECT migrate_backfill('bob.b', 'note = current_user')");
is(as('bob', "SELECT migrate_backfill_wait($b_job, '3 min')"), 'completed', "bob's backfill completes");
is(as('bob', 'SELECT note, count(*) FROM bob.b GROUP BY note'),
	'bob|1000', 'the backfill ran as bob');

# Code the job sets off runs as alice too: an ordinary and a deferred row
# trigger (the latter fires at the end of the batch's statement, see
# worker.cpp), and an operator of alice's that a search_path set by the
# job's own code would make the worker's queries pick up.
as('alice', q{
	BEGIN;
	CREATE TABLE alice.spy (who text, what text);
	CREATE FUNCTION alice.spy_trigger() RETURNS trigger LANGUAGE plpgsql AS
	  $$BEGIN INSERT INTO alice.spy VALUES (current_user, TG_NAME); RETURN NULL; END$$;
	CREATE TABLE alice.spied (id int PRIMARY KEY, note text);
	CREATE TRIGGER spied_row AFTER UPDATE ON alice.spied
	  FOR EACH ROW EXECUTE FUNCTION alice.spy_trigger();
	CREATE CONSTRAINT TRIGGER spied_deferred AFTER UPDATE ON alice.spied
	  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION alice.spy_trigger();
	INSERT INTO alice.spied SELECT g FROM generate_series(1, 10) g;
	COMMIT;
});
my $spied_job = as('alice', "SELECT migrate_backfill('alice.spied', 'note = current_user')");
is(as('alice', "SELECT migrate_backfill_wait($spied_job, '3 min')"),
	'completed', 'the backfill of the table with triggers completes');
is( as('alice', 'SELECT what, who, count(*) FROM alice.spy GROUP BY 1, 2 ORDER BY 1, 2'),
	"spied_deferred|alice|10\nspied_row|alice|10",
	'its row triggers, immediate and deferred, ran as alice');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'"),
	'f', 'alice is still no superuser');

# alice's own now(), clock_timestamp() and +(bigint, integer), which the
# job's code puts first on the search_path for the rest of the batch's
# transaction
as('alice', q{
	DELETE FROM alice.spy;
	CREATE FUNCTION alice.now() RETURNS timestamptz LANGUAGE plpgsql AS
	  $$BEGIN INSERT INTO alice.spy VALUES (current_user, 'now()'); RETURN pg_catalog.now(); END$$;
	CREATE FUNCTION alice.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS
	  $$BEGIN INSERT INTO alice.spy VALUES (current_user, 'clock_timestamp()'); RETURN pg_catalog.clock_timestamp(); END$$;
	CREATE FUNCTION alice.spy_plus(bigint, int) RETURNS bigint LANGUAGE plpgsql AS
	  $$BEGIN INSERT INTO alice.spy VALUES (current_user, '+'); RETURN $1 OPERATOR(pg_catalog.+) $2; END$$;
	CREATE OPERATOR alice.+ (LEFTARG = bigint, RIGHTARG = int, FUNCTION = alice.spy_plus);
	CREATE FUNCTION alice.note_for(id int) RETURNS text LANGUAGE plpgsql AS
	  $$BEGIN PERFORM set_config('search_path', 'alice, pg_catalog', true); RETURN current_user; END$$;
	CREATE TABLE alice.hijack (id int PRIMARY KEY, note text);
	INSERT INTO alice.hijack SELECT g FROM generate_series(1, 10) g;
});
my $hijack_job = as('alice', "SELECT migrate_backfill('alice.hijack', 'note = alice.note_for(id)')");
my ($rc, $out, $err) = try_as('alice', "SELECT migrate_backfill_wait($hijack_job, '3 min')");
is($out, 'completed', 'the backfill whose code changes search_path completes');
is(as('alice', 'SELECT note, count(*) FROM alice.hijack GROUP BY note'),
	'alice|10', 'it ran as alice');
is( as('alice', "SELECT coalesce(string_agg(DISTINCT who || ' ' || what, ', '), 'none') FROM alice.spy WHERE who <> 'alice'"),
	'none', "none of alice's functions or operators ran as another role (the job's search_path did not leak)");
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'"),
	'f', 'alice is still no superuser');

# ---------------------------------------------------------------------------
# Submitting needs UPDATE on the table
# ---------------------------------------------------------------------------
my $jobs_before = job_count();
fails_like('alice', "SELECT migrate_backfill('bob.b', 'note = current_user')",
	qr/ERROR:  42501: permission denied for table b/,
	"alice backfilling bob's table");
fails_like('bob', "SELECT migrate_backfill('alice.a', 'note = current_user')",
	qr/ERROR:  42501: permission denied for table a/,
	"bob backfilling alice's table");
is(job_count(), $jobs_before, 'no job was recorded for the refused submissions');
is(as('bob', 'SELECT count(*) FROM bob.b WHERE note IS DISTINCT FROM \'bob\''),
	0, "bob's table is unchanged");

# ---------------------------------------------------------------------------
# Visibility and control
# ---------------------------------------------------------------------------
as('alice', q{
	CREATE TABLE alice.slow (id int PRIMARY KEY, note text);
	INSERT INTO alice.slow SELECT g FROM generate_series(100001, 120000) g;
});
# 20000 rows in batches of a few rows (1 ms each), 200 ms apart: runs for
# minutes unless stopped, and notices a pause or cancel quickly
my $slow = as('alice',
	"SELECT migrate_backfill('alice.slow', 'note = current_user', batch_size => 10, "
	  . "target_batch_ms => 1, pause_ms => 200)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT status = 'running' AND rows_done > 0 FROM safe_migrate.backfills WHERE id = $slow"),
	"alice's slow job is running");

is(as('bob', "SELECT count(*) FROM safe_migrate.backfills WHERE id = $slow"),
	0, "bob does not see alice's job");
is( as('bob', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM safe_migrate.backfills'),
	$b_job, 'bob sees only his own job');
is( as('alice', "SELECT count(*) FROM safe_migrate.backfills WHERE id = $b_job"),
	0, "alice does not see bob's job");
fails_like('bob', 'SELECT count(*) FROM safe_migrate.backfill_jobs',
	qr/permission denied for table backfill_jobs/,
	'bob reading the jobs table directly');

for my $call (
	"migrate_backfill_pause($slow)", "migrate_backfill_resume($slow)",
	"migrate_backfill_cancel($slow)", "migrate_backfill_wait($slow, '1 s')",
	"migrate_backfill_wait($slow)")
{
	fails_like('bob', "SELECT $call",
		qr/ERROR:  42704: backfill job $slow does not exist/,
		"bob calling $call");
}
is(job_value($slow, 'status'), 'running', "alice's job is still running after bob's attempts");
fails_like('bob', 'SELECT migrate_backfill_pause(999999)',
	qr/backfill job 999999 does not exist/, 'pausing a job that really does not exist');

# an administrator sees it and may pause it
is( as('carol', "SELECT submitted_by || ' ' || status FROM safe_migrate.backfills WHERE id = $slow"),
	'alice running', 'a member of safe_migrate_admin sees the job');
is(as('carol', "SELECT migrate_backfill_pause($slow)"), 'paused', 'the administrator pauses it');
is(as('alice', "SELECT status FROM safe_migrate.backfills WHERE id = $slow"),
	'paused', 'alice sees her job paused');
my $done = job_value($slow, 'rows_done');
sleep 2;    # the job would do ~10 batches meanwhile
is(job_value($slow, 'rows_done'), $done, 'the paused job makes no progress');
cmp_ok($done, '<', 20000, 'the paused job is not done');

fails_like('alice', "SELECT migrate_backfill_pause($slow)",
	qr/backfill job $slow is paused/, 'pausing the paused job again');
is(as('alice', "SELECT migrate_backfill_resume($slow)"), 'running', 'alice resumes her job');
is(as('alice', "SELECT migrate_backfill_cancel($slow)"), 'cancelled', 'alice cancels her job');
fails_like('alice', "SELECT migrate_backfill_wait($slow, '10 s')",
	qr/backfill job $slow cancelled/, 'waiting for the cancelled job');
is(job_value($slow, 'finished_at IS NOT NULL'), 't', 'the cancelled job has finished_at');

# ---------------------------------------------------------------------------
# Tables without a key to walk
# ---------------------------------------------------------------------------
as('alice', q{
	CREATE TABLE alice.nokey (id int, note text);
	INSERT INTO alice.nokey SELECT g FROM generate_series(1, 10) g;
	CREATE TABLE alice.nullkey (id int UNIQUE, note text);
	INSERT INTO alice.nullkey SELECT g FROM generate_series(1, 10) g;
	CREATE TABLE alice.uniqkey (id int NOT NULL UNIQUE, note text);
	INSERT INTO alice.uniqkey SELECT g FROM generate_series(1, 10) g;
});
$jobs_before = job_count();
for my $t ('nokey', 'nullkey')
{
	my $stderr = fails_like('alice', "SELECT migrate_backfill('alice.$t', 'note = current_user')",
		qr/ERROR:  55000: table alice\.$t has no key to walk in batches/,
		"backfilling alice.$t");
	like($stderr, qr/HINT:  Add one first: CREATE UNIQUE INDEX CONCURRENTLY/,
		"backfilling alice.$t: the hint says how to add a key");
	like($stderr, qr/DETAIL:  A backfill walks the table by its primary key/,
		"backfilling alice.$t: the detail says what is needed");
}
is(job_count(), $jobs_before, 'no job was recorded for the tables without a key');
my $uniq_job = as('alice', "SELECT migrate_backfill('alice.uniqkey', 'note = current_user')");
is(as('alice', "SELECT migrate_backfill_wait($uniq_job, '3 min')"), 'completed',
	'a table with a unique index on NOT NULL columns can be backfilled');
is(as('alice', 'SELECT note, count(*) FROM alice.uniqkey GROUP BY note'),
	'alice|10', 'every row of it was updated');

$node->stop;

# ---------------------------------------------------------------------------
# Without shared_preload_libraries
# ---------------------------------------------------------------------------
my $plain = PostgreSQL::Test::Cluster->new('bf_no_preload');
$plain->init;
$plain->start;
$plain->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE t (id int PRIMARY KEY, note text);
	INSERT INTO t SELECT g FROM generate_series(1, 10) g;
});
{
	my ($stdout, $stderr);
	my $rc = $plain->psql(
		'postgres',
		"\\set VERBOSITY verbose\nSELECT migrate_backfill('t', 'note = ''x''')",
		stdout => \$stdout,
		stderr => \$stderr);
	isnt($rc, 0, 'without shared_preload_libraries migrate_backfill fails');
	like($stderr, qr/ERROR:  55000: .*shared_preload_libraries/,
		'the error mentions shared_preload_libraries');
	like($stderr, qr/HINT:  .*shared_preload_libraries/, 'the hint says what to do');
}
is($plain->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.backfill_jobs'),
	0, 'no job was recorded');
is($plain->safe_psql('postgres', 'SELECT count(*) FROM t WHERE note IS NOT NULL'),
	0, 'the table is unchanged');
$plain->stop;

done_testing();
