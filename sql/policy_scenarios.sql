-- A labelled scenario set for the safe-DDL policy (issue 12): every scenario
-- is played by scen_owner, a plain role (no override rights) that owns
-- tables made "large" by a lowered threshold (5000 rows >= 1000).  Each
-- comment says what PostgreSQL really does (lock, rewrite / scan or not)
-- and the expected verdict: BLOCK (rule) or OK.  Dangerous and safe variants
-- side by side: a false alarm is as wrong as a miss.  The "truth" section
-- checks the claims about rewrites and scans against PostgreSQL itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS safe_migrate;
SET client_min_messages = notice;
SET safe_migrate.large_table_rows = 1000;
SET safe_migrate.large_table_bytes = '100MB';
SET timezone = 'UTC';
CREATE ROLE scen_owner;
CREATE SCHEMA scen AUTHORIZATION scen_owner;
CREATE SCHEMA scen_moved AUTHORIZATION scen_owner;

-- What PostgreSQL does to a table, asked of PostgreSQL (run by the
-- superuser, policy off, undone): 'rewrite' when the table gets a new
-- relfilenode, 'scan' when it is read from start to end, else 'none'.
CREATE FUNCTION scen_truth(stmt text, tbl regclass) RETURNS text
LANGUAGE plpgsql SET search_path = scen, public AS $$
DECLARE
    f0 oid; f1 oid; s0 bigint; s1 bigint;
BEGIN
    SELECT relfilenode INTO f0 FROM pg_catalog.pg_class WHERE oid = tbl;
    s0 := pg_catalog.pg_stat_get_xact_numscans(tbl);
    BEGIN
        PERFORM pg_catalog.set_config('safe_migrate.policy', 'off', true);
        EXECUTE stmt;
        SELECT relfilenode INTO f1 FROM pg_catalog.pg_class WHERE oid = tbl;
        s1 := pg_catalog.pg_stat_get_xact_numscans(tbl);
        RAISE EXCEPTION USING ERRCODE = 'SM999';
    EXCEPTION WHEN SQLSTATE 'SM999' THEN NULL;
    END;
    RETURN CASE WHEN f1 IS DISTINCT FROM f0 THEN 'rewrite'
                WHEN s1 > s0 THEN 'scan' ELSE 'none' END;
END $$;

-- a foreign data wrapper without a handler: foreign tables can be defined
-- (not read); it holds no data of ours
CREATE FOREIGN DATA WRAPPER scen_fdw;
CREATE SERVER scen_srv FOREIGN DATA WRAPPER scen_fdw;
GRANT USAGE ON FOREIGN SERVER scen_srv TO scen_owner;

SET ROLE scen_owner;
SET search_path = scen, public;
BEGIN;   -- created in one transaction, committed: existing tables from here on
CREATE TYPE mood AS ENUM ('calm', 'angry');
CREATE DOMAIN posint AS int;
CREATE DOMAIN checked_int AS int CHECK (VALUE > 0);
CREATE SEQUENCE seq;
CREATE TABLE big (id int PRIMARY KEY, a int, b text, c int, ts timestamp, ts2 timestamp,
                  note varchar(10), d posint, m mood, nn int NOT NULL, q int)
    WITH (autovacuum_enabled = false);
CREATE INDEX big_ts ON big (ts);
INSERT INTO big SELECT g, g, 'b' || g, g, timestamp '2026-01-01' + g * interval '1 minute',
       timestamp '2026-01-01', 'x', g, 'calm', g, g FROM generate_series(1, 5000) g;
CREATE TABLE small (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false);
INSERT INTO small SELECT g, g FROM generate_series(1, 10) g;
CREATE TABLE ref (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
INSERT INTO ref SELECT g FROM generate_series(1, 5000) g;
CREATE UNLOGGED TABLE big_u (id int, a int) WITH (autovacuum_enabled = false);
INSERT INTO big_u SELECT g, g FROM generate_series(1, 5000) g;
CREATE MATERIALIZED VIEW mv AS SELECT id, q FROM big;
CREATE UNIQUE INDEX mv_id ON mv (id);
CREATE MATERIALIZED VIEW mv_nokey AS SELECT q FROM big;
CREATE MATERIALIZED VIEW mv_small AS SELECT id FROM small;
CREATE TABLE pt (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (1) TO (10001);
INSERT INTO pt SELECT g, g FROM generate_series(1, 5000) g;
CREATE TABLE loose (id int, at int) WITH (autovacuum_enabled = false);
INSERT INTO loose SELECT g, 10000 + g FROM generate_series(1, 5000) g;
CREATE TABLE loose_empty (id int, at int);
CREATE TABLE loose2 (id int, at int) WITH (autovacuum_enabled = false);
INSERT INTO loose2 SELECT g, 20000 + g FROM generate_series(1, 5000) g;
CREATE TABLE loose3 (id int, at int) WITH (autovacuum_enabled = false);
INSERT INTO loose3 SELECT g, 30000 + g FROM generate_series(1, 5000) g;
CREATE TABLE pd (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE pd_1 PARTITION OF pd FOR VALUES FROM (1) TO (100);
CREATE TABLE pd_def PARTITION OF pd DEFAULT;
INSERT INTO pd SELECT g, 20000 + g FROM generate_series(1, 5000) g;
CREATE TABLE gq (id int NOT NULL, at int NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE gq_1 PARTITION OF gq FOR VALUES FROM (1) TO (3001);
CREATE TABLE gq_2 PARTITION OF gq FOR VALUES FROM (3001) TO (6001);
INSERT INTO gq SELECT g, g FROM generate_series(1, 5000) g;
CREATE TABLE inh_parent (id int, a int);
CREATE INDEX inh_parent_id ON inh_parent (id);
CREATE TABLE inh_child () INHERITS (inh_parent);
INSERT INTO inh_child SELECT g, g FROM generate_series(1, 5000) g;
CREATE VIEW v_small AS SELECT id, v FROM small;
CREATE FOREIGN TABLE ft (id int, a int) SERVER scen_srv;
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER big_noop BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION noop();
COMMIT;
ANALYZE big, small, ref, big_u, mv, mv_nokey, pt_1, gq_1, gq_2, loose, loose2, loose3, pd_1, pd_def, inh_parent, inh_child;
\set VERBOSITY terse

-- ===========================================================================
-- 1. Table rewrites.  PostgreSQL rewrites (new relfilenode, ACCESS
-- EXCLUSIVE for the whole copy) only for some statements; the verdict
-- follows the rewrite, not the spelling.
-- [R01] int -> bigint: rewrite.  BLOCK changing-column-type
BEGIN; ALTER TABLE big ALTER COLUMN a TYPE bigint; ROLLBACK;
-- [R02] varchar(10) -> varchar(20): binary coercible, no rewrite, index kept.  OK
BEGIN; ALTER TABLE big ALTER COLUMN note TYPE varchar(20); ROLLBACK;
-- [R03] varchar -> text: no rewrite.  OK
BEGIN; ALTER TABLE big ALTER COLUMN note TYPE text; ROLLBACK;
-- [R04] text -> varchar(5): length coercion, rewrite.  BLOCK changing-column-type
BEGIN; ALTER TABLE big ALTER COLUMN b TYPE varchar(5); ROLLBACK;
-- [R05] timestamp -> timestamptz with timezone UTC: heap kept, but index
-- big_ts rebuilt under ACCESS EXCLUSIVE.  BLOCK changing-column-type
BEGIN; ALTER TABLE big ALTER COLUMN ts TYPE timestamptz; ROLLBACK;
-- [R06] the same on a column without an index: catalog only.  OK
BEGIN; ALTER TABLE big ALTER COLUMN ts2 TYPE timestamptz; ROLLBACK;
-- [R07] int -> int (same type): nothing to do.  OK
BEGIN; ALTER TABLE big ALTER COLUMN a TYPE int; ROLLBACK;
-- [R08] same type with USING: every value recomputed, rewrite.  BLOCK changing-column-type
BEGIN; ALTER TABLE big ALTER COLUMN a TYPE int USING a + 1; ROLLBACK;
-- [R09] domain without constraints -> its base type: no rewrite.  OK
BEGIN; ALTER TABLE big ALTER COLUMN d TYPE int; ROLLBACK;
-- [R10] enum -> text: rewrite.  BLOCK changing-column-type
BEGIN; ALTER TABLE big ALTER COLUMN m TYPE text; ROLLBACK;
-- [R11] ADD COLUMN with a constant default: stored in the catalog (fast default).  OK
BEGIN; ALTER TABLE big ADD COLUMN x int DEFAULT 0; ROLLBACK;
-- [R12] DEFAULT now(): stable, evaluated once, no rewrite.  OK
BEGIN; ALTER TABLE big ADD COLUMN x timestamptz DEFAULT now(); ROLLBACK;
-- [R13] DEFAULT random(): volatile, rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x float8 DEFAULT random(); ROLLBACK;
-- [R14] DEFAULT gen_random_uuid(): volatile, rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x uuid DEFAULT gen_random_uuid(); ROLLBACK;
-- [R15] DEFAULT clock_timestamp(): volatile, rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x timestamptz DEFAULT clock_timestamp(); ROLLBACK;
-- [R16] DEFAULT nextval(): volatile, rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x bigint DEFAULT nextval('seq'); ROLLBACK;
-- [R17] serial: a nextval default, rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x serial; ROLLBACK;
-- [R18] bigserial: rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x bigserial; ROLLBACK;
-- [R19] identity column: rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x int GENERATED ALWAYS AS IDENTITY; ROLLBACK;
-- [R20] stored generated column: rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x int GENERATED ALWAYS AS (a * 2) STORED; ROLLBACK;
-- [R21] ADD COLUMN without a default: catalog only.  OK
BEGIN; ALTER TABLE big ADD COLUMN x int; ROLLBACK;
-- [R22] NOT NULL with a constant default: no rewrite.  OK
BEGIN; ALTER TABLE big ADD COLUMN x int NOT NULL DEFAULT 0; ROLLBACK;
-- [R23] NOT NULL without a default on a table with rows: fails after a scan.  BLOCK adding-required-field
BEGIN; ALTER TABLE big ADD COLUMN x int NOT NULL; ROLLBACK;
-- [R24] a domain with a CHECK: every row checked by a rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x checked_int; ROLLBACK;
-- [R25] a domain without constraints: catalog only.  OK
BEGIN; ALTER TABLE big ADD COLUMN x posint; ROLLBACK;
-- [R26] SET UNLOGGED: rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big SET UNLOGGED; ROLLBACK;
-- [R27] SET LOGGED of an unlogged table: rewrite.  BLOCK table-rewrite
BEGIN; ALTER TABLE big_u SET LOGGED; ROLLBACK;
-- [R28] SET LOGGED of a logged table: nothing to do.  OK
BEGIN; ALTER TABLE big SET LOGGED; ROLLBACK;
-- [R29] SET ACCESS METHOD to the one it has: nothing to do.  OK
BEGIN; ALTER TABLE big SET ACCESS METHOD heap; ROLLBACK;
-- [R30] SET DEFAULT of a volatile expression: for new rows only.  OK
BEGIN; ALTER TABLE big ALTER COLUMN a SET DEFAULT (random() * 10)::int; ROLLBACK;
-- [R31] ADD GENERATED AS IDENTITY on a NOT NULL column: catalog only.  OK
BEGIN; ALTER TABLE big ALTER COLUMN nn ADD GENERATED ALWAYS AS IDENTITY; ROLLBACK;
-- [R32] SET STORAGE / COMPRESSION / STATISTICS: catalog only.  OK
BEGIN; ALTER TABLE big ALTER COLUMN b SET STORAGE EXTERNAL, ALTER COLUMN b SET COMPRESSION pglz,
    ALTER COLUMN a SET STATISTICS 500; ROLLBACK;
-- [R33] SET TABLESPACE to where it is: nothing copied.  OK
BEGIN; ALTER TABLE big SET TABLESPACE pg_default; ROLLBACK;
-- [R34] ADD COLUMN with an array constant default: no rewrite.  OK
BEGIN; ALTER TABLE big ADD COLUMN x int[] DEFAULT '{}'; ROLLBACK;
-- [R35] CLUSTER: rewrite under ACCESS EXCLUSIVE.  BLOCK cluster
CLUSTER big USING big_pkey;
-- [R36] CLUSTER of a small table.  OK
CLUSTER small USING small_pkey;
-- [R49] CLUSTER without an index to use: PostgreSQL's own error.  REFUSED
CLUSTER big;
CLUSTER big USING no_such_index;
-- [R37] VACUUM FULL: rewrite.  BLOCK vacuum-full
VACUUM FULL big;
-- [R38] VACUUM (FULL, ANALYZE) spelled with options.  BLOCK vacuum-full
VACUUM (FULL, ANALYZE) big;
-- [R39] plain VACUUM and VACUUM (FULL false): no rewrite.  OK
VACUUM big;
VACUUM (FULL false) big;
-- [R40] VACUUM FULL of a small table.  OK
VACUUM FULL small;
-- [R41] type change on a partitioned table rewrites every partition.  BLOCK changing-column-type
BEGIN; ALTER TABLE pt ALTER COLUMN id TYPE bigint; ROLLBACK;
-- [R42] a volatile default on a partitioned table: every partition rewritten.  BLOCK table-rewrite
BEGIN; ALTER TABLE pt ADD COLUMN x float8 DEFAULT random(); ROLLBACK;
-- [R43] type change on an inheritance parent rewrites its children.  BLOCK changing-column-type
BEGIN; ALTER TABLE inh_parent ALTER COLUMN a TYPE bigint; ROLLBACK;
-- [R44] a collation change of an indexed column: index rebuilt.  BLOCK changing-column-type
CREATE INDEX CONCURRENTLY big_b ON big (b);
BEGIN; ALTER TABLE big ALTER COLUMN b TYPE text COLLATE "C"; ROLLBACK;
-- [R45] a collation change of a column without an index: catalog only.  OK
BEGIN; ALTER TABLE big ALTER COLUMN note TYPE varchar(10) COLLATE "C"; ROLLBACK;
-- [R46] varchar widened on a column with a validated CHECK: the heap is
-- kept, but the CHECK is re-added and every row re-checked under ACCESS
-- EXCLUSIVE.  BLOCK changing-column-type
ALTER TABLE big ADD CONSTRAINT big_note_set CHECK (note <> '') NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_note_set;
BEGIN; ALTER TABLE big ALTER COLUMN note TYPE varchar(20); ROLLBACK;
-- [R47] ... the CHECK dropped and added back NOT VALID in the same statement: no scan.  OK
BEGIN; ALTER TABLE big DROP CONSTRAINT big_note_set, ALTER COLUMN note TYPE varchar(20),
    ADD CONSTRAINT big_note_set CHECK (note <> '') NOT VALID; ROLLBACK;
-- [R48] ... a NOT VALID check is not re-checked.  OK
ALTER TABLE big ADD CONSTRAINT big_ts2_set CHECK (ts2 IS NOT NULL) NOT VALID;
BEGIN; ALTER TABLE big ALTER COLUMN ts2 TYPE timestamptz; ROLLBACK;

-- ===========================================================================
-- 2. Scans under a lock.
-- [S01] SET NOT NULL: scan under ACCESS EXCLUSIVE.  BLOCK setting-not-null-field
BEGIN; ALTER TABLE big ALTER COLUMN a SET NOT NULL; ROLLBACK;
-- [S02] ... with a validated CHECK (a IS NOT NULL): no scan.  OK
ALTER TABLE big ADD CONSTRAINT big_a_nn CHECK (a IS NOT NULL) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_a_nn;
BEGIN; ALTER TABLE big ALTER COLUMN a SET NOT NULL; ROLLBACK;
-- [S03] ... with a NOT VALID check, which proves nothing: scan.  BLOCK setting-not-null-field
ALTER TABLE big ADD CONSTRAINT big_c_nn CHECK (c IS NOT NULL) NOT VALID;
BEGIN; ALTER TABLE big ALTER COLUMN c SET NOT NULL; ROLLBACK;
-- [S04] SET NOT NULL of a column already NOT NULL: nothing to check.  OK
BEGIN; ALTER TABLE big ALTER COLUMN nn SET NOT NULL; ROLLBACK;
-- [S05] SET NOT NULL on a partitioned table scans its partitions.  BLOCK setting-not-null-field
BEGIN; ALTER TABLE pt ALTER COLUMN id SET NOT NULL; ROLLBACK;
-- [S06] ... on an inheritance parent scans its children.  BLOCK setting-not-null-field
BEGIN; ALTER TABLE inh_parent ALTER COLUMN a SET NOT NULL; ROLLBACK;
-- [S07] ... with ONLY: the (empty) parent alone.  OK
BEGIN; ALTER TABLE ONLY inh_parent ALTER COLUMN a SET NOT NULL; ROLLBACK;
-- [S08] ADD CHECK: scan under ACCESS EXCLUSIVE.  BLOCK constraint-missing-not-valid
BEGIN; ALTER TABLE big ADD CONSTRAINT big_a_pos CHECK (a > 0); ROLLBACK;
-- [S09] ADD CHECK ... NOT VALID: no scan.  OK
BEGIN; ALTER TABLE big ADD CONSTRAINT big_a_pos CHECK (a > 0) NOT VALID; ROLLBACK;
-- [S10] VALIDATE in its own transaction: SHARE UPDATE EXCLUSIVE, reads and writes go on.  OK
ALTER TABLE big ADD CONSTRAINT big_a_pos CHECK (a > 0) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_a_pos;
-- [S11] VALIDATE in the transaction that added it: scans under the ACCESS
-- EXCLUSIVE lock ADD took.  BLOCK validate-in-locking-transaction
BEGIN; ALTER TABLE big ADD CONSTRAINT big_a_pos2 CHECK (a > 0) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_a_pos2; ROLLBACK;
-- [S12] CHECK inline on ADD COLUMN: the table is still scanned.  BLOCK constraint-missing-not-valid
BEGIN; ALTER TABLE big ADD COLUMN x int CHECK (x > 0); ROLLBACK;
-- [S13] CHECK on an inheritance parent: its children are scanned.  BLOCK constraint-missing-not-valid
BEGIN; ALTER TABLE inh_parent ADD CONSTRAINT inh_pos CHECK (a > 0); ROLLBACK;
-- [S14] CHECK ... NO INHERIT on the (empty) parent: its children are not checked.  OK
BEGIN; ALTER TABLE inh_parent ADD CONSTRAINT inh_pos CHECK (a > 0) NO INHERIT; ROLLBACK;
-- [S15] FOREIGN KEY: scans big under SHARE ROW EXCLUSIVE on big and ref.  BLOCK adding-foreign-key-constraint
BEGIN; ALTER TABLE big ADD CONSTRAINT big_c_fk FOREIGN KEY (c) REFERENCES ref (id); ROLLBACK;
-- [S16] FOREIGN KEY ... NOT VALID: no scan.  OK
BEGIN; ALTER TABLE big ADD CONSTRAINT big_c_fk FOREIGN KEY (c) REFERENCES ref (id) NOT VALID; ROLLBACK;
-- [S17] REFERENCES on a column added without a default: all NULL, no scan.  OK
BEGIN; ALTER TABLE big ADD COLUMN x int REFERENCES ref (id); ROLLBACK;
-- [S18] ... with a default: every row checked.  BLOCK adding-foreign-key-constraint
BEGIN; ALTER TABLE big ADD COLUMN x int DEFAULT 1 REFERENCES ref (id); ROLLBACK;
-- [S19] FOREIGN KEY from the small table to big: scans 10 rows.  OK
BEGIN; ALTER TABLE small ADD CONSTRAINT small_v_fk FOREIGN KEY (v) REFERENCES big (id); ROLLBACK;
-- [S20] FOREIGN KEY on an inheritance parent: keys are not inherited, the empty parent alone.  OK
BEGIN; ALTER TABLE inh_parent ADD CONSTRAINT inh_ref FOREIGN KEY (id) REFERENCES ref (id); ROLLBACK;
-- [S21] VALIDATE of a foreign key in its own transaction.  OK
ALTER TABLE big ADD CONSTRAINT big_c_fk FOREIGN KEY (c) REFERENCES ref (id) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_c_fk;
-- [S22] VALIDATE of a foreign key added NOT VALID in the same transaction:
-- the scan runs under SHARE ROW EXCLUSIVE (writes blocked).  BLOCK validate-in-locking-transaction
BEGIN; ALTER TABLE big ADD CONSTRAINT big_a_fk FOREIGN KEY (a) REFERENCES ref (id) NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_a_fk; ROLLBACK;
-- [S23] VALIDATE after LOCK TABLE ... IN SHARE MODE.  BLOCK validate-in-locking-transaction
BEGIN; LOCK TABLE big IN SHARE MODE; ALTER TABLE big VALIDATE CONSTRAINT big_a_pos; ROLLBACK;
-- [S24] ALTER DOMAIN ADD CONSTRAINT: every column of the domain checked
-- under SHARE.  BLOCK ban-alter-domain-with-add-constraint
BEGIN; ALTER DOMAIN posint ADD CONSTRAINT posint_pos CHECK (VALUE > 0); ROLLBACK;
-- [S25] ... NOT VALID: new values only.  OK
BEGIN; ALTER DOMAIN posint ADD CONSTRAINT posint_pos CHECK (VALUE > 0) NOT VALID; ROLLBACK;
-- [S26] ALTER DOMAIN SET NOT NULL: scans too.  BLOCK ban-alter-domain-with-add-constraint
BEGIN; ALTER DOMAIN posint SET NOT NULL; ROLLBACK;
-- [S27] ATTACH PARTITION without a CHECK proving the bound: scan under
-- ACCESS EXCLUSIVE on loose.  BLOCK attach-partition-scan
BEGIN; ALTER TABLE pt ATTACH PARTITION loose FOR VALUES FROM (10001) TO (20001); ROLLBACK;
-- [S28] ... with a validated CHECK that implies the bound: no scan.  OK
ALTER TABLE loose ADD CONSTRAINT loose_bound CHECK (at IS NOT NULL AND at >= 10001 AND at < 20001) NOT VALID;
ALTER TABLE loose VALIDATE CONSTRAINT loose_bound;
BEGIN; ALTER TABLE pt ATTACH PARTITION loose FOR VALUES FROM (10001) TO (20001); ROLLBACK;
-- [S29] ATTACH to a parent with a DEFAULT partition: the default partition
-- (5000 rows) is scanned.  BLOCK attach-partition-scan
BEGIN; ALTER TABLE pd ATTACH PARTITION loose_empty FOR VALUES FROM (100) TO (200); ROLLBACK;
-- [S30] ADD UNIQUE: index built under ACCESS EXCLUSIVE.  BLOCK disallowed-unique-constraint
BEGIN; ALTER TABLE big ADD CONSTRAINT big_a_key UNIQUE (a); ROLLBACK;
-- [S31] ADD PRIMARY KEY on a large table.  BLOCK disallowed-unique-constraint
BEGIN; ALTER TABLE big_u ADD PRIMARY KEY (id); ROLLBACK;
-- [S32] UNIQUE USING INDEX built CONCURRENTLY: catalog only.  OK
CREATE UNIQUE INDEX CONCURRENTLY big_q_uidx ON big (q);
BEGIN; ALTER TABLE big ADD CONSTRAINT big_q_key UNIQUE USING INDEX big_q_uidx; ROLLBACK;
-- [S33] PRIMARY KEY USING INDEX on a nullable column: an implicit SET NOT
-- NULL scan.  BLOCK setting-not-null-field
BEGIN; ALTER TABLE big DROP CONSTRAINT big_pkey;
ALTER TABLE big ADD CONSTRAINT big_pk2 PRIMARY KEY USING INDEX big_q_uidx; ROLLBACK;
-- [S34] PRIMARY KEY USING INDEX on a NOT NULL column.  OK
CREATE UNIQUE INDEX CONCURRENTLY big_nn_uidx ON big (nn);
BEGIN; ALTER TABLE big DROP CONSTRAINT big_pkey;
ALTER TABLE big ADD CONSTRAINT big_pk2 PRIMARY KEY USING INDEX big_nn_uidx; ROLLBACK;
-- [S35] UNIQUE on an inheritance parent: the empty parent's own index.  OK
BEGIN; ALTER TABLE inh_parent ADD CONSTRAINT inh_u UNIQUE (id); ROLLBACK;
-- [S36] EXCLUDE constraint: index built and rows checked under ACCESS EXCLUSIVE.  BLOCK disallowed-unique-constraint
BEGIN; ALTER TABLE big ADD CONSTRAINT big_ex EXCLUDE USING btree (id WITH =); ROLLBACK;
-- [S37] CREATE INDEX: SHARE lock (writes wait) while it builds.  BLOCK require-concurrent-index-creation
BEGIN; CREATE INDEX big_c ON big (c); ROLLBACK;
-- [S38] CREATE INDEX CONCURRENTLY.  OK
CREATE INDEX CONCURRENTLY big_c ON big (c);
-- [S39] CREATE UNIQUE INDEX.  BLOCK require-concurrent-index-creation
BEGIN; CREATE UNIQUE INDEX big_id2 ON big (id); ROLLBACK;
-- [S40] CREATE INDEX on the small table.  OK
BEGIN; CREATE INDEX small_v ON small (v); ROLLBACK;
-- [S41] CREATE INDEX IF NOT EXISTS of an existing name: skipped, builds nothing.  OK
BEGIN; CREATE INDEX IF NOT EXISTS big_ts ON big (ts); ROLLBACK;
-- [S42] ... of a new name: builds.  BLOCK require-concurrent-index-creation
BEGIN; CREATE INDEX IF NOT EXISTS big_ts_again ON big (ts); ROLLBACK;
-- [S43] CREATE INDEX on a partitioned table: built on every partition.  BLOCK require-concurrent-index-creation
BEGIN; CREATE INDEX pt_id ON pt (id); ROLLBACK;
-- [S44] CREATE INDEX ON ONLY a partitioned table: an invalid index, nothing built.  OK
BEGIN; CREATE INDEX pt_id ON ONLY pt (id); ROLLBACK;
-- [S45] CREATE INDEX on an inheritance parent: the children are not indexed.  OK
BEGIN; CREATE INDEX inh_parent_a ON inh_parent (a); ROLLBACK;
-- [S46] DROP INDEX: ACCESS EXCLUSIVE on big.  BLOCK require-concurrent-index-deletion
BEGIN; DROP INDEX big_c; ROLLBACK;
-- [S47] DROP INDEX CONCURRENTLY.  OK
DROP INDEX CONCURRENTLY big_c;
-- [S48] DROP INDEX of an inheritance parent's own index.  OK
BEGIN; DROP INDEX inh_parent_id; ROLLBACK;
-- [S49] REINDEX TABLE: SHARE lock.  BLOCK require-concurrent-reindex
BEGIN; REINDEX TABLE big; ROLLBACK;
-- [S50] REINDEX INDEX.  BLOCK require-concurrent-reindex
BEGIN; REINDEX INDEX big_ts; ROLLBACK;
-- [S51] REINDEX TABLE CONCURRENTLY.  OK
REINDEX TABLE CONCURRENTLY big;
-- [S52] REINDEX of an inheritance parent: its own (empty) indexes only.  OK
BEGIN; REINDEX TABLE inh_parent; ROLLBACK;
-- [S53] VACUUM FULL of an inheritance parent: the parent alone (PostgreSQL
-- does not recurse into inheritance children).  OK
VACUUM FULL inh_parent;
-- [S54] CLUSTER of an inheritance parent: the parent alone.  OK
CLUSTER inh_parent USING inh_parent_id;
-- [S55] VACUUM FULL of a partitioned table: every partition.  BLOCK vacuum-full
VACUUM FULL pt;
-- [S56] DETACH PARTITION: ACCESS EXCLUSIVE on pt.  BLOCK require-concurrent-partition-detach
BEGIN; ALTER TABLE pt DETACH PARTITION pt_1; ROLLBACK;

-- A partitioned table gets a key or index by attaching what each partition
-- already has: PostgreSQL then builds / checks nothing.
-- [S57] FOREIGN KEY on a partitioned table: every partition checked.  BLOCK adding-foreign-key-constraint
BEGIN; ALTER TABLE gq ADD CONSTRAINT gq_ref FOREIGN KEY (id) REFERENCES ref (id); ROLLBACK;
-- [S58] ... NOT VALID: PostgreSQL 15 does not support it on a partitioned table.  REFUSED
BEGIN; ALTER TABLE gq ADD CONSTRAINT gq_ref FOREIGN KEY (id) REFERENCES ref (id) NOT VALID; ROLLBACK;
-- [S59] PRIMARY KEY on a partitioned table: built on every partition.  BLOCK disallowed-unique-constraint
BEGIN; ALTER TABLE gq ADD PRIMARY KEY (id, at); ROLLBACK;
-- [S60] one partition prepared (a PRIMARY KEY from an index built
-- CONCURRENTLY, a validated key): the other is still built on.  BLOCK disallowed-unique-constraint
CREATE UNIQUE INDEX CONCURRENTLY gq_1_key ON gq_1 (id, at);
ALTER TABLE gq_1 ADD CONSTRAINT gq_1_key PRIMARY KEY USING INDEX gq_1_key;
ALTER TABLE gq_1 ADD CONSTRAINT gq_1_ref FOREIGN KEY (id) REFERENCES ref (id) NOT VALID;
ALTER TABLE gq_1 VALIDATE CONSTRAINT gq_1_ref;
BEGIN; ALTER TABLE gq ADD PRIMARY KEY (id, at); ROLLBACK;
-- [S61] the other with a bare unique index: a constraint attaches only a
-- partition's constraint, so its index is built anew.  BLOCK disallowed-unique-constraint
CREATE UNIQUE INDEX CONCURRENTLY gq_2_key ON gq_2 (id, at);
BEGIN; ALTER TABLE gq ADD PRIMARY KEY (id, at); ROLLBACK;
-- [S62] every partition has its PRIMARY KEY: the parent's attaches them.  OK
ALTER TABLE gq_2 ADD CONSTRAINT gq_2_key PRIMARY KEY USING INDEX gq_2_key;
ALTER TABLE gq_2 ADD CONSTRAINT gq_2_ref FOREIGN KEY (id) REFERENCES ref (id) NOT VALID;
ALTER TABLE gq_2 VALIDATE CONSTRAINT gq_2_ref;
BEGIN; ALTER TABLE gq ADD PRIMARY KEY (id, at); ROLLBACK;
-- [S63] ... FOREIGN KEY attaches their validated keys.  OK
BEGIN; ALTER TABLE gq ADD CONSTRAINT gq_ref FOREIGN KEY (id) REFERENCES ref (id); ROLLBACK;
-- [S64] ... CREATE UNIQUE INDEX with the same columns attaches their indexes.  OK
BEGIN; CREATE UNIQUE INDEX gq_key ON gq (id, at); ROLLBACK;
-- [S65] ... an index the partitions do not have is built.  BLOCK require-concurrent-index-creation
BEGIN; CREATE INDEX gq_at ON gq (at); ROLLBACK;
-- [S68] ATTACH to a parent whose DEFAULT partition has a validated CHECK
-- excluding the new bound: the default partition is not scanned.  OK
ALTER TABLE pd_def ADD CONSTRAINT pd_def_high CHECK (at IS NOT NULL AND at >= 20000) NOT VALID;
ALTER TABLE pd_def VALIDATE CONSTRAINT pd_def_high;
BEGIN; ALTER TABLE pd ATTACH PARTITION loose_empty FOR VALUES FROM (100) TO (200); ROLLBACK;
-- [S66] SET NOT NULL proven by a validated CHECK that implies it without
-- spelling it alone (PostgreSQL's own implication test): no scan.  OK
ALTER TABLE big ADD CONSTRAINT big_b_set CHECK (b IS NOT NULL AND b <> '') NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_b_set;
BEGIN; ALTER TABLE big ALTER COLUMN b SET NOT NULL; ROLLBACK;
-- [S67] a CHECK with a strict operator does not prove it (a CHECK passes
-- on NULL): scan.  BLOCK setting-not-null-field
ALTER TABLE big ADD CONSTRAINT big_m_calm CHECK (m <> 'angry') NOT VALID;
ALTER TABLE big VALIDATE CONSTRAINT big_m_calm;
BEGIN; ALTER TABLE big ALTER COLUMN m SET NOT NULL; ROLLBACK;

-- ===========================================================================
-- 3. Locks that are brief, or taken on purpose.
-- [L01] LOCK TABLE: the lock asked for, nothing scanned.  OK
BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE; ROLLBACK;
-- [L02] REFRESH MATERIALIZED VIEW: ACCESS EXCLUSIVE (reads wait) while the
-- query runs.  BLOCK require-concurrent-refresh
BEGIN; REFRESH MATERIALIZED VIEW mv; ROLLBACK;
-- [L03] ... of a view without a unique index: same, the hint adds one.  BLOCK require-concurrent-refresh
BEGIN; REFRESH MATERIALIZED VIEW mv_nokey; ROLLBACK;
-- [L04] REFRESH ... CONCURRENTLY: EXCLUSIVE, reads go on.  OK
REFRESH MATERIALIZED VIEW CONCURRENTLY mv;
-- [L05] REFRESH of a small view, and WITH NO DATA.  OK
BEGIN; REFRESH MATERIALIZED VIEW mv_small; REFRESH MATERIALIZED VIEW mv WITH NO DATA; ROLLBACK;
-- [L06] CREATE TRIGGER: SHARE ROW EXCLUSIVE, catalog only.  OK
BEGIN; CREATE TRIGGER big_noop2 BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION noop(); ROLLBACK;
-- [L07] ENABLE / DISABLE TRIGGER: catalog only.  OK
BEGIN; ALTER TABLE big DISABLE TRIGGER big_noop; ALTER TABLE big ENABLE TRIGGER big_noop; ROLLBACK;
-- [L08] SET (fillfactor), RESET, autovacuum settings: SHARE UPDATE EXCLUSIVE, catalog only.  OK
BEGIN; ALTER TABLE big SET (fillfactor = 70); ALTER TABLE big RESET (fillfactor);
ALTER TABLE big SET (autovacuum_vacuum_scale_factor = 0.01); ROLLBACK;
-- [L09] ENABLE ROW LEVEL SECURITY, CREATE POLICY: catalog only.  OK
BEGIN; ALTER TABLE big ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON big USING (true); ROLLBACK;
-- [L10] ALTER SEQUENCE: the sequence alone.  OK
BEGIN; ALTER SEQUENCE seq RESTART WITH 100 INCREMENT BY 2; ROLLBACK;
-- [L11] ALTER TYPE ... ADD VALUE: no table touched, nothing stored changes.  OK
ALTER TYPE mood ADD VALUE 'sleepy';
-- [L11b] ALTER TYPE ... RENAME VALUE of a label scen.big.m holds: no lock or
-- scan, but the stored rows read back under the new label and code writing
-- the old one fails, as with a renamed column.  BLOCK renaming-enum-value
BEGIN; ALTER TYPE mood RENAME VALUE 'angry' TO 'cross'; ROLLBACK;
-- [L12] catalog-only changes: view, comment, grant, replica identity,
-- constraint rename and drop, DROP NOT NULL, DROP DEFAULT, CLUSTER ON,
-- index rename.  OK
BEGIN; CREATE VIEW big_v AS SELECT id FROM big; COMMENT ON TABLE big IS 'big';
GRANT SELECT ON big TO PUBLIC; ALTER TABLE big REPLICA IDENTITY FULL;
ALTER TABLE big RENAME CONSTRAINT big_a_pos TO big_a_positive; ALTER TABLE big DROP CONSTRAINT big_a_positive;
ALTER TABLE big ALTER COLUMN nn DROP NOT NULL, ALTER COLUMN a DROP DEFAULT;
ALTER TABLE big CLUSTER ON big_pkey; ALTER INDEX big_ts RENAME TO big_ts_idx; ROLLBACK;

-- [L13] a foreign table holds no rows here: a volatile default, a type
-- change, SET NOT NULL and a CHECK (not verified by PostgreSQL) are catalog
-- only.  OK
BEGIN; ALTER FOREIGN TABLE ft ADD COLUMN x float8 DEFAULT random();
ALTER FOREIGN TABLE ft ALTER COLUMN a TYPE bigint; ALTER FOREIGN TABLE ft ALTER COLUMN id SET NOT NULL;
ALTER FOREIGN TABLE ft ADD CONSTRAINT ft_pos CHECK (a > 0); ROLLBACK;
-- [L14] a foreign table as a partition of a large partitioned table: its
-- own size is none, the other partitions count.  BLOCK setting-not-null-field
BEGIN; CREATE FOREIGN TABLE pt_ft PARTITION OF pt FOR VALUES FROM (40001) TO (50001) SERVER scen_srv;
ALTER TABLE pt ALTER COLUMN at SET NOT NULL; ROLLBACK;

-- ===========================================================================
-- 4. Data loss, through every door.
-- [D01] DROP TABLE.  BLOCK ban-drop-table
BEGIN; DROP TABLE big CASCADE; ROLLBACK;
-- [D02] TRUNCATE.  BLOCK ban-truncate
BEGIN; TRUNCATE big; ROLLBACK;
-- [D03] DROP COLUMN.  BLOCK ban-drop-column
BEGIN; ALTER TABLE big DROP COLUMN b; ROLLBACK;
-- [D04] RENAME COLUMN.  BLOCK renaming-column
BEGIN; ALTER TABLE big RENAME COLUMN b TO bb; ROLLBACK;
-- [D05] RENAME TO.  BLOCK renaming-table
BEGIN; ALTER TABLE big RENAME TO big_old; ROLLBACK;
-- [D06] a table renamed by ALTER INDEX.  BLOCK renaming-table
BEGIN; ALTER INDEX big RENAME TO big_x; ROLLBACK;
-- [D07] SET SCHEMA moves it away from its name.  BLOCK renaming-table
BEGIN; ALTER TABLE small SET SCHEMA scen_moved; ROLLBACK;
-- [D08] DROP in a DO block through EXECUTE.  BLOCK ban-drop-table
BEGIN; DO $$BEGIN EXECUTE 'DROP TABLE scen.small'; END$$; ROLLBACK;
-- [D09] TRUNCATE in a function through EXECUTE.  BLOCK ban-truncate
CREATE FUNCTION zap(t text) RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE format('TRUNCATE %I', t); END$$;
BEGIN; SELECT zap('small'); ROLLBACK;
-- [D10] DROP COLUMN in a procedure that commits.  BLOCK ban-drop-column
CREATE PROCEDURE zap_proc() LANGUAGE plpgsql AS $$BEGIN COMMIT; EXECUTE 'ALTER TABLE scen.small DROP COLUMN v'; COMMIT; END$$;
CALL zap_proc();
-- [D11] a SECURITY DEFINER function owned by the same role.  BLOCK renaming-table
CREATE FUNCTION zap_def() RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
    AS $$ALTER TABLE scen.small RENAME TO small_gone$$;
BEGIN; SELECT zap_def(); ROLLBACK;
-- [D12] a trigger that truncates another table.  BLOCK ban-truncate
CREATE FUNCTION trunc_trig() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN TRUNCATE scen.ref CASCADE; RETURN NULL; END$$;
BEGIN; CREATE TRIGGER small_trunc AFTER UPDATE ON small FOR EACH STATEMENT EXECUTE FUNCTION trunc_trig();
UPDATE small SET v = v WHERE id = 1; ROLLBACK;
-- [D13] an event trigger cannot be created by a non-superuser: PostgreSQL's own error.  REFUSED
CREATE FUNCTION evt() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE EVENT TRIGGER scen_evt ON ddl_command_start EXECUTE FUNCTION evt();
-- [D14] a view's INSTEAD OF trigger that drops a table.  BLOCK ban-drop-table
CREATE FUNCTION v_ins() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN EXECUTE 'DROP TABLE scen.ref CASCADE'; RETURN NEW; END$$;
CREATE TRIGGER v_small_ins INSTEAD OF INSERT ON v_small FOR EACH ROW EXECUTE FUNCTION v_ins();
BEGIN; INSERT INTO v_small VALUES (100, 1); ROLLBACK;
-- [D15] DROP TYPE ... CASCADE takes big.m along.  BLOCK ban-drop-column
BEGIN; DROP TYPE mood CASCADE; ROLLBACK;
-- [D16] DROP of a partition.  BLOCK ban-drop-table
BEGIN; DROP TABLE pt_1; ROLLBACK;
-- [D17] TRUNCATE of a partitioned table empties its partitions.  BLOCK ban-truncate
BEGIN; TRUNCATE pt; ROLLBACK;
-- [D18] TRUNCATE of an inheritance parent empties its children.  BLOCK ban-truncate
BEGIN; TRUNCATE inh_parent; ROLLBACK;
-- [D19] TRUNCATE ONLY of the parent: the parent's own (0) rows; an existing
-- table is still emptied.  BLOCK ban-truncate (0 rows)
BEGIN; TRUNCATE ONLY inh_parent; ROLLBACK;
-- [D20] TRUNCATE ... CASCADE reaching big through a foreign key.  BLOCK ban-truncate, ban-truncate-cascade
BEGIN; TRUNCATE ref CASCADE; ROLLBACK;
-- [D21] DROP of an existing table with no rows: applications may use it.  BLOCK ban-drop-table
CREATE TABLE empty_t (id int);
BEGIN; DROP TABLE empty_t; ROLLBACK;
-- [D22] views, materialized views, sequences, foreign tables hold no data of their own.  OK
BEGIN; DROP VIEW v_small; DROP MATERIALIZED VIEW mv_small; DROP SEQUENCE seq; DROP FOREIGN TABLE ft; ROLLBACK;
-- [D23] DROP COLUMN of a column the same transaction added.  OK
BEGIN; ALTER TABLE big ADD COLUMN x int; ALTER TABLE big RENAME COLUMN x TO y;
ALTER TABLE big DROP COLUMN y; ROLLBACK;
-- [D24] DML inside a migration, counted by the executor however it is
-- spelled: a rule (DO ALSO DELETE).  BLOCK large-unbatched-dml
CREATE RULE small_del AS ON INSERT TO small DO ALSO DELETE FROM scen.big WHERE id > 0;
SELECT status FROM migrate_apply($$INSERT INTO scen.small VALUES (1000, 1);$$, 'scen-d24');
DROP RULE small_del ON small;
-- [D25] EXECUTE of a prepared DELETE.  BLOCK large-unbatched-dml
PREPARE del_big AS DELETE FROM scen.big WHERE id > 0;
SELECT status FROM migrate_apply($$EXECUTE del_big;$$, 'scen-d25');
DEALLOCATE del_big;
-- [D26] a data-changing CTE.  BLOCK large-unbatched-dml
SELECT status FROM migrate_apply($$WITH d AS (UPDATE scen.big SET a = a RETURNING 1) SELECT count(*) FROM d;$$, 'scen-d26');
-- [D27] MERGE ... DELETE.  BLOCK large-unbatched-dml
SELECT status FROM migrate_apply($$MERGE INTO scen.big b USING scen.ref r ON b.id = r.id WHEN MATCHED THEN DELETE;$$, 'scen-d27');
-- [D28] INSERT ... ON CONFLICT DO UPDATE of every row.  BLOCK large-unbatched-dml
SELECT status FROM migrate_apply($$INSERT INTO scen.big SELECT * FROM scen.big
    ON CONFLICT (id) DO UPDATE SET a = excluded.a;$$, 'scen-d28');
-- [D29] UPDATE in a DO block.  BLOCK large-unbatched-dml
SELECT status FROM migrate_apply($$DO $d$BEGIN UPDATE scen.big SET a = a; END$d$;$$, 'scen-d29');
-- [D30] a trigger on the small table that updates big.  BLOCK large-unbatched-dml
CREATE FUNCTION touch_big() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE scen.big SET a = a; RETURN NULL; END$$;
CREATE TRIGGER small_touch AFTER UPDATE ON small FOR EACH STATEMENT EXECUTE FUNCTION touch_big();
SELECT status FROM migrate_apply($$UPDATE scen.small SET v = v WHERE id = 1;$$, 'scen-d30');
DROP TRIGGER small_touch ON small;
-- [D31] COPY needs a client: refused in a migration before it runs.  REFUSED
SELECT status FROM migrate_apply($$COPY (DELETE FROM scen.big RETURNING id) TO STDOUT;$$, 'scen-d31');
-- [D32] exactly the threshold (1000 rows): "more than" is not reached.  OK
SELECT status FROM migrate_apply($$UPDATE scen.big SET a = a WHERE id <= 1000;$$, 'scen-d32');
-- [D33] one row more.  BLOCK large-unbatched-dml
SELECT status FROM migrate_apply($$UPDATE scen.big SET a = a WHERE id <= 1001;$$, 'scen-d33');
-- [D34] batches that commit, each under the threshold.  OK
CREATE PROCEDURE batches() LANGUAGE plpgsql AS $$
DECLARE i int;
BEGIN
    FOR i IN 0..4 LOOP
        UPDATE scen.big SET a = a WHERE id > i * 1000 AND id <= (i + 1) * 1000;
        COMMIT;
    END LOOP;
END $$;
SELECT status FROM migrate_apply($$CALL scen.batches();$$, 'scen-d34');
-- [D35] a big INSERT into a new table: nobody waits on it.  OK
SELECT status FROM migrate_apply($$CREATE TABLE scen.big_copy AS SELECT * FROM scen.big;
INSERT INTO scen.big_copy SELECT * FROM scen.big;$$, 'scen-d35');

-- [D36] INSERT ... ON CONFLICT DO NOTHING of every row: nothing changed.  OK
SELECT status FROM migrate_apply($$INSERT INTO scen.big SELECT * FROM scen.big ON CONFLICT (id) DO NOTHING;$$, 'scen-d36');
-- [D37] every row of a temporary table, and of a table the migration
-- created and filled: nobody else sees them.  OK
SELECT status FROM migrate_apply($$CREATE TEMP TABLE d37 AS SELECT * FROM scen.big;
UPDATE d37 SET a = a;
CREATE TABLE scen.d37 AS SELECT * FROM scen.big;
UPDATE scen.d37 SET a = a;
DELETE FROM scen.d37;
DROP TABLE d37;$$, 'scen-d37');
-- [D38] a column added, then 500 rows updated in the same transaction: under
-- the threshold, but ADD COLUMN's ACCESS EXCLUSIVE lock on the table is held
-- all through the UPDATE (a tenth of the threshold counts then).  BLOCK large-unbatched-dml
CREATE TABLE d38 (id int PRIMARY KEY, a int) WITH (autovacuum_enabled = false);
INSERT INTO d38 SELECT g, g FROM generate_series(1, 600) g;
ANALYZE d38;
SELECT status FROM migrate_apply($$ALTER TABLE scen.d38 ADD COLUMN b int;
UPDATE scen.d38 SET b = a WHERE id <= 500;$$, 'scen-d38');
-- [D38b] the lock on another table (a foreign key added NOT VALID holds SHARE
-- ROW EXCLUSIVE on small): its writers wait for the UPDATE.  BLOCK large-unbatched-dml
SELECT status FROM migrate_apply($$ALTER TABLE scen.small ADD CONSTRAINT small_d38 FOREIGN KEY (v) REFERENCES scen.d38 NOT VALID;
UPDATE scen.d38 SET a = a WHERE id <= 500;$$, 'scen-d38b');
-- [D39] the same UPDATE under a lock on a table nobody uses yet (made by
-- the migration), or under no lock: 500 rows pass.  OK
SELECT status FROM migrate_apply($$CREATE TABLE scen.d39 (id int);
ALTER TABLE scen.d39 ADD COLUMN x int;
UPDATE scen.d38 SET a = a WHERE id <= 500;
DROP TABLE scen.d39;$$, 'scen-d39');
-- [D40] a few rows under the lock: a tenth of the threshold is not reached.  OK
SELECT status FROM migrate_apply($$ALTER TABLE scen.d38 ADD COLUMN d40 int;
UPDATE scen.d38 SET a = a WHERE id <= 100;
ALTER TABLE scen.d38 DROP COLUMN d40;$$, 'scen-d40');
RESET ROLE;
SET safe_migrate.policy = off;
DROP TABLE d38;
RESET safe_migrate.policy;
SET ROLE scen_owner;

-- ===========================================================================
-- 5. Temporary tables (exempt) and tables created in the same transaction
-- (exempt, but not what they do to existing tables).
-- [T01] every rule on a temporary copy of big.  OK
CREATE TEMP TABLE tt AS SELECT * FROM big;
ANALYZE tt;
BEGIN; CREATE INDEX tt_a ON tt (a); ALTER TABLE tt ALTER COLUMN a TYPE bigint;
ALTER TABLE tt ADD COLUMN x float8 DEFAULT random(); ALTER TABLE tt ALTER COLUMN b SET NOT NULL;
ALTER TABLE tt ADD CHECK (a > 0); ALTER TABLE tt RENAME COLUMN b TO bb; ALTER TABLE tt DROP COLUMN c; ROLLBACK;
CREATE INDEX tt_a ON tt (a);
VACUUM FULL tt;
CLUSTER tt USING tt_a;
BEGIN; TRUNCATE tt; ROLLBACK;
DROP TABLE tt;
-- [T02] a table created and filled in the transaction: everything on it.  OK
BEGIN; CREATE TABLE n AS SELECT * FROM big; CREATE INDEX n_a ON n (a);
ALTER TABLE n ALTER COLUMN a TYPE bigint; ALTER TABLE n ADD COLUMN x float8 DEFAULT random();
DROP TABLE n; ROLLBACK;
-- [T03] a foreign key from a new, filled table to an existing one: the
-- scan holds ref in SHARE ROW EXCLUSIVE.  BLOCK adding-foreign-key-constraint
BEGIN; CREATE TABLE n AS SELECT id FROM big; ALTER TABLE n ADD FOREIGN KEY (id) REFERENCES ref (id); ROLLBACK;
-- [T04] a new empty table referencing an existing one.  OK
BEGIN; CREATE TABLE n (id int REFERENCES ref (id)); ROLLBACK;
-- [T05] a foreign key from an existing table to a new one scans the existing one.  BLOCK adding-foreign-key-constraint
BEGIN; CREATE TABLE n (id int PRIMARY KEY); INSERT INTO n SELECT g FROM generate_series(1, 5000) g;
ALTER TABLE big ADD CONSTRAINT big_c_n FOREIGN KEY (c) REFERENCES n (id); ROLLBACK;
-- [T06] a new table named next to an existing one in DROP.  BLOCK ban-drop-table
BEGIN; CREATE TABLE n (id int); DROP TABLE n, small; ROLLBACK;
-- [T07] ... in TRUNCATE.  BLOCK ban-truncate
BEGIN; CREATE TABLE n (id int); TRUNCATE n, small; ROLLBACK;
-- [T08] a new table does not exempt an index on an existing one.  BLOCK require-concurrent-index-creation
BEGIN; CREATE TABLE n (id int); CREATE INDEX big_c ON big (c); ROLLBACK;
-- [T09] a new partitioned table attaching an existing filled table: scans it.  BLOCK attach-partition-scan
BEGIN; CREATE TABLE np (id int, at int) PARTITION BY RANGE (at);
ALTER TABLE loose DROP CONSTRAINT loose_bound;
ALTER TABLE np ATTACH PARTITION loose FOR VALUES FROM (10001) TO (20001); ROLLBACK;
-- [T10] a new matview refreshed in its transaction.  OK
BEGIN; CREATE MATERIALIZED VIEW mv3 AS SELECT * FROM big; REFRESH MATERIALIZED VIEW mv3; ROLLBACK;
-- [T11] a partition of pt (no default partition) created.  OK
BEGIN; CREATE TABLE pt_2 PARTITION OF pt FOR VALUES FROM (10001) TO (20001); ROLLBACK;
-- A new parent with an existing table attached (proven bound, no scan) or
-- inheriting from it: what the statement does to the existing table counts.
-- [T12] CREATE INDEX on the new partitioned table builds on loose.  BLOCK require-concurrent-index-creation
BEGIN; CREATE TABLE np (id int, at int) PARTITION BY RANGE (at);
ALTER TABLE np ATTACH PARTITION loose FOR VALUES FROM (10001) TO (20001);
CREATE INDEX np_id ON np (id); ROLLBACK;
-- [T13] ... CREATE INDEX ON ONLY it: nothing built.  OK
BEGIN; CREATE TABLE np (id int, at int) PARTITION BY RANGE (at);
ALTER TABLE np ATTACH PARTITION loose FOR VALUES FROM (10001) TO (20001);
CREATE INDEX np_id ON ONLY np (id); ROLLBACK;
-- [T14] SET NOT NULL on it scans loose.  BLOCK setting-not-null-field
BEGIN; CREATE TABLE np (id int, at int) PARTITION BY RANGE (at);
ALTER TABLE np ATTACH PARTITION loose FOR VALUES FROM (10001) TO (20001);
ALTER TABLE np ALTER COLUMN id SET NOT NULL; ROLLBACK;
-- [T15] ADD UNIQUE on it builds an index on loose.  BLOCK disallowed-unique-constraint
BEGIN; CREATE TABLE np (id int, at int) PARTITION BY RANGE (at);
ALTER TABLE np ATTACH PARTITION loose FOR VALUES FROM (10001) TO (20001);
ALTER TABLE np ADD UNIQUE (id, at); ROLLBACK;
-- [T16] a new inheritance parent of loose: ADD CHECK scans loose.  BLOCK constraint-missing-not-valid
BEGIN; CREATE TABLE ni (id int, at int); ALTER TABLE loose INHERIT ni;
ALTER TABLE ni ADD CHECK (id > 0); ROLLBACK;
-- [T17] ... RENAME COLUMN on it renames loose's column.  BLOCK renaming-column
BEGIN; CREATE TABLE ni (id int, at int); ALTER TABLE loose INHERIT ni;
ALTER TABLE ni RENAME COLUMN at TO at2; ROLLBACK;
-- [T18] ... a new child of a new parent: everything exempt.  OK
BEGIN; CREATE TABLE ni (id int, at int); CREATE TABLE ni_c () INHERITS (ni);
INSERT INTO ni_c SELECT g, g FROM generate_series(1, 5000) g;
ALTER TABLE ni ADD CHECK (id > 0); CREATE INDEX ni_c_id ON ni_c (id); ALTER TABLE ni RENAME COLUMN at TO at2; ROLLBACK;

-- ===========================================================================
-- 6. Migrations: both paths, and allow lines of a role that may not override.
-- [M01] in the caller's backend, refused at its second statement (nothing kept).  BLOCK
SELECT status FROM migrate_apply($$ALTER TABLE scen.big ADD COLUMN m01 int;
CREATE INDEX big_m01 ON scen.big (m01);$$, 'scen-m01');
SELECT count(*) AS m01_left FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'm01';
-- [M02] in the runner (CREATE INDEX CONCURRENTLY), refused before its first step.  BLOCK
SELECT status FROM migrate_apply($$CREATE INDEX CONCURRENTLY big_m02 ON scen.big (b);
ALTER TABLE scen.big ALTER COLUMN c SET NOT NULL;$$, 'scen-m02');
-- [M03] in the runner, a large UPDATE.  BLOCK large-unbatched-dml
SELECT status FROM migrate_apply($$CREATE INDEX CONCURRENTLY big_m03 ON scen.big (b);
UPDATE scen.big SET a = a;$$, 'scen-m03');
-- [M04] an allow line from a role that may not override: refused before anything runs.  REFUSED
SELECT status FROM migrate_apply($$-- safe_migrate:allow ban-drop-table cleanup
DROP TABLE scen.small;$$, 'scen-m04');
-- [M05] a safe migration: column, new table with its key and index.  OK
SELECT status FROM migrate_apply($$ALTER TABLE scen.big ADD COLUMN m05 int;
CREATE TABLE scen.m05 (id int PRIMARY KEY, big_id int REFERENCES scen.big (id));
CREATE INDEX m05_big ON scen.m05 (big_id);$$, 'scen-m05');
-- [M06] a safe migration in the runner.  OK
SELECT status FROM migrate_apply($$CREATE INDEX CONCURRENTLY big_m06 ON scen.big (m05);
ALTER TABLE scen.big ADD COLUMN m06 int DEFAULT 0;$$, 'scen-m06');
-- [M07] a new table filled in the migration, then a key to an existing table.  BLOCK adding-foreign-key-constraint
SELECT status FROM migrate_apply($$CREATE TABLE scen.m07 AS SELECT id FROM scen.big;
ALTER TABLE scen.m07 ADD FOREIGN KEY (id) REFERENCES scen.ref (id);$$, 'scen-m07');
-- [M08] the NOT NULL sequence in the runner's steps (CREATE INDEX
-- CONCURRENTLY between them): VALIDATE in a later transaction than ADD ...
-- NOT VALID, then SET NOT NULL proven by it.  OK
SELECT status FROM migrate_apply($$ALTER TABLE scen.big ADD CONSTRAINT big_q_nn CHECK (q IS NOT NULL) NOT VALID;
CREATE INDEX CONCURRENTLY big_m08 ON scen.big (q);
ALTER TABLE scen.big VALIDATE CONSTRAINT big_q_nn;
ALTER TABLE scen.big ALTER COLUMN q SET NOT NULL;$$, 'scen-m08');
SELECT attnotnull AS q_not_null FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'q';
-- [M10] ATTACH PARTITION after a CHECK proving the bound was validated by
-- an earlier step: no scan when it runs, so not refused beforehand.  OK
SELECT status FROM migrate_apply($$ALTER TABLE scen.loose2 ADD CONSTRAINT loose2_bound
    CHECK (at IS NOT NULL AND at >= 20001 AND at < 30001) NOT VALID;
CREATE INDEX CONCURRENTLY loose2_id ON scen.loose2 (id);
ALTER TABLE scen.loose2 VALIDATE CONSTRAINT loose2_bound;
ALTER TABLE scen.pt ATTACH PARTITION scen.loose2 FOR VALUES FROM (20001) TO (30001);$$, 'scen-m10');
-- [M11] ... a CHECK that does not prove the bound: still judged when the
-- ATTACH runs (the earlier steps stay committed).  BLOCK attach-partition-scan
SELECT status FROM migrate_apply($$ALTER TABLE scen.loose3 ADD CONSTRAINT loose3_pos CHECK (id > 0) NOT VALID;
CREATE INDEX CONCURRENTLY loose3_id ON scen.loose3 (id);
ALTER TABLE scen.loose3 VALIDATE CONSTRAINT loose3_pos;
ALTER TABLE scen.pt ATTACH PARTITION scen.loose3 FOR VALUES FROM (30001) TO (40001);$$, 'scen-m11');
SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'loose3'::regclass;
-- [M12] migrate_plan of a multi-step script: SET NOT NULL proven by the
-- CHECK an earlier step validates is metadata only.  OK
SELECT statement, command, lock_mode, effect, verdict FROM migrate_plan($$
ALTER TABLE scen.big ADD CONSTRAINT big_c_nn2 CHECK (c IS NOT NULL) NOT VALID;
CREATE INDEX CONCURRENTLY big_m12 ON scen.big (c);
ALTER TABLE scen.big VALIDATE CONSTRAINT big_c_nn2;
ALTER TABLE scen.big ALTER COLUMN c SET NOT NULL;
ALTER TABLE scen.big ALTER COLUMN ts2 SET NOT NULL;$$);
-- [M13] a table the migration created in an earlier runner step (committed
-- since, no application uses it): filled, indexed, constrained.  OK
SELECT status FROM migrate_apply($$CREATE TABLE scen.m13 (id int, a int);
CREATE INDEX CONCURRENTLY big_m13 ON scen.big (a);
INSERT INTO scen.m13 SELECT g, g FROM generate_series(1, 5000) g;
CREATE INDEX m13_id ON scen.m13 (id);
ALTER TABLE scen.m13 ALTER COLUMN a SET NOT NULL;
ALTER TABLE scen.m13 RENAME COLUMN a TO b;$$, 'scen-m13');
-- [M14] ... and dropped again by the migration that made it.  OK
SELECT status FROM migrate_apply($$CREATE TABLE scen.m14 AS SELECT id FROM scen.big;
CREATE INDEX CONCURRENTLY big_m14 ON scen.big (a);
DROP TABLE scen.m14;$$, 'scen-m14');
-- [M15] CREATE TABLE IF NOT EXISTS of an existing table does not make it new.  BLOCK ban-drop-table
SELECT status FROM migrate_apply($$CREATE TABLE IF NOT EXISTS scen.small (id int);
CREATE INDEX CONCURRENTLY big_m15 ON scen.big (a);
DROP TABLE scen.small;$$, 'scen-m15');
-- [M16] a later migration: m13 exists, and applications may use it.  BLOCK require-concurrent-index-creation
SELECT status FROM migrate_apply($$CREATE INDEX m13_b ON scen.m13 (b);$$, 'scen-m16');
-- [M09] an admin's allow line is honoured (and recorded in the history).  OK
RESET ROLE;
SELECT status FROM migrate_apply($$-- safe_migrate:allow ban-drop-table empty since March
DROP TABLE scen.empty_t;$$, 'scen-m09');
SELECT o->>'rule' AS rule FROM safe_migrate.history, jsonb_array_elements(overrides) o
 WHERE version = 'scen-m09';
SET ROLE scen_owner;

-- ===========================================================================
-- 6b. Statements PostgreSQL refuses or skips by their names alone: its own
-- words, not a rule.
-- [E01] ADD COLUMN of a column that exists.  REFUSED by PostgreSQL
BEGIN; ALTER TABLE big ADD COLUMN nn int NOT NULL; ROLLBACK;
-- [E02] ... with IF NOT EXISTS: skipped, nothing added.  OK
BEGIN; ALTER TABLE big ADD COLUMN IF NOT EXISTS nn int NOT NULL; ALTER TABLE big ADD COLUMN IF NOT EXISTS nn serial; ROLLBACK;
-- [E03] CREATE INDEX with the name of an existing relation.  REFUSED by PostgreSQL
BEGIN; CREATE INDEX big_ts ON big (a); ROLLBACK;
-- [E04] ADD CONSTRAINT named like an existing constraint.  REFUSED by PostgreSQL
BEGIN; ALTER TABLE big ADD CONSTRAINT big_a_pos CHECK (a > 1); ROLLBACK;
-- [E05] keys, index columns and checks naming a column that does not exist.  REFUSED by PostgreSQL
BEGIN; ALTER TABLE big ADD UNIQUE (nope); ROLLBACK;
BEGIN; ALTER TABLE big ADD FOREIGN KEY (nope) REFERENCES ref (id); ROLLBACK;
BEGIN; ALTER TABLE big ADD CONSTRAINT c CHECK (nope > 0); ROLLBACK;
BEGIN; CREATE INDEX big_nope ON big (nope); ROLLBACK;
-- [E06] ... but a column the same statement adds is there.  BLOCK disallowed-unique-constraint
BEGIN; ALTER TABLE big ADD COLUMN e06 int, ADD CONSTRAINT big_e06_key UNIQUE (e06); ROLLBACK;
-- [E08] DETACH of a table that is not a partition of it, ATTACH of one that
-- already is a partition.  REFUSED by PostgreSQL
BEGIN; ALTER TABLE pt DETACH PARTITION small; ROLLBACK;
BEGIN; ALTER TABLE pd ATTACH PARTITION pt_1 FOR VALUES FROM (500) TO (600); ROLLBACK;
-- [E07] RENAME to a name that is taken.  REFUSED by PostgreSQL
BEGIN; ALTER TABLE big RENAME COLUMN a TO c; ROLLBACK;
BEGIN; ALTER TABLE big RENAME TO small; ROLLBACK;

-- ===========================================================================
-- 7. Messages and hints that lead somewhere (full text).
\set VERBOSITY default
-- [H01] identity: a sequence, the backfill, NOT NULL proven, then identity.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x int GENERATED ALWAYS AS IDENTITY; ROLLBACK;
-- [H02] serial.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x bigserial; ROLLBACK;
-- [H03] stored generated column.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x int GENERATED ALWAYS AS (a * 2) STORED; ROLLBACK;
-- [H04] a domain with constraints.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x checked_int; ROLLBACK;
-- [H05] a volatile default: the column named.  BLOCK table-rewrite
BEGIN; ALTER TABLE big ADD COLUMN x float8 DEFAULT random(); ROLLBACK;
-- [H06] PRIMARY KEY on a nullable column: prove NOT NULL before USING INDEX.  BLOCK disallowed-unique-constraint
BEGIN; ALTER TABLE big_u ADD PRIMARY KEY (id); ROLLBACK;
-- [H07] EXCLUDE has no USING INDEX form.  BLOCK disallowed-unique-constraint
BEGIN; ALTER TABLE big ADD CONSTRAINT big_ex EXCLUDE USING btree (id WITH =); ROLLBACK;
-- [H08] a CHECK re-checked by a type change that keeps the heap.  BLOCK changing-column-type
BEGIN; ALTER TABLE big ALTER COLUMN note TYPE varchar(20); ROLLBACK;
-- [H09] REFRESH with and without a unique index.  BLOCK require-concurrent-refresh
BEGIN; REFRESH MATERIALIZED VIEW mv; ROLLBACK;
BEGIN; REFRESH MATERIALIZED VIEW mv_nokey; ROLLBACK;
-- [H10] a materialized view is named as one, and what its locks block is
-- told as it is: nobody writes to it, its refreshes wait.  BLOCK require-concurrent-index-creation
BEGIN; CREATE INDEX mv_q ON mv (q); ROLLBACK;
-- [H11] the hint builds the statement's index: UNIQUE, the operator class,
-- the order, INCLUDE and WHERE kept.  BLOCK require-concurrent-index-creation
BEGIN; CREATE UNIQUE INDEX big_b_u ON big (b text_pattern_ops DESC, id) INCLUDE (a) WHERE id > 10; ROLLBACK;
\set VERBOSITY terse

-- ===========================================================================
-- 8. migrate_plan labels what PostgreSQL will do.
SELECT statement, command, relation, lock_mode, effect, verdict,
       (SELECT string_agg(r->>'rule', ', ') FROM jsonb_array_elements(rules) r) AS rules
  FROM migrate_plan($$
REFRESH MATERIALIZED VIEW scen.mv;
REFRESH MATERIALIZED VIEW CONCURRENTLY scen.mv;
CREATE INDEX pt_id ON ONLY scen.pt (id);
CREATE INDEX pt_id2 ON scen.pt (id);
CREATE INDEX inh_parent_a ON scen.inh_parent (a);
VACUUM FULL scen.inh_parent;
LOCK TABLE scen.big IN SHARE MODE;
ALTER TABLE scen.big ALTER COLUMN nn SET NOT NULL;
ALTER TABLE scen.big ALTER COLUMN c SET NOT NULL;
ALTER TABLE scen.big ALTER COLUMN a TYPE bigint;
ALTER TABLE scen.big ALTER COLUMN note TYPE varchar(40);
ALTER TABLE scen.big ALTER COLUMN ts2 TYPE timestamptz;
ALTER TABLE scen.big ALTER COLUMN ts TYPE timestamptz;
ALTER TABLE scen.big ADD COLUMN x float8 DEFAULT random();
ALTER TABLE scen.big ADD COLUMN y int GENERATED ALWAYS AS IDENTITY;
ALTER TABLE scen.big ADD COLUMN z scen.checked_int;
ALTER TABLE scen.big ADD COLUMN w scen.posint;
ALTER TABLE scen.big SET UNLOGGED;
ALTER TABLE scen.big SET LOGGED;
ALTER TABLE scen.big_u SET LOGGED;
ALTER TABLE scen.big SET ACCESS METHOD heap;
ALTER TABLE scen.big SET TABLESPACE pg_default;
CREATE TRIGGER t BEFORE UPDATE ON scen.big FOR EACH ROW EXECUTE FUNCTION scen.noop();
ALTER TABLE scen.big ADD COLUMN IF NOT EXISTS nn serial;
ALTER TABLE scen.big SET (fillfactor = 70);
ALTER TABLE scen.big ADD CONSTRAINT e EXCLUDE USING btree (id WITH =);
TRUNCATE ONLY scen.inh_parent;
$$);

-- ===========================================================================
-- 9. The truth, asked of PostgreSQL: rewrites and scans claimed above.
RESET ROLE;
SELECT label, scen_truth(stmt, tbl::regclass) AS postgres_does
  FROM (VALUES
    ('R01 int -> bigint', 'ALTER TABLE big ALTER COLUMN a TYPE bigint', 'scen.big'),
    ('R07 same type (a has CHECKs: re-checked)', 'ALTER TABLE big ALTER COLUMN a TYPE int', 'scen.big'),
    ('R09 domain to base type', 'ALTER TABLE big ALTER COLUMN d TYPE int', 'scen.big'),
    ('R46 varchar widened, CHECK', 'ALTER TABLE big ALTER COLUMN note TYPE varchar(30)', 'scen.big'),
    ('R47 CHECK re-added NOT VALID', 'ALTER TABLE big DROP CONSTRAINT big_note_set, ALTER COLUMN note TYPE varchar(30), ADD CONSTRAINT big_note_set CHECK (note <> '''') NOT VALID', 'scen.big'),
    ('R48 NOT VALID CHECK kept', 'ALTER TABLE big ALTER COLUMN ts2 TYPE timestamptz', 'scen.big'),
    ('R11 constant default', 'ALTER TABLE big ADD COLUMN x int DEFAULT 0', 'scen.big'),
    ('R12 now()', 'ALTER TABLE big ADD COLUMN x timestamptz DEFAULT now()', 'scen.big'),
    ('R13 random()', 'ALTER TABLE big ADD COLUMN x float8 DEFAULT random()', 'scen.big'),
    ('R19 identity', 'ALTER TABLE big ADD COLUMN x int GENERATED ALWAYS AS IDENTITY', 'scen.big'),
    ('R24 constrained domain', 'ALTER TABLE big ADD COLUMN x checked_int', 'scen.big'),
    ('R25 plain domain', 'ALTER TABLE big ADD COLUMN x posint', 'scen.big'),
    ('R28 SET LOGGED of logged', 'ALTER TABLE big SET LOGGED', 'scen.big'),
    ('R29 SET ACCESS METHOD heap', 'ALTER TABLE big SET ACCESS METHOD heap', 'scen.big'),
    ('R31 ADD IDENTITY on NOT NULL', 'ALTER TABLE big ALTER COLUMN nn ADD GENERATED ALWAYS AS IDENTITY', 'scen.big'),
    ('R33 SET TABLESPACE pg_default', 'ALTER TABLE big SET TABLESPACE pg_default', 'scen.big'),
    ('S01 SET NOT NULL', 'ALTER TABLE big ALTER COLUMN c SET NOT NULL', 'scen.big'),
    ('S02 SET NOT NULL proven', 'ALTER TABLE big ALTER COLUMN a SET NOT NULL', 'scen.big'),
    ('S04 SET NOT NULL already', 'ALTER TABLE big ALTER COLUMN nn SET NOT NULL', 'scen.big'),
    ('S66 SET NOT NULL implied', 'ALTER TABLE big ALTER COLUMN b SET NOT NULL', 'scen.big'),
    ('S67 SET NOT NULL, strict CHECK', 'ALTER TABLE big ALTER COLUMN m SET NOT NULL', 'scen.big'),
    ('S07 ONLY parent SET NOT NULL (child)', 'ALTER TABLE ONLY inh_parent ALTER COLUMN a SET NOT NULL', 'scen.inh_child'),
    ('S06 parent SET NOT NULL (child)', 'ALTER TABLE inh_parent ALTER COLUMN a SET NOT NULL', 'scen.inh_child'),
    ('S12 CHECK on a new column', 'ALTER TABLE big ADD COLUMN x int CHECK (x > 0)', 'scen.big'),
    ('S14 NO INHERIT CHECK (child)', 'ALTER TABLE inh_parent ADD CONSTRAINT c CHECK (a > 0) NO INHERIT', 'scen.inh_child'),
    ('S17 REFERENCES on a new column', 'ALTER TABLE big ADD COLUMN x int REFERENCES ref (id)', 'scen.big'),
    ('S20 FK on parent (child)', 'ALTER TABLE inh_parent ADD FOREIGN KEY (id) REFERENCES ref (id)', 'scen.inh_child'),
    ('S45 index on parent (child)', 'CREATE INDEX ON inh_parent (a)', 'scen.inh_child'),
    ('S62 PRIMARY KEY attaching (gq_2)', 'ALTER TABLE gq ADD PRIMARY KEY (id, at)', 'scen.gq_2'),
    ('S63 FOREIGN KEY attaching (gq_2)', 'ALTER TABLE gq ADD FOREIGN KEY (id) REFERENCES ref (id)', 'scen.gq_2'),
    ('S64 UNIQUE INDEX attaching (gq_2)', 'CREATE UNIQUE INDEX ON gq (id, at)', 'scen.gq_2'),
    ('S65 index built (gq_2)', 'CREATE INDEX ON gq (at)', 'scen.gq_2'),
    ('S15 FOREIGN KEY checked (big)', 'ALTER TABLE big ADD FOREIGN KEY (c) REFERENCES ref (id)', 'scen.big'),
    ('S54 CLUSTER parent (child)', 'CLUSTER inh_parent USING inh_parent_id', 'scen.inh_child')
  ) AS t(label, stmt, tbl);

-- [D34b] a procedure that changes every row in one transaction, then
-- commits: judged as that transaction commits.  BLOCK large-unbatched-dml
CREATE PROCEDURE scen.all_then_commit() LANGUAGE plpgsql AS $$
BEGIN
    UPDATE scen.big SET a = a WHERE id <= 5000;
    COMMIT;
END $$;
\set VERBOSITY sqlstate
SELECT status FROM migrate_apply($$CALL scen.all_then_commit();$$, 'scen-d34b');
\set VERBOSITY default
SELECT status, split_part(error_message, ':', 1) AS rule
  FROM safe_migrate.history WHERE version = 'scen-d34b';

-- Leave nothing behind.
SET client_min_messages = warning;
SET safe_migrate.policy = off;
DROP SCHEMA scen, scen_moved CASCADE;
DROP FUNCTION scen_truth(text, regclass);
DROP SERVER scen_srv;
DROP FOREIGN DATA WRAPPER scen_fdw;
DROP ROLE scen_owner;
RESET safe_migrate.policy;
