-- bench/type_change/tables.sql: fresh tables for bench/type_change.sh
-- (psql -v rows=N): users with an integer serial primary key (the column
-- the benchmark changes to bigint), orders with a foreign key to it, and
-- the application's own logs of what it wrote (wlog: one row per update of
-- a user, ilog: the ids of the users it inserted) to check afterwards that
-- every write is there with its latest value.  Policy off for the setup.
SET safe_migrate.policy = off;
DROP TABLE IF EXISTS orders, users, wlog, ilog;
CREATE TABLE users (
    id    serial PRIMARY KEY,
    name  text NOT NULL,
    v     integer NOT NULL DEFAULT 0
);
INSERT INTO users (name) SELECT 'user ' || g FROM generate_series(1, :rows) AS g;
CREATE TABLE orders (
    id      bigserial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id)
);
INSERT INTO orders (user_id) SELECT 1 + (g * 7) % :rows FROM generate_series(1, :rows / 4) AS g;
CREATE INDEX orders_user_id ON orders (user_id);
CREATE TABLE wlog (id bigint NOT NULL);
CREATE TABLE ilog (id bigint NOT NULL);
VACUUM ANALYZE users, orders;
CHECKPOINT;
