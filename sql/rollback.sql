-- migrate_rollback: stored down scripts, newest first.
SELECT version, status FROM migrate_apply($sql$
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
-- migrate:up
CREATE TABLE rb_a (id int);
-- migrate:down
DROP TABLE rb_a;
$sql$, 'rb-1');
SELECT version, status FROM migrate_apply($sql$
-- safe_migrate:allow ban-drop-column the down script drops the column the up script added
-- migrate:up
ALTER TABLE rb_a ADD COLUMN note text;
CREATE INDEX CONCURRENTLY rb_a_note ON rb_a (note);
-- migrate:down
DROP INDEX CONCURRENTLY rb_a_note;
ALTER TABLE rb_a DROP COLUMN note;
$sql$, 'rb-2');
SELECT version, status FROM migrate_apply($sql$
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
-- migrate:up
CREATE TABLE rb_c (id int);
-- migrate:down
DROP TABLE rb_c;
$sql$, 'rb-3');

-- The last one.
SELECT version, status, statements FROM migrate_rollback();
SELECT to_regclass('rb_c') AS rb_c;
-- Everything after rb-1, newest first.
SELECT version, status, statements FROM migrate_rollback('rb-1');
SELECT attname FROM pg_attribute WHERE attrelid = 'rb_a'::regclass AND attnum > 0 ORDER BY attnum;
-- A rolled back version can be applied again.
SELECT version, status FROM migrate_apply($sql$
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
-- migrate:up
CREATE TABLE rb_c (id int);
-- migrate:down
DROP TABLE rb_c;
$sql$, 'rb-3');
-- The safe-DDL policy applies to down scripts too: without its directive
-- this one may not drop the table.
SELECT version, status FROM migrate_apply($sql$
-- migrate:up
CREATE TABLE rb_d (id int);
-- migrate:down
DROP TABLE rb_d;
$sql$, 'rb-3b');
SELECT * FROM migrate_rollback();
SELECT version, status FROM safe_migrate.history WHERE version = 'rb-3b';
SELECT overrides FROM safe_migrate.history WHERE version = 'rb-3' AND status = 'rolled_back';
-- Unknown target.
SELECT * FROM migrate_rollback('no-such-version');
-- A migration without a down script stops the rollback before anything is undone.
SELECT version, status FROM migrate_apply('CREATE TABLE rb_nodown (id int); INSERT INTO rb_nodown VALUES (1);', 'rb-4');
SELECT * FROM migrate_rollback('rb-1');
SELECT to_regclass('rb_c') AS rb_c, to_regclass('rb_nodown') AS rb_nodown;
-- Without a down section, one is derived where the reverse is certain
-- (here: the index, the column, the table, newest first).
SELECT version, status FROM migrate_apply($sql$
CREATE TABLE rb_derived (id int);
ALTER TABLE rb_derived ADD COLUMN note text, ADD CONSTRAINT rb_derived_id CHECK (id > 0);
CREATE INDEX rb_derived_note ON rb_derived (note);
CREATE VIEW rb_derived_v AS SELECT id FROM rb_derived;
CREATE FUNCTION rb_derived_f(a int, b text) RETURNS int LANGUAGE sql AS 'SELECT a';
$sql$, 'rb-derived');
SELECT down_script FROM safe_migrate.migrations WHERE version = 'rb-derived';
SELECT version, status, statements FROM migrate_rollback();
SELECT to_regclass('rb_derived') AS rb_derived, to_regprocedure('rb_derived_f(int, text)') AS f;
-- A failing down script reports which migration it belongs to.
SELECT version, status FROM migrate_apply($sql$
-- migrate:up
CREATE TABLE rb_e (id int);
-- migrate:down
DROP TABLE rb_no_such_table;
$sql$, 'rb-5');
SELECT * FROM migrate_rollback();
SELECT version, status, rolled_back_by IS NOT NULL AS has_by FROM safe_migrate.history
 WHERE version LIKE 'rb-%' ORDER BY id;
