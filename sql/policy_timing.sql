-- Verdicts that depend on what PostgreSQL really does, and when: the rows a
-- migration really changed, whatever the statement's spelling; rules
-- decided at the end of the migration, not per statement.  Played by a
-- table owner who is not an admin.
CREATE ROLE pt_owner;
CREATE SCHEMA pt AUTHORIZATION pt_owner;
SET safe_migrate.large_table_rows = 1000;
SET client_min_messages = notice;
SET ROLE pt_owner;
SET search_path = pt, public;

CREATE TABLE accounts (id int PRIMARY KEY, plan text NOT NULL, balance int NOT NULL DEFAULT 0)
    WITH (autovacuum_enabled = false);
INSERT INTO accounts SELECT g, CASE WHEN g % 2 = 0 THEN 'basic' ELSE 'free' END, g
  FROM generate_series(1, 3000) g;
CREATE TABLE plan_renames (old text, new text);
INSERT INTO plan_renames VALUES ('basic', 'starter'), ('free', 'hobby');
ANALYZE accounts, plan_renames;
CREATE FUNCTION accounts_checksum() RETURNS text LANGUAGE sql
  AS $$ SELECT md5(string_agg(id || plan || balance, ',' ORDER BY id)) FROM pt.accounts $$;
CREATE TABLE before AS SELECT accounts_checksum() AS sum;

-- large-unbatched-dml: every way of changing 1,500 or 3,000 rows is seen.
-- A data-changing CTE:
SELECT * FROM migrate_apply($m$
WITH moved AS (UPDATE accounts SET plan = 'starter' WHERE plan = 'basic' RETURNING id)
SELECT count(*) FROM moved;
$m$, 'dml-cte');
-- MERGE:
SELECT * FROM migrate_apply($m$
MERGE INTO accounts a USING plan_renames r ON a.plan = r.old
  WHEN MATCHED THEN UPDATE SET plan = r.new;
$m$, 'dml-merge');
-- INSERT ... ON CONFLICT DO UPDATE:
SELECT * FROM migrate_apply($m$
INSERT INTO accounts (id, plan) SELECT id, 'starter' FROM accounts WHERE plan = 'basic'
  ON CONFLICT (id) DO UPDATE SET plan = excluded.plan;
$m$, 'dml-upsert');
-- EXECUTE of a prepared statement:
SELECT * FROM migrate_apply($m$
PREPARE zero_balances AS DELETE FROM accounts WHERE balance > 10;
EXECUTE zero_balances;
$m$, 'dml-execute');
DEALLOCATE ALL;
-- DML inside DO:
SELECT * FROM migrate_apply($m$
DO $$ BEGIN UPDATE pt.accounts SET balance = 0; END $$;
$m$, 'dml-do');
-- A trigger changing the rows: counted on the table it changes.
CREATE TABLE plan_events (id int, plan text);
CREATE FUNCTION reset_balances() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN UPDATE pt.accounts SET balance = 0 WHERE plan = NEW.plan; RETURN NEW; END $$;
CREATE TRIGGER plan_events_reset AFTER INSERT ON plan_events
  FOR EACH ROW EXECUTE FUNCTION reset_balances();
SELECT * FROM migrate_apply($m$
INSERT INTO plan_events VALUES (1, 'basic');
$m$, 'dml-trigger');
-- Rows add up over the transaction: two updates of 600 rows each.
SELECT * FROM migrate_apply($m$
UPDATE accounts SET balance = balance + 1 WHERE id <= 600;
UPDATE accounts SET balance = balance + 1 WHERE id > 2400;
$m$, 'dml-two');
-- In the runner (CREATE INDEX CONCURRENTLY sends the script there):
SELECT * FROM migrate_apply($m$
CREATE INDEX CONCURRENTLY accounts_plan ON accounts (plan);
MERGE INTO accounts a USING plan_renames r ON a.plan = r.old
  WHEN MATCHED THEN UPDATE SET plan = r.new;
$m$, 'dml-runner');
-- Nothing of those migrations happened.
SELECT accounts_checksum() = sum AS unchanged FROM before;
SELECT count(*) FROM plan_events;
-- "More than large_table_rows": exactly 1,000 rows pass, 1,001 do not.
SELECT version, status FROM migrate_apply($m$
UPDATE accounts SET balance = balance + 1 WHERE id <= 1000;
$m$, 'dml-1000');
SELECT * FROM migrate_apply($m$
UPDATE accounts SET balance = balance + 1 WHERE id <= 1001;
$m$, 'dml-1001');
-- A partitioned table: the partitions' rows count toward it.
CREATE TABLE ledger (id int, region text, amount int) PARTITION BY LIST (region);
CREATE TABLE ledger_eu PARTITION OF ledger FOR VALUES IN ('eu');
CREATE TABLE ledger_us PARTITION OF ledger FOR VALUES IN ('us');
INSERT INTO ledger SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g
  FROM generate_series(1, 1200) g;
SELECT * FROM migrate_apply($m$
UPDATE ledger SET amount = amount * 100;
$m$, 'dml-partitions');
-- Rows of a table the migration creates are nobody else's yet.
SELECT version, status FROM migrate_apply($m$
CREATE TABLE accounts_archive AS SELECT * FROM accounts WITH NO DATA;
INSERT INTO accounts_archive SELECT * FROM accounts;
UPDATE accounts_archive SET balance = 0;
$m$, 'dml-new-table');
-- Threshold 0: any changed row counts, an UPDATE of none is no UPDATE.
RESET ROLE;
SET safe_migrate.large_table_rows = 0;
SET ROLE pt_owner;
SELECT version, status FROM migrate_apply($m$
UPDATE accounts SET balance = 0 WHERE id < 0;
$m$, 'dml-zero');
SELECT * FROM migrate_apply($m$
UPDATE accounts SET balance = 0 WHERE id = 1;
$m$, 'dml-one');
RESET ROLE;
SET safe_migrate.large_table_rows = 1000;
SET ROLE pt_owner;
-- Outside a migration nothing is counted.
UPDATE accounts SET balance = balance + 1;
