-- migrate_verify: the caller's list against the history.
SELECT migrate_checksum('CREATE TABLE v (id int);') =
       (SELECT checksum FROM migrate_apply('CREATE TABLE v_verify (id int);', 'verify-1'))
       AS same_as_a_different_script;
SELECT migrate_checksum('CREATE TABLE v_verify (id int);') =
       (SELECT checksum FROM safe_migrate.history WHERE version = 'verify-1') AS same_checksum;
SELECT migrate_checksum(E'CREATE TABLE v_verify (id int);\r\n') =
       migrate_checksum('CREATE TABLE v_verify (id int);') AS line_ends_do_not_matter;
-- Build the list as a deploy tool would: everything applied, then change it.
CREATE TEMP TABLE deployed AS
SELECT version, checksum FROM safe_migrate.history WHERE status = 'applied';
SELECT count(*) AS problems FROM migrate_verify((SELECT jsonb_agg(jsonb_build_object('version', version, 'checksum', checksum)) FROM deployed));
UPDATE deployed SET checksum = repeat('0', 64) WHERE version = 'verify-1';
DELETE FROM deployed WHERE version = '0001';
INSERT INTO deployed VALUES ('9999', NULL);
SELECT version, problem, left(expected_checksum, 8) AS expected, left(applied_checksum, 8) AS applied
  FROM migrate_verify((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('version', version, 'checksum', checksum))) FROM deployed));
-- Bad input.
SELECT * FROM migrate_verify(NULL);
SELECT * FROM migrate_verify('{"version": "1"}');
SELECT * FROM migrate_verify('[{"checksum": "x"}]');
SELECT * FROM migrate_verify('[]') LIMIT 3;
SELECT migrate_checksum(E'-- migrate:donw\nSELECT 1;');
