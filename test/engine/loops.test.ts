import { afterAll, describe, expect, it } from 'vitest';
import { applyEvent, startInstance } from '../../src/engine/index.js';
import { compileFiles } from '../../src/bpmn/index.js';
import type { InstanceState } from '../../src/engine/types.js';
import { Instance, closeEvaluator, loadGraph, testContext } from './helpers.js';

afterAll(closeEvaluator);

describe('parallel multi-instance', () => {
  it('approves when 2 of 3 approvers said yes, cancelling the third task', async () => {
    const graph = await loadGraph('mi-approval-2-of-3.bpmn');
    const inst = Instance.start(graph, { approvers: ['ann', 'bob', 'cy'] });
    const tasks = inst.openTasks();
    expect(tasks.map((t) => t.elementId)).toEqual(['approve', 'approve', 'approve']);
    const body = Object.values(inst.state.tokens).find((t) => t.wait?.kind === 'loop');
    expect(body?.loop).toMatchObject({ kind: 'parallel', nrOfInstances: 3, nrOfActiveInstances: 3, nrOfCompletedInstances: 0 });
    // each instance has its own scope with its element
    const approvers = Object.values(inst.state.scopes).filter((s) => s.loopInstance).map((s) => s.variables['approver']);
    expect(approvers).toEqual(['ann', 'bob', 'cy']);

    inst.apply({ type: 'humanTaskCompleted', taskId: tasks[0]?.id ?? '', variables: { approved: true } });
    expect(inst.openTasks()).toHaveLength(2);
    inst.apply({ type: 'humanTaskCompleted', taskId: tasks[2]?.id ?? '', variables: { approved: true } });
    expect(inst.status).toBe('completed');
    expect(inst.last.effects).toContainEqual({ type: 'humanTaskClosed', taskId: tasks[1]?.id, state: 'cancelled' });
    expect(inst.cancelledTasks()).toEqual(['approve']);
    expect(inst.variables).toEqual({ approvers: ['ann', 'bob', 'cy'], votes: [true, null, true], yes: 2, decision: 'approved' });
    expect(inst.path()).toEqual(['start', 'approve', 'approve', 'approve', 'approve', 'tally', 'end']);
    expect(inst.path('element_cancelled')).toEqual(['approve']);
    // the instance variable "approved" stayed in the instance scopes
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
  });

  it('rejects when two approvers said no', async () => {
    const graph = await loadGraph('mi-approval-2-of-3.bpmn');
    const inst = Instance.start(graph, { approvers: ['ann', 'bob', 'cy'] });
    const tasks = inst.openTasks();
    inst.apply({ type: 'humanTaskCompleted', taskId: tasks[1]?.id ?? '', variables: { approved: false } });
    inst.apply({ type: 'humanTaskCompleted', taskId: tasks[0]?.id ?? '', variables: { approved: true } });
    expect(inst.status).toBe('waiting');
    inst.apply({ type: 'humanTaskCompleted', taskId: tasks[2]?.id ?? '', variables: { approved: false } });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toMatchObject({ votes: [true, false, false], decision: 'rejected' });
  });

  it('runs a subprocess loopCardinality times, each instance in its own scope', async () => {
    const graph = await loadGraph('mi-forms.bpmn', 'mi_cardinality');
    const inst = Instance.start(graph, { copies: 3, total: 0 });
    expect(inst.openTasks().map((t) => t.elementId)).toEqual(['b_wait', 'b_wait', 'b_wait']);
    // "mine" is local to each instance; "total" lives in the root and is shared
    expect(inst.variables).toEqual({ copies: 3, total: 6 });
    const mines = Object.values(inst.state.scopes)
      .filter((s) => s.elementId === 'batch' && !s.loopInstance)
      .map((s) => s.variables['mine']);
    expect(mines).toEqual([10, 20, 30]);
    for (const t of inst.openTasks()) inst.apply({ type: 'humanTaskCompleted', taskId: t.id });
    expect(inst.status).toBe('completed');
  });

  it('skips the activity for an empty collection and writes an empty output collection', async () => {
    const graph = await loadGraph('mi-forms.bpmn', 'mi_empty');
    const inst = Instance.start(graph, { items: [] });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ items: [], results: [] });
    expect(inst.effectsOf('humanTaskOpened')).toEqual([]);
  });

  it('raises loop_error when the input collection is not an array', async () => {
    const graph = await loadGraph('mi-forms.bpmn', 'mi_empty');
    const inst = Instance.start(graph, { items: 'nope' });
    expect(inst.state.incidents).toMatchObject([{ code: 'loop_error', elementId: 'each' }]);
  });
});

describe('boundary events on a multi-instance activity', () => {
  it('belong to the whole activity: one timer, and firing it cancels every instance', async () => {
    const graph = await loadGraph('mi-boundary-timer.bpmn');
    const inst = Instance.start(graph);
    expect(inst.openTasks()).toHaveLength(3);
    expect(inst.effectsOf('timerScheduled')).toHaveLength(1);
    inst.completeTask('vote');
    inst.fireTimer('deadline');
    expect(inst.status).toBe('completed');
    expect(inst.cancelledTasks()).toEqual(['vote', 'vote']);
    expect(inst.path()).toEqual(['start', 'vote', 'vote', 'vote', 'vote', 'deadline', 'late']);
    expect(inst.path('element_cancelled')).toEqual(['vote', 'vote', 'vote']);
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
  });
});

describe('sequential multi-instance', () => {
  it('SpiffArena form: iterates the input collection one by one into the output collection', async () => {
    const graph = await loadGraph('mi-forms.bpmn', 'mi_spiff');
    const inst = Instance.start(graph, { numbers: [2, 3, 4], order: [] });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ numbers: [2, 3, 4], order: [1, 2, 3], squares: [4, 9, 16] });
    expect(inst.path()).toEqual(['s_start', 'square', 'square', 'square', 'square', 's_end']);
  });

  it('Camunda form: one task at a time, each with its element variable', async () => {
    const graph = await loadGraph('mi-forms.bpmn', 'mi_camunda');
    const inst = Instance.start(graph, { reviewers: ['ann', 'bob'] });
    expect(inst.openTasks()).toHaveLength(1);
    const first = inst.task('review');
    const scope = inst.state.scopes[inst.state.tokens[first.tokenId]?.scopeId ?? ''];
    expect(scope?.variables).toEqual({ loopCounter: 1, reviewer: 'ann' });
    inst.completeTask('review');
    const second = inst.task('review');
    expect(inst.state.scopes[inst.state.tokens[second.tokenId]?.scopeId ?? '']?.variables).toEqual({ loopCounter: 2, reviewer: 'bob' });
    inst.completeTask('review');
    expect(inst.status).toBe('completed');
  });
});

describe('standard loop', () => {
  it('tests after: runs at least once and repeats while the condition holds', async () => {
    const graph = await loadGraph('standard-loop.bpmn', 'loop_after');
    const inst = Instance.start(graph, { attempts: 0 });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ attempts: 3, seen: 3 });
    expect(inst.path()).toEqual(['start', 'poll', 'poll', 'poll', 'poll', 'end']);
  });

  it('tests before: does not run when the condition fails at once', async () => {
    const graph = await loadGraph('standard-loop.bpmn', 'loop_before');
    const none = Instance.start(graph, { attempts: 5 });
    expect(none.variables).toEqual({ attempts: 5 });
    expect(none.path()).toEqual(['start2', 'poll2', 'end2']);
    const some = Instance.start(graph, { attempts: 1 });
    expect(some.variables).toEqual({ attempts: 3 });
  });

  it('stops at loopMaximum', async () => {
    const graph = await loadGraph('standard-loop.bpmn', 'loop_maximum');
    const inst = Instance.start(graph, { answered: false });
    inst.completeTask('ask');
    expect(inst.status).toBe('waiting');
    inst.completeTask('ask');
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start3', 'ask', 'ask', 'ask', 'end3']);
  });

  it('stops when the condition fails', async () => {
    const graph = await loadGraph('standard-loop.bpmn', 'loop_maximum');
    const inst = Instance.start(graph, { answered: false });
    inst.completeTask('ask', { answered: true });
    expect(inst.status).toBe('completed');
  });
});

describe('multi-instance at scale', () => {
  it('completes 10,000 parallel instances with state size bounded by the active set and the output collection', async () => {
    const graph = await loadGraph('mi-large.bpmn');
    const n = 10_000;
    // in place: the runtime's mode (it parses the state fresh for every step); the
    // copy-on-write mode gives the same results (see the next test) at an O(live) copy per event
    const ctx = testContext({ inPlace: true });
    const items = Array.from({ length: n }, (_, i) => i);
    const started = startInstance(graph, { type: 'start', variables: { items } }, ctx);
    const jobs = started.effects.flatMap((e) => (e.type === 'serviceJobCreated' ? [e.job.id] : []));
    expect(jobs).toHaveLength(n);
    expect(started.state.incidents).toEqual([]);

    let state: InstanceState = started.state;
    const sizeAt = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const r = applyEvent(graph, state, { type: 'serviceJobCompleted', jobId: jobs[i] ?? '', variables: { r: i * 2 } }, ctx);
      expect(r.ignored).toBe(false);
      // every completion is O(1) in effects: no replay of finished instances
      expect(r.effects.length).toBeLessThan(12);
      state = r.state;
      if (i + 1 === 1000 || i + 1 === 9000) sizeAt.set(i + 1, JSON.stringify(state).length);
    }
    expect(state.status).toBe('completed');
    const results = state.scopes[state.rootScopeId]?.variables['results'] as number[];
    expect(results).toHaveLength(n);
    expect(results[9999]).toBe(19_998);

    // after 9,000 completions the state is smaller than after 1,000, even though the
    // output collection grew: finished instances leave only their output behind
    const outputGrowth = JSON.stringify(Array.from({ length: 8000 }, (_, i) => (i + 1000) * 2)).length;
    expect(sizeAt.get(9000) ?? Infinity).toBeLessThanOrEqual((sizeAt.get(1000) ?? 0) + outputGrowth);
    expect(sizeAt.get(9000) ?? Infinity).toBeLessThan(sizeAt.get(1000) ?? 0);
  }, 120_000);

  it('gives the same states and effects in place as with the copy-on-write view', async () => {
    const graph = await loadGraph('mi-approval-2-of-3.bpmn');
    const run = (inPlace: boolean) => {
      const ctx = testContext({ inPlace });
      const trace: string[] = [];
      let r = startInstance(graph, { type: 'start', variables: { approvers: ['a', 'b', 'c'] } }, ctx);
      trace.push(JSON.stringify(r));
      const tasks = r.effects.flatMap((e) => (e.type === 'humanTaskOpened' ? [e.task.id] : []));
      for (const [i, taskId] of tasks.entries()) {
        r = applyEvent(graph, r.state, { type: 'humanTaskCompleted', taskId, variables: { approved: i !== 1 } }, ctx);
        trace.push(JSON.stringify(r));
      }
      return trace;
    };
    expect(run(true)).toEqual(run(false));
  });
});

describe('multi-instance data items', () => {
  it('binds inputDataItem and outputDataItem by id, not by name', async () => {
    const graph = await loadGraph('mi-data-items-by-id.bpmn');
    const inst = Instance.start(graph);
    expect(inst.state.incidents).toEqual([]);
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ numbers: [1, 2, 3], results: [10, 20, 30] });
  });
});

describe('multi-instance size limit (BATON_MAX_MI_INSTANCES)', () => {
  const model = (loop: string) => `<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
    <bpmn:process id="mi_bomb" isExecutable="true"><bpmn:startEvent id="s" /><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="each" />
    <bpmn:userTask id="each"><bpmn:multiInstanceLoopCharacteristics>${loop}</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask></bpmn:process></bpmn:definitions>`;
  const graphOf = async (loop: string) => (await compileFiles([{ name: 'm.bpmn', content: model(loop) }])).processes[0]!.graph;

  it('a cardinality over the limit is a loop_error naming it, with nothing built', async () => {
    const graph = await graphOf('<bpmn:loopCardinality>n</bpmn:loopCardinality>');
    const started = process.hrtime.bigint();
    const inst = Instance.start(graph, { n: 20_000_000 });
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(5_000);
    expect(inst.state.incidents).toMatchObject([{ code: 'loop_error', elementId: 'each' }]);
    expect(inst.state.incidents[0]?.message).toMatch(/20000000 instances, more than the limit of 10000 \(BATON_MAX_MI_INSTANCES\)/);
    expect(Object.keys(inst.state.tokens)).toHaveLength(1);
    expect(inst.openTasks()).toEqual([]);
  });

  it('applies to an input collection too, and to the limit the context sets', async () => {
    const graph = await graphOf('<bpmn:loopDataInputRef>items</bpmn:loopDataInputRef><bpmn:inputDataItem id="item" />');
    const inst = Instance.start(graph, { items: [1, 2, 3, 4] }, testContext({ maxMultiInstances: 3 }));
    expect(inst.state.incidents).toMatchObject([{ code: 'loop_error', elementId: 'each' }]);
    const ok = Instance.start(graph, { items: [1, 2, 3] }, testContext({ maxMultiInstances: 3 }));
    expect(ok.openTasks()).toHaveLength(3);
  });
});
