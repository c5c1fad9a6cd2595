// A knex migration that hands its SQL to safe_migrate.  migrate_apply commits
// its own transactions (and refuses to run inside one): no knex transaction.
const SCRIPT = `
-- migrate:up
CREATE TABLE knex_users (id bigint PRIMARY KEY, first_name text, last_name text);
ALTER TABLE knex_users ADD COLUMN full_name text;
CREATE INDEX CONCURRENTLY knex_users_full_name ON knex_users (full_name);
-- migrate:down
DROP INDEX CONCURRENTLY knex_users_full_name;
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
DROP TABLE knex_users;
`;

exports.config = { transaction: false };

exports.up = async (knex) => {
  await knex.raw('SELECT * FROM migrate_apply(?, ?, ?)', [SCRIPT, 'knex-0001', 'users with full_name']);
};

exports.down = async (knex) => {
  await knex.raw('SELECT * FROM migrate_rollback()');
};
