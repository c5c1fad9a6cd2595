-- Verdicts that depend on what PostgreSQL really does, and when: the rows a
-- migration really changed, whatever the statement's spelling; rules
-- decided at the end of the migration, not per statement.  Played by a
-- table owner who is not an admin.
CREATE ROLE pt_owner;
CREATE SCHEMA pt AUTHORIZATION pt_owner;
-- Errors show as their SQLSTATE, then their message with table sizes cut
-- out (sizes are tested in policy.sql; here only who is judged, and why).
CREATE FUNCTION public.pt_strip(m text) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$ SELECT regexp_replace(m, ' \([0-9.]+[kMG]? rows?, [0-9]+ (bytes|kB|MB|GB|TB)\)', '', 'g') $$;
\set VERBOSITY sqlstate
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
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- MERGE:
SELECT * FROM migrate_apply($m$
MERGE INTO accounts a USING plan_renames r ON a.plan = r.old
  WHEN MATCHED THEN UPDATE SET plan = r.new;
$m$, 'dml-merge');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- INSERT ... ON CONFLICT DO UPDATE:
SELECT * FROM migrate_apply($m$
INSERT INTO accounts (id, plan) SELECT id, 'starter' FROM accounts WHERE plan = 'basic'
  ON CONFLICT (id) DO UPDATE SET plan = excluded.plan;
$m$, 'dml-upsert');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- EXECUTE of a prepared statement:
SELECT * FROM migrate_apply($m$
PREPARE zero_balances AS DELETE FROM accounts WHERE balance > 10;
EXECUTE zero_balances;
$m$, 'dml-execute');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
DEALLOCATE ALL;
-- DML inside DO:
SELECT * FROM migrate_apply($m$
DO $$ BEGIN UPDATE pt.accounts SET balance = 0; END $$;
$m$, 'dml-do');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- A trigger changing the rows: counted on the table it changes.
CREATE TABLE plan_events (id int, plan text);
CREATE FUNCTION reset_balances() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN UPDATE pt.accounts SET balance = 0 WHERE plan = NEW.plan; RETURN NEW; END $$;
CREATE TRIGGER plan_events_reset AFTER INSERT ON plan_events
  FOR EACH ROW EXECUTE FUNCTION reset_balances();
SELECT * FROM migrate_apply($m$
INSERT INTO plan_events VALUES (1, 'basic');
$m$, 'dml-trigger');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- Rows add up over the transaction: two updates of 600 rows each.
SELECT * FROM migrate_apply($m$
UPDATE accounts SET balance = balance + 1 WHERE id <= 600;
UPDATE accounts SET balance = balance + 1 WHERE id > 2400;
$m$, 'dml-two');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- In the runner (CREATE INDEX CONCURRENTLY sends the script there):
SELECT * FROM migrate_apply($m$
CREATE INDEX CONCURRENTLY accounts_plan ON accounts (plan);
MERGE INTO accounts a USING plan_renames r ON a.plan = r.old
  WHEN MATCHED THEN UPDATE SET plan = r.new;
$m$, 'dml-runner');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- Nothing of those migrations happened.
SELECT accounts_checksum() = sum AS unchanged FROM before;
SELECT count(*) FROM plan_events;
-- Rows a rolled-back subtransaction changed are neither changed nor locked.
SELECT version, status FROM migrate_apply($m$
DO $$
BEGIN
  BEGIN
    UPDATE pt.accounts SET balance = -1;
    RAISE EXCEPTION 'changed my mind';
  EXCEPTION WHEN raise_exception THEN NULL;
  END;
END $$;
UPDATE accounts SET balance = balance WHERE id <= 10;
$m$, 'dml-rolled-back');
-- "More than large_table_rows": exactly 1,000 rows pass, 1,001 do not.
SELECT version, status FROM migrate_apply($m$
UPDATE accounts SET balance = balance + 1 WHERE id <= 1000;
$m$, 'dml-1000');
SELECT * FROM migrate_apply($m$
UPDATE accounts SET balance = balance + 1 WHERE id <= 1001;
$m$, 'dml-1001');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- A partitioned table: the partitions' rows count toward it.
CREATE TABLE ledger (id int, region text, amount int) PARTITION BY LIST (region);
CREATE TABLE ledger_eu PARTITION OF ledger FOR VALUES IN ('eu');
CREATE TABLE ledger_us PARTITION OF ledger FOR VALUES IN ('us');
INSERT INTO ledger SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g
  FROM generate_series(1, 1200) g;
SELECT * FROM migrate_apply($m$
UPDATE ledger SET amount = amount * 100;
$m$, 'dml-partitions');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
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
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
RESET ROLE;
SET safe_migrate.large_table_rows = 1000;
SET ROLE pt_owner;
-- Outside a migration nothing is counted.
UPDATE accounts SET balance = balance + 1;

-- foreign-key-missing-index is decided at the end of the migration.
CREATE TABLE orders (id int PRIMARY KEY, account_id int, total int)
    WITH (autovacuum_enabled = false);
INSERT INTO orders SELECT g, g, g FROM generate_series(1, 3000) g;
CREATE TABLE refunds (id int PRIMARY KEY, order_id int) WITH (autovacuum_enabled = false);
INSERT INTO refunds SELECT g, g FROM generate_series(1, 100) g;
CREATE TABLE coupons (id int PRIMARY KEY);
INSERT INTO coupons SELECT g FROM generate_series(1, 10) g;
ANALYZE orders, refunds, coupons;
-- The index comes in a later step (the runner): no warning.
SELECT version, status, pt_strip(warnings::text) AS warnings FROM migrate_apply($m$
ALTER TABLE orders ADD CONSTRAINT orders_account_fkey FOREIGN KEY (account_id)
  REFERENCES accounts (id) NOT VALID;
CREATE INDEX CONCURRENTLY orders_account_id ON orders (account_id);
$m$, 'fk-index-later');
-- The index comes later in the same transaction (the caller's backend): no warning.
SELECT version, status, pt_strip(warnings::text) AS warnings FROM migrate_apply($m$
ALTER TABLE refunds ADD CONSTRAINT refunds_order_fkey FOREIGN KEY (order_id) REFERENCES orders (id);
CREATE INDEX refunds_order_id ON refunds (order_id);
$m$, 'fk-index-same-tx');
-- The same statement makes the index: no warning.
SELECT version, status, pt_strip(warnings::text) AS warnings FROM migrate_apply($m$
ALTER TABLE refunds ADD COLUMN coupon_id int UNIQUE REFERENCES coupons (id);
$m$, 'fk-unique-inline');
-- No index by the end: one warning, at the end, naming the key.
SELECT version, status, pt_strip(warnings::text) AS warnings FROM migrate_apply($m$
ALTER TABLE refunds ADD COLUMN account_id int;
ALTER TABLE refunds ADD CONSTRAINT refunds_account_fkey FOREIGN KEY (account_id)
  REFERENCES accounts (id) NOT VALID;
COMMENT ON TABLE refunds IS 'refunds of orders';
$m$, 'fk-no-index');
-- A key added and dropped again leaves nothing to index.
SELECT version, status, pt_strip(warnings::text) AS warnings FROM migrate_apply($m$
ALTER TABLE refunds ADD CONSTRAINT refunds_account_fkey2 FOREIGN KEY (account_id)
  REFERENCES accounts (id) NOT VALID;
ALTER TABLE refunds DROP CONSTRAINT refunds_account_fkey2;
$m$, 'fk-dropped');
-- Outside a migration: decided at commit.  (refund_notes: no index, no
-- TOAST, so its size in the warning is the heap's own page.)
CREATE TABLE refund_notes (refund_id int, coupon_id int, account_id int);
INSERT INTO refund_notes SELECT g, NULL, g FROM generate_series(1, 100) g;
ANALYZE refund_notes;
\set VERBOSITY terse
BEGIN;
ALTER TABLE refund_notes ADD CONSTRAINT refund_notes_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id);
CREATE INDEX refund_notes_account_id ON refund_notes (account_id);
COMMIT;
BEGIN;
ALTER TABLE refund_notes DROP CONSTRAINT refund_notes_account_fkey;
DROP INDEX refund_notes_account_id;
ALTER TABLE refund_notes ADD CONSTRAINT refund_notes_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id);
SELECT 'no warning before the commit' AS note;
COMMIT;
BEGIN;
ALTER TABLE refund_notes ADD CONSTRAINT refund_notes_coupon_fkey FOREIGN KEY (coupon_id) REFERENCES coupons (id);
ROLLBACK;
\set VERBOSITY sqlstate

-- A column added without a default holds only NULLs: PostgreSQL adds its
-- foreign key without a scan (it still locks accounts in SHARE ROW EXCLUSIVE
-- for a moment).
SELECT version, status, pt_strip(warnings::text) AS warnings FROM migrate_apply($m$
ALTER TABLE orders ADD COLUMN referrer_id int REFERENCES accounts (id);
CREATE INDEX CONCURRENTLY orders_referrer_id ON orders (referrer_id);
$m$, 'fk-new-column');
-- With a default every row has a value to check: refused.
SELECT * FROM migrate_apply($m$
ALTER TABLE orders ADD COLUMN seller_id int DEFAULT 1 REFERENCES accounts (id);
$m$, 'fk-new-column-default');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- So does an identity or serial column: its rows get numbers at once.
SELECT verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan('ALTER TABLE orders ADD COLUMN seller_no bigserial REFERENCES accounts (id);');
SELECT verdict, jsonb_path_query_array(rules, '$[*].rule') AS rules
  FROM migrate_plan('ALTER TABLE orders ADD COLUMN seller_no bigint GENERATED ALWAYS AS IDENTITY REFERENCES accounts (id);');

-- A table filled in the same transaction: its key's validation scans the
-- copied rows while the existing accounts table is locked against writes.
SELECT * FROM migrate_apply($m$
CREATE TABLE orders_archive AS SELECT * FROM orders;
ALTER TABLE orders_archive ADD CONSTRAINT orders_archive_account_fkey
  FOREIGN KEY (account_id) REFERENCES accounts (id);
$m$, 'fk-ctas');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
SELECT version, status FROM migrate_apply($m$
CREATE TABLE orders_archive AS SELECT * FROM orders;
ALTER TABLE orders_archive ADD CONSTRAINT orders_archive_account_fkey
  FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
CREATE INDEX orders_archive_account_id ON orders_archive (account_id);
$m$, 'fk-ctas-not-valid');
-- An empty new table, or a new referenced table: nothing to scan or to block.
SELECT version, status FROM migrate_apply($m$
CREATE TABLE order_notes (id int PRIMARY KEY, order_id int REFERENCES orders (id));
CREATE TABLE tags AS SELECT g AS id FROM generate_series(1, 5000) g;
ALTER TABLE tags ADD PRIMARY KEY (id);
CREATE TABLE order_tags AS SELECT g AS order_id, g AS tag_id FROM generate_series(1, 3000) g;
ALTER TABLE order_tags ADD FOREIGN KEY (tag_id) REFERENCES tags (id);
CREATE INDEX order_tags_tag_id ON order_tags (tag_id);
$m$, 'fk-new-tables');

-- Renaming a column the migration added breaks nothing: allowed, in one
-- transaction or across the runner's steps; other renames are still refused.
SELECT version, status FROM migrate_apply($m$
ALTER TABLE accounts ADD COLUMN nick text;
ALTER TABLE accounts RENAME COLUMN nick TO nickname;
ALTER TABLE accounts RENAME COLUMN nickname TO display_name;
$m$, 'rename-new-column');
SELECT version, status FROM migrate_apply($m$
ALTER TABLE orders ADD COLUMN note text;
CREATE INDEX CONCURRENTLY orders_total ON orders (total);
ALTER TABLE orders RENAME COLUMN note TO remark;
$m$, 'rename-new-column-runner');
SELECT * FROM migrate_apply($m$
ALTER TABLE accounts ADD COLUMN tier text;
ALTER TABLE accounts RENAME COLUMN plan TO tier_plan;
$m$, 'rename-old-column');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- Dropping a column the migration added loses nobody's data.
SELECT version, status FROM migrate_apply($m$
ALTER TABLE accounts ADD COLUMN scratch int;
UPDATE accounts SET scratch = 1 WHERE id <= 10;
ALTER TABLE accounts DROP COLUMN scratch;
$m$, 'drop-new-column');
SELECT * FROM migrate_apply($m$
ALTER TABLE accounts ADD COLUMN scratch int;
ALTER TABLE accounts DROP COLUMN balance;
$m$, 'drop-old-column');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- ADD COLUMN IF NOT EXISTS of a column that exists adds nothing.
SELECT * FROM migrate_apply($m$
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS balance int;
ALTER TABLE accounts RENAME COLUMN balance TO credit;
$m$, 'rename-existing-column');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;
-- An earlier migration's column is the application's by now.
SELECT * FROM migrate_apply($m$
ALTER TABLE accounts RENAME COLUMN display_name TO shown_name;
$m$, 'rename-earlier-column');
SELECT pt_strip(:'LAST_ERROR_MESSAGE') AS error;

-- Names that do not exist: PostgreSQL's own error, not a rule's.
ALTER TABLE orders SET TABLESPACE no_such_ts;
SELECT :'LAST_ERROR_MESSAGE' AS error;
ALTER TABLE orders DROP COLUMN no_such_column;
SELECT :'LAST_ERROR_MESSAGE' AS error;
ALTER TABLE orders DROP COLUMN IF EXISTS no_such_column;
ALTER TABLE orders ALTER COLUMN no_such_column SET NOT NULL;
SELECT :'LAST_ERROR_MESSAGE' AS error;
ALTER TABLE orders RENAME COLUMN no_such_column TO something;
SELECT :'LAST_ERROR_MESSAGE' AS error;
ALTER TABLE orders VALIDATE CONSTRAINT no_such_constraint;
SELECT :'LAST_ERROR_MESSAGE' AS error;
ALTER TABLE orders ADD CONSTRAINT orders_x_fkey FOREIGN KEY (account_id) REFERENCES no_such_table (id);
SELECT :'LAST_ERROR_MESSAGE' AS error;

-- The runner judges the key at the end too: no index by then, one warning.
SELECT version, status, pt_strip(warnings::text) AS warnings FROM migrate_apply($m$
ALTER TABLE orders ADD COLUMN coupon_id int REFERENCES coupons (id);
CREATE INDEX CONCURRENTLY orders_remark ON orders (remark);
$m$, 'fk-no-index-runner');

-- migrate_plan: adding a foreign key locks the table it references, also
-- from a new table; a new column's key scans nothing.
SELECT statement, command, relation, lock_mode, effect, verdict
  FROM migrate_plan($m$
-- migrate:up
ALTER TABLE orders ADD COLUMN voucher_id int REFERENCES coupons (id);
ALTER TABLE orders ADD COLUMN agent_id int DEFAULT 1 REFERENCES accounts (id);
ALTER TABLE refunds ADD CONSTRAINT refunds_order_fkey2 FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;
CREATE TABLE shipments (id int PRIMARY KEY, order_id int REFERENCES orders (id),
  account_id int, FOREIGN KEY (account_id) REFERENCES pt.accounts (id));
-- migrate:down
SELECT 1;
$m$);

-- Clean up (the role is the cluster's).
RESET ROLE;
RESET search_path;
SET safe_migrate.policy = off;
DROP SCHEMA pt CASCADE;
DROP FUNCTION public.pt_strip(text);
DROP ROLE pt_owner;
