/**
 * Entry point: every role in one process. With no DATABASE_URL/REDIS_URL this is
 * the embedded mode (PGlite in BATON_DATA_DIR, in-process queue); with both set,
 * one process of each role against real Postgres and Redis.
 */
import { loadConfig } from '../src/config.js';
import { ALL_ROLES, runMain } from '../src/boot.js';

await runMain(loadConfig(), ALL_ROLES);
