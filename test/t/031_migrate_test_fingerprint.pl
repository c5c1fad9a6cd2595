# Copyright: safe_migrate authors
#
# migrate_test's verdict on a down script agrees with pg_dump -s.
#  - For each up/down pair, in a fresh copy of one schema: migrate_test says
#    whether down restores the schema (its 'down' row is ok); then the pair is
#    applied for real with psql (up, then down, each committed) and the
#    schema-only dumps taken before and after are compared.  The verdict must
#    be "restored" exactly when the dumps are identical.  The pairs cover, one
#    category each, a down that restores and a down that forgets: enum labels,
#    enum and domain types, row-level security (policies, enabled, forced),
#    comments, column order, storage, statistics targets, defaults,
#    constraints, indexes, triggers (and whether enabled), rules, sequences
#    and their ownership, privileges, ownership, extensions, publications,
#    functions and procedures, views' definitions, statistics objects, replica
#    identity, reloptions, collations, partitioning, inheritance, composite
#    types.
#  - A down script that uses an enum value its own up added: a real apply and
#    rollback work, and so does migrate_test (it no longer reports "unsafe use
#    of new value"), leaving nothing behind; an index that would keep the value
#    past the test's rollback makes migrate_test refuse the write instead.
#  - A role that may not override rules tests its own plain CREATE TABLE: the
#    derived down's allow line is honoured for the test.
# It runs for minutes: scripts/test.sh starts it first.
# tap: long
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('migrate_test_fingerprint');

$node->safe_psql('postgres', q{
	CREATE ROLE fp_reader;
	CREATE ROLE fp_owner;
	CREATE ROLE fp_plain LOGIN;
	CREATE DATABASE fp_base;
});
$node->safe_psql('fp_base', q{
	CREATE EXTENSION safe_migrate;
	SET safe_migrate.policy = off;
	CREATE TYPE mood AS ENUM ('a', 'b');
	CREATE DOMAIN posint AS int CHECK (VALUE > 0);
	CREATE TABLE items (id int PRIMARY KEY, name text, note text, m mood, qty posint DEFAULT 1);
	CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
	CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
	CREATE TABLE parent_a (x int);
	CREATE TABLE parent_b (y int);
	CREATE SEQUENCE counter;
	CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
	CREATE TRIGGER items_touch BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch();
	CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 2';
	CREATE VIEW item_names AS SELECT id, name FROM items;
	CREATE TYPE pair AS (a int, b text);
	CREATE PUBLICATION pub_items FOR TABLE items;
	COMMENT ON TABLE items IS 'the items';
	CREATE EXTENSION file_fdw;
	CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
	CREATE FOREIGN TABLE feed (line text) SERVER files OPTIONS (filename '/dev/null');
});

my $dump_count = 0;

# pg_dump -s of $db, without the lines that differ between any two dumps
# (psql's \restrict key, comments)
sub schema_dump
{
	my ($db) = @_;
	my ($stdout, $stderr);
	IPC::Run::run([ 'pg_dump', '-s', '-d', $node->connstr($db) ],
		'>', \$stdout, '2>', \$stderr)
	  or die "pg_dump failed: $stderr";
	$dump_count++;
	return join("\n",
		grep { !/^\\(un)?restrict / && !/^--/ && !/^\s*$/ } split /\n/, $stdout);
}

my $n = 0;

# ($verdict, $truth): migrate_test's "down restores the schema", and whether
# pg_dump -s is the same after up and down applied for real
sub check_pair
{
	my ($name, $up, $down) = @_;
	my $db = 'fp_' . ++$n;
	$node->safe_psql('postgres', "CREATE DATABASE $db TEMPLATE fp_base");
	my $script = "-- migrate:up\n$up\n-- migrate:down\n$down\n";
	my $verdict = $node->safe_psql($db,
		"SET safe_migrate.policy = off;\n"
		  . "SELECT ok FROM migrate_test(\$mt\$$script\$mt\$) WHERE step = 'down';");
	my $before = schema_dump($db);
	my ($rc_up) = $node->psql($db, "SET safe_migrate.policy = off;\n$up",
		on_error_stop => 1);
	my ($rc_down) = $node->psql($db, "SET safe_migrate.policy = off;\n$down",
		on_error_stop => 1);
	die "$name: up failed when applied for real" if $rc_up != 0;
	my $after = schema_dump($db);
	my $same = ($before eq $after && $rc_down == 0) ? 't' : 'f';
	is($verdict, $same,
		"$name: migrate_test says down "
		  . ($verdict eq 't' ? 'restores' : 'does not restore')
		  . ", pg_dump -s says " . ($same eq 't' ? 'restored' : 'not restored'));
	$node->safe_psql('postgres', "DROP DATABASE $db");
	return $same;
}

# [name, up, good down, forgetful down (restores less)]
my @pairs = (
	[ 'enum label', q{ALTER TYPE mood ADD VALUE 'c';},
	  q{DELETE FROM items WHERE m = 'c';
	    ALTER TYPE mood RENAME TO mood_old;
	    CREATE TYPE mood AS ENUM ('a', 'b');
	    ALTER TABLE items ALTER COLUMN m TYPE mood USING m::text::mood;
	    DROP TYPE mood_old;},
	  q{DELETE FROM items WHERE m = 'c';} ],
	[ 'enum label order', q{ALTER TYPE mood ADD VALUE 'c' BEFORE 'a';},
	  q{ALTER TYPE mood RENAME TO mood_old;
	    CREATE TYPE mood AS ENUM ('a', 'b');
	    ALTER TABLE items ALTER COLUMN m TYPE mood USING m::text::mood;
	    DROP TYPE mood_old;},
	  q{SELECT 1;} ],
	[ 'enum label renamed', q{ALTER TYPE mood RENAME VALUE 'b' TO 'bb';},
	  q{ALTER TYPE mood RENAME VALUE 'bb' TO 'b';}, q{SELECT 1;} ],
	[ 'enum type', q{CREATE TYPE color AS ENUM ('red');}, q{DROP TYPE color;}, q{SELECT 1;} ],
	[ 'domain type', q{CREATE DOMAIN short_text AS text;}, q{DROP DOMAIN short_text;},
	  q{SELECT 1;} ],
	[ 'domain constraint', q{ALTER DOMAIN posint ADD CONSTRAINT small CHECK (VALUE < 100);},
	  q{ALTER DOMAIN posint DROP CONSTRAINT small;}, q{SELECT 1;} ],
	[ 'domain default', q{ALTER DOMAIN posint SET DEFAULT 5;},
	  q{ALTER DOMAIN posint DROP DEFAULT;}, q{SELECT 1;} ],
	[ 'policy', q{CREATE POLICY own ON items USING (id > 0);}, q{DROP POLICY own ON items;},
	  q{SELECT 1;} ],
	[ 'policy changed', q{CREATE POLICY own ON items USING (id > 0);
	    ALTER POLICY own ON items USING (id > 1);},
	  q{DROP POLICY own ON items;}, q{ALTER POLICY own ON items USING (id > 0);} ],
	[ 'row security enabled', q{ALTER TABLE items ENABLE ROW LEVEL SECURITY;},
	  q{ALTER TABLE items DISABLE ROW LEVEL SECURITY;}, q{SELECT 1;} ],
	[ 'row security forced', q{ALTER TABLE items FORCE ROW LEVEL SECURITY;},
	  q{ALTER TABLE items NO FORCE ROW LEVEL SECURITY;}, q{SELECT 1;} ],
	[ 'table comment', q{COMMENT ON TABLE items IS 'changed';},
	  q{COMMENT ON TABLE items IS 'the items';}, q{COMMENT ON TABLE items IS NULL;} ],
	[ 'column comment', q{COMMENT ON COLUMN items.name IS 'the name';},
	  q{COMMENT ON COLUMN items.name IS NULL;}, q{SELECT 1;} ],
	[ 'function comment', q{COMMENT ON FUNCTION twice(int) IS 'doubles';},
	  q{COMMENT ON FUNCTION twice(int) IS NULL;}, q{SELECT 1;} ],
	[ 'column order', q{ALTER TABLE items DROP COLUMN note;},
	  q{SELECT 1 WHERE false;},
	  q{ALTER TABLE items ADD COLUMN note text;} ],
	[ 'column added', q{ALTER TABLE items ADD COLUMN extra int;},
	  q{ALTER TABLE items DROP COLUMN extra;}, q{SELECT 1;} ],
	[ 'storage', q{ALTER TABLE items ALTER COLUMN name SET STORAGE EXTERNAL;},
	  q{ALTER TABLE items ALTER COLUMN name SET STORAGE EXTENDED;}, q{SELECT 1;} ],
	[ 'compression', q{ALTER TABLE items ALTER COLUMN name SET COMPRESSION pglz;},
	  q{ALTER TABLE items ALTER COLUMN name SET COMPRESSION DEFAULT;}, q{SELECT 1;} ],
	[ 'statistics target', q{ALTER TABLE items ALTER COLUMN name SET STATISTICS 500;},
	  q{ALTER TABLE items ALTER COLUMN name SET STATISTICS -1;}, q{SELECT 1;} ],
	[ 'column options', q{ALTER TABLE items ALTER COLUMN name SET (n_distinct = 10);},
	  q{ALTER TABLE items ALTER COLUMN name RESET (n_distinct);}, q{SELECT 1;} ],
	[ 'default', q{ALTER TABLE items ALTER COLUMN note SET DEFAULT 'none';},
	  q{ALTER TABLE items ALTER COLUMN note DROP DEFAULT;}, q{SELECT 1;} ],
	[ 'default changed', q{ALTER TABLE items ALTER COLUMN qty SET DEFAULT 2;},
	  q{ALTER TABLE items ALTER COLUMN qty SET DEFAULT 1;}, q{ALTER TABLE items ALTER COLUMN qty DROP DEFAULT;} ],
	[ 'not null', q{ALTER TABLE items ALTER COLUMN name SET NOT NULL;},
	  q{ALTER TABLE items ALTER COLUMN name DROP NOT NULL;}, q{SELECT 1;} ],
	[ 'column type', q{ALTER TABLE items ALTER COLUMN note TYPE varchar(50);},
	  q{ALTER TABLE items ALTER COLUMN note TYPE text;}, q{ALTER TABLE items ALTER COLUMN note TYPE varchar(60);} ],
	[ 'constraint', q{ALTER TABLE items ADD CONSTRAINT name_len CHECK (length(name) < 10);},
	  q{ALTER TABLE items DROP CONSTRAINT name_len;}, q{SELECT 1;} ],
	[ 'constraint not valid', q{ALTER TABLE items ADD CONSTRAINT name_len CHECK (length(name) < 10) NOT VALID;},
	  q{ALTER TABLE items DROP CONSTRAINT name_len;},
	  q{ALTER TABLE items DROP CONSTRAINT name_len; ALTER TABLE items ADD CONSTRAINT name_len CHECK (length(name) < 10);} ],
	[ 'index', q{CREATE INDEX items_name ON items (name);}, q{DROP INDEX items_name;},
	  q{SELECT 1;} ],
	[ 'clustered', q{ALTER TABLE items CLUSTER ON items_pkey;},
	  q{ALTER TABLE items SET WITHOUT CLUSTER;}, q{SELECT 1;} ],
	[ 'trigger', q{CREATE TRIGGER items_touch2 BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION touch();},
	  q{DROP TRIGGER items_touch2 ON items;}, q{SELECT 1;} ],
	[ 'trigger disabled', q{ALTER TABLE items DISABLE TRIGGER items_touch;},
	  q{ALTER TABLE items ENABLE TRIGGER items_touch;}, q{SELECT 1;} ],
	[ 'rule', q{CREATE RULE no_delete AS ON DELETE TO items DO INSTEAD NOTHING;},
	  q{DROP RULE no_delete ON items;}, q{SELECT 1;} ],
	[ 'sequence', q{CREATE SEQUENCE tickets;}, q{DROP SEQUENCE tickets;}, q{SELECT 1;} ],
	[ 'sequence options', q{ALTER SEQUENCE counter INCREMENT BY 5;},
	  q{ALTER SEQUENCE counter INCREMENT BY 1;}, q{SELECT 1;} ],
	[ 'sequence ownership', q{ALTER SEQUENCE counter OWNED BY items.qty;},
	  q{ALTER SEQUENCE counter OWNED BY NONE;}, q{SELECT 1;} ],
	[ 'identity', q{ALTER TABLE items ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;},
	  q{ALTER TABLE items ALTER COLUMN id DROP IDENTITY;},
	  q{ALTER TABLE items ALTER COLUMN id SET GENERATED ALWAYS;} ],
	[ 'privileges', q{GRANT SELECT ON items TO fp_reader;},
	  q{REVOKE SELECT ON items FROM fp_reader;}, q{SELECT 1;} ],
	[ 'column privileges', q{GRANT UPDATE (name) ON items TO fp_reader;},
	  q{REVOKE UPDATE (name) ON items FROM fp_reader;}, q{SELECT 1;} ],
	[ 'function privileges', q{REVOKE EXECUTE ON FUNCTION twice(int) FROM PUBLIC;},
	  q{GRANT EXECUTE ON FUNCTION twice(int) TO PUBLIC;}, q{SELECT 1;} ],
	[ 'schema privileges', q{GRANT USAGE ON SCHEMA public TO fp_reader;},
	  q{REVOKE USAGE ON SCHEMA public FROM fp_reader;}, q{SELECT 1;} ],
	[ 'default privileges', q{ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO fp_reader;},
	  q{ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM fp_reader;}, q{SELECT 1;} ],
	[ 'ownership', q{ALTER TABLE items OWNER TO fp_owner;},
	  q{ALTER TABLE items OWNER TO postgres;}, q{SELECT 1;} ],
	[ 'type ownership', q{ALTER TYPE mood OWNER TO fp_owner;},
	  q{ALTER TYPE mood OWNER TO postgres;}, q{SELECT 1;} ],
	[ 'extension', q{CREATE EXTENSION citext;}, q{DROP EXTENSION citext;}, q{SELECT 1;} ],
	[ 'publication', q{CREATE PUBLICATION pub_all FOR TABLE events;},
	  q{DROP PUBLICATION pub_all;}, q{SELECT 1;} ],
	[ 'publication table', q{ALTER PUBLICATION pub_items ADD TABLE parent_a;},
	  q{ALTER PUBLICATION pub_items DROP TABLE parent_a;}, q{SELECT 1;} ],
	[ 'publication options', q{ALTER PUBLICATION pub_items SET (publish = 'insert');},
	  q{ALTER PUBLICATION pub_items SET (publish = 'insert, update, delete, truncate');}, q{SELECT 1;} ],
	[ 'function body', q{CREATE OR REPLACE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT x + x';},
	  q{CREATE OR REPLACE FUNCTION twice(x int) RETURNS int LANGUAGE sql AS 'SELECT x * 2';},
	  q{SELECT 1;} ],
	[ 'function attributes', q{ALTER FUNCTION twice(int) IMMUTABLE STRICT;},
	  q{ALTER FUNCTION twice(int) VOLATILE CALLED ON NULL INPUT;}, q{ALTER FUNCTION twice(int) VOLATILE;} ],
	[ 'procedure', q{CREATE PROCEDURE noop() LANGUAGE sql AS 'SELECT 1';},
	  q{DROP PROCEDURE noop();}, q{SELECT 1;} ],
	[ 'view definition', q{CREATE OR REPLACE VIEW item_names AS SELECT id, name FROM items WHERE id > 0;},
	  q{CREATE OR REPLACE VIEW item_names AS SELECT id, name FROM items;}, q{SELECT 1;} ],
	[ 'view options', q{ALTER VIEW item_names SET (security_barrier = true);},
	  q{ALTER VIEW item_names RESET (security_barrier);}, q{SELECT 1;} ],
	[ 'statistics object', q{CREATE STATISTICS items_stats ON id, name FROM items;},
	  q{DROP STATISTICS items_stats;}, q{SELECT 1;} ],
	[ 'replica identity', q{ALTER TABLE items REPLICA IDENTITY FULL;},
	  q{ALTER TABLE items REPLICA IDENTITY DEFAULT;}, q{SELECT 1;} ],
	[ 'replica identity index', q{CREATE UNIQUE INDEX items_name_key ON items (name);
	    ALTER TABLE items ALTER COLUMN name SET NOT NULL;
	    ALTER TABLE items REPLICA IDENTITY USING INDEX items_name_key;},
	  q{ALTER TABLE items REPLICA IDENTITY DEFAULT;
	    ALTER TABLE items ALTER COLUMN name DROP NOT NULL;
	    DROP INDEX items_name_key;},
	  q{ALTER TABLE items ALTER COLUMN name DROP NOT NULL;
	    ALTER TABLE items REPLICA IDENTITY DEFAULT;} ],
	[ 'reloptions', q{ALTER TABLE items SET (fillfactor = 50);},
	  q{ALTER TABLE items RESET (fillfactor);}, q{SELECT 1;} ],
	[ 'toast reloptions', q{ALTER TABLE items SET (toast.autovacuum_enabled = false);},
	  q{ALTER TABLE items RESET (toast.autovacuum_enabled);}, q{SELECT 1;} ],
	[ 'unlogged', q{ALTER TABLE parent_b SET UNLOGGED;},
	  q{ALTER TABLE parent_b SET LOGGED;}, q{SELECT 1;} ],
	[ 'collation', q{CREATE COLLATION my_c (locale = 'C');}, q{DROP COLLATION my_c;},
	  q{SELECT 1;} ],
	[ 'column collation', q{ALTER TABLE items ALTER COLUMN note TYPE text COLLATE "C";},
	  q{ALTER TABLE items ALTER COLUMN note TYPE text COLLATE "default";}, q{SELECT 1;} ],
	[ 'partition detached', q{ALTER TABLE events DETACH PARTITION events_2024;},
	  q{ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');},
	  q{ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-06-01');} ],
	[ 'partition added', q{CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');},
	  q{DROP TABLE events_2025;}, q{ALTER TABLE events DETACH PARTITION events_2025;} ],
	[ 'inheritance order', q{CREATE TABLE child (z int) INHERITS (parent_a, parent_b);},
	  q{DROP TABLE child;},
	  q{ALTER TABLE child NO INHERIT parent_a; ALTER TABLE child INHERIT parent_a;} ],
	[ 'composite type', q{ALTER TYPE pair ADD ATTRIBUTE c int;},
	  q{ALTER TYPE pair DROP ATTRIBUTE c;}, q{SELECT 1;} ],
	[ 'foreign table options', q{ALTER FOREIGN TABLE feed OPTIONS (SET filename '/dev/zero');},
	  q{ALTER FOREIGN TABLE feed OPTIONS (SET filename '/dev/null');}, q{SELECT 1;} ],
	[ 'server version', q{ALTER SERVER files VERSION '2';},
	  q{ALTER SERVER files VERSION NULL;}, q{SELECT 1;} ],
	[ 'user mapping', q{CREATE USER MAPPING FOR fp_reader SERVER files;},
	  q{DROP USER MAPPING FOR fp_reader SERVER files;}, q{SELECT 1;} ],
	[ 'schema', q{CREATE SCHEMA reports;}, q{DROP SCHEMA reports;}, q{SELECT 1;} ],
	[ 'operator', q{CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);},
	  q{DROP OPERATOR === (int, int);}, q{SELECT 1;} ],
);

for my $p (@pairs)
{
	my ($name, $up, $good, $forgetful) = @$p;
	is(check_pair("$name (restoring down)", $up, $good), 't',
		"$name: the restoring down really restores (pg_dump -s)")
	  unless $name eq 'column order';
	is(check_pair("$name (forgetful down)", $up, $forgetful), 'f',
		"$name: the forgetful down really leaves a difference (pg_dump -s)");
}

# A down script that uses the value its up added: works for real, and in
# migrate_test, which leaves no trace of it.
my $enum_script = q{-- migrate:up
ALTER TYPE mood ADD VALUE 'c';
INSERT INTO items (id, m) VALUES (100, 'c');
-- migrate:down
DELETE FROM items WHERE m = 'c';
ALTER TYPE mood RENAME TO mood_old;
CREATE TYPE mood AS ENUM ('a', 'b');
ALTER TABLE items ALTER COLUMN m TYPE mood USING m::text::mood;
DROP TYPE mood_old;
};
$node->safe_psql('postgres', 'CREATE DATABASE fp_enum TEMPLATE fp_base');
my $rows = $node->safe_psql('fp_enum',
	"SET safe_migrate.policy = off; SELECT string_agg(step || ' ' || ok || ' ' || array_to_string(differences, '; '), ', ') "
	  . "FROM migrate_test(\$mt\$$enum_script\$mt\$) WHERE step <> 'up'");
is($rows, "down true , up again true ", 'migrate_test: a down using its up\'s new enum value works');
is($node->safe_psql('fp_enum',
		"SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum "
		  . "WHERE enumtypid = 'mood'::regtype"),
	'a,b', 'migrate_test leaves no enum value behind');
is($node->safe_psql('fp_enum', 'SELECT count(*) FROM items'), '0',
	'migrate_test leaves no row behind');
# in a transaction that added a value of its own before: that one stays
# unusable (PostgreSQL's rule), the test's did not leak into it
my ($rc, $out, $err) = $node->psql('fp_enum', qq{
	BEGIN;
	CREATE TYPE tmood AS ENUM ('x');
	COMMIT;
	BEGIN;
	ALTER TYPE tmood ADD VALUE 'y';
	SET LOCAL safe_migrate.policy = off;
	SELECT step, ok FROM migrate_test(\$mt\$$enum_script\$mt\$) WHERE step = 'down';
	SELECT 'y'::tmood;
	ROLLBACK;
});
like($err, qr/unsafe use of new value "y" of enum type tmood/,
	"the caller's own new value stays unusable after migrate_test");
like($out, qr/down\|t/, 'migrate_test in a transaction that added a value of its own');
# the same script for real: apply, roll back (psql, committed steps)
$node->safe_psql('fp_enum', q{SET safe_migrate.policy = off;
	ALTER TYPE mood ADD VALUE 'c';});
$node->safe_psql('fp_enum', q{SET safe_migrate.policy = off;
	INSERT INTO items (id, m) VALUES (100, 'c');
	DELETE FROM items WHERE m = 'c';
	ALTER TYPE mood RENAME TO mood_old;
	CREATE TYPE mood AS ENUM ('a', 'b');
	ALTER TABLE items ALTER COLUMN m TYPE mood USING m::text::mood;
	DROP TYPE mood_old;});
pass('the same up and down work when applied for real');

# An index that existed before the test and stores the type: writing the new
# value there would outlive the rollback, so the write is refused (and the
# index stays sound).
$node->safe_psql('fp_enum', 'CREATE INDEX items_m ON items (m); '
	  . "CREATE TABLE boxes (id int, ms mood[]); CREATE INDEX boxes_ms ON boxes (ms);");
($rc, $out, $err) = $node->psql('fp_enum',
	"SET safe_migrate.policy = off; SELECT * FROM migrate_test(\$mt\$$enum_script\$mt\$)");
like($err, qr/migrate_test cannot write into table "items" once the migration added a value to an enum type its index "items_m" stores/,
	'a write into a pre-existing index of the enum type is refused');
($rc, $out, $err) = $node->psql('fp_enum', q{SET safe_migrate.policy = off; SELECT * FROM migrate_test($mt$
-- migrate:up
ALTER TYPE mood ADD VALUE 'c';
INSERT INTO boxes VALUES (1, ARRAY['c']::mood[]);
-- migrate:down
SELECT 1;
$mt$)});
like($err, qr/cannot write into table "boxes".*"boxes_ms"/,
	'also through an array of the enum type');
# An UPDATE that sets the indexed column to a value committed before the
# test (the usual down: move rows off the new value) writes no new value:
# allowed.  The same UPDATE through a BEFORE UPDATE trigger (which could set
# any column) or to the new value is refused.
$node->safe_psql('fp_enum', 'CREATE TABLE labels (id int, m mood, note text); '
	  . 'CREATE INDEX labels_m ON labels (m); '
	  . "INSERT INTO labels VALUES (1, 'a', 'x'), (2, 'b', 'y');");
$rows = $node->safe_psql('fp_enum', q{SET safe_migrate.policy = off;
SELECT string_agg(step || ' ' || ok || ' ' || array_to_string(differences, '; '), ', ') FROM migrate_test($mt$
-- migrate:up
ALTER TYPE mood ADD VALUE 'c';
-- migrate:down
UPDATE labels SET m = 'a' WHERE m = 'c';
UPDATE labels SET m = NULL, note = 'gone' WHERE m = 'c';
UPDATE labels SET note = 'kept' WHERE m = 'c';
DELETE FROM labels WHERE m = 'c';
ALTER TYPE mood RENAME TO mood_old;
CREATE TYPE mood AS ENUM ('a', 'b');
ALTER TABLE items ALTER COLUMN m TYPE mood USING m::text::mood;
ALTER TABLE boxes ALTER COLUMN ms TYPE mood[] USING ms::text[]::mood[];
ALTER TABLE labels ALTER COLUMN m TYPE mood USING m::text::mood;
DROP TYPE mood_old;
$mt$) WHERE step <> 'up'});
is($rows, 'down true , up again true ', 'an UPDATE moving rows off the new value is tested');
$rows = $node->safe_psql('fp_enum', q{SET safe_migrate.policy = off;
SELECT array_to_string(differences, '; ') FROM migrate_test($mt$
-- migrate:up
ALTER TYPE mood ADD VALUE 'c';
-- migrate:down
UPDATE labels SET m = 'c' WHERE id = 5;
$mt$) WHERE step = 'down'});
like($rows, qr/^down failed: migrate_test cannot write into table "labels"/,
	'an UPDATE that may write the new value into the index is refused');
$rows = $node->safe_psql('fp_enum', q{SET safe_migrate.policy = off;
SELECT array_to_string(differences, '; ') FROM migrate_test($mt$
-- migrate:up
ALTER TYPE mood ADD VALUE 'c';
-- migrate:down
UPDATE items SET m = 'a' WHERE m = 'c';
$mt$) WHERE step = 'down'});
like($rows, qr/^down failed: migrate_test cannot write into table "items"/,
	'an UPDATE of a table with a BEFORE UPDATE trigger is refused');
is($node->safe_psql('fp_enum', "SELECT string_agg(id || m::text || note, ',' ORDER BY id) FROM labels"),
	'1ax,2by', 'labels unchanged');

$node->safe_psql('fp_enum', q{INSERT INTO items (id, m) SELECT g, 'b' FROM generate_series(1, 2000) g;
	SELECT count(*) FROM items WHERE m = 'a';});
pass('the index is sound after the tests');
# a table the test creates may take the value: it goes with the rollback
$rows = $node->safe_psql('fp_enum', q{SET safe_migrate.policy = off; SELECT string_agg(step || ' ' || ok, ', ') FROM migrate_test($mt$
-- migrate:up
ALTER TYPE mood ADD VALUE 'c';
CREATE TABLE crates (id int, m mood);
CREATE INDEX crates_m ON crates (m);
INSERT INTO crates VALUES (1, 'c');
-- migrate:down
DROP TABLE crates;
ALTER TYPE mood RENAME TO mood_old;
CREATE TYPE mood AS ENUM ('a', 'b');
ALTER TABLE items ALTER COLUMN m TYPE mood USING m::text::mood;
ALTER TABLE boxes ALTER COLUMN ms TYPE mood[] USING ms::text[]::mood[];
ALTER TABLE labels ALTER COLUMN m TYPE mood USING m::text::mood;
DROP TYPE mood_old;
$mt$)});
is($rows, 'up true, down true, up again true', 'a table the test made may take the new value');

# A plain role tests its own CREATE TABLE: the derived down drops the table
# with an allow line the role could not write itself.
$node->safe_psql('fp_enum', 'GRANT CREATE ON SCHEMA public TO fp_plain');
$rows = as_role($node, 'fp_plain',
	"SELECT string_agg(step || ' ' || ok, ', ') FROM migrate_test('CREATE TABLE mine (id int);')",
	'fp_enum');
is($rows, 'up true, down true, up again true', 'a plain role tests its own derived down');
# a written down script's allow lines are still the role's to be allowed
fails_as_role($node, 'fp_plain', q{\c fp_enum
SELECT * FROM migrate_test($mt$
-- migrate:up
CREATE TABLE mine (id int);
-- migrate:down
-- safe_migrate:allow ban-drop-table the test drops what it made
DROP TABLE mine;
$mt$);},
	qr/may not override rule "ban-drop-table"/, 'a written down script\'s allow line');

ok($dump_count > 0, 'pg_dump ran');
done_testing();
