/**
 * Operator controls in the engine: retry of an incident, setting variables,
 * reset to an element. Each is an ordinary engine event; these tests drive
 * them purely, from one fixture (operator-controls.bpmn).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessGraph } from '../../src/bpmn/types.js';
import { incidentRetryProblem, resetTargetProblem } from '../../src/engine/index.js';
import { closeEvaluator, Instance, loadGraph } from './helpers.js';

let graph: ProcessGraph;
beforeAll(async () => {
  graph = await loadGraph('operator-controls.bpmn');
});
afterAll(() => closeEvaluator());

/** started and past the review task: the check script failed for want of `amount` */
function failedAtCheck(): Instance {
  const inst = Instance.start(graph);
  inst.completeTask('review');
  return inst;
}

describe('retry of an incident', () => {
  it('runs the failed script again after the operator set the missing variable', () => {
    const inst = failedAtCheck();
    expect(inst.status).toBe('error');
    const [incident] = inst.state.incidents;
    expect(incident).toMatchObject({ code: 'script_error', elementId: 'check', attempts: 1, line: 1 });

    inst.apply({ type: 'setVariables', variables: { amount: 42 } });
    expect(inst.status).toBe('error'); // variables alone do not move the token
    inst.apply({ type: 'retryIncident', incidentId: incident!.id });

    expect(inst.status).toBe('waiting');
    expect(inst.variables).toMatchObject({ amount: 42, approved: true });
    expect(inst.active).toEqual(['fulfil', 'notify', 'pick']);
    expect(inst.effectsOf('incidentResolved')).toEqual([{ type: 'incidentResolved', incidentId: incident!.id, reason: 'retried' }]);
    expect(inst.trail()).toContain('incident_retried:check');
  });

  it('counts attempts when the retry fails again', () => {
    const inst = failedAtCheck();
    inst.apply({ type: 'retryIncident', incidentId: inst.state.incidents[0]!.id });
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toHaveLength(1);
    expect(inst.state.incidents[0]).toMatchObject({ code: 'script_error', attempts: 2 });
    inst.apply({ type: 'retryIncident', incidentId: inst.state.incidents[0]!.id });
    expect(inst.state.incidents[0]).toMatchObject({ attempts: 3 });
  });

  it('re-arms the boundary timer of the retried activity once, not twice', () => {
    const inst = failedAtCheck();
    const before = inst.trigger('check_timeout', 'timer');
    inst.apply({ type: 'retryIncident', incidentId: inst.state.incidents[0]!.id });
    const timers = inst.triggers().filter((t) => t.elementId === 'check_timeout');
    expect(timers).toHaveLength(1);
    expect(timers[0]!.id).not.toBe(before.id);
    expect(inst.effectsOf('timerCancelled').map((e) => e.timerId)).toContain(before.id);
  });

  it('a failed service job becomes an incident with its tries, and a retry creates a new job', () => {
    const inst = failedAtCheck();
    inst.apply({ type: 'setVariables', variables: { amount: 1 } });
    inst.apply({ type: 'retryIncident', incidentId: inst.state.incidents[0]!.id });
    inst.completeTask('pick');
    inst.completeTask('pack');
    inst.completeTask('notify');
    const job = inst.job('charge');
    expect(job.retries).toBe(2);
    inst.apply({ type: 'serviceJobFailed', jobId: job.id, message: 'card declined', attempts: 2 });
    const [incident] = inst.state.incidents;
    expect(incident).toMatchObject({ code: 'service_failed', elementId: 'charge', attempts: 2 });

    inst.apply({ type: 'retryIncident', incidentId: incident!.id });
    const again = inst.job('charge');
    expect(again.id).not.toBe(job.id);
    inst.completeJob('charge');
    expect(inst.status).toBe('completed');
  });

  it('explains why an incident cannot be retried, and ignores such a retry', () => {
    const inst = failedAtCheck();
    const id = inst.state.incidents[0]!.id;
    expect(incidentRetryProblem(inst.state, id)).toBeNull();
    expect(incidentRetryProblem(inst.state, 'nope')).toMatchObject({ code: 'incident_not_open' });
    inst.apply({ type: 'cancel' });
    expect(inst.apply({ type: 'retryIncident', incidentId: id }).ignored).toBe(true);
  });
});

describe('setting variables', () => {
  it('writes into a subprocess scope instance when asked, into the root scope otherwise', () => {
    const inst = failedAtCheck();
    inst.apply({ type: 'setVariables', variables: { amount: 5 } });
    inst.apply({ type: 'retryIncident', incidentId: inst.state.incidents[0]!.id });
    const sub = Object.values(inst.state.scopes).find((s) => s.elementId === 'fulfil')!;
    inst.apply({ type: 'setVariables', variables: { box: 'large' }, scopeId: sub.id });
    expect(inst.state.scopes[sub.id]!.variables).toMatchObject({ box: 'large' });
    expect(inst.variables).not.toHaveProperty('box');
    // unknown scope: ignored, nothing written
    expect(inst.apply({ type: 'setVariables', variables: { x: 1 }, scopeId: 'gone' }).ignored).toBe(true);
    inst.completeTask('pick');
    inst.completeTask('pack');
    expect(inst.variables).toMatchObject({ box: 'large' }); // merged out when the subprocess completed
  });
});

describe('reset to an element', () => {
  function inFulfilment(): Instance {
    const inst = Instance.start(graph, { amount: 10 });
    inst.completeTask('review');
    inst.completeTask('pick');
    return inst;
  }

  it('withdraws every token, cancels their tasks and waits, and starts again at the element', () => {
    const inst = inFulfilment();
    expect(inst.active).toEqual(['fulfil', 'notify', 'pack']);
    inst.apply({ type: 'reset', elementId: 'review' });
    expect(inst.active).toEqual(['review']);
    expect(inst.cancelledTasks().sort()).toEqual(['notify', 'pack']);
    expect(inst.triggers().filter((t) => t.elementId === 'fulfil_late')).toHaveLength(0);
    expect(inst.trail()).toContain('instance_reset:review');
    expect(inst.variables).toMatchObject({ amount: 10, approved: true });
    // and it runs on from there
    inst.completeTask('review');
    expect(inst.active).toEqual(['fulfil', 'notify', 'pick']);
  });

  it('resets into a subprocess: a fresh scope instance, its boundary events armed, and it completes normally', () => {
    const inst = inFulfilment();
    inst.completeTask('notify');
    inst.apply({ type: 'reset', elementId: 'pick' });
    expect(inst.active).toEqual(['fulfil', 'pick']);
    expect(inst.triggers().filter((t) => t.elementId === 'fulfil_late')).toHaveLength(1);
    inst.completeTask('pick');
    inst.completeTask('pack');
    // notify was withdrawn by the reset: the join now waits for it, as after a real reset
    expect(inst.active).toEqual(['join']);
  });

  it('resolves every open incident', () => {
    const inst = failedAtCheck();
    const id = inst.state.incidents[0]!.id;
    inst.apply({ type: 'reset', elementId: 'review' });
    expect(inst.status).toBe('waiting');
    expect(inst.state.incidents).toEqual([]);
    expect(inst.effectsOf('incidentResolved')).toContainEqual({ type: 'incidentResolved', incidentId: id, reason: 'reset' });
  });

  it('refuses targets a single token cannot sensibly start at', () => {
    expect(resetTargetProblem(graph, 'review')).toBeNull();
    expect(resetTargetProblem(graph, 'pack')).toBeNull();
    expect(resetTargetProblem(graph, 'nope')).toMatch(/not a flow node/);
    expect(resetTargetProblem(graph, 'check_timeout')).toMatch(/boundary event/);
    expect(resetTargetProblem(graph, 'join')).toMatch(/joining gateway/);
    const inst = inFulfilment();
    expect(inst.apply({ type: 'reset', elementId: 'join' }).ignored).toBe(true);
  });
});
