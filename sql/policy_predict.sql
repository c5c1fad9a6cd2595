-- Verdicts that must not depend on when or where they are judged, each case
-- played by a table owner who is not an administrator:
--  1. a new partition (CREATE TABLE ... PARTITION OF, ATTACH PARTITION of a
--     new table) scans the parent's existing default partition;
--  2. migrate_test judges each phase as migrate_apply would (rows changed per
--     transaction, checks made at the end of a migration);
--  3. a migration that commits in several steps is judged before its first
--     step on what its drops reach through dependencies.
-- "Large" is lowered by the superuser running this file.
SET safe_migrate.large_table_rows = 1000;
SET safe_migrate.large_table_bytes = '100MB';
SET client_min_messages = notice;
CREATE ROLE pr_owner;
GRANT CREATE ON DATABASE contrib_regression TO pr_owner;
CREATE SCHEMA pr AUTHORIZATION pr_owner;
SET ROLE pr_owner;
SET search_path = pr, public;

-- ---------------------------------------------------------------------------
-- 1. A new partition and the parent's default partition.
CREATE TABLE orders (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE orders_1 PARTITION OF orders FOR VALUES FROM (1) TO (10001);
CREATE TABLE orders_rest PARTITION OF orders DEFAULT WITH (autovacuum_enabled = false);
INSERT INTO orders SELECT g, 20000 + g FROM generate_series(1, 5000) g;
ANALYZE orders;
-- the default is scanned under ACCESS EXCLUSIVE, whatever makes the partition
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES FROM (10001) TO (20001);
CREATE TABLE orders_2 (id int, at int);
ALTER TABLE orders ATTACH PARTITION orders_2 FOR VALUES FROM (10001) TO (20001);
BEGIN;                 -- the new table is exempt, the existing default is not
CREATE TABLE orders_new (id int, at int);
ALTER TABLE orders ATTACH PARTITION orders_new FOR VALUES FROM (10001) TO (20001);
ROLLBACK;
-- a bound that is not literal is not evaluated here: taken as unproven
CREATE TABLE orders_x PARTITION OF orders FOR VALUES FROM (10001) TO (10000 + 10001);
-- a validated CHECK on the default that excludes the new bound: no scan
ALTER TABLE orders_rest ADD CONSTRAINT orders_rest_above CHECK (at >= 20001) NOT VALID;
ALTER TABLE orders_rest VALIDATE CONSTRAINT orders_rest_above;
BEGIN;
CREATE TABLE orders_x PARTITION OF orders FOR VALUES FROM (10001) TO (20001);
ALTER TABLE orders ATTACH PARTITION orders_2 FOR VALUES FROM (-10000) TO (1);
ROLLBACK;
CREATE TABLE orders_x PARTITION OF orders FOR VALUES FROM (20001) TO (30001);  -- not excluded
-- a partitioned default: each leaf is scanned unless its own constraints
-- exclude the bound; the verdict counts the leaves scanned
CREATE TABLE trips (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE trips_rest PARTITION OF trips DEFAULT PARTITION BY LIST (id);
CREATE TABLE trips_rest_small PARTITION OF trips_rest FOR VALUES IN (1)
    WITH (autovacuum_enabled = false);
CREATE TABLE trips_rest_big PARTITION OF trips_rest DEFAULT WITH (autovacuum_enabled = false);
INSERT INTO trips SELECT g, 50000 + g FROM generate_series(1, 5000) g;
ANALYZE trips;
CREATE TABLE trips_1 PARTITION OF trips FOR VALUES FROM (1) TO (10001);
ALTER TABLE trips_rest_big ADD CONSTRAINT trips_rest_big_above CHECK (at > 50000) NOT VALID;
ALTER TABLE trips_rest_big VALIDATE CONSTRAINT trips_rest_big_above;
BEGIN;
CREATE TABLE trips_1 PARTITION OF trips FOR VALUES FROM (1) TO (10001);  -- big leaf excluded: fine
ROLLBACK;
-- a new partition of the partitioned default: its own default is scanned
CREATE TABLE trips_rest_2 PARTITION OF trips_rest FOR VALUES IN (2);
-- what is new stays free: a default made in the same transaction
BEGIN;
CREATE TABLE fresh (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE fresh_rest PARTITION OF fresh DEFAULT;
INSERT INTO fresh SELECT g, 100 + g FROM generate_series(1, 5000) g;
CREATE TABLE fresh_1 PARTITION OF fresh FOR VALUES FROM (1) TO (10);
ROLLBACK;
-- migrate_plan: the lock on the default partition, and its scan (orders_4 is
-- made by the script: its ATTACH still scans the existing default)
SELECT statement, relation, lock_mode, effect, verdict,
       jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
CREATE TABLE orders_x PARTITION OF orders FOR VALUES FROM (20001) TO (30001);
CREATE TABLE orders_y PARTITION OF orders FOR VALUES FROM (10001) TO (20001);
CREATE TABLE orders_4 (id int, at int);
ALTER TABLE orders ATTACH PARTITION orders_4 FOR VALUES FROM (30001) TO (40001);
CREATE TABLE trips_1 PARTITION OF trips FOR VALUES FROM (1) TO (10001);
CREATE TABLE trips_rest_2 PARTITION OF trips_rest FOR VALUES IN (2);
$$);
-- a migration in two steps whose step 2 makes such a partition: refused
-- before step 1
SELECT * FROM migrate_apply($$
CREATE INDEX CONCURRENTLY orders_1_id ON orders_1 (id);
CREATE TABLE orders_x PARTITION OF orders FOR VALUES FROM (20001) TO (30001);
$$, 'pr_000');
SELECT to_regclass('pr.orders_1_id') AS step_1_index;

-- ---------------------------------------------------------------------------
-- 2. migrate_test judges each phase (up, down, up again) as migrate_apply
-- and migrate_rollback would judge it.
CREATE TABLE accounts (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 3000) g;
ANALYZE accounts;
CREATE TABLE account_notes (id int PRIMARY KEY, account_id int);
-- rows changed, counted by the executor after each statement: refused as
-- migrate_apply refuses it, whatever the spelling
SELECT * FROM migrate_test($$
UPDATE accounts SET v = 1;
-- migrate:down
SELECT 1;
$$);
SELECT * FROM migrate_test($$
WITH moved AS (UPDATE accounts SET v = v + 1 RETURNING id) SELECT count(*) FROM moved;
-- migrate:down
SELECT 1;
$$);
SELECT * FROM migrate_test($$
SELECT 1;
-- migrate:down
DELETE FROM accounts WHERE id > 500;
$$);
-- counted per phase, as each runs in a transaction of its own: 600 rows in
-- up and 600 in down are not 1200 in one transaction
SELECT * FROM migrate_test($$
UPDATE accounts SET v = 1 WHERE id <= 600;
-- migrate:down
UPDATE accounts SET v = 0 WHERE id <= 600;
$$);
-- a statement that runs in a transaction of its own (ALTER TYPE ... ADD
-- VALUE) splits the count, as it splits the apply into steps
CREATE TYPE account_state AS ENUM ('open', 'closed');
SELECT step, ok FROM migrate_test($$
UPDATE accounts SET v = 2 WHERE id <= 600;
ALTER TYPE account_state ADD VALUE 'frozen';
UPDATE accounts SET v = 2 WHERE id > 2400;
-- migrate:down
SELECT 1;
$$) WHERE step = 'up';
-- ... unless the section is wrapped in BEGIN; ... COMMIT;: one transaction
SELECT step, ok FROM migrate_test($$
BEGIN;
UPDATE accounts SET v = 3 WHERE id <= 600;
ALTER TYPE account_state ADD VALUE 'dormant';
UPDATE accounts SET v = 3 WHERE id > 2400;
COMMIT;
-- migrate:down
SELECT 1;
$$) WHERE step = 'up';
-- verdicts made at the end of the migration: a foreign key without an index
-- is reported after the phase (once for up, once for up again) ...
SELECT step, ok FROM migrate_test($$
ALTER TABLE account_notes ADD CONSTRAINT account_notes_account_fkey
    FOREIGN KEY (account_id) REFERENCES accounts NOT VALID;
-- migrate:down
ALTER TABLE account_notes DROP CONSTRAINT account_notes_account_fkey;
$$);
-- ... and not when a later statement of the same phase adds the index
SELECT step, ok FROM migrate_test($$
ALTER TABLE account_notes ADD CONSTRAINT account_notes_account_fkey
    FOREIGN KEY (account_id) REFERENCES accounts NOT VALID;
CREATE INDEX account_notes_account ON account_notes (account_id);
-- migrate:down
ALTER TABLE account_notes DROP CONSTRAINT account_notes_account_fkey;
DROP INDEX account_notes_account;
$$);
-- the rule at error, as a team may set it: the test fails as the apply would
RESET ROLE;
SET safe_migrate.rule_levels = 'foreign-key-missing-index=error';
SET ROLE pr_owner;
SET search_path = pr, public;
SELECT step, ok FROM migrate_test($$
ALTER TABLE account_notes ADD CONSTRAINT account_notes_account_fkey
    FOREIGN KEY (account_id) REFERENCES accounts NOT VALID;
-- migrate:down
ALTER TABLE account_notes DROP CONSTRAINT account_notes_account_fkey;
$$);
RESET ROLE;
RESET safe_migrate.rule_levels;
SET ROLE pr_owner;
SET search_path = pr, public;

-- ---------------------------------------------------------------------------
-- 3. What a drop reaches through dependencies, predicted before anything
-- runs: by migrate_plan, and by the check of a migration that commits in
-- several steps before its first step.
CREATE DOMAIN code AS text;
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE FUNCTION twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2';
CREATE SCHEMA pr_types;
CREATE TYPE pr_types.size AS ENUM ('s', 'm', 'l');
CREATE TABLE ledger (id int PRIMARY KEY, c code, m mood, s pr_types.size,
                     doubled int GENERATED ALWAYS AS (twice(id)) STORED)
    WITH (autovacuum_enabled = false);
INSERT INTO ledger SELECT g, 'c', 'ok', 's' FROM generate_series(1, 3000) g;
ANALYZE ledger;
CREATE TABLE ledger_parent (id int);
CREATE TABLE ledger_child () INHERITS (ledger_parent);
INSERT INTO ledger_child SELECT g FROM generate_series(1, 3000) g;
ANALYZE ledger_child;
CREATE TABLE small (id int, c code);
SELECT statement, relation, verdict, jsonb_path_query_array(rules, '$[*].message') AS messages
  FROM migrate_plan($$
DROP DOMAIN code CASCADE;
DROP TYPE mood CASCADE;
DROP FUNCTION twice(int) CASCADE;
DROP SCHEMA pr_types CASCADE;
DROP TABLE ledger_parent CASCADE;
ALTER TABLE ledger DROP COLUMN id CASCADE;
DROP DOMAIN code;
DROP FUNCTION twice(int);
DROP TYPE mood RESTRICT;
$$);
-- what is not reached stays free: a view, a column's default
CREATE VIEW small_view AS SELECT id FROM small;
CREATE FUNCTION zero() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 0';
ALTER TABLE ledger ALTER COLUMN id SET DEFAULT zero();
SELECT statement, verdict, rules FROM migrate_plan($$
DROP VIEW small_view CASCADE;
DROP FUNCTION zero() CASCADE;
$$);
-- an extension, and the objects another role owns (DROP OWNED); without
-- CASCADE, what depends on them makes the statement fail (the column
-- computed from id depends on it: DROP COLUMN id alone fails)
RESET ROLE;
CREATE EXTENSION citext SCHEMA pr_types;
CREATE ROLE pr_other;
GRANT CREATE ON DATABASE contrib_regression TO pr_other;
SET ROLE pr_other;
CREATE SCHEMA pr_other_types;
CREATE DOMAIN pr_other_types.label AS text;
GRANT USAGE ON SCHEMA pr_other_types TO pr_owner;
SET ROLE pr_owner;
SET search_path = pr, public;
ALTER TABLE ledger ADD COLUMN email pr_types.citext, ADD COLUMN label pr_other_types.label;
SELECT statement, jsonb_path_query_array(rules, '$[*].message') AS messages
  FROM migrate_plan($$
DROP EXTENSION citext CASCADE;
DROP EXTENSION citext;
ALTER TABLE ledger DROP COLUMN id;
$$);
SET ROLE pr_other;
SELECT statement, jsonb_path_query_array(rules, '$[*].message') AS messages
  FROM migrate_plan('DROP OWNED BY pr_other CASCADE;');
SELECT statement, jsonb_path_query_array(rules, '$[*].message') AS messages
  FROM migrate_plan('DROP OWNED BY pr_other;');          -- RESTRICT: it fails instead
SET ROLE pr_owner;
SET search_path = pr, public;
-- a migration in three steps (two CREATE INDEX CONCURRENTLY) whose step 2
-- drops a domain a large table's column uses: refused before step 1,
-- nothing committed
SELECT * FROM migrate_apply($$
CREATE INDEX CONCURRENTLY small_id ON small (id);
DROP DOMAIN code CASCADE;
CREATE INDEX CONCURRENTLY small_c ON small (c);
$$, 'pr_001');
SELECT to_regclass('pr.small_id') AS step_1_index,
       (SELECT count(*) FROM pg_attribute WHERE attrelid = 'pr.ledger'::regclass
           AND attname = 'c' AND NOT attisdropped) AS column_kept;
RESET ROLE;
SELECT count(*) AS recorded FROM safe_migrate.migrations WHERE version = 'pr_001';
SET ROLE pr_owner;
SET search_path = pr, public;
-- the same through a schema, an inheritance parent, a function, an extension
SELECT * FROM migrate_apply($$
CREATE INDEX CONCURRENTLY small_id ON small (id);
DROP SCHEMA pr_types CASCADE;
$$, 'pr_002');
SELECT * FROM migrate_apply($$
CREATE INDEX CONCURRENTLY small_id ON small (id);
DROP TABLE ledger_parent CASCADE;
$$, 'pr_003');
SELECT * FROM migrate_apply($$
CREATE INDEX CONCURRENTLY small_id ON small (id);
DROP FUNCTION twice(int) CASCADE;
$$, 'pr_004');
-- what an earlier statement of the script did counts: a table made to
-- inherit from a parent the script creates goes with that parent
SELECT * FROM migrate_apply($$
CREATE INDEX CONCURRENTLY small_id ON small (id);
CREATE TABLE ledger_base (id int);
ALTER TABLE ledger INHERIT ledger_base;
DROP TABLE ledger_base CASCADE;
$$, 'pr_005');
SELECT statement, jsonb_path_query_array(rules, '$[*].message') AS messages
  FROM migrate_plan($$
CREATE TABLE ledger_base (id int);
ALTER TABLE ledger INHERIT ledger_base;
TRUNCATE ledger_base;
TRUNCATE ONLY ledger_base;
ALTER TABLE ledger NO INHERIT ledger_base;
DROP TABLE ledger_base CASCADE;
$$);
SELECT to_regclass('pr.small_id') AS step_1_index;
-- what the drop reaches is new or small: the migration applies
SELECT status FROM migrate_apply($$
CREATE INDEX CONCURRENTLY small_id ON small (id);
DROP VIEW small_view CASCADE;
$$, 'pr_006');

-- a syntax error of the script points into the script, as migrate_apply's
SELECT * FROM migrate_plan('SELECT 1; SELEC 2');

RESET ROLE;
-- cleanup: these drops are what the policy refuses
SET safe_migrate.policy = off;
DROP SCHEMA pr CASCADE;
DROP SCHEMA pr_types CASCADE;
DROP SCHEMA pr_other_types CASCADE;
DELETE FROM safe_migrate.migrations WHERE version LIKE 'pr\_%';
RESET safe_migrate.policy;
REVOKE CREATE ON DATABASE contrib_regression FROM pr_owner, pr_other;
DROP ROLE pr_owner;
DROP ROLE pr_other;
