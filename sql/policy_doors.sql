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
