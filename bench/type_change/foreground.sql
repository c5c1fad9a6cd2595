-- bench/type_change/foreground.sql: the application of bench/type_change.sh
-- (pgbench -D rows=N).  One transaction: a point UPDATE of a user (logged
-- in wlog), a new user (its id logged in ilog) and an order for the updated
-- user; then a point SELECT by id.  pgbench times the whole script.
\set uid random(1, :rows)
BEGIN;
UPDATE users SET v = v + 1 WHERE id = :uid;
INSERT INTO wlog VALUES (:uid);
INSERT INTO users (name) VALUES ('new') RETURNING id AS nid \gset
INSERT INTO ilog VALUES (:nid);
INSERT INTO orders (user_id) VALUES (:uid);
COMMIT;
\set sid random(1, :rows)
SELECT id, name, v FROM users WHERE id = :sid;
