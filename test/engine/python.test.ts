/**
 * Python models through the engine (issue 14): SpiffArena-style fixtures
 * (the spiffworkflow namespace, no scriptFormat) whose scripts, conditions,
 * loop expressions, timers and correlation keys are Python, evaluated by
 * the real Pyodide sandbox.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import { evaluatorsOf } from '../../src/expressions/index.js';
import { Instance, closeEvaluator, evaluator, loadGraph, readFixture, START_TIME, testContext } from './helpers.js';

afterAll(() => closeEvaluator());

describe('language resolution', () => {
  const defs = (attrs: string, body: string) =>
    `<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ${attrs} id="d" targetNamespace="t"><bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="x"/>${body}<bpmn:sequenceFlow id="f1" sourceRef="x" targetRef="e"/><bpmn:endEvent id="e"/></bpmn:process></bpmn:definitions>`;
  const script = (format = '') => `<bpmn:scriptTask id="x"${format}><bpmn:script>y = 1</bpmn:script></bpmn:scriptTask>`;
  const SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"';
  const compile = async (xml: string, language?: 'python' | 'javascript') => {
    const { processes, problems } = await compileFiles([{ name: 'm.bpmn', content: xml }], language ? { language } : {});
    return { graph: processes[0]?.graph, problems };
  };

  it('takes the element attribute, then expressionLanguage, then the deployment option, then the spiffworkflow namespace, else JavaScript', async () => {
    expect((await compile(defs('', script()))).graph?.language).toBe('javascript');
    expect((await compile(defs(SPIFF, script()))).graph?.language).toBe('python');
    expect((await compile(defs('', script()), 'python')).graph?.language).toBe('python');
    // the option beats the namespace, expressionLanguage beats the option
    expect((await compile(defs(SPIFF, script()), 'javascript')).graph?.language).toBe('javascript');
    expect((await compile(defs('expressionLanguage="text/x-python"', script()), 'javascript')).graph?.language).toBe('python');
    // the element's own attribute beats everything, and is recorded per element
    const own = (await compile(defs(SPIFF, script(' scriptFormat="text/javascript"')))).graph;
    expect(own?.language).toBe('python');
    expect(own?.languages).toEqual({ x: 'javascript' });
    const flow = await compile(
      defs('', `<bpmn:exclusiveGateway id="x"/>`).replace(
        '<bpmn:sequenceFlow id="f1" sourceRef="x" targetRef="e"/>',
        '<bpmn:sequenceFlow id="f1" sourceRef="x" targetRef="e"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" language="python">a is None</bpmn:conditionExpression></bpmn:sequenceFlow>',
      ),
    );
    expect(flow.problems).toEqual([]);
    expect(flow.graph?.languages).toEqual({ f1: 'python' });
  });

  it('accepts the common spellings and ignores the XPath default modelling tools write', async () => {
    for (const spelling of ['python', 'Python', 'text/x-python', 'py']) {
      expect((await compile(defs('', script(` scriptFormat="${spelling}"`)))).graph?.languages).toEqual({ x: 'python' });
    }
    for (const spelling of ['javascript', 'JavaScript', 'js', 'text/javascript', 'ecmascript']) {
      expect((await compile(defs(SPIFF, script(` scriptFormat="${spelling}"`)))).graph?.languages).toEqual({ x: 'javascript' });
    }
    expect((await compile(defs('expressionLanguage="http://www.w3.org/1999/XPath"', script()))).graph?.language).toBe('javascript');
  });

  it('refuses a language Baton does not run, naming the element or the file', async () => {
    expect((await compile(defs('', script(' scriptFormat="groovy"')))).problems).toEqual([
      { file: 'm.bpmn', elementId: 'x', message: "script format 'groovy' is not supported (Baton runs JavaScript and Python)" },
    ]);
    expect((await compile(defs('expressionLanguage="http://www.mvel.org/2.0"', script()))).problems).toEqual([
      { file: 'm.bpmn', elementId: null, message: "expressionLanguage 'http://www.mvel.org/2.0' is not supported (Baton runs JavaScript and Python)" },
    ]);
  });

  it('checks JavaScript syntax of timer expressions at deploy, and leaves Python ones to evaluation', async () => {
    const timer = (attrs: string) =>
      defs(attrs, `<bpmn:intermediateCatchEvent id="x"><bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT1M" if fast else "PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>`);
    expect((await compile(timer(SPIFF))).problems).toEqual([]);
    expect((await compile(timer(''))).problems[0]?.message).toMatch(/nor a JavaScript expression/);
  });

  it('a language without an evaluator is an incident, never another language', async () => {
    const graph = await loadGraph('python-gateways.bpmn');
    const inst = Instance.start(graph, { amount: 5, approved: true, reviewer: 'x', tags: [], items: [] }, testContext({ evaluators: evaluatorsOf({ javascript: evaluator }) }));
    expect(inst.state.incidents[0]).toMatchObject({ code: 'condition_error', elementId: 'route' });
    expect(inst.state.incidents[0]?.message).toMatch(/no python evaluator is configured/);
  });
});

describe('Python scripts', () => {
  it('assign, change in place and delete variables, with the documented conversions', async () => {
    const graph = await loadGraph('python-script-assignments.bpmn');
    const inst = Instance.start(graph, { price: 12.5, qty: 3, order_id: 'A-7', items: [1, 2, 3], obsolete: 'x' });
    expect(inst.state.incidents).toEqual([]);
    expect(inst.active).toEqual(['wait']);
    const v = inst.variables;
    expect(v).toMatchObject({
      subtotal: 37.5,
      tax: 7.5,
      total: 45,
      label: 'order A-7: 3 x 12.5',
      items: [1, 2, 3, 4],
      n: 2,
      when: '2026-01-02T03:04:05',
      day: '2026-02-03',
      span: 'P1DT2H3.5S',
      exact: 10.25,
      precise: '0.1000000000000000000001',
      pair: [1, 'two'],
      tags: ['a', 'b'],
      nothing: null,
      flag: true,
      square: 9,
      root: 4,
    });
    // deleted, and never-JSON names (functions, lambdas, modules) dropped as SpiffArena does
    for (const gone of ['scratch', 'obsolete', 'helper', 'shout', 'module', 'math']) expect(v).not.toHaveProperty(gone);
  });

  it('run spiffworkflow pre- and post-scripts around a task', async () => {
    const graph = await loadGraph('spiff-pre-post-scripts.bpmn');
    expect(graph.language).toBe('python');
    const inst = Instance.start(graph, { name: 'Ada' });
    inst.completeTask('greet', { reply: 'hi!' });
    expect(inst.variables).toEqual({ name: 'Ada', greeting: 'hello Ada', reply: 'hi!', answered: 3 });
  });

  it('fail as incidents with the exception type, message and line', async () => {
    const graph = await loadGraph('python-script-failures.bpmn');
    const run = (vars: Record<string, unknown>) => Instance.start(graph, vars as never).state.incidents[0];
    const nameError = Instance.start(graph, { case: 'name', amount: 2 }).state.incidents[0];
    // the gateway's last flow reads `rate` too, but `case == 'name'` is taken first
    expect(nameError).toMatchObject({ code: 'script_error', message: "NameError: name 'rate' is not defined", line: 2, elementId: 'name_error' });
    expect(run({ case: 'key' })).toMatchObject({ code: 'script_result', elementId: 'bad_key' });
    expect(run({ case: 'import' })).toMatchObject({ code: 'script_error', elementId: 'escape' });
    expect(run({ case: 'recursion' })).toMatchObject({ code: 'script_error', elementId: 'recursive' });
    expect((run({ case: 'recursion' }) as { message: string }).message).toMatch(/^RecursionError/);
    // a condition that fails: the gateway's incident names the element
    expect(run({ case: 'other' })).toMatchObject({ elementId: 'route' });
  });

  it('a runaway script is script_timeout and a greedy one script_memory; the next evaluation works', { timeout: 60_000 }, async () => {
    const graph = await loadGraph('python-script-failures.bpmn');
    expect(Instance.start(graph, { case: 'loop' }).state.incidents[0]).toMatchObject({ code: 'script_timeout', elementId: 'endless' });
    expect(Instance.start(graph, { case: 'memory' }).state.incidents[0]).toMatchObject({ code: 'script_memory', elementId: 'greedy' });
    const after = Instance.start(graph, { case: 'none', rate: 2 });
    expect(after.status).toBe('completed');
  });
});

describe('Python conditions', () => {
  it('choose exclusive and inclusive gateway flows', async () => {
    const graph = await loadGraph('python-gateways.bpmn');
    const big = Instance.start(graph, { amount: 5000, approved: true, reviewer: 'x', tags: ['a'], items: [{ qty: 3 }] });
    expect(big.status).toBe('completed');
    expect(big.path()).toContain('big');
    expect(big.variables).toMatchObject({ took_a: true, took_c: true });
    expect(big.variables).not.toHaveProperty('took_b');

    const none = Instance.start(graph, { amount: 5000, approved: false, reviewer: null, tags: [], items: [] });
    expect(none.path()).toContain('none');
    expect(none.variables).toMatchObject({ took_b: true, took_c: true });
    expect(none.variables).not.toHaveProperty('took_a');

    const small = Instance.start(graph, { amount: 10, approved: true, reviewer: 'y', tags: ['z'], items: [{ qty: 1 }] });
    expect(small.path()).toContain('small');
    // no inclusive condition holds and there is no default flow: an incident, as in SpiffWorkflow
    expect(small.state.incidents[0]).toMatchObject({ elementId: 'fork' });
  });
});

describe('Python loops', () => {
  it('a multi-instance collection with a completion condition, a cardinality expression and a standard loop condition', async () => {
    const graph = await loadGraph('python-multi-instance.bpmn');
    const orders = [
      { id: 1, amount: 10 },
      { id: 2, amount: 20 },
      { id: 3, amount: 30 },
      { id: 4, amount: 40 },
    ];
    const inst = Instance.start(graph, { orders, stop_at: 3, attempts: 0 });
    expect(inst.state.incidents).toEqual([]);
    expect(inst.status).toBe('completed');
    // sequential, stopped by the completion condition after the third order (the
    // output collection keeps a slot per item, as Zeebe's does; SpiffWorkflow's
    // has only the finished ones: the SpiffArena-dialect issue)
    expect(inst.variables['doubled']).toEqual([20, 40, 60, null]);
    // cardinality len(doubled) + 1 = 5 instances of `count`
    expect(inst.history.filter((h) => h.event === 'element_completed' && h.elementId === 'count').length).toBe(5 + 1);
    // the standard loop runs while attempts < 3
    expect(inst.variables['attempts']).toBe(3);
  });
});

describe('Python timers', () => {
  it('a timedelta, a quoted literal, an f-string and a datetime are timer values', async () => {
    const graph = await loadGraph('python-timers.bpmn');
    const inst = Instance.start(graph, { wait_minutes: 90, hours: 2, due: '2026-03-01T08:00:00+00:00' });
    expect(inst.state.incidents).toEqual([]);
    const t0 = START_TIME;
    const dueOf = (id: string) => Date.parse(inst.trigger(id, 'timer').dueAt!);
    const scheduled = (id: string) =>
      inst.effects.flatMap((e) => (e.type === 'timerScheduled' && e.timer.elementId === id ? [e.timer.definition] : [])).at(-1);
    const first = dueOf('by_timedelta');
    expect(first - t0).toBeGreaterThanOrEqual(90 * 60_000);
    expect(first - t0).toBeLessThan(90 * 60_000 + 1000);
    inst.fireTimer('by_timedelta');
    expect(scheduled('by_quoted')).toMatchObject({ expression: 'PT5M' });
    inst.fireTimer('by_quoted');
    expect(scheduled('by_string')).toMatchObject({ expression: 'PT2H' });
    inst.fireTimer('by_string');
    expect(inst.trigger('by_date', 'timer').dueAt).toBe('2026-03-02T08:00:00.000Z');
    inst.fireTimer('by_date');
    expect(inst.status).toBe('completed');
  });

  it('a timer expression that gives no duration is a timer_error incident', async () => {
    const graph = await loadGraph('python-timers.bpmn');
    const inst = Instance.start(graph, { wait_minutes: 'soon', hours: 0, due: 'x' });
    expect(inst.state.incidents[0]).toMatchObject({ elementId: 'by_timedelta' });
  });
});

describe('Python correlation keys', () => {
  it('a catch and a throw compute the same key from two retrieval expressions', async () => {
    const xml = readFixture('python-message-correlation.bpmn');
    const { processes, problems } = await compileFiles([{ name: 'm.bpmn', content: xml }]);
    expect(problems).toEqual([]);
    const catcher = processes.find((p) => p.key === 'py_corr')!.graph;
    const sender = processes.find((p) => p.key === 'py_corr_send')!.graph;
    const waiting = Instance.start(catcher, { order: { id: 42 }, region: 'eu' });
    const key = waiting.trigger('paid', 'message').correlationKey;
    expect(key).toBe('42|eu');
    const sent = Instance.start(sender, { order: { id: 42 }, region: 'eu' });
    const thrown = sent.effects.find((e) => e.type === 'messageThrown');
    expect(thrown).toMatchObject({ message: { name: 'order_paid', correlationKey: '42|eu' } });
  });
});
