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

-- Exercises the C++/PostgreSQL error boundary (used by the regression tests).
CREATE FUNCTION safe_migrate.boundary_selftest(kind text)
RETURNS text
AS 'MODULE_PATHNAME', 'safe_migrate_boundary_selftest'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION safe_migrate.boundary_selftest(text) FROM PUBLIC;
