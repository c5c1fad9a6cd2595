/* safe_migrate 0.1.0 */

\echo Use "CREATE EXTENSION safe_migrate" to load this file. \quit

-- The extension's state lives in schema safe_migrate; its API functions live
-- in the schema the extension is created in (@extschema@).
CREATE SCHEMA safe_migrate;
GRANT USAGE ON SCHEMA safe_migrate TO PUBLIC;

-- Members of safe_migrate_admin may read the full history (scripts
-- included) and, later, change the policy.  Roles are cluster-wide: the role
-- is created once and shared by every database that has the extension.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'safe_migrate_admin') THEN
        CREATE ROLE safe_migrate_admin NOLOGIN;
    END IF;
END
$$;

-- One row per attempt to apply a migration.  Written only by the runner.
CREATE TABLE safe_migrate.migrations (
    id               bigserial PRIMARY KEY,
    version          text NOT NULL,
    description      text,
    checksum         text NOT NULL,
    script           text NOT NULL,
    down_script      text,
    status           text NOT NULL
        CHECK (status IN ('running', 'applied', 'failed', 'rolled_back', 'interrupted')),
    applied_by       name NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    statements       integer NOT NULL DEFAULT 0,
    lock_retries     integer NOT NULL DEFAULT 0,
    sqlstate         text,
    error_message    text,
    error_detail     text,
    error_hint       text,
    failed_statement text,
    warnings         text[] NOT NULL DEFAULT '{}',
    overrides        jsonb NOT NULL DEFAULT '[]',
    rolled_back_at   timestamptz,
    rolled_back_by   name
);
-- The last line of defence for "exactly once": at most one live row per version.
CREATE UNIQUE INDEX migrations_live_version
    ON safe_migrate.migrations (version) WHERE status IN ('running', 'applied');
CREATE INDEX migrations_version ON safe_migrate.migrations (version);

REVOKE ALL ON safe_migrate.migrations FROM PUBLIC;
GRANT SELECT ON safe_migrate.migrations TO safe_migrate_admin;

-- pg_dump dumps the history with the extension, pg_restore brings it back.
SELECT pg_catalog.pg_extension_config_dump('safe_migrate.migrations', '');
SELECT pg_catalog.pg_extension_config_dump('safe_migrate.migrations_id_seq', '');

-- What everybody may read: the history without the scripts' text.
CREATE VIEW safe_migrate.history AS
SELECT id, version, description, checksum,
       -- an attempt still 'running' whose runner no longer holds the
       -- migration lock was interrupted (crash, restart, termination); the
       -- next migrate_apply records it as such
       CASE WHEN status = 'running' AND NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND l.database = (SELECT oid FROM pg_catalog.pg_database
                                      WHERE datname = pg_catalog.current_database())
                   AND l.classid = 0 AND l.objid = 1526608231 AND l.objsubid = 1)
            THEN 'interrupted' ELSE status END AS status,
       applied_by, started_at, finished_at,
       finished_at - started_at AS duration, statements, lock_retries,
       sqlstate, error_message, error_detail, error_hint, failed_statement,
       warnings, overrides, (down_script IS NOT NULL) AS has_down,
       rolled_back_at, rolled_back_by
  FROM safe_migrate.migrations;
GRANT SELECT ON safe_migrate.history TO PUBLIC;

CREATE FUNCTION migrate_apply(
    script text,
    version text DEFAULT NULL,
    description text DEFAULT NULL,
    OUT version text,
    OUT status text,
    OUT statements integer,
    OUT duration interval,
    OUT lock_retries integer,
    OUT warnings text[],
    OUT checksum text)
RETURNS record
AS 'MODULE_PATHNAME', 'migrate_apply'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION migrate_apply(text, text, text) IS
'apply a migration script once, lock-safely, recording it in safe_migrate.history';

CREATE FUNCTION migrate_rollback(
    to_version text DEFAULT NULL,
    OUT version text,
    OUT status text,
    OUT statements integer,
    OUT duration interval,
    OUT lock_retries integer,
    OUT warnings text[],
    OUT checksum text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'migrate_rollback'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION migrate_rollback(text) IS
'undo the last applied migration, or every migration applied after to_version, newest first';

-- ---------------------------------------------------------------------
-- The safe-DDL policy
-- ---------------------------------------------------------------------

-- Settings that weaken the policy are superuser-only (PGC_SUSET); members of
-- safe_migrate_admin may set them too.
GRANT SET ON PARAMETER safe_migrate.policy TO safe_migrate_admin;
GRANT SET ON PARAMETER safe_migrate.rule_levels TO safe_migrate_admin;
GRANT SET ON PARAMETER safe_migrate.large_table_rows TO safe_migrate_admin;
GRANT SET ON PARAMETER safe_migrate.large_table_bytes TO safe_migrate_admin;

-- Every DDL statement of every session of this database.
-- No serial id: a sequence would change the session's lastval() behind
-- every DDL statement.
CREATE TABLE safe_migrate.ddl_log (
    logged_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    role_name         name NOT NULL,
    command_tag       text NOT NULL,
    object_type       text,
    object_identity   text,
    statement         text,
    managed           boolean NOT NULL,   -- run by migrate_apply / migrate_rollback
    migration_version text,
    in_extension      boolean NOT NULL DEFAULT false
);
REVOKE ALL ON safe_migrate.ddl_log FROM PUBLIC;
GRANT SELECT ON safe_migrate.ddl_log TO safe_migrate_admin;
-- The log is an audit trail of this database's DDL, not state: pg_dump
-- does not carry it (a restore's own DDL would collide with it).

CREATE FUNCTION migrate_drift(
    since timestamptz DEFAULT NULL,
    OUT logged_at timestamptz, OUT role_name name, OUT command_tag text,
    OUT object_type text, OUT object_identity text, OUT statement text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT logged_at, role_name, command_tag, object_type, object_identity, statement
      FROM safe_migrate.ddl_log
     WHERE NOT managed AND NOT in_extension AND (since IS NULL OR logged_at >= since)
     ORDER BY logged_at
$$;
COMMENT ON FUNCTION migrate_drift(timestamptz) IS
'DDL that ran outside migrate_apply (schema drift), oldest first';
-- It reads the log with the caller's rights: superusers and members of
-- safe_migrate_admin.
REVOKE ALL ON FUNCTION migrate_drift(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION migrate_drift(timestamptz) TO safe_migrate_admin;

CREATE FUNCTION migrate_plan(
    script text,
    OUT statement integer, OUT sql text, OUT command text, OUT relation text,
    OUT lock_mode text, OUT rows float8, OUT bytes bigint, OUT effect text,
    OUT verdict text, OUT rules jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'migrate_plan'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION migrate_plan(text) IS
'dry run of a migration: per statement, its lock, table size, effect and the verdict of every rule';

CREATE FUNCTION safe_migrate.rules(
    OUT rule text, OUT default_level text, OUT size_dependent boolean, OUT summary text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'safe_migrate_rules'
LANGUAGE C STABLE STRICT;
GRANT EXECUTE ON FUNCTION safe_migrate.rules() TO PUBLIC;

CREATE FUNCTION safe_migrate.on_ddl_command_start() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'safe_migrate_ddl_command_start' LANGUAGE C;
CREATE FUNCTION safe_migrate.on_table_rewrite() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'safe_migrate_table_rewrite' LANGUAGE C;
CREATE FUNCTION safe_migrate.on_sql_drop() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'safe_migrate_sql_drop' LANGUAGE C;
CREATE FUNCTION safe_migrate.on_ddl_command_end() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'safe_migrate_ddl_command_end' LANGUAGE C;

CREATE EVENT TRIGGER safe_migrate_ddl_command_start ON ddl_command_start
    EXECUTE FUNCTION safe_migrate.on_ddl_command_start();
CREATE EVENT TRIGGER safe_migrate_table_rewrite ON table_rewrite
    EXECUTE FUNCTION safe_migrate.on_table_rewrite();
CREATE EVENT TRIGGER safe_migrate_sql_drop ON sql_drop
    EXECUTE FUNCTION safe_migrate.on_sql_drop();
CREATE EVENT TRIGGER safe_migrate_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION safe_migrate.on_ddl_command_end();

-- ---------------------------------------------------------------------
-- Throttled backfills (need shared_preload_libraries = 'safe_migrate')
-- ---------------------------------------------------------------------

-- Written only by the extension's own code (as the bootstrap superuser,
-- fully qualified, search_path pinned): no application role may read or
-- change a row.  set_clause and where_clause hold the clauses as PostgreSQL
-- deparsed them at submit time, every name the submitter's search_path
-- resolved qualified; a job runs in a worker connected as its owner.
CREATE TABLE safe_migrate.backfill_jobs (
    id                  bigserial PRIMARY KEY,
    relid               oid NOT NULL,
    relation            text NOT NULL,
    set_clause          text NOT NULL,
    where_clause        text,
    key_columns         text[] NOT NULL,
    key_types           text[] NOT NULL,
    -- the key's comparison operators (>, <=, <), resolved at submit time
    key_operators       text[] NOT NULL,
    last_key            text[],
    status              text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'paused', 'completed', 'failed', 'cancelled')),
    owner               oid NOT NULL,
    batch_size          integer NOT NULL,
    target_batch_ms     integer NOT NULL,
    max_rows_per_second integer NOT NULL,
    pause_ms            integer NOT NULL,
    max_replica_lag     bigint NOT NULL,
    rows_done           bigint NOT NULL DEFAULT 0,   -- rows updated
    rows_examined       bigint NOT NULL DEFAULT 0,   -- keys read (batches are sized in keys)
    estimated_total     bigint,                      -- rows in the table when submitted
    batches             bigint NOT NULL DEFAULT 0,
    rate                float8 NOT NULL DEFAULT 0,
    retries             integer NOT NULL DEFAULT 0,
    last_error          text,
    last_sqlstate       text,
    waiting_for         text,
    submitted_at        timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz
);
REVOKE ALL ON safe_migrate.backfill_jobs FROM PUBLIC;

-- Each role sees the jobs of the roles it has the privileges of;
-- administrators see all.
CREATE VIEW safe_migrate.backfills WITH (security_barrier) AS
SELECT id, relation, status, rows_done, rows_examined, estimated_total, batches,
       batch_size AS current_batch_size, round(rate::numeric, 1) AS rows_per_second,
       CASE WHEN status = 'running' AND rate > 0 AND estimated_total > rows_examined
            THEN make_interval(secs => (estimated_total - rows_examined) / rate) END AS eta,
       last_key, retries, last_error, last_sqlstate, waiting_for,
       pg_catalog.pg_get_userbyid(owner) AS submitted_by,
       submitted_at, started_at, finished_at, updated_at, set_clause, where_clause
  FROM safe_migrate.backfill_jobs
 WHERE pg_catalog.pg_has_role(owner, 'USAGE')
    OR pg_catalog.pg_has_role('safe_migrate_admin', 'USAGE');
GRANT SELECT ON safe_migrate.backfills TO PUBLIC;

CREATE FUNCTION migrate_backfill(
    relation regclass,
    set_clause text,
    where_clause text DEFAULT NULL,
    batch_size integer DEFAULT 1000,
    target_batch_ms integer DEFAULT 25,
    max_rows_per_second integer DEFAULT 0,
    pause_ms integer DEFAULT 0,
    max_replica_lag bigint DEFAULT 16777216)
RETURNS bigint
AS 'MODULE_PATHNAME', 'migrate_backfill'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION migrate_backfill(regclass, text, text, integer, integer, integer, integer, bigint) IS
'queue UPDATE relation SET set_clause WHERE where_clause, run in throttled batches by primary key in the background';

CREATE FUNCTION migrate_backfill_pause(id bigint) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_pause' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION migrate_backfill_resume(id bigint) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_resume' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION migrate_backfill_cancel(id bigint) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_cancel' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION migrate_backfill_wait(id bigint, timeout interval DEFAULT NULL) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_wait' LANGUAGE C VOLATILE;

-- ---------------------------------------------------------------------
-- Proving a migration
-- ---------------------------------------------------------------------

CREATE FUNCTION migrate_checksum(script text) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_checksum'
LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION migrate_checksum(text) IS
'the checksum migrate_apply records for a script (SHA-256 of the script with line ends normalised)';

-- Up, down, up again in a transaction that is rolled back: does down restore
-- the schema exactly, does up make the same schema again?
CREATE FUNCTION migrate_test(script text, OUT step text, OUT ok boolean, OUT differences text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'migrate_test'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION migrate_test(text) IS
'apply up, down, up again inside a rolled-back transaction and compare catalog fingerprints';

-- The caller's list of applied migrations against the history: what is
-- missing here, what is here but not in the list, what changed.
CREATE FUNCTION migrate_verify(
    expected jsonb,
    OUT version text, OUT problem text, OUT expected_checksum text, OUT applied_checksum text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF expected IS NULL OR jsonb_typeof(expected) <> 'array' THEN
        RAISE EXCEPTION 'expected must be a JSON array of {"version": ..., "checksum": ...}'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: [{"version": "0001", "checksum": "…"}]; the checksum may be left out.';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(expected) x
                WHERE jsonb_typeof(x) <> 'object'
                   OR coalesce(jsonb_typeof(x -> 'version'), 'none') <> 'string') THEN
        RAISE EXCEPTION 'every element of expected needs a "version" string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH e AS (SELECT x ->> 'version' AS version, x ->> 'checksum' AS checksum
                 FROM jsonb_array_elements(expected) x),
         a AS (SELECT h.version, h.checksum FROM safe_migrate.history h WHERE h.status = 'applied')
    SELECT coalesce(e.version, a.version),
           CASE WHEN a.version IS NULL THEN 'missing'
                WHEN e.version IS NULL THEN 'extra'
                ELSE 'changed' END,
           e.checksum, a.checksum
      FROM e FULL JOIN a ON a.version = e.version
     WHERE a.version IS NULL OR e.version IS NULL
        OR (e.checksum IS NOT NULL AND e.checksum <> a.checksum)
     ORDER BY 1;
END
$$;
COMMENT ON FUNCTION migrate_verify(jsonb) IS
'compare a list of {version, checksum} with the applied migrations: missing, extra, changed';

-- Exercises the C++/PostgreSQL error boundary (used by the regression tests).
CREATE FUNCTION safe_migrate.boundary_selftest(kind text)
RETURNS text
AS 'MODULE_PATHNAME', 'safe_migrate_boundary_selftest'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION safe_migrate.boundary_selftest(text) FROM PUBLIC;
