-- The safe-DDL policy, rule by rule: the unsafe statement on a large table
-- (blocked, with its whole message), the same on a new table and on a small
-- table (allowed), and the safe sequence (allowed, step by step).
SET safe_migrate.large_table_rows = 1000;
SET client_min_messages = notice;

-- "large": 5,000 rows, analyzed; "small": 100 rows.  No autovacuum, so the
-- statistics the rules read stay what this test made them.
CREATE TABLE large (id int PRIMARY KEY, name text, qty int, note varchar(10))
    WITH (autovacuum_enabled = false);
INSERT INTO large SELECT g, 'n' || g, g, 'x' FROM generate_series(1, 5000) g;
CREATE TABLE small (id int PRIMARY KEY, name text, qty int, note varchar(10))
    WITH (autovacuum_enabled = false);
INSERT INTO small SELECT g, 'n' || g, g, 'x' FROM generate_series(1, 100) g;
ANALYZE large, small;
SELECT rule, default_level, size_dependent FROM safe_migrate.rules();

-- adding-required-field
ALTER TABLE large ADD COLUMN required int NOT NULL;
ALTER TABLE large ADD COLUMN required int NOT NULL DEFAULT 0;   -- constant default: metadata only
ALTER TABLE large DROP COLUMN required;                          -- (ban-drop-column, see below)
BEGIN;
CREATE TABLE fresh (id int);
INSERT INTO fresh VALUES (1);
ALTER TABLE fresh ADD COLUMN required int NOT NULL;              -- new table: exempt (fails on its own)
ROLLBACK;

-- require-concurrent-index-creation
CREATE INDEX large_name ON large (name);
CREATE INDEX small_name ON small (name);
BEGIN;
CREATE TABLE fresh (id int, name text);
CREATE INDEX fresh_name ON fresh (name);
COMMIT;
CREATE INDEX CONCURRENTLY large_name ON large (name);

-- require-concurrent-index-deletion
DROP INDEX large_name;
DROP INDEX CONCURRENTLY large_name;
DROP INDEX small_name;

-- constraint-missing-not-valid
ALTER TABLE large ADD CONSTRAINT qty_positive CHECK (qty > 0 AND name <> ')');
ALTER TABLE small ADD CONSTRAINT qty_positive CHECK (qty > 0);
ALTER TABLE large ADD CONSTRAINT qty_positive CHECK (qty > 0 AND name <> ')') NOT VALID;
ALTER TABLE large VALIDATE CONSTRAINT qty_positive;
ALTER TABLE large ADD COLUMN checked int CHECK (checked > 0);   -- inline: no NOT VALID possible
ALTER TABLE large ADD CONSTRAINT qty_whole_row CHECK ((large).qty > 0);   -- a whole-row reference

-- adding-foreign-key-constraint and foreign-key-missing-index
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT g FROM generate_series(1, 5000) g;
ALTER TABLE large ADD CONSTRAINT large_qty_fkey FOREIGN KEY (qty) REFERENCES parent (id);
ALTER TABLE large ADD CONSTRAINT large_qty_fkey FOREIGN KEY (qty) REFERENCES parent (id) NOT VALID;
ALTER TABLE large VALIDATE CONSTRAINT large_qty_fkey;
CREATE INDEX CONCURRENTLY large_id_qty ON large (id, qty);
ALTER TABLE small ADD CONSTRAINT small_qty_fkey FOREIGN KEY (qty) REFERENCES parent (id);
CREATE INDEX small_qty ON small (qty);
ALTER TABLE small DROP CONSTRAINT small_qty_fkey;
ALTER TABLE small ADD CONSTRAINT small_qty_fkey FOREIGN KEY (qty) REFERENCES parent (id);

-- setting-not-null-field
ALTER TABLE large ALTER COLUMN name SET NOT NULL;
ALTER TABLE small ALTER COLUMN name SET NOT NULL;
ALTER TABLE large ADD CONSTRAINT large_name_not_null CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE large ALTER COLUMN name SET NOT NULL;                -- not validated yet: no proof
ALTER TABLE large VALIDATE CONSTRAINT large_name_not_null;
ALTER TABLE large ALTER COLUMN name SET NOT NULL;                -- proven: no scan, allowed
ALTER TABLE large DROP CONSTRAINT large_name_not_null;

-- validate-in-locking-transaction: a VALIDATE in the transaction that added
-- the NOT VALID constraint scans under that statement's ACCESS EXCLUSIVE lock.
BEGIN;
ALTER TABLE large ADD CONSTRAINT qty_not_negative CHECK (qty >= 0) NOT VALID;
ALTER TABLE large VALIDATE CONSTRAINT qty_not_negative;
ROLLBACK;
ALTER TABLE large ADD CONSTRAINT qty_not_negative CHECK (qty >= 0) NOT VALID;
ALTER TABLE large VALIDATE CONSTRAINT qty_not_negative;          -- committed in between: fine
ALTER TABLE large DROP CONSTRAINT qty_not_negative;

-- disallowed-unique-constraint
ALTER TABLE large ADD CONSTRAINT large_name_key UNIQUE (name);
CREATE UNIQUE INDEX CONCURRENTLY large_name_key ON large (name);
ALTER TABLE large ADD CONSTRAINT large_name_key UNIQUE USING INDEX large_name_key;
ALTER TABLE small ADD CONSTRAINT small_name_key UNIQUE (name);

-- changing-column-type: only when PostgreSQL really rewrites
ALTER TABLE large ALTER COLUMN qty TYPE bigint;
ALTER TABLE large ALTER COLUMN note TYPE varchar(20);            -- no rewrite: allowed
ALTER TABLE large ALTER COLUMN note TYPE text;                   -- no rewrite: allowed
ALTER TABLE small ALTER COLUMN qty TYPE bigint;

-- table-rewrite: volatile defaults, identity and serial columns, persistence
ALTER TABLE large ADD COLUMN created timestamptz DEFAULT clock_timestamp();
ALTER TABLE large ADD COLUMN created timestamptz DEFAULT now();  -- stable: evaluated once, no rewrite
ALTER TABLE large ADD COLUMN seq bigserial;
ALTER TABLE large ADD COLUMN ident int GENERATED ALWAYS AS IDENTITY;
ALTER TABLE large SET UNLOGGED;
ALTER TABLE small ADD COLUMN seq bigserial;

-- set-tablespace (moving it to where it already is copies nothing: allowed;
-- the rule itself needs a second tablespace, see the GoogleTest suite)
ALTER TABLE large SET TABLESPACE pg_default;

-- renaming-column, renaming-table
ALTER TABLE large RENAME COLUMN name TO full_name;
ALTER TABLE large RENAME TO larger;
ALTER TABLE small RENAME COLUMN note TO remark;                  -- not size dependent: refused too
BEGIN;
CREATE TABLE fresh2 (id int, a int);
ALTER TABLE fresh2 RENAME COLUMN a TO b;
ALTER TABLE fresh2 RENAME TO fresh3;
ROLLBACK;

-- ban-drop-column, ban-drop-table, ban-truncate
ALTER TABLE small DROP COLUMN note;
DROP TABLE small;
TRUNCATE small;
BEGIN;
CREATE TABLE fresh4 (id int, a int);
ALTER TABLE fresh4 DROP COLUMN a;
TRUNCATE fresh4;
DROP TABLE fresh4;
COMMIT;

-- vacuum-full, cluster, require-concurrent-reindex
VACUUM FULL large;
VACUUM FULL small;
VACUUM large;
CLUSTER large USING large_pkey;
REINDEX TABLE large;
REINDEX INDEX large_pkey;
REINDEX TABLE CONCURRENTLY large;
REINDEX TABLE small;

-- A table never analyzed is not small: its size comes from its pages.
CREATE TABLE unanalyzed (id int, name text) WITH (autovacuum_enabled = false);
INSERT INTO unanalyzed SELECT g, 'n' || g FROM generate_series(1, 5000) g;
SELECT reltuples FROM pg_class WHERE relname = 'unanalyzed';
CREATE INDEX unanalyzed_id ON unanalyzed (id);

-- The levels: policy = warn reports the same text as a WARNING ...
SET safe_migrate.policy = warn;
CREATE INDEX large_qty ON large (qty);
DROP INDEX large_qty;
-- ... off checks nothing ...
SET safe_migrate.policy = off;
CREATE INDEX large_qty ON large (qty);
RESET safe_migrate.policy;
-- ... and per-rule levels.
SET safe_migrate.rule_levels = 'require-concurrent-index-deletion=warn, foreign-key-missing-index=error';
DROP INDEX large_qty;
ALTER TABLE small DROP CONSTRAINT small_qty_fkey;
DROP INDEX small_qty;
ALTER TABLE small ADD CONSTRAINT small_qty_fkey FOREIGN KEY (qty) REFERENCES parent (id);
SET safe_migrate.rule_levels = 'no-such-rule=off';
SET safe_migrate.rule_levels = 'ban-drop-table=never';
RESET safe_migrate.rule_levels;

-- Inside migrate_apply the same rules hold; an administrator may override
-- one rule explicitly, with a reason that lands in the history.
SELECT * FROM migrate_apply('CREATE INDEX large_qty ON large (qty);', 'policy-1');
SELECT version, status, statements FROM migrate_apply($$
-- safe_migrate:allow require-concurrent-index-creation the table is quiet at night
CREATE INDEX large_qty ON large (qty);
$$, 'policy-2');
SELECT version, status, overrides FROM safe_migrate.history WHERE version LIKE 'policy-%' ORDER BY id;
-- an allowance covers its rule only
SELECT * FROM migrate_apply($$
-- safe_migrate:allow require-concurrent-index-creation the table is quiet at night
CREATE INDEX large_name2 ON large (name);
DROP TABLE small;
$$, 'policy-3');
SELECT * FROM migrate_apply(E'-- safe_migrate:allow no-such-rule because\nSELECT 1;', 'policy-4');

-- The DDL log and drift: what ran outside migrate_apply.
SELECT command_tag, object_identity, managed, migration_version
  FROM safe_migrate.ddl_log WHERE object_identity LIKE '%large_qty%' ORDER BY logged_at;
SELECT command_tag, object_identity FROM migrate_drift()
 WHERE object_identity LIKE 'public.large%' ORDER BY 1, 2 LIMIT 5;
-- The log keeps a statement's text once, however many objects it touches,
-- cut to safe_migrate.ddl_log_max_statement_bytes, and nothing of
-- temporary objects.
SET safe_migrate.ddl_log_max_statement_bytes = 40;
-- one query string (\; keeps psql from splitting it), one text
CREATE TABLE log_a (id int PRIMARY KEY) \; CREATE TABLE log_b (id int);
CREATE TEMP TABLE log_temp (id int PRIMARY KEY);
ALTER TABLE log_temp ADD COLUMN v int DEFAULT 1 CHECK (v > 0);
DROP TABLE log_temp;
RESET safe_migrate.ddl_log_max_statement_bytes;
SELECT command_tag, object_identity, statement, statement_bytes, statement_truncated
  FROM safe_migrate.ddl_log WHERE object_identity LIKE '%log\_%' ORDER BY logged_at;
SELECT count(*) AS statements
  FROM safe_migrate.ddl_entries WHERE statement LIKE 'CREATE TABLE log_a%';
SELECT statement FROM migrate_drift() WHERE object_identity = 'public.log_b';
SET safe_migrate.policy = off;
DROP TABLE log_a, log_b;
RESET safe_migrate.policy;

-- large-unbatched-dml: inside a migration, an UPDATE or DELETE of many rows
-- in one transaction is refused with a pointer to the backfill.
CREATE TABLE dml (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false);
INSERT INTO dml SELECT g, g FROM generate_series(1, 5000) g;
ANALYZE dml;
SELECT * FROM migrate_apply('DELETE FROM dml WHERE id > 10;', 'policy-5');
SELECT version, status FROM migrate_apply('UPDATE dml SET v = v + 1 WHERE id <= 500;', 'policy-6');
UPDATE dml SET v = v + 1;   -- outside migrate_apply: not a migration, not checked
SELECT * FROM migrate_apply('UPDATE dml SET v = v + 1;', 'policy-7');

-- migrate_plan: a dry run that changes nothing and waits for no lock.
SELECT statement, command, relation, lock_mode, rows, bytes, effect, verdict,
       jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan($$
-- migrate:up
CREATE TABLE plan_new (id int PRIMARY KEY, large_id int);
CREATE INDEX plan_new_large ON plan_new (large_id);
ALTER TABLE large ADD COLUMN plan_a text;
ALTER TABLE large ADD COLUMN plan_b timestamptz DEFAULT clock_timestamp();
ALTER TABLE large ALTER COLUMN qty TYPE bigint;
ALTER TABLE large ALTER COLUMN note TYPE varchar(200);
ALTER TABLE large ADD CONSTRAINT plan_check CHECK (qty > 0) NOT VALID;
ALTER TABLE large VALIDATE CONSTRAINT plan_check;
CREATE INDEX CONCURRENTLY large_plan ON large (qty);
CREATE INDEX large_plan2 ON large (qty);
UPDATE large SET qty = 0;
VACUUM FULL large;
DROP TABLE small;
SELECT 1;
-- migrate:down
SELECT 1;
$$);
SELECT rules -> 0 ->> 'hint' AS hint FROM migrate_plan('ALTER TABLE large ALTER COLUMN note SET NOT NULL;');
-- (name is NOT NULL since the proven SET NOT NULL above: nothing to check)
SELECT effect, verdict FROM migrate_plan('ALTER TABLE large ALTER COLUMN name SET NOT NULL;');
-- a section wrapped in BEGIN; ... COMMIT;: planned as one transaction, and a
-- statement that cannot run in one is refused as migrate_apply refuses it
SELECT statement, command, verdict FROM migrate_plan('BEGIN; CREATE TABLE plan_w (i int); CREATE INDEX plan_w_i ON plan_w (i); COMMIT;');
SELECT statement FROM migrate_plan('BEGIN; CREATE TABLE plan_w (i int); CREATE INDEX CONCURRENTLY plan_w_i ON plan_w (i); COMMIT;');
-- nothing changed
SELECT count(*) AS plan_columns FROM pg_attribute
 WHERE attrelid = 'large'::regclass AND attname LIKE 'plan_%';
SELECT to_regclass('plan_new') AS plan_new;
-- it does not wait: a session holding ACCESS EXCLUSIVE on the table would
-- block any statement that locks it; the plan takes no lock on it (see
-- test/t/007_plan_no_wait.pl)

-- Edges.  A temporary table is private to its session: exempt.
CREATE TEMP TABLE scratch AS SELECT g AS id FROM generate_series(1, 5000) g;
ANALYZE scratch;
CREATE INDEX scratch_id ON scratch (id);
ALTER TABLE scratch ALTER COLUMN id TYPE bigint;
-- A partitioned table counts its partitions; CREATE INDEX CONCURRENTLY
-- cannot build on it, so the hint gives the per-partition way.
CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
    WITH (autovacuum_enabled = false);
INSERT INTO events SELECT g, '2026-01-01'::date + (g % 300) FROM generate_series(1, 5000) g;
ANALYZE events_2026;
CREATE INDEX events_at ON events (at);
ALTER TABLE events ALTER COLUMN id TYPE bigint;
-- Several subcommands: each is judged.
ALTER TABLE large ADD COLUMN ok_col int, ALTER COLUMN qty SET NOT NULL;
SELECT count(*) AS ok_col_added FROM pg_attribute WHERE attrelid = 'large'::regclass AND attname = 'ok_col';
-- An unknown table is PostgreSQL's error, not ours.
CREATE INDEX ON no_such_table (id);
DROP TABLE IF EXISTS no_such_table;
-- A type change of a column other tables' foreign keys reference adds those
-- keys again: unless the new type compares values as the old one did, every
-- row of the referencing table is checked under ACCESS EXCLUSIVE.
CREATE TABLE fk_small (id int PRIMARY KEY, code varchar(10) UNIQUE);
INSERT INTO fk_small SELECT g, 'c' || g FROM generate_series(1, 10) g;
CREATE TABLE fk_large (id int PRIMARY KEY, small_id int REFERENCES fk_small (id),
    small_code varchar(10) REFERENCES fk_small (code)) WITH (autovacuum_enabled = false);
INSERT INTO fk_large SELECT g, 1 + g % 10, 'c' || (1 + g % 10) FROM generate_series(1, 5000) g;
ANALYZE fk_small, fk_large;
ALTER TABLE fk_small ALTER COLUMN id TYPE bigint;            -- int -> bigint: fk_large checked again
ALTER TABLE fk_small ALTER COLUMN code TYPE varchar(20);     -- same comparison: no check
ALTER TABLE fk_small ALTER COLUMN code TYPE text;            -- binary coercible: no check
