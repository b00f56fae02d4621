/**
 * The fault suite's infrastructure: a private Redis, a private (throwaway) or
 * the shared Postgres cluster, Baton's roles as child processes, and a
 * watchdog that cleans all of it up if the test process itself dies.
 *
 * Private servers exist so that FLUSHALL and restarts hit only this run: other
 * test files (and other people) use the machine's shared Redis and Postgres at
 * the same time.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PG_BIN = process.env.FAULTS_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A scratch folder for this run: logs, pid file, the private cluster. Readable by the postgres user. */
export function runDir(label: string): string {
  const dir = mkdtempSync(`/tmp/baton-faults-${label}-`);
  try {
    execFileSync('chmod', ['755', dir]);
  } catch {
    /* best effort */
  }
  mkdirSync(join(dir, 'logs'), { recursive: true });
  return dir;
}

// ---- Postgres ---------------------------------------------------------------

export interface PostgresServer {
  kind: 'private' | 'shared';
  /** base URL, without a search_path */
  url: string;
  /** the data folder of a private cluster (for the watchdog) */
  dataDir: string | null;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A throwaway cluster (initdb ≈ 1 s): `initdb` and `pg_ctl` refuse to run as root, so they run as postgres. */
export async function startPrivatePostgres(dir: string): Promise<PostgresServer> {
  const port = await freePort();
  const pgdir = join(dir, 'pg');
  mkdirSync(pgdir);
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(pgdir, uid, gid);
  const data = join(pgdir, 'data');
  const asPg = (cmd: string, args: string[], timeout = 60_000) => run('runuser', ['-u', 'postgres', '--', join(PG_BIN, cmd), ...args], { timeout });
  await asPg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const opts = `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  const start = () => asPg('pg_ctl', ['-D', data, '-o', opts, '-l', join(pgdir, 'log'), '-w', '-t', '60', 'start']);
  await start();
  return {
    kind: 'private',
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir: pgdir,
    async restart() {
      // fast: every backend gets 57P01 (terminating connection due to
      // administrator command), like `pg_ctlcluster … restart`; the pause makes
      // the clients meet ECONNREFUSED for a while too.
      await asPg('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      await sleep(1500);
      await start();
    },
    async stop() {
      await asPg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => {});
    },
  };
}

/** The machine's cluster. Restarting it is what the issue asks of the long form; it disturbs everyone else's tests. */
export function sharedPostgres(url: string): PostgresServer {
  return {
    kind: 'shared',
    url,
    dataDir: null,
    async restart() {
      await run('pg_ctlcluster', ['--skip-systemctl-redirect', '15', 'main', 'restart'], { timeout: 120_000 });
    },
    async stop() {},
  };
}

// ---- Redis ----------------------------------------------------------------

export class PrivateRedis {
  private child: ChildProcess | null = null;
  readonly url: string;
  private constructor(
    readonly port: number,
    private readonly log: WriteStream,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(dir: string): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort(), createWriteStream(join(dir, 'logs', 'redis.log'), { flags: 'a' }));
    await r.start();
    return r;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    this.child = child;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => {});
      try {
        await c.connect();
        if ((await c.ping()) === 'PONG') return;
      } catch {
        /* not up yet */
      } finally {
        c.disconnect();
      }
      if (Date.now() > deadline) throw new Error('redis-server did not come up');
      await sleep(50);
    }
  }

  async flushall(): Promise<void> {
    const c = new Redis(this.url, { maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    try {
      await c.flushall();
    } finally {
      c.disconnect();
    }
  }

  /** Kill (all data is gone: no persistence) and start again on the same port after `downMs`. */
  async restart(downMs: number): Promise<void> {
    await this.stop();
    await sleep(downMs);
    await this.start();
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

// ---- Baton roles as processes --------------------------------------------

export type RoleScript = 'api' | 'step-worker' | 'service-worker' | 'scheduler';

export interface ExitRecord {
  name: string;
  code: number | null;
  signal: string | null;
  /** we sent a signal (kill/stop); anything else is a crash */
  expected: boolean;
  at: number;
}

export class Proc {
  child: ChildProcess;
  /** set just before we signal it */
  expectingExit = false;
  readonly tail: string[] = [];
  exited: Promise<ExitRecord>;

  constructor(
    readonly name: string,
    readonly script: RoleScript,
    env: Record<string, string>,
    private readonly log: WriteStream,
    onExit: (r: ExitRecord) => void,
  ) {
    this.child = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', `workers/${script}.ts`], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      log.write(d);
      this.tail.push(d.toString());
      if (this.tail.length > 50) this.tail.shift();
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        const r: ExitRecord = { name, code, signal, expected: this.expectingExit, at: Date.now() };
        log.write(`\n==== ${name} exited code=${code} signal=${signal} expected=${this.expectingExit}\n`);
        onExit(r);
        resolve(r);
      });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    this.expectingExit = true;
    if (this.alive) this.child.kill(sig);
  }
}

export class Fleet {
  readonly procs = new Map<string, Proc>();
  readonly exits: ExitRecord[] = [];
  private readonly all = new Set<Proc>();
  private stopping = false;

  constructor(
    private readonly env: Record<string, string>,
    private readonly dir: string,
    private readonly pidFile: string,
    private readonly extraPids: () => Array<number | undefined>,
  ) {}

  private readonly envOf = new Map<string, Record<string, string>>();

  spawn(name: string, script: RoleScript, extraEnv: Record<string, string> = {}): Proc {
    this.envOf.set(name, extraEnv);
    const log = createWriteStream(join(this.dir, 'logs', `${name}.log`), { flags: 'a' });
    const p = new Proc(name, script, { ...this.env, ...extraEnv }, log, (r) => {
      this.exits.push(r);
      this.all.delete(p);
      this.writePids();
      // A crash is a bug and is reported; bring the role back so the run goes
      // on and shows what else breaks.
      if (!r.expected && !this.stopping) setTimeout(() => !this.stopping && this.procs.get(name) === p && this.spawn(name, script, extraEnv), 1000);
    });
    this.procs.set(name, p);
    this.all.add(p);
    this.writePids();
    return p;
  }

  get(name: string): Proc {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process ${name}`);
    return p;
  }

  /** Sends the signal and waits for the exit (bounded: SIGKILL after `graceMs`). */
  async stop(name: string, sig: NodeJS.Signals, graceMs = 40_000): Promise<ExitRecord> {
    const p = this.get(name);
    p.signal(sig);
    const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
    try {
      return await p.exited;
    } finally {
      clearTimeout(t);
    }
  }

  respawn(name: string): Proc {
    const old = this.get(name);
    if (old.alive) throw new Error(`${name} is still running`);
    return this.spawn(name, old.script, this.envOf.get(name) ?? {});
  }

  /** Waits until the role answers /ready on its HEALTH_PORT (it has connected to Postgres and Redis). */
  async ready(name: string, timeoutMs = 120_000): Promise<void> {
    const port = this.envOf.get(name)?.HEALTH_PORT;
    if (!port) throw new Error(`${name} has no HEALTH_PORT`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.get(name);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) })).ok && p.alive) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`${name} not ready after ${timeoutMs} ms: ${p.tail.join('')}`);
      await sleep(200);
    }
  }

  /** Unexpected exits: a worker that dies on its own is a bug. */
  crashes(): ExitRecord[] {
    return this.exits.filter((e) => !e.expected);
  }

  writePids(): void {
    const pids = [...[...this.all].map((p) => p.child.pid), ...this.extraPids()].filter((p): p is number => typeof p === 'number');
    writeFileSync(this.pidFile, pids.join('\n') + '\n');
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.all].map(async (p) => {
        p.signal('SIGTERM');
        const t = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
        await p.exited;
        clearTimeout(t);
      }),
    );
  }

  killAllNow(): void {
    this.stopping = true;
    for (const p of this.all) {
      p.expectingExit = true;
      try {
        p.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/**
 * A detached shell that outlives us: when this process dies (a vitest timeout
 * kill, a crash), it SIGKILLs every pid in the pid file and stops and removes
 * the private cluster. On a normal end we kill it ourselves after cleaning up.
 */
export function startWatchdog(dir: string, pidFile: string, pgDataDir: string | null): ChildProcess {
  const script = `
    while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
    if [ -f '${pidFile}' ]; then for p in $(cat '${pidFile}'); do kill -9 "$p" 2>/dev/null; done; fi
    ${pgDataDir ? `runuser -u postgres -- '${join(PG_BIN, 'pg_ctl')}' -D '${join(pgDataDir, 'data')}' -m immediate -w stop >/dev/null 2>&1` : ''}
    rm -rf '${dir}/pg'
  `;
  const w = spawn('bash', ['-c', script], { detached: true, stdio: 'ignore' });
  w.unref();
  return w;
}

/** Synchronous last-resort cleanup for process.on('exit'). */
export function cleanupSync(fleet: Fleet | null, redis: PrivateRedis | null, pg: PostgresServer | null): void {
  fleet?.killAllNow();
  const rp = redis?.pid;
  if (rp) {
    try {
      process.kill(rp, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (pg?.dataDir) {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, 'pg_ctl'), '-D', join(pg.dataDir, 'data'), '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore', timeout: 20_000 });
    } catch {
      /* already stopped */
    }
    rmSync(pg.dataDir, { recursive: true, force: true });
  }
}
