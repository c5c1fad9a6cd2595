-- bench/backfill/users.sql: a fresh table users of :rows rows for
-- bench/backfill.sh (psql -v rows=N).  full_name starts out NULL; the
-- benchmark fills it with first_name || ' ' || last_name.
--
-- Dropping the previous copy is DDL on a large existing table, which the
-- safe-DDL policy may refuse: this setup session (a superuser) switches the
-- policy off, and the new table is created, filled and given its primary key
-- in one transaction.
SET safe_migrate.policy = off;
BEGIN;
DROP TABLE IF EXISTS users;
CREATE TABLE users (
    id         bigint NOT NULL,
    first_name text NOT NULL,
    last_name  text NOT NULL,
    full_name  text,
    email      text NOT NULL,
    note       text,
    created_at timestamptz NOT NULL
);
INSERT INTO users (id, first_name, last_name, email, created_at)
SELECT g,
       f.name,
       l.name,
       lower(f.name) || '.' || lower(l.name) || g || '@example.com',
       timestamptz '2020-01-01 00:00+00' + g * interval '17 seconds'
  FROM generate_series(1, :rows) AS g,
       LATERAL (SELECT (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances',
                              'John', 'Margaret', 'Ken', 'Dennis', 'Radia', 'Niklaus', 'Leslie',
                              'Sophie', 'Tony', 'Jean', 'Bjarne', 'Anita', 'Guido'])[1 + g % 20]) AS f(name),
       LATERAL (SELECT (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth',
                              'Allen', 'McCarthy', 'Hamilton', 'Thompson', 'Ritchie', 'Perlman',
                              'Wirth', 'Lamport', 'Wilson', 'Hoare', 'Sammet', 'Stroustrup',
                              'Borg', 'van Rossum', 'Backus', 'Kay', 'Goldberg'])[1 + (g / 20) % 23]) AS l(name);
ALTER TABLE users ADD PRIMARY KEY (id);
COMMIT;
VACUUM ANALYZE users;
