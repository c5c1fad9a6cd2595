-- Throttled batch backfills run by background workers (the test cluster
-- has safe_migrate in shared_preload_libraries).
CREATE TABLE bf_users (id bigint PRIMARY KEY, first_name text, last_name text,
                       full_name text, counter int NOT NULL DEFAULT 0);
INSERT INTO bf_users SELECT g, 'f' || g, 'l' || g, NULL FROM generate_series(1, 20000) g;

-- Every matching row updated exactly once (the counter shows it).
SELECT migrate_backfill('bf_users', $$full_name = first_name || ' ' || last_name, counter = counter + 1$$,
                        'full_name IS NULL', batch_size => 500) AS job \gset
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT status, rows_done, last_key, submitted_by = current_user AS mine, last_error
  FROM safe_migrate.backfills WHERE id = :job;
SELECT count(*) FILTER (WHERE counter = 1) AS once, count(*) FILTER (WHERE counter <> 1) AS other,
       count(*) FILTER (WHERE full_name IS NULL) AS missing FROM bf_users;

-- Only the rows the WHERE clause selects.  Batches walk the key alone
-- (every key is examined), the WHERE clause filters inside each key range.
SELECT migrate_backfill('bf_users', 'counter = counter + 1', 'id % 10 = 0') AS job \gset
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT rows_done, rows_examined FROM safe_migrate.backfills WHERE id = :job;
SELECT counter, count(*) FROM bf_users GROUP BY counter ORDER BY counter;

-- A composite key of any orderable types.
CREATE TABLE bf_pairs (region text, seq int, v int, PRIMARY KEY (region, seq));
INSERT INTO bf_pairs SELECT r, s, 0 FROM unnest(ARRAY['eu', 'us', 'ap']) r, generate_series(1, 3000) s;
SELECT migrate_backfill('bf_pairs', 'v = v + 1', batch_size => 700) AS job \gset
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT status, rows_done, last_key FROM safe_migrate.backfills WHERE id = :job;
SELECT v, count(*) FROM bf_pairs GROUP BY v;

-- Paused before it started (in the submitting transaction), resumed, done.
BEGIN;
SELECT migrate_backfill('bf_users', 'counter = counter + 1', 'id <= 100') AS job \gset
SELECT migrate_backfill_pause(:job);
COMMIT;
SELECT pg_sleep(0.5);
SELECT status, rows_done FROM safe_migrate.backfills WHERE id = :job;
SELECT migrate_backfill_wait(:job, '200 ms');
SELECT migrate_backfill_resume(:job);
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT migrate_backfill_resume(:job);
-- Cancelled.
BEGIN;
SELECT migrate_backfill('bf_users', 'counter = counter + 1') AS job \gset
SELECT migrate_backfill_pause(:job);
COMMIT;
SELECT migrate_backfill_cancel(:job);
SELECT migrate_backfill_wait(:job);
SELECT status, rows_done FROM safe_migrate.backfills WHERE id = :job;

-- A permanent error stops the job with no partial batch; once the cause is
-- fixed the job resumes where it stopped.
CREATE TABLE bf_div (id int PRIMARY KEY, d int NOT NULL, counter int NOT NULL DEFAULT 0);
INSERT INTO bf_div SELECT g, CASE WHEN g = 7000 THEN 0 ELSE 1 END FROM generate_series(1, 10000) g;
SELECT migrate_backfill('bf_div', 'counter = counter + 100 / d', batch_size => 300) AS job \gset
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT status, last_sqlstate, last_error FROM safe_migrate.backfills WHERE id = :job;
SELECT rows_done = (SELECT count(*) FROM bf_div WHERE counter = 100) AS progress_matches_rows,
       (SELECT max(id) FROM bf_div WHERE counter = 100) < 7000 AS stopped_before_the_bad_row,
       (SELECT count(*) FROM bf_div WHERE counter NOT IN (0, 100)) AS half_done
  FROM safe_migrate.backfills WHERE id = :job;
UPDATE bf_div SET d = 1 WHERE id = 7000;
SELECT migrate_backfill_resume(:job);
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT counter, count(*) FROM bf_div GROUP BY counter;

-- Bad input.
CREATE TABLE bf_nokey (v int);
SELECT migrate_backfill('bf_nokey', 'v = 1');
SELECT migrate_backfill('bf_users', 'no_such_column = 1');
SELECT migrate_backfill('bf_users', 'counter = 1; DROP TABLE bf_users');
SELECT migrate_backfill('bf_users', NULL);
SELECT migrate_backfill(NULL, 'counter = 1');
SELECT migrate_backfill('bf_users', 'counter = 1', batch_size => 0);
SELECT migrate_backfill('no_such_table', 'counter = 1');
SELECT migrate_backfill_pause(999999);
SELECT migrate_backfill_wait(999999);
SELECT migrate_backfill_wait(NULL);

-- The set clause is parsed as one assignment list, the where clause as one
-- expression; nothing else is accepted (the text cannot add statements or
-- escape its place in the batch statement).
SELECT migrate_backfill('bf_users', $$counter = counter WHERE false; CREATE FUNCTION bf_evil() RETURNS int LANGUAGE sql AS 'SELECT 1'; UPDATE bf_users SET counter = 2$$);
SELECT migrate_backfill('bf_users', 'counter = 1 WHERE id = 1');
SELECT migrate_backfill('bf_users', 'counter = 1 RETURNING id');
SELECT migrate_backfill('bf_users', 'counter = 1 FROM bf_pairs');
SELECT migrate_backfill('bf_users', 'counter[1] = 1');
SELECT migrate_backfill('bf_users', 'counter = 1', 'false) OR (counter = 1');
SELECT migrate_backfill('bf_users', 'counter = 1', 'true; DROP TABLE bf_users');
SELECT migrate_backfill('bf_users', 'counter = 1', 'true ORDER BY 1');
SELECT migrate_backfill('bf_users', 'counter = 1', 'true, false');
SELECT migrate_backfill('bf_users', 'counter = 1', 'true FROM bf_pairs');
SELECT migrate_backfill('bf_users', 'counter = 1', 'counter');
SELECT migrate_backfill('bf_users', 'counter = count(*)');
-- A key column may not be assigned: the walk would meet the row again.
SELECT migrate_backfill('bf_users', 'id = id + 100000');
SELECT migrate_backfill('bf_pairs', 'v = 1, seq = seq + 1');
-- Names resolve with the submitter's search_path, at submit time, and are
-- stored qualified: the worker runs bf_m.norm, not public.norm.
CREATE SCHEMA bf_m;
CREATE FUNCTION bf_m.norm(text) RETURNS text LANGUAGE sql AS $$SELECT upper($1)$$;
CREATE FUNCTION public.norm(text) RETURNS text LANGUAGE sql AS $$SELECT lower($1)$$;
SET search_path = bf_m, public;
BEGIN;
SELECT migrate_backfill('bf_users', 'full_name = norm(first_name)', 'norm(last_name) IS NOT NULL') AS job \gset
SELECT set_clause, where_clause FROM safe_migrate.backfills WHERE id = :job;
SELECT migrate_backfill_cancel(:job);
COMMIT;
RESET search_path;
DROP SCHEMA bf_m CASCADE;
DROP FUNCTION public.norm(text);
-- Bounds of the options.
SELECT migrate_backfill('bf_users', 'counter = 1', batch_size => 100001);
SELECT migrate_backfill('bf_users', 'counter = 1', target_batch_ms => 0);
SELECT migrate_backfill('bf_users', 'counter = 1', target_batch_ms => 60001);
SELECT migrate_backfill('bf_users', 'counter = 1', max_rows_per_second => -1);
SELECT migrate_backfill('bf_users', 'counter = 1', pause_ms => 3600001);
SELECT migrate_backfill('bf_users', 'counter = 1', max_replica_lag => -1);
-- Temporary objects belong to this session; the worker is another.
CREATE TEMP TABLE bf_temp (id int PRIMARY KEY, v int);
SELECT migrate_backfill('bf_temp', 'v = 1');
CREATE FUNCTION pg_temp.bf_tempf(int) RETURNS int LANGUAGE sql AS $$SELECT $1$$;
SELECT migrate_backfill('bf_users', 'counter = pg_temp.bf_tempf(counter)');
DROP TABLE bf_temp;

-- Another role: it may backfill only what it may update, and sees only
-- its own jobs.
CREATE ROLE bf_carol;
CREATE ROLE bf_nologin;
GRANT UPDATE ON bf_users TO bf_nologin;
-- A role without LOGIN: no worker could connect as it.
SET ROLE bf_nologin;
SELECT migrate_backfill('bf_users', 'counter = 0');
RESET ROLE;
GRANT SELECT ON bf_users TO bf_carol;
SET ROLE bf_carol;
SELECT migrate_backfill('bf_users', 'counter = 0');
SELECT count(*) AS visible_jobs FROM safe_migrate.backfills;
SELECT migrate_backfill_cancel(1);
SELECT * FROM safe_migrate.backfill_jobs;
RESET ROLE;
DROP OWNED BY bf_carol;
DROP ROLE bf_carol;
DROP OWNED BY bf_nologin;
DROP ROLE bf_nologin;

-- Batched deletes (migrate_delete): the same walk by key, DELETE instead
-- of UPDATE; every matching row gone, every other row kept.
CREATE TABLE bf_events (id bigint PRIMARY KEY, kind text NOT NULL, payload text);
INSERT INTO bf_events SELECT g, CASE WHEN g % 3 = 0 THEN 'debug' ELSE 'audit' END, 'p' || g
  FROM generate_series(1, 12000) g;
SELECT migrate_delete('bf_events', $$kind = 'debug'$$, batch_size => 700) AS job \gset
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT operation, status, rows_done, rows_examined, set_clause, where_clause
  FROM safe_migrate.backfills WHERE id = :job;
SELECT kind, count(*), min(id), max(id) FROM bf_events GROUP BY kind ORDER BY kind;
-- No condition: every row, in batches.
SELECT migrate_delete('bf_events', NULL, batch_size => 5000) AS job \gset
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT operation, rows_done, where_clause IS NULL AS every_row FROM safe_migrate.backfills WHERE id = :job;
SELECT count(*) AS left_over FROM bf_events;
-- The condition is one expression, checked as the submitter means it.
SELECT migrate_delete('bf_events', 'true; DROP TABLE bf_users');
SELECT migrate_delete('bf_events', 'id = 1) OR (true');
SELECT migrate_delete('bf_events', 'no_such_column = 1');
SELECT migrate_delete('bf_events', 'id IN (SELECT id FROM bf_events) ORDER BY 1');
SELECT migrate_delete(NULL, 'true');
CREATE FUNCTION pg_temp.bf_tempd(bigint) RETURNS bool LANGUAGE sql AS $$SELECT true$$;
SELECT migrate_delete('bf_events', 'pg_temp.bf_tempd(id)');
-- A role may delete in batches only what it may delete.
CREATE ROLE bf_dave LOGIN;
GRANT SELECT, UPDATE ON bf_events TO bf_dave;
SET ROLE bf_dave;
SELECT migrate_delete('bf_events', 'id > 0');
RESET ROLE;
-- The job's worker holds the submitter's rights and no more: row-level
-- security applies to its batches (only the rows the policy lets it see
-- go), and a privilege revoked after submitting fails the job.
INSERT INTO bf_events SELECT g, CASE WHEN g <= 300 THEN 'dave' ELSE 'other' END, NULL
  FROM generate_series(1, 600) g;
GRANT DELETE ON bf_events TO bf_dave;
ALTER TABLE bf_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY bf_dave_own ON bf_events TO bf_dave USING (kind = 'dave');
SET ROLE bf_dave;
SELECT migrate_delete('bf_events', NULL, batch_size => 100) AS job \gset
RESET ROLE;
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT rows_done FROM safe_migrate.backfills WHERE id = :job;
SELECT kind, count(*) FROM bf_events GROUP BY kind ORDER BY kind;
INSERT INTO bf_events SELECT g, 'dave', NULL FROM generate_series(1001, 1050) g;
BEGIN;
SET LOCAL ROLE bf_dave;
SELECT migrate_delete('bf_events', NULL) AS job \gset
SELECT migrate_backfill_pause(:job);
COMMIT;
REVOKE DELETE ON bf_events FROM bf_dave;
SELECT migrate_backfill_resume(:job);
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT status, last_sqlstate, rows_done FROM safe_migrate.backfills WHERE id = :job;
SELECT count(*) AS still_there FROM bf_events;
ALTER TABLE bf_events DISABLE ROW LEVEL SECURITY;
DROP OWNED BY bf_dave;
DROP ROLE bf_dave;
-- Float keys whose owner prints floats rounded (extra_float_digits = 0,
-- a role setting the worker inherits): the keys still travel exactly, every
-- row once, and the walk ends.
CREATE ROLE bf_erin LOGIN;
ALTER ROLE bf_erin SET extra_float_digits = 0;
CREATE TABLE bf_floats (k float8 PRIMARY KEY, n int);
INSERT INTO bf_floats SELECT 1 + g * 2 ^ -52, NULL FROM generate_series(1, 2000) g;
GRANT SELECT, UPDATE ON bf_floats TO bf_erin;
SET ROLE bf_erin;
SELECT migrate_backfill('bf_floats', 'n = coalesce(n, 0) + 1', batch_size => 50) AS job \gset
RESET ROLE;
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT status, rows_done, batches <= 41 AS batches_as_expected FROM safe_migrate.backfills WHERE id = :job;
SELECT n, count(*) FROM bf_floats GROUP BY n ORDER BY n;
DROP OWNED BY bf_erin;
DROP ROLE bf_erin;
-- Date keys whose owner's DateStyle changes while the job is paused (a role
-- setting the next worker picks up): the keys are kept in ISO, which every
-- DateStyle reads back alike (in "SQL, DMY" 21/01/2020 would be read by a
-- worker in MDY as month 21, or 10/01/2020 as October 1: rows skipped or
-- walked twice).  Every row once.
CREATE ROLE bf_fay LOGIN;
ALTER ROLE bf_fay SET DateStyle = 'SQL, DMY';
CREATE TABLE bf_dates (k timestamp PRIMARY KEY, n int);
INSERT INTO bf_dates SELECT timestamp '2020-01-01' + g * interval '1 day', NULL
  FROM generate_series(0, 399) g;
GRANT SELECT, UPDATE ON bf_dates TO bf_fay;
CREATE FUNCTION pg_temp.bf_rows_done(job bigint, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WHILE (SELECT rows_done FROM safe_migrate.backfills WHERE id = job) < n LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SET ROLE bf_fay;
SELECT migrate_backfill('bf_dates', 'n = coalesce(n, 0) + 1', batch_size => 10,
                        max_rows_per_second => 100) AS job \gset
RESET ROLE;
SELECT pg_temp.bf_rows_done(:job, 30);
SELECT migrate_backfill_pause(:job);
ALTER ROLE bf_fay SET DateStyle = 'ISO, MDY';
SELECT migrate_backfill_resume(:job);
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT status, rows_done FROM safe_migrate.backfills WHERE id = :job;
SELECT n, count(*) FROM bf_dates GROUP BY n ORDER BY n;
DROP OWNED BY bf_fay;
DROP ROLE bf_fay;
-- Per-job settings: latency_budget and vacuum, given, are the job's; null
-- (or left out) takes the session's settings; a budget out of range is
-- refused.
CREATE TABLE bf_knobs (id int PRIMARY KEY, n int);
INSERT INTO bf_knobs SELECT g, 0 FROM generate_series(1, 300) g;
SELECT migrate_backfill('bf_knobs', 'n = 1', latency_budget => -1);
SELECT migrate_backfill('bf_knobs', 'n = 1', latency_budget => 'NaN');
SELECT migrate_delete('bf_knobs', 'id > 1000', latency_budget => 10001);
SET safe_migrate.backfill_latency_budget = 1.5;
SET safe_migrate.backfill_vacuum = on;
SELECT migrate_backfill('bf_knobs', 'n = 1') AS job1 \gset
SELECT migrate_backfill('bf_knobs', 'n = 2', latency_budget => 4, vacuum => false) AS job2 \gset
SELECT migrate_delete('bf_knobs', 'id > 1000', NULL, latency_budget => 0, vacuum => NULL) AS job3 \gset
-- eager (a job someone waits for, online execution's): recorded, null is false
SELECT migrate_backfill('bf_knobs', 'n = 3', eager => true) AS job4 \gset
SELECT migrate_delete('bf_knobs', 'id > 1000', eager => NULL) AS job5 \gset
RESET safe_migrate.backfill_latency_budget;
RESET safe_migrate.backfill_vacuum;
SELECT migrate_backfill_wait(:job1, '2 minutes'), migrate_backfill_wait(:job2, '2 minutes'),
       migrate_backfill_wait(:job3, '2 minutes'), migrate_backfill_wait(:job4, '2 minutes'),
       migrate_backfill_wait(:job5, '2 minutes');
SELECT id = :job1 AS first, operation, latency_budget_ms, vacuum, eager
  FROM safe_migrate.backfill_jobs WHERE id IN (:job1, :job2, :job3, :job4, :job5) ORDER BY id;
SELECT eager, status FROM safe_migrate.backfills WHERE id = :job4;
-- migrate_vacuum: a job of no batches, the vacuum alone, as its submitter,
-- of a table the submitter owns (VACUUM's rule); not of a view, a
-- temporary table, or a table of another owner.
CREATE ROLE bf_gus LOGIN;
CREATE TABLE bf_gus_t (id int PRIMARY KEY, n int);
ALTER TABLE bf_gus_t OWNER TO bf_gus;
INSERT INTO bf_gus_t SELECT g, 0 FROM generate_series(1, 2000) g;
UPDATE bf_gus_t SET n = 1;
GRANT SELECT, UPDATE ON bf_knobs TO bf_gus;
CREATE VIEW bf_knobs_v AS SELECT * FROM bf_knobs;
SET ROLE bf_gus;
CREATE TEMP TABLE bf_temp_v (id int);
SELECT migrate_vacuum('bf_knobs');
SELECT migrate_vacuum('bf_knobs_v');
SELECT migrate_vacuum('bf_temp_v');
SELECT migrate_vacuum(NULL);
SELECT migrate_vacuum('bf_gus_t') AS job \gset
RESET ROLE;
SELECT migrate_backfill_wait(:job, '2 minutes');
SELECT operation, status, rows_done, batches, set_clause, where_clause, last_error,
       vacuumed_at IS NOT NULL AS vacuumed, submitted_by
  FROM safe_migrate.backfills WHERE id = :job;
SELECT key_columns, key_operators FROM safe_migrate.backfill_jobs WHERE id = :job;
SELECT n_dead_tup, vacuum_count > 0 AS vacuumed, analyze_count > 0 AS analyzed
  FROM pg_stat_user_tables WHERE relid = 'bf_gus_t'::regclass;
-- a table dropped before its vacuum job starts: the job fails, saying so
CREATE TABLE bf_gus_gone (id int PRIMARY KEY);
ALTER TABLE bf_gus_gone OWNER TO bf_gus;
BEGIN;
SET LOCAL ROLE bf_gus;
SELECT migrate_vacuum('bf_gus_gone') AS job \gset
RESET ROLE;
SET LOCAL safe_migrate.policy = off;
DROP TABLE bf_gus_gone;
COMMIT;
RESET ROLE;
CREATE FUNCTION pg_temp.bf_settled(job bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  WHILE (SELECT status FROM safe_migrate.backfills WHERE id = job) IN ('queued', 'running') LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN (SELECT status FROM safe_migrate.backfills WHERE id = job);
END $$;
SELECT pg_temp.bf_settled(:job);
SELECT operation, status, vacuumed_at IS NOT NULL AS vacuumed, last_error, last_sqlstate
  FROM safe_migrate.backfills WHERE id = :job;
-- a partitioned table: refused (by OID, VACUUM would only analyze the
-- parent); the hint queues its partitions, which are vacuumed
CREATE TABLE bf_parted (id int, v int) PARTITION BY RANGE (id);
CREATE TABLE bf_parted_1 PARTITION OF bf_parted FOR VALUES FROM (0) TO (1000);
CREATE TABLE bf_parted_2 PARTITION OF bf_parted FOR VALUES FROM (1000) TO (2000);
INSERT INTO bf_parted SELECT g, 0 FROM generate_series(0, 1999) g;
SELECT migrate_vacuum('bf_parted');
SELECT migrate_vacuum('bf_parted_1') AS j1, migrate_vacuum('bf_parted_2') AS j2 \gset
SELECT migrate_backfill_wait(:j1, '2 minutes'), migrate_backfill_wait(:j2, '2 minutes');
CREATE FUNCTION pg_temp.bf_vacuumed(rel text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  FOR i IN 1 .. 1000 LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT vacuum_count INTO n FROM pg_stat_user_tables WHERE relname = rel;
    EXIT WHEN n > 0;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN n;
END $$;
SELECT pg_temp.bf_vacuumed('bf_parted_1') > 0 AS first_vacuumed, pg_temp.bf_vacuumed('bf_parted_2') > 0 AS second_vacuumed;
SET safe_migrate.policy = off;
DROP TABLE bf_parted;
DROP VIEW bf_knobs_v;
DROP TABLE bf_knobs;
DROP OWNED BY bf_gus;
DROP ROLE bf_gus;
RESET safe_migrate.policy;
