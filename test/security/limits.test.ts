/**
 * Budgets that keep one model from taking a node down (issue 15; security
 * review D1, D3): timer cycles shorter than BATON_MIN_TIMER_INTERVAL_MS are
 * refused at deploy, naming the element; a multi-instance past
 * BATON_MAX_MI_INSTANCES is an incident, and the API goes on answering.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { apiClient, defs } from '../support/api.js';
import { isolation, startDistributed, startEmbedded } from '../support/env.js';

const iso = isolation('limits');
let baton: Baton;
const { call, start } = apiClient(() => baton);

beforeAll(async () => {
  baton = await startDistributed(iso, ['api', 'step', 'scheduler']);
});
afterAll(async () => {
  await baton?.close();
  await iso.drop();
});

const timerStart = (id: string, cycle: string) =>
  defs(id, `<bpmn:startEvent id="tick"><bpmn:timerEventDefinition><bpmn:timeCycle>${cycle}</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>
   <bpmn:sequenceFlow id="f1" sourceRef="tick" targetRef="e"/><bpmn:endEvent id="e"/>`);
const deploy = (id: string, content: string) => call('POST', '/v1/deployments', { files: [{ name: `${id}.bpmn`, content }] });

describe('timer cycles', () => {
  it.each([
    ['zero', 'R100/PT0S', 0],
    ['unbounded', 'R/PT0.001S', 1],
    ['sub-second', 'R2/PT0.4S', 400],
  ])('a %s interval (%s) is refused at deploy, naming the element, and nothing is deployed', async (name, cycle, gap) => {
    const r = await deploy(`cycle-${name}`, timerStart(`cycle-${name}`, cycle));
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'invalid_model', details: [{ elementId: 'tick' }] });
    expect(r.body.details[0].message).toBe(`timer cycle '${cycle}' fires every ${gap} ms, more often than the minimum of 1000 ms (BATON_MIN_TIMER_INTERVAL_MS)`);
    expect((await call('GET', `/v1/process-definitions/cycle-${name}`)).status).toBe(404);
  });

  it('a cycle of one second, or a cron every second, is accepted', async () => {
    expect((await deploy('cycle-ok', timerStart('cycle-ok', 'R2/PT1S'))).status).toBe(201);
    expect((await deploy('cron-ok', timerStart('cron-ok', '* * * * * *'))).status).toBe(201);
  });

  it('a boundary cycle from an expression that is too short is a timer_error when armed', async () => {
    const model = defs(
      'expr-cycle',
      `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="u"/><bpmn:userTask id="u"/>
       <bpmn:boundaryEvent id="nag" attachedToRef="u" cancelActivity="false"><bpmn:timerEventDefinition><bpmn:timeCycle>every</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>
       <bpmn:sequenceFlow id="f2" sourceRef="u" targetRef="e"/><bpmn:endEvent id="e"/>`,
    );
    expect((await deploy('expr-cycle', model)).status).toBe(201);
    const i = await start('expr-cycle', { every: 'R/PT0.01S' });
    expect(i.status).toBe('error');
    // the incident stops the activity's token, and names the boundary timer
    expect(i.incidents).toMatchObject([{ code: 'timer_error', elementId: 'u' }]);
    expect(i.incidents[0].message).toMatch(/'nag'.*more often than the minimum of 1000 ms/);
  });
});

describe('multi-instance size', () => {
  it('a cardinality of 20 million is a loop_error incident; the API keeps answering', async () => {
    const model = defs(
      'mi-bomb',
      `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="each"/>
       <bpmn:userTask id="each"><bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>n</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>`,
    );
    expect((await deploy('mi-bomb', model)).status).toBe(201);
    const i = await start('mi-bomb', { n: 20_000_000 });
    expect(i.status).toBe('error');
    expect(i.incidents).toMatchObject([{ code: 'loop_error', elementId: 'each' }]);
    expect((await call('GET', '/health')).status).toBe(200);
    expect((await call('GET', `/v1/tasks?processInstanceId=${i.id}`)).body.items).toEqual([]);
  });
});

describe('lists leave variables out unless named', () => {
  it('a page of instances carries no variables; ?variables=a,b picks those, read in Postgres', async () => {
    const model = defs('holds-vars', `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="u"/><bpmn:userTask id="u"/>`);
    expect((await deploy('holds-vars', model)).status).toBe(201);
    const big = 'x'.repeat(200_000);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await start('holds-vars', { big, n: i, tag: 'keep' })).id);
    const plain = await call('GET', '/v1/process-instances?processKey=holds-vars');
    expect(plain.status).toBe(200);
    expect(plain.body.items).toHaveLength(3);
    for (const item of plain.body.items) {
      expect(item).not.toHaveProperty('variables');
      expect(item).toMatchObject({ processKey: 'holds-vars', status: 'waiting', activeElements: ['u'] });
    }
    expect(JSON.stringify(plain.body).length).toBeLessThan(10_000);
    const named = await call('GET', '/v1/process-instances?processKey=holds-vars&variables=n,%20tag,missing');
    expect(named.body.items.map((i: { variables: object }) => i.variables)).toEqual([
      { n: 0, tag: 'keep' },
      { n: 1, tag: 'keep' },
      { n: 2, tag: 'keep' },
    ]);
    // one instance still reads whole
    expect((await call('GET', `/v1/process-instances/${ids[0]}`)).body.variables.big).toHaveLength(200_000);
  });
});

describe('model size', () => {
  it('a process with more than BATON_MAX_MODEL_ELEMENTS elements is refused at deploy, before it is compiled', async () => {
    let body = '<bpmn:startEvent id="s" />';
    let prev = 's';
    for (let i = 0; i < 5_001; i++) {
      body += `<bpmn:task id="t${i}" /><bpmn:sequenceFlow id="f${i}" sourceRef="${prev}" targetRef="t${i}" />`;
      prev = `t${i}`;
    }
    const r = await deploy('huge', defs('huge', body));
    expect(r.status).toBe(400);
    expect(r.body.details).toEqual([
      expect.objectContaining({ elementId: 'huge', message: expect.stringContaining('10003 flow nodes and sequence flows, more than the limit of 10000 (BATON_MAX_MODEL_ELEMENTS)') }),
    ]);
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('the compiled-definition cache is bounded by estimated bytes: an entry past the budget is dropped and compiled again', async () => {
    const small = (id: string) => defs(id, `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="e"/><bpmn:endEvent id="e"/>`);
    const a = (await deploy('cache-a', small('cache-a'))).body.processes[0].id as string;
    const b = (await deploy('cache-b', small('cache-b'))).body.processes[0].id as string;
    const { createDefinitionCache } = await import('../../src/runtime/definitions.js');
    const roomy = createDefinitionCache(500, 64 * 1024 * 1024);
    const first = await roomy.get(baton.db, a);
    await roomy.get(baton.db, b);
    expect(await roomy.get(baton.db, a)).toBe(first);
    // a budget that holds one of these small graphs (~450 characters of XML × 25) but not two
    const tight = createDefinitionCache(500, 15_000);
    const again = await tight.get(baton.db, a);
    await tight.get(baton.db, b);
    const recompiled = await tight.get(baton.db, a);
    expect(recompiled).not.toBe(again);
    expect(recompiled).toEqual(again);
  });
});

describe('instance state size', () => {
  let small: Baton;
  const api = apiClient(() => small);
  beforeAll(async () => {
    small = await startEmbedded({ BATON_MAX_STATE_BYTES: '65536' });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('a step whose state would pass BATON_MAX_STATE_BYTES sets its event aside as event_rejected; the stored state is unchanged', async () => {
    const model = defs(
      'grow',
      `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="fill"/>
       <bpmn:scriptTask id="fill"><bpmn:script>blob = 'x'.repeat(n)</bpmn:script></bpmn:scriptTask>
       <bpmn:sequenceFlow id="f2" sourceRef="fill" targetRef="wait"/><bpmn:userTask id="wait"/>`,
    );
    expect((await api.call('POST', '/v1/deployments', { files: [{ name: 'grow.bpmn', content: model }] })).status).toBe(201);
    const ok = await api.start('grow', { n: 10 });
    expect(ok.status).toBe('waiting');
    const big = await api.start('grow', { n: 100_000 });
    const rejected = await api.until(big.id, 'error', 20_000).catch(async () => api.instance(big.id));
    expect(rejected.incidents[0]).toMatchObject({ code: 'event_rejected' });
    expect(rejected.incidents[0].message).toMatch(/more than the limit of 65536 \(BATON_MAX_STATE_BYTES\)/);
    expect(rejected.variables).not.toHaveProperty('blob');
    expect((await api.call('GET', '/health')).status).toBe(200);
  });
});

describe('script time per step', () => {
  let b: Baton;
  const api = apiClient(() => b);
  beforeAll(async () => {
    b = await startEmbedded({ BATON_STEP_SCRIPT_BUDGET_MS: '300', SCRIPT_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await b?.close();
  });

  it('a step whose scripts pass BATON_STEP_SCRIPT_BUDGET_MS stops with script_budget; a retry goes on in a new step', async () => {
    const spin = (id: string) => `<bpmn:scriptTask id="${id}" scriptFormat="javascript"><bpmn:script>const until = Date.now() + 200; while (Date.now() &lt; until) {} ${id}_done = true</bpmn:script></bpmn:scriptTask>`;
    const model = defs(
      'slow-steps',
      `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="a"/>${spin('a')}
       <bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="b"/>${spin('b')}
       <bpmn:sequenceFlow id="f3" sourceRef="b" targetRef="c"/>${spin('c')}
       <bpmn:sequenceFlow id="f4" sourceRef="c" targetRef="e"/><bpmn:endEvent id="e"/>`,
    );
    const warm = defs('warm-sandbox', `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="w"/><bpmn:scriptTask id="w" scriptFormat="javascript"><bpmn:script>w = [1].length</bpmn:script></bpmn:scriptTask><bpmn:sequenceFlow id="f2" sourceRef="w" targetRef="e"/><bpmn:endEvent id="e"/>`);
    expect((await api.call('POST', '/v1/deployments', { files: [{ name: 'slow.bpmn', content: model }, { name: 'warm.bpmn', content: warm }] })).status).toBe(201);
    // the sandbox process's start is not what this measures
    expect((await api.start('warm-sandbox')).status).toBe('completed');
    const i = await api.start('slow-steps');
    expect(i.status).toBe('error');
    // a and b ran (400 ms, past the 300 ms budget): c's evaluation is refused
    expect(i.variables).toMatchObject({ a_done: true, b_done: true });
    expect(i.incidents[0]).toMatchObject({ code: 'script_budget', elementId: 'c' });
    expect(i.incidents[0].message).toMatch(/BATON_STEP_SCRIPT_BUDGET_MS=300/);
    const retried = await api.call('POST', `/v1/incidents/${i.incidents[0].id}/retry`, { waitMs: 10_000 });
    expect(retried.status).toBeLessThan(300);
    const done = await api.until(i.id, 'completed');
    expect(done.variables).toMatchObject({ c_done: true });
  });
});

describe('compiling off the event loop', () => {
  it('a deploy of an 8,000-element model leaves the event loop free while it compiles', { timeout: 60_000 }, async () => {
    const n = 4000;
    let body = '<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="t0"/>';
    for (let i = 0; i < n; i++) body += `<bpmn:task id="t${i}"/><bpmn:sequenceFlow id="f${i + 1}" sourceRef="t${i}" targetRef="${i + 1 < n ? `t${i + 1}` : 'e'}"/>`;
    body += '<bpmn:endEvent id="e"/>';
    const model = defs('big-chain', body);
    let last = performance.now();
    let maxGap = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 10);
    const t0 = performance.now();
    const dep = await deploy('big-chain', model);
    const ms = performance.now() - t0;
    clearInterval(tick);
    expect(dep.status).toBe(201);
    // the compile runs in the compile thread: no gap near the deploy's own length
    // (on the loop, the compile alone was most of it)
    expect(maxGap).toBeLessThan(Math.max(250, ms / 2));
  });
});

describe('reading huge variables', () => {
  let small: Baton;
  const api = apiClient(() => small);
  beforeAll(async () => {
    small = await startEmbedded({ BATON_MAX_VARIABLE_READ_BYTES: '10000' });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('an instance read leaves a variable over BATON_MAX_VARIABLE_READ_BYTES in Postgres and names it; it reads alone', async () => {
    const model = defs('holds', `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait"/><bpmn:userTask id="wait"/>`);
    expect((await api.call('POST', '/v1/deployments', { files: [{ name: 'holds.bpmn', content: model }] })).status).toBe(201);
    const big = 'x'.repeat(50_000);
    const i = await api.start('holds', { big, small: 1, list: [1, 2, 3] });
    const read = await api.call('GET', `/v1/process-instances/${i.id}`);
    expect(read.status).toBe(200);
    expect(read.body.variables).toEqual({ small: 1, list: [1, 2, 3] });
    expect(read.body.omittedVariables).toEqual([{ name: 'big', bytes: 50_002 }]);
    const alone = await api.call('GET', `/v1/process-instances/${i.id}/variables/big`);
    expect(alone).toMatchObject({ status: 200, body: { name: 'big', value: big } });
    expect((await api.call('GET', `/v1/process-instances/${i.id}/variables/small`)).body).toEqual({ name: 'small', value: 1 });
    expect((await api.call('GET', `/v1/process-instances/${i.id}/variables/nope`)).body.code).toBe('variable_not_found');
    expect((await api.call('GET', `/v1/process-instances/00000000-0000-7000-8000-000000000000/variables/big`)).body.code).toBe('instance_not_found');
    // an instance without big variables reads as before
    const plain = await api.start('holds', { small: 2 });
    const p = await api.call('GET', `/v1/process-instances/${plain.id}`);
    expect(p.body.variables).toEqual({ small: 2 });
    expect(p.body).not.toHaveProperty('omittedVariables');
  });
});

describe('tokens per instance', () => {
  let b: Baton;
  const api = apiClient(() => b);
  beforeAll(async () => {
    b = await startEmbedded({ BATON_MAX_TOKENS: '20' });
  });
  afterAll(async () => {
    await b?.close();
  });

  it('a step that would leave more than BATON_MAX_TOKENS live tokens sets its event aside; a smaller one runs', async () => {
    const model = defs(
      'fan-out',
      `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="each"/>
       <bpmn:userTask id="each"><bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>n</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>`,
    );
    expect((await api.call('POST', '/v1/deployments', { files: [{ name: 'fan.bpmn', content: model }] })).status).toBe(201);
    expect((await api.start('fan-out', { n: 5 })).status).toBe('waiting');
    const big = await api.start('fan-out', { n: 30 });
    const rejected = await api.until(big.id, 'error', 20_000).catch(async () => api.instance(big.id));
    expect(rejected.incidents[0]).toMatchObject({ code: 'event_rejected' });
    expect(rejected.incidents[0].message).toMatch(/more than 20 live tokens \(BATON_MAX_TOKENS\)/);
    expect((await api.call('GET', `/v1/tasks?processInstanceId=${big.id}`)).body.items).toEqual([]);
  });
});

describe('element executions per step', () => {
  let b: Baton;
  const api = apiClient(() => b);
  beforeAll(async () => {
    b = await startEmbedded({ BATON_MAX_STEP_ELEMENTS: '50' });
  });
  afterAll(async () => {
    await b?.close();
  });

  it('a loop without a wait state ends in step_limit after BATON_MAX_STEP_ELEMENTS executions', async () => {
    const content = readFileSync(new URL('../fixtures/step-limit-cycle.bpmn', import.meta.url), 'utf8');
    const dep = await api.call('POST', '/v1/deployments', { files: [{ name: 'cycle.bpmn', content }] });
    expect(dep.status).toBe(201);
    const i = await api.start(dep.body.processes[0].key);
    expect(i.status).toBe('error');
    expect(i.incidents[0]).toMatchObject({ code: 'step_limit' });
    expect(i.incidents[0].message).toMatch(/more than 50 element executions in one step \(BATON_MAX_STEP_ELEMENTS\)/);
  });
});
