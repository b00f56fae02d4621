import { afterAll, describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

describe('intermediate catch and throw events', () => {
  it('waits for a timer, a correlated message, a condition and a signal; throws message and signal; follows a link; ends with a message', async () => {
    const graph = await loadGraph('intermediate-events.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-7' });
    expect(inst.active).toEqual(['wait_timer']);
    expect(inst.effectsOf('timerScheduled')).toEqual([
      {
        type: 'timerScheduled',
        timer: {
          id: expect.any(String),
          tokenId: expect.any(String),
          elementId: 'wait_timer',
          dueAt: expect.stringMatching(/^2026-01-01T00:05:00\.\d{3}Z$/),
          cycle: null,
          definition: { kind: 'duration', expression: 'PT5M' },
        },
      },
    ]);
    inst.fireTimer('wait_timer');
    expect(inst.active).toEqual(['wait_payment']);
    expect(inst.last.effects).toContainEqual({
      type: 'subscriptionOpened',
      subscription: { id: expect.any(String), kind: 'message', name: 'payment', correlationKey: 'o-7', tokenId: expect.any(String), elementId: 'wait_payment' },
    });
    inst.receiveMessage('wait_payment', { paid: 99, approved: false });
    expect(inst.active).toEqual(['approve', 'wait_approved']);
    // the condition does not hold yet; it is re-evaluated when variables change
    inst.completeTask('approve', { approved: true });
    expect(inst.active).toEqual(['wait_go']);
    inst.receiveSignal('wait_go', { goAt: 'now' });
    expect(inst.status).toBe('completed');
    expect(inst.effectsOf('messageThrown').map((e) => e.message)).toEqual([
      { name: 'shipped', correlationKey: 'o-7', variables: { orderId: 'o-7', paid: 99, approved: true, goAt: 'now' } },
      { name: 'bye', correlationKey: null, variables: { orderId: 'o-7', paid: 99, approved: true, goAt: 'now' } },
    ]);
    expect(inst.effectsOf('signalThrown').map((e) => e.signal)).toEqual([
      { name: 'done', variables: { orderId: 'o-7', paid: 99, approved: true, goAt: 'now' } },
    ]);
    expect(inst.path()).toEqual([
      'start', 'wait_timer', 'wait_payment', 'fork', 'wait_approved', 'approve', 'join', 'join',
      'wait_go', 'throw_shipped', 'throw_done', 'jump', 'landing', 'milestone', 'say_bye',
    ]);
    expect(inst.variables).toEqual({ orderId: 'o-7', paid: 99, approved: true, goAt: 'now' });
    expect(inst.triggers()).toEqual([]);
  });

  it('treats a duplicate message for a consumed subscription as stale', async () => {
    const graph = await loadGraph('intermediate-events.bpmn');
    const inst = Instance.start(graph, { orderId: 'o-7' });
    inst.fireTimer('wait_timer');
    const sub = inst.trigger('wait_payment');
    inst.receiveMessage('wait_payment', { approved: false });
    const again = inst.apply({ type: 'messageReceived', subscriptionId: sub.id, name: 'payment', variables: { paid: 1 } });
    expect(again).toMatchObject({ ignored: true, effects: [] });
    // a timer id sent as a message subscription is not accepted either
    expect(inst.apply({ type: 'signalReceived', subscriptionId: sub.id, name: 'payment' }).ignored).toBe(true);
  });
});

describe('end events', () => {
  it('escalation end (uncaught: no incident), signal end, then terminate cancels what is left', async () => {
    const graph = await loadGraph('end-events-signal-terminate.bpmn');
    const inst = Instance.start(graph);
    expect(inst.state.incidents).toEqual([]);
    expect(inst.active).toEqual(['decide', 'waiting']);
    expect(inst.effectsOf('signalThrown').map((e) => e.signal.name)).toEqual(['closed']);
    inst.completeTask('decide');
    expect(inst.status).toBe('terminated');
    expect(inst.cancelledTasks()).toEqual(['waiting']);
    expect(inst.path('element_completed')).toEqual(expect.arrayContaining(['esc_end', 'signal_end', 'kill']));
  });
});

describe('event-based gateway', () => {
  it('the first event wins and the others are withdrawn in the same step', async () => {
    const graph = await loadGraph('event-based-gateway.bpmn');
    const inst = Instance.start(graph, { balance: 0 });
    expect(inst.active).toEqual(['gw']);
    const triggers = inst.triggers();
    expect(triggers.map((t) => [t.elementId, t.kind])).toEqual([
      ['timeout', 'timer'],
      ['answer', 'message'],
      ['abort', 'signal'],
      ['reply', 'message'],
      ['rich', 'conditional'],
    ]);
    expect(inst.trigger('timeout').dueAt).toBe('2026-03-01T09:00:00.000Z');
    inst.receiveMessage('answer', { text: 'yes' });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ balance: 0, text: 'yes' });
    const withdrawn = inst.last.effects.filter((e) => e.type === 'timerCancelled' || e.type === 'subscriptionClosed');
    expect(withdrawn).toEqual([
      { type: 'timerCancelled', timerId: triggers[0]?.id },
      { type: 'subscriptionClosed', subscriptionId: triggers[2]?.id },
      { type: 'subscriptionClosed', subscriptionId: triggers[3]?.id },
      { type: 'subscriptionClosed', subscriptionId: triggers[4]?.id },
    ]);
    expect(inst.path()).toEqual(['start', 'gw', 'answer', 'end_answer']);
    expect(inst.trail()).toContain('flow_taken:g2');
    // the losers are stale now
    expect(inst.apply({ type: 'timerFired', timerId: triggers[0]?.id ?? '' }).ignored).toBe(true);
  });

  it('a timer wins', async () => {
    const graph = await loadGraph('event-based-gateway.bpmn');
    const inst = Instance.start(graph, { balance: 0 });
    inst.fireTimer('timeout');
    expect(inst.path()).toEqual(['start', 'gw', 'timeout', 'end_timeout']);
    expect(inst.triggers()).toEqual([]);
  });

  it('a receive task wins', async () => {
    const graph = await loadGraph('event-based-gateway.bpmn');
    const inst = Instance.start(graph, { balance: 0 });
    inst.receiveMessage('reply', { r: 1 });
    expect(inst.path()).toEqual(['start', 'gw', 'reply', 'end_reply']);
    expect(inst.variables).toEqual({ balance: 0, r: 1 });
  });

  it('a condition that already holds wins at once', async () => {
    const graph = await loadGraph('event-based-gateway.bpmn');
    const inst = Instance.start(graph, { balance: 5000 });
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'gw', 'rich', 'end_rich']);
  });
});

describe('BPMN-standard message correlation (retrieval expressions)', () => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:collaboration id="c">
    <bpmn:participant id="pr" processRef="receiver"/><bpmn:participant id="pt" processRef="thrower"/>
    <bpmn:correlationKey name="order_key"><bpmn:correlationPropertyRef>order_id</bpmn:correlationPropertyRef></bpmn:correlationKey>
  </bpmn:collaboration>
  <bpmn:correlationProperty id="order_id" name="order_id">
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_paid"><bpmn:messagePath>order.id</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_two"><bpmn:messagePath>order.id</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:correlationProperty id="a_region" name="region">
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_two"><bpmn:messagePath>region</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:message id="msg_paid" name="order_paid"/>
  <bpmn:message id="msg_two" name="two_keys"/>
  <bpmn:process id="receiver" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="msg_paid"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
  <bpmn:process id="thrower" isExecutable="true">
    <bpmn:startEvent id="ts"/><bpmn:sequenceFlow id="t1" sourceRef="ts" targetRef="send"/>
    <bpmn:sendTask id="send" messageRef="msg_paid"/><bpmn:sequenceFlow id="t2" sourceRef="send" targetRef="throw"/>
    <bpmn:intermediateThrowEvent id="throw"><bpmn:messageEventDefinition messageRef="msg_two"/></bpmn:intermediateThrowEvent>
    <bpmn:sequenceFlow id="t3" sourceRef="throw" targetRef="te"/>
    <bpmn:endEvent id="te"><bpmn:messageEventDefinition messageRef="msg_paid"/></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>`;
  const graphs = async () => {
    const { processes, problems } = await compileFiles([{ name: 'corr.bpmn', content: xml }]);
    expect(problems).toEqual([]);
    const by = (k: string) => processes.find((p) => p.key === k)!.graph;
    return { receiver: by('receiver'), thrower: by('thrower') };
  };

  it('opens the subscription with the key read from the receiver variables', async () => {
    const { receiver } = await graphs();
    const a = Instance.start(receiver, { order: { id: 'A' } });
    expect(a.effectsOf('subscriptionOpened').map((e) => e.subscription)).toEqual([
      { id: expect.any(String), kind: 'message', name: 'order_paid', correlationKey: 'A', tokenId: expect.any(String), elementId: 'wait' },
    ]);
    // a non-string value becomes JSON, as for zeebe keys
    const n = Instance.start(receiver, { order: { id: 7 } });
    expect(n.effectsOf('subscriptionOpened')[0]!.subscription.correlationKey).toBe('7');
  });

  it('throws the message with the key read from the thrower variables (send task, throw event, end event)', async () => {
    const { thrower } = await graphs();
    const t = Instance.start(thrower, { order: { id: 'A' }, region: 'eu' });
    expect(t.status).toBe('completed');
    const variables = { order: { id: 'A' }, region: 'eu' };
    expect(t.effectsOf('messageThrown').map((e) => e.message)).toEqual([
      { name: 'order_paid', correlationKey: 'A', variables },
      // two properties: property-id order (a_region, order_id), joined with '|'
      { name: 'two_keys', correlationKey: 'eu|A', variables },
      { name: 'order_paid', correlationKey: 'A', variables },
    ]);
  });
});

describe('message and signal events without messageRef/signalRef', () => {
  it('are named after the event (SpiffWorkflow), else after its id', async () => {
    const graph = await loadGraph('message-signal-without-ref.bpmn');
    const inst = Instance.start(graph);
    expect(inst.trigger('paid')).toMatchObject({ kind: 'message', name: 'Payment received', correlationKey: null });
    expect(inst.trigger('alarm_heard')).toMatchObject({ kind: 'signal', name: 'Alarm' });
    expect(inst.trigger('nameless')).toMatchObject({ kind: 'message', name: 'nameless' });
    expect(inst.trigger('reply')).toMatchObject({ kind: 'message', name: 'Reply' });
    inst.receiveMessage('paid');
    // the throw named "Alarm" reached the catch named "Alarm"
    expect(inst.effectsOf('signalThrown').map((e) => e.signal.name)).toEqual(['Alarm']);
    expect(inst.active).toEqual(['nameless', 'reply']);
  });
});
