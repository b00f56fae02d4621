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
