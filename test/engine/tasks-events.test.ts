import { afterAll, describe, expect, it } from 'vitest';
import { startInstance } from '../../src/engine/index.js';
import { Instance, closeEvaluator, loadGraph, testContext } from './helpers.js';

afterAll(closeEvaluator);

describe('send, receive and business rule tasks', () => {
  it('a send task throws a message, a receive task waits for one, a business rule task with a task type runs as a job', async () => {
    const graph = await loadGraph('send-receive-business-rule.bpmn');
    const inst = Instance.start(graph, { caseId: 'c-9' });
    expect(inst.effectsOf('messageThrown').map((e) => e.message)).toEqual([{ name: 'request', correlationKey: 'c-9', variables: { caseId: 'c-9' } }]);
    expect(inst.active).toEqual(['receive']);
    expect(inst.trigger('receive')).toMatchObject({ kind: 'message', name: 'response', correlationKey: 'c-9', role: 'catch' });
    inst.receiveMessage('receive', { answer: 'yes' });
    expect(inst.job('rules')).toMatchObject({ topic: 'score' });
    inst.completeJob('rules', { score: 7 });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ caseId: 'c-9', answer: 'yes', score: 7 });
    expect(inst.path()).toEqual(['start', 'send', 'receive', 'rules', 'end']);
  });
});

describe('process start events', () => {
  it('starts at a named message, timer, signal or conditional start event', async () => {
    const graph = await loadGraph('start-events.bpmn');
    for (const id of ['by_message', 'by_timer', 'by_signal', 'by_condition']) {
      const inst = Instance.start(graph, { stock: 3 }, testContext(), { startEventId: id });
      expect(inst.path()).toEqual([id, 'handle']);
      expect(inst.history[0]).toMatchObject({ event: 'instance_started', data: { startEventId: id } });
    }
  });

  it('refuses to start without a start event when the process has no none start', async () => {
    const graph = await loadGraph('start-events.bpmn');
    expect(() => startInstance(graph, { type: 'start' }, testContext())).toThrow(/no none start event/);
    expect(() => startInstance(graph, { type: 'start', startEventId: 'handle' }, testContext())).toThrow(/not a start event/);
  });
});

describe('timer definitions', () => {
  it('evaluates =expr and ${expr}, accepts quoted literals, cron and repeating intervals with a start', async () => {
    const graph = await loadGraph('timer-expressions.bpmn', 'timer_expressions');
    const inst = Instance.start(graph, { wait: 'PT2H', deadline: '2026-01-05T10:00:00Z' });
    const due = Object.fromEntries(inst.effectsOf('timerScheduled').map((e) => [e.timer.elementId, e.timer]));
    expect(due['feel_duration']).toMatchObject({ dueAt: expect.stringMatching(/^2026-01-01T02:00:00\.\d{3}Z$/), definition: { kind: 'duration', expression: 'PT2H' } });
    expect(due['juel_date']).toMatchObject({ dueAt: '2026-01-05T10:00:00.000Z', definition: { kind: 'date' } });
    expect(due['quoted']).toMatchObject({ dueAt: expect.stringMatching(/^2026-01-01T00:00:30\.\d{3}Z$/), definition: { kind: 'duration', expression: 'PT30S' } });
    // 2026-01-01 is a Thursday: the next Monday 09:00 UTC is 2026-01-05
    expect(due['cron']).toMatchObject({ dueAt: '2026-01-05T09:00:00.000Z', cycle: { expression: '0 0 9 * * MON', remaining: null } });
    expect(due['cycle_with_start']).toMatchObject({ dueAt: '2026-02-01T00:00:00.000Z', cycle: { remaining: null } });
    expect(due['long']?.dueAt).toMatch(/^2026-02-03T03:00:00\.\d{3}Z$/);
  });

  it('a timer expression that does not give a valid value is a timer_error incident', async () => {
    const graph = await loadGraph('timer-expressions.bpmn', 'timer_bad_expression');
    const inst = Instance.start(graph, { wait: 'soon' });
    expect(inst.state.incidents).toMatchObject([{ code: 'timer_error', elementId: 'bad' }]);
    expect(inst.effectsOf('timerScheduled')).toEqual([]);
  });
});

describe('data objects and SpiffArena task extensions', () => {
  it('a data object is a process-level value every task reads and writes, however nested', async () => {
    const graph = await loadGraph('data-objects.bpmn');
    const inst = Instance.start(graph);
    expect(inst.variables).toEqual({ customer: { name: 'Ada', tier: 'gold' } });
    const subScope = Object.values(inst.state.scopes).find((s) => s.elementId === 'sub');
    expect(subScope?.variables).toEqual({ scratch: 1 });
    inst.completeTask('peek');
    // instructionsForEndUser rendered with the variables the task sees, after its preScript
    expect(inst.task('greet').properties).toEqual({ instructionsForEndUser: 'Call Ada (gold), missing: []' });
    inst.completeTask('greet');
    expect(inst.variables).toEqual({ customer: { name: 'Ada', tier: 'gold' }, scratch: 1, shown: true });
  });
});

describe('timer values that are expressions (no = or ${} wrapper)', () => {
  it('a variable name, a quoted literal, a Date and a computed text are armed with their values', async () => {
    const graph = await loadGraph('timer-values-as-expressions.bpmn', 'timer_values');
    const inst = Instance.start(graph, { delay: 'PT5S', futuredate: '2026-03-01T12:00:00Z', minutes: 7, start_time: '2026-02-01T08:30:00Z' });
    expect(inst.state.incidents).toEqual([]);
    const due = Object.fromEntries(inst.effectsOf('timerScheduled').map((e) => [e.timer.elementId, e.timer]));
    expect(due['by_variable']).toMatchObject({ dueAt: expect.stringMatching(/^2026-01-01T00:00:05\.\d{3}Z$/), definition: { kind: 'duration', expression: 'PT5S' } });
    expect(due['by_quoted']).toMatchObject({ dueAt: expect.stringMatching(/^2026-01-01T00:01:00\.\d{3}Z$/), definition: { kind: 'duration', expression: 'PT1M' } });
    expect(due['by_date_object']).toMatchObject({ dueAt: '2026-03-01T13:00:00.000Z', definition: { kind: 'date' } });
    expect(due['by_concat']).toMatchObject({ dueAt: expect.stringMatching(/^2026-01-01T00:07:00\.\d{3}Z$/), definition: { kind: 'duration', expression: 'PT7M' } });
    expect(due['by_start_time']).toMatchObject({ dueAt: '2026-02-01T08:30:00.000Z' });
  });

  it('a value that is not a valid timer is a timer_error incident naming the element', async () => {
    const graph = await loadGraph('timer-values-as-expressions.bpmn', 'timer_value_invalid');
    for (const delay of ['soon', 42, null]) {
      const inst = Instance.start(graph, { delay });
      expect(inst.state.incidents).toMatchObject([{ code: 'timer_error', elementId: 'wait_it' }]);
      expect(inst.state.incidents[0]?.message).toContain("'wait_it'");
    }
    // an undefined variable too
    const missing = Instance.start(graph, {});
    expect(missing.state.incidents).toMatchObject([{ code: 'timer_error', elementId: 'wait_it' }]);
  });
});
