-- migrate_apply: the runner, its history and its errors.
SET safe_migrate.lock_timeout = '500ms';

-- A plain multi-statement script; the parser splits it, so semicolons in
-- strings, dollar quotes, comments and BEGIN ATOMIC bodies survive.
SELECT version, status, statements, lock_retries, warnings
  FROM migrate_apply($sql$
    -- a comment; with a semicolon
    CREATE TABLE users (id bigint PRIMARY KEY, first_name text, last_name text);
    INSERT INTO users VALUES (1, 'Ada;', 'Lovelace'), (2, 'Alan', $$Tur;ing$$);
    /* block comment; */
    CREATE FUNCTION user_label(u users) RETURNS text LANGUAGE sql
    BEGIN ATOMIC
        SELECT 'unused;';
        SELECT u.first_name || '; ' || u.last_name;
    END;
    CREATE FUNCTION shout(t text) RETURNS text LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN upper(t) || ';';
    END
    $fn$;
$sql$, '0001', 'create users');
SELECT user_label(u), shout(last_name) FROM users u ORDER BY id;

-- Applying it again with the same checksum is a no-op that says so.
SELECT version, status, statements FROM migrate_apply($sql$
    -- a comment; with a semicolon
    CREATE TABLE users (id bigint PRIMARY KEY, first_name text, last_name text);
    INSERT INTO users VALUES (1, 'Ada;', 'Lovelace'), (2, 'Alan', $$Tur;ing$$);
    /* block comment; */
    CREATE FUNCTION user_label(u users) RETURNS text LANGUAGE sql
    BEGIN ATOMIC
        SELECT 'unused;';
        SELECT u.first_name || '; ' || u.last_name;
    END;
    CREATE FUNCTION shout(t text) RETURNS text LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN upper(t) || ';';
    END
    $fn$;
$sql$, '0001', 'create users');

-- A different script under an applied version names both checksums.
SELECT * FROM migrate_apply('CREATE TABLE other (id int);', '0001');

-- Without a version, one is derived from the checksum.
SELECT version, status FROM migrate_apply('CREATE TABLE derived_version (id int);');
SELECT version, status FROM migrate_apply('CREATE TABLE derived_version (id int);');

-- dbmate format: the down section is stored for rollback.
SELECT version, status, statements FROM migrate_apply($sql$
-- migrate:up
ALTER TABLE users ADD COLUMN full_name text;
-- migrate:down
ALTER TABLE users DROP COLUMN full_name;
$sql$, '0002', 'add full_name');

-- Statements that cannot run in a transaction block run top level.
SELECT version, status, statements FROM migrate_apply($sql$
CREATE INDEX CONCURRENTLY users_full_name ON users (full_name);
REINDEX INDEX CONCURRENTLY users_full_name;
VACUUM (ANALYZE) users;
DROP INDEX CONCURRENTLY users_full_name;
CREATE INDEX CONCURRENTLY users_last_name ON users (last_name);
$sql$, '0003');
SELECT indexrelid::regclass, indisvalid FROM pg_index
 WHERE indrelid = 'users'::regclass ORDER BY 1::text;

-- An enum value added in one step is usable in the next.
SELECT version, status, statements FROM migrate_apply($sql$
CREATE TYPE mood AS ENUM ('sad');
ALTER TYPE mood ADD VALUE 'happy';
CREATE TABLE moods (m mood DEFAULT 'happy');
$sql$, '0004');

-- Atomicity: statement 3 of 4 fails, statements 1 and 2 are not applied,
-- the history keeps the failure, the caller gets the error.
SELECT * FROM migrate_apply($sql$
CREATE TABLE atomic_a (id int);
INSERT INTO atomic_a VALUES (1);
INSERT INTO atomic_a VALUES (1 / 0);
CREATE TABLE atomic_b (id int);
$sql$, '0005');
SELECT to_regclass('atomic_a') AS atomic_a, to_regclass('atomic_b') AS atomic_b;
SELECT version, status, statements, sqlstate, error_message, failed_statement
  FROM safe_migrate.history WHERE version = '0005';
-- A failed version can be fixed and applied again.
SELECT version, status, statements FROM migrate_apply($sql$
CREATE TABLE atomic_a (id int);
INSERT INTO atomic_a VALUES (1);
$sql$, '0005');

-- A failed concurrent index build leaves no invalid index behind.
CREATE TABLE dupes (v int);
INSERT INTO dupes VALUES (1), (1);
SELECT * FROM migrate_apply('CREATE UNIQUE INDEX CONCURRENTLY dupes_v ON dupes (v);', '0006');
SELECT count(*) AS invalid_indexes FROM pg_index WHERE NOT indisvalid;
SELECT to_regclass('dupes_v') AS dupes_v;

-- A mixed script is applied in steps; a failure after a committed step
-- says what was committed.
SELECT * FROM migrate_apply($sql$
CREATE TABLE mixed (id int);
CREATE INDEX CONCURRENTLY mixed_id ON mixed (id);
SELECT 1 / 0;
$sql$, '0007');
SELECT version, status, statements FROM safe_migrate.history WHERE version = '0007';
-- It is partly applied: another script is refused (the same one would
-- continue after step 2); abandoning it lets the version start afresh.
SELECT steps, steps_committed, partly_applied FROM safe_migrate.history WHERE version = '0007';
\set VERBOSITY terse
SELECT * FROM migrate_apply('CREATE TABLE mixed_other (id int);', '0007');
\set VERBOSITY default
SELECT migrate_abandon('0007') LIKE 'abandoned migration "0007" (attempt %): its steps 1 to 2 of 3 (statements 1 to 2) stay committed%' AS abandoned;
SELECT partly_applied, abandoned_by = current_user AS by_me FROM safe_migrate.history WHERE version = '0007';

-- Errors in the script point into the statement.
SELECT * FROM migrate_apply('CREATE TABLE ok (id int); SELEC 1;', 'bad-syntax');
SELECT * FROM migrate_apply('CREATE TABLE ok2 (id int); SELECT no_such_column FROM users;', 'bad-column');

-- Bad input.
SELECT * FROM migrate_apply(NULL);
SELECT * FROM migrate_apply('');
SELECT * FROM migrate_apply('  -- only a comment ');
SELECT * FROM migrate_apply('SELECT 1', '');
SELECT * FROM migrate_apply(E'-- migrate:down\nSELECT 1;\n-- migrate:up\nSELECT 2;');
SELECT * FROM migrate_apply('CREATE TABLE t (id int); COMMIT;');
SELECT * FROM migrate_apply('COPY users FROM STDIN;');
SELECT * FROM migrate_apply(E'-- safe_migrate:allow ban-drop-table\nDROP TABLE dupes;');

-- Inside a transaction block: refused, the block is unharmed.
BEGIN;
SELECT * FROM migrate_apply('CREATE TABLE in_block (id int);', 'in-block');
ROLLBACK;
-- In a query that reads tables, a concurrent index build is refused (its
-- snapshot would make CREATE INDEX CONCURRENTLY wait for ever).
SELECT m.status FROM users u,
       LATERAL migrate_apply('CREATE INDEX CONCURRENTLY u_id ON users (id);', 'lateral') m
 WHERE u.id = 1;

-- A 10 MB script: one statement with a large dollar-quoted body, and many
-- small statements.
SELECT version, status, statements
  FROM migrate_apply('CREATE FUNCTION big() RETURNS int LANGUAGE sql AS $b$ SELECT 1 /* '
                     || repeat('x', 10 * 1024 * 1024) || ' */ $b$; '
                     || repeat('SELECT 1; ', 2000), 'big');
SELECT length(script) > 10 * 1024 * 1024 AS stored FROM safe_migrate.migrations WHERE version = 'big';
SELECT big();

-- WARNINGs raised by the statements reach the caller and are kept in the
-- result and the history, on both paths.
SELECT version, status, warnings FROM migrate_apply($sql$
DO $d$ BEGIN RAISE WARNING 'careful: %', 'in the caller'; END $d$;
$sql$, 'warn-1');
SELECT version, status, warnings FROM migrate_apply($sql$
DO $d$ BEGIN RAISE WARNING 'careful: %', 'in the runner'; END $d$;
VACUUM users;
$sql$, 'warn-2');
SELECT version, warnings FROM safe_migrate.history WHERE version LIKE 'warn-%' ORDER BY id;

-- Cancelling the caller (here: its statement_timeout) stops the migration.
-- On the runner path the runner's statement is cancelled too, and the runner
-- records the attempt as failed; on the in-caller path the attempt is
-- recorded as failed.
SET statement_timeout = '1s';
SET client_min_messages = warning;  -- the cancelled runner may still hold the lock
SELECT * FROM migrate_apply('CREATE TABLE cancelled_a (id int); SELECT pg_sleep(30); VACUUM users;', 'cancel-runner');
SELECT * FROM migrate_apply('CREATE TABLE cancelled_b (id int); SELECT pg_sleep(30);', 'cancel-caller');
RESET statement_timeout;
RESET client_min_messages;
DO $$
BEGIN   -- wait for the cancelled runner to be gone
    FOR i IN 1..3000 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'safe_migrate runner');
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
SELECT version, status, sqlstate FROM safe_migrate.history WHERE version LIKE 'cancel-%' ORDER BY id;
SELECT to_regclass('cancelled_a') AS cancelled_a, to_regclass('cancelled_b') AS cancelled_b;

-- The history.
SELECT version, description, status, statements, lock_retries, applied_by = current_user AS by_me,
       duration >= '0'::interval AS timed, has_down
  FROM safe_migrate.history ORDER BY id;

-- Index builds of a migration use safe_migrate.parallel_maintenance_workers
-- (default 0: one process) as max_parallel_maintenance_workers, in the
-- caller's session (transactional script) and in the runner; -1 keeps the
-- server's setting; a SET in the script applies after it; the caller's own
-- setting is left as it was.
SHOW max_parallel_maintenance_workers;
SELECT status FROM migrate_apply($$CREATE TABLE pmw_caller AS SELECT current_setting('max_parallel_maintenance_workers') AS v$$, 'pmw-1');
SELECT status FROM migrate_apply($$CREATE TABLE pmw_runner AS SELECT current_setting('max_parallel_maintenance_workers') AS v; VACUUM pmw_runner;$$, 'pmw-2');
SET safe_migrate.parallel_maintenance_workers = 3;
SELECT status FROM migrate_apply($$CREATE TABLE pmw_runner_3 AS SELECT current_setting('max_parallel_maintenance_workers') AS v; VACUUM pmw_runner_3;$$, 'pmw-3');
SET safe_migrate.parallel_maintenance_workers = -1;
SELECT status FROM migrate_apply($$CREATE TABLE pmw_server AS SELECT current_setting('max_parallel_maintenance_workers') AS v$$, 'pmw-4');
RESET safe_migrate.parallel_maintenance_workers;
SELECT status FROM migrate_apply($$SET max_parallel_maintenance_workers = 1; CREATE TABLE pmw_script AS SELECT current_setting('max_parallel_maintenance_workers') AS v; VACUUM pmw_script;$$, 'pmw-5');
SELECT (SELECT v FROM pmw_caller) AS caller, (SELECT v FROM pmw_runner) AS runner,
       (SELECT v FROM pmw_runner_3) AS runner_3, (SELECT v FROM pmw_server) AS server,
       (SELECT v FROM pmw_script) AS script;
SHOW max_parallel_maintenance_workers;
SET safe_migrate.parallel_maintenance_workers = -2;

-- The pages a migration's statements write go to disk as they go:
-- backend_flush_after is 256 kB where it is 0, in the caller's session
-- (transactional script) and in the runner; a value the session set
-- stands; the caller's own setting is left as it was.
SHOW backend_flush_after;
SELECT status FROM migrate_apply($$CREATE TABLE bfa_caller AS SELECT current_setting('backend_flush_after') AS v$$, 'bfa-1');
SELECT status FROM migrate_apply($$CREATE TABLE bfa_runner AS SELECT current_setting('backend_flush_after') AS v; VACUUM bfa_runner;$$, 'bfa-2');
SET backend_flush_after = 64;
SELECT status FROM migrate_apply($$CREATE TABLE bfa_session AS SELECT current_setting('backend_flush_after') AS v$$, 'bfa-3');
RESET backend_flush_after;
SELECT (SELECT v FROM bfa_caller) AS caller, (SELECT v FROM bfa_runner) AS runner,
       (SELECT v FROM bfa_session) AS session;
SHOW backend_flush_after;

-- Issue 11, real files.
-- A section wrapped in its own BEGIN; ... COMMIT; (START TRANSACTION, END,
-- COMMIT WORK, any case) runs as one transaction; the checksum is the
-- file's as given (the wrapped and the bare file are different files).
SELECT version, status, statements FROM migrate_apply($sql$
-- migrate:up
BEGIN;
CREATE TABLE wrap_a (id int);
INSERT INTO wrap_a VALUES (1);
COMMIT;
-- migrate:down
start transaction;
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
DROP TABLE wrap_a;
end;
$sql$, 'wrap-1');
SELECT checksum = migrate_checksum(script) AS checksum_of_the_file,
       checksum <> migrate_checksum(E'-- migrate:up\nCREATE TABLE wrap_a (id int);\nINSERT INTO wrap_a VALUES (1);\n'
                                    '-- migrate:down\n-- safe_migrate:allow ban-drop-table the down script drops what the up script created\n'
                                    'DROP TABLE wrap_a;\n') AS not_the_bare_file,
       script LIKE '%BEGIN;%' AS script_as_given
  FROM safe_migrate.migrations WHERE version = 'wrap-1';
-- One transaction: a failure leaves nothing behind, not even the enum
-- value that otherwise commits in a transaction of its own.
CREATE TYPE wrap_mood AS ENUM ('sad');
SELECT * FROM migrate_apply($sql$
BEGIN WORK;
ALTER TYPE wrap_mood ADD VALUE 'happy';
CREATE TABLE wrap_b (id int);
SELECT 1 / 0;
COMMIT WORK;
$sql$, 'wrap-2');
SELECT enum_range(NULL::wrap_mood) AS moods, to_regclass('wrap_b') AS wrap_b;
SELECT version, status, statements FROM migrate_apply($sql$
BEGIN WORK;
ALTER TYPE wrap_mood ADD VALUE 'happy';
CREATE TABLE wrap_b (id int);
COMMIT WORK;
$sql$, 'wrap-2');
SELECT enum_range(NULL::wrap_mood) AS moods, to_regclass('wrap_b') AS wrap_b;
-- On the runner path (here: the caller's isolation level sends it there)
-- the wrapped section runs the same way.
SET default_transaction_isolation = 'repeatable read';
SELECT version, status, statements FROM migrate_apply(E'START TRANSACTION;\nCREATE TABLE wrap_rr (id int);\nINSERT INTO wrap_rr VALUES (1);\nSELECT 1 / 0;\nCOMMIT;\n', 'wrap-rr');
SELECT version, status, statements FROM migrate_apply(E'START TRANSACTION;\nCREATE TABLE wrap_rr (id int);\nINSERT INTO wrap_rr VALUES (1);\nCOMMIT;\n', 'wrap-rr');
RESET default_transaction_isolation;
SELECT version, status, statements FROM safe_migrate.history WHERE version = 'wrap-rr' ORDER BY id;
SELECT count(*) AS wrap_rr_rows FROM wrap_rr;
-- A wrapped section cannot hold what cannot run in a transaction block.
SELECT * FROM migrate_apply(E'BEGIN;\nCREATE TABLE wrap_c (id int);\nCREATE INDEX CONCURRENTLY wrap_c_id ON wrap_c (id);\nCOMMIT;\n', 'wrap-3');
SELECT * FROM migrate_apply(E'-- migrate:up\nCREATE TABLE wrap_c (id int);\n-- migrate:down\nBEGIN;\nVACUUM wrap_c;\nCOMMIT;\n', 'wrap-3');
SELECT to_regclass('wrap_c') AS wrap_c;
-- Transaction control anywhere else is refused, naming the statement.
SELECT * FROM migrate_apply(E'BEGIN;\nCREATE TABLE wrap_c (id int);\nROLLBACK;\n', 'wrap-3');
SELECT * FROM migrate_apply(E'BEGIN;\nCREATE TABLE wrap_c (id int);\nSAVEPOINT s;\nCOMMIT;\n', 'wrap-3');
SELECT * FROM migrate_apply(E'BEGIN;\nBEGIN;\nCREATE TABLE wrap_c (id int);\nCOMMIT;\nCOMMIT;\n', 'wrap-3');
SELECT * FROM migrate_apply(E'BEGIN;\nCREATE TABLE wrap_c (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE wrap_d (id int);\nCOMMIT;\n', 'wrap-3');
SELECT * FROM migrate_apply(E'BEGIN;\nCREATE TABLE wrap_c (id int);\nCOMMIT AND CHAIN;\n', 'wrap-3');
SELECT * FROM migrate_apply(E'BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE wrap_c (id int);\nCOMMIT;\n', 'wrap-3');
SELECT * FROM migrate_apply(E'BEGIN;\nCREATE TABLE wrap_c (id int);\n', 'wrap-3');
SELECT * FROM migrate_apply(E'-- migrate:up\nCREATE TABLE wrap_c (id int);\nCOMMIT;\n-- migrate:down\nSELECT 1;\n', 'wrap-3');
SELECT to_regclass('wrap_c') AS wrap_c, count(*) AS recorded FROM safe_migrate.history WHERE version = 'wrap-3';
-- A syntax error in a wrapped section points into the script as usual.
SELECT * FROM migrate_apply(E'BEGIN;\nCREATE TABLE wrap_c (id int);\nSELEC 1;\nCOMMIT;\n', 'wrap-3');

-- The checksum keeps every byte inside literals: two scripts inserting
-- different strings are different migrations.
CREATE TABLE lit_notes (note text);
SELECT migrate_checksum(E'INSERT INTO lit_notes VALUES (\'one  \ntwo\');') <>
       migrate_checksum(E'INSERT INTO lit_notes VALUES (\'one\ntwo\');') AS trailing_blanks_in_literal,
       migrate_checksum(E'INSERT INTO lit_notes VALUES (\'one\r\ntwo\');') <>
       migrate_checksum(E'INSERT INTO lit_notes VALUES (\'one\ntwo\');') AS cr_in_literal,
       migrate_checksum(E'INSERT INTO lit_notes VALUES ($$one \ntwo$$);') <>
       migrate_checksum(E'INSERT INTO lit_notes VALUES ($$one\ntwo$$);') AS dollar_body,
       migrate_checksum(E'INSERT INTO lit_notes VALUES (\'one\ntwo\');  \r\n\r\n') =
       migrate_checksum(E'INSERT INTO lit_notes VALUES (\'one\ntwo\');') AS outside_literals_normalised;
SELECT status FROM migrate_apply(E'INSERT INTO lit_notes VALUES (\'one  \ntwo\');', 'lit-1');
SELECT status FROM migrate_apply(E'INSERT INTO lit_notes VALUES (\'one\ntwo\');', 'lit-1');
SELECT count(*) AS notes FROM lit_notes;
-- A UTF-8 byte order mark at the start of a file is how an editor saved it:
-- the same migration, applied as it is.
SELECT status FROM migrate_apply(convert_from('\xefbbbf'::bytea, 'UTF8') || 'CREATE TABLE bom_t (id int);', 'bom-1');
SELECT status FROM migrate_apply('CREATE TABLE bom_t (id int);', 'bom-1');

-- Versions are trimmed; a blank one is refused.
SELECT * FROM migrate_apply('SELECT 1', ' ');
SELECT * FROM migrate_apply('SELECT 1', E' \t\n');
SELECT version, status FROM migrate_apply('CREATE TABLE ver_trim (id int);', '  ver-trim ');
SELECT version, status FROM migrate_apply('CREATE TABLE ver_trim (id int);', 'ver-trim');
SELECT count(*) FROM safe_migrate.history WHERE version = 'ver-trim';
-- The script is split once, before it runs: a setting that changes how the
-- statements after it read is refused, and a piece that no longer reads as
-- one statement is an error, never two statements run as one.
SELECT status FROM migrate_apply($m$SET standard_conforming_strings = off;
SELECT 1;$m$, 'scs-1');
SELECT status FROM migrate_apply($m$SELECT set_config('standard_conforming_strings', 'off', false);
SELECT 'x\' AS a -- ' ; CREATE TABLE scs_smuggled (i int); SELECT 1 AS b
;$m$, 'scs-2');
SELECT to_regclass('scs_smuggled') IS NULL AS nothing_smuggled;
-- REINDEX and CLUSTER of a partitioned table refuse a transaction block
-- (PostgreSQL works on each partition in a transaction of its own): they
-- run alone, outside one, like REINDEX CONCURRENTLY; of a plain table they
-- stay in the script's transaction.
CREATE TABLE part_rx (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);
CREATE TABLE part_rx_1 PARTITION OF part_rx FOR VALUES FROM (0) TO (100);
CREATE TABLE part_rx_2 PARTITION OF part_rx FOR VALUES FROM (100) TO (200);
INSERT INTO part_rx SELECT g, g FROM generate_series(0, 199) g;
SELECT version, status, statements FROM migrate_apply($m$
CREATE TABLE part_rx_note (a int);
REINDEX TABLE part_rx;
REINDEX INDEX part_rx_pkey;
CLUSTER part_rx USING part_rx_pkey;
REINDEX TABLE part_rx_note;
$m$, 'part-reindex');
SELECT steps, steps_committed FROM safe_migrate.history WHERE version = 'part-reindex';
-- (CLUSTER marked the partitions: a later CLUSTER without a table would reach them)
SET safe_migrate.policy = off;
DROP TABLE part_rx, part_rx_note;
RESET safe_migrate.policy;
-- Judging an index on an expression reads the expression as PostgreSQL
-- will (on a copy of the statement, under the weakest lock): that lock is
-- released at once, and never waited for.  The session that calls
-- migrate_apply keeps none that the runner's next statement would need
-- (ALTER TABLE: ACCESS EXCLUSIVE), and migrate_plan leaves none behind.
SET safe_migrate.large_table_rows = 100;
CREATE TABLE expr_ix (id int PRIMARY KEY, a text, b int);
INSERT INTO expr_ix SELECT g, g::text, g FROM generate_series(1, 1000) g;
ANALYZE expr_ix;
SELECT version, status, statements FROM migrate_apply($m$
CREATE INDEX CONCURRENTLY expr_ix_lower ON expr_ix ((lower(a)));
ALTER TABLE expr_ix ADD COLUMN c int;
$m$, 'expr-index');
BEGIN;
SELECT statement, verdict FROM migrate_plan($m$CREATE INDEX expr_ix_upper ON expr_ix ((upper(a)));$m$);
SELECT count(*) AS locks_on_expr_ix FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation = 'expr_ix'::regclass;
ROLLBACK;
RESET safe_migrate.large_table_rows;
SET safe_migrate.policy = off;
DROP TABLE expr_ix;
RESET safe_migrate.policy;
