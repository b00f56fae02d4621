/**
 * Call depth: a call activity that would start a child deeper than
 * `ctx.maxCallDepth` (default 50) stops with a `call_depth_exceeded` incident
 * instead, so a process that calls itself — directly or through others —
 * cannot create instances without end (issue 13).
 *
 * The engine only sees one instance at a time; the driver below plays the
 * runtime's part: every childInstanceStarted becomes a new instance whose
 * parent link carries depth = the caller's depth + 1 (root 0; a parent link
 * without a depth, written before depths existed, counts as 1).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { ProcessGraph } from '../../src/bpmn/types.js';
import type { EngineContext, InstanceState, ParentLink } from '../../src/engine/types.js';
import { Instance, closeEvaluator, loadGraph, testContext } from './helpers.js';

afterAll(closeEvaluator);

const graph = (key: string) => loadGraph('call-recursive.bpmn', key);

const depthOf = (state: InstanceState): number => (state.parent ? (state.parent.depth ?? 1) : 0);

/** Starts `rootKey` and follows every child start, as the runtime would, until no instance starts another. */
async function callChain(rootKey: string, ctx: EngineContext, limit = 1000): Promise<Instance[]> {
  const graphs = new Map<string, ProcessGraph>();
  const graphOf = async (key: string) => {
    let g = graphs.get(key);
    if (!g) graphs.set(key, (g = await graph(key)));
    return g;
  };
  const chain = [Instance.start(await graphOf(rootKey), {}, ctx)];
  for (;;) {
    const caller = chain[chain.length - 1]!;
    const spec = caller.last.effects.flatMap((e) => (e.type === 'childInstanceStarted' ? [e.child] : []))[0];
    if (!spec) return chain;
    if (chain.length > limit) throw new Error(`more than ${limit} instances: the call depth is not limited`);
    const parent: ParentLink = { instanceId: `instance-${chain.length - 1}`, tokenId: spec.tokenId, childId: spec.id, depth: depthOf(caller.state) + 1 };
    chain.push(Instance.start(await graphOf(spec.processKey), spec.variables, ctx, { parent }));
  }
}

describe('call depth limit', () => {
  it('a process that calls itself stops at maxCallDepth with call_depth_exceeded on the deepest call activity', async () => {
    const chain = await callChain('self_call', testContext({ maxCallDepth: 5 }));
    // root (depth 0) and children at depths 1..5
    expect(chain).toHaveLength(6);
    expect(chain.map((i) => depthOf(i.state))).toEqual([0, 1, 2, 3, 4, 5]);
    for (const inst of chain.slice(0, -1)) {
      expect(inst.status).toBe('waiting');
      expect(Object.values(inst.state.tokens)).toMatchObject([{ elementId: 'call', state: 'waiting', wait: { kind: 'callActivity' } }]);
    }
    const deepest = chain[5]!;
    expect(deepest.status).toBe('error');
    expect(deepest.effectsOf('childInstanceStarted')).toEqual([]);
    expect(deepest.state.incidents).toHaveLength(1);
    const incident = deepest.state.incidents[0]!;
    expect(incident).toMatchObject({ code: 'call_depth_exceeded', elementId: 'call' });
    expect(incident.message).toContain('self_call');
    expect(incident.message).toMatch(/\b6\b/); // the depth the child would have had
    expect(incident.message).toMatch(/\b5\b/); // the limit
    expect(Object.values(deepest.state.tokens)).toMatchObject([{ elementId: 'call', state: 'incident' }]);
    expect(deepest.effectsOf('incidentOpened').map((e) => e.incident.code)).toEqual(['call_depth_exceeded']);
  });

  it('catches mutual recursion (A calls B calls A)', async () => {
    const chain = await callChain('mutual_a', testContext({ maxCallDepth: 5 }));
    expect(chain).toHaveLength(6);
    expect(chain.map((i) => i.graph.key)).toEqual(['mutual_a', 'mutual_b', 'mutual_a', 'mutual_b', 'mutual_a', 'mutual_b']);
    const deepest = chain[5]!;
    expect(deepest.state.incidents).toMatchObject([{ code: 'call_depth_exceeded', elementId: 'b_call' }]);
    // the message names the process it would have called
    expect(deepest.state.incidents[0]!.message).toContain('mutual_a');
  });

  it('defaults to a depth of 50', async () => {
    const chain = await callChain('self_call', testContext());
    expect(chain).toHaveLength(51);
    expect(chain[50]!.state.incidents).toMatchObject([{ code: 'call_depth_exceeded' }]);
    expect(chain[49]!.state.incidents).toEqual([]);
  });

  it('a limit of 1 lets the root call once; a parent link without a depth (older state) counts as depth 1', async () => {
    const ctx = testContext({ maxCallDepth: 1 });
    expect(await callChain('self_call', ctx)).toHaveLength(2);
    const g = await graph('self_call');
    const legacy: ParentLink = { instanceId: 'old-parent', tokenId: 'old-token', childId: 'old-child' };
    const old = Instance.start(g, {}, ctx, { parent: legacy });
    expect(old.state.incidents).toMatchObject([{ code: 'call_depth_exceeded' }]);
    const ok = Instance.start(g, {}, testContext({ maxCallDepth: 2 }), { parent: legacy });
    expect(ok.state.incidents).toEqual([]);
    expect(ok.effectsOf('childInstanceStarted')).toHaveLength(1);
  });

  it('the incident can be retried like any other: the element runs again and fails again', async () => {
    const chain = await callChain('self_call', testContext({ maxCallDepth: 2 }));
    const deepest = chain[chain.length - 1]!;
    const first = deepest.state.incidents[0]!;
    const r = deepest.apply({ type: 'retryIncident', incidentId: first.id });
    expect(r.ignored).toBe(false);
    expect(r.effects).toContainEqual({ type: 'incidentResolved', incidentId: first.id, reason: 'retried' });
    expect(r.effects.filter((e) => e.type === 'childInstanceStarted')).toEqual([]);
    expect(deepest.state.incidents).toHaveLength(1);
    expect(deepest.state.incidents[0]).toMatchObject({ code: 'call_depth_exceeded', attempts: 2 });
    expect(deepest.state.incidents[0]!.id).not.toBe(first.id);
    expect(deepest.status).toBe('error');
  });
});
