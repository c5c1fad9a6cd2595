-- bench/backfill/foreground.sql: the foreground load of bench/backfill.sh
-- (pgbench -D rows=N).  One point UPDATE of a column the backfill does not
-- touch and one point SELECT, both by primary key, each in its own
-- transaction (autocommit); pgbench times the whole script.
\set uid random(1, :rows)
UPDATE users SET note = 'seen by client ' || :client_id WHERE id = :uid;
\set sid random(1, :rows)
SELECT id, first_name, last_name, full_name FROM users WHERE id = :sid;
