# Copyright: safe_migrate authors
#
# The DDL log is written by the extension's hooks when a transaction
# commits, in that transaction:
#  - two-phase commit: written at PREPARE TRANSACTION, visible once COMMIT
#    PREPARED commits it, gone with ROLLBACK PREPARED;
#  - a crash right after the commit keeps the log rows (same transaction);
#    a crash before it keeps neither the DDL nor its rows;
#  - a database without the extension (the library is preloaded in every
#    backend) runs DDL as usual and has no log;
#  - DROP EXTENSION safe_migrate in a transaction that also ran DDL commits
#    without an error (the log went with the extension);
#  - a plain role cannot read the log, nor hide its DDL from it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = PostgreSQL::Test::Cluster->new('ddl_log');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'safe_migrate'\nmax_worker_processes = 32\nmax_prepared_transactions = 4\n");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE app LOGIN;
	CREATE SCHEMA app AUTHORIZATION app;
	ALTER ROLE app SET search_path = app, public;
	CREATE DATABASE bare;
});

sub logged
{
	my ($identity) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM safe_migrate.ddl_log WHERE object_identity = '$identity'");
}

# two-phase commit
$node->safe_psql('postgres',
	"BEGIN; CREATE TABLE app.prepared_kept (a int); PREPARE TRANSACTION 'p1';");
is(logged('app.prepared_kept'), '0', 'a prepared transaction\'s DDL is not in the log yet');
$node->safe_psql('postgres', "COMMIT PREPARED 'p1'");
is(logged('app.prepared_kept'), '1', 'COMMIT PREPARED: logged once');
$node->safe_psql('postgres',
	"BEGIN; CREATE TABLE app.prepared_undone (a int); PREPARE TRANSACTION 'p2';");
$node->safe_psql('postgres', "ROLLBACK PREPARED 'p2'");
is(logged('app.prepared_undone'), '0', 'ROLLBACK PREPARED: not logged');

# a crash right after a commit keeps the rows; one before it keeps nothing
$node->safe_psql('postgres', 'CREATE TABLE app.before_crash (a int)');
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
$bg->query_safe('CREATE TABLE app.in_flight (a int)');
$node->stop('immediate');
eval { $bg->quit };
$node->start;
is(logged('app.before_crash'), '1', 'committed DDL is in the log after a crash');
is(logged('app.in_flight'),    '0', 'DDL of a transaction the crash cut is not');
is($node->safe_psql('postgres', "SELECT to_regclass('app.in_flight') IS NULL"),
	't', '(and the table is not there either)');

# a database without the extension
my ($rc, $out, $err) = $node->psql('bare',
	"CREATE TABLE t (id int PRIMARY KEY); ALTER TABLE t ADD COLUMN v text; DROP TABLE t; SELECT 1");
is($rc, 0, 'DDL in a database without the extension works');
is($node->safe_psql('bare',
		"SELECT count(*) FROM pg_namespace WHERE nspname = 'safe_migrate'"),
	'0', 'and leaves no log there');

# a plain role that may create schemas makes its own "safe_migrate" log in
# a database without the extension: the hooks (in every backend) must not
# write our rows into tables of its making, nor crash
$node->safe_psql('bare', 'GRANT CREATE ON DATABASE bare TO app');
($rc, $out, $err) = try_as_role($node, 'app', q{
	CREATE SCHEMA safe_migrate;
	CREATE TABLE safe_migrate.ddl_entries (x text, y text);
	CREATE TABLE safe_migrate.ddl_log_trimmed (trimmed_at timestamptz);
	INSERT INTO safe_migrate.ddl_log_trimmed VALUES ('-infinity');
	CREATE SCHEMA appx;
	CREATE TABLE appx.victim (id int PRIMARY KEY);
	ALTER TABLE appx.victim ADD COLUMN v text;
	DROP TABLE appx.victim;
	SELECT count(*) FROM safe_migrate.ddl_entries;
}, db => 'bare');
is($rc, 0, 'a fake log in a database without the extension: DDL runs') or diag($err);
is($out, '0', 'and nothing is written into the fake tables');
($rc, $out, $err) = try_as_role($node, 'app', q{
	DROP TABLE safe_migrate.ddl_entries;
	CREATE TABLE safe_migrate.ddl_entries (logged_at timestamptz, xid xid8, seq int, role_name text,
		command_tag text, object_type text, object_identity text, in_extension boolean,
		managed boolean, migration_version text, statement_bytes int, statement text);
	CREATE TABLE appx.victim2 (id int);
	SELECT count(*) FROM safe_migrate.ddl_entries;
}, db => 'bare');
is($out, '0', 'nor into tables of the right shape that a plain role owns') or diag($err);
ok($node->safe_psql('bare', 'SELECT 1') eq '1', 'the server is up');

# a plain role: its DDL is logged, the log is not readable, and SET of the
# log's settings is refused
as_role($node, 'app', 'CREATE TABLE app.by_app (a int)');
is($node->safe_psql('postgres',
		"SELECT role_name FROM safe_migrate.ddl_log WHERE object_identity = 'app.by_app'"),
	'app', 'a plain role\'s DDL is logged under its name');
($rc, $out, $err) = try_as_role($node, 'app', 'SELECT count(*) FROM safe_migrate.ddl_log');
like($err, qr/permission denied/, 'a plain role cannot read the log');
($rc, $out, $err) = try_as_role($node, 'app',
	'SET safe_migrate.ddl_log_max_statement_bytes = 0; CREATE TABLE app.hidden (a int)');
like($err, qr/permission denied to set parameter/, 'nor shorten what it keeps');
($rc, $out, $err) = try_as_role($node, 'app',
	'DELETE FROM safe_migrate.ddl_entries');
like($err, qr/permission denied/, 'nor delete from it');

# DROP EXTENSION with other DDL in the same transaction
($rc, $out, $err) = $node->psql('postgres',
	'BEGIN; CREATE TABLE app.last_words (a int); DROP EXTENSION safe_migrate CASCADE; COMMIT;');
is($rc, 0, 'DROP EXTENSION in a transaction that ran DDL commits') or diag($err);
is($node->safe_psql('postgres', "SELECT to_regclass('app.last_words') IS NOT NULL"),
	't', 'with that DDL');
ok(!$node->log_contains('TRAP|server process .* was terminated'), 'no crash in the server log');

$node->stop;
done_testing();
