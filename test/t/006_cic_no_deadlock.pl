# A CREATE INDEX CONCURRENTLY inside a migration must not wait for the
# callers and runners queued behind it on the migration lock.
#
# CREATE INDEX CONCURRENTLY waits for every transaction whose snapshot is
# older than its own, and the deadlock detector cannot see that wait when the
# waiter is the one we hold the migration lock against.  safe_migrate waits for
# the migration lock without a snapshot (in the caller and in the runner), so
# the build goes through.  With lock_retries = 0 and a lock_timeout well above
# the test's duration, any such wait would end the build with a lock timeout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = start_node('cic');
$node->safe_psql('postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE items (id int, note text);
	INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100000) g;
});

# psql running the settings, then the query, in the background
# (settings and the call as separate queries: a multi-statement query
# string is an implicit transaction block, where migrate_apply refuses)
sub start_psql
{
	my ($sql, $settings, $version) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  (map { ('-c', $_) } @$settings), '-c', $sql ],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err, version => $version };
}

sub start_apply
{
	my ($script, $version, $settings) = @_;
	return start_psql("SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$version');",
		$settings, $version);
}

# the same, the script computed by a subquery that sleeps 3 s first: the
# caller's snapshot is in use meanwhile
sub start_apply_computed
{
	my ($script, $version, $settings) = @_;
	return start_psql(
		"SELECT status FROM migrate_apply((SELECT \$m\$$script\$m\$ FROM pg_sleep(3)), '$version');",
		$settings, $version);
}

sub wait_until_migration_lock_held
{
	$node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_locks
		 WHERE locktype = 'advisory' AND objid = 1526608231 AND objsubid = 3 AND granted})
	  or die "no migration holds the lock";
}

my $slow = [ "SET safe_migrate.lock_timeout = '60s'", "SET safe_migrate.lock_retries = 0" ];

# 1: the migration holds the lock while it builds an index concurrently;
#    a plain migration (waits in its caller) and another concurrent build
#    (waits in its runner) queue behind it.
my $first = start_apply(
	"SELECT pg_sleep(1); CREATE INDEX CONCURRENTLY items_id ON items (id);",
	'cic-1', $slow);
wait_until_migration_lock_held();
my $second = start_apply("CREATE TABLE queued (id int);", 'plain-2', $slow);
# the second queues before the third starts (else their order is a race)
$node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_locks
	 WHERE locktype = 'advisory' AND objid = 1526608231 AND objsubid = 3 AND NOT granted})
  or die "the second migration does not wait for the lock";
my $third = start_apply("CREATE INDEX CONCURRENTLY items_note ON items (note);",
	'cic-3', $slow);

for my $m ($first, $second, $third)
{
	$m->{h}->finish;
	chomp(my $status = ${ $m->{out} });
	is($status, 'applied', "$m->{version} applied")
	  or diag(${ $m->{err} });
}

is( $node->safe_psql('postgres',
		q{SELECT string_agg(indexrelid::regclass::text || ':' || indisvalid, ',' ORDER BY indexrelid::regclass::text)
		    FROM pg_index WHERE indrelid = 'items'::regclass}),
	'items_id:true,items_note:true',
	'both concurrent builds produced valid indexes');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(version || ':' || status, ',' ORDER BY id) FROM safe_migrate.history}),
	'cic-1:applied,plain-2:applied,cic-3:applied',
	'history records the three migrations in lock order');

# 3: the race the first case cannot show.  A caller's snapshot is in use
#    from the start of its SELECT until migrate_apply withdraws its xmin; a
#    concurrent build that collects the older snapshots in that moment waits
#    for the caller's whole transaction, while the caller waits for the
#    build's migration to finish.  Here the moment is stretched: the
#    script is computed by a subquery that sleeps.  The build must lose the
#    deadlock (the caller has done nothing yet) and be built again, once
#    the caller waits without an xmin; both migrations apply.
#    a: the caller's migration runs in its own session (it waits for the
#       migration lock as a lock);
#    b: it runs in a runner (the caller waits for the migration to finish
#       before it starts one: a wait on its own runner is one the deadlock
#       detector could not see, and nothing would end the cycle but the
#       build's lock timeout).
my $retrying = [ "SET safe_migrate.lock_timeout = '120s'", "SET safe_migrate.lock_retries = 3" ];
my $n = 0;
for my $case (['in its session', 'CREATE TABLE raced_a (id int);', 'plain-6'],
	['in a runner', 'CREATE INDEX CONCURRENTLY items_raced_b ON items (note);', 'cic-8'])
{
	my ($where, $script, $version) = @$case;
	$n++;
	my $late = start_apply_computed($script, $version, $retrying);
	$node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_stat_activity
		 WHERE wait_event = 'PgSleep' AND backend_xmin IS NOT NULL})
	  or die 'the caller does not sleep in its subquery';
	my $build = start_apply("CREATE INDEX CONCURRENTLY items_race_$n ON items (id, note);",
		"cic-race-$n", $retrying);
	# the build waits for the sleeping caller's transaction
	$node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'virtualxid' AND NOT granted})
	  or die 'the build does not wait for the older transaction';
	for my $m ($build, $late)
	{
		$m->{h}->finish;
		chomp(my $status = ${ $m->{out} });
		is($status, 'applied', "$where: $m->{version} applied")
		  or diag(${ $m->{err} });
	}
	like(${ $build->{err} }, qr/deadlock on statement 1 of the migration, retry 1 of 3/,
		"$where: the build lost the deadlock and was run again");
	unlike(${ $late->{err} }, qr/deadlock/, "$where: the waiting caller saw no deadlock");
	is( $node->safe_psql('postgres', qq{
		SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_race_$n'::regclass}),
		't', "$where: the rebuilt index is valid");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
		'0', "$where: no invalid index is left behind");
	is( $node->safe_psql('postgres', qq{
		SELECT string_agg(status || ':' || lock_retries, ',' ORDER BY id)
		  FROM safe_migrate.history WHERE version IN ('cic-race-$n', '$version')}),
		'applied:1,applied:0', "$where: each recorded once, the build with its retry");
}

# 4: a caller that cannot withdraw its snapshot (migrate_apply in a
#    subquery: its outer query still reads with it) in the same race would
#    make the build wait for it again after every retry: it loses the
#    deadlock itself, at once, with a hint, and the build completes.
{
	my $caller = start_psql(q{SELECT (SELECT status FROM migrate_apply((SELECT $m$CREATE TABLE raced_c (id int);$m$
		           FROM pg_sleep(3)), 'plain-10'))}, $retrying, 'plain-10');
	my ($h, $err) = ($caller->{h}, $caller->{err});
	$node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_stat_activity
		 WHERE wait_event = 'PgSleep' AND backend_xmin IS NOT NULL})
	  or die 'the caller does not sleep in its subquery';
	my $build = start_apply("CREATE INDEX CONCURRENTLY items_race_c ON items (note, id);",
		'cic-race-c', $retrying);
	$h->finish;
	isnt($h->result(0), 0, 'a caller that keeps its snapshot loses the deadlock');
	like($$err, qr/deadlock detected/, 'it says deadlock');
	like($$err, qr/HINT:  This call of migrate_apply keeps its snapshot/, 'and how to call instead');
	$build->{h}->finish;
	chomp(my $status = ${ $build->{out} });
	is($status, 'applied', 'the build it raced completes') or diag(${ $build->{err} });
	is( $node->safe_psql('postgres', q{
		SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_race_c'::regclass}),
		't', 'its index is valid');
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM safe_migrate.history WHERE version = 'plain-10'}),
		'0', 'the caller that lost had not started its migration');
}

# 2: control — a session that really holds an old snapshot does block the
#    build.  (The snapshot is taken reading another table: a session holding
#    a lock on items would also hold off the DROP INDEX CONCURRENTLY of the
#    clean-up, see the README.)  The build's waits stall none of the
#    application's queries, so with the default lock strategy it waits up
#    to safe_migrate.lock_wait_deadline, not lock_timeout: a holder that
#    ends within the deadline costs no rebuild; one that does not fails the
#    migration with a hint and leaves no invalid index behind.  With
#    lock_strategy = retry, lock_timeout and lock_retries hold as before.
$node->safe_psql('postgres', 'CREATE TABLE elsewhere (id int)');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET safe_migrate.lock_timeout = '300ms';
	ALTER DATABASE postgres SET safe_migrate.lock_retries = 0;});
my $holder = $node->background_psql('postgres');

# 2a: the holder commits 2 s into the build's wait: the build goes on
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM elsewhere;');
my $patient = start_apply('CREATE INDEX CONCURRENTLY items_waits ON items (note);', 'cic-wait', []);
$node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'virtualxid' AND NOT granted})
  or die 'the build does not wait for the old snapshot';
sleep 2;
$holder->query_safe('COMMIT;');
$patient->{h}->finish;
chomp(my $patient_status = ${ $patient->{out} });
is($patient_status, 'applied', 'a build that waited longer than lock_timeout for an old snapshot completes')
  or diag(${ $patient->{err} });
is( $node->safe_psql('postgres', q{
		SELECT lock_retries FROM safe_migrate.history WHERE version = 'cic-wait' AND status = 'applied'}),
	'0', 'without a retry (built once)');
is( $node->safe_psql('postgres', q{
		SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_waits'::regclass}),
	't', 'its index is valid');

# 2b: the holder stays past the deadline
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM elsewhere;');
my ($out, $err) = ('', '');
my $ret = $node->psql('postgres',
	"SET safe_migrate.lock_wait_deadline = '1500ms'; "
	  . "SELECT status FROM migrate_apply('CREATE INDEX CONCURRENTLY items_both ON items (id, note);', 'cic-4');",
	stdout => \$out, stderr => \$err);
isnt($ret, 0, 'a build that waits past lock_wait_deadline for an old snapshot fails');
like($err, qr/lock timeout/, 'it says lock timeout');
like($err, qr/HINT:  The concurrent index build waited 1500 ms \(safe_migrate.lock_wait_deadline\)/,
	'and what it waited for, and for how long');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'no invalid index is left behind');

# 2c: lock_strategy = retry: lock_timeout and no retries
($out, $err) = ('', '');
$ret = $node->psql('postgres',
	"SET safe_migrate.lock_strategy = retry; "
	  . "SELECT status FROM migrate_apply('CREATE INDEX CONCURRENTLY items_both ON items (id, note);', 'cic-4');",
	stdout => \$out, stderr => \$err);
isnt($ret, 0, 'retry strategy: a build that has to wait for an old snapshot times out');
like($err, qr/lock timeout/, 'and says so');
unlike($err, qr/lock_wait_deadline/, 'after lock_timeout, not the deadline');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'no invalid index is left behind');
$holder->query_safe('COMMIT;');
$holder->quit;

$node->stop;
done_testing();
