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
});
