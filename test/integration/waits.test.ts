/**
 * Waits on the outside world, end to end against the real Postgres and Redis:
 * timers fired by the scheduler, messages (correlation keys, buffering, TTL,
 * idempotency, start events, races), signals, timer start events, call
 * activities (parent and child as separate instances) and boundary timers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { Redis } from 'ioredis';
import { apiClient, defs } from '../support/api.js';
import { eventually, isolation, REDIS_URL, startDistributed } from '../support/env.js';

const iso = isolation('waits');
let baton: Baton;
const extraSchedulers: Baton[] = [];


const paidMessage = `<bpmn:message id="msg-paid" name="order-paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>`;

const MODELS: Record<string, string> = {
  'timer-catch': defs(
    'timer-catch',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
     <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>PT0.3S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><bpmn:endEvent id="e"/>`,
  ),
  'await-payment': defs(
    'await-payment',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="paid"/>
     <bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="msg-paid"/></bpmn:intermediateCatchEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="paid" targetRef="e"/><bpmn:endEvent id="e"/>`,
    paidMessage,
  ),
  'started-by-message': defs(
    'started-by-message',
    `<bpmn:startEvent id="s"><bpmn:messageEventDefinition messageRef="msg-go"/></bpmn:startEvent>
     <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="u"/><bpmn:userTask id="u"/>
     <bpmn:sequenceFlow id="f2" sourceRef="u" targetRef="e"/><bpmn:endEvent id="e"/>`,
    `<bpmn:message id="msg-go" name="go-order"/>`,
  ),
  'await-signal': defs(
    'await-signal',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="sig"/>
     <bpmn:intermediateCatchEvent id="sig"><bpmn:signalEventDefinition signalRef="sig-alarm"/></bpmn:intermediateCatchEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="sig" targetRef="e"/><bpmn:endEvent id="e"/>`,
    `<bpmn:signal id="sig-alarm" name="alarm"/>`,
  ),
  'started-by-signal': defs(
    'started-by-signal',
    `<bpmn:startEvent id="s"><bpmn:signalEventDefinition signalRef="sig-alarm2"/></bpmn:startEvent>
     <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="e"/><bpmn:endEvent id="e"/>`,
    `<bpmn:signal id="sig-alarm2" name="alarm"/>`,
  ),
  'review-child': defs(
    'review-child',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
     <bpmn:userTask id="review" name="Child review"/>
     <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="sum"/>
     <bpmn:scriptTask id="sum" scriptFormat="javascript"><bpmn:script>childResult = amount * 2;</bpmn:script></bpmn:scriptTask>
     <bpmn:sequenceFlow id="f3" sourceRef="sum" targetRef="e"/><bpmn:endEvent id="e"/>`,
  ),
  'calls-child': defs(
    'calls-child',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
     <bpmn:callActivity id="call" calledElement="review-child"/>
     <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e"/><bpmn:endEvent id="e"/>`,
  ),
  'task-with-deadline': defs(
    'task-with-deadline',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="u"/>
     <bpmn:userTask id="u" name="Answer quickly"/>
     <bpmn:boundaryEvent id="late" attachedToRef="u"><bpmn:timerEventDefinition><bpmn:timeDuration>PT0.3S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="u" targetRef="done"/><bpmn:endEvent id="done"/>
     <bpmn:sequenceFlow id="f3" sourceRef="late" targetRef="escalated"/><bpmn:endEvent id="escalated"/>`,
  ),
  'pays-order': defs(
    'pays-order',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="send"/>
     <bpmn:intermediateThrowEvent id="send"><bpmn:messageEventDefinition messageRef="msg-paid"/></bpmn:intermediateThrowEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="send" targetRef="alarm"/>
     <bpmn:intermediateThrowEvent id="alarm"><bpmn:signalEventDefinition signalRef="sig-x"/></bpmn:intermediateThrowEvent>
     <bpmn:sequenceFlow id="f3" sourceRef="alarm" targetRef="e"/><bpmn:endEvent id="e"/>`,
    `${paidMessage}<bpmn:signal id="sig-x" name="order-alarm"/>`,
  ),
  'await-order-alarm': defs(
    'await-order-alarm',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="sig"/>
     <bpmn:intermediateCatchEvent id="sig"><bpmn:signalEventDefinition signalRef="sig-y"/></bpmn:intermediateCatchEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="sig" targetRef="e"/><bpmn:endEvent id="e"/>`,
    `<bpmn:signal id="sig-y" name="order-alarm"/>`,
  ),
  'signals-itself': defs(
    'signals-itself',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="split"/>
     <bpmn:parallelGateway id="split"/>
     <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="sig"/>
     <bpmn:intermediateCatchEvent id="sig"><bpmn:signalEventDefinition signalRef="sig-self"/></bpmn:intermediateCatchEvent>
     <bpmn:sequenceFlow id="f3" sourceRef="sig" targetRef="e1"/><bpmn:endEvent id="e1"/>
     <bpmn:sequenceFlow id="f4" sourceRef="split" targetRef="u"/><bpmn:userTask id="u"/>
     <bpmn:sequenceFlow id="f5" sourceRef="u" targetRef="throw"/>
     <bpmn:endEvent id="throw"><bpmn:signalEventDefinition signalRef="sig-self"/></bpmn:endEvent>
     <bpmn:subProcess id="esp" triggeredByEvent="true">
       <bpmn:startEvent id="esp_s" isInterrupting="false"><bpmn:signalEventDefinition signalRef="sig-self"/></bpmn:startEvent>
       <bpmn:sequenceFlow id="g1" sourceRef="esp_s" targetRef="note"/>
       <bpmn:scriptTask id="note"><bpmn:script>heardItself = true</bpmn:script></bpmn:scriptTask>
       <bpmn:sequenceFlow id="g2" sourceRef="note" targetRef="esp_e"/><bpmn:endEvent id="esp_e"/>
     </bpmn:subProcess>`,
    `<bpmn:signal id="sig-self" name="self-signal"/>`,
  ),
  'ticker': defs(
    'ticker',
    `<bpmn:startEvent id="tick"><bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT0.4S</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>
     <bpmn:sequenceFlow id="f1" sourceRef="tick" targetRef="e"/><bpmn:endEvent id="e"/>`,
  ),
};

const { call, instance, until, start } = apiClient(() => baton);

beforeAll(async () => {
  // the ticker below fires every 0.4 s, under the default minimum cycle of 1 s
  baton = await startDistributed(iso, ['api', 'step', 'service', 'scheduler'], { BATON_MIN_TIMER_INTERVAL_MS: '100' });
  // Two more schedulers on the same database: every timer must still fire once.
  for (let i = 0; i < 2; i++) extraSchedulers.push(await startDistributed(iso, ['scheduler']));
  const dep = await call('POST', '/v1/deployments', { files: Object.entries(MODELS).map(([k, content]) => ({ name: `${k}.bpmn`, content })) });
  expect(dep.status, JSON.stringify(dep.body)).toBe(201);
});

afterAll(async () => {
  for (const s of extraSchedulers) await s.close();
  await baton?.close();
  await iso.drop();
});

describe('timers', () => {
  it('an intermediate timer shows as a wait and fires once', async () => {
    const i = await start('timer-catch');
    expect(i.status).toBe('waiting');
    expect(i.waits).toEqual([expect.objectContaining({ kind: 'timer', elementId: 'wait', dueAt: expect.any(String) })]);
    const done = await until(i.id, 'completed');
    expect(done.waits).toEqual([]);
    const h = (await call('GET', `/v1/process-instances/${i.id}/history`)).body.items;
    expect(h.filter((x: { event: string; elementId: string }) => x.event === 'element_completed' && x.elementId === 'wait')).toHaveLength(1);
  });

  it('200 timers due together each fire exactly once with three schedulers', async () => {
    const ids = await Promise.all(Array.from({ length: 200 }, async () => (await call('POST', '/v1/process-instances', { processKey: 'timer-catch' })).body.id as string));
    await eventually(async () => {
      const r = await baton.db.selectFrom('process_instance').select(({ fn }) => fn.countAll<number>().as('c')).where('id', 'in', ids).where('status', '=', 'completed').executeTakeFirstOrThrow();
      return Number(r.c) === 200;
    }, 30_000);
    const fired = await baton.db
      .selectFrom('history')
      .select(({ fn }) => fn.countAll<number>().as('c'))
      .where('instance_id', 'in', ids)
      .where('event', '=', 'element_completed')
      .where('element_id', '=', 'wait')
      .executeTakeFirstOrThrow();
    expect(Number(fired.c)).toBe(200);
    const inbox = await baton.db.selectFrom('inbox').select(({ fn }) => fn.countAll<number>().as('c')).where('instance_id', 'in', ids).where('kind', '=', 'timerFired').executeTakeFirstOrThrow();
    expect(Number(inbox.c)).toBe(200);
  });

  it('an interrupting boundary timer cancels the task and takes its own path', async () => {
    const i = await start('task-with-deadline');
    const done = await until(i.id, 'completed').catch(async (err) => {
      const rows = await baton.db.selectFrom('timer').selectAll().where('instance_id', '=', i.id).execute();
      const inbox = await baton.db.selectFrom('inbox').selectAll().where('instance_id', '=', i.id).execute();
      throw new Error(`${String(err)}\ninstance ${JSON.stringify(await instance(i.id))}\ntimers ${JSON.stringify(rows)}\ninbox ${JSON.stringify(inbox)}\nnow ${new Date().toISOString()}`);
    });
    expect(done).toMatchObject({ status: 'completed' });
    const tasks = (await call('GET', `/v1/tasks?processInstanceId=${i.id}`)).body.items;
    expect(tasks).toEqual([expect.objectContaining({ elementId: 'u', state: 'cancelled' })]);
    const h = (await call('GET', `/v1/process-instances/${i.id}/history`)).body.items.map((x: { event: string; elementId: string }) => `${x.event}:${x.elementId}`);
    expect(h).toContain('element_started:escalated');
    expect(h).not.toContain('element_started:done');
  });

  it('a timer start event R2/PT0.4S starts exactly two instances', async () => {
    await eventually(async () => (await call('GET', '/v1/process-instances?processKey=ticker')).body.items.length >= 2, 10_000);
    await new Promise((r) => setTimeout(r, 1200));
    const all = (await call('GET', '/v1/process-instances?processKey=ticker')).body.items;
    expect(all).toHaveLength(2);
  });
});

describe('recovery', () => {
  it('everything completes when Redis loses every job mid-run (the sweep re-rings)', async () => {
    // Keep dropping every key of this file's queues while instances start and
    // their timers fire: doorbells vanish at every stage. (FLUSHALL would also
    // hit the other test files sharing this Redis.)
    const r = new Redis(REDIS_URL);
    let flushing = true;
    let flushes = 0;
    const flusher = (async () => {
      while (flushing) {
        const keys = await r.keys(`${iso.prefix}:*`);
        if (keys.length) {
          await r.del(...keys);
          flushes++;
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await call('POST', '/v1/process-instances', { processKey: 'timer-catch' })).body.id as string);
    await new Promise((res) => setTimeout(res, 500));
    flushing = false;
    await flusher;
    r.disconnect();
    expect(flushes).toBeGreaterThan(0);
    await eventually(async () => {
      const c = await baton.db.selectFrom('process_instance').select(({ fn }) => fn.countAll<number>().as('c')).where('id', 'in', ids).where('status', '=', 'completed').executeTakeFirstOrThrow();
      return Number(c.c) === 50;
    }, 20_000, 'all 50 instances completed after the flush');
  });
});

describe('messages', () => {
  it('correlates by name and key to the waiting instance only', async () => {
    const a = await start('await-payment', { orderId: 'A-1' });
    const b = await start('await-payment', { orderId: 'B-1' });
    expect(a.waits).toEqual([expect.objectContaining({ kind: 'message', name: 'order-paid', correlationKey: 'A-1' })]);
    const r = await call('POST', '/v1/messages', { name: 'order-paid', correlationKey: 'A-1', variables: { paidAmount: 10 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kind: 'correlated', instanceId: a.id });
    const done = await until(a.id, 'completed');
    expect(done.variables.paidAmount).toBe(10);
    expect((await instance(b.id)).status).toBe('waiting');
  });

  it('answers 404 when nothing waits and no TTL is given', async () => {
    const r = await call('POST', '/v1/messages', { name: 'order-paid', correlationKey: 'nobody' });
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('message_not_correlated');
  });

  it('buffers with a TTL and delivers to the first subscription opened later', async () => {
    const r = await call('POST', '/v1/messages', { name: 'order-paid', correlationKey: 'EARLY', variables: { early: true }, ttlSeconds: 60 });
    expect(r.status).toBe(202);
    expect(r.body.kind).toBe('buffered');
    const listed = (await call('GET', '/v1/messages?name=order-paid')).body.items;
    expect(listed.map((m: { correlationKey: string }) => m.correlationKey)).toContain('EARLY');
    const i = await start('await-payment', { orderId: 'EARLY' });
    const done = await until(i.id, 'completed');
    expect(done.variables.early).toBe(true);
    expect((await call('GET', '/v1/messages?name=order-paid')).body.items.map((m: { correlationKey: string }) => m.correlationKey)).not.toContain('EARLY');
  });

  it('deletes a buffered message', async () => {
    const r = await call('POST', '/v1/messages', { name: 'order-paid', correlationKey: 'DEL', ttlSeconds: 60 });
    expect((await call('DELETE', `/v1/messages/${r.body.id}`)).status).toBe(204);
    expect((await call('DELETE', `/v1/messages/${r.body.id}`)).status).toBe(404);
  });

  it('refuses a plain start of a process that only starts on a message', async () => {
    const r = await call('POST', '/v1/process-instances', { processKey: 'started-by-message' });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('no_none_start_event');
  });

  it('is idempotent by messageId', async () => {
    const first = await call('POST', '/v1/messages', { name: 'go-order', messageId: 'order-77', variables: { n: 77 } });
    expect(first.body.kind).toBe('started');
    const again = await call('POST', '/v1/messages', { name: 'go-order', messageId: 'order-77', variables: { n: 78 } });
    expect(again.body).toEqual(first.body);
    const started = (await call('GET', '/v1/process-instances?processKey=started-by-message&limit=500')).body.items;
    expect(started.filter((i: { id: string }) => i.id === first.body.instanceId)).toHaveLength(1);
    await until(first.body.instanceId, 'waiting');
    expect((await instance(first.body.instanceId)).variables.n).toBe(77);
  });

  it('concurrent publishers: each of 30 messages goes to exactly one of 30 waiting instances', async () => {
    const waiting = await Promise.all(Array.from({ length: 30 }, () => start('await-payment', { orderId: 'SAME' })));
    const results = await Promise.all(Array.from({ length: 30 }, (_, n) => call('POST', '/v1/messages', { name: 'order-paid', correlationKey: 'SAME', variables: { n } })));
    expect(results.map((r) => r.body.kind)).toEqual(Array(30).fill('correlated'));
    const targets = results.map((r) => r.body.instanceId);
    expect(new Set(targets).size).toBe(30);
    expect(new Set(targets)).toEqual(new Set(waiting.map((w) => w.id)));
  });

  it('publishers racing subscription creation: nothing is lost or doubled', async () => {
    for (let round = 0; round < 3; round++) {
      const key = `RACE-${round}`;
      const [instances, published] = await Promise.all([
        Promise.all(Array.from({ length: 15 }, () => call('POST', '/v1/process-instances', { processKey: 'await-payment', variables: { orderId: key } }))),
        Promise.all(Array.from({ length: 15 }, (_, n) => call('POST', '/v1/messages', { name: 'order-paid', correlationKey: key, variables: { n }, ttlSeconds: 60 }))),
      ]);
      const ids = instances.map((r) => r.body.id as string);
      await eventually(async () => {
        const r = await baton.db.selectFrom('process_instance').select(({ fn }) => fn.countAll<number>().as('c')).where('id', 'in', ids).where('status', '=', 'completed').executeTakeFirstOrThrow();
        return Number(r.c) === 15;
      }, 15_000, `round ${round}: all 15 instances completed`);
      const got = await Promise.all(ids.map(async (id) => (await instance(id)).variables.n as number));
      expect(new Set(got).size).toBe(15);
      expect(published.every((p) => ['correlated', 'buffered'].includes(p.body.kind))).toBe(true);
      const left = (await call('GET', '/v1/messages?name=order-paid&limit=500')).body.items.filter((m: { correlationKey: string }) => m.correlationKey === key);
      expect(left).toEqual([]);
    }
  });
});

describe('throw events between instances', () => {
  it('a message throw reaches the instance waiting with the same key; a signal throw reaches every catch', async () => {
    const waiter = await start('await-payment', { orderId: 'THROWN-1' });
    const listener = await start('await-order-alarm');
    const sender = await start('pays-order', { orderId: 'THROWN-1', amountPaid: 99 });
    expect(sender.status).toBe('completed');
    const got = await until(waiter.id, 'completed');
    expect(got.variables).toMatchObject({ orderId: 'THROWN-1' });
    await until(listener.id, 'completed');
  });
});

describe('signals', () => {
  it('broadcasts to every waiting catch and starts every signal start process', async () => {
    const a = await start('await-signal');
    const b = await start('await-signal');
    const r = await call('POST', '/v1/signals', { name: 'alarm', variables: { level: 3 } });
    expect(r.status).toBe(200);
    expect(r.body.delivered).toBeGreaterThanOrEqual(2);
    expect(r.body.started).toHaveLength(1);
    for (const i of [a, b]) expect((await until(i.id, 'completed')).variables.level).toBe(3);
    await until(r.body.started[0], 'completed');
  });
});

describe('a signal thrown by an instance', () => {
  it('reaches that same instance within the throwing step, once, even when the throw ends its last token', async () => {
    const i = await start('signals-itself');
    expect(i).toMatchObject({ status: 'waiting' });
    const task = (await call('GET', `/v1/tasks?processInstanceId=${i.id}&state=open`)).body.items[0];
    const done = await call('POST', `/v1/tasks/${task.id}/complete`, { variables: {}, waitMs: 5000 });
    // no doorbell, no sweep: the answer already shows the instance finished, its event subprocess run
    expect(done.body.instance).toMatchObject({ status: 'completed', variables: { heardItself: true } });
    const h = (await call('GET', `/v1/process-instances/${i.id}/history`)).body.items as { event: string; elementId: string }[];
    expect(h.filter((x) => x.event === 'element_completed' && x.elementId === 'note')).toHaveLength(1);
    expect(h.filter((x) => x.event === 'element_completed' && x.elementId === 'sig')).toHaveLength(1);
    // the runtime did not deliver it a second time through the inbox
    const inbox = await baton.db.selectFrom('inbox').select(({ fn }) => fn.countAll<number>().as('c')).where('instance_id', '=', i.id).where('kind', '=', 'signalReceived').executeTakeFirstOrThrow();
    expect(Number(inbox.c)).toBe(0);
  });
});

describe('call activity', () => {
  it('runs the child as its own instance and returns its variables to the parent', async () => {
    const parent = await start('calls-child', { amount: 21 });
    expect(parent).toMatchObject({ status: 'waiting', activeElements: ['call'] });
    const child = await eventually(async () => {
      const list = (await call('GET', '/v1/process-instances?processKey=review-child&limit=500&variables=amount')).body.items;
      return list.find((c: { parentInstanceId: string; status: string }) => c.parentInstanceId === parent.id && c.status === 'waiting');
    });
    expect(child.variables.amount).toBe(21);
    const task = (await call('GET', `/v1/tasks?processInstanceId=${child.id}&state=open`)).body.items[0];
    await call('POST', `/v1/tasks/${task.id}/complete`, { variables: { approvedByChild: true } });
    await until(child.id, 'completed');
    const done = await until(parent.id, 'completed');
    expect(done.variables).toMatchObject({ amount: 21, childResult: 42, approvedByChild: true });
  });

  it('cancelling the parent terminates the child', async () => {
    const parent = await start('calls-child', { amount: 1 });
    const child = await eventually(async () => {
      const list = (await call('GET', '/v1/process-instances?processKey=review-child&limit=500&variables=amount')).body.items;
      return list.find((c: { parentInstanceId: string; status: string }) => c.parentInstanceId === parent.id && c.status === 'waiting');
    });
    await call('POST', `/v1/process-instances/${parent.id}/cancel`, { waitMs: 10_000 });
    await until(child.id, 'terminated');
    const tasks = (await call('GET', `/v1/tasks?processInstanceId=${child.id}`)).body.items;
    expect(tasks[0].state).toBe('cancelled');
  });
});
