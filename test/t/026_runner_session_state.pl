# Copyright: safe_migrate authors
#
# A script changes the session it runs in; the runner's own bookkeeping
# (history rows, messages to the caller) must not depend on it.  Each script
# below runs on the background path (a concurrent index build sends it
# there), commits a counter update, and ends by changing a setting.  The
# history must say 'applied', and applying the same version again must be a
# no-op: the counter moves exactly once.  A SET client_encoding must not
# re-encode the runner's messages to the caller.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('runner_session_state');
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);
	INSERT INTO counter VALUES (1, 0);
	CREATE ROLE someone;
	CREATE SCHEMA elsewhere;
});

my @endings = (
	[ 'read_only',    'SET default_transaction_read_only = on;' ],
	[ 'role',         'SET ROLE someone;' ],
	[ 'search_path',  'SET search_path = elsewhere;' ],
	[ 'isolation',    "SET default_transaction_isolation = 'serializable';" ],
	[ 'lock_timeout', "SET lock_timeout = '1ms';" ],
	[ 'encoding',     "SET client_encoding = 'LATIN1';\nDO \$\$BEGIN RAISE NOTICE 'caf\x{e9} \x{263a}'; END\$\$;" ],
	[ 'set_config',
		"SELECT set_config('client_encoding', 'LATIN1', false);\nDO \$\$BEGIN RAISE NOTICE 'na\x{ef}ve \x{263a}'; END\$\$;" ],);

my $i = 0;
for my $e (@endings)
{
	my ($name, $ending) = @$e;
	$i++;
	my $script =
	    "CREATE INDEX CONCURRENTLY counter_$name ON counter (n);\n"
	  . "UPDATE counter SET n = n + 1 WHERE id = 1;\n"
	  . "$ending\n";
	for my $attempt (1, 2)
	{
		my ($stdout, $stderr) = ('', '');
		my $rc = $node->psql('postgres',
			"SELECT status FROM migrate_apply(\$m\$$script\$m\$, 'state-$name')",
			stdout => \$stdout, stderr => \$stderr);
		is($rc, 0, "$name, attempt $attempt: migrate_apply succeeds")
		  or diag($stderr);
		is($stdout, $attempt == 1 ? 'applied' : 'already_applied',
			"$name, attempt $attempt: status");
		unlike($stderr, qr/invalid byte sequence|ERROR/, "$name, attempt $attempt: no error");
		if ($name eq 'encoding' && $attempt == 1)
		{
			# (stderr holds the UTF-8 bytes)
			like($stderr, qr/NOTICE:  caf\xc3\xa9 \xe2\x98\xba/,
				'the NOTICE reaches the caller intact');
		}
	}
	is( $node->safe_psql('postgres',
			"SELECT status FROM safe_migrate.history WHERE version = 'state-$name'"),
		'applied', "$name: recorded as applied");
	is($node->safe_psql('postgres', 'SELECT n FROM counter WHERE id = 1'),
		$i, "$name: the data change ran once");
}

# Session state the caller's session must not keep (a pooled session
# would carry it into the next migration): a temporary table qualified
# with pg_temp, and anything a DO block does to the session.  Such scripts
# run in a runner, whose session ends with the migration.
for my $leak ([ 'pg_temp', 'CREATE TABLE pg_temp.leak1 (i int);', 'leak1' ],
	[ 'do_temp', "DO \$\$BEGIN EXECUTE 'CREATE TEMP TABLE leak2 (i int)'; END\$\$;", 'leak2' ])
{
	my ($name, $script, $table) = @$leak;
	my $out = $node->safe_psql('postgres',
		"SELECT status FROM migrate_apply(\$m\$$script\$m\$, 'leak-$name');\n"
		  . "SELECT count(*) FROM pg_class WHERE relname = '$table' AND relpersistence = 't';");
	is($out, "applied\n0", "$name: applied, and the caller's session has no temporary $table");
}
my $prep = $node->safe_psql('postgres',
	"SELECT status FROM migrate_apply(\$m\$DO \$\$BEGIN EXECUTE 'PREPARE leakp AS SELECT 1'; END\$\$;\$m\$, 'leak-prepare');\n"
	  . "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leakp';");
is($prep, "applied\n0", 'a PREPARE in a DO block stays out of the caller\'s session');

done_testing();
