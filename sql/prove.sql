-- migrate_test: up, down, up again in a transaction that is rolled back.
CREATE TABLE mt_users (id int PRIMARY KEY, name text);
-- Reversible (derived down): down restores exactly, up repeats exactly.
SELECT step, ok, cardinality(differences) AS n FROM migrate_test($$
CREATE TABLE mt_orders (id int PRIMARY KEY, user_id int REFERENCES mt_users (id));
CREATE INDEX mt_orders_user ON mt_orders (user_id);
ALTER TABLE mt_users ADD COLUMN email text;
$$);
SELECT unnest(differences) AS up_added FROM migrate_test($$
CREATE TABLE mt_orders (id int PRIMARY KEY, user_id int REFERENCES mt_users (id));
CREATE INDEX mt_orders_user ON mt_orders (user_id);
ALTER TABLE mt_users ADD COLUMN email text;
$$) WHERE step = 'up';
-- Nothing stays behind.
SELECT to_regclass('mt_orders') AS mt_orders,
       (SELECT count(*) FROM pg_attribute WHERE attrelid = 'mt_users'::regclass AND attname = 'email') AS email;
-- A down script that forgets the table: reported in words.
SELECT step, ok, differences FROM migrate_test($$
-- safe_migrate:allow ban-drop-column the test drops what it added
-- migrate:up
ALTER TABLE mt_users ADD COLUMN nick text;
CREATE TABLE mt_audit (id int);
-- migrate:down
ALTER TABLE mt_users DROP COLUMN nick;
$$);
-- A down script that fails.
SELECT step, ok, differences FROM migrate_test($$
-- migrate:up
CREATE TABLE mt_x (id int);
-- migrate:down
DROP TABLE mt_no_such_table;
$$);
-- Bad input and what cannot be tested this way.
SELECT * FROM migrate_test(NULL);
SELECT * FROM migrate_test('INSERT INTO mt_users VALUES (1);');
SELECT * FROM migrate_test('CREATE INDEX CONCURRENTLY mt_x ON mt_users (name);');
SELECT * FROM migrate_test('SELEC 1');
SELECT * FROM migrate_test($$
-- migrate:up
CREATE TABLE mt_t (id int);
COMMIT;
-- migrate:down
DROP TABLE mt_t;
$$);
