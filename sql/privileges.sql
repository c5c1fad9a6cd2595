-- The migration runs as the caller and can do nothing the caller could not.
CREATE ROLE sm_alice;
CREATE SCHEMA alice_space AUTHORIZATION sm_alice;
CREATE TABLE admin_only (id int);
SET ROLE sm_alice;
SET search_path = alice_space, public;

-- Runs as sm_alice, with sm_alice's search_path.
SELECT version, status FROM migrate_apply('CREATE TABLE mine (id int);', 'alice-1');
SELECT tableowner FROM pg_tables WHERE tablename = 'mine';
SELECT applied_by FROM safe_migrate.history WHERE version = 'alice-1';
-- What sm_alice cannot do directly she cannot do through a migration.
SELECT * FROM migrate_apply('ALTER TABLE public.admin_only ADD COLUMN mine int;', 'alice-2');
SELECT * FROM migrate_apply('CREATE TABLE public.not_yours (id int);', 'alice-3');
SELECT * FROM migrate_apply('ALTER SYSTEM SET work_mem = ''1GB'';', 'alice-4');
-- The extension's state is not hers to touch.
INSERT INTO safe_migrate.migrations (version, checksum, script, status, applied_by)
VALUES ('forged', 'x', 'x', 'applied', 'sm_alice');
UPDATE safe_migrate.migrations SET status = 'rolled_back';
DELETE FROM safe_migrate.migrations;
SELECT count(*) FROM safe_migrate.migrations;
ALTER TABLE safe_migrate.migrations DISABLE TRIGGER ALL;
-- The safe-DDL policy holds for her too, and she cannot turn it off.
SELECT * FROM migrate_apply('DROP TABLE mine;', 'alice-5');
SELECT * FROM migrate_apply(E'-- safe_migrate:allow ban-drop-table she says so\nDROP TABLE mine;', 'alice-6');
SET safe_migrate.policy = off;
SET LOCAL safe_migrate.policy = off;
SET safe_migrate.rule_levels = 'ban-drop-table=off';
SET safe_migrate.large_table_rows = 1000000000;
ALTER ROLE sm_alice SET safe_migrate.policy = off;
CREATE FUNCTION policy_off() RETURNS int LANGUAGE sql SET safe_migrate.policy = off AS 'SELECT 1';
DO $$ BEGIN PERFORM set_config('safe_migrate.policy', 'off', false); END $$;
ALTER EVENT TRIGGER safe_migrate_ddl_command_start DISABLE;
DROP EVENT TRIGGER safe_migrate_ddl_command_start;
SET session_replication_role = replica;
DROP TABLE mine;
SELECT safe_migrate.boundary_selftest('pg_value');
-- She can read the history (without scripts).
SELECT count(*) > 0 AS readable FROM safe_migrate.history;
RESET search_path;
RESET ROLE;
SELECT version, status, sqlstate FROM safe_migrate.history WHERE version LIKE 'alice-%' ORDER BY id;
-- The text a migration carries is shown to the role that applied it, its
-- members and admins only: to anybody else it is NULL.
CREATE ROLE sm_carol;
SET ROLE sm_alice;
\set VERBOSITY terse
-- (terse: PostgreSQL 16 and later add a DETAIL of their own)
SELECT * FROM migrate_apply($$CREATE ROLE sm_leak PASSWORD 'alice-pw';$$, 'alice-7');
\set VERBOSITY default
SELECT failed_statement, script, error_message FROM safe_migrate.history WHERE version = 'alice-7';
SET ROLE sm_carol;
SELECT status, sqlstate, failed_statement, script, error_message, error_detail, warnings
  FROM safe_migrate.history WHERE version = 'alice-7';
SELECT count(*) FROM safe_migrate.migrations;
RESET ROLE;
SELECT failed_statement FROM safe_migrate.history WHERE version = 'alice-7';
-- Every API function also exists in schema safe_migrate, the same function
-- (same C symbol or body, same arguments, result and privileges) ...
SELECT p.proname,
       q.oid IS NOT NULL AS qualified_copy,
       q.prosrc = p.prosrc AND q.probin IS NOT DISTINCT FROM p.probin
         AND pg_get_function_result(q.oid) = pg_get_function_result(p.oid)
         AND pg_get_function_arguments(q.oid) = pg_get_function_arguments(p.oid)
         AND q.provolatile = p.provolatile AND q.proisstrict = p.proisstrict
         AND q.proconfig IS NOT DISTINCT FROM p.proconfig
         AND has_function_privilege('sm_carol', q.oid, 'EXECUTE')
             = has_function_privilege('sm_carol', p.oid, 'EXECUTE') AS same
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'safe_migrate'
  LEFT JOIN pg_proc q ON q.pronamespace = 'safe_migrate'::regnamespace AND q.proname = p.proname
   AND pg_get_function_identity_arguments(q.oid) = pg_get_function_identity_arguments(p.oid)
 WHERE p.pronamespace = 'public'::regnamespace
 ORDER BY 1;
-- ... where nobody but superusers may create anything, so nobody can add
-- an overload that captures safe_migrate.migrate_apply(...).
SELECT has_schema_privilege('sm_alice', 'safe_migrate', 'CREATE') AS alice_may_create,
       has_schema_privilege('sm_carol', 'safe_migrate', 'USAGE') AS carol_may_use;
SET ROLE sm_alice;
CREATE FUNCTION safe_migrate.migrate_rollback() RETURNS text LANGUAGE sql AS $$ SELECT 'mine' $$;
RESET ROLE;
-- A member of safe_migrate_admin may change the policy and override a rule,
-- explicitly; the override and its reason are recorded with her name.
CREATE ROLE sm_bob IN ROLE safe_migrate_admin;
GRANT ALL ON SCHEMA alice_space TO sm_bob;
SET ROLE sm_bob;
SET safe_migrate.policy = warn;
RESET safe_migrate.policy;
SELECT version, status FROM migrate_apply($$
-- safe_migrate:allow ban-drop-table bob moved the data elsewhere
CREATE TABLE alice_space.bobs (id int);
$$, 'bob-1');
SELECT version, status FROM migrate_apply($$
-- safe_migrate:allow ban-drop-table bob moved the data elsewhere
DROP TABLE alice_space.bobs;
$$, 'bob-2');
RESET ROLE;
SELECT version, overrides #>> '{0,role}' AS role, overrides #>> '{0,reason}' AS reason
  FROM safe_migrate.history WHERE version LIKE 'bob-%' ORDER BY id;
-- Roles are cluster-wide: leave none behind (the drop of alice's schema
-- takes her table along: the policy would refuse it).
SET safe_migrate.policy = off;
DROP SCHEMA alice_space CASCADE;
RESET safe_migrate.policy;
DROP ROLE sm_alice, sm_bob, sm_carol;
