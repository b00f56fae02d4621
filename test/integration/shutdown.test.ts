/**
 * Issue 13: SIGTERM stops every role within BATON_SHUTDOWN_GRACE_MS, also
 * while a runaway model (a call activity calling its own process, with a call
 * depth limit far out of reach) keeps every queue full; the embedded process
 * keeps answering /health meanwhile. A shutdown that cannot finish in time is
 * forced (exit 1, a log line), and a second signal forces it at once.
 *
 * The roles run as real child processes (`workers/*.ts`), as in production.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defs } from '../support/api.js';
import { PG_URL, eventually, isolation } from '../support/env.js';
import { freePort } from '../faults/infra.js';
import { spawnRole, type RoleProcess } from '../support/roles.js';

const GRACE_MS = 8000;

const RUNAWAY = defs(
  'runaway',
  `<bpmn:startEvent id="start" />
   <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="call" />
   <bpmn:callActivity id="call" calledElement="runaway" />
   <bpmn:sequenceFlow id="f1" sourceRef="call" targetRef="end" />
   <bpmn:endEvent id="end" />`,
);

type Proc = RoleProcess;

const procs = new Set<Proc>();

/** A role with the settings every process of this file shares; forgotten once it exits. */
function startRole(script: string, env: Record<string, string>, name = script): Proc {
  const p = spawnRole(script, { DATABASE_URL: '', REDIS_URL: '', LOG_LEVEL: 'info', BATON_EXAMPLES: 'false', HOST: '127.0.0.1', ...env }, name, 400);
  procs.add(p);
  void p.exited.then(() => procs.delete(p));
  return p;
}

const alive = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null;

/** Sends `sig` and waits for the exit, at most `withinMs` (then SIGKILL, so nothing outlives the test). */
async function stop(p: Proc, sig: NodeJS.Signals, withinMs: number): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const sent = Date.now();
  p.child.kill(sig);
  const t = setTimeout(() => p.child.kill('SIGKILL'), withinMs);
  try {
    const r = await p.exited;
    return { code: r.code, signal: r.signal, ms: r.at - sent };
  } finally {
    clearTimeout(t);
  }
}

afterAll(() => {
  for (const p of procs) p.child.kill('SIGKILL');
});

async function request(base: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000) {
  const t = Date.now();
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.status, body: (text ? JSON.parse(text) : null) as any, ms: Date.now() - t };
}

async function waitHealthy(p: Proc, url: string): Promise<void> {
  await eventually(
    async () => {
      if (!alive(p)) throw new Error(`${p.name} exited: ${p.output.join('')}`);
      return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
    },
    120_000,
    `${p.name} ${url}`,
  );
}

async function startRunaway(base: string): Promise<string> {
  const dep = await request(base, 'POST', '/v1/deployments', { files: [{ name: 'runaway.bpmn', content: RUNAWAY }] });
  expect(dep.status).toBe(201);
  const started = await request(base, 'POST', '/v1/process-instances', { processKey: 'runaway' });
  expect(started.status).toBe(201);
  return started.body.id as string;
}

const log = (p: Proc) => p.output.join('');

describe('embedded mode (workers/all.ts) under a runaway', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function boot(extra: Record<string, string> = {}): Promise<{ p: Proc; base: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'baton-shutdown-'));
    dirs.push(dir);
    const port = await freePort();
    const p = startRole('all', {
      BATON_DATA_DIR: dir,
      PORT: String(port),
      BATON_MAX_CALL_DEPTH: '1000000',
      BATON_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      ...extra,
    });
    const base = `http://127.0.0.1:${port}`;
    await waitHealthy(p, `${base}/health`);
    return { p, base };
  }

  it('answers /health throughout and exits 0 on SIGTERM within the grace period', { timeout: 180_000 }, async () => {
    const { p, base } = await boot();
    const rootId = await startRunaway(base);
    const health: number[] = [];
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const h = await request(base, 'GET', '/health', undefined, 5000);
      expect(h.status).toBe(200);
      health.push(h.ms);
      await new Promise((r) => setTimeout(r, 50));
    }
    const root = await request(base, 'GET', `/v1/process-instances/${rootId}`, undefined, 5000);
    expect(root.body).toMatchObject({ status: 'waiting', activeElements: ['call'] });
    health.sort((a, b) => a - b);
    const p95 = health[Math.floor(health.length * 0.95)]!;
    console.log(`embedded runaway: /health ms median ${health[health.length >> 1]}, p95 ${p95}, max ${health[health.length - 1]} (${health.length} requests)`);
    expect(p95).toBeLessThan(300);

    const r = await stop(p, 'SIGTERM', GRACE_MS + 5000);
    console.log(`embedded runaway: exit ${r.code ?? r.signal} ${r.ms} ms after SIGTERM`);
    expect(r, log(p)).toMatchObject({ code: 0, signal: null });
    expect(r.ms).toBeLessThan(GRACE_MS);
    expect(log(p)).toContain('shutting down');
  });

  /**
   * A client that sent the headers of a request but not all of its body: the
   * API's close waits for that request, so the shutdown cannot finish on its
   * own (until Node's request timeout, minutes later).
   */
  async function slowClient(base: string): Promise<Socket> {
    const { port } = new URL(base);
    const sock = connect(Number(port), '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.on('error', () => {});
    sock.write('POST /v1/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"files":');
    await new Promise((r) => setTimeout(r, 200));
    return sock;
  }

  it('a shutdown that does not finish within the grace period is forced: exit 1 and a log line', { timeout: 180_000 }, async () => {
    const { p, base } = await boot({ BATON_SHUTDOWN_GRACE_MS: '2000' });
    await startRunaway(base);
    const sock = await slowClient(base);
    try {
      const r = await stop(p, 'SIGTERM', 10_000);
      console.log(`embedded, close held up: exit ${r.code ?? r.signal} ${r.ms} ms after SIGTERM (grace 2000 ms)`);
      expect(r, log(p)).toMatchObject({ code: 1, signal: null });
      expect(r.ms).toBeGreaterThanOrEqual(1900);
      expect(r.ms).toBeLessThan(5000);
      expect(log(p)).toMatch(/shutdown did not finish within 2000 ms/);
    } finally {
      sock.destroy();
    }
  });

  it('a second SIGTERM forces the exit at once', { timeout: 180_000 }, async () => {
    const { p, base } = await boot({ BATON_SHUTDOWN_GRACE_MS: '60000' });
    await startRunaway(base);
    const sock = await slowClient(base);
    try {
      p.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      expect(alive(p), 'the first SIGTERM waits for the slow request').toBe(true);
      const r = await stop(p, 'SIGTERM', 10_000);
      expect(r, log(p)).toMatchObject({ code: 1, signal: null });
      expect(r.ms).toBeLessThan(1000);
      expect(log(p)).toMatch(/second signal/);
    } finally {
      sock.destroy();
    }
  });
});

describe('distributed roles under a runaway', () => {
  const iso = isolation('shutdown');
  let client: pg.Client;
  let dbUrl = '';

  beforeAll(async () => {
    client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`create schema if not exists ${iso.schema}`);
    dbUrl = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${iso.schema}`)}`;
  });

  afterAll(async () => {
    await client?.end();
    await iso.drop();
  });

  const count = async () => Number((await client.query(`select count(*)::int as n from ${iso.schema}.process_instance`)).rows[0].n);

  it('api, step worker, service worker and scheduler each exit 0 on SIGTERM or SIGINT within the grace period', { timeout: 240_000 }, async () => {
    const apiPort = await freePort();
    const env = {
      ...iso.env,
      DATABASE_URL: dbUrl,
      PORT: String(apiPort),
      LOG_LEVEL: 'info',
      BATON_MAX_CALL_DEPTH: '1000000',
      BATON_SHUTDOWN_GRACE_MS: String(GRACE_MS),
    };
    const base = `http://127.0.0.1:${apiPort}`;
    const api = startRole('api', env);
    await waitHealthy(api, `${base}/ready`);
    const roles: Array<[string, NodeJS.Signals]> = [
      ['step-worker', 'SIGTERM'],
      ['service-worker', 'SIGTERM'],
      ['scheduler', 'SIGINT'],
    ];
    const workers: Array<[Proc, NodeJS.Signals]> = [];
    for (const [script, sig] of roles) {
      const hp = await freePort();
      const p = startRole(script, { ...env, HEALTH_PORT: String(hp) });
      workers.push([p, sig]);
      await waitHealthy(p, `http://127.0.0.1:${hp}/ready`);
    }
    await startRunaway(base);
    await eventually(async () => (await count()) > 50, 30_000, 'the runaway to get going');

    for (const [p, sig] of [...workers, [api, 'SIGTERM'] as [Proc, NodeJS.Signals]]) {
      const r = await stop(p, sig, GRACE_MS + 5000);
      console.log(`distributed ${p.name}: exit ${r.code ?? r.signal} ${r.ms} ms after ${sig}`);
      expect(r, `${p.name}: ${log(p)}`).toMatchObject({ code: 0, signal: null });
      expect(r.ms).toBeLessThan(GRACE_MS);
    }
    // every role has stopped taking work: nothing creates instances any more
    const n = await count();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await count()).toBe(n);
  });
});
