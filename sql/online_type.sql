-- Online execution of ALTER COLUMN ... TYPE that rewrites the table (issue
-- 13, item 7): a shadow column kept in step by a trigger, the existing rows
-- backfilled, the indexes built concurrently on it, one short swap, the
-- foreign keys and checks added again NOT VALID and validated on their own.
-- Played by a table owner who is not an admin.  Every table counts as large.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS safe_migrate;
CREATE ROLE sm_type_owner LOGIN;
GRANT CREATE ON DATABASE contrib_regression TO sm_type_owner;
SET safe_migrate.large_table_rows = 100;
SET ROLE sm_type_owner;
CREATE SCHEMA naive_ty;
CREATE SCHEMA onl_ty;
SELECT format($f$
    CREATE TABLE %1$s.users (id serial PRIMARY KEY, code text NOT NULL, score int CHECK (id > 0),
                             boss int REFERENCES %1$s.users (id), UNIQUE (code, id));
    COMMENT ON COLUMN %1$s.users.id IS 'the user';
    CREATE INDEX users_recent ON %1$s.users (code, id DESC) WHERE id > 10;
    COMMENT ON INDEX %1$s.users_recent IS 'recent users';
    ALTER TABLE %1$s.users CLUSTER ON users_pkey;
    CREATE TABLE %1$s.orders (id bigserial PRIMARY KEY,
                              user_id int NOT NULL REFERENCES %1$s.users (id) ON DELETE CASCADE);
    INSERT INTO %1$s.users (code, score, boss) SELECT 'c' || g, g, NULL FROM generate_series(1, 1000) g;
    UPDATE %1$s.users SET boss = id / 2 WHERE id > 1;
    INSERT INTO %1$s.orders (user_id) SELECT g %% 1000 + 1 FROM generate_series(1, 2000) g;
    ANALYZE %1$s.users, %1$s.orders;
  $f$, s) FROM unnest(ARRAY['naive_ty', 'onl_ty']) s
\gexec

\set script '-- safe_migrate:online\nALTER TABLE users ALTER COLUMN id TYPE bigint;\n'

-- the steps that will run, each with its lock
SET search_path = onl_ty, public;
SELECT statement, sql, lock_mode FROM migrate_plan(replace(:'script', '\n', E'\n'));

-- without online execution: refused, and the hint offers it
SELECT migrate_apply(replace(replace(:'script', '-- safe_migrate:online', ''), '\n', E'\n'), 'ty0');

-- online: writes from another session meanwhile go through the trigger
SELECT version, status, statements FROM migrate_apply(replace(:'script', '\n', E'\n'), 'ty1');
RESET ROLE;
SELECT steps, steps_committed, executed_script IS NOT NULL AS expansion_recorded
  FROM safe_migrate.migrations WHERE version = 'ty1';

-- naively, as PostgreSQL runs it (policy off)
SET search_path = naive_ty, public;
SET safe_migrate.policy = off;
SET ROLE sm_type_owner;
SELECT replace(replace(:'script', '-- safe_migrate:online', ''), '\n', E'\n') AS naive_sql \gset
:naive_sql
RESET ROLE;
RESET safe_migrate.policy;
RESET search_path;
SET ROLE sm_type_owner;

-- the same schema both ways (the column's position aside: online, it is
-- the last one): columns with their type, NOT NULL, default and comment;
-- constraints (validated); indexes (valid, clustered, comment); the
-- sequence's owner
CREATE FUNCTION pg_temp.schema_of(nsp text) RETURNS TABLE (kind text, item text) LANGUAGE sql AS $$
  SELECT 'constraint', format('%s %s %s %s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid),
                              c.convalidated, obj_description(c.oid, 'pg_constraint'))
    FROM pg_constraint c WHERE c.connamespace = nsp::regnamespace AND c.contype <> 'n'
  UNION ALL
  SELECT 'index', format('%s %s %s %s %s', i.indexrelid::regclass, pg_get_indexdef(i.indexrelid), i.indisvalid,
                         i.indisclustered, obj_description(i.indexrelid, 'pg_class'))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = nsp::regnamespace
  UNION ALL
  SELECT 'column', format('%s.%s %s %s %s %s', a.attrelid::regclass, a.attname, a.attnotnull,
                          format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid),
                          col_description(a.attrelid, a.attnum))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = nsp::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'sequence', format('%s owned by %s', s.oid::regclass, pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid))
    FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'a'
   WHERE s.relnamespace = nsp::regnamespace AND s.relkind = 'S'
$$;
SELECT kind, count(*) AS items,
       count(*) FILTER (WHERE replace(item, 'onl_ty.', 'naive_ty.') NOT IN (SELECT item FROM pg_temp.schema_of('naive_ty'))) AS different
  FROM pg_temp.schema_of('onl_ty') GROUP BY kind ORDER BY kind;
SELECT (SELECT count(*) FROM pg_temp.schema_of('onl_ty')) = (SELECT count(*) FROM pg_temp.schema_of('naive_ty')) AS same_count;
SELECT item FROM pg_temp.schema_of('onl_ty') WHERE kind = 'column' AND item LIKE 'onl_ty.users.id %';
-- the same rows
SELECT (SELECT count(*) FROM onl_ty.users o JOIN naive_ty.users n USING (id)
         WHERE o.code = n.code AND o.score = n.score AND o.boss IS NOT DISTINCT FROM n.boss) AS same_users,
       (SELECT count(*) FROM onl_ty.orders o JOIN onl_ty.users u ON u.id = o.user_id) AS orders_joined;
-- the sequence goes on, the foreign keys hold
INSERT INTO onl_ty.users (code) VALUES ('new') RETURNING id;
INSERT INTO onl_ty.orders (user_id) VALUES (424242);
DELETE FROM onl_ty.users WHERE id = 1000;
SELECT count(*) AS orders_of_1000 FROM onl_ty.orders WHERE user_id = 1000;
-- nothing left behind
SELECT count(*) AS shadow_columns FROM pg_attribute
 WHERE attrelid = 'onl_ty.users'::regclass AND attname LIKE '%sm_new%' AND NOT attisdropped;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'onl_ty.users'::regclass AND NOT tgisinternal;
SELECT count(*) AS helpers FROM pg_constraint WHERE conname LIKE '%safe_migrate%';
SELECT count(*) AS invalid_indexes FROM pg_index WHERE NOT indisvalid;
SELECT count(*) AS stats FROM pg_stats WHERE schemaname = 'onl_ty' AND tablename = 'users' AND attname = 'id';

-- what online execution cannot make safe is refused before any step runs,
-- naming what blocks it
SET search_path = onl_ty, public;
CREATE TABLE blocked (id int PRIMARY KEY, n int, g int GENERATED ALWAYS AS (n * 2) STORED,
                      i int GENERATED BY DEFAULT AS IDENTITY);
INSERT INTO blocked (id, n) SELECT g, g FROM generate_series(1, 200) g;
CREATE VIEW blocked_v AS SELECT id, n FROM blocked;
CREATE TABLE nokey (n int);
INSERT INTO nokey SELECT generate_series(1, 200);
ANALYZE blocked, nokey;
SELECT migrate_apply(E'-- safe_migrate:online\nCREATE INDEX blocked_n ON blocked (n);\nALTER TABLE blocked ALTER COLUMN id TYPE bigint;', 'ty2');
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE blocked ALTER COLUMN n TYPE bigint;', 'ty2');
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE blocked ALTER COLUMN i TYPE numeric;', 'ty2');
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE nokey ALTER COLUMN n TYPE bigint;', 'ty2');
SELECT count(*) AS blocked_n_built FROM pg_class WHERE relname = 'blocked_n';
-- a change without a rewrite stays as written
SELECT sql, effect FROM migrate_plan(E'-- safe_migrate:online\nALTER TABLE blocked ALTER COLUMN n TYPE int;');

-- the trigger function, misused: errors, never a crash
SELECT safe_migrate.sync_column();
CREATE TABLE sy (id int PRIMARY KEY, a int, b bigint);
CREATE TRIGGER sy_one AFTER INSERT ON sy FOR EACH ROW EXECUTE FUNCTION safe_migrate.sync_column('a', 'b');
INSERT INTO sy VALUES (1, 1);
DROP TRIGGER sy_one ON sy;
CREATE TRIGGER sy_two BEFORE INSERT ON sy FOR EACH ROW EXECUTE FUNCTION safe_migrate.sync_column('a');
INSERT INTO sy VALUES (1, 1);
DROP TRIGGER sy_two ON sy;
CREATE TRIGGER sy_three BEFORE INSERT OR UPDATE ON sy FOR EACH ROW EXECUTE FUNCTION safe_migrate.sync_column('a', 'nope');
INSERT INTO sy VALUES (1, 1);
DROP TRIGGER sy_three ON sy;
CREATE TRIGGER sy_four BEFORE INSERT OR UPDATE ON sy FOR EACH ROW EXECUTE FUNCTION safe_migrate.sync_column('a', 'b');
INSERT INTO sy VALUES (1, 7), (2, NULL);
UPDATE sy SET a = 8 WHERE id = 1;
ALTER TABLE sy DROP COLUMN b;
INSERT INTO sy VALUES (3, 3);
DROP TRIGGER sy_four ON sy;
SELECT * FROM sy ORDER BY id;

-- the policy lets DROP COLUMN through only for a column a sync_column
-- trigger (enabled always) copies into another column of the table, after
-- sync_column_check found every row copied since the trigger last changed,
-- and only if the transaction gives the name back by its commit
CREATE TABLE sz (id int PRIMARY KEY, a int);
INSERT INTO sz SELECT g, g * 10 FROM generate_series(1, 5) g;
ALTER TABLE sz ADD COLUMN c bigint;
CREATE TRIGGER sz_copy BEFORE INSERT OR UPDATE ON sz FOR EACH ROW EXECUTE FUNCTION safe_migrate.sync_column('a', 'c');
-- an ordinary trigger does not fire with session_replication_role = replica
SELECT safe_migrate.sync_column_check('sz', 'a', 'c');
ALTER TABLE sz ENABLE ALWAYS TRIGGER sz_copy;
BEGIN;
ALTER TABLE sz DROP COLUMN a;
ROLLBACK;
SELECT safe_migrate.sync_column_check('sz', 'a', 'c');
UPDATE sz SET a = a;
SELECT safe_migrate.sync_column_check('sz', 'a', 'c');
ALTER TABLE sz DISABLE TRIGGER sz_copy;
ALTER TABLE sz ENABLE ALWAYS TRIGGER sz_copy;
BEGIN;
ALTER TABLE sz DROP COLUMN a;
ROLLBACK;
SELECT safe_migrate.sync_column_check('sz', 'a', 'c');
BEGIN;
ALTER TABLE sz DROP COLUMN a;
COMMIT;
SELECT string_agg(attname, ', ' ORDER BY attnum) AS sz_columns FROM pg_attribute
 WHERE attrelid = 'sz'::regclass AND attnum > 0 AND NOT attisdropped;
BEGIN;
ALTER TABLE sz DROP COLUMN a;
ALTER TABLE sz RENAME COLUMN c TO a;
DROP TRIGGER sz_copy ON sz;
COMMIT;
SELECT id, a, pg_typeof(a) FROM sz ORDER BY id;
-- the check reads as its caller; its record is not the caller's to read
CREATE TRIGGER sy_six BEFORE INSERT OR UPDATE ON sy FOR EACH ROW EXECUTE FUNCTION safe_migrate.sync_column('a', 'b');
ALTER TABLE sy ENABLE ALWAYS TRIGGER sy_six;
RESET ROLE;
CREATE ROLE sm_type_other;
GRANT USAGE ON SCHEMA onl_ty TO sm_type_other;
SET ROLE sm_type_other;
SELECT safe_migrate.sync_column_check('onl_ty.sy', 'a', 'b');
SELECT count(*) FROM safe_migrate.online_copies;
RESET ROLE;
REVOKE USAGE ON SCHEMA onl_ty FROM sm_type_other;
DROP ROLE sm_type_other;
SET ROLE sm_type_owner;

-- an identity column: the new column gets an identity of its own in the
-- swap, with the old sequence's options, position and name (its bounds
-- widened as ALTER COLUMN TYPE widens them)
SELECT format($f$
    CREATE TABLE %1$s.idt (id int GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 5 CACHE 2) PRIMARY KEY,
                           n int);
    CREATE TABLE %1$s.idd (id smallint GENERATED BY DEFAULT AS IDENTITY (MAXVALUE 30000 CYCLE) PRIMARY KEY, n int);
    INSERT INTO %1$s.idt (n) SELECT g FROM generate_series(1, 200) g;
    INSERT INTO %1$s.idd (n) SELECT g FROM generate_series(1, 200) g;
    ANALYZE %1$s.idt, %1$s.idd;
  $f$, s) FROM unnest(ARRAY['naive_ty', 'onl_ty']) s
\gexec
SET search_path = onl_ty, public;
SELECT sql FROM migrate_plan(E'-- safe_migrate:online\nALTER TABLE idt ALTER COLUMN id TYPE bigint;')
 WHERE sql ~ 'IDENTITY|setval|SEQUENCE';
SELECT version, status FROM migrate_apply(E'-- safe_migrate:online\nALTER TABLE idt ALTER COLUMN id TYPE bigint;\nALTER TABLE idd ALTER COLUMN id TYPE integer;', 'ty-id1');
RESET ROLE;
SET safe_migrate.policy = off;
SET ROLE sm_type_owner;
ALTER TABLE naive_ty.idt ALTER COLUMN id TYPE bigint;
ALTER TABLE naive_ty.idd ALTER COLUMN id TYPE integer;
RESET ROLE;
RESET safe_migrate.policy;
SET ROLE sm_type_owner;
CREATE FUNCTION pg_temp.identity_of(rel regclass) RETURNS text LANGUAGE sql AS $$
  SELECT format('%s %s %s %s start %s increment %s min %s max %s cache %s cycle %s last %s',
                a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity,
                split_part(pg_get_serial_sequence(rel::text, 'id'), '.', 2), s.seqstart, s.seqincrement,
                s.seqmin, s.seqmax, s.seqcache, s.seqcycle, q.last_value)
    FROM pg_attribute a, pg_sequence s, pg_sequences q
   WHERE a.attrelid = rel AND a.attname = 'id'
     AND s.seqrelid = pg_get_serial_sequence(rel::text, 'id')::regclass
     AND q.schemaname || '.' || q.sequencename = pg_get_serial_sequence(rel::text, 'id')
$$;
SELECT pg_temp.identity_of('onl_ty.idt') AS online_idt, pg_temp.identity_of('onl_ty.idd') AS online_idd;
SELECT pg_temp.identity_of('onl_ty.idt') = replace(pg_temp.identity_of('naive_ty.idt'), 'naive_ty', 'onl_ty') AS same_idt,
       pg_temp.identity_of('onl_ty.idd') = replace(pg_temp.identity_of('naive_ty.idd'), 'naive_ty', 'onl_ty') AS same_idd;
-- the next rows get the next values, as naively
INSERT INTO onl_ty.idt (n) VALUES (1) RETURNING id;
INSERT INTO naive_ty.idt (n) VALUES (1) RETURNING id;
INSERT INTO onl_ty.idt (id, n) VALUES (5, 1);
SELECT count(*) AS sequences_left FROM pg_class WHERE relkind = 'S' AND relname LIKE '%sm_new%';

-- column privileges: the ones the table's owner granted are granted again
-- on the new column in the swap (the same privileges as the naive
-- statement leaves); granted by another role (a grantee WITH GRANT OPTION),
-- the change is refused before any step runs
RESET ROLE;
CREATE ROLE sm_type_reader;
CREATE ROLE sm_type_third;
SET ROLE sm_type_owner;
SELECT format($f$
    CREATE TABLE %1$s.gr (id int PRIMARY KEY, n int);
    INSERT INTO %1$s.gr SELECT g, g FROM generate_series(1, 200) g;
    GRANT USAGE ON SCHEMA %1$s TO sm_type_reader;
    GRANT SELECT (id, n), UPDATE (id) ON %1$s.gr TO sm_type_reader;
    GRANT REFERENCES (id) ON %1$s.gr TO PUBLIC;
    GRANT INSERT (id) ON %1$s.gr TO sm_type_reader WITH GRANT OPTION;
    ANALYZE %1$s.gr;
  $f$, s) FROM unnest(ARRAY['naive_ty', 'onl_ty']) s
\gexec
SET search_path = onl_ty, public;
SELECT sql FROM migrate_plan(E'-- safe_migrate:online\nALTER TABLE gr ALTER COLUMN id TYPE bigint;')
 WHERE sql LIKE 'GRANT%';
SELECT version, status FROM migrate_apply(E'-- safe_migrate:online\nALTER TABLE gr ALTER COLUMN id TYPE bigint;', 'ty-gr1');
RESET ROLE;
SET safe_migrate.policy = off;
SET ROLE sm_type_owner;
ALTER TABLE naive_ty.gr ALTER COLUMN id TYPE bigint;
RESET ROLE;
RESET safe_migrate.policy;
SELECT format_type(atttypid, atttypmod) AS type, array(SELECT unnest(attacl)::text ORDER BY 1) AS privileges
  FROM pg_attribute WHERE attrelid = 'onl_ty.gr'::regclass AND attname = 'id';
SELECT (SELECT array(SELECT unnest(attacl)::text ORDER BY 1) FROM pg_attribute
         WHERE attrelid = 'onl_ty.gr'::regclass AND attname = 'id') =
       (SELECT array(SELECT unnest(attacl)::text ORDER BY 1) FROM pg_attribute
         WHERE attrelid = 'naive_ty.gr'::regclass AND attname = 'id') AS same_privileges;
SET ROLE sm_type_reader;
SELECT count(id) AS reader_reads FROM onl_ty.gr;
UPDATE onl_ty.gr SET id = id WHERE id = 1;
RESET ROLE;
SET ROLE sm_type_owner;
CREATE TABLE gr2 (id int PRIMARY KEY, n int);
INSERT INTO gr2 SELECT g, g FROM generate_series(1, 200) g;
ANALYZE gr2;
GRANT INSERT (id) ON gr2 TO sm_type_reader WITH GRANT OPTION;
SET ROLE sm_type_reader;
GRANT INSERT (id) ON onl_ty.gr2 TO sm_type_third;
SET ROLE sm_type_owner;
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE gr2 ALTER COLUMN id TYPE bigint;', 'ty-gr2');
SELECT format_type(atttypid, atttypmod) AS gr2_type FROM pg_attribute
 WHERE attrelid = 'onl_ty.gr2'::regclass AND attname = 'id';

-- USING: the new column computed from the row by the USING expression (in
-- the trigger, the backfill and the check), the same result as the naive
-- statement; the expression as PostgreSQL prints it, names qualified
SELECT format($f$
    CREATE TABLE %1$s.items (id int PRIMARY KEY, code text NOT NULL, qty text, unit text);
    INSERT INTO %1$s.items SELECT g, (g * 3)::text, (g %% 7)::text, CASE WHEN g %% 2 = 0 THEN 'kg' END
      FROM generate_series(1, 300) g;
    CREATE INDEX items_code ON %1$s.items (code) WHERE id > 10;
    ANALYZE %1$s.items;
  $f$, s) FROM unnest(ARRAY['naive_ty', 'onl_ty']) s
\gexec
\set using_script '-- safe_migrate:online\nALTER TABLE items ALTER COLUMN code TYPE integer USING code::integer;\nALTER TABLE items ALTER COLUMN qty TYPE varchar(10) USING qty || coalesce(\' \' || unit, \'\');\n'
SET search_path = onl_ty, public;
SELECT statement, sql FROM migrate_plan(replace(:'using_script', '\n', E'\n'))
 WHERE sql ~ 'sync_column|migrate_backfill\(|INDEX';
-- without online execution: refused, the hint fills the new column by the
-- USING expression and offers online execution
SELECT migrate_apply(replace(replace(:'using_script', '-- safe_migrate:online', ''), '\n', E'\n'), 'ty-u0');
SELECT version, status FROM migrate_apply(replace(:'using_script', '\n', E'\n'), 'ty-using');
RESET ROLE;
SET search_path = naive_ty, public;
SET safe_migrate.policy = off;
SET ROLE sm_type_owner;
SELECT replace(replace(:'using_script', '-- safe_migrate:online', ''), '\n', E'\n') AS naive_sql \gset
:naive_sql
RESET ROLE;
RESET safe_migrate.policy;
RESET search_path;
SET ROLE sm_type_owner;
SELECT kind, count(*) AS items,
       count(*) FILTER (WHERE replace(item, 'onl_ty.', 'naive_ty.') NOT IN (SELECT item FROM pg_temp.schema_of('naive_ty'))) AS different
  FROM pg_temp.schema_of('onl_ty') WHERE item LIKE '%items%' GROUP BY kind ORDER BY kind;
SELECT item FROM pg_temp.schema_of('onl_ty') WHERE item LIKE 'onl_ty.items.%' ORDER BY item;
SET search_path = onl_ty, public;
SELECT (SELECT count(*) FROM onl_ty.items o JOIN naive_ty.items n USING (id)
         WHERE o.code = n.code AND o.qty IS NOT DISTINCT FROM n.qty) AS same_items,
       (SELECT count(*) FROM onl_ty.items) AS items;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'onl_ty.items'::regclass AND NOT tgisinternal;

-- what the USING expression cannot be online: refused before any step
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE items ALTER COLUMN unit TYPE text USING unit || random()::text;', 'ty-u2');
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE items ALTER COLUMN unit TYPE int USING (SELECT 1);', 'ty-u2');
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE items ALTER COLUMN unit TYPE int USING unit::point;', 'ty-u2');
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE items ALTER COLUMN unit TYPE int USING nope;', 'ty-u2');
CREATE FUNCTION pg_temp.one(text) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE items ALTER COLUMN unit TYPE int USING pg_temp.one(unit);', 'ty-u2');
SELECT count(*) AS unit_sm_new FROM pg_attribute WHERE attrelid = 'onl_ty.items'::regclass AND attname = 'unit_sm_new';
-- an index or check on the column that would not hold for the new type:
-- refused before any step (the naive statement fails on it too)
CREATE TABLE held (id int PRIMARY KEY, code text NOT NULL, tag text);
INSERT INTO held SELECT g, g::text, 't' FROM generate_series(1, 200) g;
ANALYZE held;
CREATE INDEX CONCURRENTLY held_code_set ON held (code) WHERE code <> '0';
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE held ALTER COLUMN code TYPE integer USING code::integer;', 'ty-u3');
DROP INDEX CONCURRENTLY held_code_set;
CREATE INDEX CONCURRENTLY held_code_pattern ON held (code text_pattern_ops);
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE held ALTER COLUMN code TYPE integer USING code::integer;', 'ty-u3');
DROP INDEX CONCURRENTLY held_code_pattern;
CREATE INDEX CONCURRENTLY held_code_lower ON held (lower(code));
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE held ALTER COLUMN code TYPE integer USING code::integer;', 'ty-u3');
DROP INDEX CONCURRENTLY held_code_lower;
ALTER TABLE held ADD CONSTRAINT held_code_filled CHECK (code <> '') NOT VALID;
ALTER TABLE held VALIDATE CONSTRAINT held_code_filled;
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE held ALTER COLUMN code TYPE integer USING code::integer;', 'ty-u3');
ALTER TABLE held DROP CONSTRAINT held_code_filled;
-- a foreign key whose two sides would no longer compare (no equality
-- operator, no implicit cast): refused before any step, the referencing
-- column's change and the referenced one's
CREATE TABLE held_kinds (kind text PRIMARY KEY);
INSERT INTO held_kinds VALUES ('1'), ('2');
CREATE TABLE held_items (id int PRIMARY KEY, kind text REFERENCES held_kinds);
INSERT INTO held_items SELECT g, (1 + g % 2)::text FROM generate_series(1, 100) g;
ANALYZE held_kinds, held_items;
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE held_items ALTER COLUMN kind TYPE integer USING kind::integer;', 'ty-u4');
SELECT migrate_apply(E'-- safe_migrate:online\nALTER TABLE held_kinds ALTER COLUMN kind TYPE integer USING kind::integer;', 'ty-u4');
SELECT count(*) AS shadow_columns FROM pg_attribute
 WHERE attrelid IN ('onl_ty.held_kinds'::regclass, 'onl_ty.held_items'::regclass) AND attname LIKE '%sm_new';
-- naively, PostgreSQL refuses them too
RESET ROLE;
SET safe_migrate.policy = off;
SET ROLE sm_type_owner;
ALTER TABLE held_items ALTER COLUMN kind TYPE integer USING kind::integer;
ALTER TABLE held_kinds ALTER COLUMN kind TYPE integer USING kind::integer;
RESET ROLE;
RESET safe_migrate.policy;
SET ROLE sm_type_owner;
-- a type both sides still compare in (varchar and text, one operator
-- family) is taken
SELECT bool_or(sql LIKE '%safe_migrate.sync_column(%') AS online
  FROM migrate_plan(E'-- safe_migrate:online\nALTER TABLE held_items ALTER COLUMN kind TYPE varchar(5);');
-- what does hold on the new type is taken
CREATE INDEX CONCURRENTLY held_code_tag ON held (code, tag) WHERE code IS NOT NULL AND tag <> 'x';
ALTER TABLE held ADD CONSTRAINT held_code_positive CHECK (code IS NOT NULL) NOT VALID;
ALTER TABLE held VALIDATE CONSTRAINT held_code_positive;
SELECT statement, sql FROM migrate_plan(E'-- safe_migrate:online\nALTER TABLE held ALTER COLUMN code TYPE integer USING code::integer;')
 WHERE sql LIKE 'CREATE INDEX%' OR sql LIKE '%held_code_positive%';
SELECT count(*) AS held_code_sm_new FROM pg_attribute WHERE attrelid = 'onl_ty.held'::regclass AND attname = 'code_sm_new';

-- the trigger with an expression, directly: every write gets the target
-- from the row, a change of another column the expression reads included;
-- the expression is parsed with search_path pinned to pg_catalog (a
-- writer's schemas cannot replace its operator)
CREATE TABLE sx (id int PRIMARY KEY, a text, b text, c text);
CREATE TRIGGER sx_expr BEFORE INSERT OR UPDATE ON sx FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('a', 'c', 'upper(a) || ''/'' || b');
INSERT INTO sx VALUES (1, 'x', 'one'), (2, NULL, 'two'), (3, 'z', NULL);
UPDATE sx SET b = 'uno' WHERE id = 1;
SELECT * FROM sx ORDER BY id;
CREATE SCHEMA sx_evil;
CREATE FUNCTION sx_evil.cat(text, text) RETURNS text LANGUAGE sql AS $$ SELECT 'evil' $$;
CREATE OPERATOR sx_evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = sx_evil.cat);
SET search_path = sx_evil, pg_catalog, onl_ty;
INSERT INTO onl_ty.sx VALUES (4, 'w', 'four');
SELECT 'a' || 'b' AS evil_in_this_session, c FROM onl_ty.sx WHERE id = 4;
SET search_path = onl_ty, public;
-- misused: clear errors, never a crash
CREATE TRIGGER sx_bad1 BEFORE INSERT OR UPDATE ON sx FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('a', 'c', 'a, b');
INSERT INTO sx VALUES (5, 'v', 'five');
DROP TRIGGER sx_bad1 ON sx;
CREATE TRIGGER sx_bad2 BEFORE INSERT OR UPDATE ON sx FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('a', 'c', 'a FROM pg_class');
INSERT INTO sx VALUES (5, 'v', 'five');
DROP TRIGGER sx_bad2 ON sx;
CREATE TRIGGER sx_bad3 BEFORE INSERT OR UPDATE ON sx FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('a', 'c', '(SELECT relname FROM pg_class LIMIT 1)');
INSERT INTO sx VALUES (5, 'v', 'five');
DROP TRIGGER sx_bad3 ON sx;
CREATE TRIGGER sx_bad4 BEFORE INSERT OR UPDATE ON sx FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('a', 'id', 'point(1, 2)');
INSERT INTO sx VALUES (5, 'v', 'five');
DROP TRIGGER sx_bad4 ON sx;
-- the check takes exactly one expression, the trigger's own
ALTER TABLE sx ENABLE ALWAYS TRIGGER sx_expr;
SELECT safe_migrate.sync_column_check('sx', 'a', 'c', '1) IS NULL OR (true');
SELECT safe_migrate.sync_column_check('sx', 'a', 'c', 'upper(a)');
SELECT safe_migrate.sync_column_check('sx', 'a', 'c');
SELECT safe_migrate.sync_column_check('sx', 'a', 'c', 'upper(a) || ''/'' || b');
ALTER TABLE sx DISABLE TRIGGER sx_expr;
INSERT INTO sx VALUES (6, 'u', 'six');
ALTER TABLE sx ENABLE ALWAYS TRIGGER sx_expr;
SELECT safe_migrate.sync_column_check('sx', 'a', 'c', 'upper(a) || ''/'' || b');
-- a copy is computed from its source: a constant would make every row
-- "copied" and clear the way to drop the source column with its data
CREATE TRIGGER sx_null BEFORE INSERT OR UPDATE ON sx FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('a', 'c', 'NULL::text');
ALTER TABLE sx ENABLE ALWAYS TRIGGER sx_null;
SELECT safe_migrate.sync_column_check('sx', 'a', 'c', 'NULL::text');
DROP TRIGGER sx_null ON sx;
-- the count reads the expression as analyzed and printed again, never as
-- the caller's text: one that ends in a line comment counts the same rows
-- (pasted as text, the comment would swallow the rest of the count's query)
UPDATE sx SET b = b WHERE id = 6;
DROP TRIGGER sx_expr ON sx;
CREATE TRIGGER sx_cmt BEFORE INSERT OR UPDATE ON sx FOR EACH ROW
  EXECUTE FUNCTION safe_migrate.sync_column('a', 'c', 'upper(a) || ''/'' || b -- commented');
ALTER TABLE sx ENABLE ALWAYS TRIGGER sx_cmt;
SELECT safe_migrate.sync_column_check('sx', 'a', 'c', 'upper(a) || ''/'' || b -- commented');
ALTER TABLE sx DISABLE TRIGGER sx_cmt;
INSERT INTO sx VALUES (7, 't', 'seven');
ALTER TABLE sx ENABLE ALWAYS TRIGGER sx_cmt;
SET search_path = sx_evil, pg_catalog, onl_ty;
SELECT safe_migrate.sync_column_check('onl_ty.sx', 'a', 'c', 'upper(a) || ''/'' || b -- commented');
SET search_path = onl_ty, public;

RESET search_path;
RESET ROLE;
SET client_min_messages = warning;
SET safe_migrate.policy = off;
DROP SCHEMA naive_ty CASCADE;
DROP SCHEMA onl_ty CASCADE;
DROP SCHEMA sx_evil CASCADE;
DELETE FROM safe_migrate.backfills WHERE submitted_by = 'sm_type_owner';
DELETE FROM safe_migrate.migration_steps WHERE migration_id IN
  (SELECT id FROM safe_migrate.migrations WHERE version LIKE 'ty%');
DELETE FROM safe_migrate.migrations WHERE version LIKE 'ty%';
REVOKE CREATE ON DATABASE contrib_regression FROM sm_type_owner;
DROP OWNED BY sm_type_owner;
DROP ROLE sm_type_owner;
DROP ROLE sm_type_reader, sm_type_third;
RESET safe_migrate.policy;
