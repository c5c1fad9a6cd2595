/* safe_migrate 0.1.0 */

\echo Use "CREATE EXTENSION safe_migrate" to load this file. \quit

-- The extension's state lives in schema safe_migrate; its API functions live
-- in the schema the extension is created in (@extschema@), and every one of
-- them also in schema safe_migrate (see "Qualified names" at the end).
--
-- A role that may create objects in @extschema@ can add functions there
-- that capture unqualified calls: a migrate_apply(varchar) overload is a
-- better match for a varchar argument (what JDBC's setString sends) than
-- migrate_apply(text), and a zero-argument migrate_rollback() makes the
-- call ambiguous.  So the target schema must not be writable by anyone but
-- its owner and superusers.
DO $$
DECLARE
    -- (@extschema@ is replaced by the quoted name: regnamespace reads it)
    nsp      oid := '@extschema@'::pg_catalog.regnamespace;
    schema_name name := (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid = nsp);
    writers  text;
BEGIN
    -- CREATE granted to PUBLIC or to a role that is neither the owner nor
    -- a superuser
    SELECT pg_catalog.string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                      ELSE pg_catalog.quote_ident(r.rolname) END,
                                 ', ' ORDER BY r.rolname NULLS FIRST)
      INTO writers
      FROM pg_catalog.pg_namespace n,
           pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
     WHERE n.oid = nsp AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
       AND (a.grantee = 0 OR NOT r.rolsuper);
    IF writers IS NOT NULL THEN
        RAISE EXCEPTION 'schema "%" is writable by %: safe_migrate''s functions would not be safe there', schema_name, writers
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A role that may create objects in the schema can add overloads of migrate_apply, migrate_rollback and the other functions that capture unqualified calls.',
                  HINT = pg_catalog.format('Revoke it (REVOKE CREATE ON SCHEMA %I FROM %s), or create the extension in a schema of its own: CREATE SCHEMA migrate; CREATE EXTENSION safe_migrate SCHEMA migrate;', schema_name, writers);
    END IF;
    -- the owner (or, for pg_database_owner, the database owner) and the
    -- members of that role may create there too: say so when that is not
    -- a superuser
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', ' ORDER BY r.rolname)
      INTO writers
      FROM pg_catalog.pg_roles r
     WHERE NOT r.rolsuper AND r.rolname <> 'pg_database_owner'
       AND pg_catalog.has_schema_privilege(r.oid, nsp, 'CREATE');
    IF writers IS NOT NULL THEN
        RAISE WARNING 'roles % may create objects in schema "%" and so capture unqualified calls of safe_migrate''s functions', writers, schema_name
            USING HINT = 'Call the qualified names (safe_migrate.migrate_apply(...) and so on), which nobody but a superuser can shadow.';
    END IF;
END
$$;

CREATE SCHEMA safe_migrate;
-- nobody but its owner (a superuser: the extension needs one) creates here
REVOKE ALL ON SCHEMA safe_migrate FROM PUBLIC;
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
    rolled_back_by   name,
    -- the applying session's search_path: the down script runs with it
    search_path      text,
    -- A migration run by a background runner commits in steps (see
    -- safe_migrate.migration_steps): how many steps its script splits into,
    -- and how many of them are committed (counting those of the attempts it
    -- resumed, resumed_from: the previous attempt of the same version).
    -- A failed or interrupted attempt with committed steps leaves its
    -- version partly applied until it is applied again with the same
    -- script (which continues after the last committed step) or abandoned
    -- (safe_migrate.migrate_abandon).
    steps            integer,
    steps_committed  integer NOT NULL DEFAULT 0,
    -- statements of its down script whose steps a rollback committed before
    -- it failed or was interrupted: the migration stays 'applied', partly
    -- rolled back, and the next migrate_rollback continues after them
    down_statements_committed integer NOT NULL DEFAULT 0,
    resumed_from     bigint,
    abandoned_at     timestamptz,
    abandoned_by     name,
    -- An online migration (-- safe_migrate:online) runs the statements its
    -- script expands to; they are kept here, and applying the same script
    -- again after an interruption continues these, whatever the catalog
    -- looks like after the steps that committed.  NULL: the up section ran
    -- as written.
    executed_script  text
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

-- The step journal: one row per committed step of a migration run in steps
-- by a background runner, written in the step's own transaction (for a
-- statement that commits by itself, in its last transaction), so a step is
-- recorded if and only if it is committed.  Statement numbers are 1-based
-- positions in the up section; commands are the statements' command tags.
CREATE TABLE safe_migrate.migration_steps (
    migration_id     bigint NOT NULL,
    step             integer NOT NULL,
    first_statement  integer NOT NULL,
    last_statement   integer NOT NULL,
    commands         text[] NOT NULL,
    committed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (migration_id, step)
);
REVOKE ALL ON safe_migrate.migration_steps FROM PUBLIC;
GRANT SELECT ON safe_migrate.migration_steps TO safe_migrate_admin;
SELECT pg_catalog.pg_extension_config_dump('safe_migrate.migration_steps', '');

-- Migrations of a database are serialised by a lock in PostgreSQL's lock
-- manager that only this extension's code can take: an advisory lock tag
-- that no SQL-level advisory lock function can produce (pg_locks shows it
-- as locktype 'advisory', objid 1526608231, objsubid 3).  Any role could
-- take an ordinary advisory key and hold every migration off.  An
-- administrator holds migrations off with safe_migrate.hold_migrations()
-- until the end of the calling transaction.
CREATE FUNCTION safe_migrate.hold_migrations() RETURNS void
AS 'MODULE_PATHNAME', 'safe_migrate_hold_migrations'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION safe_migrate.hold_migrations() IS
'wait for the running migration, then hold further migrations of this database off until the end of the transaction';
REVOKE ALL ON FUNCTION safe_migrate.hold_migrations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION safe_migrate.hold_migrations() TO safe_migrate_admin;

-- What everybody may read.  The text a migration carries (its scripts, the
-- failing statement, error message, detail and hint, the warnings, the
-- statements of its overrides) can hold passwords and rows of tables the
-- reader may not see: it is shown only to the role that applied the
-- migration, its members and admins (superusers, members of
-- safe_migrate_admin); anyone else gets NULL there.  A role that no longer
-- exists is nobody's: only admins see its text.  Columns are masked, rows
-- are not filtered, so a leaky function in a reader's WHERE clause only
-- ever sees the masked value; security_barrier keeps it above the view.
CREATE VIEW safe_migrate.history WITH (security_barrier) AS
SELECT id, version, description, checksum,
       -- an attempt still 'running' whose runner no longer holds the
       -- migration lock was interrupted (crash, restart, termination); the
       -- next migrate_apply records it as such
       CASE WHEN status = 'running' AND NOT v.runner_alive
            THEN 'interrupted' ELSE status END AS status,
       applied_by, started_at, finished_at,
       finished_at - started_at AS duration, statements, lock_retries,
       sqlstate,
       CASE WHEN v.readable THEN error_message END AS error_message,
       CASE WHEN v.readable THEN error_detail END AS error_detail,
       CASE WHEN v.readable THEN error_hint END AS error_hint,
       CASE WHEN v.readable THEN failed_statement END AS failed_statement,
       CASE WHEN v.readable THEN warnings END AS warnings,
       CASE WHEN v.readable THEN overrides
            ELSE (SELECT coalesce(pg_catalog.jsonb_agg(o.value OPERATOR(pg_catalog.-) 'statement'
                                                      ORDER BY o.ordinality), '[]')
                    FROM pg_catalog.jsonb_array_elements(overrides) WITH ORDINALITY o)
       END AS overrides,
       (down_script IS NOT NULL) AS has_down,
       rolled_back_at, rolled_back_by,
       CASE WHEN v.readable THEN script END AS script,
       CASE WHEN v.readable THEN down_script END AS down_script,
       steps, steps_committed, resumed_from, abandoned_at, abandoned_by,
       -- the version's latest attempt failed or was interrupted after
       -- committing steps, and was not abandoned: apply the same script
       -- again to continue it, or abandon it (safe_migrate.migrate_abandon)
       ((status IN ('failed', 'interrupted') OR (status = 'running' AND NOT v.runner_alive))
        AND steps_committed > 0
        AND abandoned_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM safe_migrate.migrations later
                         WHERE later.version OPERATOR(pg_catalog.=) m.version
                           AND later.id > m.id)) AS partly_applied,
       -- an applied migration whose rollback committed some steps of its
       -- down script before it failed: migrate_rollback continues it
       down_statements_committed
  FROM safe_migrate.migrations m,
       LATERAL (SELECT
           -- members of the applying role (superusers are members of
           -- every role) and of safe_migrate_admin
           EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                    WHERE r.rolname IN (m.applied_by, 'safe_migrate_admin')
                      AND pg_catalog.pg_has_role(r.oid, 'MEMBER'))
           OR coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                         WHERE r.rolname = CURRENT_USER), false) AS readable,
           -- some runner holds the migration lock
           (m.status = 'running' AND EXISTS (
                SELECT 1 FROM pg_catalog.pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND l.database = (SELECT oid FROM pg_catalog.pg_database
                                      WHERE datname = pg_catalog.current_database())
                   AND l.classid = 0 AND l.objid = 1526608231 AND l.objsubid = 3)) AS runner_alive) v;
GRANT SELECT ON safe_migrate.history TO PUBLIC;

-- The committed steps of migrations run in steps, for everybody: statement
-- numbers and command tags carry no text of the migration.
CREATE VIEW safe_migrate.history_steps WITH (security_barrier) AS
SELECT s.migration_id, m.version, s.step, m.steps, s.first_statement, s.last_statement,
       s.commands, s.committed_at
  FROM safe_migrate.migration_steps s
  JOIN safe_migrate.migrations m ON m.id = s.migration_id;
GRANT SELECT ON safe_migrate.history_steps TO PUBLIC;

-- Give up a partly applied version: its committed steps stay as they are
-- (undo them by hand first if needed); the version may then be applied
-- from scratch, with any script.  Allowed to the role that applied it, its
-- members and admins; recorded in the history (abandoned_at, abandoned_by).
CREATE FUNCTION migrate_abandon(version text) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_abandon'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION migrate_abandon(text) IS
'give up a partly applied migration (its committed steps stay) so that the version can be applied from scratch';

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

GRANT SET ON PARAMETER safe_migrate.ddl_log_max_statement_bytes TO safe_migrate_admin;
GRANT SET ON PARAMETER safe_migrate.ddl_log_retention TO safe_migrate_admin;

-- Every DDL statement of every session of this database, on permanent
-- objects (temporary ones are nobody else's business and are not logged):
-- one row per object a statement touched.  The text of a statement is kept
-- once, on its first row, however many objects it touches (a DO block
-- creating 300 tables is one statement), and at most
-- safe_migrate.ddl_log_max_statement_bytes of it; its other rows have NULL
-- statement and statement_bytes.  The extension's hooks collect a
-- transaction's DDL and write it here when the transaction commits,
-- directly (no SPI, no executor), so the table has no index, no serial id
-- (a sequence would change the session's lastval() behind every DDL
-- statement) and no foreign key: a statement is identified by the
-- transaction that ran it and its number in that transaction.  Most
-- statements touch one object: one row each.
CREATE TABLE safe_migrate.ddl_entries (
    logged_at         timestamptz NOT NULL,
    xid               xid8 NOT NULL,      -- the top-level transaction
    seq               integer NOT NULL,   -- the statement's number in it
    role_name         text NOT NULL,      -- (text: a name column is 64 bytes)
    command_tag       text NOT NULL,
    object_type       text,
    object_identity   text,
    in_extension      boolean NOT NULL DEFAULT false,
    managed           boolean NOT NULL,   -- run by migrate_apply / migrate_rollback
    migration_version text,
    statement_bytes   integer,            -- the length of the whole statement (first row)
    statement         text                -- its first ddl_log_max_statement_bytes (first row)
)
-- An append-only log with no index: autovacuum's insert-triggered vacuums
-- (every 1000 rows + 20 %) would only set visibility bits nobody reads, and
-- an ANALYZE every 10 % of growth serves no query (migrate_drift reads it
-- whole).  Measured (README.md, bench/policy_overhead.sh), that upkeep cost
-- a DDL-heavy database 3 % of its throughput.  Vacuums after the trim's
-- deletes and the anti-wraparound ones still run; ANALYZE when it doubled.
WITH (autovacuum_vacuum_insert_threshold = -1, autovacuum_analyze_scale_factor = 1.0);
CREATE TABLE safe_migrate.ddl_log_trimmed (trimmed_at timestamptz NOT NULL);
INSERT INTO safe_migrate.ddl_log_trimmed VALUES ('-infinity');

-- One row per object, each with its statement's text.
CREATE VIEW safe_migrate.ddl_log AS
SELECT e.logged_at, e.role_name::pg_catalog.name AS role_name, e.command_tag, e.object_type, e.object_identity,
       s.statement, e.managed, e.migration_version, e.in_extension,
       s.statement_bytes,
       (s.statement_bytes > coalesce(pg_catalog.octet_length(s.statement), 0)) AS statement_truncated
  FROM safe_migrate.ddl_entries e
  LEFT JOIN safe_migrate.ddl_entries s
    ON s.xid OPERATOR(pg_catalog.=) e.xid AND s.seq OPERATOR(pg_catalog.=) e.seq
   AND s.statement_bytes IS NOT NULL;
REVOKE ALL ON safe_migrate.ddl_entries, safe_migrate.ddl_log_trimmed, safe_migrate.ddl_log
  FROM PUBLIC;
GRANT SELECT ON safe_migrate.ddl_entries, safe_migrate.ddl_log TO safe_migrate_admin;
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
    SELECT logged_at, role_name, command_tag, object_type, object_identity,
           CASE WHEN statement_truncated
                THEN statement || format(E'\n-- [truncated: %s of %s bytes kept, safe_migrate.ddl_log_max_statement_bytes]',
                                         coalesce(octet_length(statement), 0), statement_bytes)
                ELSE statement END
      FROM safe_migrate.ddl_log
     WHERE managed IS NOT TRUE AND NOT in_extension AND (since IS NULL OR logged_at >= since)
     ORDER BY logged_at
$$;
COMMENT ON FUNCTION migrate_drift(timestamptz) IS
'DDL that ran outside migrate_apply (schema drift), oldest first';
-- It reads the log with the caller's rights: superusers and members of
-- safe_migrate_admin.
REVOKE ALL ON FUNCTION migrate_drift(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION migrate_drift(timestamptz) TO safe_migrate_admin;

-- Trim the log to safe_migrate.ddl_log_retention now (the triggers do it
-- every ten minutes); returns the rows deleted.  Admins only.
CREATE FUNCTION safe_migrate.ddl_log_trim() RETURNS bigint
AS 'MODULE_PATHNAME', 'safe_migrate_ddl_log_trim'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION safe_migrate.ddl_log_trim() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION safe_migrate.ddl_log_trim() TO safe_migrate_admin;

CREATE FUNCTION migrate_plan(
    script text,
    OUT statement integer, OUT sql text, OUT command text, OUT relation text,
    OUT lock_mode text, OUT rows float8, OUT bytes bigint, OUT effect text,
    OUT verdict text, OUT rules jsonb, OUT blockers text)
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

-- The application's statement latencies as every client session records
-- them (issue 16): what the backfill's pacing reads.  Aggregates over all
-- sessions, for monitoring roles and safe_migrate_admin.
CREATE FUNCTION safe_migrate.application_latency(
    OUT bucket integer, OUT lower_ms float8, OUT upper_ms float8, OUT statements bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'safe_migrate_application_latency'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION safe_migrate.application_latency() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION safe_migrate.application_latency() TO pg_monitor, safe_migrate_admin;

CREATE FUNCTION safe_migrate.on_ddl_command_start() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'safe_migrate_ddl_command_start' LANGUAGE C;

CREATE EVENT TRIGGER safe_migrate_ddl_command_start ON ddl_command_start
    EXECUTE FUNCTION safe_migrate.on_ddl_command_start();

-- ---------------------------------------------------------------------
-- Throttled backfills (need shared_preload_libraries = 'safe_migrate')
-- ---------------------------------------------------------------------

-- Written only by the extension's own code (as the bootstrap superuser,
-- fully qualified, search_path pinned): no application role may read or
-- change a row.  set_clause and where_clause hold the clauses as PostgreSQL
-- deparsed them at submit time, every name the submitter's search_path
-- resolved qualified; a job runs in a worker connected as its owner.
-- operation: 'update' (migrate_backfill: UPDATE ... SET set_clause) or
-- 'delete' (migrate_delete: DELETE, no set_clause), batch by batch; or
-- 'vacuum' (migrate_vacuum: no batches, only the vacuum a job does after
-- its last batch; its key arrays are empty).
CREATE TABLE safe_migrate.backfill_jobs (
    id                  bigserial PRIMARY KEY,
    relid               oid NOT NULL,
    relation            text NOT NULL,
    operation           text NOT NULL DEFAULT 'update' CHECK (operation IN ('update', 'delete', 'vacuum')),
    set_clause          text,
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
    rows_done           bigint NOT NULL DEFAULT 0,   -- rows updated (deleted)
    rows_examined       bigint NOT NULL DEFAULT 0,   -- keys read (batches are sized in keys)
    estimated_total     bigint,                      -- rows in the table when submitted
    batches             bigint NOT NULL DEFAULT 0,
    rate                float8 NOT NULL DEFAULT 0,
    retries             integer NOT NULL DEFAULT 0,
    last_error          text,
    last_sqlstate       text,
    waiting_for         text,
    -- pacing on the application's latency (issue 16): the budget recorded at
    -- submit time (safe_migrate.backfill_latency_budget), what holds the job
    -- back now, the application's recent p99 statement latency and the same
    -- while the worker kept quiet, and the share of the time it spends in
    -- batches
    latency_budget_ms   float8 NOT NULL DEFAULT 1,
    throttled_by        text,
    foreground_latency_ms  float8,
    foreground_baseline_ms float8,
    duty                float8,
    -- the aftermath (issue 16): the worker vacuums the table after the job
    -- completes while the application is there (safe_migrate.backfill_vacuum
    -- at submit time); when that vacuum ended
    vacuum              boolean NOT NULL DEFAULT true,
    vacuumed_at         timestamptz,
    -- a job someone waits for (online execution's): with the application
    -- there from the start it starts at full duty, not a quarter, and
    -- measures the application's normal latency once before settling, not
    -- three times; the latency budget still cuts it
    eager               boolean NOT NULL DEFAULT false,
    -- a vacuum job (migrate_vacuum): the next transaction ID when it was
    -- queued; its vacuum waits for no snapshot older than that to be left
    vacuum_horizon      bigint,
    submitted_at        timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz,
    CHECK ((operation = 'update') = (set_clause IS NOT NULL))
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
       submitted_at, started_at, finished_at, updated_at, set_clause, where_clause,
       CASE WHEN status = 'running' THEN throttled_by END AS throttled_by,
       round(foreground_latency_ms::numeric, 2) AS foreground_latency_ms,
       round(foreground_baseline_ms::numeric, 2) AS foreground_baseline_ms,
       round(duty::numeric, 3) AS duty, latency_budget_ms, operation, vacuumed_at, eager
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
    max_replica_lag bigint DEFAULT 16777216,
    latency_budget float8 DEFAULT NULL,   -- NULL: safe_migrate.backfill_latency_budget
    vacuum boolean DEFAULT NULL,          -- NULL: safe_migrate.backfill_vacuum
    eager boolean DEFAULT NULL)           -- NULL: false
RETURNS bigint
AS 'MODULE_PATHNAME', 'migrate_backfill'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION migrate_backfill(regclass, text, text, integer, integer, integer, integer, bigint, float8, boolean, boolean) IS
'queue UPDATE relation SET set_clause WHERE where_clause, run in throttled batches by primary key in the background';

-- The same machinery for a large DELETE: the rows matching where_clause
-- (every row when it is null) deleted in throttled batches by key, each
-- committed on its own, by a background worker running as the submitter.
CREATE FUNCTION migrate_delete(
    relation regclass,
    where_clause text,
    batch_size integer DEFAULT 1000,
    target_batch_ms integer DEFAULT 25,
    max_rows_per_second integer DEFAULT 0,
    pause_ms integer DEFAULT 0,
    max_replica_lag bigint DEFAULT 16777216,
    latency_budget float8 DEFAULT NULL,   -- NULL: safe_migrate.backfill_latency_budget
    vacuum boolean DEFAULT NULL,          -- NULL: safe_migrate.backfill_vacuum
    eager boolean DEFAULT NULL)           -- NULL: false
RETURNS bigint
AS 'MODULE_PATHNAME', 'migrate_delete'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION migrate_delete(regclass, text, integer, integer, integer, integer, bigint, float8, boolean, boolean) IS
'queue DELETE FROM relation WHERE where_clause, run in throttled batches by primary key in the background';

-- The vacuum a job does after its last batch, on its own: VACUUM (ANALYZE,
-- SKIP_LOCKED) of a table its submitter owns, by a background worker
-- running as the submitter, at autovacuum's pace, its pages written out as
-- it goes.  Online execution queues one at the end of a migration whose
-- jobs it ran with vacuum => false (their vacuum would hold the table's
-- SHARE UPDATE EXCLUSIVE lock against the migration's next steps).
CREATE FUNCTION migrate_vacuum(relation regclass) RETURNS bigint
AS 'MODULE_PATHNAME', 'migrate_vacuum'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION migrate_vacuum(regclass) IS
'queue VACUUM (ANALYZE) of relation, run in the background at autovacuum''s pace as the submitter';

CREATE FUNCTION migrate_backfill_pause(id bigint) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_pause' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION migrate_backfill_resume(id bigint) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_resume' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION migrate_backfill_cancel(id bigint) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_cancel' LANGUAGE C STRICT VOLATILE;
CREATE FUNCTION migrate_backfill_wait(id bigint, timeout interval DEFAULT NULL) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_backfill_wait' LANGUAGE C VOLATILE;

-- Online execution of ALTER COLUMN ... TYPE (-- safe_migrate:online): the
-- row trigger that keeps the new-typed shadow column in step with the
-- column while the existing rows are backfilled.  Its arguments name the
-- source and the target column; the value is converted as ALTER COLUMN ...
-- TYPE without USING converts it, or, given a third argument (the USING
-- expression, names qualified), computed from the row by that expression.
-- It runs as the role writing the row.
CREATE FUNCTION safe_migrate.sync_column() RETURNS trigger
AS 'MODULE_PATHNAME', 'sync_column' LANGUAGE C;
COMMENT ON FUNCTION safe_migrate.sync_column() IS
'row trigger of an online column type change: sets the target column (2nd argument) from the source column (1st), or from the row by the expression (3rd)';
-- The check an online column type change makes before its swap, without
-- blocking locks, as the caller (row_security off: a check that cannot see
-- every row fails instead of passing): every row whose source is set has
-- its copy (a trigger disabled meanwhile would have left rows behind).  A
-- passed check is recorded in safe_migrate.online_copies with the trigger
-- it relied on (its Oid and the xmin of its pg_trigger row: disabling it
-- makes a new row version); the policy lets the swap's DROP COLUMN through
-- only with such a record, the trigger unchanged since, and the column's
-- name given back by the commit.
CREATE TABLE safe_migrate.online_copies (
    relid        oid NOT NULL,
    trigger_oid  oid NOT NULL,
    trigger_xmin xid NOT NULL,
    source       name NOT NULL,
    target       name NOT NULL,
    checked_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    checked_by   name NOT NULL
);
REVOKE ALL ON safe_migrate.online_copies FROM PUBLIC;
GRANT SELECT ON safe_migrate.online_copies TO safe_migrate_admin;
CREATE FUNCTION safe_migrate.sync_column_check(relation regclass, source name, target name,
                                               expression text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sync_column_check' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION safe_migrate.sync_column_check(regclass, name, name, text) IS
'before the swap of an online column type change: fails when a row lacks its copy in the new column (computed by the trigger''s USING expression, when given), else records the check';

-- ---------------------------------------------------------------------
-- Proving a migration
-- ---------------------------------------------------------------------

CREATE FUNCTION migrate_checksum(script text) RETURNS text
AS 'MODULE_PATHNAME', 'migrate_checksum'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
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

-- Migrations waiting for their locks (safe_migrate.lock_strategy = 'wait'),
-- one row per waiting backend (caller or runner) of this database: the
-- table, the lock it wants, and the session it waits for.  Readable by
-- everybody; the blocker's query only as pg_stat_activity shows it (members
-- of the blocker's role and of pg_read_all_stats) and to safe_migrate's
-- admins (superusers, members of safe_migrate_admin).  Kept in shared
-- memory: empty unless safe_migrate is in shared_preload_libraries.
CREATE FUNCTION safe_migrate.lock_waits_raw(
    OUT version text, OUT pid integer, OUT role oid, OUT relid oid, OUT relation text,
    OUT wanted_mode text, OUT state text, OUT since timestamptz, OUT attempts integer,
    OUT blocker_pid integer, OUT blocker_role oid, OUT blocker_application text,
    OUT blocker_state text, OUT blocker_xact_start timestamptz, OUT blocker_query text,
    OUT blocker_since timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'safe_migrate_lock_waits'
LANGUAGE C VOLATILE;
-- (it masks the blocker's query itself: functions in a view run with the
-- reader's rights)
GRANT EXECUTE ON FUNCTION safe_migrate.lock_waits_raw() TO PUBLIC;

CREATE VIEW safe_migrate.lock_waits WITH (security_barrier) AS
SELECT w.version, w.pid, r.rolname AS role, w.relation, w.wanted_mode, w.state,
       w.since, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) w.since AS waiting,
       w.attempts, w.blocker_pid, b.rolname AS blocker_role,
       w.blocker_application, w.blocker_state,
       pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) w.blocker_xact_start AS blocker_xact_age,
       w.blocker_query,
       w.blocker_since
  FROM safe_migrate.lock_waits_raw() w
  LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) w.role
  LEFT JOIN pg_catalog.pg_roles b ON b.oid OPERATOR(pg_catalog.=) w.blocker_role;
GRANT SELECT ON safe_migrate.lock_waits TO PUBLIC;

-- Cancelling the sessions that block a migration is for admins.
GRANT SET ON PARAMETER safe_migrate.lock_wait_cancel_after TO safe_migrate_admin;

-- ---------------------------------------------------------------------
-- Qualified names
-- ---------------------------------------------------------------------

-- Every API function of @extschema@ also exists in schema safe_migrate,
-- with the same arguments, defaults, result, attributes, C symbol or body,
-- settings and privileges.  Nobody but a superuser can create objects in
-- schema safe_migrate, so safe_migrate.migrate_apply(...) and the other
-- qualified names always mean this extension's functions, whatever
-- overloads someone adds to @extschema@ or to a schema earlier in the
-- search_path.  The copies are made from the catalog entries above, so the
-- two can never differ; both call the same C functions.
DO $$
DECLARE
    f   record;
    g   record;
    sig text;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, l.lanname, p.prosrc, p.probin, p.provolatile,
               p.proisstrict, p.proretset, p.proconfig, p.proacl, p.proowner,
               pg_catalog.pg_get_function_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_identity_arguments(p.oid) AS identity,
               pg_catalog.pg_get_function_result(p.oid) AS result,
               pg_catalog.obj_description(p.oid, 'pg_proc') AS comment
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_language l ON l.oid = p.prolang
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     AND d.objid = p.oid AND d.deptype = 'e'
                                     AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
         WHERE p.pronamespace = '@extschema@'::pg_catalog.regnamespace
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e
                              WHERE e.extname = 'safe_migrate')
         ORDER BY p.proname, p.oid
    LOOP
        sig := pg_catalog.format('safe_migrate.%I(%s)', f.proname, f.identity);
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION safe_migrate.%I(%s) RETURNS %s LANGUAGE %I %s %s %s AS %s',
            f.proname, f.args, f.result, f.lanname,
            CASE f.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
            CASE WHEN f.proisstrict THEN 'STRICT' ELSE 'CALLED ON NULL INPUT' END,
            coalesce((SELECT pg_catalog.string_agg(pg_catalog.format('SET %I = %s',
                                 pg_catalog.split_part(c, '=', 1),
                                 pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1)), ' ')
                        FROM pg_catalog.unnest(f.proconfig) c), ''),
            CASE WHEN f.probin IS NOT NULL
                 THEN pg_catalog.format('%L, %L', f.probin, f.prosrc)
                 ELSE pg_catalog.quote_literal(f.prosrc) END);
        IF f.comment IS NOT NULL THEN
            EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', sig, f.comment);
        END IF;
        -- the same privileges: none but the grants the original has
        IF f.proacl IS NOT NULL THEN
            EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', sig);
            FOR g IN SELECT a.grantee FROM pg_catalog.aclexplode(f.proacl) a
                      WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> f.proowner
            LOOP
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', sig,
                    CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                         ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
            END LOOP;
        END IF;
    END LOOP;
END
$$;

-- The policy also judges DROP DATABASE of this database issued from a
-- database where the extension is not installed: this database's mark, a
-- setting of the database in a shared catalog (pg_db_role_setting) that
-- sessions of every database can read and only a superuser can reset.
-- DROP EXTENSION safe_migrate removes it.
DO $$
BEGIN
    EXECUTE pg_catalog.format('ALTER DATABASE %I SET safe_migrate.guarded_database = on',
                              pg_catalog.current_database());
END
$$;
