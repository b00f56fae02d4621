import { afterAll, describe, expect, it } from 'vitest';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

const joins = (inst: Instance, id: string) => inst.history.filter((h) => h.event === 'element_completed' && h.elementId === id && !h.data).length;

describe('inclusive gateway', () => {
  it('forks on every true condition and joins exactly those branches', async () => {
    const graph = await loadGraph('inclusive-fork-join.bpmn', 'inclusive_fork_join');
    const inst = Instance.start(graph, { wantA: true, wantB: true, runs: 0 });
    expect(inst.active).toEqual(['a', 'b']);
    inst.completeTask('a');
    expect(inst.active).toEqual(['b', 'join']);
    inst.completeTask('b');
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ wantA: true, wantB: true, runs: 1 }); // the join passed once
    expect(inst.path()).toEqual(['start', 'fork', 'a', 'b', 'join', 'join', 'after', 'end']);
    expect(joins(inst, 'join')).toBe(1);
  });

  it('takes only the one true branch and passes the join at once', async () => {
    const graph = await loadGraph('inclusive-fork-join.bpmn', 'inclusive_fork_join');
    const inst = Instance.start(graph, { wantA: false, wantB: true, runs: 0 });
    expect(inst.active).toEqual(['b']);
    inst.completeTask('b');
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'fork', 'b', 'join', 'after', 'end']);
  });

  it('takes the default flow when no condition holds', async () => {
    const graph = await loadGraph('inclusive-fork-join.bpmn', 'inclusive_fork_join');
    const inst = Instance.start(graph, { wantA: false, wantB: false });
    expect(inst.active).toEqual(['c']);
    expect(inst.trail()).toContain('flow_taken:to_c');
  });

  it('raises no_matching_flow when no condition holds and there is no default', async () => {
    const graph = await loadGraph('inclusive-fork-join.bpmn', 'inclusive_no_default');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toMatchObject([{ code: 'no_matching_flow', elementId: 'fork2' }]);
  });

  it('stops waiting for a branch that ended before the join', async () => {
    const graph = await loadGraph('inclusive-branch-ends-early.bpmn');
    const inst = Instance.start(graph);
    inst.completeTask('a');
    expect(inst.active).toEqual(['c', 'join']);
    inst.completeTask('c', { quit: true });
    expect(inst.active).toEqual(['after']);
    expect(inst.path()).toEqual(['start', 'fork', 'a', 'c', 'join', 'c_decide', 'c_end', 'after']);
    expect(joins(inst, 'join')).toBe(1);
  });

  it('waits for a branch that loops upstream, and works again in the next round of an outer loop', async () => {
    const graph = await loadGraph('inclusive-loops-upstream.bpmn');
    const inst = Instance.start(graph, { rounds: 0, retry: false });
    inst.completeTask('a');
    expect(inst.active).toEqual(['b', 'join']);
    inst.completeTask('b', { retry: true });
    // b loops back to itself: still upstream of the join
    expect(inst.active).toEqual(['b', 'join']);
    inst.completeTask('b', { retry: false });
    // round 1 joined, the outer loop started round 2
    expect(inst.variables).toMatchObject({ rounds: 1 });
    expect(inst.active).toEqual(['a', 'b']);
    inst.completeTask('b');
    expect(inst.active).toEqual(['a', 'join']);
    inst.completeTask('a');
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ rounds: 2, retry: false });
    expect(joins(inst, 'join')).toBe(2);
    expect(inst.path()).toEqual([
      'start', 'merge', 'fork', 'a', 'b', 'join', 'b_ok', 'b', 'b_ok', 'join', 'count', 'again',
      'merge', 'fork', 'a', 'b', 'b_ok', 'join', 'join', 'count', 'again', 'end',
    ]);
  });

  it('nested inclusive pairs: the outer join waits for the inner join', async () => {
    const graph = await loadGraph('inclusive-nested.bpmn');
    const inst = Instance.start(graph, { inner: true, wantZ: true, wantX: true, wantY: true });
    expect(inst.active).toEqual(['x', 'y', 'z']);
    inst.completeTask('z');
    expect(inst.active).toEqual(['outer_join', 'x', 'y']);
    inst.completeTask('x');
    // the inner join waits for y; the outer join waits for the inner one
    expect(inst.active).toEqual(['inner_join', 'outer_join', 'y']);
    inst.completeTask('y');
    expect(inst.active).toEqual(['done']);
    expect(joins(inst, 'inner_join')).toBe(1);
    expect(joins(inst, 'outer_join')).toBe(1);
  });

  it('nested inclusive pairs with a single inner branch', async () => {
    const graph = await loadGraph('inclusive-nested.bpmn');
    const inst = Instance.start(graph, { inner: true, wantZ: false, wantX: false, wantY: true });
    expect(inst.active).toEqual(['y']);
    inst.completeTask('y');
    expect(inst.active).toEqual(['done']);
    expect(inst.path()).toEqual(['start', 'outer_fork', 'inner_fork', 'y', 'inner_join', 'outer_join', 'done']);
  });
});

describe('inclusive join: one token per incoming flow (BPMN 2.0 §13.4.3)', () => {
  it('two tokens on the same incoming flow are two activations: the task after the join runs twice', async () => {
    const graph = await loadGraph('inclusive-two-tokens-one-flow.bpmn', 'inclusive_two_tokens_scripts');
    const inst = Instance.start(graph, { wantY: false, xs: 0, ys: 0, runs: 0 });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ wantY: false, xs: 2, ys: 0, runs: 2 });
    expect(joins(inst, 'join')).toBe(2);
  });

  it('with a token on each flow and a second one on the way to a satisfied flow, fires without waiting for it', async () => {
    const graph = await loadGraph('inclusive-two-tokens-one-flow.bpmn', 'inclusive_two_tokens_scripts');
    const inst = Instance.start(graph, { wantY: true, xs: 0, ys: 0, runs: 0 });
    expect(inst.status).toBe('completed');
    // x, x, y reach the join: the first activation consumes one x and the y, the second the other x
    expect(inst.variables).toEqual({ wantY: true, xs: 2, ys: 1, runs: 2 });
    expect(joins(inst, 'join')).toBe(2);
  });

  it('waits only for tokens that can still reach an incoming flow that has no token yet', async () => {
    const graph = await loadGraph('inclusive-two-tokens-one-flow.bpmn', 'inclusive_two_tokens_tasks');
    const inst = Instance.start(graph);
    expect(inst.active).toEqual(['other', 'work', 'work']);
    inst.completeTask('other');
    // o_j has its token; both tokens in `work` can still reach the empty w_j: wait
    expect(inst.active).toEqual(['t_join', 'work', 'work']);
    inst.completeTask('work');
    // w_j and o_j have tokens; the other `work` token can reach only w_j, which has one: fire
    expect(inst.active).toEqual(['t_after', 'work']);
    inst.completeTask('work');
    // the second token on w_j is an activation of its own
    expect(inst.active).toEqual(['t_after', 't_after']);
    inst.completeTask('t_after');
    inst.completeTask('t_after');
    expect(inst.status).toBe('completed');
    expect(joins(inst, 't_join')).toBe(2);
  });
});
