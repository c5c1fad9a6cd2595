-- Doors to the same damage: the policy judges what PostgreSQL will do to
-- which table, not how the statement is spelled.  Every case is played by
-- sm_door_owner, a plain role that owns the tables (no override rights).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS safe_migrate;
SET client_min_messages = notice;
CREATE ROLE sm_door_owner;
GRANT CREATE ON DATABASE contrib_regression TO sm_door_owner;
SET ROLE sm_door_owner;
CREATE SCHEMA door AUTHORIZATION sm_door_owner;
CREATE SCHEMA elsewhere;
CREATE TABLE door.big (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
INSERT INTO door.big SELECT g, 'v' || g FROM generate_series(1, 2000) g;
ANALYZE door.big;
CREATE VIEW door.big_view AS SELECT id FROM door.big;

-- Renames, judged by the object's real kind
ALTER INDEX door.big RENAME TO big_renamed;                  -- renames the table
ALTER VIEW door.big RENAME COLUMN v TO w;                    -- a column of the table
ALTER MATERIALIZED VIEW door.big RENAME COLUMN v TO w;
ALTER FOREIGN TABLE door.big RENAME COLUMN v TO w;
ALTER TYPE door.big RENAME ATTRIBUTE v TO w;
ALTER TABLE door.big SET SCHEMA elsewhere;                   -- moved away from its name
ALTER SCHEMA door RENAME TO door_old;                        -- every table of the schema moves
-- PostgreSQL's own errors stay PostgreSQL's
ALTER VIEW door.big RENAME TO big_renamed;
ALTER SEQUENCE door.big SET SCHEMA elsewhere;
ALTER TABLE door.big SET SCHEMA door;                        -- no move: nothing to judge
-- what is not a table, and what is new, stays free
ALTER INDEX door.big_pkey RENAME TO big_pk;
ALTER VIEW door.big_view RENAME COLUMN id TO big_id;
ALTER TABLE door.big_view SET SCHEMA elsewhere;
ALTER VIEW elsewhere.big_view SET SCHEMA door;
BEGIN;
CREATE SCHEMA fresh;
CREATE TABLE fresh.t (a int);
INSERT INTO fresh.t VALUES (1);
ALTER SCHEMA fresh RENAME TO fresh2;
ALTER TABLE fresh2.t SET SCHEMA door;
ALTER INDEX door.t RENAME TO t2;
ALTER VIEW door.t2 RENAME COLUMN a TO b;
ROLLBACK;

-- ALTER TYPE ... CASCADE changes the columns of the type's typed tables:
-- judged as the ALTER TABLE of each (renamed, rewritten, indexes rebuilt,
-- dropped); what touches no typed table stays free.
RESET ROLE;
SET safe_migrate.large_table_rows = 1000;                      -- (a superuser's setting)
SET ROLE sm_door_owner;
SET timezone = 'UTC';
CREATE TYPE door.row_t AS (id int, at timestamp, name text, extra int);
CREATE TABLE door.typed OF door.row_t (PRIMARY KEY (id)) WITH (autovacuum_enabled = false);
CREATE INDEX typed_at ON door.typed (at);
INSERT INTO door.typed SELECT g, timestamp '2026-01-01', 'n' || g, g FROM generate_series(1, 2000) g;
ANALYZE door.typed;
ALTER TYPE door.row_t RENAME ATTRIBUTE name TO full_name CASCADE;   -- renames door.typed.name
ALTER TYPE door.row_t ALTER ATTRIBUTE at TYPE timestamptz CASCADE;  -- rebuilds typed_at
ALTER TYPE door.row_t ALTER ATTRIBUTE id TYPE bigint CASCADE;       -- rewrites door.typed
ALTER TYPE door.row_t DROP ATTRIBUTE extra CASCADE;                 -- drops door.typed.extra
ALTER TYPE door.row_t RENAME ATTRIBUTE name TO full_name;          -- PostgreSQL's own error
ALTER TYPE door.row_t ADD ATTRIBUTE more int CASCADE;               -- a new column: free
SELECT statement, relation, effect, verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
ALTER TYPE door.row_t RENAME ATTRIBUTE name TO full_name CASCADE;
ALTER TYPE door.row_t ALTER ATTRIBUTE at TYPE timestamptz CASCADE;
ALTER TYPE door.row_t ALTER ATTRIBUTE id TYPE bigint CASCADE;
ALTER TYPE door.row_t DROP ATTRIBUTE extra CASCADE;
$$);
CREATE TYPE door.lone_t AS (a int);
ALTER TYPE door.lone_t RENAME ATTRIBUTE a TO b CASCADE;           -- no typed table: free

-- SET TABLESPACE copies what it moves under ACCESS EXCLUSIVE, whatever the
-- statement's spelling: an index (every query on its table waits: REINDEX
-- moves it online), a materialized view, each relation ALL IN TABLESPACE
-- moves; where it already is, nothing is copied.
RESET ROLE;
SET allow_in_place_tablespaces = true;
CREATE TABLESPACE sm_door_ts LOCATION '';
RESET allow_in_place_tablespaces;
GRANT CREATE ON TABLESPACE sm_door_ts TO sm_door_owner;
SET ROLE sm_door_owner;
CREATE MATERIALIZED VIEW door.big_mv AS SELECT id FROM door.big;
ANALYZE door.big_mv;
ALTER INDEX door.big_pk SET TABLESPACE sm_door_ts;           -- every query on door.big waits
ALTER TABLE door.big_pk SET TABLESPACE sm_door_ts;           -- the same, spelled ALTER TABLE
-- (a materialized view's size differs between server versions: its
-- refusals are shown without it)
\set VERBOSITY sqlstate
ALTER MATERIALIZED VIEW door.big_mv SET TABLESPACE sm_door_ts;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9]+ kB', 'N kB') AS refused;
\set VERBOSITY default
ALTER INDEX ALL IN TABLESPACE pg_default OWNED BY sm_door_owner SET TABLESPACE sm_door_ts;
ALTER TABLE ALL IN TABLESPACE pg_default OWNED BY sm_door_owner SET TABLESPACE sm_door_ts;
\set VERBOSITY sqlstate
ALTER MATERIALIZED VIEW ALL IN TABLESPACE pg_default OWNED BY sm_door_owner SET TABLESPACE sm_door_ts;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '[0-9]+ kB', 'N kB') AS refused;
\set VERBOSITY default
\set VERBOSITY sqlstate
-- an index of another role among them: PostgreSQL refuses the whole statement
ALTER INDEX ALL IN TABLESPACE pg_default SET TABLESPACE sm_door_ts;
\set VERBOSITY default
ALTER INDEX door.big_pk SET TABLESPACE pg_default;           -- where it is: free
ALTER INDEX door.big_pk SET TABLESPACE sm_door_no_such;      -- PostgreSQL's own error
SELECT statement, relation, lock_mode, rows::bigint, effect, verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
ALTER INDEX door.big_pk SET TABLESPACE sm_door_ts;
ALTER MATERIALIZED VIEW door.big_mv SET TABLESPACE sm_door_ts;
ALTER TABLE ALL IN TABLESPACE pg_default OWNED BY sm_door_owner SET TABLESPACE sm_door_ts;
ALTER INDEX door.big_pk SET TABLESPACE pg_default;
$$);
DROP MATERIALIZED VIEW door.big_mv;
RESET timezone;
RESET ROLE;
RESET safe_migrate.large_table_rows;
SET ROLE sm_door_owner;

-- ALTER TYPE ... RENAME VALUE changes what every stored row holding the old
-- label reads back as: judged on each existing table's column that holds the
-- enum (directly, as an array, through a domain); ADD VALUE stays free.
CREATE TYPE door.state AS ENUM ('new', 'done');
CREATE DOMAIN door.state_d AS door.state;
CREATE TABLE door.jobs (id int, st door.state, hist door.state[], sd door.state_d);
INSERT INTO door.jobs VALUES (1, 'new', '{new}', 'done');
ANALYZE door.jobs;
ALTER TYPE door.state RENAME VALUE 'new' TO 'fresh';                 -- refused (st, hist, sd)
ALTER TYPE door.state ADD VALUE 'failed';                            -- free
ALTER TYPE door.state RENAME VALUE 'nope' TO 'x';                    -- PostgreSQL's own error
ALTER TYPE door.state RENAME VALUE 'new' TO 'done';                  -- PostgreSQL's own error
SELECT statement, verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$ALTER TYPE door.state RENAME VALUE 'done' TO 'finished';$$);
BEGIN;                                                               -- a type only new tables use
CREATE TYPE door.fresh_state AS ENUM ('a');
CREATE TABLE door.fresh_jobs (st door.fresh_state);
INSERT INTO door.fresh_jobs VALUES ('a');
ALTER TYPE door.fresh_state RENAME VALUE 'a' TO 'b';
ROLLBACK;
-- held inside a composite type a column has
CREATE TYPE door.level AS ENUM ('low', 'high');
CREATE TYPE door.leveled AS (l door.level, note text);
CREATE TABLE door.readings (id int, r door.leveled);
INSERT INTO door.readings VALUES (1, ROW('low', 'x'));
ALTER TYPE door.level RENAME VALUE 'low' TO 'lo';                    -- refused (r)

-- Drops judged on every table and column that goes, whatever the statement
-- names (the object access hook sees each before PostgreSQL deletes it)
CREATE DOMAIN door.code AS text;
CREATE TYPE door.mood AS ENUM ('ok', 'sad');
CREATE FUNCTION door.twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2';
ALTER TABLE door.big ADD COLUMN code door.code, ADD COLUMN mood door.mood,
    ADD COLUMN doubled int GENERATED ALWAYS AS (door.twice(id)) STORED;
DROP SCHEMA door CASCADE;                                    -- drops door.big with it
CREATE SCHEMA door_types;
CREATE TYPE door_types.size AS ENUM ('s', 'm', 'l');
ALTER TABLE door.big ADD COLUMN size door_types.size;
DROP SCHEMA door_types CASCADE;                              -- drops a column of door.big
DROP DOMAIN door.code CASCADE;                               -- drops column code
DROP TYPE door.mood CASCADE;                                 -- drops column mood
DROP FUNCTION door.twice(int) CASCADE;                       -- drops the generated column
DROP OWNED BY sm_door_owner;                                 -- drops everything it owns
CREATE SCHEMA door_ext;
CREATE EXTENSION citext SCHEMA door_ext;                     -- (a trusted extension)
ALTER TABLE door.big ADD COLUMN email door_ext.citext;
DROP EXTENSION citext CASCADE;                               -- drops column email
ALTER EXTENSION citext ADD TABLE door.big;                   -- DROP EXTENSION would drop it
BEGIN;
CREATE TABLE door.ext_new (a int);
ALTER EXTENSION citext ADD TABLE door.ext_new;               -- new: free
ROLLBACK;
BEGIN;
CREATE TABLE door.parent ();
ALTER TABLE door.big INHERIT door.parent;
DROP TABLE door.parent CASCADE;                              -- the new parent takes big along
ROLLBACK;
-- what goes is new, or is no table: free
BEGIN;
CREATE SCHEMA scratch;
CREATE TABLE scratch.t (a int, c door.code);
INSERT INTO scratch.t VALUES (1, 'x');
CREATE VIEW door.scratch_view AS SELECT a FROM scratch.t;
DROP DOMAIN door.code CASCADE;                               -- still refused: big.code goes too
ROLLBACK;
BEGIN;
CREATE SCHEMA scratch;
CREATE TABLE scratch.t (a int, c door.mood);
INSERT INTO scratch.t VALUES (1, 'ok');
CREATE VIEW door.scratch_view AS SELECT a FROM scratch.t;
ALTER TABLE door.big DROP COLUMN mood;                       -- (refused on its own)
ROLLBACK;
BEGIN;
CREATE SCHEMA scratch;
CREATE TABLE scratch.t (a int, b int GENERATED ALWAYS AS (a + 1) STORED);
INSERT INTO scratch.t VALUES (1);
CREATE VIEW scratch.v AS SELECT a FROM scratch.t;
ALTER TABLE scratch.t DROP COLUMN a CASCADE;                 -- new table: b goes freely
DROP SCHEMA scratch CASCADE;
COMMIT;
DROP VIEW door.big_view;

-- TRUNCATE judged on every table it empties
BEGIN;
CREATE TABLE door.parent ();
ALTER TABLE door.big INHERIT door.parent;
TRUNCATE door.parent;                                        -- empties door.big
ROLLBACK;
BEGIN;
CREATE TABLE door.parent ();
ALTER TABLE door.big INHERIT door.parent;
TRUNCATE ONLY door.parent;                                   -- the parent alone: free
ROLLBACK;
BEGIN;
CREATE TABLE door.lookup (id int PRIMARY KEY);
ALTER TABLE door.big ADD CONSTRAINT big_id_fkey FOREIGN KEY (id) REFERENCES door.lookup NOT VALID;
TRUNCATE door.lookup CASCADE;                                -- empties door.big through the key
ROLLBACK;
BEGIN;
CREATE TABLE door.lookup (id int PRIMARY KEY);
CREATE TABLE door.child (id int REFERENCES door.lookup);
INSERT INTO door.child VALUES (NULL);
TRUNCATE door.lookup CASCADE;                                -- only new tables: free
ROLLBACK;

-- DROP DATABASE (its size varies: only the SQLSTATE is shown, then the
-- message without it)
RESET ROLE;
ALTER ROLE sm_door_owner CREATEDB;
SET ROLE sm_door_owner;
CREATE DATABASE sm_door_scratch;
\set VERBOSITY sqlstate
DROP DATABASE sm_door_scratch;
\set VERBOSITY default
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', '\(\d+ \w+\)$', '(size)') AS error;
DROP DATABASE IF EXISTS sm_door_no_such;                     -- PostgreSQL's own notice
RESET ROLE;
SET safe_migrate.policy = off;
DROP DATABASE sm_door_scratch;
RESET safe_migrate.policy;
SET ROLE sm_door_owner;

-- An administrator's allow line covers the migration's own statements, not
-- code of another role that runs inside them.  sm_door_owner's trigger on
-- door.log drops door.victim whenever a row is logged.
CREATE TABLE door.victim (id int);
INSERT INTO door.victim SELECT generate_series(1, 100);
CREATE TABLE door.log (id int);
CREATE FUNCTION door.log_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE 'DROP TABLE door.victim';
    RETURN NEW;
END
$f$;
CREATE TRIGGER log_insert BEFORE INSERT ON door.log FOR EACH ROW EXECUTE FUNCTION door.log_trigger();
GRANT ALL ON door.log TO PUBLIC;
RESET ROLE;
SELECT version, status FROM migrate_apply($m$
-- safe_migrate:allow ban-drop-table the old audit table goes
CREATE TABLE door_admin_audit (id int);
INSERT INTO door.log VALUES (1);
$m$, 'door-scope-1');
-- the same in the runner (CREATE INDEX CONCURRENTLY cannot run in a
-- transaction block: the migration runs in a background session)
SELECT version, status FROM migrate_apply($m$
-- safe_migrate:allow ban-drop-table the old audit table goes
CREATE INDEX CONCURRENTLY log_id ON door.log (id);
INSERT INTO door.log VALUES (1);
$m$, 'door-scope-runner');
SELECT count(*) AS victim_rows FROM door.victim;
SELECT migrate_abandon('door-scope-runner') IS NOT NULL AS abandoned;
-- the administrator's own statements, and functions of an administrator,
-- are covered
CREATE FUNCTION door_admin_drop() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE 'DROP TABLE door.victim';
END
$f$;
SELECT version, status FROM migrate_apply($m$
-- safe_migrate:allow ban-drop-table the old audit table goes
SELECT door_admin_drop();
$m$, 'door-scope-2');
CREATE TABLE door.victim (id int);
INSERT INTO door.victim SELECT generate_series(1, 100);

-- A migration started inside a runner step is refused, and leaves the outer
-- migration's allow lines and its "managed" flag in place for the statements
-- after it.  (CREATE INDEX CONCURRENTLY: the migration runs in the runner.)
SELECT version, status FROM migrate_apply($m$
-- safe_migrate:allow ban-drop-table the victim goes
CREATE INDEX CONCURRENTLY victim_id ON door.victim (id);
DO $d$
BEGIN
    PERFORM migrate_apply('SELECT 1;', 'door-nested-inner');
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'nested: %', SQLERRM;
END
$d$;
DROP TABLE door.victim;
$m$, 'door-nested');
SELECT command_tag, object_identity, managed, migration_version
  FROM safe_migrate.ddl_log WHERE migration_version = 'door-nested' ORDER BY logged_at, object_identity;

-- ALTER TYPE ... DROP / RENAME ATTRIBUTE of a composite type changes every
-- stored value of every column that holds it: directly, as an array, inside
-- another composite type, through a domain; with or without CASCADE (which
-- only concerns typed tables).  ADD ATTRIBUTE changes nothing stored.
RESET ROLE;
SET safe_migrate.large_table_rows = 1000;
SET ROLE sm_door_owner;
CREATE TYPE door.pair AS (x int, y int);
CREATE TYPE door.wrap AS (p door.pair, n int);
CREATE DOMAIN door.pair_d AS door.pair;
CREATE TABLE door.held (id int PRIMARY KEY, p door.pair, ps door.pair[], w door.wrap, d door.pair_d, v int)
  WITH (autovacuum_enabled = false);
INSERT INTO door.held SELECT g, (g, g)::door.pair, ARRAY[(g, g)::door.pair], ((g, g)::door.pair, g)::door.wrap,
       (g, g)::door.pair::door.pair_d, g
  FROM generate_series(1, 2000) g;
ANALYZE door.held;
\set VERBOSITY terse
ALTER TYPE door.pair DROP ATTRIBUTE x;
ALTER TYPE door.pair DROP ATTRIBUTE x CASCADE;
ALTER TYPE door.pair RENAME ATTRIBUTE y TO y2;
SELECT statement, verdict, jsonb_path_query_array(rules, '$[*].message') AS messages
  FROM migrate_plan('ALTER TYPE door.pair DROP ATTRIBUTE y;');
ALTER TYPE door.pair ADD ATTRIBUTE z int;                    -- nothing stored changes
ALTER TYPE door.pair DROP ATTRIBUTE nope;                    -- PostgreSQL's own error
ALTER TYPE door.pair RENAME ATTRIBUTE x TO y;                -- PostgreSQL's own error
SELECT (p).x, (w).p.y, (d).x FROM door.held WHERE id = 7;
BEGIN;                                                       -- a table of this transaction
CREATE TYPE door.fresh_t AS (a int, b int);
CREATE TABLE door.fresh_h (f door.fresh_t);
INSERT INTO door.fresh_h SELECT (g, g)::door.fresh_t FROM generate_series(1, 2000) g;
ALTER TYPE door.fresh_t DROP ATTRIBUTE a;
ROLLBACK;

-- The exemptions of an online type change hold only on facts the product
-- checked: a sync_column trigger any owner can create proves no copy.
BEGIN;
CREATE TRIGGER fake BEFORE INSERT OR UPDATE ON door.held FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('v_renamed', 'v');
ALTER TABLE door.held ENABLE ALWAYS TRIGGER fake;
ALTER TABLE door.held RENAME COLUMN v TO v_renamed;
ROLLBACK;
-- a "copy" that holds a default of its own, not the source's values
BEGIN;
ALTER TABLE door.held ADD COLUMN v_new int DEFAULT 0;
CREATE TRIGGER s BEFORE INSERT OR UPDATE ON door.held FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('v', 'v_new');
ALTER TABLE door.held ENABLE ALWAYS TRIGGER s;
SELECT safe_migrate.sync_column_check('door.held', 'v', 'v_new');
ROLLBACK;
-- a copy of the values checks out
BEGIN;
ALTER TABLE door.held ADD COLUMN v_new bigint;
CREATE TRIGGER s BEFORE INSERT OR UPDATE ON door.held FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('v', 'v_new');
ALTER TABLE door.held ENABLE ALWAYS TRIGGER s;
UPDATE door.held SET v_new = v WHERE id <= 1000;
SELECT safe_migrate.sync_column_check('door.held', 'v', 'v_new');   -- half of them
ROLLBACK;
BEGIN;
ALTER TABLE door.held ADD COLUMN v_new bigint;
CREATE TRIGGER s BEFORE INSERT OR UPDATE ON door.held FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('v', 'v_new');
ALTER TABLE door.held ENABLE ALWAYS TRIGGER s;
UPDATE door.held SET v_new = v;
SELECT safe_migrate.sync_column_check('door.held', 'v', 'v_new');   -- all of them
ROLLBACK;

-- Reads hold a lock as long as a change does: a statement that reads many
-- rows (a copy, CREATE TABLE AS, a count) while an earlier statement's lock
-- blocks the application's reads or writes of a table.
SELECT version, status FROM migrate_apply($m$
ALTER TABLE door.held ADD COLUMN note text;
CREATE TABLE door.held_copy AS SELECT * FROM door.held;
$m$, 'door-read-1');
SELECT version, status FROM migrate_apply($m$
LOCK TABLE door.held IN SHARE MODE;
CREATE TABLE door.fresh_copy (LIKE door.held);
INSERT INTO door.fresh_copy SELECT * FROM door.held;
$m$, 'door-read-2');
SELECT version, status FROM migrate_apply($m$
ALTER TABLE door.held ADD COLUMN note text;
DO $d$ DECLARE r int; BEGIN
  FOR i IN 1..1500 LOOP SELECT v INTO r FROM door.held WHERE id = i; END LOOP;
END $d$;
$m$, 'door-read-3');
-- the copy before the lock, or into the migration's own locked table: free
SELECT version, status FROM migrate_apply($m$
CREATE TABLE door.held_copy AS SELECT * FROM door.held;
CREATE TABLE door.held_ids (id int);
LOCK TABLE door.held_ids IN ACCESS EXCLUSIVE MODE;
INSERT INTO door.held_ids SELECT id FROM door.held;
ALTER TABLE door.held ADD COLUMN note text;
SELECT v FROM door.held WHERE id = 10;
$m$, 'door-read-4');
\set VERBOSITY default
RESET ROLE;
RESET safe_migrate.large_table_rows;

-- Leave nothing behind: an administrator's migration drops the schema, and
-- the allow lines cover every table that goes with it (door.big's columns
-- of door's types and functions go with door.big, not on their own).
SELECT version, status FROM migrate_apply($m$
-- safe_migrate:allow ban-drop-table the doors are closed
DROP SCHEMA door, elsewhere, door_types, door_ext CASCADE;
$m$, 'door-cleanup');
SET safe_migrate.policy = off;
DROP FUNCTION door_admin_drop();
REVOKE CREATE ON DATABASE contrib_regression FROM sm_door_owner;
REVOKE CREATE ON TABLESPACE sm_door_ts FROM sm_door_owner;
DROP TABLESPACE sm_door_ts;
DROP ROLE sm_door_owner;
RESET safe_migrate.policy;
