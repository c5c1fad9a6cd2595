-- bench/zero_downtime/users.sql: a fresh table users of :rows rows for
-- bench/zero_downtime.sh (psql -v rows=N), without full_name: every
-- migration of the benchmark adds it.  The setup session switches the
-- safe-DDL policy off (dropping and re-creating a large table is DDL the
-- policy may refuse).
SET safe_migrate.policy = off;
BEGIN;
DROP TABLE IF EXISTS users;
CREATE TABLE users (
    id         bigint PRIMARY KEY,
    first_name text NOT NULL,
    last_name  text NOT NULL,
    note       text
);
INSERT INTO users (id, first_name, last_name)
SELECT g,
       (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances',
              'John', 'Margaret', 'Ken', 'Dennis', 'Radia', 'Niklaus', 'Leslie',
              'Sophie', 'Tony', 'Jean', 'Bjarne', 'Anita', 'Guido'])[1 + g % 20],
       (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth',
              'Allen', 'McCarthy', 'Hamilton', 'Thompson', 'Ritchie', 'Perlman',
              'Wirth', 'Lamport', 'Wilson', 'Hoare', 'Sammet', 'Stroustrup',
              'Borg', 'van Rossum', 'Backus', 'Kay', 'Goldberg'])[1 + (g / 20) % 23]
  FROM generate_series(1, :rows) AS g;
COMMIT;
VACUUM ANALYZE users;
CHECKPOINT;
