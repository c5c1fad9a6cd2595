-- safe_migrate.ddl_log: every DDL statement on permanent objects, written
-- by the extension's hooks when the transaction commits.  Played by a plain
-- role (sm_log_owner) that owns its schema.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS safe_migrate;
SET client_min_messages = notice;
CREATE ROLE sm_log_owner;
GRANT CREATE ON DATABASE contrib_regression TO sm_log_owner;
CREATE SCHEMA lg AUTHORIZATION sm_log_owner;
-- a watermark: only what follows it is looked at
CREATE TEMP TABLE mark (at timestamptz);
GRANT SELECT ON mark TO PUBLIC;   -- a temporary table's GRANT: not logged
CREATE FUNCTION log_since() RETURNS TABLE (role_name name, command_tag text, object_type text,
                                           object_identity text, statement text, managed boolean)
LANGUAGE sql AS $$
  SELECT role_name, command_tag, object_type, object_identity, statement, managed
    FROM safe_migrate.ddl_log, mark WHERE logged_at > mark.at ORDER BY logged_at
$$;
INSERT INTO mark VALUES (pg_catalog.clock_timestamp());

SET ROLE sm_log_owner;
SET search_path = lg, public;
-- a table with what comes with it: the serial's sequence and the primary
-- key's index get lines (statements of their own inside CREATE TABLE); its
-- row type, constraints, defaults and TOAST table do not
CREATE TABLE t (id serial PRIMARY KEY, v text DEFAULT 'x' CHECK (v <> ''), w int);
-- what ALTER TABLE does to a part is a line for the table
ALTER TABLE t ADD CONSTRAINT t_w_key UNIQUE (w);
ALTER TABLE t ADD COLUMN z int;
CREATE INDEX t_z ON t (z);
CREATE INDEX CONCURRENTLY t_w ON t (w);
COMMENT ON TABLE t IS 'logged';
COMMENT ON COLUMN t.v IS 'the column''s table';
GRANT SELECT ON t TO PUBLIC;
CREATE VIEW tv AS SELECT id, v FROM t;
CREATE TYPE pair AS (a int, b text);
CREATE TYPE mood AS ENUM ('calm');
ALTER TYPE mood ADD VALUE 'glad';
CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';
CREATE TABLE parted (k int) PARTITION BY RANGE (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x;
REFRESH MATERIALIZED VIEW mv;
-- temporary objects are nobody else's business
CREATE TEMP TABLE scratch (a int PRIMARY KEY);
DROP TABLE scratch;
RESET ROLE;
SELECT * FROM public.log_since();
UPDATE mark SET at = pg_catalog.clock_timestamp();

-- renames and moves: the new name
SET safe_migrate.policy = off;
SET ROLE sm_log_owner;
ALTER TABLE t RENAME COLUMN w TO w2;
ALTER TABLE parted_1 RENAME TO parted_low;
CREATE SCHEMA lg2;
ALTER TYPE pair SET SCHEMA lg2;
-- a drop names what went, not the parts that went with it; a view a
-- CASCADE took along is named too
DROP TABLE t CASCADE;
DROP FUNCTION twice(int);
DROP SCHEMA lg2 CASCADE;
ALTER TABLE parted DETACH PARTITION parted_low;
ALTER TABLE parted_low DROP COLUMN k;
RESET ROLE;
RESET safe_migrate.policy;
SELECT * FROM public.log_since();
UPDATE mark SET at = pg_catalog.clock_timestamp();
SET ROLE sm_log_owner;

-- transactions: what commits is logged, once; what rolls back is not; the
-- log shows a transaction's DDL when it commits
BEGIN;
CREATE TABLE kept (a int);
SAVEPOINT s;
CREATE TABLE undone (a int);
ROLLBACK TO s;
CREATE TABLE made_and_dropped (a int);
DROP TABLE made_and_dropped;
RESET ROLE;
SELECT count(*) AS visible_before_commit FROM public.log_since();
SET ROLE sm_log_owner;
COMMIT;
BEGIN;
CREATE TABLE never (a int);
ROLLBACK;
DO $$
BEGIN
  BEGIN
    CREATE TABLE failed_block (a int);
    PERFORM 1 / 0;
  EXCEPTION WHEN division_by_zero THEN NULL;
  END;
  CREATE TABLE from_do (a int);
END $$;
-- one query string: one statement row, however many objects
CREATE TABLE q1 (a int) \; CREATE TABLE q2 (a int);
-- a failed statement logs nothing
CREATE TABLE q1 (a int);
RESET ROLE;
SELECT * FROM public.log_since();
SELECT count(*) AS statement_texts FROM safe_migrate.ddl_entries s, mark
 WHERE s.logged_at > mark.at AND s.statement LIKE 'CREATE TABLE q1%';
UPDATE mark SET at = pg_catalog.clock_timestamp();

-- what an ALTER changes is named as it is when the statement ends: a view,
-- a materialized view, an index (its own line), a partitioned table; a
-- rename inside a DO block names each statement's own name; temporary
-- objects stay out
SET safe_migrate.policy = off;
SET ROLE sm_log_owner;
CREATE VIEW lv AS SELECT 1 AS one;
ALTER VIEW lv ALTER COLUMN one SET DEFAULT 2;
ALTER MATERIALIZED VIEW mv SET (fillfactor = 70);
CREATE INDEX mv_x ON mv (x);
ALTER INDEX mv_x SET (fillfactor = 80);
CREATE TEMP TABLE scratch2 (a int);
CREATE INDEX scratch2_a ON scratch2 (a);
ALTER TABLE scratch2 ADD COLUMN b int;
CREATE TABLE pt (k int, note text) PARTITION BY LIST (k);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES IN (1);
DO $$
BEGIN
  ALTER TABLE pt ADD COLUMN extra int;
  ALTER TABLE pt RENAME TO pt_r;
  ALTER TABLE pt_r ALTER COLUMN note SET DEFAULT 'x';
END $$;
-- a comment names its relation (a column's: the relation); an added column
-- its table (and each partition); a serial column's sequence has a line
COMMENT ON VIEW lv IS 'a view';
COMMENT ON COLUMN lv.one IS 'a view''s column';
COMMENT ON MATERIALIZED VIEW mv IS 'a materialized view';
COMMENT ON INDEX mv_x IS 'an index';
COMMENT ON TABLE scratch2 IS 'temporary: not logged';
ALTER TABLE pt_r ADD COLUMN s serial, ADD COLUMN t text;
ALTER TABLE scratch2 ADD COLUMN c int;
RESET ROLE;
RESET safe_migrate.policy;
SELECT * FROM public.log_since();
UPDATE mark SET at = pg_catalog.clock_timestamp();

-- migrate_apply: managed, with the migration's version; a failed migration
-- logs nothing
SET ROLE sm_log_owner;
SELECT version, status FROM migrate_apply('CREATE TABLE lg.m1 (id int PRIMARY KEY); ALTER TABLE lg.m1 ADD COLUMN n int;', 'log-1');
SELECT version, status FROM migrate_apply('CREATE TABLE lg.m2 (id int); SELECT 1 / 0;', 'log-2');
RESET ROLE;
SELECT command_tag, object_identity, managed, migration_version
  FROM safe_migrate.ddl_log, mark WHERE logged_at > mark.at ORDER BY logged_at;
UPDATE mark SET at = pg_catalog.clock_timestamp();

-- what a session keeps between statements (the quoted name of the schema
-- it last named an object in, its role's name) follows a rename at once
SET safe_migrate.policy = off;
SET ROLE sm_log_owner;
CREATE SCHEMA "Lg Case";
CREATE TABLE "Lg Case".a (x int);
CREATE TABLE "Lg Case".b (x int);
DROP TABLE "Lg Case".a;
ALTER SCHEMA "Lg Case" RENAME TO lg_case;
DROP TABLE lg_case.b;
CREATE TABLE lg_case.c (x int);
RESET ROLE;
ALTER ROLE sm_log_owner RENAME TO sm_log_renamed;
SET ROLE sm_log_renamed;
ALTER TABLE lg_case.c ADD COLUMN y int;
DROP TABLE lg_case.c;
RESET ROLE;
ALTER ROLE sm_log_renamed RENAME TO sm_log_owner;
RESET safe_migrate.policy;
SELECT * FROM public.log_since();
UPDATE mark SET at = pg_catalog.clock_timestamp();

-- a DROP without CASCADE takes only what belongs to the tables it names
-- (triggers, rules, policies, defaults, constraints, row types, and the
-- partitions with theirs): one line per table
SET safe_migrate.policy = off;
SET ROLE sm_log_owner;
CREATE TABLE lg_case.r (id int PRIMARY KEY, v int DEFAULT 1 CHECK (v > 0));
CREATE FUNCTION lg_case.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER r_noop BEFORE INSERT ON lg_case.r FOR EACH ROW EXECUTE FUNCTION lg_case.noop();
CREATE POLICY r_all ON lg_case.r USING (true);
CREATE RULE r_nothing AS ON DELETE TO lg_case.r DO INSTEAD NOTHING;
CREATE TABLE lg_case.p (k int DEFAULT 0 CHECK (k >= 0)) PARTITION BY RANGE (k);
CREATE TABLE lg_case.p1 PARTITION OF lg_case.p FOR VALUES FROM (0) TO (10);
CREATE TRIGGER p1_noop BEFORE INSERT ON lg_case.p1 FOR EACH ROW EXECUTE FUNCTION lg_case.noop();
CREATE VIEW lg_case.rv AS SELECT id FROM lg_case.r;
RESET ROLE;
UPDATE mark SET at = pg_catalog.clock_timestamp();
SET ROLE sm_log_owner;
DROP TABLE lg_case.r, lg_case.p;   -- refused: the view needs r
DROP VIEW lg_case.rv;
DROP TABLE lg_case.r, lg_case.p;
DROP FUNCTION lg_case.noop();
RESET ROLE;
RESET safe_migrate.policy;
SELECT * FROM public.log_since();
UPDATE mark SET at = pg_catalog.clock_timestamp();

-- two-phase commit is not set up here (max_prepared_transactions = 0);
-- a database without the extension logs nothing and pays nothing: see
-- the TAP tests.  DROP EXTENSION takes the log with it, no error.
SET client_min_messages = warning;
SET safe_migrate.policy = off;
DROP SCHEMA lg CASCADE;
DROP SCHEMA lg_case;
DROP TABLE scratch2;
RESET safe_migrate.policy;
DROP FUNCTION log_since();
DROP TABLE mark;
REVOKE CREATE ON DATABASE contrib_regression FROM sm_log_owner;
DELETE FROM safe_migrate.migrations WHERE version LIKE 'log-%';
DROP ROLE sm_log_owner;
