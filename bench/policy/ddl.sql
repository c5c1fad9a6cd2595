-- bench/policy/ddl.sql: the DDL-heavy pgbench script of bench/policy_overhead.sh.
--
-- It must succeed both without safe_migrate and with it (policy enforced), so
-- it only does DDL that no safe-DDL rule refuses:
--   1. a whole table lifecycle inside one transaction (a table created in the
--      same transaction is exempt from every rule, DROP TABLE included);
--   2. DDL on the client's own small pre-existing table pol_keep_<client>
--      (100 rows, created by bench/policy/setup.sql): COMMENT ON, CREATE /
--      DROP INDEX (size-dependent rules exempt small tables), CREATE / DROP
--      VIEW, and a nullable ADD COLUMN that is rolled back (so the table does
--      not grow a column per transaction; DROP COLUMN would be refused).
-- Each client uses only object names ending in its :client_id, so clients
-- never wait for each other's locks.  Variables are placed at the end of
-- identifiers because pgbench reads [A-Za-z0-9_]+ as the variable name.

-- 1. lifecycle of a new table: CREATE, ALTER ... ADD COLUMN, CREATE INDEX, DROP
BEGIN;
CREATE TABLE pol_new_:client_id (id bigint PRIMARY KEY, v text NOT NULL);
ALTER TABLE pol_new_:client_id ADD COLUMN w integer;
CREATE INDEX pol_new_v_:client_id ON pol_new_:client_id (v);
DROP TABLE pol_new_:client_id;
COMMIT;

-- 2. DDL on an existing small table (autocommit: one transaction each)
COMMENT ON TABLE pol_keep_:client_id IS 'bench/policy_overhead.sh';
CREATE INDEX pol_keep_v_:client_id ON pol_keep_:client_id (v);
DROP INDEX pol_keep_v_:client_id;
CREATE VIEW pol_view_:client_id AS SELECT id, v FROM pol_keep_:client_id;
DROP VIEW pol_view_:client_id;
BEGIN;
ALTER TABLE pol_keep_:client_id ADD COLUMN extra text;
ROLLBACK;
