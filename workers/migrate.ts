/** Entry point: run migrations and exit (they also run at every start-up, under an advisory lock). */
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { migrateToLatest, openPglite, openPostgres } from '../src/store/db.js';

const config = loadConfig();
const logger = pino({ level: config.logLevel });
const opened = config.mode === 'distributed' ? await openPostgres({ url: config.databaseUrl! }) : await openPglite(`${config.dataDir}/pgdata`);
try {
  const ran = await migrateToLatest(opened.db);
  logger.info({ migrations: ran }, ran.length ? 'migrated' : 'already up to date');
} finally {
  await opened.close();
}
