import { afterAll, describe, expect, it } from 'vitest';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

const start = (graph: Awaited<ReturnType<typeof loadGraph>>) => Instance.start(graph, { reminders: 0, pongs: 0, note: 'hello', total: 0 });

describe('event subprocesses', () => {
  it('opens the start triggers of the process event subprocesses when the instance starts', async () => {
    const inst = start(await loadGraph('event-subprocesses.bpmn', 'esp_top'));
    expect(inst.triggers().map((t) => [t.elementId, t.kind, t.role, t.tokenId])).toEqual([
      ['msg_start', 'message', 'eventSubProcess', null],
      ['timer_start', 'timer', 'eventSubProcess', null],
      ['signal_start', 'signal', 'eventSubProcess', null],
      ['cond_start', 'conditional', 'eventSubProcess', null],
    ]);
    expect(inst.effectsOf('timerScheduled')[0]?.timer).toMatchObject({ tokenId: null, elementId: 'timer_start', cycle: { expression: 'R2/PT1H', remaining: 1 } });
  });

  it('non-interrupting timer (cycle) and signal starts run beside the process, reading and writing its variables', async () => {
    const inst = start(await loadGraph('event-subprocesses.bpmn', 'esp_top'));
    inst.fireTimer('timer_start');
    inst.receiveSignal('signal_start');
    inst.fireTimer('timer_start');
    expect(inst.variables).toMatchObject({ reminders: 2, pongs: 1, echo: 'hello' });
    // two repetitions used up
    expect(inst.triggers().some((t) => t.elementId === 'timer_start')).toBe(false);
    expect(inst.active).toEqual(['work']);
    inst.completeTask('work');
    expect(inst.status).toBe('completed');
    // the remaining event subprocess triggers close with the process
    expect(inst.triggers()).toEqual([]);
    expect(inst.path()).toEqual(['start', 'work', 'esp_timer', 'timer_start', 'remind', 'esp_signal', 'signal_start', 'pong', 'esp_timer', 'timer_start', 'remind', 'end']);
  });

  it('an interrupting message start cancels the process content and closes the other starts', async () => {
    const inst = start(await loadGraph('event-subprocesses.bpmn', 'esp_top'));
    inst.receiveMessage('msg_start', { why: 'changed mind' });
    expect(inst.cancelledTasks()).toEqual(['work']);
    expect(inst.active).toEqual(['esp_msg', 'handle_cancel']);
    expect(inst.triggers()).toEqual([]);
    expect(inst.last.effects.filter((e) => e.type === 'timerCancelled' || e.type === 'subscriptionClosed')).toHaveLength(3);
    inst.completeTask('handle_cancel');
    expect(inst.status).toBe('completed');
    expect(inst.variables).toMatchObject({ why: 'changed mind' });
  });

  it('an interrupting conditional start fires when the variables make it true', async () => {
    const inst = start(await loadGraph('event-subprocesses.bpmn', 'esp_top'));
    inst.completeTask('work', { total: 5000 });
    // the variable change is checked before "work" moves on: it is interrupted on its way out
    expect(inst.active).toEqual(['esp_cond', 'too_big']);
    expect(inst.path('element_cancelled')).toEqual(['work']);
    expect(inst.path()).not.toContain('end');

    const other = start(await loadGraph('event-subprocesses.bpmn', 'esp_top'));
    other.receiveSignal('signal_start', { total: 2000 });
    expect(other.active).toEqual(['esp_cond', 'too_big']);
    expect(other.cancelledTasks()).toEqual(['work']);
  });

  it('an error event subprocess inside a subprocess catches its error end event; the subprocess then completes normally', async () => {
    const inst = Instance.start(await loadGraph('event-subprocesses.bpmn', 'esp_in_subprocess'));
    // the escalation started the non-interrupting event subprocess, "job" went on
    expect(inst.active).toEqual(['job', 'sub']);
    inst.completeTask('job', { broken: true });
    expect(inst.active).toEqual(['done']);
    expect(inst.variables).toEqual({ warned: true, broken: true, recovered: true });
    expect(inst.path()).toEqual(['p_start', 'sub', 'sub_start', 'warn', 'esp_esc', 'job', 'esc_start', 'note_warn', 'ok', 'fail', 'esp_err', 'err_start', 'recover', 'done']);
  });
});
