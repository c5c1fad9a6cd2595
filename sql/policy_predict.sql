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
CREATE TABLE orders_rest PARTITION OF orders DEFAULT;
INSERT INTO orders SELECT g, 20000 + g FROM generate_series(1, 5000) g;
ANALYZE orders;
-- the default is scanned under ACCESS EXCLUSIVE, whatever makes the partition
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES FROM (10001) TO (20001);
CREATE TABLE orders_2 (id int, at int);
ALTER TABLE orders ATTACH PARTITION orders_2 FOR VALUES FROM (10001) TO (20001);
DROP TABLE orders_2;
BEGIN;                                   -- a new table: the default is not new
CREATE TABLE orders_2 (id int, at int);
ALTER TABLE orders ATTACH PARTITION orders_2 FOR VALUES FROM (10001) TO (20001);
ROLLBACK;
-- a bound that is not literal is not evaluated here: taken as unproven
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES FROM (10001) TO (10000 + 10001);
-- a validated CHECK on the default that excludes the new bound: no scan
ALTER TABLE orders_rest ADD CONSTRAINT orders_rest_above CHECK (at >= 20001) NOT VALID;
ALTER TABLE orders_rest VALIDATE CONSTRAINT orders_rest_above;
BEGIN;
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES FROM (10001) TO (20001);
ROLLBACK;
CREATE TABLE orders_3 PARTITION OF orders FOR VALUES FROM (20001) TO (30001);  -- not excluded
-- a partitioned default: each leaf is scanned unless its own constraints
-- exclude the bound; the verdict counts the leaves scanned
CREATE TABLE trips (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE trips_rest PARTITION OF trips DEFAULT PARTITION BY LIST (id);
CREATE TABLE trips_rest_small PARTITION OF trips_rest FOR VALUES IN (1);
CREATE TABLE trips_rest_big PARTITION OF trips_rest DEFAULT;
INSERT INTO trips SELECT g, 50000 + g FROM generate_series(1, 5000) g;
ANALYZE trips_rest_big;
CREATE TABLE trips_1 PARTITION OF trips FOR VALUES FROM (1) TO (10001);
ALTER TABLE trips_rest_big ADD CONSTRAINT trips_rest_big_above CHECK (at > 50000) NOT VALID;
ALTER TABLE trips_rest_big VALIDATE CONSTRAINT trips_rest_big_above;
BEGIN;
CREATE TABLE trips_1 PARTITION OF trips FOR VALUES FROM (1) TO (10001);  -- big leaf excluded: fine
ROLLBACK;
-- a new partition of the partitioned default has a default of its own
CREATE TABLE trips_rest_2 PARTITION OF trips_rest FOR VALUES IN (2);
-- what is new stays free: a default made in the same transaction
BEGIN;
CREATE TABLE fresh (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE fresh_rest PARTITION OF fresh DEFAULT;
INSERT INTO fresh SELECT g, g FROM generate_series(1, 5000) g;
CREATE TABLE fresh_1 PARTITION OF fresh FOR VALUES FROM (1) TO (10);
ROLLBACK;
-- migrate_plan: the lock on the default partition, and its scan
SELECT statement, relation, lock_mode, effect, verdict,
       jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
CREATE TABLE orders_3 PARTITION OF orders FOR VALUES FROM (20001) TO (30001);
CREATE TABLE orders_2 PARTITION OF orders FOR VALUES FROM (10001) TO (20001);
CREATE TABLE orders_4 (id int, at int);
ALTER TABLE orders ATTACH PARTITION orders_4 FOR VALUES FROM (30001) TO (40001);
CREATE TABLE trips_1 PARTITION OF trips FOR VALUES FROM (1) TO (10001);
$$);
