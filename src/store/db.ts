/**
 * Opening the database, in either mode, and running migrations.
 *
 * Both modes give the same `Kysely<Database>`; repositories never know which
 * one they talk to.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { Kysely, Migrator, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { migrations } from '../../migrations/index.js';
import { PGliteDialect } from './pglite-dialect.js';
import { preparingPool } from './prepared.js';
import type { Database } from './schema.js';
import { BatonError } from '../errors.js';

export type Db = Kysely<Database>;
/** A repository function takes either the database or a transaction. */
export type Executor = Kysely<Database> | Transaction<Database>;

export interface OpenedDb {
  db: Db;
  /** the embedded engine, when there is one (for LISTEN/NOTIFY or diagnostics) */
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

// int8 (bigint identity ids, count(*)) arrives as a string from node-postgres and
// as a number from PGlite. Our ids and counts stay far below 2^53, so read them
// as numbers in both modes.
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export interface PostgresOptions {
  url: string;
  /** isolate the tables in their own schema (tests); created when missing */
  schema?: string;
  max?: number;
  /** name repeated statements so Postgres parses and plans them once per connection (default true) */
  prepare?: boolean;
}

export async function openPostgres(options: PostgresOptions): Promise<OpenedDb> {
  if (options.schema !== undefined) {
    if (!/^[a-z_][a-z0-9_]*$/.test(options.schema)) {
      throw new BatonError('invalid_config', `bad schema name ${options.schema}`);
    }
    const admin = new pg.Client({ connectionString: options.url });
    admin.on('error', () => {}); // a restart mid-way fails the query below instead
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${options.schema}`);
    } catch (err) {
      // Two processes creating the schema at once: "if not exists" is not
      // atomic in Postgres, the loser sees a unique violation. Either way the
      // schema now exists.
      const code = (err as { code?: string }).code;
      if (code !== '23505' && code !== '42P06') throw err;
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    types: pgTypes,
    ...(options.schema !== undefined ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // A client that loses its connection (Postgres restarted: 57P01 "terminating
  // connection due to administrator command", or the socket closed) emits
  // 'error'. An idle client's error is re-emitted on the pool; a checked-out
  // client's error (a transaction between two queries) is emitted on the client
  // itself, where pg-pool listens only while it is idle. Without a listener in
  // both places the process crashes. Nothing is lost by ignoring them: the query
  // in flight (or the next one) on that client fails, the transaction rolls
  // back, pg-pool discards the broken client on release, and the next checkout
  // connects afresh.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  const prepare = options.prepare ?? true;
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: prepare ? preparingPool(pool) : pool }) });
  let closed = false;
  return {
    db,
    kind: 'postgres',
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

/**
 * Errors that mean "Postgres is not reachable right now" (restarting, failing
 * over, the network hiccuping), as opposed to a wrong query or bad data: the
 * same work can simply be tried again once it is back.
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now
  // (starting up / shutting down); class 08: connection exceptions.
  if (/^(57P0[123]|08...)$/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message);
}

export async function openPglite(dataDir: string | null): Promise<OpenedDb> {
  let pglite: PGlite;
  if (dataDir === null) {
    pglite = await PGlite.create();
  } else {
    // PGlite writes its files world-readable and -writable (0666) whatever the
    // umask: only a directory closed to group and others keeps the data, and
    // any secrets in it, to this user (security review C2); closed also when
    // it already existed.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    pglite = await PGlite.create({ dataDir });
  }
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  let closed = false;
  return {
    db,
    kind: 'pglite',
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

/**
 * Brings the schema to the latest migration. Safe to call from many processes
 * at once: Kysely's Postgres adapter serialises migrators with a session-level
 * advisory lock (pg_advisory_lock), and each migration runs in a transaction.
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  // Name the schema of Kysely's own bookkeeping tables explicitly: without it,
  // Kysely's "does the table exist" check matches a table of that name in ANY
  // schema, so a second Baton schema in the same database (tests, or several
  // deployments sharing one database) would skip creating its own.
  const schema = await sql<{ s: string }>`select current_schema() as s`.execute(db);
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: schema.rows[0]!.s,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    throw new BatonError('migration_failed', `migration failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
