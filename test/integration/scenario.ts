/**
 * One end-to-end scenario through the REST API, run in both modes
 * (distributed.test.ts, embedded.test.ts): deploy, start, user tasks, service
 * tasks (external worker and built-in http connector), incidents, cancel,
 * concurrency on task completion, error shapes.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { EXAMPLE_FILE } from '../../src/boot.js';
import { insertInboxEvent } from '../../src/store/inbox.js';
import { eventually } from '../support/env.js';

const model = (name: string) => readFileSync(new URL(`./models/${name}`, import.meta.url), 'utf8');

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** start → script task `evil` → end, with the given script. */
function scriptModel(key: string, script: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d-${key}" targetNamespace="http://baton.dev/test">
  <bpmn:process id="${key}" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="evil" />
    <bpmn:scriptTask id="evil" scriptFormat="javascript"><bpmn:script>${xmlEscape(script)}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="evil" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>`;
}

/** Scripts that try to leave the sandbox or exhaust it, with the incident each must become. */
// A huge allocation ends at the memory limit, or, when the isolate's garbage
// collector thrashes near that limit on a loaded machine, at the CPU limit
// first: both are incidents, and the sandbox tests pin the memory case down.
const ATTACKS: Array<[key: string, script: string, code: string | RegExp]> = [
  ['attack-process', 'process.exit(1)', 'script_error'],
  ['attack-require', "require('fs').readFileSync('/etc/passwd')", 'script_error'],
  ['attack-constructor', "globalThis.constructor.constructor('return process')().exit(1)", 'script_error'],
  ['attack-this-constructor', "this.constructor.constructor('return process')().exit(1)", 'script_error'],
  ['attack-loop', 'while (true) {}', 'script_timeout'],
  ['attack-memory', 'const a = []; while (true) a.push(new Array(1e6).fill(1))', /^script_(memory|timeout)$/],
];

export function defineScenario(label: string, start: () => Promise<Baton>, stop: (b: Baton) => Promise<void>): void {
  describe(label, () => {
    let baton: Baton;
    let http: Server;
    let received: Array<{ method: string; url: string; body: string; idempotencyKey: string | undefined }> = [];
    let notifyUrl = '';

    const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
      const res = await baton.app!.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}) });
      const body = res.body ? (String(res.headers['content-type'] ?? '').includes('json') ? res.json() : res.body) : null;
      return { status: res.statusCode, body };
    };

    beforeAll(async () => {
      received = [];
      http = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          received.push({ method: req.method!, url: req.url!, body, idempotencyKey: req.headers['idempotency-key'] as string | undefined });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: true, seen: JSON.parse(body || 'null') }));
        });
      });
      await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
      notifyUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/notify`;
      baton = await start();
      const files = [
        { name: 'order-approval.bpmn', content: readFileSync(EXAMPLE_FILE, 'utf8') },
        { name: 'billing.bpmn', content: model('billing.bpmn') },
        ...ATTACKS.map(([key, script]) => ({ name: `${key}.bpmn`, content: scriptModel(key, script) })),
        { name: 'fine-script.bpmn', content: scriptModel('fine-script', 'result = 6 * 7;') },
        { name: 'two-tasks.bpmn', content: model('two-tasks.bpmn') },
      ];
      const dep = await call('POST', '/v1/deployments', { name: 'scenario', files });
      expect(dep.status).toBe(201);
    });

    afterAll(async () => {
      await stop(baton);
      await new Promise<void>((r) => http.close(() => r()));
    });

    it('redeploying identical content keeps the version; changed content makes a new one', async () => {
      const same = await call('POST', '/v1/deployments', { files: [{ name: 'x.bpmn', content: readFileSync(EXAMPLE_FILE, 'utf8') }] });
      expect(same.status).toBe(201);
      expect(same.body.processes).toEqual([expect.objectContaining({ key: 'order-approval', version: 1 })]);
      const changed = readFileSync(EXAMPLE_FILE, 'utf8').replace('Approve order', 'Approve the order');
      const v2 = await call('POST', '/v1/deployments', { files: [{ name: 'x.bpmn', content: changed }] });
      expect(v2.body.processes).toEqual([expect.objectContaining({ key: 'order-approval', version: 2 })]);
      const def = await call('GET', '/v1/process-definitions/order-approval');
      expect(def.body).toMatchObject({ key: 'order-approval', version: 2, versions: [2, 1] });
      const v1 = await call('GET', '/v1/process-definitions/order-approval?version=1');
      expect(v1.body.version).toBe(1);
      const xml = await baton.app!.inject({ method: 'GET', url: '/v1/process-definitions/order-approval/xml?version=2' });
      expect(xml.statusCode).toBe(200);
      expect(xml.body).toContain('Approve the order');
      const list = await call('GET', '/v1/process-definitions');
      expect(list.body.items.map((d: { key: string }) => d.key)).toEqual(expect.arrayContaining(['billing', 'fine-script', 'order-approval', 'two-tasks']));
    });

    it('accepts a multipart upload', async () => {
      const boundary = '----baton-test-boundary';
      const content = model('two-tasks.bpmn').replace('name="Review"', 'name="Review it"');
      const payload =
        `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nmultipart-deploy\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="two-tasks.bpmn"\r\nContent-Type: application/xml\r\n\r\n${content}\r\n` +
        `--${boundary}--\r\n`;
      const res = await baton.app!.inject({
        method: 'POST',
        url: '/v1/deployments',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload,
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().processes).toEqual([expect.objectContaining({ key: 'two-tasks', version: 2 })]);
      const empty = await baton.app!.inject({
        method: 'POST',
        url: '/v1/deployments',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--${boundary}--\r\n`,
      });
      expect(empty.statusCode).toBe(400);
      expect(empty.json().code).toBe('invalid_request');
    });

    it('rejects an invalid model with element ids, and changes nothing', async () => {
      const before = await call('GET', '/v1/process-definitions/two-tasks');
      const bad = model('two-tasks.bpmn').replace('targetRef="join" />', 'targetRef="nowhere" />').replace('name="Review"', 'name="Changed"');
      const res = await call('POST', '/v1/deployments', { files: [{ name: 'bad.bpmn', content: bad }] });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('invalid_model');
      expect(res.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ file: 'bad.bpmn', elementId: expect.any(String) })]));
      const def = await call('GET', '/v1/process-definitions/two-tasks');
      expect(def.body.versions).toEqual(before.body.versions);
      const notXml = await call('POST', '/v1/deployments', { files: [{ name: 'junk.bpmn', content: 'not xml at all' }] });
      expect(notXml.status).toBe(400);
      expect(notXml.body.details[0]).toMatchObject({ file: 'junk.bpmn' });
    });

    it('runs the example: user task, completion, end; history in order', async () => {
      const started = await call('POST', '/v1/process-instances', {
        processKey: 'order-approval',
        version: 1,
        businessKey: 'order-42',
        variables: { price: 600, qty: 2 },
        waitMs: 10_000,
      });
      expect(started.status).toBe(201);
      expect(started.body).toMatchObject({ status: 'waiting', activeElements: ['approve'], businessKey: 'order-42', variables: { price: 600, qty: 2, total: 1200 } });
      const id = started.body.id as string;

      const tasks = await call('GET', `/v1/tasks?processInstanceId=${id}&state=open`);
      expect(tasks.body.items).toHaveLength(1);
      const task = tasks.body.items[0];
      expect(task).toMatchObject({ elementId: 'approve', name: 'Approve order', lane: 'Managers', candidateGroups: ['managers'], state: 'open', processKey: 'order-approval' });
      const byGroup = await call('GET', '/v1/tasks?candidateGroup=managers&state=open');
      expect(byGroup.body.items.map((t: { id: string }) => t.id)).toContain(task.id);

      const done = await call('POST', `/v1/tasks/${task.id}/complete`, { variables: { approved: true }, waitMs: 10_000 });
      expect(done.status).toBe(200);
      expect(done.body.instance).toMatchObject({ status: 'completed', activeElements: [], variables: { approved: true, total: 1200 } });
      expect(done.body.instance.endedAt).not.toBeNull();

      const again = await call('POST', `/v1/tasks/${task.id}/complete`, { variables: {} });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('task_not_open');

      const history = await call('GET', `/v1/process-instances/${id}/history`);
      const started_ = history.body.items.filter((h: { event: string }) => h.event === 'element_started').map((h: { elementId: string }) => h.elementId);
      expect(started_).toEqual(['start', 'compute-total', 'large-order', 'approve', 'decision', 'end-approved']);
      expect(history.body.items.at(-1).event).toBe('instance_completed');

      const page1 = await call('GET', `/v1/process-instances/${id}/history?limit=3`);
      expect(page1.body.items).toHaveLength(3);
      const page2 = await call('GET', `/v1/process-instances/${id}/history?limit=3&cursor=${page1.body.nextCursor}`);
      expect(page2.body.items[0].id).toBeGreaterThan(page1.body.items[2].id);
    });

    it('takes the default flow without a task', async () => {
      const r = await call('POST', '/v1/process-instances', { processKey: 'order-approval', variables: { price: 1, qty: 2 }, waitMs: 10_000 });
      expect(r.body).toMatchObject({ status: 'completed', variables: { total: 2 } });
    });

    it('lists instances with filters and cursor pagination', async () => {
      for (let i = 0; i < 3; i++) {
        await call('POST', '/v1/process-instances', { processKey: 'order-approval', businessKey: 'page-me', variables: { price: 1, qty: 1 } });
      }
      const first = await call('GET', '/v1/process-instances?businessKey=page-me&limit=2');
      expect(first.body.items).toHaveLength(2);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const second = await call('GET', `/v1/process-instances?businessKey=page-me&limit=2&cursor=${first.body.nextCursor}`);
      expect(second.body.items).toHaveLength(1);
      expect(second.body.nextCursor).toBeNull();
      const ids = [...first.body.items, ...second.body.items].map((i: { id: string }) => i.id);
      expect(new Set(ids).size).toBe(3);
      const completed = await eventually(async () => {
        const r = await call('GET', '/v1/process-instances?businessKey=page-me&status=completed');
        return r.body.items.length === 3 ? r : null;
      });
      expect(completed.body.items).toHaveLength(3);
    });

    it('runs an external-worker task and the built-in http connector', async () => {
      const started = await call('POST', '/v1/process-instances', {
        processKey: 'billing',
        variables: { amount: 12.5, orderId: 'o-1', notifyUrl },
        waitMs: 10_000,
      });
      expect(started.body).toMatchObject({ status: 'waiting', activeElements: ['charge'] });
      const id = started.body.id;
      const fetched = await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w1', topics: ['charge'], maxTasks: 5, lockMs: 30_000 });
      const mine = fetched.body.items.filter((t: { processInstanceId: string }) => t.processInstanceId === id);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ topic: 'charge', elementId: 'charge', retries: 2, variables: { cents: 1250, currency: 'EUR', orderId: 'o-1' } });
      // A second worker does not get the same task while it is locked.
      const other = await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w2', topics: ['charge'] });
      expect(other.body.items.map((t: { id: string }) => t.id)).not.toContain(mine[0].id);
      const wrongWorker = await call('POST', `/v1/external-tasks/${mine[0].id}/complete`, { workerId: 'w2', variables: {} });
      expect(wrongWorker.status).toBe(409);
      const ok = await call('POST', `/v1/external-tasks/${mine[0].id}/complete`, { workerId: 'w1', variables: { charged: true } });
      expect(ok.status).toBe(204);
      const done = await eventually(async () => {
        const r = await call('GET', `/v1/process-instances/${id}`);
        return r.body.status === 'completed' ? r : null;
      });
      expect(done.body.variables).toMatchObject({ charged: true, notifyResult: { status: 200, body: { ok: true, seen: { orderId: 'o-1', charged: true } } } });
      const calls = received.filter((r) => r.url === '/notify');
      expect(calls.length).toBeGreaterThanOrEqual(1);
      expect(calls[0]!.method).toBe('POST');
      expect(calls[0]!.idempotencyKey).toEqual(expect.any(String));
      const twice = await call('POST', `/v1/external-tasks/${mine[0].id}/complete`, { variables: {} });
      expect(twice.status).toBe(409);
    });

    it('external task failures: retry with backoff, then an incident; BPMN error → incident', async () => {
      const a = await call('POST', '/v1/process-instances', { processKey: 'billing', variables: { amount: 1, orderId: 'o-2', notifyUrl }, waitMs: 10_000 });
      const lock = async () => {
        const r = await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w1', topics: ['charge'], maxTasks: 100 });
        return r.body.items.find((t: { processInstanceId: string }) => t.processInstanceId === a.body.id);
      };
      const t1 = await lock();
      const f1 = await call('POST', `/v1/external-tasks/${t1.id}/fail`, { workerId: 'w1', message: 'card declined', retryBackoffMs: 0 });
      expect(f1.body).toEqual({ retries: 1, incident: false });
      const t2 = await eventually(lock);
      expect(t2.retries).toBe(1);
      const f2 = await call('POST', `/v1/external-tasks/${t2.id}/fail`, { workerId: 'w1', message: 'card declined again' });
      expect(f2.body).toEqual({ retries: 0, incident: true });
      const failed = await eventually(async () => {
        const r = await call('GET', `/v1/process-instances/${a.body.id}`);
        return r.body.status === 'error' ? r : null;
      });
      expect(failed.body.incidents).toEqual([expect.objectContaining({ code: 'service_failed', elementId: 'charge' })]);
      const inc = await call('GET', `/v1/incidents?processInstanceId=${a.body.id}`);
      expect(inc.body.items).toEqual([expect.objectContaining({ code: 'service_failed', processInstanceId: a.body.id, resolvedAt: null })]);

      const b = await call('POST', '/v1/process-instances', { processKey: 'billing', variables: { amount: 1, orderId: 'o-3', notifyUrl }, waitMs: 10_000 });
      const tb = (await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w9', topics: ['charge'], maxTasks: 100 })).body.items.find(
        (t: { processInstanceId: string }) => t.processInstanceId === b.body.id,
      );
      const be = await call('POST', `/v1/external-tasks/${tb.id}/bpmn-error`, { workerId: 'w9', errorCode: 'CARD_EXPIRED', message: 'expired' });
      expect(be.status).toBe(204);
      const errored = await eventually(async () => {
        const r = await call('GET', `/v1/process-instances/${b.body.id}`);
        return r.body.status === 'error' ? r : null;
      });
      expect(errored.body.incidents[0]).toMatchObject({ code: 'unhandled_bpmn_error', elementId: 'charge' });
      expect(errored.body.incidents[0].message).toContain('CARD_EXPIRED');
    });

    it('hostile scripts become incidents and the worker carries on', async () => {
      for (const [key, script, expected] of ATTACKS) {
        const r = await call('POST', '/v1/process-instances', { processKey: key, waitMs: 15_000 });
        expect(r.body.status, script).toBe('error');
        expect(r.body.incidents[0], script).toMatchObject({ code: typeof expected === 'string' ? expected : expect.stringMatching(expected), elementId: 'evil' });
      }
      const fine = await call('POST', '/v1/process-instances', { processKey: 'fine-script', waitMs: 10_000 });
      expect(fine.body).toMatchObject({ status: 'completed', variables: { result: 42 } });
      const incidents = await call('GET', '/v1/incidents?open=true&limit=500');
      const keys = incidents.body.items.map((i: { processKey: string }) => i.processKey);
      for (const [key] of ATTACKS) expect(keys).toContain(key);
    });

    it('parallel branches with a user task and an external task join, then a script sees both', async () => {
      const r = await call('POST', '/v1/process-instances', { processKey: 'two-tasks', waitMs: 10_000 });
      expect(r.body.status).toBe('waiting');
      expect([...r.body.activeElements].sort()).toEqual(['enrich', 'review']);
      const task = (await call('GET', `/v1/tasks?processInstanceId=${r.body.id}`)).body.items[0];
      await call('POST', `/v1/tasks/${task.id}/complete`, { variables: { reviewed: true }, waitMs: 10_000 });
      const mid = await call('GET', `/v1/process-instances/${r.body.id}`);
      expect(mid.body.activeElements).toEqual(['enrich', 'join']);
      const job = (await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w', topics: ['enrich'], maxTasks: 50 })).body.items.find(
        (t: { processInstanceId: string }) => t.processInstanceId === r.body.id,
      );
      await call('POST', `/v1/external-tasks/${job.id}/complete`, { variables: { enriched: true } });
      const done = await eventually(async () => {
        const x = await call('GET', `/v1/process-instances/${r.body.id}`);
        return x.body.status === 'completed' ? x : null;
      });
      expect(done.body.variables).toMatchObject({ reviewed: true, enriched: true, done: true });
    });

    it('exactly one of many concurrent completions of a task succeeds', async () => {
      const r = await call('POST', '/v1/process-instances', { processKey: 'order-approval', version: 1, variables: { price: 2000, qty: 1 }, waitMs: 10_000 });
      const task = (await call('GET', `/v1/tasks?processInstanceId=${r.body.id}`)).body.items[0];
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => call('POST', `/v1/tasks/${task.id}/complete`, { variables: { approved: i % 2 === 0, who: i } })),
      );
      const statuses = results.map((x) => x.status).sort();
      expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
      const done = await eventually(async () => {
        const x = await call('GET', `/v1/process-instances/${r.body.id}`);
        return x.body.status === 'completed' ? x : null;
      });
      const winner = results.find((x) => x.status === 200)!;
      expect(done.body.variables.who).toBe(winner.body.task.id === task.id ? done.body.variables.who : -1);
      const history = await call('GET', `/v1/process-instances/${r.body.id}/history`);
      expect(history.body.items.filter((h: { event: string; elementId: string }) => h.event === 'element_completed' && h.elementId === 'approve')).toHaveLength(1);
    });

    it('cancels a waiting instance: terminated, its task cancelled, further commands refused', async () => {
      const r = await call('POST', '/v1/process-instances', { processKey: 'order-approval', version: 1, variables: { price: 2000, qty: 1 }, waitMs: 10_000 });
      const c = await call('POST', `/v1/process-instances/${r.body.id}/cancel`, { reason: 'customer withdrew', waitMs: 10_000 });
      expect(c.status).toBe(200);
      expect(c.body).toMatchObject({ status: 'terminated', activeElements: [] });
      const tasks = await call('GET', `/v1/tasks?processInstanceId=${r.body.id}`);
      expect(tasks.body.items[0].state).toBe('cancelled');
      const again = await call('POST', `/v1/process-instances/${r.body.id}/cancel`, {});
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('instance_ended');
    });

    it('suspend holds events until resume', async () => {
      const r = await call('POST', '/v1/process-instances', { processKey: 'order-approval', version: 1, variables: { price: 2000, qty: 1 }, waitMs: 10_000 });
      const s = await call('POST', `/v1/process-instances/${r.body.id}/suspend`, { waitMs: 10_000 });
      expect(s.body.status).toBe('suspended');
      const task = (await call('GET', `/v1/tasks?processInstanceId=${r.body.id}`)).body.items[0];
      await call('POST', `/v1/tasks/${task.id}/complete`, { variables: { approved: true } });
      await new Promise((res) => setTimeout(res, 300));
      expect((await call('GET', `/v1/process-instances/${r.body.id}`)).body).toMatchObject({ status: 'suspended', activeElements: ['approve'] });
      await call('POST', `/v1/process-instances/${r.body.id}/resume`, {});
      const done = await eventually(async () => {
        const x = await call('GET', `/v1/process-instances/${r.body.id}`);
        return x.body.status === 'completed' ? x : null;
      });
      expect(done.body.variables.approved).toBe(true);
    });

    it('an inbox event whose doorbell was lost is picked up by the sweep', async () => {
      const r = await call('POST', '/v1/process-instances', { processKey: 'order-approval', version: 1, variables: { price: 2000, qty: 1 }, waitMs: 10_000 });
      const task = (await call('GET', `/v1/tasks?processInstanceId=${r.body.id}`)).body.items[0];
      // Write the completion the way the API does, but never ring the doorbell.
      await baton.db.transaction().execute(async (trx) => {
        await trx.updateTable('human_task').set({ state: 'completed' }).where('id', '=', task.id).execute();
        await insertInboxEvent(trx, r.body.id, 'humanTaskCompleted', { taskId: task.id, variables: { approved: false } });
      });
      const done = await eventually(async () => {
        const x = await call('GET', `/v1/process-instances/${r.body.id}`);
        return x.body.status === 'completed' ? x : null;
      }, 15_000);
      expect(done.body.variables.approved).toBe(false);
    });

    it('answers bad requests with stable codes', async () => {
      const cases: Array<[string, string, unknown, number, string]> = [
        ['POST', '/v1/process-instances', { processKey: 'nope' }, 404, 'process_not_found'],
        ['POST', '/v1/process-instances', { processKey: 'order-approval', version: 99 }, 404, 'process_not_found'],
        ['POST', '/v1/process-instances', { processKey: 'order-approval', variables: [1, 2] }, 400, 'invalid_request'],
        ['POST', '/v1/process-instances', { processKey: 'order-approval', unknownField: 1 }, 400, 'invalid_request'],
        ['POST', '/v1/process-instances', {}, 400, 'invalid_request'],
        ['GET', '/v1/process-instances/not-a-uuid', undefined, 404, 'instance_not_found'],
        ['GET', '/v1/process-instances/00000000-0000-7000-8000-000000000000', undefined, 404, 'instance_not_found'],
        ['GET', '/v1/process-instances?status=bogus', undefined, 400, 'invalid_request'],
        ['GET', '/v1/process-instances?cursor=%%%', undefined, 400, 'invalid_cursor'],
        ['GET', '/v1/tasks/00000000-0000-7000-8000-000000000000', undefined, 404, 'task_not_found'],
        ['POST', '/v1/tasks/00000000-0000-7000-8000-000000000000/complete', {}, 404, 'task_not_found'],
        ['POST', '/v1/external-tasks/00000000-0000-7000-8000-000000000000/complete', {}, 404, 'external_task_not_found'],
        ['POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w', topics: [] }, 400, 'invalid_request'],
        ['GET', '/v1/process-definitions/nope', undefined, 404, 'process_not_found'],
        ['POST', '/v1/deployments', { files: [] }, 400, 'invalid_request'],
        ['GET', '/v1/nothing-here', undefined, 404, 'route_not_found'],
      ];
      for (const [method, url, body, status, code] of cases) {
        const r = await call(method as 'GET' | 'POST', url, body);
        expect([url, r.status], JSON.stringify(r.body)).toEqual([url, status]);
        expect(r.body.code, url).toBe(code);
        expect(typeof r.body.message).toBe('string');
      }
      const badJson = await baton.app!.inject({ method: 'POST', url: '/v1/process-instances', headers: { 'content-type': 'application/json' }, payload: '{"processKey":' });
      expect(badJson.statusCode).toBe(400);
      expect(badJson.json().code).toBe('invalid_json');
    });

    it('serves health, readiness and the OpenAPI document', async () => {
      expect((await call('GET', '/health')).status).toBe(200);
      const ready = await call('GET', '/ready');
      expect(ready.body).toMatchObject({ status: 'ready', checks: { database: 'ok', queue: 'ok' } });
      const doc = await call('GET', '/openapi.json');
      expect(doc.body.openapi).toMatch(/^3\./);
      expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/deployments', '/v1/process-instances', '/v1/tasks/{id}/complete', '/v1/external-tasks/fetch-and-lock']));
    });
  });
}
