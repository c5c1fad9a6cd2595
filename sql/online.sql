-- Online execution (issue 13): a script with the line
-- "-- safe_migrate:online" runs the careful sequence of what it writes
-- naively.  Every table here counts as large (large_table_rows = 100), so
-- the policy would refuse each naive statement.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS safe_migrate;
SET safe_migrate.large_table_rows = 100;
CREATE SCHEMA naive;
CREATE SCHEMA onl;
SELECT format($f$
    CREATE TABLE %1$s.parent (id int PRIMARY KEY);
    INSERT INTO %1$s.parent SELECT generate_series(1, 50);
    CREATE TABLE %1$s.t (id int PRIMARY KEY, pid int, v text, n int, w int);
    INSERT INTO %1$s.t SELECT g, g %% 50 + 1, 'v' || g, g, g FROM generate_series(1, 1000) g;
    CREATE INDEX t_w ON %1$s.t (w);
    CREATE TABLE %1$s.nokey (a int);
    CREATE TABLE %1$s.k (a int, b int);
    INSERT INTO %1$s.k SELECT g, g FROM generate_series(1, 1000) g;
    ANALYZE %1$s.t, %1$s.parent, %1$s.k;
  $f$, s) FROM unnest(ARRAY['naive', 'onl']) s
\gexec

-- the script as a developer writes it
\set script '-- safe_migrate:online\nCREATE INDEX t_v ON t (v);\nALTER TABLE t ADD FOREIGN KEY (pid) REFERENCES parent (id);\nALTER TABLE t ADD CHECK (n > 0);\nALTER TABLE t ADD CONSTRAINT w_small CHECK (w < 100000) -- a comment at the end\n;\nALTER TABLE t ALTER COLUMN v SET NOT NULL;\nDROP INDEX t_w;\nREINDEX TABLE t;\nCREATE TABLE onl_fresh (id int PRIMARY KEY, a int);\nCREATE INDEX onl_fresh_a ON onl_fresh (a);\nALTER TABLE k ADD PRIMARY KEY (a);\nALTER TABLE k ADD UNIQUE (b);\nALTER TABLE k ADD COLUMN z text;\nUPDATE k SET z = a || \'-\' || b WHERE a % 2 = 0;\n'

-- what will run: each step with its lock (the plan of the same script)
SET search_path = onl, public;
SELECT statement, sql, lock_mode, effect, verdict
  FROM migrate_plan(replace(:'script', '\n', E'\n'));

-- the naive script without online execution: refused, the hint says so
SELECT migrate_apply(replace(replace(:'script', '-- safe_migrate:online', ''), '\n', E'\n'), '000');

-- applied online
SELECT version, status, statements FROM migrate_apply(replace(:'script', '\n', E'\n'), '001');
SELECT s.step, s.first_statement, s.last_statement, s.commands
  FROM safe_migrate.migration_steps s JOIN safe_migrate.migrations m ON m.id = s.migration_id
 WHERE m.version = '001' ORDER BY s.step;

-- the same script, naively, as PostgreSQL runs it (policy off)
SET search_path = naive, public;
SET safe_migrate.policy = off;
SELECT replace(replace(:'script', '-- safe_migrate:online', ''), '\n', E'\n') AS naive_sql \gset
:naive_sql
RESET safe_migrate.policy;
RESET search_path;

-- the same schema both ways: constraints (validated), indexes (valid), columns
-- (PostgreSQL 18's NOT NULL constraints, contype 'n', are left to attnotnull)
SELECT conrelid::regclass::text AS rel, conname, pg_get_constraintdef(oid), convalidated
  FROM pg_constraint WHERE connamespace = 'onl'::regnamespace AND contype <> 'n' ORDER BY 1, 2;
CREATE FUNCTION pg_temp.schema_of(nsp text) RETURNS TABLE (kind text, item text) LANGUAGE sql AS $$
  SELECT 'constraint', format('%s %s %s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid), c.convalidated)
    FROM pg_constraint c WHERE c.connamespace = nsp::regnamespace AND c.contype <> 'n'
  UNION ALL
  SELECT 'index', format('%s %s %s', i.indexrelid::regclass, pg_get_indexdef(i.indexrelid), i.indisvalid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = nsp::regnamespace
  UNION ALL
  SELECT 'column', format('%s.%s %s %s', a.attrelid::regclass, a.attname, a.attnotnull, format_type(a.atttypid, a.atttypmod))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
   WHERE c.relnamespace = nsp::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
$$;
SELECT kind, count(*) AS items,
       count(*) FILTER (WHERE replace(item, 'onl.', 'naive.') NOT IN (SELECT item FROM pg_temp.schema_of('naive'))) AS different
  FROM pg_temp.schema_of('onl') GROUP BY kind ORDER BY kind;
SELECT (SELECT count(*) FROM pg_temp.schema_of('onl')) = (SELECT count(*) FROM pg_temp.schema_of('naive')) AS same_count;
-- the same rows: the UPDATE ran as a backfill
SELECT (SELECT count(*) FROM naive.k WHERE z = a || '-' || b) AS naive_filled,
       (SELECT count(*) FROM onl.k WHERE z = a || '-' || b) AS online_filled,
       (SELECT count(*) FROM onl.k WHERE z IS NOT NULL) AS online_any;
SELECT operation, status, rows_done FROM safe_migrate.backfills WHERE relation = 'onl.k'
 AND operation <> 'vacuum';
-- the fill ran with vacuum => false and eager (the next step waited for
-- it); the table's vacuum job came after the last step
SELECT j.vacuum AS fill_vacuums, j.eager AS fill_eager, v.eager AS vacuum_eager,
       v.id > j.id AS vacuum_after_fill,
       migrate_backfill_wait(v.id, '2 minutes') AS vacuum_job
  FROM safe_migrate.backfill_jobs j, safe_migrate.backfill_jobs v
 WHERE j.relation = 'onl.k' AND j.operation = 'update' AND v.relation = 'onl.k' AND v.operation = 'vacuum';
SELECT vacuumed_at IS NOT NULL AS vacuumed, last_error FROM safe_migrate.backfills
 WHERE relation = 'onl.k' AND operation = 'vacuum';
-- nothing left behind
SELECT count(*) AS helpers FROM pg_constraint WHERE conname LIKE '%safe_migrate%';
SELECT count(*) AS invalid_indexes FROM pg_index WHERE NOT indisvalid;

-- safe_migrate.online does the same for every migration of the session
SET search_path = onl, public;
SET safe_migrate.online = on;
SELECT statement, sql FROM migrate_plan('CREATE INDEX t_n ON t (n); ALTER TABLE t ALTER COLUMN n SET NOT NULL;');
-- ... but a script wrapped in BEGIN; ... COMMIT; asked for one transaction
SELECT statement, sql FROM migrate_plan(E'BEGIN;\nCREATE INDEX t_n ON t (n);\nCOMMIT;');
RESET safe_migrate.online;
-- an UPDATE runs as a backfill only when the backfill can walk the table by
-- its primary key and leave the key alone: else it stays as written (and the
-- policy judges it)
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nUPDATE parent SET id = id + 100;\nUPDATE nokey SET a = 1;\nUPDATE t SET n = 2 FROM parent WHERE parent.id = t.pid;\nUPDATE t SET (n, w) = (1, 2) WHERE id < 5;');
-- PostgreSQL builds no index on a partitioned table concurrently, nor drops
-- a partitioned index so: left as written (the policy's hint writes the
-- per-partition sequence)
CREATE TABLE onl.parted (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE onl.parted_1 PARTITION OF onl.parted FOR VALUES FROM (0) TO (100);
CREATE INDEX parted_id ON onl.parted (id);
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nCREATE INDEX parted_at ON parted (at);\nDROP INDEX parted_id;\nDROP INDEX t_v;');
-- the directive and such a wrapper contradict each other
SELECT migrate_plan(E'-- safe_migrate:online\nBEGIN;\nCREATE INDEX t_n ON t (n);\nCOMMIT;');
SELECT migrate_plan(E'-- safe_migrate:online please\nCREATE INDEX t_n ON t (n);');

-- waiting for a job in the transaction that submitted it would never end
DO $$
BEGIN
  PERFORM migrate_backfill_wait(migrate_backfill('onl.k', 'b = b', 'a < 3'));
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RAISE WARNING '%', regexp_replace(SQLERRM, '[0-9]+', 'N');
END $$;
-- what online execution does not make safe is refused before any step runs
SELECT migrate_apply(E'-- safe_migrate:online\nCREATE INDEX t_n ON t (n);\nALTER TABLE t ALTER COLUMN n TYPE bigint USING n * 2 + (random() * 0)::int;', '002');
SELECT count(*) AS t_n_built FROM pg_class WHERE relname = 't_n';

-- ADD COLUMN with a volatile default: PostgreSQL would rewrite the table to
-- give every row its own value.  Online: the column added without it
-- (metadata only), the default set for new rows, the existing rows filled by
-- a backfill with the same expression (each row its own value), then NOT
-- NULL proven by a check.  A STABLE default (now(): computed once and stored,
-- no rewrite) stays as written.
SELECT format($f$
    CREATE TABLE %1$s.u (id int PRIMARY KEY, a int);
    INSERT INTO %1$s.u SELECT g, g FROM generate_series(1, 1000) g;
    ANALYZE %1$s.u;
  $f$, s) FROM unnest(ARRAY['naive', 'onl']) s
\gexec
\set script2 '-- safe_migrate:online\nALTER TABLE u ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();\nALTER TABLE u ADD COLUMN seen timestamptz DEFAULT clock_timestamp();\nALTER TABLE u ADD COLUMN created timestamptz NOT NULL DEFAULT now();\nALTER TABLE u ADD COLUMN label text NOT NULL COLLATE "C" DEFAULT md5(random()::text) -- a comment\n;\n'
SET search_path = onl, public;
SELECT statement, sql, lock_mode, effect, verdict
  FROM migrate_plan(replace(:'script2', '\n', E'\n'));
-- naively: refused, and the hint offers online execution ...
SELECT migrate_apply(E'ALTER TABLE u ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();', '003n');
-- ... but not for a table it cannot backfill (no primary key)
-- (INSERT, not CREATE TABLE AS: 17 extends a table CREATE TABLE AS fills
-- by several pages at a time, and the size in the message would differ)
CREATE TABLE onl.nk (a int);
INSERT INTO onl.nk SELECT generate_series(1, 1000);
ANALYZE onl.nk;
SELECT migrate_apply(E'ALTER TABLE nk ADD COLUMN token uuid DEFAULT gen_random_uuid();', '003k');
-- applied online
SELECT version, status, statements FROM migrate_apply(replace(:'script2', '\n', E'\n'), '003');
-- the column and its default for new rows commit together, with the job
SELECT s.step, s.first_statement, s.last_statement, s.commands
  FROM safe_migrate.migration_steps s JOIN safe_migrate.migrations m ON m.id = s.migration_id
 WHERE m.version = '003' ORDER BY s.step;
SELECT operation, status, rows_done FROM safe_migrate.backfills WHERE relation = 'onl.u' AND operation <> 'vacuum' ORDER BY id;
-- the same script, naively (policy off)
SET search_path = naive, public;
SET safe_migrate.policy = off;
SELECT replace(replace(:'script2', '-- safe_migrate:online', ''), '\n', E'\n') AS naive_sql \gset
:naive_sql
RESET safe_migrate.policy;
RESET search_path;
-- the same columns both ways: type, collation, NOT NULL, default (and no
-- stored "missing" value online but for the STABLE default: naively the
-- later rewrites clear created's)
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, co.collname, a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) AS "default", a.atthasmissing,
       (SELECT row(format_type(b.atttypid, b.atttypmod), b.attcollation, b.attnotnull,
                   pg_get_expr(e.adbin, e.adrelid))
          FROM pg_attribute b LEFT JOIN pg_attrdef e ON e.adrelid = b.attrelid AND e.adnum = b.attnum
         WHERE b.attrelid = 'naive.u'::regclass AND b.attname = a.attname)
       IS NOT DISTINCT FROM row(format_type(a.atttypid, a.atttypmod), a.attcollation, a.attnotnull,
                                pg_get_expr(d.adbin, d.adrelid)) AS same_as_naive
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
 WHERE a.attrelid = 'onl.u'::regclass AND a.attnum > 0 ORDER BY a.attnum;
-- every existing row its own value (gen_random_uuid, random: all distinct;
-- clock_timestamp: not one value), now() one value for all
SELECT 'naive' AS schema, count(*) AS rows, count(DISTINCT token) AS tokens, count(DISTINCT label) AS labels,
       count(seen) AS seen, count(DISTINCT seen) > 1 AS seen_per_row, count(DISTINCT created) AS created_values
  FROM naive.u
UNION ALL
SELECT 'onl', count(*), count(DISTINCT token), count(DISTINCT label), count(seen), count(DISTINCT seen) > 1,
       count(DISTINCT created)
  FROM onl.u;
-- new rows get the default
INSERT INTO onl.u (id, a) VALUES (1001, 1001)
  RETURNING token IS NOT NULL AS token, seen IS NOT NULL AS seen, label IS NOT NULL AS label;
-- nothing left behind
SELECT count(*) AS helpers FROM pg_constraint WHERE conname LIKE '%safe_migrate%';
-- left as written (the policy judges them): IF NOT EXISTS (whether the column
-- is there decides what it does), a domain with a constraint (PostgreSQL
-- rewrites the table to check it whatever the default), a constraint on the
-- column, a table without a primary key, a constant default, a default
-- calling a function the script defines (its volatility is not known before
-- the script runs); a sequence the script creates is fine (nextval is
-- volatile); with other subcommands the statement is split and the column
-- taken on its own (below)
CREATE DOMAIN onl.positive AS int CHECK (VALUE > 0);
SET search_path = onl, public;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nALTER TABLE u ADD COLUMN IF NOT EXISTS x uuid DEFAULT gen_random_uuid();\nALTER TABLE u ADD COLUMN y positive DEFAULT floor(random() * 10)::int + 1;\nALTER TABLE u ADD COLUMN z uuid UNIQUE DEFAULT gen_random_uuid();\nALTER TABLE u ADD COLUMN w uuid DEFAULT gen_random_uuid(), ADD COLUMN w2 int;\nALTER TABLE nk ADD COLUMN z uuid DEFAULT gen_random_uuid();\nALTER TABLE u ADD COLUMN c int NOT NULL DEFAULT 0;\nCREATE FUNCTION onl.one() RETURNS int LANGUAGE sql VOLATILE AS $$SELECT 1$$;\nALTER TABLE u ADD COLUMN o int DEFAULT one();\nCREATE SEQUENCE onl.u_seq;\nALTER TABLE u ADD COLUMN n bigint NOT NULL DEFAULT nextval(\'u_seq\');');

RESET search_path;

-- DELETE of many rows -> the batched delete job (migrate_delete), waited
-- for in a step of its own; the same rows left as the naive DELETE leaves
SELECT format($f$
    CREATE TABLE %1$s.ev (id int PRIMARY KEY, kind text NOT NULL);
    INSERT INTO %1$s.ev SELECT g, CASE WHEN g %% 4 = 0 THEN 'debug' ELSE 'audit' END FROM generate_series(1, 2000) g;
    CREATE TABLE %1$s.scratch (id int PRIMARY KEY);
    INSERT INTO %1$s.scratch SELECT generate_series(1, 500);
    ANALYZE %1$s.ev, %1$s.scratch;
  $f$, s) FROM unnest(ARRAY['naive', 'onl']) s
\gexec
\set delete_script '-- safe_migrate:online\nDELETE FROM ev WHERE kind = \'debug\' AND id > 100;\nDELETE FROM scratch;\n'
SET search_path = onl, public;
SELECT statement, sql FROM migrate_plan(replace(:'delete_script', '\n', E'\n'));
-- naively, inside a migration: refused; the hint gives the batched delete
-- and says online execution runs it
SELECT migrate_apply(replace(replace(:'delete_script', '-- safe_migrate:online', ''), '\n', E'\n'), 'del-000');
SELECT version, status, statements FROM migrate_apply(replace(:'delete_script', '\n', E'\n'), 'del-001');
SET search_path = naive, public;
SET safe_migrate.policy = off;
SELECT replace(replace(:'delete_script', '-- safe_migrate:online', ''), '\n', E'\n') AS naive_delete \gset
:naive_delete
RESET safe_migrate.policy;
RESET search_path;
SELECT (SELECT array_agg(id ORDER BY id) FROM naive.ev) = (SELECT array_agg(id ORDER BY id) FROM onl.ev) AS same_rows,
       (SELECT count(*) FROM onl.ev) AS ev_left, (SELECT count(*) FROM onl.scratch) AS scratch_left;
SELECT relation, operation, status, rows_done FROM safe_migrate.backfills
 WHERE relation IN ('onl.ev', 'onl.scratch') AND operation <> 'vacuum' ORDER BY id;
SELECT relation, count(*) AS vacuum_jobs FROM safe_migrate.backfills
 WHERE relation IN ('onl.ev', 'onl.scratch') AND operation = 'vacuum' GROUP BY 1 ORDER BY 1;
-- left as written: USING, RETURNING, an alias, a table without a key
SET search_path = onl, public;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nDELETE FROM ev USING scratch WHERE ev.id = scratch.id;\nDELETE FROM ev WHERE id < 10 RETURNING id;\nDELETE FROM ev e WHERE e.id < 10;\nDELETE FROM nk;');
RESET search_path;

-- ALTER TABLE with several subcommands, one of which online execution
-- takes: split into one statement per subcommand in the order PostgreSQL
-- runs them (drops, type changes, new columns, NOT NULL, unique and primary
-- keys, other constraints and defaults, the rest; as written within each),
-- each taken online or left as written
SELECT format($f$
    CREATE TABLE %1$s.ms (id int PRIMARY KEY, pid int, v text, n int, old int);
    INSERT INTO %1$s.ms SELECT g, g %% 50 + 1, 'v' || g, g, g FROM generate_series(1, 1000) g;
    CREATE INDEX ms_pid ON %1$s.ms (pid);
    ANALYZE %1$s.ms;
  $f$, s) FROM unnest(ARRAY['naive', 'onl']) s
\gexec
\set split_script '-- safe_migrate:online\n-- safe_migrate:allow ban-drop-column old is unused\nALTER TABLE ms ADD CONSTRAINT ms_pid_fk FOREIGN KEY (pid) REFERENCES parent (id),\n  ALTER COLUMN v SET NOT NULL, ADD COLUMN note text, DROP COLUMN old,\n  ADD CONSTRAINT ms_n_pos CHECK (n > 0 AND coalesce(pid, 0) >= 0);\nALTER TABLE ONLY ms ADD COLUMN tag uuid DEFAULT gen_random_uuid(), ADD UNIQUE (n), ALTER COLUMN note SET DEFAULT \'none\';\n'
SET search_path = onl, public;
SELECT statement, sql FROM migrate_plan(replace(:'split_script', '\n', E'\n'));
-- naively: refused, and the hint offers online execution
SELECT migrate_apply(replace(replace(:'split_script', '-- safe_migrate:online', ''), '\n', E'\n'), 'split-000');
SELECT version, status, statements FROM migrate_apply(replace(:'split_script', '\n', E'\n'), 'split-001');
SET search_path = naive, public;
SET safe_migrate.policy = off;
SELECT replace(replace(:'split_script', '-- safe_migrate:online', ''), '\n', E'\n') AS naive_split \gset
:naive_split
RESET safe_migrate.policy;
RESET search_path;
-- the same schema both ways, every row filled its own value
SELECT kind, count(*) AS items,
       count(*) FILTER (WHERE replace(item, 'onl.', 'naive.') NOT IN (SELECT item FROM pg_temp.schema_of('naive'))) AS different
  FROM pg_temp.schema_of('onl') WHERE item LIKE '%.ms%' GROUP BY kind ORDER BY kind;
SELECT (SELECT count(*) FROM pg_temp.schema_of('onl') WHERE item LIKE '%.ms%') =
       (SELECT count(*) FROM pg_temp.schema_of('naive') WHERE item LIKE '%.ms%') AS same_count;
CREATE FUNCTION pg_temp.defaults_of(rel regclass) RETURNS TABLE (attname name, default_value text) LANGUAGE sql AS $$
  SELECT a.attname, pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
$$;
SELECT * FROM pg_temp.defaults_of('onl.ms');
SELECT array(SELECT row(d.*)::text FROM pg_temp.defaults_of('onl.ms') d) =
       array(SELECT row(d.*)::text FROM pg_temp.defaults_of('naive.ms') d) AS same_defaults;
SELECT count(*) AS rows, count(DISTINCT tag) AS distinct_tags, count(*) FILTER (WHERE note IS NULL) AS notes_null
  FROM naive.ms;
SELECT count(*) AS rows, count(DISTINCT tag) AS distinct_tags, count(*) FILTER (WHERE note IS NULL) AS notes_null
  FROM onl.ms;
SELECT count(*) AS helpers FROM pg_constraint WHERE conname LIKE '%safe_migrate%';
SELECT count(*) AS invalid_indexes FROM pg_index WHERE NOT indisvalid;
-- not split: nothing of it taken online (one statement, one rewrite), a new
-- column's CHECK (it may name a column another subcommand adds, which
-- PostgreSQL adds first), a USING among several type changes (PostgreSQL
-- computes each from the row before any change), a table the script creates
SET search_path = onl, public;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nALTER TABLE ms ADD COLUMN a1 int, ADD COLUMN a2 text;\nALTER TABLE ms ADD COLUMN c1 int CHECK (c1 > n), ALTER COLUMN n SET NOT NULL;\nALTER TABLE ms ALTER COLUMN n TYPE bigint USING n + 1, ALTER COLUMN pid TYPE bigint;\nCREATE TABLE ms2 (id int PRIMARY KEY, n int);\nALTER TABLE ms2 ALTER COLUMN n SET NOT NULL, ADD CHECK (n > 0);');
-- the hint of a refused several-subcommand statement offers online execution
-- when a subcommand of it would be taken
CREATE TABLE onl.ms3 (id int PRIMARY KEY, n int);
INSERT INTO onl.ms3 SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE onl.ms3;
SELECT migrate_apply(E'ALTER TABLE ms3 ADD CONSTRAINT ms3_n_pos CHECK (n > 0), SET (fillfactor = 90);', 'split-002');
RESET search_path;

-- a named index on a partitioned table: the index ON ONLY the parent (no
-- build), each partition's built concurrently under the name PostgreSQL
-- gives it (a sub-partitioned partition gets an ON ONLY index of its own)
-- and attached; valid once all are.  The same indexes, names, definitions,
-- validity and attachments as the naive statement leaves.
SELECT format($f$
    CREATE TABLE %1$s.pt (id int, at int, v text) PARTITION BY RANGE (at);
    CREATE TABLE %1$s.pt_a PARTITION OF %1$s.pt FOR VALUES FROM (0) TO (500);
    CREATE TABLE %1$s.pt_b PARTITION OF %1$s.pt FOR VALUES FROM (500) TO (1000) PARTITION BY HASH (id);
    CREATE TABLE %1$s.pt_b0 PARTITION OF %1$s.pt_b FOR VALUES WITH (MODULUS 2, REMAINDER 0);
    CREATE TABLE %1$s.pt_b1 PARTITION OF %1$s.pt_b FOR VALUES WITH (MODULUS 2, REMAINDER 1);
    INSERT INTO %1$s.pt SELECT g, g, 'v' || g FROM generate_series(0, 999) g;
    ANALYZE %1$s.pt;
  $f$, s) FROM unnest(ARRAY['naive', 'onl']) s
\gexec
\set pscript '-- safe_migrate:online\nCREATE UNIQUE INDEX pt_at_id ON pt USING btree (at, id) INCLUDE (v) WHERE id >= 0;\nCREATE INDEX pt_lower ON pt (lower(v), lower(v));\n'
SET search_path = onl, public;
SELECT statement, sql, lock_mode, effect FROM migrate_plan(replace(:'pscript', '\n', E'\n'));
SELECT version, status, statements FROM migrate_apply(replace(:'pscript', '\n', E'\n'), 'part-001');
SET search_path = naive, public;
SET safe_migrate.policy = off;
SELECT replace(replace(:'pscript', '-- safe_migrate:online', ''), '\n', E'\n') AS naive_sql \gset
:naive_sql
RESET safe_migrate.policy;
RESET search_path;
CREATE FUNCTION pg_temp.pt_indexes(nsp text) RETURNS TABLE (idx text, valid boolean, def text, attached_to text)
LANGUAGE sql AS $$
  SELECT c.relname::text, i.indisvalid, replace(pg_get_indexdef(i.indexrelid), nsp || '.', ''),
         (SELECT p.relname::text FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent
           WHERE h.inhrelid = i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE c.relnamespace = nsp::regnamespace AND c.relname LIKE 'pt%'
$$;
SELECT * FROM pg_temp.pt_indexes('onl') ORDER BY idx;
SELECT (SELECT array_agg(row(x.*)::text ORDER BY idx) FROM pg_temp.pt_indexes('onl') x) =
       (SELECT array_agg(row(x.*)::text ORDER BY idx) FROM pg_temp.pt_indexes('naive') x) AS same_indexes;
-- it is unique on every partition
INSERT INTO onl.pt VALUES (600, 600, 'dup');
-- left as written: unnamed (its name is needed to attach the partitions'
-- indexes), IF NOT EXISTS, ON ONLY, a partition with an index of its own
-- (the naive statement would attach an equivalent one instead of building)
CREATE INDEX CONCURRENTLY pt_b0_own ON onl.pt_b0 (v);
SET search_path = onl, public;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nCREATE INDEX ON pt (v);\nCREATE INDEX IF NOT EXISTS pt_v ON pt (v);\nCREATE INDEX pt_v2 ON ONLY pt (v);\nCREATE INDEX pt_v3 ON pt (v);');
RESET search_path;

-- UPDATE ONLY / DELETE FROM ONLY of a table with inheritance children: the
-- batched job would reach the children too, so the statement runs as
-- written (here a small table the policy lets through) and the children
-- keep their rows; without ONLY the job reaches what the statement does.
CREATE TABLE onl.inh_p (id int PRIMARY KEY, v int);
CREATE TABLE onl.inh_c () INHERITS (onl.inh_p);
INSERT INTO onl.inh_p SELECT g, 0 FROM generate_series(1, 10) g;
INSERT INTO onl.inh_c SELECT g, 0 FROM generate_series(101, 110) g;
\set only_script '-- safe_migrate:online\nUPDATE ONLY onl.inh_p SET v = 1;\nDELETE FROM ONLY onl.inh_p WHERE id > 5;\nUPDATE onl.inh_p SET v = v + 10 WHERE id > 105;\n'
SELECT statement, sql FROM migrate_plan(replace(:'only_script', '\n', E'\n'));
SELECT status FROM migrate_apply(replace(:'only_script', '\n', E'\n'), 'only-1');
SELECT tableoid::regclass AS tab, v, count(*), min(id), max(id) FROM onl.inh_p GROUP BY 1, 2 ORDER BY 1, 2;
-- a clause that ends like the quoting tag ("a$sm" + "$sm$") is quoted with
-- another tag
CREATE TABLE onl.dq (id int PRIMARY KEY, a$sm int, z int);
INSERT INTO onl.dq SELECT g, g, NULL FROM generate_series(1, 200) g;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nUPDATE onl.dq SET z = a$sm');
SELECT status FROM migrate_apply(E'-- safe_migrate:online\nUPDATE onl.dq SET z = a$sm', 'dq-1');
SELECT count(*) FILTER (WHERE z = a$sm) AS filled, count(*) FROM onl.dq;

-- The vacuum step: for the tables the migration's role owns only (VACUUM is
-- the owner's), so a role that may UPDATE another's table migrates it
-- online without a vacuum job (the table left to autovacuum); with
-- safe_migrate.backfill_vacuum off there is no vacuum step at all.
CREATE ROLE onl_writer LOGIN;
GRANT USAGE ON SCHEMA onl TO onl_writer;
CREATE TABLE onl.nw (id int PRIMARY KEY, v int);
INSERT INTO onl.nw SELECT g, 0 FROM generate_series(1, 300) g;
GRANT SELECT, UPDATE ON onl.nw TO onl_writer;
SET ROLE onl_writer;
SELECT status, statements FROM migrate_apply(E'-- safe_migrate:online\nUPDATE onl.nw SET v = 1;', 'nw-1');
RESET ROLE;
SELECT operation, status, rows_done FROM safe_migrate.backfills WHERE relation = 'onl.nw' ORDER BY id;
SELECT count(*) FILTER (WHERE v = 1) AS filled FROM onl.nw;
SET safe_migrate.backfill_vacuum = off;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nUPDATE onl.nw SET v = 2;');
RESET safe_migrate.backfill_vacuum;
SET safe_migrate.online_latency_budget = 0.5;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nUPDATE onl.nw SET v = 2;');
RESET safe_migrate.online_latency_budget;

RESET safe_migrate.large_table_rows;
SET safe_migrate.policy = off;
DROP SCHEMA naive, onl CASCADE;
DROP OWNED BY onl_writer;
DROP ROLE onl_writer;
RESET safe_migrate.policy;
