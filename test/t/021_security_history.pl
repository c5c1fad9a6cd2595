# Copyright: safe_migrate authors
#
# What others can read, what the DDL log keeps, and who can shadow the API.
#  - safe_migrate.history shows the text a migration carries (scripts,
#    failed statement, error message, detail and hint, warnings, the
#    statements of overrides) only to the role that applied it, its members
#    and admins; to anyone else those columns are NULL, also through a
#    leaky function in the reader's WHERE clause, and also once the
#    applying role is dropped (then only admins see them).
#  - safe_migrate.ddl_log keeps a statement's text once, cut to
#    safe_migrate.ddl_log_max_statement_bytes, skips temporary objects and
#    is trimmed to safe_migrate.ddl_log_retention.
#  - CREATE EXTENSION refuses a schema where others may create objects;
#    the qualified names safe_migrate.migrate_apply(...) etc. cannot be
#    captured by overloads.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('security_history');

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE app LOGIN;
	CREATE ROLE other LOGIN;
	CREATE ROLE admin LOGIN IN ROLE safe_migrate_admin;
	CREATE ROLE app_member LOGIN IN ROLE app;
	CREATE ROLE gone LOGIN;
	CREATE SCHEMA app AUTHORIZATION app;
	CREATE SCHEMA other AUTHORIZATION other;
	GRANT USAGE ON SCHEMA app TO other, admin;
	ALTER ROLE app SET search_path = app, public;
});

sub as { return as_role($node, @_) }

# ($rc, $stdout, $stderr) of $sql as $role
sub try_as
{
	my ($role, $sql, $db) = @_;
	return try_as_role($node, $role, $sql, db => $db);
}

# Everything $role can read of a version's history rows, as one string.
sub history_as
{
	my ($role, $version) = @_;
	return as($role,
		"SELECT string_agg(h::text, ' ') FROM safe_migrate.history h WHERE version = '$version'");
}

# ---------------------------------------------------------------------------
# The history
# ---------------------------------------------------------------------------

# A failed CREATE ROLE ... PASSWORD: the password is in the script and the
# failed statement.
my ($rc, $out, $err) = try_as('app',
	q{SELECT * FROM migrate_apply($$CREATE ROLE leaky PASSWORD 's3cret-pw';$$, 'sec-1')});
isnt($rc, 0, 'sec-1 fails (app may not create roles)');
is(as('other', q{SELECT status FROM safe_migrate.history WHERE version = 'sec-1'}),
	'failed', 'other sees that sec-1 failed');
unlike(history_as('other', 'sec-1'), qr/s3cret-pw/, 'no column of sec-1 shows the password to other');
is( as('other',
		q{SELECT (failed_statement IS NULL AND script IS NULL AND error_message IS NULL)::text
		    FROM safe_migrate.history WHERE version = 'sec-1'}),
	'true', 'other gets NULL for the failed statement, script and message of sec-1');
is(as('other', q{SELECT sqlstate FROM safe_migrate.history WHERE version = 'sec-1'}),
	'42501', 'other still sees the SQLSTATE');
for my $reader (qw(app app_member admin postgres))
{
	like(as($reader, q{SELECT failed_statement FROM safe_migrate.history WHERE version = 'sec-1'}),
		qr/s3cret-pw/, "$reader reads sec-1's failed statement");
	like(as($reader, q{SELECT script FROM safe_migrate.history WHERE version = 'sec-1'}),
		qr/s3cret-pw/, "$reader reads sec-1's script");
}

# A unique violation: its DETAIL shows a row of a table other cannot read.
as('app', q{
	CREATE TABLE app.users (email text UNIQUE);
	INSERT INTO app.users VALUES ('alice@example.com');
});
($rc, $out, $err) = try_as('app',
	q{SELECT * FROM migrate_apply($$INSERT INTO app.users VALUES ('alice@example.com');$$, 'sec-2')});
isnt($rc, 0, 'sec-2 fails (unique violation)');
like(as('app', q{SELECT error_detail FROM safe_migrate.history WHERE version = 'sec-2'}),
	qr/alice\@example\.com/, 'app reads the detail of its unique violation');
unlike(history_as('other', 'sec-2'), qr/alice\@example/, 'other cannot see the violating row');
($rc, $out, $err) = try_as('other', 'SELECT * FROM app.users');
isnt($rc, 0, '... which other cannot read directly either');

# An error message that quotes a value.
try_as('app', q{SELECT * FROM migrate_apply($$SELECT 'hunter2'::int;$$, 'sec-3')});
like(as('app', q{SELECT error_message FROM safe_migrate.history WHERE version = 'sec-3'}),
	qr/hunter2/, 'app reads its error message');
unlike(history_as('other', 'sec-3'), qr/hunter2/, 'other does not see the quoted value');

# A down script: visible to those who may roll the migration back.
as('app', q{SELECT status FROM migrate_apply($$
-- migrate:up
CREATE TABLE app.down_demo (id int);
-- migrate:down
DROP TABLE app.down_demo; -- down-marker
$$, 'sec-4')});
is(as('other', q{SELECT has_down::text || ',' || (down_script IS NULL)::text
                   FROM safe_migrate.history WHERE version = 'sec-4'}),
	'true,true', 'other sees that sec-4 has a down script, not the script');
unlike(history_as('other', 'sec-4'), qr/down-marker/, 'no column shows the down script to other');
for my $reader (qw(app app_member admin))
{
	like(as($reader, q{SELECT down_script FROM safe_migrate.history WHERE version = 'sec-4'}),
		qr/down-marker/, "$reader reads sec-4's down script");
}

# A leaky function in other's WHERE clause sees only what other may see.
($rc, $out, $err) = try_as('other', q{
	CREATE FUNCTION other.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
	$$ BEGIN RAISE NOTICE 'leaked: %', $1; RETURN true; END $$;
	SET search_path = other;
	SELECT count(*) FROM safe_migrate.history
	 WHERE leak(failed_statement) AND leak(script) AND leak(error_detail)
	   AND leak(error_message) AND leak(down_script) AND leak(overrides::text);
	SELECT count(*) FROM safe_migrate.history WHERE failed_statement::int > 0;
});
unlike($err, qr/s3cret-pw|alice\@example|hunter2|down-marker/,
	'a leaky function in a WHERE clause leaks nothing');
like($err, qr/leaked:/, '... though it ran');

# The table behind the view is not other's.
($rc, $out, $err) = try_as('other', 'SELECT script FROM safe_migrate.migrations');
like($err, qr/permission denied/, 'other cannot read safe_migrate.migrations');

# An override: rule, reason and role for all, its statement only for some.
as('postgres', 'CREATE TABLE app.old_secret_table (id int); ALTER TABLE app.old_secret_table OWNER TO admin');
as('admin', q{SELECT status FROM migrate_apply($$
-- safe_migrate:allow ban-drop-table moved elsewhere
DROP TABLE app.old_secret_table;
$$, 'sec-5')});
is( as('other',
		q{SELECT overrides #>> '{0,rule}' || ',' || (overrides #>> '{0,reason}') || ','
		         || (overrides #>> '{0,role}') || ',' || coalesce(overrides #>> '{0,statement}', 'hidden')
		    FROM safe_migrate.history WHERE version = 'sec-5'}),
	'ban-drop-table,moved elsewhere,admin,hidden',
	'other sees the override, its reason and role, not its statement');
like(as('admin', q{SELECT overrides #>> '{0,statement}' FROM safe_migrate.history WHERE version = 'sec-5'}),
	qr/old_secret_table/, 'admin sees the statement of the override');

# A role that no longer exists: only admins see its text.
try_as('gone', q{SELECT * FROM migrate_apply($$SELECT 'gone-secret'::int;$$, 'sec-6')});
as('postgres', 'DROP ROLE gone');
unlike(history_as('other', 'sec-6'), qr/gone-secret/, 'a dropped role\'s text: hidden from other');
unlike(history_as('app', 'sec-6'), qr/gone-secret/, '... and from app');
like(history_as('admin', 'sec-6'), qr/gone-secret/, '... shown to admin');

# migrate_verify reads the history with the caller's rights: it works for
# other too (versions and checksums are not hidden).
is(as('other', q{SELECT count(*) FROM migrate_verify('[{"version": "sec-4"}]')}),
	'1', 'migrate_verify works for other (sec-5 is extra)');

# ---------------------------------------------------------------------------
# The DDL log
# ---------------------------------------------------------------------------

my $log_size = q{SELECT pg_total_relation_size('safe_migrate.ddl_entries')};
my $pad = join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[ ($_ * 7919) % 62 ] } 1 .. 1_000_000);

my $before = $node->safe_psql('postgres', $log_size);
as('app', qq{DO \$\$ BEGIN /* $pad */
	FOR i IN 1..300 LOOP
		EXECUTE format('CREATE TEMP TABLE tt%s (id int PRIMARY KEY, v text)', i);
	END LOOP; END \$\$;});
is($node->safe_psql('postgres', $log_size), $before,
	'a 1 MB DO block creating 300 temporary tables writes nothing to the log');

as('app', qq{DO \$\$ BEGIN /* $pad */
	FOR i IN 1..300 LOOP
		EXECUTE format('CREATE TABLE app.rt%s (id int PRIMARY KEY, v text)', i);
	END LOOP; END \$\$;});
my $grown = $node->safe_psql('postgres', $log_size) - $before;
cmp_ok($grown, '<', 512 * 1024,
	"the same block creating 300 tables writes less than 512 kB ($grown bytes)");
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) || ',' || count(DISTINCT statement) || ',' || bool_and(statement_truncated)
	       || ',' || max(octet_length(statement)) || ',' || (min(statement_bytes) > 1000000)
	  FROM safe_migrate.ddl_log WHERE object_identity LIKE 'app.rt%'}),
	'600,1,true,8192,true',
	'600 objects share one statement, cut to 8192 bytes, its full length kept');
like(
	$node->safe_psql('postgres',
		q{SELECT statement FROM migrate_drift() WHERE object_identity = 'app.rt1'}),
	qr/\[truncated: 8192 of \d+ bytes kept/, 'migrate_drift marks the cut');

# Temporary sub-objects, drops of temporary objects, ON COMMIT DROP.
$before = $node->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.ddl_log');
as('app', q{
	CREATE TEMP TABLE t1 (id int PRIMARY KEY, v int DEFAULT 1 CHECK (v > 0));
	CREATE FUNCTION pg_temp.f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
	CREATE TRIGGER t1_trg BEFORE INSERT ON t1 FOR EACH ROW EXECUTE FUNCTION pg_temp.f();
	CREATE POLICY t1_pol ON t1 USING (true);
	CREATE RULE t1_rule AS ON UPDATE TO t1 DO INSTEAD NOTHING;
	ALTER TABLE t1 ADD COLUMN w int DEFAULT 2, ADD CONSTRAINT t1_w CHECK (w > 0);
	CREATE INDEX ON t1 (v);
	CREATE TEMP VIEW t1_v AS SELECT * FROM t1;
	CREATE TEMP SEQUENCE t1_s;
	COMMENT ON TABLE t1 IS 'temp';
	DROP TRIGGER t1_trg ON t1;
	DROP POLICY t1_pol ON t1;
	DROP RULE t1_rule ON t1;
	ALTER TABLE t1 DROP CONSTRAINT t1_w, ALTER COLUMN v DROP DEFAULT;
	DROP VIEW t1_v;
	DROP TABLE t1;
	BEGIN;
	CREATE TEMP TABLE t2 (id int) ON COMMIT DROP;
	COMMIT;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.ddl_log'),
	$before, 'statements on temporary objects only log nothing')
  or diag($node->safe_psql('postgres',
		q{SELECT command_tag || ' ' || object_type || ' ' || object_identity
		    FROM safe_migrate.ddl_log ORDER BY logged_at DESC LIMIT 3}));

# A subtransaction that wrote a statement's row and rolled back: the objects
# logged after it still have their statement.
as('app', q{DO $$ BEGIN
	BEGIN
		CREATE TABLE app.sub1 (id int);
		RAISE EXCEPTION 'roll back';
	EXCEPTION WHEN raise_exception THEN NULL;
	END;
	CREATE TABLE app.sub2 (id int);
END $$;});
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(object_identity || ':' || (statement LIKE '%app.sub2%'), ',')
	  FROM safe_migrate.ddl_log WHERE object_identity LIKE 'app.sub%'}),
	'app.sub2:true', 'a rolled-back subtransaction takes its rows along, the rest keeps its statement');
is($node->safe_psql('postgres', 'SELECT count(*) FROM safe_migrate.ddl_log WHERE statement_bytes IS NULL'),
	'0', 'no logged object lacks its statement');

# The settings: superusers and admins only.
($rc, $out, $err) = try_as('other', 'SET safe_migrate.ddl_log_max_statement_bytes = 0');
like($err, qr/permission denied to set parameter/, 'other may not change the kept length');
($rc, $out, $err) = try_as('other', q{SET safe_migrate.ddl_log_retention = '1min'});
like($err, qr/permission denied to set parameter/, 'other may not change the retention');
is(as('admin', q{SET safe_migrate.ddl_log_retention = '1d'; SHOW safe_migrate.ddl_log_retention}),
	'1d', 'admin may');
($rc, $out, $err) = try_as('other', 'SELECT safe_migrate.ddl_log_trim()');
like($err, qr/permission denied/, 'other may not trim the log');

# Retention, enforced by the sessions that write to the log.
$node->safe_psql(
	'postgres', q{
	UPDATE safe_migrate.ddl_entries SET logged_at = logged_at - interval '40 days'
	 WHERE object_identity LIKE 'app.rt%';
	UPDATE safe_migrate.ddl_log_trimmed SET trimmed_at = now() - interval '1 hour';
});
as('app', 'CREATE TABLE app.after_trim (id int)');
is( $node->safe_psql(
		'postgres', q{
	SELECT (SELECT count(*) FROM safe_migrate.ddl_entries WHERE object_identity LIKE 'app.rt%')
	       || ',' || (SELECT count(*) FROM safe_migrate.ddl_entries WHERE statement_bytes > 1000000)
	       || ',' || (SELECT count(*) FROM safe_migrate.ddl_log WHERE object_identity = 'app.after_trim')
	       || ',' || (SELECT trimmed_at > now() - interval '1 minute' FROM safe_migrate.ddl_log_trimmed)}),
	'0,0,1,true', 'the next DDL statement deletes entries older than the 30 days retention');

# ... not again within ten minutes; the admin can trim now.
$node->safe_psql('postgres',
	q{UPDATE safe_migrate.ddl_entries SET logged_at = logged_at - interval '40 days'
	   WHERE object_identity = 'app.after_trim'});
as('app', 'CREATE TABLE app.after_trim2 (id int)');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM safe_migrate.ddl_entries WHERE object_identity = 'app.after_trim'}),
	'1', 'the log is trimmed at most every ten minutes');
is(as('admin', 'SELECT safe_migrate.ddl_log_trim()'), '1', 'admin trims it now: one row');
is(as('admin', q{SET safe_migrate.ddl_log_retention = 0; SELECT safe_migrate.ddl_log_trim()}),
	'0', 'retention 0 keeps everything');

# ---------------------------------------------------------------------------
# Layout: who can shadow the API
# ---------------------------------------------------------------------------

# A schema where PUBLIC may create: refused.
$node->safe_psql('postgres', 'CREATE DATABASE open_db');
$node->safe_psql('open_db', 'GRANT CREATE ON SCHEMA public TO PUBLIC');
($rc, $out, $err) = $node->psql('open_db', "\\set VERBOSITY verbose\nCREATE EXTENSION safe_migrate");
isnt($rc, 0, 'CREATE EXTENSION refuses a schema where PUBLIC may create');
like($err, qr/ERROR:  42501: schema "public" is writable by PUBLIC/, '... with SQLSTATE 42501 naming it');
like($err, qr/HINT:  Revoke it \(REVOKE CREATE ON SCHEMA public FROM PUBLIC\), or create the extension in a schema of its own/,
	'... and a hint');
is($node->safe_psql('open_db', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'safe_migrate'}),
	'0', '... leaving nothing behind');

# ... or where another role may create.
$node->safe_psql('open_db', q{
	REVOKE CREATE ON SCHEMA public FROM PUBLIC;
	CREATE SCHEMA shared;
	GRANT CREATE ON SCHEMA shared TO other;
});
($rc, $out, $err) = $node->psql('open_db', 'CREATE EXTENSION safe_migrate SCHEMA shared');
like($err, qr/schema "shared" is writable by other/, 'a schema another role may create in: refused');

# ... also one whose name needs quotes.
$node->safe_psql('open_db', q{CREATE SCHEMA "Open Space"; GRANT CREATE ON SCHEMA "Open Space" TO PUBLIC;});
($rc, $out, $err) = $node->psql('open_db', 'CREATE EXTENSION safe_migrate SCHEMA "Open Space"');
like($err, qr/schema "Open Space" is writable by PUBLIC/, 'a quoted schema name: refused too');

# A schema owned by a non-superuser: a warning naming the owner.
$node->safe_psql('open_db', 'CREATE SCHEMA owned AUTHORIZATION app');
($rc, $out, $err) = $node->psql('open_db', 'CREATE EXTENSION safe_migrate SCHEMA owned');
is($rc, 0, 'a schema owned by a non-superuser is accepted');
like($err, qr/WARNING:  roles app, app_member may create objects in schema "owned"/,
	'... with a warning naming the roles that could capture calls');
$node->safe_psql('open_db', 'DROP EXTENSION safe_migrate');

# A dedicated schema: fine and quiet.
($rc, $out, $err) = $node->psql('open_db', 'CREATE SCHEMA migrate; CREATE EXTENSION safe_migrate SCHEMA migrate');
is($rc . $err, '0', 'a dedicated schema: no error, no warning');

# Schema safe_migrate: nobody but its (superuser) owner may create there.
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM pg_roles r
	 WHERE NOT r.rolsuper AND has_schema_privilege(r.oid, 'safe_migrate', 'CREATE')}),
	'0', 'no role but superusers may create in schema safe_migrate');

# other shadows the API in a schema of its own on its search_path.
as('other', q{
	CREATE FUNCTION other.migrate_apply(script varchar, version text DEFAULT NULL)
	RETURNS text LANGUAGE sql AS $$ SELECT 'captured' $$;
	CREATE FUNCTION other.migrate_rollback() RETURNS text LANGUAGE sql AS $$ SELECT 'captured' $$;
});
my $shadowed = 'SET search_path = other, public;';
is(as('other', "$shadowed SELECT migrate_apply('SELECT 1'::varchar, 'cap-0')"),
	'captured', 'unqualified, a varchar argument is captured by the overload (why the schema matters)');
is( as('other',
		"$shadowed PREPARE p(varchar, text) AS SELECT status FROM safe_migrate.migrate_apply(\$1, \$2);
		 EXECUTE p(E'-- migrate:up\\nSELECT 1;\\n-- migrate:down\\nSELECT 2;', 'cap-1')"),
	'applied', 'qualified, a varchar argument (JDBC setString) reaches safe_migrate.migrate_apply');
is(as('other', "$shadowed SELECT migrate_rollback()"),
	'captured', 'unqualified, migrate_rollback() is captured by the zero-argument overload');
# (a superuser rolls back here, with other's search_path: migrate_rollback by
# a non-superuser crashes the runner in this branch, see the report)
is(as('postgres', "$shadowed SELECT count(*) FROM safe_migrate.migrate_rollback()"),
	'1', 'qualified, safe_migrate.migrate_rollback() is the real one');
is(as('postgres', q{SELECT status FROM safe_migrate.history WHERE version = 'cap-1'}),
	'rolled_back', '... which rolled cap-1 back');
($rc, $out, $err) = try_as('other', q{
	CREATE FUNCTION safe_migrate.migrate_apply(script varchar) RETURNS text
	LANGUAGE sql AS $$ SELECT 'captured' $$});
like($err, qr/permission denied for schema safe_migrate/, 'nobody can add an overload to schema safe_migrate');

done_testing();
