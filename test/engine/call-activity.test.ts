import { afterAll, describe, expect, it } from 'vitest';
import type { ChildInstanceSpec } from '../../src/engine/types.js';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

const parent = (key: string) => loadGraph('call-activity.bpmn', key);
const childGraph = () => loadGraph('call-activity.bpmn', 'child_proc');
const started = (inst: Instance): ChildInstanceSpec[] => inst.effectsOf('childInstanceStarted').map((e) => e.child);

/** Runs the child for a childInstanceStarted effect, as the runtime would: its own instance with a parent link. */
async function runChild(spec: ChildInstanceSpec, parentInstanceId = 'parent-1'): Promise<Instance> {
  return Instance.start(await childGraph(), spec.variables, undefined, {
    parent: { instanceId: parentInstanceId, tokenId: spec.tokenId, childId: spec.id },
  });
}

describe('call activity', () => {
  it('starts the child with every variable, waits, and merges the child variables back on childCompleted', async () => {
    const inst = Instance.start(await parent('parent_all'), { value: 41, mode: 'ok' });
    const [spec] = started(inst);
    expect(spec).toEqual({
      id: expect.any(String),
      processKey: 'child_proc',
      versionBinding: { kind: 'latest' },
      variables: { value: 41, mode: 'ok' },
      tokenId: expect.any(String),
      elementId: 'call',
      businessKey: null,
    });
    expect(inst.state.tokens[spec?.tokenId ?? '']).toMatchObject({ elementId: 'call', state: 'waiting', wait: { kind: 'callActivity', childId: spec?.id } });

    // the child, as its own instance, reports to its parent when it ends
    const child = await runChild(spec as ChildInstanceSpec);
    child.completeTask('k_work');
    expect(child.status).toBe('completed');
    const notified = child.effectsOf('parentNotified');
    expect(notified).toEqual([
      { type: 'parentNotified', parentInstanceId: 'parent-1', event: { type: 'childCompleted', childId: spec?.id, variables: { value: 41, mode: 'ok', result: 42 } } },
    ]);

    const timer = inst.trigger('on_timeout').id;
    inst.apply(notified[0]?.event ?? { type: 'cancel' });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ value: 41, mode: 'ok', result: 42, summary: 'child said 42' });
    expect(inst.path()).toEqual(['start', 'call', 'after', 'end']);
    expect(inst.last.effects).toContainEqual({ type: 'timerCancelled', timerId: timer });
    // a duplicate is stale
    expect(inst.apply(notified[0]?.event ?? { type: 'cancel' }).ignored).toBe(true);
  });

  it('an error thrown and not caught in the child ends the child and reaches the error boundary event of the call activity', async () => {
    const inst = Instance.start(await parent('parent_all'), { value: 1, mode: 'error' });
    const [spec] = started(inst);
    const child = await runChild(spec as ChildInstanceSpec);
    child.completeTask('k_work');
    expect(child.status).toBe('terminated');
    expect(child.state.incidents).toEqual([]);
    const notified = child.effectsOf('parentNotified');
    expect(notified.map((n) => n.event)).toEqual([
      { type: 'childFailed', childId: spec?.id, errorCode: 'CHILD_ERR', message: 'ChildErr', kind: 'error' },
    ]);
    inst.apply(notified[0]?.event ?? { type: 'cancel' });
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'call', 'on_error', 'failed']);
    // the child has ended already: no cancel is sent to it
    expect(inst.effectsOf('childInstanceCancelled')).toEqual([]);
  });

  it('an escalation in the child reaches the non-interrupting boundary event; the child goes on', async () => {
    const inst = Instance.start(await parent('parent_all'), { value: 1, mode: 'escalate' });
    const [spec] = started(inst);
    const child = await runChild(spec as ChildInstanceSpec);
    child.completeTask('k_work');
    expect(child.status).toBe('completed');
    const events = child.effectsOf('parentNotified').map((n) => n.event);
    expect(events.map((e) => [e.type, 'kind' in e ? e.kind : null])).toEqual([
      ['childFailed', 'escalation'],
      ['childCompleted', null],
    ]);
    for (const e of events) inst.apply(e);
    expect(inst.active).toEqual(['heads_up']);
    expect(inst.variables).toMatchObject({ result: 2, summary: 'child said 2' });
  });

  it('an uncaught error from the child is an incident on the call activity', async () => {
    const inst = Instance.start(await parent('parent_camunda'), { amount: 1 });
    const [spec] = started(inst);
    inst.apply({ type: 'childFailed', childId: spec?.id ?? '', errorCode: 'OTHER', message: 'nope', kind: 'error' });
    expect(inst.state.incidents).toMatchObject([{ code: 'unhandled_bpmn_error', elementId: 'c_call' }]);
  });

  it('interrupting the call activity (timer boundary) cancels the child', async () => {
    const inst = Instance.start(await parent('parent_all'), { value: 1, mode: 'ok' });
    const [spec] = started(inst);
    inst.fireTimer('on_timeout');
    expect(inst.last.effects).toContainEqual({ type: 'childInstanceCancelled', childId: spec?.id });
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'call', 'on_timeout', 'timed_out']);
    expect(inst.apply({ type: 'childCompleted', childId: spec?.id ?? '', variables: {} }).ignored).toBe(true);
  });

  it('cancelling the parent cancels the child; a cancelled child reports childTerminated', async () => {
    const inst = Instance.start(await parent('parent_all'), { value: 1, mode: 'ok' });
    const [spec] = started(inst);
    inst.apply({ type: 'cancel' });
    expect(inst.last.effects).toContainEqual({ type: 'childInstanceCancelled', childId: spec?.id });

    const child = await runChild(spec as ChildInstanceSpec);
    child.apply({ type: 'cancel' });
    expect(child.effectsOf('parentNotified').map((n) => n.event)).toEqual([{ type: 'childTerminated', childId: spec?.id }]);
  });

  it('a terminated child is an incident on the call activity', async () => {
    const inst = Instance.start(await parent('parent_all'), { value: 1, mode: 'ok' });
    const [spec] = started(inst);
    inst.apply({ type: 'childTerminated', childId: spec?.id ?? '' });
    expect(inst.state.incidents).toMatchObject([{ code: 'child_terminated', elementId: 'call' }]);
  });

  it('camunda:in/out mappings and a version binding', async () => {
    const inst = Instance.start(await parent('parent_camunda'), { amount: 5, secret: 'x' });
    const [spec] = started(inst);
    expect(spec).toMatchObject({ versionBinding: { kind: 'version', version: 3 }, variables: { value: 5, big: 50 } });
    inst.apply({ type: 'childCompleted', childId: spec?.id ?? '', variables: { value: 5, big: 50, result: 6 } });
    expect(inst.variables).toEqual({ amount: 5, secret: 'x', childResult: 6 });
  });

  it('zeebe:calledElement with zeebe:ioMapping', async () => {
    const inst = Instance.start(await parent('parent_zeebe'), { amount: 5 });
    const [spec] = started(inst);
    expect(spec).toMatchObject({ processKey: 'child_proc', versionBinding: { kind: 'latest' }, variables: { amount: 5, value: 10 } });
    inst.apply({ type: 'childCompleted', childId: spec?.id ?? '', variables: { value: 10, result: 11, noise: true } });
    expect(inst.variables).toEqual({ amount: 5, doubled: 11 });
  });

  it('multi-instance call activity: one child per item, outputs collected', async () => {
    const inst = Instance.start(await parent('parent_mi'), { values: [10, 20] });
    const specs = started(inst);
    expect(specs.map((s) => s.variables['value'])).toEqual([10, 20]);
    inst.apply({ type: 'childCompleted', childId: specs[1]?.id ?? '', variables: { result: 21 } });
    inst.apply({ type: 'childCompleted', childId: specs[0]?.id ?? '', variables: { result: 11 } });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ values: [10, 20], results: [11, 21] });
  });

  it('a child started without parent.childId reports itself by the parent token id', async () => {
    const inst = Instance.start(await parent('parent_all'), { value: 1, mode: 'ok' });
    const [spec] = started(inst);
    const child = Instance.start(await childGraph(), spec?.variables, undefined, { parent: { instanceId: 'p', tokenId: spec?.tokenId ?? '' } });
    child.completeTask('k_work');
    const [n] = child.effectsOf('parentNotified');
    expect(n?.event).toMatchObject({ type: 'childCompleted', childId: spec?.tokenId });
    inst.apply(n?.event ?? { type: 'cancel' });
    expect(inst.status).toBe('completed');
  });
});

describe('a called process with an ioSpecification (SpiffWorkflow)', () => {
  const graphs = async () => ({
    caller: await loadGraph('call-activity-io-specification.bpmn', 'io_caller'),
    callee: await loadGraph('call-activity-io-specification.bpmn', 'io_callee'),
  });
  const child = (callee: Awaited<ReturnType<typeof graphs>>['callee'], spec: ChildInstanceSpec) =>
    Instance.start(callee, spec.variables, undefined, { parent: { instanceId: 'parent-1', tokenId: spec.tokenId, childId: spec.id } });

  it('gets only its data inputs and gives back only its data outputs', async () => {
    const { caller, callee } = await graphs();
    const inst = Instance.start(caller, { in_1: 4, in_2: 'go', unused: true });
    const [spec] = started(inst);
    const c = child(callee, spec as ChildInstanceSpec);
    expect(c.status).toBe('completed');
    const [notified] = c.effectsOf('parentNotified');
    expect(notified?.event).toEqual({ type: 'childCompleted', childId: spec?.id, variables: { out_1: 8 } });
    inst.apply(notified!.event);
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ in_1: 4, in_2: 'go', unused: true, out_1: 8 });
  });

  it('a data input the caller has not set is an incident on the call activity; the child never starts', async () => {
    const { caller, callee } = await graphs();
    const inst = Instance.start(caller, { in_1: 4 });
    const [spec] = started(inst);
    const c = child(callee, spec as ChildInstanceSpec);
    expect(c.status).toBe('terminated');
    expect(c.path()).toEqual([]);
    const [notified] = c.effectsOf('parentNotified');
    inst.apply(notified!.event);
    expect(inst.state.incidents).toMatchObject([{ code: 'child_incident', elementId: 'call' }]);
    expect(inst.state.incidents[0]?.message).toContain("data input 'in_2' of process 'io_callee' is not set");
  });

  it('a data output the child did not set is an incident on the call activity', async () => {
    const { caller, callee } = await graphs();
    const inst = Instance.start(caller, { in_1: 4, in_2: 'skip' });
    const c = child(callee, started(inst)[0] as ChildInstanceSpec);
    const [notified] = c.effectsOf('parentNotified');
    inst.apply(notified!.event);
    expect(inst.state.incidents).toMatchObject([{ code: 'child_incident', elementId: 'call' }]);
    expect(inst.state.incidents[0]?.message).toContain("data output 'out_1' of process 'io_callee' is not set");
  });
});
