-- migrate_test: up, down, up again in a transaction that is rolled back.
CREATE TABLE mt_users (id int PRIMARY KEY, name text);
-- Reversible (derived down): down restores exactly, up repeats exactly.
SELECT step, ok, cardinality(differences) AS n FROM migrate_test($$
CREATE TABLE mt_orders (id int PRIMARY KEY, user_id int REFERENCES mt_users (id));
CREATE INDEX mt_orders_user ON mt_orders (user_id);
ALTER TABLE mt_users ADD COLUMN email text;
$$);
SELECT unnest(differences) AS up_added FROM migrate_test($$
CREATE TABLE mt_orders (id int PRIMARY KEY, user_id int REFERENCES mt_users (id));
CREATE INDEX mt_orders_user ON mt_orders (user_id);
ALTER TABLE mt_users ADD COLUMN email text;
$$) WHERE step = 'up';
-- Nothing stays behind.
SELECT to_regclass('mt_orders') AS mt_orders,
       (SELECT count(*) FROM pg_attribute WHERE attrelid = 'mt_users'::regclass AND attname = 'email') AS email;
-- A down script that forgets the table: reported in words.
SELECT step, ok, differences FROM migrate_test($$
-- safe_migrate:allow ban-drop-column the test drops what it added
-- migrate:up
ALTER TABLE mt_users ADD COLUMN nick text;
CREATE TABLE mt_audit (id int);
-- migrate:down
ALTER TABLE mt_users DROP COLUMN nick;
$$);
-- A down script that fails.
SELECT step, ok, differences FROM migrate_test($$
-- migrate:up
CREATE TABLE mt_x (id int);
-- migrate:down
DROP TABLE mt_no_such_table;
$$);
-- Bad input and what cannot be tested this way.
SELECT * FROM migrate_test(NULL);
SELECT * FROM migrate_test('INSERT INTO mt_users VALUES (1);');
SELECT * FROM migrate_test('CREATE INDEX CONCURRENTLY mt_x ON mt_users (name);');
SELECT * FROM migrate_test('SELEC 1');
SELECT * FROM migrate_test($$
-- migrate:up
CREATE TABLE mt_t (id int);
COMMIT;
-- migrate:down
DROP TABLE mt_t;
$$);
-- Derived down scripts name objects as the up script resolved them; what
-- cannot be resolved for certain leaves no down script, with the reason.
CREATE SCHEMA mtq_m;
CREATE SCHEMA mtq_types;
CREATE TYPE mtq_types.mtq_mood AS ENUM ('ok');
CREATE TABLE public.mtq_items (id int PRIMARY KEY);
CREATE TABLE public.mtq_rows (id int);
INSERT INTO public.mtq_rows VALUES (1);
CREATE TABLE public.mtq_a (id int);
CREATE TABLE mtq_m.mtq_b (id int);
CREATE TABLE public.mtq_c (id int CONSTRAINT mtq_c_key UNIQUE);
CREATE TABLE mtq_m.mtq_c (id int);
CREATE FUNCTION public.mtq_evil() RETURNS int LANGUAGE plpgsql
  AS $f$BEGIN PERFORM set_config('search_path', 'public', false); RETURN 1; END$f$;
SET search_path = mtq_m, public, mtq_types;
-- Swapping a table for a new one: the old one is public.mtq_items, the new
-- one mtq_m.mtq_items; down and up again restore exactly.
SELECT step, ok, cardinality(differences) AS n FROM migrate_test($$
-- safe_migrate:allow renaming-table the test swaps a table
ALTER TABLE mtq_items RENAME TO mtq_items_old;
CREATE TABLE mtq_items (id bigint PRIMARY KEY);
$$);
-- The primary key index of a new table takes a name an earlier statement
-- freed: before the CREATE TABLE that index did not exist, so the rename is
-- of public.mtq_items_pkey.
SELECT step, ok, cardinality(differences) AS n FROM migrate_test($$
-- safe_migrate:allow renaming-table the test renames an index
ALTER INDEX mtq_items_pkey RENAME TO mtq_items_pkey_old;
CREATE TABLE mtq_m.mtq_items (id int PRIMARY KEY);
$$);
-- A type name that a later statement makes mean another type.
SELECT * FROM migrate_test($$
CREATE FUNCTION mtq_f(x mtq_mood) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE mtq_mood (id int);
$$);
-- A name that a later statement may have made appear without writing it
-- (the index of a constraint added to a table in a schema earlier on the
-- path: was mtq_m.mtq_c_key there before?).
SELECT * FROM migrate_test($$
-- safe_migrate:allow renaming-table the test renames an index
ALTER INDEX mtq_c_key RENAME TO mtq_c_key_old;
ALTER TABLE mtq_m.mtq_c ADD CONSTRAINT mtq_c_key UNIQUE (id);
$$);
-- But an index renamed before its table is altered is still the one
-- renamed (public.mtq_c_key_old is the only one of that name).
SELECT step, ok, cardinality(differences) AS n FROM migrate_test($$
-- safe_migrate:allow renaming-table the test renames an index
ALTER INDEX mtq_c_key RENAME TO mtq_c_key_old;
ALTER TABLE public.mtq_c ADD COLUMN n int;
$$);
-- A rename whose new name is on the path twice: either could be it.
SELECT * FROM migrate_test($$
-- safe_migrate:allow renaming-table the test renames a table
ALTER TABLE mtq_a RENAME TO mtq_b;
$$);
-- SET in the script.
SELECT * FROM migrate_test($$
SET LOCAL search_path = public;
CREATE TABLE mtq_where (id int);
$$);
-- The search_path changed under the script (here by a function it called).
SELECT * FROM migrate_test($$
ALTER TABLE mtq_rows ADD COLUMN n int DEFAULT public.mtq_evil();
$$);
SHOW search_path;
-- Temporary objects do not outlive the session: no reverse.
SELECT * FROM migrate_test('CREATE TEMP TABLE mtq_tmp (id int);');
CREATE TEMP TABLE mtq_session_tmp (id int);
SELECT * FROM migrate_test('CREATE VIEW mtq_tv AS SELECT id FROM mtq_session_tmp;');
SELECT * FROM migrate_test('CREATE FUNCTION mtq_tf(r mtq_session_tmp) RETURNS int LANGUAGE sql AS ''SELECT 1'';');
-- ADD CONSTRAINT ... USING INDEX takes over an index: dropping the
-- constraint would drop the index too.
SELECT * FROM migrate_test($$
CREATE UNIQUE INDEX mtq_u ON mtq_m.mtq_b (id);
ALTER TABLE mtq_m.mtq_b ADD CONSTRAINT mtq_b_u UNIQUE USING INDEX mtq_u;
$$);
RESET search_path;
DROP TABLE mtq_session_tmp;
SET safe_migrate.policy = off;
DROP TABLE public.mtq_items, public.mtq_rows, public.mtq_a, public.mtq_c;
DROP FUNCTION public.mtq_evil();
DROP SCHEMA mtq_m, mtq_types CASCADE;
RESET safe_migrate.policy;
-- The fingerprint is what pg_dump -s shows: enum labels, row-level security
-- (enabled, policies), comments, column order, ...
CREATE TYPE mt_mood AS ENUM ('a', 'b');
CREATE TABLE mt_notes (id int, body text, m mt_mood);
SET safe_migrate.policy = off;
SELECT step, ok, differences FROM migrate_test($$
-- migrate:up
ALTER TYPE mt_mood ADD VALUE 'c';
CREATE POLICY mt_p ON mt_notes USING (id > 0);
ALTER TABLE mt_notes ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE mt_notes IS 'notes';
-- migrate:down
SELECT 1;
$$);
SELECT step, ok, differences FROM migrate_test($$
-- migrate:up
ALTER TABLE mt_notes DROP COLUMN body;
-- migrate:down
ALTER TABLE mt_notes ADD COLUMN body text;
$$);
-- A down script that uses the value its up added (a real apply commits
-- ADD VALUE first), and restores the type.
SELECT step, ok, differences FROM migrate_test($$
-- migrate:up
ALTER TYPE mt_mood ADD VALUE 'c';
INSERT INTO mt_notes VALUES (1, 'new', 'c');
-- migrate:down
UPDATE mt_notes SET m = 'a' WHERE m = 'c';
ALTER TYPE mt_mood RENAME TO mt_mood_old;
CREATE TYPE mt_mood AS ENUM ('a', 'b');
ALTER TABLE mt_notes ALTER COLUMN m TYPE mt_mood USING m::text::mt_mood;
DROP TYPE mt_mood_old;
$$);
-- Nothing stays: no label, no row.
SELECT enum_range(NULL::mt_mood), (SELECT count(*) FROM mt_notes) AS notes;
-- An index that existed before the test and would keep the new value past
-- the rollback: the write is refused.
CREATE INDEX mt_notes_m ON mt_notes (m);
SELECT step, ok, differences FROM migrate_test($$
-- migrate:up
ALTER TYPE mt_mood ADD VALUE 'c';
-- migrate:down
UPDATE mt_notes SET m = 'a' WHERE m = 'c';
INSERT INTO mt_notes VALUES (1, 'new', 'c');
$$) WHERE step = 'down';
-- ... also when the value was added in a DO block (or a function), which
-- the next top-level ADD VALUE's commit makes usable too; the index stays
-- sound.
CREATE TYPE mt_other AS ENUM ('x');
SELECT step, ok, differences FROM migrate_test($$
-- migrate:up
DO $d$ BEGIN ALTER TYPE mt_mood ADD VALUE 'evil' BEFORE 'a'; END $d$;
ALTER TYPE mt_other ADD VALUE 'y';
INSERT INTO mt_notes VALUES (2, 'new', 'evil');
-- migrate:down
SELECT 1;
$$) WHERE step = 'up';
INSERT INTO mt_notes VALUES (3, 'after', 'a');
SET enable_seqscan = off;
SELECT count(*) FROM mt_notes WHERE m = 'a';
RESET enable_seqscan;
DELETE FROM mt_notes;
DROP TYPE mt_other;
RESET safe_migrate.policy;
-- A role that may not override rules tests its own CREATE TABLE: the derived
-- down's allow line is ours, not the role's.
CREATE ROLE mt_plain;
GRANT CREATE ON SCHEMA public TO mt_plain;
SET ROLE mt_plain;
SELECT step, ok, differences FROM migrate_test('CREATE TABLE mt_plain_t (id int);');
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM mt_plain;
DROP ROLE mt_plain;
SET safe_migrate.policy = off;
DROP TABLE mt_notes;
DROP TYPE mt_mood;
RESET safe_migrate.policy;
-- the down step is judged as a real rollback is, after the up committed:
-- the table the up created is not new to it (a real migrate_rollback of
-- this script is refused by ban-drop-table), and an allow line lets it pass
SELECT step, ok, differences[1] AS first FROM migrate_test($$-- migrate:up
CREATE TABLE mt_rb (id int);
-- migrate:down
DROP TABLE mt_rb;
$$);
SELECT step, ok FROM migrate_test($$-- migrate:up
CREATE TABLE mt_rb (id int);
-- migrate:down
-- safe_migrate:allow ban-drop-table rolling back what the up made
DROP TABLE mt_rb;
$$);
-- the down runs as a real rollback would, in another session: without the
-- temporary objects of the up (or of the caller), which come back afterwards
CREATE TEMP TABLE mt_callers_temp (i int);
SELECT step, ok, differences FROM migrate_test($$-- migrate:up
CREATE TYPE mt_pair AS (a int);
CREATE TEMPORARY TABLE mt_work (x mt_pair);
-- migrate:down
DROP TYPE mt_pair;
$$);
SELECT count(*) FROM mt_callers_temp;
-- an extension is one object, its operator families' members included (as
-- in pg_dump); a down that leaves it is reported by that one line
SELECT step, ok, differences FROM migrate_test($$-- migrate:up
CREATE EXTENSION IF NOT EXISTS pg_trgm;
-- migrate:down
$$);
