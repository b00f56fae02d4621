/**
 * Incidents and operator controls over the REST API, against the real
 * Postgres and Redis: listing and reading incidents, fixing data and
 * retrying, resetting an instance to an element, editing variables of a
 * suspended instance, service-task retries with a per-task policy, and the
 * races an operator or a client can start (two retries, two completions).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { retryDelayMs } from '../../src/runtime/service-worker.js';
import { expireRequestIds } from '../../src/store/instances.js';
import { apiClient, defs } from '../support/api.js';
import { eventually, isolation, startDistributed } from '../support/env.js';

const iso = isolation('operator');
let baton: Baton;
const { call, instance, until, start } = apiClient(() => baton);

const OPERATOR_MODEL = readFileSync(new URL('../fixtures/operator-controls.bpmn', import.meta.url), 'utf8');
const FLAKY_MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d-flaky" targetNamespace="t">
  <bpmn:process id="flaky" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
    <bpmn:serviceTask id="call" camunda:resultVariable="reply">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="http"/>
        <zeebe:ioMapping><zeebe:input source="=url" target="url"/></zeebe:ioMapping>
        <camunda:failedJobRetryTimeCycle>R3/PT0.2S</camunda:failedJobRetryTimeCycle>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>`;

/** a local service: /flaky/<n> fails with 503 n times, then answers 200; records the time of each call */
let server: Server;
let base = '';
const calls = new Map<string, number[]>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    const seen = calls.get(url) ?? [];
    seen.push(Date.now());
    calls.set(url, seen);
    const failures = Number(url.split('/')[2] ?? 0);
    if (seen.length <= failures) {
      res.writeHead(503).end('busy');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  baton = await startDistributed(iso, ['api', 'step', 'service', 'scheduler']);
  const dep = await call('POST', '/v1/deployments', {
    files: [
      { name: 'operator-controls.bpmn', content: OPERATOR_MODEL },
      { name: 'flaky.bpmn', content: FLAKY_MODEL },
    ],
  });
  expect(dep.status, JSON.stringify(dep.body)).toBe(201);
});

afterAll(async () => {
  await baton?.close();
  await iso.drop();
  await new Promise<void>((r) => server.close(() => r()));
});

async function openTask(instanceId: string, elementId: string): Promise<string> {
  return eventually(async () => {
    const r = await call('GET', `/v1/tasks?processInstanceId=${instanceId}&state=open`);
    return (r.body.items as Array<{ id: string; elementId: string }>).find((t) => t.elementId === elementId)?.id;
  }, 10_000, `open task ${elementId}`);
}

async function complete(instanceId: string, elementId: string, variables: object = {}): Promise<void> {
  const id = await openTask(instanceId, elementId);
  const r = await call('POST', `/v1/tasks/${id}/complete`, { variables });
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
}

/** an instance stopped at `check` by a script_error (no amount) */
async function failedAtCheck(): Promise<{ id: string; incidentId: string }> {
  const i = await start('operator_controls');
  await complete(i.id, 'review');
  const stopped = await until(i.id, 'error');
  return { id: i.id, incidentId: stopped.incidents[0].id };
}

describe('incidents', () => {
  it('record element, code, message, script line and column, and attempts; list and read them', async () => {
    const { id, incidentId } = await failedAtCheck();
    const list = await call('GET', `/v1/incidents?processInstanceId=${id}`);
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([
      expect.objectContaining({
        id: incidentId,
        processInstanceId: id,
        elementId: 'check',
        code: 'script_error',
        message: expect.stringContaining('amount'),
        line: 1,
        column: expect.any(Number),
        attempts: 1,
        resolvedAt: null,
        resolution: null,
      }),
    ]);
    const one = await call('GET', `/v1/incidents/${incidentId}`);
    expect(one.body).toEqual(list.body.items[0]);
    expect((await call('GET', '/v1/incidents/01900000-0000-7000-8000-000000000000')).body.code).toBe('incident_not_found');
    expect((await call('GET', '/v1/incidents/not-a-uuid')).status).toBe(404);
  });

  it('retry after the operator fixed the data: the script runs again and the instance goes on', async () => {
    const { id, incidentId } = await failedAtCheck();
    const patched = await call('PATCH', `/v1/process-instances/${id}/variables`, { variables: { amount: 42 }, waitMs: 10_000 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ status: 'error', variables: { amount: 42 } });

    const retried = await call('POST', `/v1/incidents/${incidentId}/retry`, { waitMs: 10_000 });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(retried.body).toMatchObject({ status: 'waiting', incidents: [], variables: { amount: 42, approved: true } });
    expect(retried.body.activeElements).toEqual(['fulfil', 'notify', 'pick']);
    const after = await call('GET', `/v1/incidents/${incidentId}`);
    expect(after.body).toMatchObject({ resolution: 'retried', resolvedAt: expect.any(String) });

    const again = await call('POST', `/v1/incidents/${incidentId}/retry`);
    expect(again).toMatchObject({ status: 409, body: { code: 'incident_not_open' } });
  });

  it('a retry that fails again opens a new incident with the next attempt count', async () => {
    const { id, incidentId } = await failedAtCheck();
    const r = await call('POST', `/v1/incidents/${incidentId}/retry`, { waitMs: 10_000 });
    expect(r.body.status).toBe('error');
    expect(r.body.incidents).toEqual([expect.objectContaining({ code: 'script_error', attempts: 2 })]);
    const all = (await call('GET', `/v1/incidents?processInstanceId=${id}`)).body.items;
    expect(all.map((x: { attempts: number; resolution: string | null }) => [x.attempts, x.resolution])).toEqual([
      [1, 'retried'],
      [2, null],
    ]);
  });

  it('two operators retrying the same incident at once: one retry is queued, the other is refused', async () => {
    const { id, incidentId } = await failedAtCheck();
    await call('PATCH', `/v1/process-instances/${id}/variables`, { variables: { amount: 7 } });
    const [a, b] = await Promise.all([call('POST', `/v1/incidents/${incidentId}/retry`), call('POST', `/v1/incidents/${incidentId}/retry`)]);
    expect([a.status, b.status].sort()).toEqual([202, 409]);
    expect([a, b].find((r) => r.status === 409)!.body.code).toMatch(/^incident_(retry_pending|not_open)$/);
    await until(id, 'waiting');
    const h = (await call('GET', `/v1/process-instances/${id}/history`)).body.items;
    expect(h.filter((x: { event: string }) => x.event === 'incident_retried')).toHaveLength(1);
    expect(h.filter((x: { event: string; elementId: string }) => x.event === 'element_completed' && x.elementId === 'check')).toHaveLength(1);
  });
});

describe('variables', () => {
  it('PATCH applies to a suspended instance at once; events held back by the suspension wait for resume', async () => {
    const i = await start('operator_controls');
    const taskId = await openTask(i.id, 'review');
    expect((await call('POST', `/v1/process-instances/${i.id}/suspend`, { waitMs: 10_000 })).body.status).toBe('suspended');
    expect((await call('POST', `/v1/tasks/${taskId}/complete`, { variables: {} })).status).toBeLessThan(300);
    const patched = await call('PATCH', `/v1/process-instances/${i.id}/variables`, { variables: { amount: 500 }, waitMs: 10_000 });
    expect(patched.body).toMatchObject({ status: 'suspended', variables: { amount: 500 }, activeElements: ['review'] });
    expect((await call('POST', `/v1/process-instances/${i.id}/resume`)).status).toBe(202);
    // the held-back completion ran after the new data: the check saw amount 500
    const resumed = await eventually(async () => {
      const x = await instance(i.id);
      return x.activeElements.includes('pick') ? x : null;
    });
    expect(resumed).toMatchObject({ status: 'waiting', variables: { amount: 500, approved: false } });
  });

  it('refuses bad requests with stable codes and changes nothing', async () => {
    const i = await start('operator_controls');
    const cases: Array<[unknown, number, string]> = [
      [{}, 400, 'invalid_request'],
      [{ variables: {} }, 400, 'invalid_request'],
      [{ variables: [1] }, 400, 'invalid_request'],
      [{ variables: { a: 1 }, scopeId: 'nope' }, 404, 'scope_not_found'],
      [{ variables: { a: 1 }, extra: true }, 400, 'invalid_request'],
    ];
    for (const [body, status, code] of cases) {
      const r = await call('PATCH', `/v1/process-instances/${i.id}/variables`, body);
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([status, code]);
    }
    expect((await instance(i.id)).variables).toEqual({});
    const missing = await call('PATCH', '/v1/process-instances/01900000-0000-7000-8000-000000000000/variables', { variables: { a: 1 } });
    expect(missing.body.code).toBe('instance_not_found');
  });
});

describe('reset', () => {
  it('rewinds to an earlier element: tokens withdrawn, tasks cancelled, waits removed, execution resumes there', async () => {
    const i = await start('operator_controls', { amount: 10 });
    await complete(i.id, 'review');
    await complete(i.id, 'pick');
    await openTask(i.id, 'pack');
    const before = await until(i.id, 'waiting');
    expect(before.activeElements).toEqual(['fulfil', 'notify', 'pack']);
    expect(before.waits.map((w: { elementId: string }) => w.elementId)).toEqual(['fulfil_late']);

    const r = await call('POST', `/v1/process-instances/${i.id}/reset`, { elementId: 'review', waitMs: 10_000 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ status: 'waiting', activeElements: ['review'], waits: [], variables: { amount: 10, approved: true } });
    const tasks = (await call('GET', `/v1/tasks?processInstanceId=${i.id}`)).body.items as Array<{ elementId: string; state: string }>;
    expect(tasks.filter((t) => t.state === 'open').map((t) => t.elementId)).toEqual(['review']);
    expect(tasks.filter((t) => t.state === 'cancelled').map((t) => t.elementId).sort()).toEqual(['notify', 'pack']);
    const timers = await baton.db.selectFrom('timer').select('element_id').where('instance_id', '=', i.id).execute();
    expect(timers).toEqual([]);

    // and it runs from there to the end
    await complete(i.id, 'review');
    await complete(i.id, 'pick');
    await complete(i.id, 'pack');
    await complete(i.id, 'notify');
    const job = await eventually(async () => {
      const f = await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w', topics: ['charge'], maxTasks: 10, lockMs: 10_000 });
      return (f.body.items as Array<{ id: string; processInstanceId: string }>).find((t) => t.processInstanceId === i.id);
    });
    expect((await call('POST', `/v1/external-tasks/${job.id}/complete`, { workerId: 'w', variables: {} })).status).toBeLessThan(300);
    await until(i.id, 'completed');
  });

  it('resets into a subprocess and clears incidents', async () => {
    const { id } = await failedAtCheck();
    const r = await call('POST', `/v1/process-instances/${id}/reset`, { elementId: 'pick', waitMs: 10_000 });
    expect(r.body).toMatchObject({ status: 'waiting', incidents: [], activeElements: ['fulfil', 'pick'] });
    const incidents = (await call('GET', `/v1/incidents?processInstanceId=${id}`)).body.items;
    expect(incidents).toEqual([expect.objectContaining({ resolution: 'reset' })]);
  });

  it('refuses targets it cannot start at, unknown and ended instances', async () => {
    const i = await start('operator_controls');
    for (const [elementId, status, code] of [
      ['nope', 400, 'invalid_reset_target'],
      ['check_timeout', 400, 'invalid_reset_target'],
      ['join', 400, 'invalid_reset_target'],
    ] as const) {
      const r = await call('POST', `/v1/process-instances/${i.id}/reset`, { elementId });
      expect([r.status, r.body.code]).toEqual([status, code]);
    }
    expect((await call('POST', '/v1/process-instances/01900000-0000-7000-8000-000000000000/reset', { elementId: 'review' })).body.code).toBe(
      'instance_not_found',
    );
    await call('POST', `/v1/process-instances/${i.id}/cancel`, { waitMs: 10_000 });
    expect((await call('POST', `/v1/process-instances/${i.id}/reset`, { elementId: 'review' })).body.code).toBe('instance_ended');
  });
});

describe('service task retries', () => {
  it('backs off exponentially from the worker base unless the model fixes the delay', () => {
    expect([1, 2, 3, 4].map((attempts) => retryDelayMs({ attempts, retry_backoff_ms: null }, 1000, 5000))).toEqual([1000, 2000, 4000, 5000]);
    expect(retryDelayMs({ attempts: 3, retry_backoff_ms: 200 }, 1000, 5000)).toBe(200);
  });

  it('a technical failure is retried per the task policy and the job succeeds on a later try', async () => {
    const url = `${base}/flaky/2/ok`;
    const i = await call('POST', '/v1/process-instances', { processKey: 'flaky', variables: { url } });
    const done = await until(i.body.id, 'completed', 15_000);
    expect(done.variables.reply).toMatchObject({ status: 200 });
    const times = calls.get('/flaky/2/ok')!;
    expect(times).toHaveLength(3);
    // the model's fixed delay (R3/PT0.2S) between tries
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(180);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(180);
  });

  it('when every try fails, the incident records the tries; a retry runs the task again', async () => {
    const url = `${base}/flaky/5/down`;
    const i = await call('POST', '/v1/process-instances', { processKey: 'flaky', variables: { url } });
    const stopped = await until(i.body.id, 'error', 15_000);
    expect(stopped.incidents).toEqual([expect.objectContaining({ code: 'service_failed', elementId: 'call', attempts: 3 })]);
    expect(calls.get('/flaky/5/down')).toHaveLength(3);
    // the remote service recovers after two more failures; the retry's new job gets three new tries
    const r = await call('POST', `/v1/incidents/${stopped.incidents[0].id}/retry`);
    expect(r.status).toBe(202);
    await until(i.body.id, 'completed', 15_000);
    expect(calls.get('/flaky/5/down')).toHaveLength(6);
  });
});

describe('start idempotency (Idempotency-Key)', () => {
  const startWithKey = async (key: string, payload: object = { processKey: 'operator_controls', variables: { n: 1 } }) => {
    const res = await baton.app!.inject({
      method: 'POST',
      url: '/v1/process-instances',
      headers: { 'idempotency-key': key },
      payload,
    });
    return { status: res.statusCode, body: res.json() };
  };

  it('a retried start gets the instance the first request created', async () => {
    const first = await startWithKey('order-4711');
    const again = await startWithKey('order-4711');
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
  });

  it('concurrent starts with one key create one instance', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => startWithKey('burst-1')));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    const rows = await baton.db.selectFrom('process_instance').select('id').where('request_id', '=', 'operator_controls\u001fburst-1').execute();
    expect(rows).toHaveLength(1);
  });

  it('the same key with another body is 422 idempotency_key_reused, and never hands out the first instance', async () => {
    const first = await startWithKey('order-42', { processKey: 'operator_controls', variables: { secretNote: 'customer A only' } });
    expect(first.status).toBe(201);
    // the same variables written in another order are the same request
    const same = await startWithKey('order-42', { variables: { secretNote: 'customer A only' }, processKey: 'operator_controls' });
    expect(same).toMatchObject({ status: 200, body: { id: first.body.id } });
    const other = await startWithKey('order-42', { processKey: 'operator_controls', variables: { secretNote: 'customer B' } });
    expect(other.status).toBe(422);
    expect(other.body).toEqual({ code: 'idempotency_key_reused', message: expect.stringContaining('another request') });
    expect(JSON.stringify(other.body)).not.toContain('customer A only');
  });

  it('keys are scoped by process: another process with the same key gets its own instance', async () => {
    const other = defs('other_process', '<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="u"/><bpmn:userTask id="u"/>');
    expect((await call('POST', '/v1/deployments', { files: [{ name: 'other.bpmn', content: other }] })).status).toBe(201);
    const a = await startWithKey('shared-key', { processKey: 'operator_controls', variables: { n: 1 } });
    const b = await startWithKey('shared-key', { processKey: 'other_process', variables: { n: 1 } });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.body.processKey).toBe('other_process');
  });

  it('an expired key starts a new instance', async () => {
    const first = await startWithKey('old-key');
    expect(await expireRequestIds(baton.db, 0, 1000)).toBeGreaterThan(0);
    const again = await startWithKey('old-key');
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.body.id);
  });

  it('refuses an empty or over-long key', async () => {
    expect((await startWithKey('x'.repeat(256))).body.code).toBe('invalid_request');
  });
});
