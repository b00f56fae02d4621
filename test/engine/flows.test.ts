import { afterAll, describe, expect, it } from 'vitest';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

describe('parallel gateway', () => {
  it('forks, waits at the join for the branch with fewer steps, and joins once', async () => {
    const graph = await loadGraph('parallel-uneven-branches.bpmn');
    const inst = Instance.start(graph);

    // branch A runs a1 → a2 → a3 (waits), then branch B reaches b1 (waits)
    expect(inst.path()).toEqual(['start', 'fork', 'a1', 'a2', 'a3', 'b1']);
    expect(inst.active).toEqual(['a3', 'b1']);
    expect(inst.status).toBe('waiting');
    expect(inst.variables).toEqual({ fromA: 'a2' });

    // the short branch arrives first and waits in the join
    inst.completeTask('b1', { fromB: 'b1' });
    expect(inst.active).toEqual(['a3', 'join']);
    const joining = Object.values(inst.state.tokens).find((t) => t.elementId === 'join');
    expect(joining).toMatchObject({ state: 'joining', arrivedVia: 'f_b1' });
    expect(inst.path('element_completed')).not.toContain('join');

    inst.completeTask('a3');
    expect(inst.status).toBe('completed');
    expect(inst.active).toEqual([]);
    expect(inst.variables).toEqual({ fromA: 'a2', fromB: 'b1', both: 'a2+b1' });
    // the join fired once: two arrivals completed, one token left it
    expect(inst.path().filter((id) => id === 'join')).toHaveLength(2);
    expect(inst.path('element_completed').filter((id) => id === 'join')).toHaveLength(2);
    expect(inst.path().filter((id) => id === 'after')).toHaveLength(1);
    expect(inst.trail().slice(-12)).toEqual([
      'element_completed:a3',
      'flow_taken:f_a3',
      'element_started:join',
      'element_completed:join',
      'element_completed:join',
      'flow_taken:f_join',
      'element_started:after',
      'element_completed:after',
      'flow_taken:f_after',
      'element_started:end',
      'element_completed:end',
      'instance_completed:parallel_uneven',
    ]);
    expect(inst.state.tokens).toEqual({});
  });

  it('keeps an extra token on an already satisfied incoming flow for the next round', async () => {
    const graph = await loadGraph('parallel-join-next-round.bpmn');
    const inst = Instance.start(graph);
    // t1 and t2 both reach the join through the exclusive merge, by flow j1
    const joiningBefore = Object.values(inst.state.tokens).filter((t) => t.state === 'joining');
    expect(joiningBefore.map((t) => t.arrivedVia)).toEqual(['j1', 'j1']);
    expect(inst.path().filter((id) => id === 'merge')).toHaveLength(2);

    inst.completeTask('wait');
    // one j1 token and the j2 token joined and went on to the end; the other j1 token is left,
    // and since nothing can bring another token to j2, the join can never fire for it
    expect(inst.path('element_started').filter((id) => id === 'end')).toHaveLength(1);
    const left = Object.values(inst.state.tokens);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ elementId: 'join', state: 'incident', arrivedVia: 'j1' });
    expect(inst.state.incidents).toMatchObject([{ code: 'join_cannot_fire', elementId: 'join' }]);
    expect(inst.status).toBe('error');
  });

  it('joins and forks in one mixed gateway', async () => {
    const graph = await loadGraph('parallel-mixed-gateway.bpmn');
    const inst = Instance.start(graph);
    expect(inst.active).toEqual(['c', 'd']);
    expect(inst.path().filter((id) => id === 'mixed')).toHaveLength(2);
    expect(inst.history.filter((h) => h.event === 'flow_taken' && h.elementId?.match(/^f[56]$/))).toHaveLength(2);
    inst.completeTask('d');
    inst.completeTask('c');
    expect(inst.status).toBe('completed');
  });
});

describe('exclusive gateway', () => {
  it.each([
    [5000, 'big', 'f_big'],
    [500, 'medium', 'f_medium'],
    [5, 'small', 'f_small'],
  ])('amount %i takes the first matching flow in document order, else the default', async (amount, size, flow) => {
    const graph = await loadGraph('exclusive-default-flow.bpmn');
    const inst = Instance.start(graph, { amount });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ amount, size });
    expect(inst.path()).toEqual(['start', 'decide', size, 'merge', 'end']);
    expect(inst.history.filter((h) => h.event === 'flow_taken').map((h) => h.elementId)).toEqual([
      'f0',
      flow,
      expect.stringMatching(/^f[123]$/),
      'f4',
    ]);
  });

  it('raises no_matching_flow when no condition holds and there is no default', async () => {
    const graph = await loadGraph('exclusive-no-matching-flow.bpmn');
    const inst = Instance.start(graph, { answer: 'maybe' });
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toHaveLength(1);
    expect(inst.state.incidents[0]).toMatchObject({ code: 'no_matching_flow', elementId: 'decide' });
    expect(inst.active).toEqual(['decide']);
    expect(Object.values(inst.state.tokens)[0]?.state).toBe('incident');
    expect(inst.effectsOf('incidentOpened')).toHaveLength(1);
    expect(inst.history.at(-1)).toMatchObject({ event: 'incident', elementId: 'decide', elementType: 'exclusiveGateway' });
  });

  it('evaluates a ${…}-wrapped condition as JavaScript', async () => {
    const graph = await loadGraph('exclusive-no-matching-flow.bpmn');
    expect(graph.flows['f_no']?.condition).toBe("answer === 'no'");
    const inst = Instance.start(graph, { answer: 'no' });
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'decide', 'no']);
  });

  it('turns a throwing condition into a condition_error incident with message and line', async () => {
    const graph = await loadGraph('condition-error.bpmn');
    const inst = Instance.start(graph, {});
    expect(inst.status).toBe('error');
    const [incident] = inst.state.incidents;
    expect(incident).toMatchObject({ code: 'condition_error', elementId: 'decide', line: 1 });
    expect(incident?.message).toContain("sequence flow 'f_ok'");
    expect(incident?.message).toContain('order is not defined');
    // the default flow is NOT taken when a condition fails
    expect(inst.path()).toEqual(['start', 'decide']);
    expect(inst.active).toEqual(['decide']);
  });

  it('loops through a back edge until the condition fails', async () => {
    const graph = await loadGraph('loop-back-edge.bpmn');
    const inst = Instance.start(graph, { i: 0 });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ i: 3 });
    expect(inst.path()).toEqual(['start', 'increment', 'again', 'increment', 'again', 'increment', 'again', 'end']);
    expect(inst.history.filter((h) => h.elementId === 'f_back')).toHaveLength(2);
  });
});

describe('activities with several flows', () => {
  it('takes every unconditional flow and every true conditional flow; each arrival runs the merge activity', async () => {
    const graph = await loadGraph('implicit-split-merge.bpmn');
    const inst = Instance.start(graph, { x: 5, runs: 0 });
    expect(inst.status).toBe('completed');
    expect(inst.path().filter((id) => id === 'negative')).toEqual([]);
    expect(inst.path().filter((id) => ['always', 'big'].includes(id))).toEqual(['always', 'big']);
    expect(inst.path().filter((id) => id === 'merge')).toHaveLength(2);
    expect(inst.path().filter((id) => id === 'end')).toHaveLength(2);
    expect(inst.variables['runs']).toBe(2);

    const one = Instance.start(graph, { x: 0, runs: 0 });
    expect(one.path()).toEqual(['start', 'split', 'always', 'merge', 'end']);
    expect(one.variables['runs']).toBe(1);
  });

  it('takes the default flow of an activity only when no condition holds', async () => {
    const graph = await loadGraph('activity-default-flow.bpmn');
    const vip = Instance.start(graph, { vip: true });
    expect(vip.path()).toEqual(['start', 'check', 'special', 'end']);
    expect(vip.status).toBe('completed');

    const normal = Instance.start(graph, { vip: false });
    // "dead_end" has no outgoing flow: an implicit end
    expect(normal.path()).toEqual(['start', 'check', 'normal', 'dead_end']);
    expect(normal.path('element_completed')).toContain('dead_end');
    expect(normal.status).toBe('completed');
  });

  it('raises no_matching_flow after a task whose conditional flows all fail, and keeps the task result', async () => {
    const graph = await loadGraph('activity-conditions-no-match.bpmn');
    const inst = Instance.start(graph);
    inst.completeTask('review', { approved: 'unsure' });
    expect(inst.status).toBe('error');
    expect(inst.state.incidents[0]).toMatchObject({ code: 'no_matching_flow', elementId: 'review' });
    expect(inst.variables).toEqual({ approved: 'unsure' });
    const token = Object.values(inst.state.tokens)[0];
    // a retry must only re-run the leaving step, not reopen the task
    expect(token).toMatchObject({ elementId: 'review', state: 'incident', resumeAt: 'leave' });
    expect(token?.wait).toBeUndefined();
    expect(inst.effectsOf('humanTaskClosed')).toEqual([expect.objectContaining({ state: 'completed' })]);
  });
});

describe('a parallel join that can never fire', () => {
  it('raises join_cannot_fire naming the gateway when an exclusive split feeds it', async () => {
    const graph = await loadGraph('parallel-join-cannot-fire.bpmn', 'xor_into_and');
    const inst = Instance.start(graph, { pickA: true });
    expect(inst.active).toEqual(['a']);
    inst.completeTask('a');
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toMatchObject([{ code: 'join_cannot_fire', elementId: 'join' }]);
    expect(inst.state.incidents[0]?.message).toContain("'join'");
    expect(inst.state.incidents[0]?.message).toContain('b_j');
  });

  it('raises it once the branch that would have arrived ends elsewhere, not before', async () => {
    const graph = await loadGraph('parallel-join-cannot-fire.bpmn', 'branch_ends_elsewhere');
    const inst = Instance.start(graph, { quit: false });
    inst.completeTask('p');
    // q can still reach the join
    expect(inst.status).toBe('waiting');
    expect(inst.active).toEqual(['join2', 'q']);
    inst.completeTask('q', { quit: true });
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toMatchObject([{ code: 'join_cannot_fire', elementId: 'join2' }]);
  });

  it('a join whose branches all arrive fires as before', async () => {
    const graph = await loadGraph('parallel-join-cannot-fire.bpmn', 'branch_ends_elsewhere');
    const inst = Instance.start(graph, { quit: false });
    inst.completeTask('q');
    inst.completeTask('p');
    expect(inst.status).toBe('completed');
    expect(inst.state.incidents).toEqual([]);
  });
});

describe('a parallel gateway that is also a loop merge', () => {
  it('does not wait for the flow that can only come back through it, nor for the way in on later passes', async () => {
    const graph = await loadGraph('parallel-gateway-as-loop-merge.bpmn');
    expect(graph.elements['merge']).toMatchObject({ incoming: ['in', 'back'], loopBack: [1] });
    const inst = Instance.start(graph);
    expect(inst.active).toEqual(['pause']);
    expect(inst.variables).toEqual({ x: 1 });
    inst.completeTask('pause');
    expect(inst.variables).toEqual({ x: 2 });
    inst.completeTask('pause');
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ x: 3 });
    expect(inst.state.incidents).toEqual([]);
  });
});

describe('parallel joins in many scope instances at once', () => {
  it('every instance of a multi-instance subprocess joins on its own, and none is taken for a join that cannot fire', async () => {
    const graph = await loadGraph('mi-subprocess-parallel-join.bpmn');
    const inst = Instance.start(graph, { n: 300 });
    expect(inst.openTasks()).toHaveLength(300);
    expect(Object.values(inst.state.tokens).filter((t) => t.state === 'joining')).toHaveLength(300);
    expect(inst.state.incidents).toEqual([]);
    for (const task of inst.openTasks()) inst.apply({ type: 'humanTaskCompleted', taskId: task.id });
    expect(inst.status).toBe('completed');
    expect(inst.state.incidents).toEqual([]);
  });
});
