/**
 * What every run records about where it ran, and the Postgres reference:
 * `pgbench -N` (the TPC-B-like script without the branch/teller updates:
 * three single-row writes and a select per transaction, each transaction a
 * commit) with 8 clients against the same server, measured before the
 * workloads. On a machine whose disk and CPUs are shared, that commit rate is
 * the ceiling a Postgres-backed engine works under; the workloads are
 * reported as a ratio of it.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { PG_URL, REDIS_URL, ROOT } from './cluster.js';

const run = promisify(execFile);

export const PGBENCH_DB = 'baton_bench_pgbench';

export interface MachineInfo {
  at: string;
  hostname: string;
  os: string;
  cpus: { count: number; model: string };
  memoryGb: number;
  node: string;
  postgres: string;
  redis: string;
  git: { commit: string; dirty: boolean; dirtyFiles: number };
  loadavgBefore: number[];
  otherBenchesAtStart: string[];
}

async function git(args: string[]): Promise<string> {
  try {
    return (await run('git', args, { cwd: ROOT })).stdout.trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Other benchmark processes running on this machine right now (another
 * `bench/run.ts`, `bench/throughput.ts`, …): their load skews every figure,
 * so the run records them.
 */
export function otherBenches(): string[] {
  const mine = new Set([process.pid, process.ppid]);
  const out: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || mine.has(Number(d))) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (/^\S*node\b.*bench\/(run|throughput|timers|multi-instance|sandbox)\.ts/.test(cmd)) out.push(`${d}: ${cmd.slice(cmd.indexOf('bench/'))}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export async function machineInfo(): Promise<MachineInfo> {
  const c = new pg.Client({ connectionString: PG_URL });
  c.on('error', () => undefined);
  await c.connect();
  const pgVersion = (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]!.v;
  await c.end();
  const r = new Redis(REDIS_URL);
  const info = await r.info('server');
  r.disconnect();
  const status = await git(['status', '--porcelain']);
  const cpus = os.cpus();
  return {
    at: new Date().toISOString(),
    hostname: os.hostname(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: { count: cpus.length, model: cpus[0]?.model ?? 'unknown' },
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    postgres: pgVersion,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    git: { commit: await git(['rev-parse', 'HEAD']), dirty: status !== '' && status !== 'unknown', dirtyFiles: status && status !== 'unknown' ? status.split('\n').length : 0 },
    loadavgBefore: os.loadavg().map((x) => Math.round(x * 100) / 100),
    otherBenchesAtStart: otherBenches(),
  };
}

function pgbenchBin(): string {
  for (const p of [process.env.PGBENCH, '/usr/lib/postgresql/15/bin/pgbench']) if (p && existsSync(p)) return p;
  return 'pgbench';
}

export interface PgbenchResult {
  command: string;
  clients: number;
  seconds: number;
  tps: number;
  latencyAvgMs: number | null;
  transactions: number | null;
}

export async function pgbench(seconds: number, clients = 8, threads = 2): Promise<PgbenchResult> {
  const u = new URL(PG_URL);
  const conn = ['-h', decodeURIComponent(u.hostname), '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres')];
  const c = new pg.Client({ connectionString: PG_URL });
  c.on('error', () => undefined);
  await c.connect();
  const exists = await c.query('select 1 from pg_database where datname = $1', [PGBENCH_DB]);
  if (exists.rowCount === 0) await c.query(`create database ${PGBENCH_DB}`);
  await c.end();
  const bin = pgbenchBin();
  const env = { ...process.env, ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}) };
  // -i recreates the pgbench tables (scale 1) so every run starts from the same data.
  await run(bin, ['-i', '-q', '-s', '1', ...conn, PGBENCH_DB], { env, timeout: 120_000 });
  const args = ['-N', '-c', String(clients), '-j', String(threads), '-T', String(seconds), ...conn, PGBENCH_DB];
  const out = await run(bin, args, { env, timeout: (seconds + 60) * 1000 });
  const text = out.stdout;
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(text) ?? /tps = ([\d.]+)/.exec(text);
  if (!tps) throw new Error(`pgbench: no tps in its output:\n${text}\n${out.stderr}`);
  return {
    command: `pgbench ${args.join(' ')}`,
    clients,
    seconds,
    tps: Math.round(Number(tps[1])),
    latencyAvgMs: Number(/latency average = ([\d.]+) ms/.exec(text)?.[1] ?? NaN) || null,
    transactions: Number(/number of transactions actually processed: (\d+)/.exec(text)?.[1] ?? NaN) || null,
  };
}
