
# Copyright: safe_migrate authors
#
# pg_dump / pg_restore carry the migration history (registered with
# pg_extension_config_dump): the restored database has the same history,
# scripts and down scripts included, treats applied versions as applied, and
# continues the id sequence.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('dump_restore');

$node->safe_psql('postgres', 'CREATE DATABASE src;');
$node->safe_psql('src', 'CREATE EXTENSION safe_migrate;');

my %script = (
	'v1' => "CREATE TABLE accounts (id bigint PRIMARY KEY, name text);\n"
	  . "INSERT INTO accounts VALUES (1, 'it''s');\n",
	'v2' => "CREATE INDEX accounts_name ON accounts (name);\n",
	# the directive lets the down script drop what the up script created
	# (ban-drop-table); it must survive the dump too
	'v3' => "-- safe_migrate:allow ban-drop-table rollback drops the audit table it created\n"
	  . "-- migrate:up\n"
	  . "CREATE TABLE audit (id bigserial PRIMARY KEY, note text);\n"
	  . "-- migrate:down\n"
	  . "DROP TABLE audit;\n",
	'v4' => "CREATE TABLE doomed (id int);\nSELECT 1 / 0;\n",
	'v5' => "CREATE TABLE after_restore (id int);\n",);

# An SQL literal for a script.
sub lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sub apply_sql
{
	my ($v) = @_;
	return "SELECT status FROM migrate_apply(" . lit($script{$v}) . ", '$v', 'migration $v')";
}

for my $v (qw(v1 v2 v3))
{
	is($node->safe_psql('src', apply_sql($v)), 'applied', "$v applied in the source database");
}

# v4 fails: division by zero; its attempt stays in the history as 'failed'.
my ($stdout, $stderr);
my $rc = $node->psql('src', apply_sql('v4'), stdout => \$stdout, stderr => \$stderr);
isnt($rc, 0, 'v4 fails');
like($stderr, qr/division by zero/, 'v4 fails with its own error');

is( $node->safe_psql(
		'src',
		"SELECT string_agg(version || ':' || status, ',' ORDER BY id) FROM safe_migrate.migrations"
	),
	'v1:applied,v2:applied,v3:applied,v4:failed',
	'source history: three applied, one failed');
is( $node->safe_psql(
		'src', "SELECT down_script IS NOT NULL FROM safe_migrate.migrations WHERE version = 'v3'"),
	't',
	'source history: the dbmate migration has a down script');
is($node->safe_psql('src', "SELECT to_regclass('doomed') IS NULL"),
	't', 'the failed migration left nothing behind');

my $key_query =
  'SELECT version, status, checksum, script, down_script FROM safe_migrate.migrations ORDER BY id';
my $full_query = 'SELECT * FROM safe_migrate.migrations ORDER BY id';
my $history_query = 'SELECT * FROM safe_migrate.history ORDER BY id';

my $src_key = $node->safe_psql('src', $key_query);
my $src_full = $node->safe_psql('src', $full_query);
my $src_history = $node->safe_psql('src', $history_query);
my $src_max_id = $node->safe_psql('src', 'SELECT max(id) FROM safe_migrate.migrations');

# Dump and restore into a new database.
my $dump = PostgreSQL::Test::Utils::tempdir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc of the source database');
$node->safe_psql('postgres', 'CREATE DATABASE dst;');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into a new database');

is($node->safe_psql('dst', "SELECT extversion FROM pg_extension WHERE extname = 'safe_migrate'"),
	'0.1.0', 'the extension exists in the restored database');
is($node->safe_psql('dst', $key_query),
	$src_key, 'restored migrations (version, status, checksum, script, down_script) equal the source');
is($node->safe_psql('dst', $full_query),
	$src_full, 'restored migrations rows equal the source in every column');
is($node->safe_psql('dst', $history_query),
	$src_history, 'restored history view equals the source');
is($node->safe_psql('dst', 'SELECT count(*) FROM accounts'),
	'1', 'the objects the migrations created were restored too');

# Applied versions are applied in the restored database.
for my $v (qw(v1 v3))
{
	is($node->safe_psql('dst', apply_sql($v)),
		'already_applied', "$v is already applied in the restored database (no-op)");
}
my ($out_mm, $err_mm);
$rc = $node->psql(
	'dst',
	"\\set VERBOSITY verbose\nSELECT status FROM migrate_apply('CREATE TABLE other (id int);', 'v1')",
	stdout => \$out_mm,
	stderr => \$err_mm);
isnt($rc, 0, 'a different script under restored applied version v1 is refused');
like($err_mm, qr/SM001/, 'the refusal is the checksum mismatch (SM001)');
is($node->safe_psql('dst', $key_query),
	$src_key, 'the no-op applications did not change the restored history');

# The restored down script works: roll back v3, the last applied migration.
is($node->safe_psql('dst', 'SELECT version || \':\' || status FROM migrate_rollback()'),
	'v3:rolled_back', 'the restored dbmate migration v3 rolls back');
is($node->safe_psql('dst', "SELECT to_regclass('audit') IS NULL"),
	't', 'its down script dropped table audit');

# A new version gets a new id from the restored sequence.
is($node->safe_psql('dst', apply_sql('v5')), 'applied', 'new version v5 applies in the restored database');
my $new_id =
  $node->safe_psql('dst', "SELECT id FROM safe_migrate.migrations WHERE version = 'v5'");
ok($new_id > $src_max_id,
	"v5 got id $new_id, greater than the largest restored id $src_max_id (sequence restored)");
is( $node->safe_psql(
		'dst', 'SELECT count(*) = count(DISTINCT id) FROM safe_migrate.migrations'),
	't',
	'ids stay unique');

# The source database is unaffected.
is($node->safe_psql('src', $full_query), $src_full, 'the source history is unchanged');

$node->stop;
done_testing();
