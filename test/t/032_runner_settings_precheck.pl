# Copyright: safe_migrate authors
#
# A migration is judged the same in the runner as in the caller's backend:
#  - the caller's session settings reach the runner (safe_migrate.policy,
#    thresholds, custom placeholders), for the roles that may set them;
#  - a migration that commits in several steps is refused before its first
#    step when the policy would refuse a later statement, instead of leaving
#    the earlier steps committed (an enum value a corrected rerun trips on).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('runner_settings');
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE TABLE precious (id int PRIMARY KEY, v text);
	INSERT INTO precious SELECT g, 'x' FROM generate_series(1, 2000) g;
	CREATE TABLE mid (id int PRIMARY KEY, v text);
	INSERT INTO mid SELECT g, 'x' FROM generate_series(1, 2000) g;
	CREATE TYPE mood AS ENUM ('calm', 'busy');
	CREATE TABLE big (id int PRIMARY KEY, v text, m mood);
	INSERT INTO big SELECT g, 'x', 'calm' FROM generate_series(1, 150000) g;
	ANALYZE;
	CREATE ROLE app LOGIN;
	CREATE ROLE other LOGIN;
	GRANT CREATE ON SCHEMA public TO app;
	CREATE TABLE app_t (id int PRIMARY KEY, v text);
	INSERT INTO app_t SELECT g, 'x' FROM generate_series(1, 2000) g;
	ALTER TABLE app_t OWNER TO app;
	GRANT SET ON PARAMETER safe_migrate.large_table_rows TO app;
	GRANT SET ON PARAMETER safe_migrate.large_table_bytes TO app;
});

sub psql_err
{
	my ($sql, %opt) = @_;
	my ($rc, $out, $err) = try_as_role($node, $opt{role} // 'postgres', $sql);
	return ($rc, $out, $err);
}

# ---- the caller's policy settings reach the runner ----

# a rollback always runs in the runner; its down drops a table with data
$node->safe_psql('postgres', q{
	SELECT migrate_apply($m$-- migrate:up
CREATE TABLE r1 (id int);
-- migrate:down
DROP TABLE precious;
$m$, '001');
	SELECT migrate_apply('CREATE TABLE r2 (id int);', '002');
});
$node->safe_psql('postgres', q{SELECT * FROM migrate_rollback()});    # 002
my ($rc, $out, $err) = psql_err(q{SELECT version, status FROM migrate_rollback()});
isnt($rc, 0, 'enforce: the down script of 001 is refused');
like($err, qr/ban-drop-table/, 'by ban-drop-table');
($rc, $out, $err) = psql_err(q{
	SET safe_migrate.policy = warn;
	SELECT version || ':' || status FROM migrate_rollback();});
is($rc, 0, 'an admin\'s SET safe_migrate.policy = warn holds in the runner');
like($out, qr/001:rolled_back/, 'the down script that drops a table ran');
like($err, qr/WARNING:.*ban-drop-table/, 'as a warning, as in the caller');
is($node->safe_psql('postgres', q{SELECT to_regclass('precious') IS NULL}), 't',
	'the table is gone');

# a threshold set in the caller judges the runner's first step
my $thresholds = q{SET safe_migrate.large_table_rows = 1000;
	SET safe_migrate.large_table_bytes = '8kB';};
my $first_step_rewrite = q{SELECT migrate_apply($m$ALTER TABLE mid ALTER COLUMN v TYPE varchar(5);
CREATE INDEX CONCURRENTLY mid_v ON mid (v);
$m$, '010');};
($rc, $out, $err) = psql_err($thresholds . $first_step_rewrite);
isnt($rc, 0, 'lowered thresholds: the runner refuses a rewrite of a 2000-row table');
like($err, qr/changing-column-type/, 'by the rule the caller\'s thresholds trigger');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_indexes WHERE indexname = 'mid_v'}),
	'0', 'nothing of the migration ran');

# a non-admin granted SET on the thresholds: carried
($rc, $out, $err) = psql_err($thresholds . q{SELECT migrate_apply($m$ALTER TABLE app_t ALTER COLUMN v TYPE varchar(5);
CREATE INDEX CONCURRENTLY app_t_v ON app_t (v);
$m$, '011');}, role => 'app');
isnt($rc, 0, 'a role granted SET on the thresholds: its values hold in the runner');
like($err, qr/changing-column-type/, 'refused by the runner under the role\'s thresholds');
# a role without the grant cannot set them in the first place
($rc, $out, $err) = psql_err(q{SET safe_migrate.policy = off;}, role => 'other');
like($err, qr/permission denied to set parameter/, 'a plain role cannot set the policy');

# any other setting of the session, custom ones included
$node->safe_psql('postgres', q{
	SET myapp.tenant = 'acme';
	SET maintenance_work_mem = '77MB';
	SELECT migrate_apply($m$CREATE INDEX CONCURRENTLY mid_id2 ON mid (id);
CREATE TABLE seen AS SELECT current_setting('myapp.tenant') AS tenant,
	current_setting('maintenance_work_mem') AS mwm, pg_backend_pid() AS pid;
$m$, '012');});
is($node->safe_psql('postgres', q{SELECT tenant || ' ' || mwm FROM seen}), 'acme 77MB',
	'custom and server settings of the caller hold in the runner');
isnt($node->safe_psql('postgres', q{SELECT pid = pg_backend_pid() FROM seen}), 't',
	'(it did run in the runner)');

# ---- the whole script is judged before its first step ----

my $enum_then_rewrite = q{SELECT migrate_apply($m$ALTER TYPE mood ADD VALUE 'angry';
ALTER TABLE big ALTER COLUMN v TYPE varchar(5);
$m$, '020');};
($rc, $out, $err) = psql_err($enum_then_rewrite);
isnt($rc, 0, 'a later statement the policy refuses: the migration is refused');
like($err, qr/changing-column-type/, 'by that statement\'s rule');
like($err, qr/Statement 2 of the migration would be refused.*Nothing was run/s,
	'the DETAIL says which statement and that nothing ran');
is($node->safe_psql('postgres', q{SELECT enum_range(NULL::mood)::text}), '{calm,busy}',
	'the enum value of step 1 was not committed');
is($node->safe_psql('postgres', q{SELECT count(*) FROM safe_migrate.migrations WHERE version = '020'}),
	'0', 'no attempt recorded');
# the corrected rerun works
($rc, $out, $err) = psql_err(q{SELECT status FROM migrate_apply($m$ALTER TYPE mood ADD VALUE 'angry';
ALTER TABLE big ADD COLUMN note text;
$m$, '020');});
is($rc, 0, 'the corrected migration applies') or diag($err);
is($node->safe_psql('postgres', q{SELECT enum_range(NULL::mood)::text}), '{calm,busy,angry}',
	'with its enum value');

# an allow line for the rule lets it through, as when it runs
($rc, $out, $err) = psql_err(q{SELECT status FROM migrate_apply($m$-- safe_migrate:allow changing-column-type maintenance window
ALTER TYPE mood ADD VALUE 'tired';
ALTER TABLE big ALTER COLUMN v TYPE varchar(5);
$m$, '021');});
is($rc, 0, 'allowed by the script: applied') or diag($err);

# a statement on a table the script creates is not judged by the old table
($rc, $out, $err) = psql_err(q{SELECT status FROM migrate_apply($m$ALTER TYPE mood ADD VALUE 'sleepy';
CREATE TABLE fresh (id int, v text);
ALTER TABLE fresh ALTER COLUMN v TYPE varchar(5);
$m$, '022');});
is($rc, 0, 'statements on a table created by the migration are not refused') or diag($err);

# in warn mode nothing is refused up front
($rc, $out, $err) = psql_err(q{SET safe_migrate.policy = warn;
SELECT status FROM migrate_apply($m$ALTER TYPE mood ADD VALUE 'bored';
ALTER TABLE big ALTER COLUMN id TYPE bigint;
$m$, '023');});
is($rc, 0, 'policy = warn: applied') or diag($err);
like($err, qr/WARNING:.*changing-column-type/, 'with the warning');

# ---- a multi-step failure says why the script runs in steps ----
($rc, $out, $err) = psql_err(q{SELECT status FROM migrate_apply($m$ALTER TYPE mood ADD VALUE 'puzzled';
SELECT 1 / 0;
$m$, '024');});
like($err, qr/ALTER TYPE \.\.\. ADD VALUE commits in a transaction of its own, so that later statements can use the new value/,
	'an ADD VALUE step is explained as what it is');
unlike($err, qr/cannot run inside a transaction block/, 'not as a statement that cannot run in a block');

# ---- a section wrapped in BEGIN; ... COMMIT; is one transaction in the runner too ----
# (a caller at REPEATABLE READ hands even a transactional script to the runner)
($rc, $out, $err) = psql_err(q{SET default_transaction_isolation = 'repeatable read';
SELECT status FROM migrate_apply($m$BEGIN;
ALTER TYPE mood ADD VALUE 'wrapped';
CREATE TABLE wrapped_t (id int);
SELECT 1 / 0;
COMMIT;
$m$, '025');});
like($err, qr/division by zero/, 'the wrapped section fails in the runner');
is($node->safe_psql('postgres', q{SELECT 'wrapped' = ANY (enum_range(NULL::mood)::text[])}), 'f',
	'nothing of it committed, its ADD VALUE included');
is($node->safe_psql('postgres', q{SELECT status || ' ' || statements FROM safe_migrate.migrations WHERE version = '025'}),
	'failed 0', 'recorded as failed with no statement committed');

# ---- statement_timeout per statement in the caller's backend ----
# (the caller's path: all statements transactional)
($rc, $out, $err) = psql_err(q{SELECT status FROM migrate_apply($m$SET statement_timeout = '300ms';
SELECT pg_sleep(2);
CREATE TABLE t_late (id int);
$m$, '030');});
isnt($rc, 0, "the script's SET statement_timeout holds for its next statement");
like($err, qr/canceling statement due to statement timeout/, 'the statement is cancelled');
is($node->safe_psql('postgres', q{SELECT status || ' ' || sqlstate FROM safe_migrate.migrations WHERE version = '030'}),
	'failed 57014', 'and the failure recorded');
($rc, $out, $err) = psql_err(q{SET statement_timeout = '10s';
SELECT status FROM migrate_apply($m$SET LOCAL statement_timeout = '700ms';
SELECT pg_sleep(0.4);
SELECT pg_sleep(0.4);
CREATE TABLE t_quick (id int);
$m$, '031');
SELECT pg_sleep(1);});
is($rc, 0, 'each statement has its own timer, as in a multi-statement query') or diag($err);
# the caller's own deadline still bounds the whole call, and its failure is recorded
($rc, $out, $err) = psql_err(q{SET statement_timeout = '1s';
SELECT status FROM migrate_apply($m$SET statement_timeout = '10s';
SELECT pg_sleep(0.6);
SELECT pg_sleep(0.6);
CREATE TABLE t_slow (id int);
$m$, '032');});
like($err, qr/canceling statement due to statement timeout/, "the caller's statement_timeout bounds the migration");
is($node->safe_psql('postgres', q{SELECT status FROM safe_migrate.migrations WHERE version = '032'}),
	'failed', 'its failure is recorded');

$node->stop;
done_testing();
