import { afterAll, describe, expect, it } from 'vitest';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

describe('embedded subprocess scopes', () => {
  it('shadows a root variable with a local one and merges locals into the parent when the subprocess ends', async () => {
    const graph = await loadGraph('nested-subprocess-scopes.bpmn');
    const inst = Instance.start(graph, { counter: 1 });

    // waiting in "outer": its scope holds the new names; counter (existing in root) was updated in root
    expect(inst.active).toEqual(['join', 'outer', 'outer_wait']);
    const scopes = Object.values(inst.state.scopes);
    expect(scopes).toHaveLength(2);
    const outerScope = scopes.find((s) => s.elementId === 'outer');
    expect(outerScope).toMatchObject({
      parentScopeId: inst.state.rootScopeId,
      variables: { shadow: 'inner', localOnly: 1 },
    });
    expect(inst.state.tokens[outerScope?.parentTokenId ?? '']).toMatchObject({
      elementId: 'outer',
      state: 'waiting',
      wait: { kind: 'subprocess', scopeId: outerScope?.id },
    });
    // root_writer ran after outer_init (depth first) and created its own "shadow" in the root scope
    expect(inst.variables).toEqual({ counter: 2, shadow: 'outer' });

    inst.completeTask('outer_wait', { fromTask: 'x', counter: 5 });
    expect(inst.status).toBe('completed');
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);

    // outer_read saw the local "shadow"; "inner" wrote deep into its own scope, then it was merged
    // into "outer", then into the root, where the local "shadow" replaced the root's one.
    expect(inst.variables).toEqual({
      counter: 6,
      shadow: 'inner',
      localOnly: 2,
      fromTask: 'x',
      seen: 'inner',
      deep: 50,
      afterInner: 50,
      summary: 'inner:inner:50:6',
    });
    expect(inst.path()).toEqual([
      'start',
      'fork',
      'outer',
      'outer_start',
      'outer_init',
      'outer_wait',
      'root_writer',
      'join',
      'outer_read',
      'inner',
      'inner_start',
      'inner_work',
      'inner_end',
      'outer_after_inner',
      'outer_end',
      'join',
      'final',
      'end',
    ]);
    // history of the inner elements names their scope instance
    const innerWork = inst.history.find((h) => h.event === 'element_started' && h.elementId === 'inner_work');
    expect(innerWork?.scopeId).not.toBe(inst.state.rootScopeId);
    expect(innerWork?.scopeId).not.toBe(outerScope?.id);
  });
});

describe('terminate end event', () => {
  it('at top level cancels every token with its task, job and incident and ends as terminated', async () => {
    const graph = await loadGraph('terminate-top-level.bpmn');
    const inst = Instance.start(graph);
    expect(inst.active).toEqual(['approve', 'broken', 'charge', 'gate']);
    expect(inst.status).toBe('error');
    const jobId = inst.job('charge').id;
    const approveTaskId = inst.task('approve').id;
    const incidentId = inst.state.incidents[0]?.id;

    inst.completeTask('gate');
    expect(inst.status).toBe('terminated');
    expect(inst.state.tokens).toEqual({});
    expect(inst.state.incidents).toEqual([]);
    expect(inst.last.effects).toContainEqual({ type: 'humanTaskClosed', taskId: approveTaskId, state: 'cancelled' });
    expect(inst.last.effects).toContainEqual({ type: 'serviceJobCancelled', jobId });
    expect(inst.last.effects).toContainEqual({ type: 'incidentResolved', incidentId, reason: 'cancelled' });
    expect(inst.path('element_cancelled').sort()).toEqual(['approve', 'broken', 'charge']);
    expect(inst.path('element_completed')).toContain('kill');
    expect(inst.history.at(-1)).toMatchObject({
      event: 'instance_terminated',
      elementId: 'terminate_top',
      data: { reason: 'terminate end event', elementId: 'kill' },
    });
    expect(inst.openTasks()).toEqual([]);

    // an ended instance ignores further events
    const late = inst.apply({ type: 'serviceJobCompleted', jobId });
    expect(late).toMatchObject({ ignored: true, effects: [] });
    expect(inst.status).toBe('terminated');
  });

  it('inside a subprocess ends only that subprocess, which then completes normally', async () => {
    const graph = await loadGraph('terminate-in-subprocess.bpmn');
    const inst = Instance.start(graph);
    expect(inst.active).toEqual(['inside', 'outside', 'sub', 'sub_gate']);
    const insideTask = inst.task('inside').id;

    inst.completeTask('sub_gate');
    expect(inst.last.effects).toContainEqual({ type: 'humanTaskClosed', taskId: insideTask, state: 'cancelled' });
    expect(inst.path('element_cancelled')).toEqual(['inside']);
    expect(inst.path('element_completed')).toEqual(expect.arrayContaining(['sub_kill', 'sub', 'after_sub']));
    expect(inst.variables).toEqual({ subDone: true });
    expect(inst.status).toBe('waiting');
    expect(inst.active).toEqual(['outside']);
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);

    inst.completeTask('outside');
    expect(inst.status).toBe('completed');
    expect(inst.history.at(-1)?.event).toBe('instance_completed');
  });
});

describe('cancel', () => {
  it('cancels nested tokens, closes their tasks and ends as terminated', async () => {
    const graph = await loadGraph('nested-subprocess-scopes.bpmn');
    const inst = Instance.start(graph, { counter: 1 });
    const taskId = inst.task('outer_wait').id;

    const result = inst.apply({ type: 'cancel', reason: 'customer withdrew' });
    expect(result.ignored).toBe(false);
    expect(inst.status).toBe('terminated');
    expect(inst.state.tokens).toEqual({});
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
    expect(result.effects).toContainEqual({ type: 'humanTaskClosed', taskId, state: 'cancelled' });
    // the child's token is cancelled before the subprocess token that waits for it
    expect(inst.path('element_cancelled')).toEqual(['outer_wait', 'outer', 'join']);
    expect(inst.history.at(-1)).toMatchObject({ event: 'instance_terminated', data: { reason: 'customer withdrew' } });
    // variables of the root survive for inspection, the subprocess locals are dropped
    expect(inst.variables).toEqual({ counter: 2, shadow: 'outer' });

    expect(inst.apply({ type: 'cancel' }).ignored).toBe(true);
    expect(inst.apply({ type: 'humanTaskCompleted', taskId }).ignored).toBe(true);
  });
});
