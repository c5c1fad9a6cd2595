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
SELECT * FROM migrate_apply('DROP TABLE public.admin_only;', 'alice-2');
SELECT * FROM migrate_apply('CREATE TABLE public.not_yours (id int);', 'alice-3');
SELECT * FROM migrate_apply('ALTER SYSTEM SET work_mem = ''1GB'';', 'alice-4');
-- The extension's state is not hers to touch.
INSERT INTO safe_migrate.migrations (version, checksum, script, status, applied_by)
VALUES ('forged', 'x', 'x', 'applied', 'sm_alice');
UPDATE safe_migrate.migrations SET status = 'rolled_back';
DELETE FROM safe_migrate.migrations;
SELECT count(*) FROM safe_migrate.migrations;
DROP TABLE safe_migrate.migrations;
SELECT safe_migrate.boundary_selftest('pg_value');
-- She can read the history (without scripts).
SELECT count(*) > 0 AS readable FROM safe_migrate.history;
RESET search_path;
RESET ROLE;
SELECT version, status, sqlstate FROM safe_migrate.history WHERE version LIKE 'alice-%' ORDER BY id;
-- Roles are cluster-wide: leave none behind.
DROP SCHEMA alice_space CASCADE;
DROP ROLE sm_alice;
