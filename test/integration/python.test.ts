/**
 * Issue 14 through the API, in embedded and in distributed mode: SpiffArena
 * style models (the spiffworkflow namespace, no scriptFormat) run their
 * Python scripts, conditions, timers and correlation keys; the resolved
 * language shows on the process definition; the deployment's `language`
 * option; failures are incidents with a line; BATON_PYTHON=false refuses
 * Python models at deploy.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { apiClient, defs } from '../support/api.js';
import { eventually, isolation, startDistributed, startEmbedded, type Isolation } from '../support/env.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
const SPIFF_NS = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"';
const spiff = (id: string, body: string) => defs(id, body).replace('<bpmn:definitions ', `<bpmn:definitions ${SPIFF_NS} `);

const QUICK_TIMER = spiff(
  'py_quick_timer',
  `<bpmn:startEvent id="start" />
   <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="nap" />
   <bpmn:intermediateCatchEvent id="nap">
     <bpmn:timerEventDefinition><bpmn:timeDuration>timedelta(milliseconds=nap_ms)</bpmn:timeDuration></bpmn:timerEventDefinition>
   </bpmn:intermediateCatchEvent>
   <bpmn:sequenceFlow id="f1" sourceRef="nap" targetRef="after" />
   <bpmn:scriptTask id="after"><bpmn:script>woke = True</bpmn:script></bpmn:scriptTask>
   <bpmn:sequenceFlow id="f2" sourceRef="after" targetRef="end" />
   <bpmn:endEvent id="end" />`,
);

/** no spiffworkflow namespace: JavaScript unless the deployment says otherwise */
const PLAIN = defs(
  'py_plain',
  `<bpmn:startEvent id="start" />
   <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="s" />
   <bpmn:scriptTask id="s"><bpmn:script>kind = 'python' if str(True) == 'True' else 'javascript'</bpmn:script></bpmn:scriptTask>
   <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="end" />
   <bpmn:endEvent id="end" />`,
);

const modes: Array<[string, () => Promise<{ b: Baton; iso?: Isolation }>]> = [
  ['embedded', async () => ({ b: await startEmbedded() })],
  [
    'distributed',
    async () => {
      const iso = isolation('python');
      return { b: await startDistributed(iso, ['api', 'step', 'scheduler']), iso };
    },
  ],
];

describe.each(modes)('Python models through the API (%s)', (_mode, start) => {
  let b: Baton;
  let iso: Isolation | undefined;
  const api = apiClient(() => b);

  beforeAll(async () => {
    ({ b, iso } = await start());
    const dep = await api.call('POST', '/v1/deployments', {
      files: ['python-script-assignments.bpmn', 'python-gateways.bpmn', 'python-message-correlation.bpmn', 'python-script-failures.bpmn', 'python-multi-instance.bpmn']
        .map((name) => ({ name, content: fixture(name) }))
        .concat([{ name: 'quick-timer.bpmn', content: QUICK_TIMER }]),
    });
    expect(dep.status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    await b?.close();
    await iso?.drop();
  });

  it('shows the resolved language on the process definition', async () => {
    const def = await api.call('GET', '/v1/process-definitions/py_assign');
    expect(def.status).toBe(200);
    expect(def.body).toMatchObject({ key: 'py_assign', language: 'python' });
  });

  it('runs a Python script task and keeps its variables as JSON', { timeout: 60_000 }, async () => {
    const started = await api.start('py_assign', { price: 12.5, qty: 3, order_id: 'A-7', items: [1, 2, 3], obsolete: 'x' });
    const waiting = await api.until(started.id, 'waiting', 30_000);
    expect(waiting.incidents).toEqual([]);
    expect(waiting.variables).toMatchObject({ total: 45, label: 'order A-7: 3 x 12.5', items: [1, 2, 3, 4], when: '2026-01-02T03:04:05', span: 'P1DT2H3.5S', tags: ['a', 'b'] });
    expect(waiting.variables).not.toHaveProperty('obsolete');
    expect(waiting.variables).not.toHaveProperty('helper');
    const tasks = await api.call('GET', `/v1/tasks?processInstanceId=${started.id}`);
    const done = await api.call('POST', `/v1/tasks/${tasks.body.items[0].id}/complete`, { variables: {}, waitMs: 10_000 });
    expect(done.status).toBeLessThan(300);
    await api.until(started.id, 'completed');
  });

  it('chooses gateway flows by Python conditions and loops by Python expressions', async () => {
    const g = await api.start('py_gateways', { amount: 5000, approved: true, reviewer: 'x', tags: ['a'], items: [{ qty: 3 }] });
    const done = await api.until(g.id, 'completed');
    expect(done.variables).toMatchObject({ route: 'big', took_a: true, took_c: true });
    const orders = [1, 2, 3, 4].map((id) => ({ id, amount: id * 10 }));
    const mi = await api.start('py_mi', { orders, stop_at: 2, attempts: 0 });
    const miDone = await api.until(mi.id, 'completed');
    expect(miDone.variables).toMatchObject({ doubled: [20, 40, null, null], attempts: 3 });
  });

  it('fires a timer whose duration is a Python timedelta', async () => {
    const t = await api.start('py_quick_timer', { nap_ms: 300 });
    const done = await api.until(t.id, 'completed', 20_000);
    expect(done.variables).toMatchObject({ woke: true });
  });

  it('correlates a published message by the Python retrieval expressions', async () => {
    const w = await api.start('py_corr', { order: { id: 42 }, region: 'eu' });
    expect((await api.until(w.id, 'waiting')).activeElements).toEqual(['paid']);
    const pub = await api.call('POST', '/v1/messages', { name: 'order_paid', variables: { order: { id: 42 }, region: 'eu', paid: true } });
    expect(pub.status).toBe(200);
    const done = await api.until(w.id, 'completed');
    expect(done.variables).toMatchObject({ paid: true });
  });

  it('turns a Python exception into an incident with its type, message and line', async () => {
    const f = await api.start('py_fail', { case: 'name', amount: 2 });
    const failed = await api.until(f.id, 'error');
    expect(failed.incidents[0]).toMatchObject({ code: 'script_error', elementId: 'name_error', line: 2, message: "NameError: name 'rate' is not defined" });
  });

  it('takes the language from the deployment option for a model that names none', async () => {
    const py = await api.call('POST', '/v1/deployments', { language: 'text/x-python', files: [{ name: 'plain.bpmn', content: PLAIN }] });
    expect(py.status).toBe(201);
    expect((await api.call('GET', '/v1/process-definitions/py_plain')).body).toMatchObject({ language: 'python', version: 1 });
    const ran = await api.start('py_plain');
    expect((await api.until(ran.id, 'completed')).variables).toEqual({ kind: 'python' });
    // the same content without the option is JavaScript: a new version, not the Python one
    const js = await api.call('POST', '/v1/deployments', { files: [{ name: 'plain.bpmn', content: PLAIN }] });
    expect(js.status).toBe(201);
    expect((await api.call('GET', '/v1/process-definitions/py_plain')).body).toMatchObject({ language: 'javascript', version: 2 });
    const bad = await api.call('POST', '/v1/deployments', { language: 'cobol', files: [{ name: 'plain.bpmn', content: PLAIN }] });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
  });
});

describe('BATON_PYTHON=false', () => {
  let b: Baton;
  const api = apiClient(() => b);
  beforeAll(async () => {
    b = await startEmbedded({ BATON_PYTHON: 'false' });
  });
  afterAll(async () => {
    await b?.close();
  });

  it('refuses a Python model at deploy, naming the process, and still runs JavaScript', async () => {
    const dep = await api.call('POST', '/v1/deployments', { files: [{ name: 'g.bpmn', content: fixture('python-gateways.bpmn') }] });
    expect(dep.status).toBe(400);
    expect(dep.body.code).toBe('invalid_model');
    expect(dep.body.details[0]).toMatchObject({ elementId: 'py_gateways' });
    expect(dep.body.details[0].message).toMatch(/BATON_PYTHON=false/);
    const js = await api.call('POST', '/v1/deployments', { files: [{ name: 'plain.bpmn', content: PLAIN }] });
    expect(js.status).toBe(201);
    await eventually(async () => (await api.call('GET', '/v1/process-definitions/py_plain')).status === 200);
  });
});
