import { afterAll, describe, expect, it } from 'vitest';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

describe('error boundary events', () => {
  it('catches an error end event by its code on the subprocess, cancelling the rest of the subprocess', async () => {
    const graph = await loadGraph('boundary-error-subprocess.bpmn');
    const inst = Instance.start(graph);
    expect(inst.active).toEqual(['side', 'sub', 'work']);
    inst.completeTask('work', { outcome: 'A' });
    expect(inst.status).toBe('completed');
    // outcome was created in the subprocess scope, which the catch discarded
    expect(inst.variables).toEqual({ result: 'caught A' });
    expect(inst.cancelledTasks()).toEqual(['side']);
    expect(inst.path()).toEqual(['start', 'sub', 'sub_start', 'fork', 'work', 'side', 'which', 'err_a', 'catch_a', 'handle_a', 'end_a']);
    expect(inst.path('element_cancelled')).toEqual(['side', 'sub']);
    expect(inst.path('element_completed')).toContain('err_a');
  });

  it('falls back to the catch-all error boundary event for another code', async () => {
    const graph = await loadGraph('boundary-error-subprocess.bpmn');
    const inst = Instance.start(graph);
    inst.completeTask('work', { outcome: 'B' });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ result: 'caught any' });
    expect(inst.path()).toEqual(['start', 'sub', 'sub_start', 'fork', 'work', 'side', 'which', 'err_b', 'catch_all', 'handle_all', 'end_all']);
  });

  it('lets the subprocess complete normally when no error is thrown', async () => {
    const graph = await loadGraph('boundary-error-subprocess.bpmn');
    const inst = Instance.start(graph);
    inst.completeTask('work', { outcome: 'fine' });
    inst.completeTask('side');
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ outcome: 'fine', result: 'normal' });
    expect(inst.path('element_cancelled')).toEqual([]);
  });

  it('catches a BPMN error of a service job on the task, without cancelling the finished job', async () => {
    const graph = await loadGraph('boundary-service-error.bpmn');
    const inst = Instance.start(graph);
    const job = inst.job('charge');
    inst.apply({ type: 'serviceJobBpmnError', jobId: job.id, errorCode: 'PAYMENT_DECLINED', message: 'card expired' });
    expect(inst.status).toBe('waiting');
    expect(inst.active).toEqual(['notify']);
    expect(inst.effectsOf('serviceJobCancelled')).toEqual([]);
    // camunda:errorCodeVariable / errorMessageVariable
    expect(inst.variables).toEqual({ failCode: 'PAYMENT_DECLINED', failMessage: 'card expired' });
    inst.completeTask('notify');
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'charge', 'declined', 'notify', 'end_declined']);
    expect(inst.path('element_cancelled')).toEqual(['charge']);
  });

  it('turns a BPMN error with an uncaught code into an unhandled_bpmn_error incident', async () => {
    const graph = await loadGraph('boundary-service-error.bpmn');
    const inst = Instance.start(graph);
    inst.apply({ type: 'serviceJobBpmnError', jobId: inst.job('charge').id, errorCode: 'OTHER' });
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toMatchObject([{ code: 'unhandled_bpmn_error', elementId: 'charge' }]);
    expect(inst.active).toEqual(['charge']);
  });

  it('turns an uncaught error end event into an incident, not a silent end', async () => {
    const graph = await loadGraph('error-end-uncaught.bpmn');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toMatchObject([{ code: 'unhandled_bpmn_error', elementId: 'fail', message: expect.stringContaining('BOOM') }]);
  });
});

describe('timer boundary events', () => {
  it('schedules both timers when the subprocess starts, with ISO due dates and the cycle', async () => {
    const graph = await loadGraph('boundary-timers.bpmn');
    const inst = Instance.start(graph, { reminders: 0 });
    const scheduled = inst.effectsOf('timerScheduled').map((e) => e.timer);
    expect(scheduled).toHaveLength(2);
    const remind = scheduled.find((t) => t.elementId === 'remind');
    const late = scheduled.find((t) => t.elementId === 'too_late');
    expect(remind).toMatchObject({ cycle: { expression: 'R3/PT10M', remaining: 2 }, definition: { kind: 'cycle', expression: 'R3/PT10M' } });
    expect(late).toMatchObject({ cycle: null, definition: { kind: 'duration', expression: 'PT1H' } });
    const startedAt = Date.parse('2026-01-01T00:00:00.000Z');
    expect(Date.parse(remind?.dueAt ?? '') - startedAt).toBeGreaterThanOrEqual(10 * 60_000);
    expect(Date.parse(remind?.dueAt ?? '') - startedAt).toBeLessThan(10 * 60_000 + 1000);
    expect(Date.parse(late?.dueAt ?? '') - startedAt).toBeGreaterThanOrEqual(60 * 60_000);
    expect(remind?.tokenId).toBe(late?.tokenId);
  });

  it('fires a non-interrupting cycle timer repeatedly while the activity runs, then the interrupting one cancels everything inside', async () => {
    const graph = await loadGraph('boundary-timers.bpmn');
    const inst = Instance.start(graph, { reminders: 0 });
    const firstRemind = inst.trigger('remind', 'timer');

    inst.fireTimer('remind');
    expect(inst.variables).toEqual({ reminders: 1 });
    const second = inst.trigger('remind', 'timer');
    expect(second.id).not.toBe(firstRemind.id);
    expect(second.cycle).toEqual({ expression: 'R3/PT10M', remaining: 1 });
    expect(Date.parse(second.dueAt ?? '') - Date.parse(firstRemind.dueAt ?? '')).toBe(10 * 60_000);
    expect(inst.last.effects).toContainEqual(expect.objectContaining({ type: 'timerScheduled', timer: expect.objectContaining({ id: second.id }) }));

    inst.fireTimer('remind');
    inst.fireTimer('remind');
    expect(inst.variables).toEqual({ reminders: 3 });
    // three repetitions used up: no further reminder timer
    expect(inst.triggers().map((t) => t.elementId)).toEqual(['too_late']);
    expect(inst.active).toEqual(['check', 'deep', 'nested', 'read', 'review']);

    // a stale timer id is ignored
    expect(inst.apply({ type: 'timerFired', timerId: firstRemind.id })).toMatchObject({ ignored: true, effects: [] });

    const checkJob = inst.job('check').id;
    inst.fireTimer('too_late');
    expect(inst.active).toEqual(['escalate']);
    expect(inst.cancelledTasks().sort()).toEqual(['deep', 'read']);
    expect(inst.last.effects).toContainEqual({ type: 'serviceJobCancelled', jobId: checkJob });
    expect(inst.path('element_cancelled').sort()).toEqual(['check', 'deep', 'nested', 'read', 'review']);
    expect(inst.triggers()).toEqual([]);
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
    expect(inst.path().filter((p) => ['remind', 'count', 'too_late', 'escalate'].includes(p))).toEqual([
      'remind', 'count', 'remind', 'count', 'remind', 'count', 'too_late', 'escalate',
    ]);
  });

  it('cancels the timers when the activity completes first', async () => {
    const graph = await loadGraph('boundary-timers.bpmn');
    const inst = Instance.start(graph, { reminders: 0 });
    const timerIds = inst.triggers().map((t) => t.id).sort();
    inst.completeTask('read');
    inst.completeJob('check');
    inst.completeTask('deep');
    expect(inst.status).toBe('completed');
    expect(inst.effectsOf('timerCancelled').map((e) => e.timerId).sort()).toEqual(timerIds);
    expect(inst.apply({ type: 'timerFired', timerId: timerIds[0] ?? '' }).ignored).toBe(true);
  });
});

describe('message, signal and conditional boundary events', () => {
  it('opens a message subscription with the evaluated correlation key and interrupts the task when the message arrives', async () => {
    const graph = await loadGraph('boundary-message-signal-conditional.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-42', amount: 10, alerts: 0 });
    const subs = inst.effectsOf('subscriptionOpened').map((e) => e.subscription);
    expect(subs).toEqual([
      { id: expect.any(String), kind: 'message', name: 'cancel_order', correlationKey: 'o-42', tokenId: expect.any(String), elementId: 'on_cancel' },
      { id: expect.any(String), kind: 'signal', name: 'alert', correlationKey: null, tokenId: expect.any(String), elementId: 'on_alert' },
      { id: expect.any(String), kind: 'conditional', name: 'amount > 100', correlationKey: null, tokenId: expect.any(String), elementId: 'on_big' },
    ]);
    inst.receiveMessage('on_cancel', { reason: 'customer' });
    expect(inst.status).toBe('completed');
    expect(inst.cancelledTasks()).toEqual(['work']);
    expect(inst.variables).toMatchObject({ reason: 'customer' });
    expect(inst.path()).toEqual(['start', 'work', 'on_cancel', 'cancelled']);
    // the other subscriptions were closed with the task
    expect(inst.effectsOf('subscriptionClosed').map((e) => e.subscriptionId).sort()).toEqual([subs[1]?.id, subs[2]?.id].sort());
  });

  it('runs a non-interrupting signal boundary each time the signal arrives, leaving the task open', async () => {
    const graph = await loadGraph('boundary-message-signal-conditional.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-1', amount: 10, alerts: 0 });
    inst.receiveSignal('on_alert');
    inst.receiveSignal('on_alert');
    expect(inst.variables).toMatchObject({ alerts: 2 });
    expect(inst.active).toEqual(['work']);
    inst.completeTask('work');
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'work', 'on_alert', 'note', 'on_alert', 'note', 'end']);
  });

  it('interrupts the task when the condition becomes true after a variable change', async () => {
    const graph = await loadGraph('boundary-message-signal-conditional.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-1', amount: 10, alerts: 0 });
    expect(inst.active).toEqual(['work']);
    // a signal path that does not touch amount leaves the condition false
    inst.receiveSignal('on_alert');
    expect(inst.active).toEqual(['work']);
    // the boundary's own scope sees the change made by the message payload
    inst.apply({ type: 'signalReceived', subscriptionId: inst.trigger('on_alert').id, name: 'alert', variables: { amount: 500 } });
    expect(inst.active).toEqual(['big']);
    expect(inst.cancelledTasks()).toEqual(['work']);
  });

  it('interrupts at once when the condition already holds as the task starts', async () => {
    const graph = await loadGraph('boundary-message-signal-conditional.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-1', amount: 1000, alerts: 0 });
    expect(inst.active).toEqual(['big']);
    expect(inst.path()).toEqual(['start', 'work', 'on_big', 'big']);
  });

  it('ignores a message for a subscription that is gone', async () => {
    const graph = await loadGraph('boundary-message-signal-conditional.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-1', amount: 10, alerts: 0 });
    const sub = inst.trigger('on_cancel');
    inst.completeTask('work');
    expect(inst.apply({ type: 'messageReceived', subscriptionId: sub.id, name: 'cancel_order' })).toMatchObject({ ignored: true });
  });
});

describe('escalation boundary events', () => {
  it('non-interrupting: the catcher runs and the thrower goes on; an uncaught escalation is no incident', async () => {
    const graph = await loadGraph('boundary-escalation.bpmn');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('waiting');
    expect(inst.state.incidents).toEqual([]);
    expect(inst.active).toEqual(['notify', 'soft', 'soft_work']);
    // depth first: the thrower goes on until it waits, then the boundary token runs
    expect(inst.path()).toEqual(['start', 'soft', 's_start', 'throw_late', 'throw_unknown', 'soft_work', 'on_late', 'notify']);
  });

  it('interrupting: an escalation end event cancels the subprocess through the boundary event', async () => {
    const graph = await loadGraph('boundary-escalation.bpmn');
    const inst = Instance.start(graph);
    inst.completeTask('notify');
    inst.completeTask('soft_work');
    expect(inst.status).toBe('completed');
    expect(inst.cancelledTasks()).toEqual(['hard_wait']);
    expect(inst.path().slice(-7)).toEqual(['hard', 'h_start', 'h_fork', 'hard_wait', 'stop', 'on_stop', 'stopped']);
    expect(inst.path('element_cancelled')).toEqual(['hard_wait', 'hard']);
  });
});

describe('error propagation', () => {
  it('passes an event subprocess for another code and reaches the boundary event of the multi-instance activity, cancelling every instance', async () => {
    const graph = await loadGraph('error-propagation.bpmn');
    const inst = Instance.start(graph, { items: ['ok', 'bad', 'ok'] });
    const tasks = inst.openTasks();
    expect(tasks).toHaveLength(3);
    // complete the "bad" instance's task (the second)
    inst.apply({ type: 'humanTaskCompleted', taskId: tasks[1]?.id ?? '' });
    expect(inst.active).toEqual(['rescue']);
    expect(inst.cancelledTasks()).toEqual(['step', 'step']);
    expect(inst.path().slice(-3)).toEqual(['b_fail', 'on_bad', 'rescue']);
    expect(inst.path()).not.toContain('o_start');
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
  });
});
