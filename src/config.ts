/**
 * The only reader of process.env. Everything else receives a frozen Config.
 *
 * Mode is decided by the environment: with DATABASE_URL and REDIS_URL set, Baton
 * runs distributed (real Postgres, BullMQ on Redis); with neither, embedded
 * (PGlite in BATON_DATA_DIR, in-process queue). Setting only one of them is a
 * mistake we refuse at start-up rather than guess about.
 */
import { BatonError } from './errors.js';

export type Mode = 'embedded' | 'distributed';

export interface Config {
  mode: Mode;
  databaseUrl: string | null;
  redisUrl: string | null;
  /** embedded mode: where PGlite keeps its files */
  dataDir: string;
  host: string;
  port: number;
  healthPort: number;
  logLevel: string;
  queuePrefix: string;
  stepConcurrency: number;
  serviceConcurrency: number;
  migrateOnStart: boolean;
  /** deploy the example model at start-up (embedded default: yes) */
  deployExamples: boolean;
  /** scheduler: how old an unprocessed inbox row must be before the sweep re-rings it */
  sweepAfterMs: number;
  sweepIntervalMs: number;
  /** sandbox limits for scripts and expressions */
  scriptTimeoutMs: number;
  scriptMemoryMb: number;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new BatonError('invalid_config', `${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new BatonError('invalid_config', `${name} must be true or false, got "${raw}"`);
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const databaseUrl = env.DATABASE_URL || null;
  const redisUrl = env.REDIS_URL || null;
  if ((databaseUrl === null) !== (redisUrl === null)) {
    throw new BatonError(
      'invalid_config',
      'set both DATABASE_URL and REDIS_URL (distributed mode) or neither (embedded mode)',
    );
  }
  const mode: Mode = databaseUrl ? 'distributed' : 'embedded';
  return Object.freeze({
    mode,
    databaseUrl,
    redisUrl,
    dataDir: env.BATON_DATA_DIR || './.baton',
    host: env.HOST || (mode === 'embedded' ? '127.0.0.1' : '0.0.0.0'),
    port: int(env, 'PORT', 3000),
    healthPort: int(env, 'HEALTH_PORT', 8081),
    logLevel: env.LOG_LEVEL || 'info',
    queuePrefix: env.BATON_QUEUE_PREFIX || 'baton',
    stepConcurrency: int(env, 'STEP_CONCURRENCY', 8, 1),
    serviceConcurrency: int(env, 'SERVICE_CONCURRENCY', 8, 1),
    migrateOnStart: bool(env, 'MIGRATE_ON_START', true),
    deployExamples: bool(env, 'BATON_EXAMPLES', mode === 'embedded'),
    sweepAfterMs: int(env, 'SWEEP_AFTER_MS', 5000, 0),
    sweepIntervalMs: int(env, 'SWEEP_INTERVAL_MS', 2000, 10),
    scriptTimeoutMs: int(env, 'SCRIPT_TIMEOUT_MS', 1000, 1),
    scriptMemoryMb: int(env, 'SCRIPT_MEMORY_MB', 64, 8),
  });
}
