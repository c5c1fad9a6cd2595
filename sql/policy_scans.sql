-- Scans, rebuilds and sweeps the statement does not spell out, each played by
-- a table owner who is not an administrator: commands without a table
-- (VACUUM FULL; CLUSTER; REINDEX SCHEMA / DATABASE), ALTER DOMAIN checks,
-- ATTACH / DETACH PARTITION, PRIMARY KEY USING INDEX on nullable columns,
-- ALTER COLUMN TYPE that rebuilds indexes without a rewrite, VALIDATE under
-- a lock that blocks writes, and sizes that count TOAST and indexes.
-- "Large" is lowered by the superuser running this file.
SET safe_migrate.large_table_rows = 1000;
SET safe_migrate.large_table_bytes = '100MB';
SET client_min_messages = notice;
SET timezone = 'UTC';
CREATE ROLE p2_owner;
CREATE SCHEMA p2 AUTHORIZATION p2_owner;
SET ROLE p2_owner;
SET search_path = p2, public;

CREATE DOMAIN qty AS int;
CREATE DOMAIN small_qty AS qty;            -- a domain over the domain
CREATE TABLE big (id int PRIMARY KEY, ts timestamp, name text COLLATE "C",
                  note varchar(10), v qty, ref int)
    WITH (autovacuum_enabled = false);
CREATE INDEX big_ts ON big (ts);
CREATE INDEX big_name ON big (name);
CREATE INDEX big_note ON big (note);
INSERT INTO big SELECT g, timestamp '2026-01-01' + g * interval '1 minute', 'n' || g, 'x', g, g
  FROM generate_series(1, 5000) g;
CREATE TABLE little (id int PRIMARY KEY, v small_qty) WITH (autovacuum_enabled = false);
INSERT INTO little SELECT g, g FROM generate_series(1, 10) g;
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT g FROM generate_series(1, 5000) g;
ANALYZE big, little, parent;

-- ---------------------------------------------------------------------------
-- Commands without a table reach every table they would process.
VACUUM FULL;                                     -- reaches p2.big: refused
VACUUM (FULL false) big;
CLUSTER;                                         -- no table marked yet: nothing to do
ALTER TABLE big CLUSTER ON big_pkey;
CLUSTER;                                         -- reaches p2.big: refused
ALTER TABLE big SET WITHOUT CLUSTER;
REINDEX SCHEMA p2;                               -- reaches p2.big: refused
REINDEX (CONCURRENTLY) SCHEMA p2;                -- does not block writes: fine
REINDEX (CONCURRENTLY false) TABLE big;          -- the option said no: refused
REINDEX DATABASE p2_nowhere;                     -- not the owner: PostgreSQL's own error
REINDEX SYSTEM p2_nowhere;

-- ---------------------------------------------------------------------------
-- ALTER DOMAIN checks every column using the domain (here p2.big.v, and
-- p2.little.v through small_qty), each table under a SHARE lock.
ALTER DOMAIN qty ADD CONSTRAINT qty_positive CHECK (VALUE > 0);
ALTER DOMAIN qty ADD CONSTRAINT qty_positive CHECK (VALUE > 0) NOT VALID;   -- new values only: fine
ALTER DOMAIN qty VALIDATE CONSTRAINT qty_positive;
ALTER DOMAIN qty SET NOT NULL;
ALTER DOMAIN small_qty ADD CONSTRAINT small_qty_max CHECK (VALUE < 100);     -- only p2.little: fine
ALTER DOMAIN small_qty SET NOT NULL;
BEGIN;
CREATE DOMAIN fresh_qty AS int;
CREATE TABLE fresh_d (v fresh_qty);
INSERT INTO fresh_d SELECT g FROM generate_series(1, 5000) g;
ALTER DOMAIN fresh_qty ADD CONSTRAINT fresh_positive CHECK (VALUE > 0);      -- new table: exempt
ROLLBACK;

-- ---------------------------------------------------------------------------
-- ATTACH PARTITION scans the table under ACCESS EXCLUSIVE unless a validated
-- CHECK implies the bound; DETACH PARTITION without CONCURRENTLY takes
-- ACCESS EXCLUSIVE on the partitioned table.
CREATE TABLE events (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE events_1 (id int, at int) WITH (autovacuum_enabled = false);
INSERT INTO events_1 SELECT g, g FROM generate_series(1, 5000) g;
ANALYZE events_1;
ALTER TABLE events ATTACH PARTITION events_1 FOR VALUES FROM (1) TO (10001);
ALTER TABLE events_1 ADD CONSTRAINT events_1_wrong CHECK (at >= 1) NOT VALID;
ALTER TABLE events_1 VALIDATE CONSTRAINT events_1_wrong;
ALTER TABLE events ATTACH PARTITION events_1 FOR VALUES FROM (1) TO (10001);  -- does not prove it
ALTER TABLE events_1 ADD CONSTRAINT events_1_bound
    CHECK (at IS NOT NULL AND at >= 1 AND at < 10001) NOT VALID;
ALTER TABLE events_1 VALIDATE CONSTRAINT events_1_bound;
ALTER TABLE events ATTACH PARTITION events_1 FOR VALUES FROM (1) TO (10001);  -- proven: no scan
ALTER TABLE events DETACH PARTITION events_1;
ALTER TABLE events DETACH PARTITION events_1 CONCURRENTLY;
ALTER TABLE events ATTACH PARTITION events_1 FOR VALUES FROM (1) TO (10001);
-- a default partition is scanned for rows of the new bound
CREATE TABLE events_other (id int, at int) WITH (autovacuum_enabled = false);
INSERT INTO events_other SELECT g, 20000 + g FROM generate_series(1, 5000) g;
ANALYZE events_other;
ALTER TABLE events_other ADD CONSTRAINT events_other_bound CHECK (at IS NOT NULL AND at >= 10001) NOT VALID;
ALTER TABLE events_other VALIDATE CONSTRAINT events_other_bound;
ALTER TABLE events ATTACH PARTITION events_other DEFAULT;                     -- proven by its CHECK
CREATE TABLE events_2 (id int, at int);
ALTER TABLE events ATTACH PARTITION events_2 FOR VALUES FROM (10001) TO (20001);   -- scans the default
ALTER TABLE events_other ADD CONSTRAINT events_other_above CHECK (at >= 20001) NOT VALID;
ALTER TABLE events_other VALIDATE CONSTRAINT events_other_above;
ALTER TABLE events ATTACH PARTITION events_2 FOR VALUES FROM (10001) TO (20001);   -- excluded: fine
-- ATTACH PARTITION gives the table the parent's indexes and foreign keys:
-- each it has no equivalent of is built (index) or checked on every row
-- (key) under its ACCESS EXCLUSIVE lock.
CREATE TABLE orders (id int NOT NULL, ref int REFERENCES parent, note text,
                     PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE INDEX orders_note ON orders (lower(note));
CREATE TABLE orders_1 (id int NOT NULL, ref int, note text) WITH (autovacuum_enabled = false);
INSERT INTO orders_1 SELECT g, g, 'n' || g FROM generate_series(1, 5000) g;
ALTER TABLE orders_1 ADD CONSTRAINT orders_1_bound CHECK (id >= 1 AND id < 10001) NOT VALID;
ALTER TABLE orders_1 VALIDATE CONSTRAINT orders_1_bound;
ANALYZE orders_1;
SELECT effect, lock_mode, verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan('ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);');
ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);   -- builds orders_pkey
CREATE UNIQUE INDEX CONCURRENTLY orders_1_pkey ON orders_1 (id);
ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);   -- an index is not a constraint
ALTER TABLE orders_1 ADD CONSTRAINT orders_1_pkey PRIMARY KEY USING INDEX orders_1_pkey;
CREATE INDEX CONCURRENTLY orders_1_note ON orders_1 (note);
ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);   -- (note) is not lower(note)
CREATE INDEX CONCURRENTLY orders_1_lower ON orders_1 (lower(note));
ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);   -- checks orders_ref_fkey
ALTER TABLE orders_1 ADD CONSTRAINT orders_1_ref FOREIGN KEY (ref) REFERENCES parent ON DELETE CASCADE NOT VALID;
ALTER TABLE orders_1 VALIDATE CONSTRAINT orders_1_ref;
ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);   -- another action: checked
ALTER TABLE orders_1 DROP CONSTRAINT orders_1_ref;
ALTER TABLE orders_1 ADD CONSTRAINT orders_1_ref FOREIGN KEY (ref) REFERENCES parent NOT VALID;
ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);   -- not validated: checked
ALTER TABLE orders_1 VALIDATE CONSTRAINT orders_1_ref;
SELECT effect, lock_mode, verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan('ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);');
ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM (1) TO (10001);   -- all its own: attached
-- a partitioned table attached: only its partitions without the index count
CREATE TABLE orders_2 (id int NOT NULL, ref int REFERENCES parent, note text,
                       CHECK (id >= 10001 AND id < 20001)) PARTITION BY RANGE (id);
CREATE TABLE orders_2a PARTITION OF orders_2 (PRIMARY KEY (id)) FOR VALUES FROM (10001) TO (15001);
CREATE TABLE orders_2b PARTITION OF orders_2 FOR VALUES FROM (15001) TO (20001);
CREATE INDEX ON orders_2 (lower(note));
INSERT INTO orders_2 SELECT g, 1, 'n' FROM generate_series(10001, 10010) g;
INSERT INTO orders_2 SELECT g, 1, 'n' FROM generate_series(15001, 19000) g;
ANALYZE orders_2;
ALTER TABLE orders ATTACH PARTITION orders_2 FOR VALUES FROM (10001) TO (20001);   -- builds on orders_2b only
CREATE UNIQUE INDEX CONCURRENTLY orders_2b_pkey ON orders_2b (id);
ALTER TABLE orders_2b ADD CONSTRAINT orders_2b_pkey PRIMARY KEY USING INDEX orders_2b_pkey;
ALTER TABLE orders ATTACH PARTITION orders_2 FOR VALUES FROM (10001) TO (20001);   -- each its own: attached
ALTER TABLE orders DETACH PARTITION orders_1 CONCURRENTLY;
-- the hint writes an index's expressions as the user gave them
CREATE INDEX orders_1_expr ON orders_1 (lower(note), (id + 1), note) WHERE id > 0;
-- the small partitioned table is exempt from the DETACH rule
CREATE TABLE tiny_events (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE tiny_events_1 PARTITION OF tiny_events FOR VALUES FROM (1) TO (100);
ALTER TABLE tiny_events DETACH PARTITION tiny_events_1;
-- ANALYZE of a partitioned table records its partitions' rows as its own
-- reltuples: they count once (700 rows: under 1000, allowed; it was taken
-- for 1,400 and refused), and 1,200 rows are 1,200
CREATE TABLE half_events (id int, at int, note text) PARTITION BY RANGE (at);
CREATE TABLE half_events_1 PARTITION OF half_events FOR VALUES FROM (0) TO (100000)
    WITH (autovacuum_enabled = false);
INSERT INTO half_events SELECT g, g, 'x' FROM generate_series(1, 700) g;
ANALYZE half_events;
SELECT reltuples FROM pg_class WHERE oid = 'half_events'::regclass;
ALTER TABLE half_events ALTER COLUMN note SET NOT NULL;                -- allowed
ALTER TABLE half_events ADD CONSTRAINT half_at CHECK (at >= 0);       -- allowed
INSERT INTO half_events SELECT g, g, 'x' FROM generate_series(701, 1200) g;
ANALYZE half_events;
ALTER TABLE half_events ADD CONSTRAINT half_id CHECK (id > 0);        -- refused: 1200 rows

-- ---------------------------------------------------------------------------
-- PRIMARY KEY USING INDEX sets NOT NULL on its nullable columns: a scan.
CREATE TABLE keyed (id int, name text) WITH (autovacuum_enabled = false);
INSERT INTO keyed SELECT g, 'k' || g FROM generate_series(1, 5000) g;
ANALYZE keyed;
CREATE UNIQUE INDEX CONCURRENTLY keyed_id ON keyed (id);
ALTER TABLE keyed ADD PRIMARY KEY USING INDEX keyed_id;
ALTER TABLE keyed ADD CONSTRAINT keyed_id_not_null CHECK (id IS NOT NULL) NOT VALID;
ALTER TABLE keyed VALIDATE CONSTRAINT keyed_id_not_null;
ALTER TABLE keyed ADD PRIMARY KEY USING INDEX keyed_id;                       -- proven: fine
CREATE TABLE keyed2 (id int, name text) WITH (autovacuum_enabled = false);
INSERT INTO keyed2 SELECT g, 'k' || g FROM generate_series(1, 5000) g;
ANALYZE keyed2;
CREATE UNIQUE INDEX CONCURRENTLY keyed2_id ON keyed2 (id);
ALTER TABLE keyed2 ADD CONSTRAINT keyed2_id_key UNIQUE USING INDEX keyed2_id;  -- no NOT NULL: fine
ALTER TABLE keyed2 DROP CONSTRAINT keyed2_id_key;
CREATE UNIQUE INDEX CONCURRENTLY keyed2_id ON keyed2 (id);

-- ---------------------------------------------------------------------------
-- ALTER COLUMN TYPE that keeps the heap but rebuilds indexes.
ALTER TABLE big ALTER COLUMN ts TYPE timestamptz;         -- timezone UTC: no rewrite, big_ts rebuilt
ALTER TABLE big ALTER COLUMN name TYPE text;              -- collation "C" -> default: big_name rebuilt
ALTER TABLE big ALTER COLUMN name TYPE text COLLATE "POSIX";
ALTER TABLE big ALTER COLUMN note TYPE varchar(20);       -- index kept: fine
ALTER TABLE big ALTER COLUMN note TYPE text;              -- index kept: fine
SET timezone = 'Europe/Paris';
ALTER TABLE big ALTER COLUMN ts TYPE timestamptz;         -- not UTC: a rewrite
SET timezone = 'UTC';
SELECT statement, effect, verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
ALTER TABLE big ALTER COLUMN ts TYPE timestamptz;
ALTER TABLE big ALTER COLUMN name TYPE text COLLATE "POSIX";
ALTER TABLE big ALTER COLUMN note TYPE text;
ALTER TABLE big ALTER COLUMN id TYPE bigint;
ALTER TABLE big ALTER COLUMN ref TYPE bigint USING ref::bigint;
$$);

-- ---------------------------------------------------------------------------
-- VALIDATE under a lock this transaction holds that blocks writes.
BEGIN;
ALTER TABLE big ADD CONSTRAINT big_ref_fkey FOREIGN KEY (ref) REFERENCES parent (id) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_ref_fkey;          -- SHARE ROW EXCLUSIVE held: refused
ROLLBACK;
ALTER TABLE big ADD CONSTRAINT big_ref_fkey FOREIGN KEY (ref) REFERENCES parent (id) NOT VALID;
ALTER TABLE big ADD CONSTRAINT big_ref_positive CHECK (ref > 0) NOT VALID;
BEGIN;
LOCK TABLE big IN SHARE MODE;
ALTER TABLE big VALIDATE CONSTRAINT big_ref_positive;      -- SHARE held: refused
ROLLBACK;
BEGIN;
LOCK TABLE parent IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE big VALIDATE CONSTRAINT big_ref_fkey;          -- the referenced table's writes wait
ROLLBACK;
BEGIN;
LOCK TABLE big IN ROW EXCLUSIVE MODE;
ALTER TABLE big VALIDATE CONSTRAINT big_ref_positive;      -- blocks neither: fine
ALTER TABLE big VALIDATE CONSTRAINT big_ref_fkey;
COMMIT;

-- ---------------------------------------------------------------------------
-- Sizes count the heap, TOAST and the indexes: 40 rows of 20 kB each.
CREATE TABLE docs (id int PRIMARY KEY, body text) WITH (autovacuum_enabled = false);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;   -- stored out of line, uncompressed
INSERT INTO docs SELECT g, repeat('x', 20000) FROM generate_series(1, 40) g;
ANALYZE docs;
RESET ROLE;
SET safe_migrate.large_table_bytes = '500kB';
SET ROLE p2_owner;
SET search_path = p2, public;
SELECT rows, bytes > 800 * 1024 AS counts_toast FROM migrate_plan('VACUUM FULL docs;');
VACUUM FULL docs;
ALTER TABLE docs ADD COLUMN at timestamptz DEFAULT clock_timestamp();
RESET ROLE;
SET safe_migrate.large_table_bytes = '100MB';
SET ROLE p2_owner;
SET search_path = p2, public;
-- A type change that rewrites counts the indexes on the column too, which
-- PostgreSQL drops before the rewrite and builds again after it: by the heap
-- alone this table is below large_table_bytes.
CREATE TABLE tall (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false);
CREATE INDEX tall_id_a ON tall (id);
CREATE INDEX tall_id_b ON tall (id);
INSERT INTO tall SELECT g FROM generate_series(1, 50000) g;
ANALYZE tall;
RESET ROLE;
SET safe_migrate.large_table_rows = 1000000;
SET safe_migrate.large_table_bytes = '3MB';
SET ROLE p2_owner;
SET search_path = p2, public;
SELECT pg_relation_size('tall') < 3 * 1024 * 1024 AS heap_below,
       pg_total_relation_size('tall') > 3 * 1024 * 1024 AS with_indexes_above;
DO $$
BEGIN
    ALTER TABLE tall ALTER COLUMN id TYPE bigint;
    RAISE NOTICE 'allowed';
EXCEPTION WHEN others THEN
    RAISE NOTICE 'refused by %', split_part(SQLERRM, ':', 1);
END $$;
DO $$                                  -- another column: the indexes stay, and count
BEGIN
    ALTER TABLE tall ALTER COLUMN note TYPE varchar(10) USING note::varchar(10);
    RAISE NOTICE 'allowed';
EXCEPTION WHEN others THEN
    RAISE NOTICE 'refused by %', split_part(SQLERRM, ':', 1);
END $$;
RESET ROLE;
SET safe_migrate.policy = off;                 -- (out of the way of the commands below)
DROP TABLE p2.tall;
RESET safe_migrate.policy;
SET safe_migrate.large_table_rows = 1000;
SET safe_migrate.large_table_bytes = '100MB';
SET ROLE p2_owner;
SET search_path = p2, public;

-- ---------------------------------------------------------------------------
-- migrate_plan: the lock and effect of every command above.
SELECT statement, relation, lock_mode, effect, verdict,
       jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
LOCK TABLE big IN SHARE MODE;
LOCK TABLE big;
VACUUM (FULL false) big;
VACUUM FULL big;
VACUUM FULL;
CLUSTER;
REINDEX (CONCURRENTLY false) TABLE big;
REINDEX (CONCURRENTLY) TABLE big;
REINDEX SCHEMA p2;
MERGE INTO big USING parent ON big.id = parent.id WHEN MATCHED THEN UPDATE SET ref = parent.id;
ALTER TABLE little SET SCHEMA public;
ALTER DOMAIN qty ADD CONSTRAINT qty_positive CHECK (VALUE > 0);
ALTER DOMAIN qty ADD CONSTRAINT qty_positive CHECK (VALUE > 0) NOT VALID;
ALTER TABLE events DETACH PARTITION events_2;
ALTER TABLE keyed2 ADD PRIMARY KEY USING INDEX keyed2_id;
ALTER TABLE keyed2 ADD CONSTRAINT keyed2_id_key UNIQUE USING INDEX keyed2_id;
$$);
-- without a table: the rows of every table reached, not of the first one
SELECT relation, rows > 30000 AS every_table_counted, verdict
  FROM migrate_plan('VACUUM FULL;');
CREATE TABLE events_3 (id int, at int);
INSERT INTO events_3 SELECT g, 30000 + g FROM generate_series(1, 2000) g;
ANALYZE events_3;
SELECT statement, relation, lock_mode, effect, verdict,
       jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
ALTER TABLE events DETACH PARTITION events_other;
ALTER TABLE events ATTACH PARTITION events_3 FOR VALUES FROM (30001) TO (40001);
ALTER TABLE events_3 ADD CONSTRAINT events_3_bound CHECK (at IS NOT NULL AND at >= 30001 AND at < 40001);
$$);
-- the locks of statements that change no row (PostgreSQL's own modes)
SELECT statement, relation, lock_mode, effect
  FROM migrate_plan($$
CREATE RULE big_r AS ON INSERT TO big DO ALSO NOTHING;
CREATE POLICY big_p ON big USING (true);
CREATE STATISTICS big_s ON id, ts FROM big;
COMMENT ON TABLE big IS 'x';
COMMENT ON COLUMN big.ts IS 'x';
ALTER INDEX big_ts RENAME TO big_ts2;
ALTER TABLE big ADD COLUMN y int NOT NULL DEFAULT 0;
ALTER TABLE big ADD COLUMN z int NOT NULL;
$$);

-- ---------------------------------------------------------------------------
-- REINDEX DATABASE and SYSTEM, by the owner of a database of its own.
RESET ROLE;
CREATE DATABASE p2_scans OWNER p2_owner;
\c p2_scans
CREATE EXTENSION safe_migrate;
SET safe_migrate.large_table_rows = 20000;
SET client_min_messages = notice;
SET ROLE p2_owner;
CREATE TABLE wide (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
INSERT INTO wide SELECT g FROM generate_series(1, 25000) g;
ANALYZE wide;
SELECT current_database() AS db \gset
REINDEX DATABASE :db;                                      -- reaches public.wide: refused
REINDEX SYSTEM :db;                                        -- catalogs only, all small: fine
VACUUM FULL;                                               -- reaches public.wide: refused
SELECT effect, verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan(format('REINDEX DATABASE %I;', current_database()));
\c contrib_regression
-- cleanup: these drops are what the policy refuses (ban-drop-database,
-- ban-drop-table through DROP SCHEMA ... CASCADE)
SET safe_migrate.policy = off;
DROP DATABASE p2_scans;
DROP SCHEMA p2 CASCADE;
RESET safe_migrate.policy;
DROP ROLE p2_owner;
