/**
 * Input/output variable mapping (camunda:inputOutput, zeebe:ioMapping) and
 * camunda:resultVariable on script tasks, following Camunda 7
 * (BpmnParse.parseActivityInputOutput, IoMapping/InputParameter/OutputParameter,
 * engine tests InputOutputTest and InputOutputEventTest):
 * inputs are local variables of the element, evaluated over the scope around
 * it when it starts; outputs are evaluated over the locals and everything
 * visible when it completes, and written to the scope around it; the locals
 * then go away (and an interrupted element maps no outputs).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { ScopeInstance } from '../../src/engine/types.js';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

/** the activity-local scope instances of an instance (input parameters) */
function locals(inst: Instance): ScopeInstance[] {
  return Object.values(inst.state.scopes).filter((s) => s.activityLocal === true);
}

function onlyRootScope(inst: Instance): void {
  expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
  for (const t of Object.values(inst.state.tokens)) expect(t.localScopeId).toBeUndefined();
}

describe('camunda:inputOutput on a script task', () => {
  it('inputs are locals of the task (not seeing each other), outputs reach the process, the locals go away before the outgoing conditions', async () => {
    const graph = await loadGraph('camunda-input-output-script-task.bpmn');
    const inst = Instance.start(graph, { order: { price: 7, id: 'A-1' }, customer: 'Ada', qty: 1 });
    expect(inst.active).toEqual(['wait']);
    expect(inst.variables).toEqual({
      order: { price: 7, id: 'A-1' },
      customer: 'Ada',
      // the process variable is shadowed inside the task, never changed
      qty: 1,
      // names the script creates go to the process (Camunda: only input parameters are local)
      total: 21,
      seenNothing: true,
      orderTotal: 21,
      // a composite text: texts and expression values joined
      labelOut: 'Order A-1 of Ada',
      // the script changed the local; outputs see the change
      priceAfter: 0,
      fixed: 'done',
      // inputs are evaluated over the scope around the task
      otherInputSeen: 'undefined',
    });
    onlyRootScope(inst);
  });

  it('a failing input is an input_error incident with no locals left; a retry evaluates the inputs again', async () => {
    const graph = await loadGraph('camunda-input-output-script-task.bpmn');
    const inst = Instance.start(graph, { customer: 'Bo', qty: 1 });
    expect(inst.status).toBe('error');
    expect(inst.state.incidents[0]).toMatchObject({ code: 'input_error', elementId: 'calc' });
    expect(inst.state.incidents[0]?.message).toContain("input parameter 'price' of 'calc' failed");
    expect(inst.path('element_completed')).not.toContain('calc');
    onlyRootScope(inst);

    inst.apply({ type: 'setVariables', variables: { order: { price: 2, id: 'B-2' } } });
    inst.apply({ type: 'retryIncident', incidentId: inst.state.incidents[0]!.id });
    expect(inst.active).toEqual(['wait']);
    expect(inst.variables).toMatchObject({ orderTotal: 6, labelOut: 'Order B-2 of Bo' });
    onlyRootScope(inst);
  });
});

describe('camunda:list, camunda:map and camunda:script values', () => {
  it('evaluates lists and maps item by item (nested, expression keys, empty → null) and single-expression scripts', async () => {
    const graph = await loadGraph('camunda-io-list-map.bpmn');
    const inst = Instance.start(graph, { n: 4, keyName: 'dyn' });
    expect(inst.active).toEqual(['review']);
    const [local] = locals(inst);
    expect(locals(inst)).toHaveLength(1);
    expect(local?.variables).toEqual({
      items: ['a', 5, null, ['nested'], { k: 'v' }],
      config: { plain: 'text', dyn: 8, list: ['x'], empty: null },
      scripted: 41,
    });
    // the locals hang on the task's token; the process does not see them
    expect(local?.parentTokenId).toBe(Object.values(inst.state.tokens)[0]?.id);
    expect(inst.variables).toEqual({ n: 4, keyName: 'dyn' });

    // Camunda: a completion variable that is an input parameter updates the local; others go to the process
    inst.completeTask('review', { decision: 'yes', items: ['replaced'] });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({
      n: 4,
      keyName: 'dyn',
      decision: 'yes',
      itemsOut: ['replaced'],
      configOut: { plain: 'text', dyn: 8, list: ['x'], empty: null },
      scriptedOut: 42,
      pair: { decision: 'yes', scripted: 41 },
    });
  });

  it('a failing output is an output_error incident at leaving; the locals stay for the retry', async () => {
    const graph = await loadGraph('camunda-io-list-map.bpmn');
    const inst = Instance.start(graph, { n: 1, keyName: 'k2' });
    inst.completeTask('review', {});
    expect(inst.status).toBe('error');
    expect(inst.state.incidents[0]).toMatchObject({ code: 'output_error', elementId: 'review' });
    expect(inst.state.incidents[0]?.message).toContain("output parameter 'pair' of 'review' failed");
    expect(Object.values(inst.state.tokens)[0]).toMatchObject({ state: 'incident', resumeAt: 'leave' });
    expect(locals(inst)).toHaveLength(1);

    inst.apply({ type: 'setVariables', variables: { decision: 'late' } });
    inst.apply({ type: 'retryIncident', incidentId: inst.state.incidents[0]!.id });
    expect(inst.status).toBe('completed');
    expect(inst.variables['pair']).toEqual({ decision: 'late', scripted: 11 });
  });
});

describe('camunda:resultVariable on a script task', () => {
  it("stores the value of the script's expression (a trailing ; allowed), written like any variable", async () => {
    const graph = await loadGraph('camunda-result-variable.bpmn');
    const inst = Instance.start(graph, { amount: 21 });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ amount: 21, doubled: 42, summary: { total: 42, unit: 'EUR' } });
  });

  it('a failing expression is an incident with the evaluator code', async () => {
    const graph = await loadGraph('camunda-result-variable.bpmn');
    const inst = Instance.start(graph, {});
    expect(inst.state.incidents[0]).toMatchObject({ code: 'script_error', elementId: 'double' });
  });
});

describe('input/output parameters on an embedded subprocess', () => {
  it('the content sees the inputs; a write to an input stays local, new names leave with the subprocess; outputs map it out', async () => {
    const graph = await loadGraph('camunda-io-subprocess.bpmn');
    const inst = Instance.start(graph, { processVar: 'value' });
    expect(inst.active).toEqual(['inner', 'sub']);
    // Camunda's testSubprocessIoSupport: one local variable on the subprocess
    expect(locals(inst).map((s) => s.variables)).toEqual([{ innerVar: 'value' }]);
    inst.completeTask('inner');
    expect(inst.active).toEqual(['after']);
    expect(inst.variables).toEqual({ processVar: 'value', made: 'value!', outerVar: 'changed' });
    onlyRootScope(inst);
  });
});

describe('input/output parameters on service tasks', () => {
  it('Camunda: the inputs are the job input; the job result is written through, outputs map it', async () => {
    const graph = await loadGraph('camunda-io-service-task.bpmn');
    const inst = Instance.start(graph, { customer: { id: 'c-1' }, order: { total: 2.5 } });
    expect(inst.job('score').input).toEqual({ customerId: 'c-1', headers: { Accept: 'application/json' }, attempt: 1 });
    inst.completeJob('score', { rating: 7 });
    // Camunda's external task completion sets `variables` like setVariables: they reach the process
    expect(inst.variables).toEqual({ customer: { id: 'c-1' }, order: { total: 2.5 }, rating: 7, creditScore: 70, attemptsUsed: 1 });
  });

  it('Zeebe: an input sees the inputs before it; with outputs the job result stays local and only the outputs propagate', async () => {
    const graph = await loadGraph('camunda-io-service-task.bpmn');
    const inst = Instance.start(graph, { customer: { id: 'c-1' }, order: { total: 2.5 } });
    inst.completeJob('score', { rating: 1 });
    expect(inst.job('charge').input).toEqual({ amount: 2.5, amountCents: 250 });
    inst.completeJob('charge', { receipt: { id: 'r-9' }, extra: true });
    expect(inst.active).toEqual(['wait']);
    expect(inst.variables['receiptId']).toBe('r-9');
    expect(inst.variables).not.toHaveProperty('receipt');
    expect(inst.variables).not.toHaveProperty('extra');
    expect(inst.variables).not.toHaveProperty('amount');
    onlyRootScope(inst);
  });
});

describe('zeebe:ioMapping on a user task', () => {
  it('inputs chain, the completion stays local, the outputs reach the process', async () => {
    const graph = await loadGraph('zeebe-io-mapping-user-task.bpmn');
    const inst = Instance.start(graph, { request: { amount: 150 } });
    expect(locals(inst).map((s) => s.variables)).toEqual([{ amount: 150, needsReview: true, note: 'static text' }]);
    inst.completeTask('approve', { approved: true, comment: 'ok' });
    expect(inst.active).toEqual(['wait']);
    expect(inst.variables).toEqual({ request: { amount: 150 }, autoApproved: false });
  });
});

describe('input/output parameters on events', () => {
  it('throw, catch and end events map their parameters; the catch event outputs see the message payload', async () => {
    const graph = await loadGraph('camunda-io-events.bpmn');
    const inst = Instance.start(graph, {});
    expect(inst.active).toEqual(['catch']);
    expect(inst.variables).toEqual({ outVariable: 'mappedValue' });
    expect(locals(inst).map((s) => s.variables)).toEqual([{ prefix: 'got' }]);

    inst.receiveMessage('catch', { payload: 'money' });
    expect(inst.active).toEqual(['work']);
    expect(locals(inst).map((s) => s.variables)).toEqual([{ draft: 'got money' }]);

    inst.completeTask('work');
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ outVariable: 'mappedValue', payload: 'money', received: 'got money', mapped: 'got money' });
  });

  it('an activity interrupted by a boundary event maps no outputs and leaves no locals', async () => {
    const graph = await loadGraph('camunda-io-events.bpmn');
    const inst = Instance.start(graph, {});
    inst.receiveMessage('catch', { payload: 'money' });
    expect(locals(inst)).toHaveLength(1);
    inst.fireTimer('timeout');
    expect(inst.status).toBe('completed');
    expect(inst.path()).toContain('late');
    expect(inst.variables).not.toHaveProperty('mapped');
    expect(inst.variables).not.toHaveProperty('draft');
    onlyRootScope(inst);
  });
});

describe('input parameters on a multi-instance activity', () => {
  it('are evaluated for every instance, over its loopCounter', async () => {
    const graph = await loadGraph('camunda-io-multi-instance.bpmn');
    const inst = Instance.start(graph, { seen: [] });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ seen: [10, 20, 30] });
  });
});

describe('camunda:inputOutput on a call activity', () => {
  it('the locals live around the call; the outputs are mapped when the child completes', async () => {
    const graph = await loadGraph('camunda-io-call-activity.bpmn');
    const inst = Instance.start(graph, { base: 1 });
    const [child] = inst.effectsOf('childInstanceStarted').map((e) => e.child);
    expect(child).toBeDefined();
    expect(locals(inst).map((s) => s.variables)).toEqual([{ bonus: 5 }]);
    // the child gets the call activity's input parameters too (Camunda 7 maps them before camunda:in / all)
    expect(child!.variables).toEqual({ base: 1, bonus: 5 });
    inst.apply({ type: 'childCompleted', childId: child!.id, variables: { base: 1, result: 10 } });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ base: 1, result: 10, final: 15 });
  });
});

describe('input parameters of events are seen by what the event arms and throws', () => {
  it('a catch timer reads its input parameter, a message throw carries its inputs', async () => {
    const graph = await loadGraph('camunda-io-catch-timer.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-1' });
    expect(inst.state.incidents).toEqual([]);
    expect(inst.effectsOf('messageThrown')[0]?.message.variables).toMatchObject({ orderId: 'o-1', reason: 'late o-1' });
    expect(inst.effectsOf('timerScheduled')[0]?.timer).toMatchObject({ elementId: 'pause', definition: { kind: 'duration', expression: 'PT10M' } });
    inst.fireTimer('pause');
    expect(inst.status).toBe('completed');
    onlyRootScope(inst);
    expect(inst.variables).toEqual({ orderId: 'o-1' });
  });
});

describe('bpmn:ioSpecification on a task (SpiffWorkflow)', () => {
  it('reads its data inputs when it starts and passes on only its data outputs', async () => {
    const graph = await loadGraph('io-specification-on-task.bpmn');
    const inst = Instance.start(graph, { amount: 10, customer: 'c-1', other: true });
    expect(inst.active).toEqual(['review']);
    expect(locals(inst).map((s) => s.variables)).toEqual([{ amount: 10, customer: 'c-1' }]);
    inst.completeTask('review', { verdict: 'ok', scratch: 'dropped' });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ amount: 10, customer: 'c-1', other: true, verdict: 'ok' });
    onlyRootScope(inst);
  });

  it('a data input that is not set is an input_error; a data output not produced an output_error', async () => {
    const graph = await loadGraph('io-specification-on-task.bpmn');
    const noInput = Instance.start(graph, { amount: 10 });
    expect(noInput.state.incidents).toMatchObject([{ code: 'input_error', elementId: 'review' }]);
    expect(noInput.state.incidents[0]?.message).toContain("'customer' is not set");
    const noOutput = Instance.start(graph, { amount: 10, customer: 'c-1' });
    noOutput.completeTask('review', { somethingElse: 1 });
    expect(noOutput.state.incidents).toMatchObject([{ code: 'output_error', elementId: 'review' }]);
    expect(noOutput.state.incidents[0]?.message).toContain("'verdict' is not set");
  });
});
