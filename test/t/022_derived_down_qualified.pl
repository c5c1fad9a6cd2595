# Copyright: safe_migrate authors
#
# Derived down scripts name every object schema-qualified, as the up script
# resolved it when it ran.
#  - The attack: public.accounts holds 1000 rows; a migration
#    `CREATE TABLE accounts (...)` is applied with search_path = m, public, so
#    it creates m.accounts.  A rollback from a session with
#    search_path = public, m must drop m.accounts, and leave public.accounts
#    and its 1000 rows alone.  Both ways a migration runs: in the caller's
#    backend (all statements transactional) and in a background runner (a
#    CREATE INDEX CONCURRENTLY sends it there).
#  - The same for ALTER TABLE ... ADD COLUMN on a table found through the
#    search path, and for a rename: the reverse renames the table that was
#    renamed, not one of the same name earlier on the rollback's path.
#  - The stored down script says so: `DROP TABLE m.accounts`.
#  - "$user" in the search_path resolves for the role that applied the
#    migration, not for the one that rolls it back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('derived_down_qualified');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE SCHEMA m;
	CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric NOT NULL);
	INSERT INTO public.accounts SELECT g, g * 10 FROM generate_series(1, 1000) g;
});

sub apply_with_path
{
	my ($path, $script, $version) = @_;
	return $node->safe_psql('postgres',
		"SET search_path = $path;\n"
		  . "SELECT status FROM migrate_apply(\$sql\$$script\$sql\$, '$version');");
}

sub rollback_with_path
{
	my ($path) = @_;
	return $node->safe_psql('postgres',
		"SET search_path = $path;\n"
		  . "SELECT string_agg(version || ' ' || status, ', ') FROM migrate_rollback();");
}

sub down_script
{
	my ($version) = @_;
	return $node->safe_psql('postgres',
		"SELECT down_script FROM safe_migrate.migrations "
		  . "WHERE version = '$version' ORDER BY id DESC LIMIT 1");
}

sub public_accounts
{
	return $node->safe_psql('postgres',
		"SELECT count(*) || ' rows, sum ' || sum(balance) FROM public.accounts");
}

my $intact = '1000 rows, sum 5005000';
is(public_accounts(), $intact, 'public.accounts holds its 1000 rows');

# 1. In the caller's backend.
is( apply_with_path(
		'm, public', 'CREATE TABLE accounts (id int, balance numeric);',
		'0001-in-caller'),
	'applied',
	'CREATE TABLE accounts applied with search_path = m, public');
is($node->safe_psql('postgres', "SELECT to_regclass('m.accounts') IS NOT NULL"),
	't', 'it created m.accounts');
like(down_script('0001-in-caller'), qr/^DROP TABLE m\.accounts;$/m,
	'the derived down script names m.accounts');
unlike(down_script('0001-in-caller'), qr/DROP TABLE accounts/,
	'and never the bare name');
is(rollback_with_path('public, m'), '0001-in-caller rolled_back',
	'rolled back from a session with search_path = public, m');
is($node->safe_psql('postgres', "SELECT to_regclass('m.accounts') IS NULL"),
	't', 'm.accounts is gone');
is(public_accounts(), $intact, 'public.accounts keeps its 1000 rows');

# 2. In a background runner (CREATE INDEX CONCURRENTLY cannot run in the
# caller's transaction).
is( apply_with_path(
		'm, public', q{
CREATE TABLE accounts (id int, balance numeric);
CREATE INDEX CONCURRENTLY accounts_balance ON accounts (balance);
}, '0002-runner'),
	'applied',
	'CREATE TABLE + CREATE INDEX CONCURRENTLY applied by the runner');
my $down = down_script('0002-runner');
like($down, qr/^DROP INDEX CONCURRENTLY m\.accounts_balance;\nDROP TABLE m\.accounts;$/m,
	'the runner derived a down script with qualified names, newest first');
is(rollback_with_path('public, m'), '0002-runner rolled_back',
	'rolled back from search_path = public, m');
is( $node->safe_psql(
		'postgres',
		"SELECT to_regclass('m.accounts') IS NULL AND to_regclass('m.accounts_balance') IS NULL"),
	't',
	'm.accounts and its index are gone');
is(public_accounts(), $intact, 'public.accounts keeps its 1000 rows');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.accounts'::regclass "
		  . "AND attnum > 0 AND NOT attisdropped"),
	'2',
	'public.accounts keeps its columns');

# 3. ADD COLUMN on a table found through the search path: m.accounts exists
# (created by an earlier migration) and shadows public.accounts.
$node->safe_psql('postgres',
	'CREATE TABLE m.accounts (id int); INSERT INTO m.accounts VALUES (1);');
is( apply_with_path(
		'm, public', 'ALTER TABLE accounts ADD COLUMN balance numeric;',
		'0003-add-column'),
	'applied',
	'ADD COLUMN applied with search_path = m, public');
like(down_script('0003-add-column'),
	qr/^ALTER TABLE m\.accounts DROP COLUMN balance;$/m,
	'the reverse names m.accounts');
is(rollback_with_path('public, m'), '0003-add-column rolled_back',
	'rolled back from search_path = public, m');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
		  . "WHERE attrelid = 'public.accounts'::regclass AND attnum > 0 AND NOT attisdropped"),
	'id,balance',
	'public.accounts still has its balance column');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
		  . "WHERE attrelid = 'm.accounts'::regclass AND attnum > 0 AND NOT attisdropped"),
	'id',
	'm.accounts lost the column the migration added');
is(public_accounts(), $intact, 'public.accounts keeps its 1000 rows');

# 4. A rename: the reverse renames the table the migration renamed, wherever
# the rollback's search_path would find that name first.
$node->safe_psql('postgres', 'CREATE TABLE public.ledger (id int); CREATE TABLE m.ledger_old (id int);');
is( apply_with_path(
		'm, public', q{
-- safe_migrate:allow renaming-table the test renames a table
ALTER TABLE ledger RENAME TO ledger_archive;
}, '0004-rename'),
	'applied',
	'rename of public.ledger applied with search_path = m, public');
like(down_script('0004-rename'),
	qr/^ALTER TABLE public\.ledger_archive RENAME TO ledger;$/m,
	'the reverse names public.ledger_archive');
$node->safe_psql('postgres', 'CREATE TABLE m.ledger_archive (id int);');
is(rollback_with_path('m, public'), '0004-rename rolled_back',
	'rolled back from a session where m.ledger_archive comes first');
is( $node->safe_psql(
		'postgres',
		"SELECT to_regclass('public.ledger') IS NOT NULL AND to_regclass('m.ledger_archive') IS NOT NULL "
		  . "AND to_regclass('m.ledger') IS NULL"),
	't',
	'public.ledger is back and m.ledger_archive is untouched');

# 5. "$user" in the search_path: resolved for the role that applied the
# migration, not for the one that rolls it back.
$node->safe_psql(
	'postgres', q{
	CREATE ROLE alice LOGIN;
	GRANT safe_migrate_admin TO alice;
	CREATE SCHEMA alice AUTHORIZATION alice;
	GRANT CREATE ON SCHEMA public TO alice;
});
is( $node->safe_psql(
		'postgres',
		"SET search_path = \"\$user\", public;\n"
		  . "SELECT status FROM migrate_apply('CREATE TABLE accounts (id int);', '0005-user');",
		connstr => $node->connstr('postgres') . ' user=alice'),
	'applied',
	'alice applies CREATE TABLE accounts with search_path = "$user", public');
like(down_script('0005-user'), qr/^DROP TABLE alice\.accounts;$/m,
	'the reverse names alice.accounts');
is(rollback_with_path('"$user", public'), '0005-user rolled_back',
	'the superuser rolls it back with search_path = "$user", public');
is( $node->safe_psql('postgres', "SELECT to_regclass('alice.accounts') IS NULL"),
	't', 'alice.accounts is gone');
is(public_accounts(), $intact, 'public.accounts keeps its 1000 rows');

$node->stop;
done_testing();
