/**
 * The service worker's claim on a job: renewed while a slow call runs, so a
 * second worker never runs the same job; a claim of a dead worker expires.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import type { Connector } from '../../src/connectors/index.js';
import { startServiceWorker } from '../../src/runtime/service-worker.js';
import { apiClient, defs } from '../support/api.js';
import { isolation, silentLogger, startDistributed } from '../support/env.js';

const iso = isolation('service_worker');
let baton: Baton;
const { call, until } = apiClient(() => baton);

beforeAll(async () => {
  baton = await startDistributed(iso, ['api', 'step']);
  const model = defs(
    'slow-call',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
     <bpmn:serviceTask id="call"><bpmn:extensionElements><zeebe:taskDefinition type="slow"/></bpmn:extensionElements></bpmn:serviceTask>
     <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e"/><bpmn:endEvent id="e"/>`,
  );
  expect((await call('POST', '/v1/deployments', { files: [{ name: 'slow.bpmn', content: model }] })).status).toBe(201);
});

afterAll(async () => {
  await baton?.close();
  await iso.drop();
});

describe('service worker job locks', () => {
  it('a call three times longer than the lock keeps its job: no second worker runs it', async () => {
    let calls = 0;
    const slow: Connector = {
      topic: 'slow',
      async run() {
        calls++;
        await new Promise((r) => setTimeout(r, 3000));
        return { kind: 'completed', variables: { done: true } };
      },
    };
    const workers = [0, 1].map((n) =>
      startServiceWorker({ db: baton.db, transport: baton.transport, logger: silentLogger(), connectors: new Map([['slow', slow]]), concurrency: 2, lockMs: 1000, pollMs: 100, workerId: `w${n}` }),
    );
    try {
      const i = await call('POST', '/v1/process-instances', { processKey: 'slow-call' });
      const done = await until(i.body.id, 'completed', 15_000);
      expect(done.variables).toMatchObject({ done: true });
      expect(calls).toBe(1);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('aborts a running call once the lock of its job is lost (the instance was cancelled), freeing the slot', async () => {
    let aborted: number | null = null;
    let began = 0;
    const hanging: Connector = {
      topic: 'slow',
      run(req) {
        began = Date.now();
        return new Promise((resolve) => {
          req.signal.addEventListener('abort', () => {
            aborted = Date.now();
            resolve({ kind: 'failed', message: 'aborted', retryable: true });
          });
        });
      },
    };
    const worker = startServiceWorker({ db: baton.db, transport: baton.transport, logger: silentLogger(), connectors: new Map([['slow', hanging]]), concurrency: 1, lockMs: 900, pollMs: 50, workerId: 'w-abort' });
    try {
      const i = await call('POST', '/v1/process-instances', { processKey: 'slow-call' });
      await until(i.body.id, 'waiting');
      const t0 = Date.now();
      while (began === 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 25));
      expect(began).toBeGreaterThan(0);
      await call('POST', `/v1/process-instances/${i.body.id}/cancel`, { waitMs: 5000 });
      const cancelledAt = Date.now();
      while (aborted === null && Date.now() - cancelledAt < 10_000) await new Promise((r) => setTimeout(r, 25));
      // the lock is renewed every 300 ms: the next renewal finds the job gone
      expect(aborted).not.toBeNull();
      expect(aborted! - cancelledAt).toBeLessThan(3000);
    } finally {
      await worker.close();
    }
  });

  it('a deferred job (its host at BATON_HTTP_MAX_PER_HOST) comes back without using a retry', async () => {
    let runs = 0;
    const busyTwice: Connector = {
      topic: 'slow',
      async run() {
        runs++;
        if (runs <= 2) return { kind: 'deferred', delayMs: 50, message: 'host busy' };
        return { kind: 'completed', variables: { done: true } };
      },
    };
    const worker = startServiceWorker({ db: baton.db, transport: baton.transport, logger: silentLogger(), connectors: new Map([['slow', busyTwice]]), concurrency: 1, pollMs: 50, workerId: 'w-defer' });
    try {
      const i = await call('POST', '/v1/process-instances', { processKey: 'slow-call' });
      const done = await until(i.body.id, 'completed', 15_000);
      expect(done.variables).toMatchObject({ done: true });
      expect(runs).toBe(3);
      const job = await baton.db.selectFrom('service_job').select(['retries']).where('instance_id', '=', i.body.id).executeTakeFirstOrThrow();
      expect(job.retries).toBe(3);
    } finally {
      await worker.close();
    }
  });
});
