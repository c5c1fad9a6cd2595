# Copyright: safe_migrate authors
#
# ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY in a migration, while
# the application reads the partitioned table.
#
# PostgreSQL runs it in two transactions: the first marks the partition
# "pending detach" and commits; the second waits for every transaction that
# uses the parent.  When that wait ends with a lock timeout (or a lost
# deadlock, or a crash), the partition stays pending, and the same statement
# run again fails ("already pending detach").  The runner retries a step
# that hit its lock timeout, and runs the same step again when the script is
# applied again: both must finish the detach, with PostgreSQL's own DETACH
# PARTITION ... FINALIZE.  Before, a reader holding its transaction open
# longer than safe_migrate.lock_timeout made the migration fail and left the
# partition half detached.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('detach');
$node->safe_psql('postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE owner LOGIN;
	GRANT CREATE ON SCHEMA public TO owner;
});

sub q1 { return $node->safe_psql('postgres', $_[0]) }

# a partitioned table of the (non-admin) owner, partitions p0..p3
q1(q{SET ROLE owner;
	CREATE TABLE events (id int NOT NULL, note text) PARTITION BY RANGE (id);
	SELECT format('CREATE TABLE events_p%s PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
	              i, i * 1000, (i + 1) * 1000) FROM generate_series(0, 3) i \gexec
	INSERT INTO events SELECT g, 'n' || g FROM generate_series(0, 3999) g;});

sub pending
{
	return q1(q{SELECT coalesce(string_agg(inhrelid::regclass::text, ',' ORDER BY inhrelid::regclass::text), '')
	              FROM pg_inherits WHERE inhdetachpending});
}

sub partitions
{
	return q1(q{SELECT string_agg(inhrelid::regclass::text, ',' ORDER BY inhrelid::regclass::text)
	              FROM pg_inherits WHERE inhparent = 'events'::regclass});
}

# 1. A reader keeps a transaction on the parent open while the detach waits
#    in its second transaction: the step times out, is retried, and the
#    retry finishes the pending detach (each lock strategy).
my $n = 0;
for my $strategy ('wait', 'retry')
{
	$n++;
	my $reader = $node->background_psql('postgres');
	$reader->query_safe('BEGIN; SELECT count(*) FROM events;');
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  '-c', 'SET ROLE owner', '-c', "SET safe_migrate.lock_strategy = '$strategy'",
		  '-c', "SET safe_migrate.lock_timeout = '200ms'",
		  '-c', "SELECT status FROM migrate_apply('ALTER TABLE events DETACH PARTITION events_p$n CONCURRENTLY;', 'detach-$strategy')" ],
		'>', \$out, '2>', \$err);
	# the first transaction committed, the second waits for the reader
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_inherits WHERE inhdetachpending AND inhrelid = 'events_p$n'::regclass")
	  or die "the detach of events_p$n never became pending";
	# long enough for a lock timeout and a retry
	$node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'
		   AND query LIKE '%FINALIZE%'})
	  or die 'the retry did not finish the detach';
	$reader->query_safe('COMMIT;');
	$reader->quit;
	$h->finish;
	chomp $out;
	is($out, 'applied', "$strategy: the migration applies") or diag($err);
	like($err, qr/lock timeout on statement 1 of the migration, retry 1/,
		"$strategy: its second transaction hit the lock timeout");
	like($err, qr/partition public\.events_p$n is pending detach from public\.events: finishing it with DETACH PARTITION \.\.\. FINALIZE/,
		"$strategy: the retry finished the pending detach");
	unlike($err, qr/already pending detach/, "$strategy: not the statement again");
	is(pending(), '', "$strategy: no partition is left pending detach");
	is(q1("SELECT relispartition FROM pg_class WHERE oid = 'events_p$n'::regclass"), 'f',
		"$strategy: events_p$n is a table of its own");
	is(q1("SELECT status FROM safe_migrate.history WHERE version = 'detach-$strategy'"),
		'applied', "$strategy: the history says applied");
}
is(partitions(), 'events_p0,events_p3', 'the two partitions are detached, the others stay');

# 2. The same statement when a failed attempt left the partition pending:
#    applying the script again finishes it.
{
	my $reader = $node->background_psql('postgres');
	$reader->query_safe('BEGIN; SELECT count(*) FROM events;');
	my ($out, $err) = ('', '');
	my $rc = $node->psql(
		'postgres', q{
		SET ROLE owner;
		SET safe_migrate.lock_strategy = 'retry';
		SET safe_migrate.lock_timeout = '200ms';
		SET safe_migrate.lock_retries = 0;
		SELECT status FROM migrate_apply('ALTER TABLE events DETACH PARTITION events_p3 CONCURRENTLY;', 'detach-again');},
		stdout => \$out,
		stderr => \$err);
	isnt($rc, 0, 'without retries the lock timeout fails the migration');
	is(pending(), 'events_p3', 'and leaves the partition pending detach (PostgreSQL does)');
	$reader->query_safe('COMMIT;');
	$reader->quit;
	($out, $err) = ('', '');
	$rc = $node->psql(
		'postgres', q{
		SET ROLE owner;
		SELECT status FROM migrate_apply('ALTER TABLE events DETACH PARTITION events_p3 CONCURRENTLY;', 'detach-again');},
		stdout => \$out,
		stderr => \$err);
	is($out, 'applied', 'applied again, the migration completes') or diag($err);
	like($err, qr/events_p3 is pending detach from public\.events: finishing it/,
		'by finishing the pending detach');
	is(pending(), '', 'no partition is left pending detach');
	is(partitions(), 'events_p0', 'events_p3 is detached');
	is( q1(q{SELECT string_agg(status, ',' ORDER BY id) FROM safe_migrate.history
	          WHERE version = 'detach-again'}),
		'failed,applied', 'the history has the failed attempt and the applied one');
}

# 3. A statement that names a parent the pending partition is not detaching
#    from is left to PostgreSQL (its own error), not turned into FINALIZE.
{
	q1(q{SET ROLE owner;
		CREATE TABLE other (id int NOT NULL) PARTITION BY RANGE (id);
		CREATE TABLE other_p0 PARTITION OF other FOR VALUES FROM (0) TO (10);});
	my $reader = $node->background_psql('postgres');
	$reader->query_safe('BEGIN; SELECT count(*) FROM other;');
	my ($out, $err) = ('', '');
	$node->psql(
		'postgres', q{
		SET ROLE owner;
		SET safe_migrate.lock_strategy = 'retry';
		SET safe_migrate.lock_timeout = '200ms';
		SET safe_migrate.lock_retries = 0;
		SELECT status FROM migrate_apply('ALTER TABLE other DETACH PARTITION other_p0 CONCURRENTLY;', 'other-1');},
		stdout => \$out,
		stderr => \$err);
	$reader->query_safe('COMMIT;');
	$reader->quit;
	is(pending(), 'other_p0', 'other_p0 is pending detach from other');
	($out, $err) = ('', '');
	my $rc = $node->psql(
		'postgres', q{
		SET ROLE owner;
		SELECT status FROM migrate_apply('ALTER TABLE events DETACH PARTITION other_p0 CONCURRENTLY;', 'other-2');},
		stdout => \$out,
		stderr => \$err);
	isnt($rc, 0, 'naming the wrong parent fails');
	like($err, qr/not a partition of|pending detach/, "with PostgreSQL's own error");
	unlike($err, qr/finishing it with/, 'no FINALIZE was run for it');
	is(pending(), 'other_p0', 'other_p0 is still pending detach from other');
}

$node->stop;
done_testing();
