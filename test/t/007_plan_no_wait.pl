# migrate_plan changes nothing and never waits for a lock: it answers while
# another session holds ACCESS EXCLUSIVE on the very table it plans for,
# where the statements it describes would queue.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('plan');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'safe_migrate'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION safe_migrate;
	SET safe_migrate.policy = off;
	CREATE TABLE busy (id int PRIMARY KEY, name text);
	INSERT INTO busy SELECT g, 'n' || g FROM generate_series(1, 200000) g;
	ANALYZE busy;
});

my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE;');

# lock_timeout would turn any lock wait into an error: the plan must not hit it
my ($out, $err) = ('', '');
my $ret = $node->psql('postgres', q{
	SET lock_timeout = '1s';
	SELECT statement || ':' || lock_mode || ':' || effect || ':' || verdict
	  FROM migrate_plan($$
		CREATE INDEX busy_name ON busy (name);
		ALTER TABLE busy ADD COLUMN extra int;
		ALTER TABLE busy ALTER COLUMN name SET NOT NULL;
	$$);},
	stdout => \$out, stderr => \$err);
is($ret, 0, 'migrate_plan answers while the table is locked') or diag($err);
is( $out,
	"1:SHARE:index build:blocked\n"
	  . "2:ACCESS EXCLUSIVE:metadata only:ok\n"
	  . "3:ACCESS EXCLUSIVE:full scan:blocked",
	'and describes each statement');

# an index on an expression: PostgreSQL's reading of the expression needs a
# lock on the table, which the plan takes only if it is free (a wait would
# be logged: log_lock_waits after deadlock_timeout), and keeps none after
my $log_at = -s $node->logfile;
$ret = $node->psql('postgres', q{
	SET lock_timeout = '1s'; SET log_lock_waits = on; SET deadlock_timeout = '100ms';
	BEGIN;
	SELECT statement || ':' || lock_mode || ':' || verdict
	  FROM migrate_plan($$CREATE INDEX busy_lower ON busy ((lower(name)));$$);
	SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'busy'::regclass;
	COMMIT;},
	stdout => \$out, stderr => \$err);
is($ret, 0, 'an expression index planned while the table is locked') or diag($err);
is($out, "1:SHARE:blocked\n0", 'described, with no lock left on the table');
unlike(substr(slurp_file($node->logfile), $log_at), qr/still waiting for AccessShareLock/,
	'without waiting for one');

# the control: the statement itself would have waited
$ret = $node->psql('postgres',
	"SET lock_timeout = '200ms'; SET safe_migrate.policy = off; ALTER TABLE busy ADD COLUMN extra int;",
	stderr => \$err);
isnt($ret, 0, 'the statement itself waits for the lock');
like($err, qr/lock timeout/, 'and times out');

$holder->query_safe('COMMIT;');
$holder->quit;
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_attribute WHERE attrelid = 'busy'::regclass AND attname = 'extra'"),
	'0', 'the plan changed nothing');
$node->stop;
done_testing();
