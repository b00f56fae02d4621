/**
 * Integration tests talk to the real Postgres and Redis of the machine. Each
 * test file isolates itself: its own Postgres schema and its own BullMQ key
 * prefix, both dropped at the end, so files run in parallel.
 *
 * If Postgres or Redis is unreachable the tests FAIL (connection errors), they
 * never skip: `.ci/run` starts both services before running the suite.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { startBaton, type Baton, type Role } from '../../src/boot.js';

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export interface Isolation {
  schema: string;
  prefix: string;
  env: Record<string, string>;
  config(overrides?: Record<string, string>): Readonly<Config>;
  drop(): Promise<void>;
}

/** A fresh schema + queue prefix for one test file. */
export function isolation(name: string): Isolation {
  const schema = uniqueName(`t_${name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}`);
  const prefix = `bt_${schema}`;
  const env: Record<string, string> = {
    DATABASE_URL: PG_URL,
    REDIS_URL,
    BATON_QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    BATON_EXAMPLES: 'false',
    SWEEP_AFTER_MS: '1000',
    SWEEP_INTERVAL_MS: '200',
    HEALTH_PORT: '0',
    PORT: '0',
    HOST: '127.0.0.1',
  };
  return {
    schema,
    prefix,
    env,
    config: (overrides = {}) => loadConfig({ ...env, ...overrides }),
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await c.end();
      }
      const r = new Redis(REDIS_URL);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await r.del(...keys);
        } while (cursor !== '0');
      } finally {
        r.disconnect();
      }
    },
  };
}

export const silentLogger = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Starts the given roles in this process against the isolated schema and prefix. */
export async function startDistributed(iso: Isolation, roles: Role[], overrides: Record<string, string> = {}): Promise<Baton> {
  return startBaton(iso.config(overrides), roles, { schema: iso.schema, port: 0, logger: silentLogger(), healthServer: false });
}

/** Embedded mode in memory: PGlite + in-process queue, nothing else. */
export async function startEmbedded(overrides: Record<string, string> = {}): Promise<Baton> {
  const config = loadConfig({ LOG_LEVEL: 'silent', BATON_EXAMPLES: 'false', PORT: '0', SWEEP_AFTER_MS: '1000', SWEEP_INTERVAL_MS: '200', ...overrides });
  return startBaton(config, ['api', 'step', 'service', 'scheduler'], { inMemory: true, port: 0, logger: silentLogger() });
}

/** Polls until `fn` returns a truthy value or the time runs out. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
