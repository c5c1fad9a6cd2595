-- bench/zero_downtime/foreground.sql: the foreground load of
-- bench/zero_downtime.sh (pgbench -D rows=N).  A point UPDATE of note (a
-- column no migration touches) and a point SELECT, both by primary key,
-- each its own transaction; pgbench times the whole script.
\set uid random(1, :rows)
UPDATE users SET note = 'seen by client ' || :client_id WHERE id = :uid;
\set sid random(1, :rows)
SELECT id, first_name, last_name, note FROM users WHERE id = :sid;
