-- bench/type_change/naive.sql: the statement as a developer writes it, run
-- as PostgreSQL runs it (policy off): one rewrite of users under ACCESS
-- EXCLUSIVE, its indexes rebuilt, the foreign key from orders checked again.
SET safe_migrate.policy = off;
ALTER TABLE users ALTER COLUMN id TYPE bigint;
