import { afterAll, describe, expect, it } from 'vitest';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

describe('a signal reaches the instance that throws it, within the throw', () => {
  it('a signal end event that ends the last token still starts the instance’s own signal event subprocess', async () => {
    const graph = await loadGraph('signal-to-own-instance.bpmn', 'signal_own_esp');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ heard: true });
    expect(inst.path()).toEqual(['start', 'throw_end', 'on_done', 'on_done_start', 'record', 'on_done_end']);
    // still broadcast to every other instance
    expect(inst.effectsOf('signalThrown').map((e) => e.signal.name)).toEqual(['done']);
  });

  it('a waiting catch event and a boundary event of the same instance fire in the throwing step', async () => {
    const graph = await loadGraph('signal-to-own-instance.bpmn', 'signal_own_branches');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('completed');
    expect(inst.path()).toContain('caught_end');
    expect(inst.path()).toContain('stopped_end');
    expect(inst.path()).not.toContain('work_end');
    expect(inst.cancelledTasks()).toHaveLength(1);
    // the fired subscriptions are closed, so no stale row is left to the runtime
    const opened = inst.effectsOf('subscriptionOpened').map((e) => e.subscription.id);
    const closed = inst.effectsOf('subscriptionClosed').map((e) => e.subscriptionId);
    expect(closed.sort()).toEqual(opened.sort());
  });
});
