/**
 * Baton as separate Node processes, the way it runs in production: one API,
 * two step workers, one service worker and one scheduler, sharing the real
 * Postgres and Redis. 500 instances, each with a script, an http service task
 * and a user task, must all complete; then again with one step worker killed
 * (SIGKILL) in the middle of the run: every instance still completes and every
 * element of every instance completes exactly once.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, eventually, isolation } from '../support/env.js';
import { spawnRole, type RoleProcess } from '../support/roles.js';

const N = Number(process.env.MULTIPROCESS_INSTANCES ?? 500);
const iso = isolation('multiprocess');

type Proc = RoleProcess;

async function stopAll(procs: Proc[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill('SIGTERM');
          setTimeout(() => p.child.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
}

describe('multi-process: API, two step workers, a service worker, a scheduler', () => {
  let echo: Server;
  let echoUrl = '';
  const echoCalls = new Map<string, number>();
  let dbUrl = '';
  let client: pg.Client;

  beforeAll(async () => {
    echo = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const key = String(req.headers['idempotency-key']);
        echoCalls.set(key, (echoCalls.get(key) ?? 0) + 1);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body || '{}');
      });
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}/echo`;
    client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`create schema if not exists ${iso.schema}`);
    // Every process finds its tables through the search_path in the URL.
    dbUrl = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${iso.schema}`)}`;
  });

  afterAll(async () => {
    await client?.end();
    await new Promise<void>((r) => echo.close(() => r()));
    await iso.drop();
  });

  async function run(label: string, killOneStepWorker: boolean): Promise<void> {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const env = {
      ...iso.env,
      DATABASE_URL: dbUrl,
      BATON_QUEUE_PREFIX: `${iso.prefix}_${label}`,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      STEP_CONCURRENCY: '8',
      SERVICE_CONCURRENCY: '16',
    };
    // Migrations run at start-up under an advisory lock; starting the API first
    // keeps the other processes' logs quiet, but they would cope either way.
    const api = spawnRole('api', env, 'api');
    const procs: Proc[] = [api];
    try {
      const base = `http://127.0.0.1:${port}`;
      await eventually(
        async () => {
          if (api.child.exitCode !== null || api.child.signalCode !== null) {
            throw new Error(`api exited (${api.child.exitCode ?? api.child.signalCode}): ${api.output.join('')}`);
          }
          return (await fetch(`${base}/ready`)).ok;
        },
        90_000,
        'api ready',
      );
      const stepA = spawnRole('step-worker', env, 'step-a');
      const stepB = spawnRole('step-worker', env, 'step-b');
      procs.push(stepA, stepB, spawnRole('service-worker', env, 'service'), spawnRole('scheduler', env, 'scheduler'));

      const post = async (path: string, body: unknown) => {
        const r = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const text = await r.text();
        if (!r.ok) throw new Error(`${path} → ${r.status} ${text}`);
        return text ? JSON.parse(text) : null;
      };
      const get = async (path: string) => (await fetch(`${base}${path}`)).json();

      await post('/v1/deployments', { files: [{ name: 'load.bpmn', content: readFileSync(new URL('./models/load.bpmn', import.meta.url), 'utf8') }] });

      const businessKey = `run-${label}`;
      const ids: string[] = [];
      let killed = false;
      for (let i = 0; i < N; i += 25) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(25, N - i) }, (_, k) =>
            post('/v1/process-instances', { processKey: 'load', businessKey, variables: { n: i + k, url: echoUrl } }),
          ),
        );
        ids.push(...batch.map((b: { id: string }) => b.id));
        if (killOneStepWorker && !killed && i >= N / 3) {
          stepA.child.kill('SIGKILL');
          killed = true;
        }
      }
      expect(ids).toHaveLength(N);

      // Complete every review task exactly once, as they appear.
      const completed = new Set<string>();
      await eventually(
        async () => {
          const open = (await get(`/v1/tasks?state=open&limit=500`)) as { items: Array<{ id: string }> };
          await Promise.all(
            open.items
              .filter((t: { id: string }) => !completed.has(t.id))
              .map(async (t: { id: string }) => {
                completed.add(t.id);
                await post(`/v1/tasks/${t.id}/complete`, { variables: { reviewed: true } });
              }),
          );
          return completed.size >= N;
        },
        240_000,
        `all ${N} review tasks (have ${completed.size})`,
      );

      await eventually(
        async () => {
          const r = await client.query(`select count(*)::int as c from ${iso.schema}.process_instance where business_key = $1 and status = 'completed'`, [businessKey]);
          return r.rows[0].c === N;
        },
        240_000,
        'all instances completed',
      );

      const q = (text: string) => client.query(text, [businessKey]);
      const statuses = await q(`select status, count(*)::int as c from ${iso.schema}.process_instance where business_key = $1 group by status`);
      expect(statuses.rows).toEqual([{ status: 'completed', c: N }]);
      // Every element of every instance completed exactly once.
      const perElement = await q(
        `select h.element_id, count(*)::int as c, count(distinct h.instance_id)::int as instances
           from ${iso.schema}.history h join ${iso.schema}.process_instance i on i.id = h.instance_id
          where i.business_key = $1 and h.event = 'element_completed'
          group by h.element_id order by h.element_id`,
      );
      expect(perElement.rows).toEqual(['call', 'end', 'prepare', 'review', 'start'].map((e) => ({ element_id: e, c: N, instances: N })));
      const tasks = await q(
        `select t.state, count(*)::int as c from ${iso.schema}.human_task t join ${iso.schema}.process_instance i on i.id = t.instance_id
          where i.business_key = $1 group by t.state`,
      );
      expect(tasks.rows).toEqual([{ state: 'completed', c: N }]);
      const jobs = await q(
        `select j.state, count(*)::int as c from ${iso.schema}.service_job j join ${iso.schema}.process_instance i on i.id = j.instance_id
          where i.business_key = $1 group by j.state`,
      );
      expect(jobs.rows).toEqual([{ state: 'completed', c: N }]);
      const vars = await q(`select state->'scopes' as scopes, state->>'rootScopeId' as root from ${iso.schema}.process_instance where business_key = $1 limit 1`);
      expect(vars.rows[0].scopes[vars.rows[0].root].variables).toMatchObject({ reviewed: true, response: { status: 200 } });
      const pending = await q(`select count(*)::int as c from ${iso.schema}.inbox x join ${iso.schema}.process_instance i on i.id = x.instance_id where i.business_key = $1 and x.processed_at is null`);
      expect(pending.rows[0].c).toBe(0);
      if (killOneStepWorker) expect(stepA.child.signalCode).toBe('SIGKILL');
      // No surviving process died.
      for (const p of procs) {
        if (p === stepA && killOneStepWorker) continue;
        expect([p.name, p.child.exitCode], p.output.join('')).toEqual([p.name, null]);
      }
    } finally {
      await stopAll(procs);
    }
  }

  it(`completes ${N} instances with user and service tasks`, async () => {
    await run('calm', false);
  }, 360_000);

  it(`completes ${N} instances when a step worker is SIGKILLed mid-run`, async () => {
    await run('kill', true);
    // The http side effect is at-least-once: a job may be re-run after a crash,
    // always with the same idempotency key.
    expect([...echoCalls.keys()].every((k) => k !== 'undefined')).toBe(true);
  }, 360_000);
});
