/**
 * Baton processes for the benchmarks: an isolated Postgres schema and BullMQ
 * prefix per workload (as test/support/env.ts does for tests), the roles
 * spawned as separate Node processes the way they run in production
 * (`node --no-node-snapshot --import tsx workers/<role>.ts`), their memory
 * read from /proc, and the Postgres write counters of the schema.
 *
 * Every process spawned here is killed when the harness exits, however it
 * exits (normal end, exception, SIGINT/SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { sleep } from './util.js';

export const PG_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// ---- process bookkeeping ----------------------------------------------------

const live = new Set<ChildProcess>();
const cleanups = new Set<() => Promise<void>>();

/** Descendants of a pid (the step worker's sandbox process, …), from /proc. */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent pid; the command name (2) may hold spaces, so split after ')'.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(d), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parentOf) if (parent === p) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  const kids = descendants(child.pid);
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
  if (signal === 'SIGKILL') {
    for (const k of kids) {
      try {
        process.kill(k, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

process.on('exit', () => {
  for (const c of live) killTree(c, 'SIGKILL');
});
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${sig}: stopping Baton processes and dropping bench schemas…`);
    for (const c of live) killTree(c, 'SIGKILL');
    const done = Promise.allSettled([...cleanups].map((f) => f()));
    const force = setTimeout(() => process.exit(130), 5000);
    void done.then(() => {
      clearTimeout(force);
      process.exit(130);
    });
  });
}

export interface Proc {
  role: string;
  child: ChildProcess;
  pid: number;
  output: string[];
  healthPort: number | null;
}

export function spawnRole(role: 'api' | 'step-worker' | 'service-worker' | 'scheduler', env: Record<string, string>, name: string = role): Proc {
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), '--no-node-snapshot', '--import', 'tsx', `workers/${role}.ts`], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const output: string[] = [];
  const keep = (d: Buffer) => {
    output.push(d.toString());
    if (output.length > 100) output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { role: name, child, pid: child.pid!, output, healthPort: env.HEALTH_PORT ? Number(env.HEALTH_PORT) : null };
}

export async function stopProcs(procs: Proc[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill('SIGTERM');
          setTimeout(() => killTree(p.child, 'SIGKILL'), 10_000).unref();
        }),
    ),
  );
}

// ---- memory -------------------------------------------------------------------

export interface Rss {
  role: string;
  pid: number;
  /** resident set now and its peak (VmHWM), MB */
  rssMb: number;
  peakMb: number;
  /** the same for its child processes (the step worker's script sandbox), MB */
  childrenRssMb: number;
  childrenPeakMb: number;
}

function status(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

export function rssOf(procs: Proc[]): Rss[] {
  return procs.map((p) => {
    const own = status(p.pid);
    let crss = 0;
    let chwm = 0;
    for (const k of descendants(p.pid)) {
      const s = status(k);
      if (Number.isFinite(s.rss)) {
        crss += s.rss;
        chwm += s.hwm;
      }
    }
    const r1 = (n: number) => Math.round(n * 10) / 10;
    return { role: p.role, pid: p.pid, rssMb: r1(own.rss), peakMb: r1(own.hwm), childrenRssMb: r1(crss), childrenPeakMb: r1(chwm) };
  });
}

export function selfRss(role = 'load generator (this process)'): Rss {
  const s = status(process.pid);
  return { role, pid: process.pid, rssMb: Math.round(s.rss * 10) / 10, peakMb: Math.round(s.hwm * 10) / 10, childrenRssMb: 0, childrenPeakMb: 0 };
}

// ---- isolation ----------------------------------------------------------------

export interface Isolation {
  schema: string;
  prefix: string;
  /** DATABASE_URL that puts the schema first on the search_path, as the multi-process test does */
  dbUrl: string;
  /** the harness's own queries (a pool: it reconnects if Postgres drops a connection) */
  pg: pg.Pool;
  drop(): Promise<void>;
}

const SCHEMA_PATTERN = /^bench_[a-z]+_(\d+)_[0-9a-f]{6}$/;

async function dropSchemaAndKeys(schema: string, prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end().catch(() => undefined);
  }
  const r = new Redis(REDIS_URL);
  r.on('error', () => undefined);
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
}

/**
 * Schemas (and queue keys) a harness left behind when it was killed outright
 * (SIGKILL, Postgres restarted under it): the name carries the harness's pid;
 * only those whose process is gone are dropped.
 */
export async function dropStale(): Promise<string[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  c.on('error', () => undefined);
  await c.connect();
  const rows = await c.query<{ nspname: string }>(`select nspname from pg_namespace where nspname like 'bench\\_%'`);
  await c.end();
  const dropped: string[] = [];
  for (const { nspname } of rows.rows) {
    const m = SCHEMA_PATTERN.exec(nspname);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    await dropSchemaAndKeys(nspname, `bt_${nspname}`);
    dropped.push(nspname);
  }
  return dropped;
}

export async function isolate(name: string): Promise<Isolation> {
  const schema = `bench_${name}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const prefix = `bt_${schema}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  // An idle connection that Postgres terminates (a restart, pg_terminate_backend)
  // must not take the harness down; the next query gets a new connection.
  pool.on('error', (err) => process.stderr.write(` [harness pg connection lost: ${err.message}]`));
  await pool.query(`create schema if not exists ${schema}`);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    cleanups.delete(drop);
    await pool.end().catch(() => undefined);
    await dropSchemaAndKeys(schema, prefix);
  };
  cleanups.add(drop);
  return { schema, prefix, dbUrl: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, pg: pool, drop };
}

/** Drops every isolation still open (after an uncaught error). */
export async function dropAll(): Promise<void> {
  await Promise.allSettled([...cleanups].map((f) => f()));
}

/** Kills every process still running (after an uncaught error). */
export function killAll(): void {
  for (const c of live) killTree(c, 'SIGKILL');
}

// ---- a cluster: API + step workers (+ schedulers) ---------------------------------

export interface Cluster {
  iso: Isolation;
  base: string;
  procs: Proc[];
  stop(): Promise<void>;
}

/** A port nobody listens on right now: the kernel picks it (listen on 0), we release it for the child. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(p: Proc, url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new Error(`${p.role} exited (${p.child.exitCode ?? p.child.signalCode}): ${p.output.join('').slice(-2000)}`);
    }
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${p.role} not ready after ${timeoutMs} ms: ${p.output.join('').slice(-2000)}`);
    await sleep(100);
  }
}

export async function startCluster(
  iso: Isolation,
  opts: { stepWorkers?: number; schedulers?: number; serviceWorkers?: number; env?: Record<string, string> } = {},
): Promise<Cluster> {
  const port = await freePort();
  const env: Record<string, string> = {
    DATABASE_URL: iso.dbUrl,
    REDIS_URL,
    BATON_QUEUE_PREFIX: iso.prefix,
    LOG_LEVEL: 'warn',
    BATON_EXAMPLES: 'false',
    HOST: '127.0.0.1',
    PORT: String(port),
    HEALTH_PORT: '0',
    ...opts.env,
  };
  // The API migrates the fresh schema; the other roles start once it is ready.
  const api = spawnRole('api', env);
  const procs: Proc[] = [api];
  const stop = () => stopProcs(procs);
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitReady(api, `${base}/ready`);
    const more: Array<[Parameters<typeof spawnRole>[0], string]> = [];
    for (let i = 0; i < (opts.stepWorkers ?? 2); i++) more.push(['step-worker', `step-worker ${i + 1}`]);
    for (let i = 0; i < (opts.serviceWorkers ?? 0); i++) more.push(['service-worker', `service-worker ${i + 1}`]);
    for (let i = 0; i < (opts.schedulers ?? 0); i++) more.push(['scheduler', `scheduler ${i + 1}`]);
    const started: Proc[] = [];
    for (const [role, name] of more) {
      const hp = await freePort();
      started.push(spawnRole(role, { ...env, MIGRATE_ON_START: 'false', HEALTH_PORT: String(hp) }, name));
    }
    procs.push(...started);
    await Promise.all(started.map((p) => waitReady(p, `http://127.0.0.1:${p.healthPort}/ready`)));
    return { iso, base, procs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---- what Postgres wrote ------------------------------------------------------------

export interface PgWrites {
  rowsInserted: number;
  rowsUpdated: number;
  rowsDeleted: number;
  /** table + index + TOAST bytes of the schema's tables at the end (what is retained, not WAL) */
  bytesRetained: number;
  /** WAL bytes the whole server wrote in the window: an upper bound, other databases' load included */
  walBytesServer: number;
  /** per table: rows inserted / updated / deleted, bytes retained */
  tables: Record<string, { ins: number; upd: number; del: number; bytes: number }>;
}

export async function walLsn(client: pg.Pool | pg.Client): Promise<string> {
  return (await client.query<{ l: string }>('select pg_current_wal_lsn()::text as l')).rows[0]!.l;
}

/**
 * Row counters of the schema's tables (pg_stat_user_tables). Backends report
 * them when they go idle at most once a second, and always when they exit:
 * read this after the Baton processes have stopped.
 */
export async function pgWrites(client: pg.Pool | pg.Client, schema: string, lsnBefore: string): Promise<PgWrites> {
  const t = await client.query<{ relname: string; ins: string; upd: string; del: string; bytes: string }>(
    `select relname, n_tup_ins as ins, n_tup_upd as upd, n_tup_del as del, pg_total_relation_size(relid) as bytes
       from pg_stat_user_tables where schemaname = $1 and relname not like 'kysely_%'`,
    [schema],
  );
  const w = await client.query<{ d: string }>('select pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) as d', [lsnBefore]);
  const tables: PgWrites['tables'] = {};
  const sum = { ins: 0, upd: 0, del: 0, bytes: 0 };
  for (const r of t.rows) {
    const x = { ins: Number(r.ins), upd: Number(r.upd), del: Number(r.del), bytes: Number(r.bytes) };
    if (x.ins || x.upd || x.del) tables[r.relname] = x;
    sum.ins += x.ins;
    sum.upd += x.upd;
    sum.del += x.del;
    sum.bytes += x.bytes;
  }
  return { rowsInserted: sum.ins, rowsUpdated: sum.upd, rowsDeleted: sum.del, bytesRetained: sum.bytes, walBytesServer: Number(w.rows[0]!.d), tables };
}

/**
 * A benchmark run that dies (an uncaught error, a rejected promise: a Postgres
 * restart, any surprise) still saves what it measured and leaves no process
 * or schema behind: `onCrash` records and saves, then every child is killed,
 * every schema dropped, and the process exits 2.
 */
export function cleanUpOnCrash(onCrash: (what: string, err: unknown) => void): void {
  const die = (what: string) => (err: unknown) => {
    onCrash(what, err);
    killAll();
    void dropAll().finally(() => process.exit(2));
  };
  process.on('uncaughtException', die('uncaughtException'));
  process.on('unhandledRejection', die('unhandledRejection'));
}
