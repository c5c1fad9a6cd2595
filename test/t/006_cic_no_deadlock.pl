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

sub start_apply
{
	my ($script, $version, $settings) = @_;
	my ($out, $err) = ('', '');
	my $sql = "SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$version');";
	# settings and the call as separate queries: a multi-statement query
	# string is an implicit transaction block, where migrate_apply refuses
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		  (map { ('-c', $_) } @$settings), '-c', $sql ],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err, version => $version };
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

# 2: control — a session that really holds an old snapshot does block the
#    build: with a short lock_timeout and no retries the migration fails,
#    and leaves no invalid index behind.  (The snapshot is taken reading
#    another table: a session holding a lock on items would also hold off
#    the DROP INDEX CONCURRENTLY of the clean-up, see the README.)
$node->safe_psql('postgres', 'CREATE TABLE elsewhere (id int)');
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM elsewhere;');
my ($out, $err) = ('', '');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET safe_migrate.lock_timeout = '300ms';
	ALTER DATABASE postgres SET safe_migrate.lock_retries = 0;});
my $ret = $node->psql('postgres',
	"SELECT status FROM migrate_apply('CREATE INDEX CONCURRENTLY items_both ON items (id, note);', 'cic-4');",
	stdout => \$out, stderr => \$err);
isnt($ret, 0, 'a build that has to wait for an old snapshot times out');
like($err, qr/lock timeout/, 'and says so');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'no invalid index is left behind');
$holder->query_safe('COMMIT;');
$holder->quit;

$node->stop;
done_testing();
