# Copyright: safe_migrate authors
#
# What newer servers offer, and what they change for the policy.  Every case
# runs on the versions it is about (scripts/test.sh PG_MAJOR=17|18); on each
# version the hints must name what that version can do.
#  - All: SET NOT NULL on a large table is refused; the hint is the safe
#    sequence of the server: a NOT NULL constraint added NOT VALID and
#    validated (18), or a CHECK (col IS NOT NULL) proven first (15, 17).
#  - 18: after ADD CONSTRAINT ... NOT NULL ... NOT VALID, attnotnull is true
#    although no row was checked: SET NOT NULL (which would validate it with
#    a scan under ACCESS EXCLUSIVE) is still refused, and so is ADD PRIMARY
#    KEY USING INDEX on the column; after VALIDATE CONSTRAINT both pass.
#    ADD CONSTRAINT ... NOT NULL without NOT VALID scans: refused.
#    migrate_plan follows a script that adds and validates one.
#  - 18: a virtual generated column adds without a rewrite (migrate_plan
#    says "metadata only", the policy lets it run); a stored one rewrites.
#  - 17+: ALTER COLUMN ... SET EXPRESSION on a stored generated column is
#    predicted as a rewrite.
#  - 17+: REINDEX fires event triggers: it is judged once (one warning),
#    and the DDL log records it.
#  - 17+: with event_triggers = off the policy still judges DDL.
#  - 17+: transaction_timeout set by the caller ends the caller's session in
#    the middle of a migration run by a runner: the runner stops, the
#    migration is not recorded as applied, the statements after the timeout
#    did not run, and the next migration proceeds.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('server_versions');
my $version = $node->safe_psql('postgres', 'SHOW server_version_num');
note "server_version_num $version";

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	ALTER DATABASE postgres SET safe_migrate.large_table_rows = 1000;
	CREATE TABLE big (id int, x int, y int, z int);
	INSERT INTO big SELECT g, g, g, g FROM generate_series(1, 5000) g;
	CREATE UNIQUE INDEX big_id ON big (id);
	ANALYZE big;
});

# ($rc, $stderr) of $sql in a session of its own
sub ddl
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $sql);
	return ($rc, $err);
}

sub refused
{
	my ($sql, $rule, $name) = @_;
	my ($rc, $err) = ddl($sql);
	isnt($rc, 0, "$name: refused");
	like($err, qr/\Q$rule\E/, "$name: by rule $rule");
	return $err;
}

sub passes
{
	my ($sql, $name) = @_;
	my ($rc, $err) = ddl($sql);
	is($rc, 0, "$name: runs");
	unlike($err, qr/ERROR|WARNING/, "$name: no error or warning") or diag $err;
	return;
}

sub plan_effect
{
	my ($script, $n) = @_;
	$n //= 1;
	return $node->safe_psql('postgres',
		"SELECT effect FROM migrate_plan(\$s\$$script\$s\$) WHERE statement = $n");
}

sub plan_verdicts
{
	my ($script) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(statement || ':' || verdict, ' ' ORDER BY statement) FROM migrate_plan(\$s\$$script\$s\$)"
	);
}

# --- the safe NOT NULL, per version
my $hint = refused('ALTER TABLE big ALTER COLUMN x SET NOT NULL',
	'setting-not-null-field', 'SET NOT NULL on a large table');
if ($version >= 180000)
{
	like(
		$hint,
		qr/ADD CONSTRAINT big_x_not_null NOT NULL x NOT VALID; ALTER TABLE \S*big VALIDATE CONSTRAINT big_x_not_null;/,
		'18: the hint adds a NOT NULL constraint NOT VALID, then validates it');
	unlike($hint, qr/CHECK \(x IS NOT NULL\)/, '18: no CHECK detour');
}
else
{
	like($hint, qr/CHECK \(x IS NOT NULL\) NOT VALID/,
		'before 18: the hint proves NOT NULL with a CHECK first');
}

if ($version >= 180000)
{
	# follow the hint's first step
	passes('ALTER TABLE big ADD CONSTRAINT big_x_not_null NOT NULL x NOT VALID',
		'18: ADD CONSTRAINT ... NOT NULL ... NOT VALID');
	is( $node->safe_psql(
			'postgres', "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'x'"
		),
		't',
		'18: attnotnull is already true before validation');
	refused('ALTER TABLE big ALTER COLUMN x SET NOT NULL',
		'setting-not-null-field', '18: SET NOT NULL on the not yet validated column');
	is(plan_effect('ALTER TABLE big ALTER COLUMN x SET NOT NULL'),
		'full scan', '18: migrate_plan: SET NOT NULL still scans');
	passes('ALTER TABLE big VALIDATE CONSTRAINT big_x_not_null',
		'18: VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE)');
	passes('ALTER TABLE big ALTER COLUMN x SET NOT NULL',
		'18: SET NOT NULL once validated (nothing to check)');
	is(plan_effect('ALTER TABLE big ALTER COLUMN x SET NOT NULL'),
		'metadata only', '18: migrate_plan: nothing to check once validated');

	# PRIMARY KEY USING INDEX on a column whose NOT NULL is not validated
	$node->safe_psql('postgres',
		'SET safe_migrate.policy = off; CREATE UNIQUE INDEX big_y ON big (y); RESET safe_migrate.policy; ALTER TABLE big ADD CONSTRAINT big_y_not_null NOT NULL y NOT VALID'
	);
	refused('ALTER TABLE big ADD CONSTRAINT big_pkey PRIMARY KEY USING INDEX big_y',
		'setting-not-null-field', '18: PRIMARY KEY USING INDEX on a NOT VALID NOT NULL column');

	# without NOT VALID: every row is scanned under ACCESS EXCLUSIVE
	refused('ALTER TABLE big ADD CONSTRAINT big_z_not_null NOT NULL z',
		'setting-not-null-field', '18: ADD CONSTRAINT ... NOT NULL without NOT VALID');
	is(plan_effect('ALTER TABLE big ADD CONSTRAINT big_z_not_null NOT NULL z'),
		'full scan', '18: migrate_plan: ADD CONSTRAINT ... NOT NULL scans');

	# migrate_plan follows the script: added NOT VALID and validated, then
	# SET NOT NULL and PRIMARY KEY USING INDEX are proven
	my $script = q{ALTER TABLE big ADD CONSTRAINT big_z_not_null NOT NULL z NOT VALID;
		ALTER TABLE big VALIDATE CONSTRAINT big_z_not_null;
		ALTER TABLE big ALTER COLUMN z SET NOT NULL;};
	is(plan_verdicts($script), '1:ok 2:ok 3:ok',
		'18: migrate_plan: the sequence of the hint is safe');
	is(plan_effect($script, 3), 'metadata only',
		'18: migrate_plan: SET NOT NULL after the validated constraint checks nothing');

	# --- virtual generated columns add without a rewrite
	is(plan_effect('ALTER TABLE big ADD COLUMN v int GENERATED ALWAYS AS (id * 2) VIRTUAL'),
		'metadata only', '18: migrate_plan: a virtual generated column is metadata only');
	is(plan_effect('ALTER TABLE big ADD COLUMN v int GENERATED ALWAYS AS (id * 2)'),
		'metadata only', '18: migrate_plan: generated columns are virtual by default');
	is(plan_effect('ALTER TABLE big ADD COLUMN s int GENERATED ALWAYS AS (id * 2) STORED'),
		'rewrite', '18: migrate_plan: a stored generated column rewrites');
	passes('ALTER TABLE big ADD COLUMN v int GENERATED ALWAYS AS (id * 2) VIRTUAL',
		'18: ADD COLUMN ... VIRTUAL');
	my $stored = refused('ALTER TABLE big ADD COLUMN s int GENERATED ALWAYS AS (id * 2) STORED',
		'table-rewrite', '18: ADD COLUMN ... STORED');
	like($stored, qr/VIRTUAL generated column/, '18: the rewrite hint offers a virtual column');
}

if ($version >= 170000)
{
	# --- SET EXPRESSION (17) recomputes a stored generated column
	$node->safe_psql('postgres',
		'CREATE TABLE gen (a int, s int GENERATED ALWAYS AS (a + 1) STORED)');
	is(plan_effect('ALTER TABLE gen ALTER COLUMN s SET EXPRESSION AS (a + 2)'),
		'rewrite', '17+: migrate_plan: SET EXPRESSION of a stored column rewrites');

	# --- event_triggers = off: the policy still judges
	my $off = refused(
		"SET event_triggers = off; ALTER TABLE big ALTER COLUMN y SET NOT NULL",
		'setting-not-null-field', '17+: event_triggers = off');
}

# --- transaction_timeout (17+): the caller's limit ends its session in the
# middle of a migration run by a runner; nothing is left behind
if ($version >= 170000)
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET transaction_timeout = '1s'; SELECT status FROM migrate_apply(\$m\$CREATE TABLE tt_a (id int); VACUUM big; SELECT pg_sleep(5); CREATE TABLE tt_b (id int);\$m\$, 'tt-1')"
	);
	isnt($rc, 0, '17+: transaction_timeout ends the call');
	like($err, qr/transaction timeout/, '17+: ... as a transaction timeout') or diag $err;
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner'"),
		'17+: its runner is gone');
	isnt($node->safe_psql('postgres',
			"SELECT coalesce(string_agg(status, ','), 'none') FROM safe_migrate.history WHERE version = 'tt-1'"),
		'applied', '17+: the migration is not recorded as applied');
	is($node->safe_psql('postgres', "SELECT to_regclass('tt_b') IS NULL"),
		't', '17+: the statements after the timeout did not run');
	is( $node->safe_psql('postgres',
			"SELECT status FROM migrate_apply('CREATE TABLE tt_c (id int);', 'tt-2')"),
		'applied',
		'17+: the next migration proceeds (no lock left behind)');
}

# --- REINDEX: judged once; on 17+ it fires event triggers and is logged
{
	my ($rc, $err) = ddl("SET safe_migrate.policy = warn; REINDEX TABLE big");
	is($rc, 0, 'REINDEX in warn mode runs');
	my @warnings = ($err =~ /WARNING:  rule/g);
	is(scalar @warnings, 1, 'REINDEX is judged once') or diag $err;
	my $logged = $node->safe_psql('postgres',
		"SELECT count(*) FROM safe_migrate.ddl_log WHERE command_tag = 'REINDEX'");
	# the DDL log rides on the extension's hooks, not on event triggers:
	# REINDEX is logged on every version
	is($logged, '1', 'the DDL log records REINDEX once');
	is($node->safe_psql('postgres',
			"SELECT object_identity FROM safe_migrate.ddl_log WHERE command_tag = 'REINDEX'"),
		'public.big', 'naming the table it names');
}

done_testing();
