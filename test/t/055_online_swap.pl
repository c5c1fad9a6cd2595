# Copyright: safe_migrate authors
#
# The swap of an online ALTER COLUMN ... TYPE (issue 13, item 7) against the
# application's open transactions, step by step (the isolation tester cannot
# see a session wait for a background runner, so the interleaving is driven
# here with sessions of their own).
#
# A gate (a ddl_command_start event trigger taking a shared advisory lock
# the test holds) stops the runner just before the swap's first statement.
# Meanwhile a reader and a writer open transactions on the table (the
# writer's update and insert go through the sync trigger).  Released, the
# swap waits for them outside the lock queue: the column is not half
# swapped, and other sessions read and write the table without waiting
# behind it.  Once they commit, the swap completes in one transaction: the
# column is bigint, the writer's rows are there with their values, the
# reader saw the old column until its transaction ended, nothing of the
# machinery is left.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('online_swap');
sub q1 { return $node->safe_psql('postgres', $_[0]) }

q1(q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE owner LOGIN;
	CREATE ROLE app LOGIN;
	GRANT CREATE ON DATABASE postgres TO owner;
	CREATE FUNCTION sw_gate() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
	BEGIN
	    IF (SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid())
	       LIKE 'ALTER TABLE sch.sw DROP CONSTRAINT sw_pkey%' THEN
	        PERFORM pg_advisory_xact_lock_shared(4242);
	    END IF;
	END $$;
	CREATE EVENT TRIGGER sw_gate ON ddl_command_start EXECUTE FUNCTION sw_gate();
});
as_role(
	$node, 'owner', q{
	CREATE SCHEMA sch;
	GRANT USAGE ON SCHEMA sch TO app;
	CREATE TABLE sch.sw (id int PRIMARY KEY, v int NOT NULL);
	INSERT INTO sch.sw SELECT g, g FROM generate_series(1, 5000) g;
	GRANT SELECT, INSERT, UPDATE ON sch.sw TO app;
});

# the gate, closed
my $gate = $node->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(4242)');

my ($out, $err) = ('', '');
my $apply = IPC::Run::start(
	[ $node->installed_command('psql'), '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres') . ' user=owner',
	  '-c', "SELECT status FROM migrate_apply(E'-- safe_migrate:online\\nALTER TABLE sch.sw ALTER COLUMN id TYPE bigint;', 'sw-1')" ],
	'>', \$out, '2>', \$err);
ok( $node->poll_query_until(
		'postgres',
		"SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 "
		  . "AND mode = 'ShareLock' AND NOT granted)"),
	'the runner reached the swap');
is( q1("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
		  . "FROM pg_attribute WHERE attrelid = 'sch.sw'::regclass AND attnum > 0 AND NOT attisdropped"),
	'id integer, v integer, id_sm_new bigint', 'before the swap: the shadow column is there');
is(q1('SELECT count(*) FILTER (WHERE id_sm_new = id) || \'/\' || count(*) FROM sch.sw'),
	'5000/5000', 'before the swap: every row has its copy');

# the application's open transactions
my $reader = $node->background_psql('postgres', extra_params => [ '-U', 'app' ]);
$reader->query_safe('BEGIN');
is($reader->query_safe('SELECT pg_typeof(id) FROM sch.sw WHERE id = 1'), 'integer', 'the reader sees integer');
my $writer = $node->background_psql('postgres', extra_params => [ '-U', 'app' ]);
$writer->query_safe('BEGIN');
$writer->query_safe('UPDATE sch.sw SET v = -2 WHERE id = 2');
$writer->query_safe('INSERT INTO sch.sw VALUES (5001, -5001)');

# open the gate: the swap waits for them
$gate->query_safe('SELECT pg_advisory_unlock(4242)');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) > 0 FROM safe_migrate.lock_waits WHERE version = 'sw-1' AND blocker_pid IS NOT NULL"),
	'the swap waits for the open transactions (outside the lock queue)');
is( q1("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sch.sw'::regclass "
		  . "AND attname = 'id'"),
	'integer', 'while it waits: nothing of the swap is done');
# other sessions read and write meanwhile, not queued behind it
my ($rc, $o, $e) = $node->psql(
	'postgres',
	"SET statement_timeout = '5s'; SELECT count(*) FROM sch.sw; UPDATE sch.sw SET v = v + 1 WHERE id = 3 RETURNING v;",
	connstr => $node->connstr('postgres') . ' user=app');
is($rc, 0, 'while it waits: the application reads and writes the table') or diag($e);
is($o, "5000\n4", 'while it waits: the reads see the rows, the write goes through');
is($reader->query_safe('SELECT pg_typeof(id) FROM sch.sw WHERE id = 1'), 'integer',
	'the reader still sees integer in its transaction');
$reader->query_safe('COMMIT');
$writer->query_safe('COMMIT');

$apply->finish;
chomp $out;
is($out, 'applied', 'the swap completes once they commit') or diag($err);
is( q1("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname) "
		  . "FROM pg_attribute WHERE attrelid = 'sch.sw'::regclass AND attnum > 0 AND NOT attisdropped"),
	'id bigint, v integer', 'after: id is bigint');
is(q1('SELECT string_agg(id || \'=\' || v, \',\' ORDER BY id) FROM sch.sw WHERE id IN (1, 2, 3, 5001)'),
	'1=1,2=-2,3=4,5001=-5001', 'after: the writes made around the swap are there');
is(q1("SELECT count(*) FROM sch.sw"), '5001', 'after: every row');
is( q1("SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sch.sw'::regclass AND NOT tgisinternal) "
		  . "|| ',' || (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ',') "
		  . "FROM pg_constraint WHERE conrelid = 'sch.sw'::regclass AND contype <> 'n')"),
	'0,sw_pkey PRIMARY KEY (id)', 'after: the primary key, no trigger left');
my $reader2 = $node->background_psql('postgres', extra_params => [ '-U', 'app' ]);
is($reader2->query_safe('SELECT pg_typeof(id) FROM sch.sw WHERE id = 1'), 'bigint',
	'a new transaction sees bigint');
$reader2->quit;
$reader->quit;
$writer->quit;
$gate->quit;

$node->stop;
done_testing();
