-- DROP DATABASE of a database safe_migrate guards is judged from every
-- database, one where the extension is not installed included: CREATE
-- EXTENSION marks its database with a setting in a shared catalog
-- (pg_db_role_setting) that only a superuser can reset; DROP EXTENSION
-- takes the mark away.  Played by the databases' owner, a plain role; an
-- administrator's DROP DATABASE from such a database (a test harness's, a
-- restore's) is deliberate and not judged there.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS safe_migrate;
RESET client_min_messages;
CREATE ROLE sm_db_owner CREATEDB;
CREATE DATABASE sm_db_guarded OWNER sm_db_owner;
CREATE DATABASE sm_db_plain OWNER sm_db_owner;
\c sm_db_guarded
SET client_min_messages = error;
CREATE EXTENSION safe_migrate;
RESET client_min_messages;
\c sm_db_plain
SELECT count(*) AS safe_migrate_here FROM pg_extension WHERE extname = 'safe_migrate';
SELECT setconfig FROM pg_db_role_setting
 WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'sm_db_guarded');
-- The statements the hook looks at before PostgreSQL runs them (for
-- DROP DATABASE's sake) run here as PostgreSQL runs them, for the owner
-- and for an administrator: each has its own node, never read as a
-- DROP DATABASE (they crashed the backend once)
SET ROLE sm_db_owner;
CREATE TABLE plain_t (id integer PRIMARY KEY, v text);
INSERT INTO plain_t SELECT g, g::text FROM generate_series(1, 10) g;
SET client_min_messages = error; -- (shared catalogs: only a superuser may)
ANALYZE;
VACUUM;
VACUUM FULL;
RESET client_min_messages;
ANALYZE plain_t;
VACUUM (FULL, ANALYZE) plain_t;
CLUSTER plain_t USING plain_t_pkey;
CLUSTER;
REINDEX TABLE plain_t;
REINDEX SCHEMA public;
TRUNCATE plain_t;
SELECT count(*) AS rows_after_truncate FROM plain_t;
RESET ROLE;
INSERT INTO plain_t SELECT g, g::text FROM generate_series(1, 10) g;
ANALYZE;
VACUUM;
VACUUM (FULL) plain_t;
CLUSTER;
REINDEX TABLE plain_t;
TRUNCATE plain_t;
SELECT count(*) AS rows_after_truncate FROM plain_t;
DROP TABLE plain_t;
SET ROLE sm_db_owner;
-- (the database's size varies: the SQLSTATE, then the message without it)
\set VERBOSITY sqlstate
DROP DATABASE sm_db_guarded;
SELECT regexp_replace(:'LAST_ERROR_MESSAGE', ' \(.*\)$', '') AS error;
DROP DATABASE sm_db_guarded WITH (FORCE);
-- the owner cannot take the mark away
\set VERBOSITY terse
ALTER DATABASE sm_db_guarded RESET safe_migrate.guarded_database;
ALTER DATABASE sm_db_guarded RESET ALL;
\set VERBOSITY sqlstate
DROP DATABASE sm_db_guarded;
-- a copy of the guarded database (its owner may make one) holds the
-- extension and is marked as its template is
CREATE DATABASE sm_db_copy TEMPLATE sm_db_guarded;
DROP DATABASE sm_db_copy;
\set VERBOSITY default
RESET ROLE;
SELECT setconfig FROM pg_db_role_setting
 WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'sm_db_copy');
DROP DATABASE sm_db_copy;
-- a database without the mark drops as before
SET ROLE sm_db_owner;
CREATE DATABASE sm_db_scratch;
DROP DATABASE sm_db_scratch;
RESET ROLE;
-- an administrator drops a guarded database from here
CREATE DATABASE sm_db_admin_drops;
\c sm_db_admin_drops
SET client_min_messages = error;
CREATE EXTENSION safe_migrate;
RESET client_min_messages;
\c sm_db_plain
DROP DATABASE sm_db_admin_drops;
-- DROP EXTENSION takes the mark with it
\c sm_db_guarded
SET client_min_messages = warning;
DROP EXTENSION safe_migrate;
RESET client_min_messages;
\c sm_db_plain
SELECT count(*) AS marks FROM pg_db_role_setting
 WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'sm_db_guarded');
SET ROLE sm_db_owner;
DROP DATABASE sm_db_guarded;
RESET ROLE;
\c contrib_regression
SET safe_migrate.policy = off;
DROP DATABASE sm_db_plain;
RESET safe_migrate.policy;
DROP ROLE sm_db_owner;
