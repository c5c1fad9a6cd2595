# Copyright: safe_migrate authors
#
# Online ALTER COLUMN ... TYPE (issue 13, item 7) with the application
# writing, interrupted at each DDL statement of its steps.  The table: a
# serial integer primary key, an index on (name, id), a foreign key from
# orders.  The script, written naively:
#
#     -- safe_migrate:online
#     ALTER TABLE users ALTER COLUMN id TYPE bigint;
#
# While it runs, pgbench (as a plain role, not the table's owner) inserts
# users, updates them and inserts orders; each of its transactions also
# writes what users must hold into a table of its own (expect), so that
# afterwards every row written during the change can be checked: present,
# with its latest value, under the id it was given.
#
# Each DDL statement of the expanded script (the shadow column, the trigger,
# the proving check, the index builds, every statement of the swap, the
# foreign key's VALIDATE after it) is a stop: the gate of SafeMigrateTest (a
# ddl_command_start event trigger sleeping in the runner at the chosen
# statement) holds the runner there and the test interrupts it by a crash
# (kill -9 of the runner: the server restarts), its termination or a cancel
# of the caller, in turn.
# Applied again, the migration continues from its record (the expansion of
# its first attempt: after the swap, the script expands to something else)
# and completes: id is bigint with its primary key, index, default and
# sequence; the foreign key is there and valid; every row is right; no
# shadow column, trigger, helper constraint or invalid index is left; one
# backfill job; one applied attempt.
# It runs for minutes: scripts/test.sh starts it first.
# tap: long
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_crash_node('online_type');
sub q1 { return $node->safe_psql('postgres', $_[0]) }

q1(q{
	CREATE EXTENSION safe_migrate;
	CREATE ROLE owner LOGIN;
	CREATE ROLE app LOGIN;
	GRANT CREATE ON DATABASE postgres TO owner;
});
install_gate($node, 'owner');

my $script = "-- safe_migrate:online\nALTER TABLE users ALTER COLUMN id TYPE bigint;\n";
sub apply_sql { return "SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$_[0]')" }

# A fresh schema s$i owned by owner, search_path'd by owner and app.
sub setup
{
	my ($s) = @_;
	as_role(
		$node, 'owner', qq{
		CREATE SCHEMA $s;
		GRANT USAGE ON SCHEMA $s TO app;
		SET search_path = $s;
		CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, v int NOT NULL DEFAULT 0);
		CREATE INDEX users_name_id ON users (name, id);
		CREATE TABLE orders (id bigserial PRIMARY KEY, user_id int NOT NULL REFERENCES users (id));
		CREATE INDEX orders_user ON orders (user_id);
		CREATE TABLE expect (id bigint PRIMARY KEY, v int NOT NULL);
		INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 20000) g;
		INSERT INTO expect SELECT id, 0 FROM users;
		INSERT INTO orders (user_id) SELECT g FROM generate_series(1, 20000, 7) g;
		GRANT SELECT, INSERT, UPDATE ON users, orders, expect TO app;
		GRANT USAGE ON ALL SEQUENCES IN SCHEMA $s TO app;
		ANALYZE users, orders, expect;
	});
	q1("ALTER ROLE owner SET search_path = $s, public; ALTER ROLE app SET search_path = $s, public");
}

my $pgbench = $node->installed_command('pgbench');
my $fg = $node->basedir . '/writer.sql';
PostgreSQL::Test::Utils::append_to_file(
	$fg, q{
\set r random(1, 20000)
BEGIN;
UPDATE users SET v = v + 1 WHERE id = :r;
UPDATE expect SET v = v + 1 WHERE id = :r;
WITH n AS (INSERT INTO users (name, v) VALUES ('w', 1) RETURNING id) INSERT INTO expect SELECT id, 1 FROM n;
INSERT INTO orders (user_id) VALUES (:r);
COMMIT;
});
# the application, until stopped (a crash ends it too)
sub start_writer
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ $pgbench, '-n', '-c', '2', '-j', '2', '-R', '200', '-T', '600', '-f', $fg,
		  $node->connstr('postgres') . ' user=app' ],
		'>', \$out, '2>', \$err);
	return [ $h, \$out, \$err ];
}
sub stop_writer
{
	my ($w) = @_;
	eval { $w->[0]->signal('INT') };
	eval { $w->[0]->finish };
}

# the DDL statements of the expanded script, in order (the gate counts them)
setup('probe');
my @plan = split /\n/, as_role($node, 'owner',
	"SELECT sql FROM migrate_plan(\$m\$$script\$m\$) WHERE command NOT IN ('SELECT', 'ANALYZE') ORDER BY statement");
# 22 on PostgreSQL 18: its NOT NULL constraint is renamed back too
my $expected_ddl = $node->safe_psql('postgres', 'SHOW server_version_num') >= 180000 ? 22 : 21;
is(scalar(@plan), $expected_ddl, "the expanded script has $expected_ddl DDL statements") or diag(join("\n", @plan));
like($plan[0], qr/^ALTER TABLE probe\.users ADD COLUMN id_sm_new bigint$/, 'first: the shadow column');
like($plan[-1], qr/^ALTER TABLE probe\.orders VALIDATE CONSTRAINT orders_user_id_fkey$/,
	'last: the foreign key validated again');

# one clean run first: the application's writes during the change
{
	setup('s0');
	my $w = start_writer();
	sleep 1;
	my ($rc, $out, $err) = try_as_role($node, 'owner', apply_sql('type-s0'));
	sleep 1;
	stop_writer($w);
	my $writes = q1("SELECT count(*) FROM s0.expect WHERE id > 20000");
	is($out, 'applied', 'uninterrupted: applied') or diag($err);
	cmp_ok($writes, '>', 100, "uninterrupted: the application wrote meanwhile ($writes users inserted)");
}

my @modes = ('kill -9 of the runner', 'termination of the runner', 'cancel of the caller');
my $psql = $node->installed_command('psql');
my @schemas = ('s0');
for my $k (1 .. scalar(@plan))
{
	# the last (the foreign key's VALIDATE, after the swap committed) by a
	# crash in every version: the resumed attempt must run the recorded
	# expansion, and nothing of the crashed one may lock it out
	my $mode = $k == scalar(@plan) ? $modes[0] : $modes[ ($k - 1) % 3 ];
	my $s = "s$k";
	push @schemas, $s;
	my $stmt = $plan[ $k - 1 ];
	(my $short = $stmt) =~ s/^(\S+ \S+ \S+ \S+ \S+).*/$1/;
	my $label = "stopped at statement $k ($short) by $mode";
	setup($s);
	hold_runner_at($node, $k);
	my $w = start_writer();
	my ($out, $err) = ('', '');
	my $apply = IPC::Run::start(
		[ $psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres') . ' user=owner', '-c',
		  apply_sql("type-$s") ],
		'>', \$out, '2>', \$err);
	ok(runner_held($node), "$label: the runner reached the gate");
	ok(interrupt_runner($node, $mode, "%migrate_apply%type-$s%"), "$label: no runner left");
	$apply->finish;
	stop_writer($w);
	isnt($out, 'applied', "$label: the first apply did not complete") or diag($err);

	$w = start_writer();
	my ($rc, $again, $again_err) = try_as_role($node, 'owner', apply_sql("type-$s"));
	sleep 1;
	stop_writer($w);
	is($again, 'applied', "$label: applied again, the migration completes") or diag($again_err);
}

# USING: the new column computed from the row by the expression.  The
# application renames users and adds new ones while the change runs, up to
# the swap (the runner is held at its DROP COLUMN meanwhile); afterwards
# every row holds the expression of its latest name.  Once uninterrupted,
# once by a crash of the runner at the trigger's creation and applied again
# (the resumed attempt recognizes its own shadow column and trigger, whose
# expression it compares).
my $using_script =
  "-- safe_migrate:online\nALTER TABLE tags ALTER COLUMN name TYPE varchar(40) USING upper(name) || '!' || v;\n";
my $renamer = $node->basedir . '/renamer.sql';
PostgreSQL::Test::Utils::append_to_file(
	$renamer, q{
\set r random(1, 5000)
BEGIN;
UPDATE tags SET name = 'x' || :r, v = v + 1 WHERE id = :r;
UPDATE tag_expect SET name = 'x' || :r, v = v + 1 WHERE id = :r;
WITH n AS (INSERT INTO tags (name) VALUES ('n' || :r) RETURNING id, name, v) INSERT INTO tag_expect SELECT * FROM n;
COMMIT;
});
foreach my $case ([ 'u0', 0 ], [ 'u1', 1 ])
{
	my ($s, $crash) = @$case;
	my $label = $crash ? 'USING, crashed at the trigger and applied again' : 'USING, uninterrupted';
	as_role(
		$node, 'owner', qq{
		CREATE SCHEMA $s;
		GRANT USAGE ON SCHEMA $s TO app;
		SET search_path = $s;
		CREATE TABLE tags (id serial PRIMARY KEY, name text NOT NULL, v int NOT NULL DEFAULT 0);
		CREATE INDEX tags_name ON tags (name);
		CREATE TABLE tag_expect (id int PRIMARY KEY, name text NOT NULL, v int NOT NULL);
		INSERT INTO tags (name) SELECT 't' || g FROM generate_series(1, 5000) g;
		INSERT INTO tag_expect SELECT * FROM tags;
		GRANT SELECT, INSERT, UPDATE ON tags, tag_expect TO app;
		GRANT USAGE ON ALL SEQUENCES IN SCHEMA $s TO app;
		ANALYZE tags;
	});
	q1("ALTER ROLE owner SET search_path = $s, public; ALTER ROLE app SET search_path = $s, public");
	my @numbered = map { [ split /\|/, $_, 2 ] } split /\n/, as_role($node, 'owner',
		"SELECT statement, sql FROM migrate_plan(\$m\$$using_script\$m\$) WHERE command NOT IN ('SELECT', 'ANALYZE') ORDER BY statement");
	my @ddl = map { $_->[1] } @numbered;
	my ($drop) = grep { $ddl[ $_ - 1 ] =~ /DROP COLUMN name$/ } 1 .. scalar(@ddl);
	my ($trigger) = grep { $ddl[ $_ - 1 ] =~ /^CREATE TRIGGER .*sync_column\('name', 'name_sm_new', '\(\(upper\(name\)/ } 1 .. scalar(@ddl);
	ok($drop && $trigger, "$label: the plan has the trigger with the expression and the swap") or diag(join("\n", @ddl));
	my $apply_sql = "SELECT status FROM migrate_apply(\$m\$$using_script\$m\$, 'using-$s')";
	my $w;
	my $start = sub {
		my ($out, $err) = ('', '');
		$w = IPC::Run::start(
			[ $pgbench, '-n', '-c', '2', '-j', '2', '-R', '200', '-T', '600', '-f', $renamer,
			  $node->connstr('postgres') . ' user=app' ],
			'>', \$out, '2>', \$err);
	};
	if ($crash)
	{
		hold_runner_at($node, $trigger);
		my ($out, $err) = ('', '');
		my $apply = IPC::Run::start(
			[ $psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres') . ' user=owner', '-c', $apply_sql ],
			'>', \$out, '2>', \$err);
		runner_held($node) or die 'the runner did not reach the gate';
		interrupt_runner($node, 'kill -9 of the runner') or die 'a runner is left';
		$apply->finish;
		isnt($out, 'applied', "$label: the first attempt did not complete");
	}
	# the second (or only) attempt, held at the swap while the application writes
	# the gate counts the DDL statements this attempt runs: after the
	# statements the first one committed
	my $committed = q1(
		"SELECT coalesce(max(s.last_statement), 0) FROM safe_migrate.migration_steps s "
		  . "JOIN safe_migrate.migrations m ON m.id = s.migration_id WHERE m.version = 'using-$s'");
	my $skipped = grep { $_->[0] <= $committed } @numbered;
	hold_runner_at($node, $drop - $skipped);
	$start->();
	my ($out, $err) = ('', '');
	my $apply = IPC::Run::start(
		[ $psql, '-X', '-q', '-A', '-t', '-d', $node->connstr('postgres') . ' user=owner', '-c', $apply_sql ],
		'>', \$out, '2>', \$err);
	ok(runner_held($node), "$label: held at the swap");
	sleep 1;
	stop_writer([$w]);
	release_runner($node);
	$apply->finish;
	hold_runner_at($node, 0);
	chomp $out;
	is($out, 'applied', "$label: applied") or diag($err);
	my $written = q1("SELECT count(*) FROM $s.tag_expect WHERE id > 5000");
	cmp_ok($written, '>', 50, "$label: the application wrote meanwhile ($written new rows)");
	is( q1(
			"SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '$s.tags'::regclass AND attname = 'name'"),
		'character varying(40)', "$label: the new type");
	is( q1(
			"SELECT count(*) || ',' || count(*) FILTER (WHERE t.name IS DISTINCT FROM upper(e.name) || '!' || e.v) "
			  . "|| ',' || (SELECT count(*) FROM $s.tags) FROM $s.tag_expect e LEFT JOIN $s.tags t USING (id)"),
		q1("SELECT count(*) FROM $s.tag_expect") . ',0,' . q1("SELECT count(*) FROM $s.tag_expect"),
		"$label: every row holds the expression of its latest name");
	is( q1(
			"SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = '$s.tags'::regclass AND attname LIKE '%sm_new%' "
			  . "AND NOT attisdropped) || ',' || (SELECT count(*) FROM pg_trigger WHERE tgrelid = '$s.tags'::regclass "
			  . "AND NOT tgisinternal) || ',' || (SELECT count(*) FROM pg_index WHERE indrelid = '$s.tags'::regclass "
			  . "AND indisvalid)"),
		'0,0,2', "$label: no shadow column or trigger left, both indexes valid");
}
# every schema: the state the naive statement leaves, every write present
foreach my $s (@schemas)
{
	my $label = $s eq 's0' ? 'uninterrupted' : "interrupted at statement " . substr($s, 1);
	is( q1(
			"SELECT format_type(a.atttypid, a.atttypmod) || ',' || a.attnotnull || ',' || "
			  . "pg_get_expr(d.adbin, d.adrelid) || ',' || pg_get_serial_sequence('$s.users', 'id') "
			  . "FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
			  . "WHERE a.attrelid = '$s.users'::regclass AND a.attname = 'id'"),
		"bigint,true,nextval('$s.users_id_seq'::regclass),$s.users_id_seq",
		"$label: id is bigint, NOT NULL, its default and sequence");
	is( q1(
			"SELECT string_agg(pg_get_indexdef(indexrelid) || ' ' || indisvalid || ' ' || indisprimary, '; ' "
			  . "ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = '$s.users'::regclass"),
		"CREATE INDEX users_name_id ON $s.users USING btree (name, id) true false; "
		  . "CREATE UNIQUE INDEX users_pkey ON $s.users USING btree (id) true true",
		"$label: the primary key and the index, valid, on the new column");
	is( q1(
			"SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated, '; ') "
			  . "FROM pg_constraint WHERE conrelid = '$s.orders'::regclass AND contype = 'f'"),
		"orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES $s.users(id) true",
		"$label: the foreign key is back and valid");
	is( q1(
			"SELECT count(*) || ',' || count(*) FILTER (WHERE u.id IS NULL OR u.v <> e.v) || ',' || "
			  . "(SELECT count(*) FROM $s.users) FROM $s.expect e LEFT JOIN $s.users u ON u.id = e.id"),
		q1("SELECT count(*) FROM $s.expect") . ',0,' . q1("SELECT count(*) FROM $s.expect"),
		"$label: every row written, before and during the change, present with its latest value");
	is( q1(
			"SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = '$s.users'::regclass "
			  . "AND attname LIKE '%sm_new%' AND NOT attisdropped) || ',' || "
			  . "(SELECT count(*) FROM pg_trigger WHERE tgrelid = '$s.users'::regclass AND NOT tgisinternal) "
			  . "|| ',' || (SELECT count(*) FROM pg_constraint WHERE connamespace = '$s'::regnamespace "
			  . "AND conname LIKE '%safe_migrate%') || ',' || (SELECT count(*) FROM pg_index i "
			  . "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = '$s'::regnamespace "
			  . "AND NOT i.indisvalid)"),
		'0,0,0,0', "$label: no shadow column, trigger, helper constraint or invalid index left");
	is( q1(
			"SELECT count(*) FILTER (WHERE status = 'completed' AND operation = 'update') || ',' || "
			  . "count(*) FILTER (WHERE operation = 'update') || ',' || "
			  . "count(*) FILTER (WHERE operation = 'vacuum') "
			  . "FROM safe_migrate.backfills WHERE relation = '$s.users'"),
		'1,1,1', "$label: one backfill job, one vacuum job queued by the last step");
	is( q1(
			"SELECT count(*) FILTER (WHERE status = 'applied') || ',' || "
			  . "bool_and(steps_committed = steps) FILTER (WHERE status = 'applied') "
			  . "FROM safe_migrate.migrations WHERE version = 'type-$s'"),
		'1,true', "$label: one applied attempt, every step committed");
}

$node->stop;
done_testing();
