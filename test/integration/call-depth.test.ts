/**
 * Issue 13: a call activity that calls its own process. With
 * BATON_MAX_CALL_DEPTH=5 the chain stops at depth 5: exactly six instances,
 * the deepest one's call activity in a `call_depth_exceeded` incident, every
 * ancestor waiting at its call activity (a child's incident does not travel up:
 * the parent waits, as in Camunda). Run in both modes, since the depth travels
 * through the runtime (the parent link in the child's start row and state).
 *
 * Embedded mode also gets a runaway with no practical limit: while it keeps
 * the in-process queue full, the API still answers /health, a start and an
 * instance read quickly, and close() still finishes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { defs } from '../support/api.js';
import { eventually, isolation, startDistributed, startEmbedded } from '../support/env.js';

const SELF = defs(
  'self_rec',
  `<bpmn:startEvent id="start" />
   <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="call" />
   <bpmn:callActivity id="call" calledElement="self_rec" />
   <bpmn:sequenceFlow id="f1" sourceRef="call" targetRef="end" />
   <bpmn:endEvent id="end" />`,
);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;

async function http(b: Baton, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 5000): Promise<{ status: number; body: Body; ms: number }> {
  const t = Date.now();
  const res = await fetch(`${b.url}${path}`, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, ms: Date.now() - t };
}

async function deployAndStart(b: Baton): Promise<string> {
  const dep = await http(b, 'POST', '/v1/deployments', { files: [{ name: 'self.bpmn', content: SELF }] });
  expect(dep.status).toBe(201);
  const started = await http(b, 'POST', '/v1/process-instances', { processKey: 'self_rec' });
  expect(started.status).toBe(201);
  return started.body.id as string;
}

interface Row {
  id: string;
  status: string;
  parent_instance_id: string | null;
}

const instances = async (b: Baton): Promise<Row[]> =>
  (await b.db.selectFrom('process_instance').select(['id', 'status', 'parent_instance_id']).where('process_key', '=', 'self_rec').execute()) as Row[];

/** root first, then each one's child */
function chainFrom(rootId: string, rows: Row[]): Row[] {
  const byParent = new Map(rows.filter((r) => r.parent_instance_id).map((r) => [r.parent_instance_id!, r]));
  const chain = [rows.find((r) => r.id === rootId)!];
  for (let c = byParent.get(rootId); c; c = byParent.get(c.id)) chain.push(c);
  return chain;
}

const modes: Array<[string, () => Promise<{ b: Baton; done: () => Promise<void> }>]> = [
  [
    'embedded',
    async () => {
      const b = await startEmbedded({ BATON_MAX_CALL_DEPTH: '5' });
      return { b, done: () => b.close() };
    },
  ],
  [
    'distributed',
    async () => {
      const iso = isolation('call_depth');
      const b = await startDistributed(iso, ['api', 'step', 'scheduler'], { BATON_MAX_CALL_DEPTH: '5' });
      return {
        b,
        done: async () => {
          await b.close();
          await iso.drop();
        },
      };
    },
  ],
];

describe.each(modes)('call depth limit (%s)', (_mode, start) => {
  it('a self-calling process stops at BATON_MAX_CALL_DEPTH with call_depth_exceeded on the deepest call activity', async () => {
    const { b, done } = await start();
    try {
      const rootId = await deployAndStart(b);
      const chain = await eventually(
        async () => {
          const c = chainFrom(rootId, await instances(b));
          return c.length === 6 && c[5]!.status === 'error' ? c : null;
        },
        20_000,
        'six instances, the deepest in error',
      );
      // nothing more is started, also not by the sweep (SWEEP_AFTER_MS 1000, interval 200)
      await new Promise((r) => setTimeout(r, 1500));
      expect(await instances(b)).toHaveLength(6);
      expect(chain.map((r) => r.status)).toEqual(['waiting', 'waiting', 'waiting', 'waiting', 'waiting', 'error']);

      const deepest = await http(b, 'GET', `/v1/process-instances/${chain[5]!.id}`);
      expect(deepest.body.incidents).toHaveLength(1);
      expect(deepest.body.incidents[0]).toMatchObject({ code: 'call_depth_exceeded', elementId: 'call' });
      expect(deepest.body.incidents[0].message).toContain('self_rec');
      for (const r of chain.slice(0, 5)) {
        const i = await http(b, 'GET', `/v1/process-instances/${r.id}`);
        expect(i.body).toMatchObject({ status: 'waiting', activeElements: ['call'], incidents: [] });
      }
      const open = await http(b, 'GET', `/v1/incidents?processInstanceId=${chain[5]!.id}&open=true`);
      expect(open.body.items.map((i: Body) => i.code)).toEqual(['call_depth_exceeded']);

      // retryable like any other incident: it runs the call activity again, which fails again
      const incidentId = deepest.body.incidents[0].id as string;
      const retry = await http(b, 'POST', `/v1/incidents/${incidentId}/retry`, { waitMs: 10_000 });
      expect(retry.status).toBeLessThan(300);
      const after = await eventually(async () => {
        const i = await http(b, 'GET', `/v1/process-instances/${chain[5]!.id}`);
        return i.body.incidents.length === 1 && i.body.incidents[0].id !== incidentId ? i.body : null;
      });
      expect(after.incidents[0]).toMatchObject({ code: 'call_depth_exceeded', attempts: 2 });
      expect(await instances(b)).toHaveLength(6);
    } finally {
      await done();
    }
  });
});

describe('a runaway in embedded mode', () => {
  let b: Baton | null = null;
  afterAll(async () => {
    await b?.close();
  });

  it('leaves the API responsive while the queue stays full, and close() still finishes', { timeout: 60_000 }, async () => {
    // a limit far beyond what the test waits for: the recursion runs for the whole test
    b = await startEmbedded({ BATON_MAX_CALL_DEPTH: '1000000' });
    const rootId = await deployAndStart(b);
    const health: number[] = [];
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const h = await http(b, 'GET', '/health', undefined, 2000);
      expect(h.status).toBe(200);
      health.push(h.ms);
      await new Promise((r) => setTimeout(r, 50));
    }
    const read = await http(b, 'GET', `/v1/process-instances/${rootId}`, undefined, 2000);
    expect(read.body).toMatchObject({ id: rootId, status: 'waiting' });
    const n = (await instances(b)).length;
    // the runaway did run while we asked
    expect(n).toBeGreaterThan(20);
    health.sort((x, y) => x - y);
    const p95 = health[Math.floor(health.length * 0.95)]!;
    console.log(`runaway: ${n} instances in ~3 s; /health ms median ${health[health.length >> 1]}, p95 ${p95}, max ${health[health.length - 1]}`);
    // Starvation (the defect) means no answer at all; every request above answered within its
    // 2 s timeout. The percentile bound is loose on purpose: the suite runs files in parallel on
    // two cores, and latency figures belong to bench/, not to assertions.
    expect(p95).toBeLessThan(1000);
    const t = Date.now();
    await b.close();
    b = null;
    expect(Date.now() - t).toBeLessThan(5000);
  });
});
