// node migrate.js [latest|rollback]: knex's migrator, safe_migrate underneath.
// Connection from the environment (PGHOST, PGPORT, PGDATABASE, PGUSER).
const knex = require('knex')({
  client: 'pg',
  connection: {},
  migrations: { directory: `${__dirname}/migrations` },
});

(async () => {
  const action = process.argv[2] || 'latest';
  const [, log] = await (action === 'rollback' ? knex.migrate.rollback() : knex.migrate.latest());
  console.log(`${action}: ${log.length ? log.join(', ') : 'nothing to do'}`);
  await knex.destroy();
})().catch(async (err) => {
  console.error(err.message);
  await knex.destroy();
  process.exit(1);
});
