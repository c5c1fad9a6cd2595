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

-- Derived down scripts name every object schema-qualified, as the up
-- script resolved it when it ran: a rollback from a session whose
-- search_path finds another object of the same name first undoes the right
-- one.  Here the migration runs with search_path = rbq_m, public, rbq_types
-- where public already has rbq_accounts, rbq_orders, rbq_shared and
-- "RbQ Order", and rbq_m has its own rbq_shared.
CREATE SCHEMA rbq_m;
CREATE SCHEMA rbq_types;
CREATE SCHEMA "RbQ Odd";
CREATE TYPE rbq_types.rbq_mood AS ENUM ('ok', 'bad');
CREATE TABLE public.rbq_accounts (id int);
INSERT INTO public.rbq_accounts SELECT generate_series(1, 1000);
CREATE TABLE public.rbq_orders (id int);
CREATE TABLE public.rbq_shared (id int);
CREATE TABLE rbq_m.rbq_shared (id int);
CREATE TABLE public."RbQ Order" (id int);
SET search_path = rbq_m, public, rbq_types;
SELECT version, status FROM migrate_apply($sql$
-- safe_migrate:allow renaming-table the test swaps a table for a new one
-- safe_migrate:allow renaming-column the test renames a column
CREATE TABLE rbq_accounts (id int, note text);
CREATE TABLE "MixedCase" ("Id" int, "select" text);
CREATE TABLE "user" (id int);
CREATE TABLE "RbQ Odd"."Odd Table" (id int);
ALTER TABLE rbq_shared ADD COLUMN extra int, ADD CONSTRAINT rbq_shared_pos CHECK (id > 0);
ALTER TABLE rbq_orders ADD COLUMN total numeric;
CREATE INDEX rbq_orders_total ON rbq_orders (total);
CREATE INDEX "Idx" ON "MixedCase" ("Id");
CREATE VIEW rbq_v AS SELECT id FROM rbq_orders;
CREATE SEQUENCE rbq_seq;
CREATE FUNCTION rbq_f(x rbq_mood, y int, z text[], OUT r int) LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION "RbQ Odd"."F"(a "MixedCase", VARIADIC b int[]) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE PROCEDURE rbq_p(IN a int, OUT b int) LANGUAGE plpgsql AS 'BEGIN b := a; END';
ALTER TABLE "RbQ Order" RENAME COLUMN id TO "Order ID";
ALTER TABLE rbq_orders RENAME TO rbq_orders_old;
CREATE TABLE rbq_orders (id bigint);
$sql$, 'rbq-1');
-- rbq_m: the created tables, view, sequence, functions, the index of
-- "MixedCase"; public: the column, index and rename of rbq_orders (found
-- through the path), the column rename; rbq_types.rbq_mood as an argument
-- type; the procedure's OUT argument is no part of its signature.
SELECT down_script FROM safe_migrate.migrations WHERE version = 'rbq-1';
-- Rolled back from a session whose search_path finds public first.
SET search_path = public, rbq_types, rbq_m;
SELECT version, status, statements FROM migrate_rollback();
SELECT count(*) AS public_rbq_accounts FROM public.rbq_accounts;
SELECT n.nspname, c.relname, c.relkind,
       (SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) AS columns
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('rbq_m', 'RbQ Odd') OR c.relname LIKE 'rbq%' OR c.relname LIKE 'RbQ%'
 ORDER BY 1, 2;
SELECT count(*) AS functions_left FROM pg_proc
 WHERE pronamespace IN ('rbq_m'::regnamespace, '"RbQ Odd"'::regnamespace);
-- A rename chain and a migration run by the background runner (CREATE
-- INDEX CONCURRENTLY): the table is created, indexed and renamed; its
-- reverse renames it back and drops it under its first name.
SET search_path = rbq_m, public;
SELECT version, status FROM migrate_apply($sql$
-- safe_migrate:allow renaming-table the test renames the table it created
CREATE TABLE rbq_accounts (id int, note text);
CREATE INDEX CONCURRENTLY rbq_accounts_note ON rbq_accounts (note);
ALTER TABLE rbq_accounts RENAME TO rbq_accounts_new;
$sql$, 'rbq-2');
SELECT down_script FROM safe_migrate.migrations WHERE version = 'rbq-2';
SET search_path = public, rbq_m;
SELECT version, status, statements FROM migrate_rollback();
SELECT to_regclass('rbq_m.rbq_accounts') AS m_accounts,
       to_regclass('rbq_m.rbq_accounts_new') AS m_accounts_new,
       (SELECT count(*) FROM public.rbq_accounts) AS public_rbq_accounts;
-- What cannot be named for certain gets no down script (the reasons:
-- prove.sql); a SET search_path in the script is one.
SET search_path = rbq_m, public;
SELECT version, status FROM migrate_apply($sql$
SET LOCAL search_path = public;
CREATE TABLE rbq_where (id int);
$sql$, 'rbq-3');
SELECT down_script IS NULL AS no_down FROM safe_migrate.migrations WHERE version = 'rbq-3';
RESET search_path;
SET safe_migrate.policy = off;
DROP TABLE public.rbq_where, public.rbq_accounts, public.rbq_orders, public.rbq_shared,
  public."RbQ Order";
DROP SCHEMA rbq_m, rbq_types, "RbQ Odd" CASCADE;
RESET safe_migrate.policy;

-- Issue 11, real files.
-- A down section wrapped in its own BEGIN; ... COMMIT; runs as one
-- transaction too.
SELECT version, status FROM migrate_apply($sql$
-- migrate:up
BEGIN;
CREATE TABLE rbw_a (id int);
CREATE TABLE rbw_b (id int);
COMMIT;
-- migrate:down
BEGIN;
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
DROP TABLE rbw_b;
DROP TABLE rbw_a;
COMMIT;
$sql$, 'rbw-1');
SELECT version, status, statements FROM migrate_rollback();
SELECT to_regclass('rbw_a') AS rbw_a, to_regclass('rbw_b') AS rbw_b;
-- An up section that is empty or only comments, with a down section,
-- records the version; its down script runs on rollback.
CREATE TABLE rbe_legacy (id int);
CREATE TABLE rbe_data (id int);
SELECT version, status, statements FROM migrate_apply($sql$
-- migrate:up
-- rbe_legacy was created by hand before migrations existed

-- migrate:down
-- safe_migrate:allow ban-drop-table the table belongs to this migration
DROP TABLE rbe_legacy;
$sql$, 'rbe-1');
-- An explicitly empty (or comments-only) down section means "nothing to
-- undo": a data-only migration rolls back fine.
SELECT version, status, statements FROM migrate_apply($sql$
-- migrate:up
INSERT INTO rbe_data VALUES (1);
-- migrate:down
$sql$, 'rbe-2');
SELECT version, status, statements FROM migrate_apply($sql$
-- migrate:up
INSERT INTO rbe_data VALUES (2);
-- migrate:down
-- the rows stay: nothing to undo
$sql$, 'rbe-3');
-- Both sections empty: recorded, nothing to do either way (dbmate).
SELECT version, status, statements FROM migrate_apply(E'-- migrate:up\n-- migrate:down\n', 'rbe-4');
SELECT version, has_down, down_script FROM safe_migrate.history WHERE version LIKE 'rbe-%' ORDER BY id;
SELECT version, status, statements FROM migrate_rollback('rbe-2');
SELECT version, status, statements FROM migrate_rollback();
SELECT count(*) AS rows_kept FROM rbe_data;
SELECT version, status, statements FROM migrate_rollback();
SELECT to_regclass('rbe_legacy') AS rbe_legacy;
-- A missing down section keeps its meaning: derived, or refused.
SELECT version, status FROM migrate_apply(E'-- migrate:up\nINSERT INTO rbe_data VALUES (3);\n', 'rbe-5');
SELECT * FROM migrate_rollback();
-- Without statements and without a down section there is nothing to record.
SELECT * FROM migrate_apply(E'-- migrate:up\n-- nothing\n', 'rbe-6');
SELECT * FROM migrate_apply(E'BEGIN;\nCOMMIT;\n', 'rbe-6');
-- migrate_rollback(to_version) trims its version as migrate_apply does.
SELECT version, status FROM migrate_apply(E'-- migrate:up\n-- migrate:down\n', 'rbe-7');
SELECT version, status FROM migrate_rollback('  rbe-5 ');
SELECT * FROM migrate_rollback(' ');
