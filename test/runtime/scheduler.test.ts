/**
 * The scheduler's timer loop against the real Postgres and Redis, with a
 * scheduler that would otherwise sleep a minute: a deploy must wake it for a
 * timer start due sooner, and timers fired in several batches must each get
 * their doorbell although the claims no longer wait for the rings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { uuidv7 } from '../../src/ids.js';
import { STEP_QUEUE, type StepDoorbell } from '../../src/queue/index.js';
import { startScheduler, type Scheduler } from '../../src/runtime/scheduler.js';
import { defs } from '../support/api.js';
import { eventually, isolation, silentLogger, startDistributed } from '../support/env.js';

const iso = isolation('scheduler');
let baton: Baton;
let scheduler: Scheduler;

beforeAll(async () => {
  baton = await startDistributed(iso, []);
  scheduler = startScheduler({
    db: baton.db,
    transport: baton.transport,
    logger: silentLogger(),
    sweepAfterMs: 600_000,
    sweepIntervalMs: 600_000,
    maxSleepMs: 60_000,
    batchSize: 100,
  });
  // let the loop make its first round and fall asleep
  await new Promise((r) => setTimeout(r, 300));
});

afterAll(async () => {
  await scheduler.close();
  await baton.close();
  await iso.drop();
});

describe('scheduler', () => {
  it('a deploy wakes a sleeping scheduler for a timer start due sooner than its next look', async () => {
    const at = new Date(Date.now() + 500).toISOString();
    const model = defs(
      'soon',
      `<bpmn:startEvent id="at"><bpmn:timerEventDefinition><bpmn:timeDate>${at}</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:startEvent>
       <bpmn:sequenceFlow id="f1" sourceRef="at" targetRef="e"/><bpmn:endEvent id="e"/>`,
    );
    await baton.commands.deploy([{ name: 'soon.bpmn', content: model }]);
    // Without the wake-up the scheduler would look again in a minute.
    await eventually(
      async () => (await baton.db.selectFrom('process_instance').select('id').where('process_key', '=', 'soon').execute()).length === 1,
      15_000,
      'the timer start to start its instance',
    );
  });

  it('rings a doorbell for every timer of several batches due at once, and fires each once', async () => {
    const rung = new Map<string, number>();
    const consumer = baton.transport.consume<StepDoorbell>(
      STEP_QUEUE,
      async ({ instanceId }) => {
        rung.set(instanceId, (rung.get(instanceId) ?? 0) + 1);
      },
      { concurrency: 50 },
    );
    try {
      const instances = Array.from({ length: 1050 }, () => uuidv7());
      await baton.db
        .insertInto('timer')
        .values(instances.map((instance_id) => ({ id: uuidv7(), instance_id, element_id: 'wait', token_id: null, due_at: new Date(Date.now() - 1000), spec: '{}' })))
        .execute();
      // 11 batches of at most 100; the loop may be firing some of them meanwhile
      await scheduler.fireDue();
      await eventually(async () => instances.every((id) => rung.has(id)), 20_000, 'a doorbell for every fired timer');
      const fired = await baton.db.selectFrom('inbox').select('instance_id').where('kind', '=', 'timerFired').where('instance_id', 'in', instances).execute();
      expect(fired).toHaveLength(instances.length);
      expect(new Set(fired.map((f) => f.instance_id)).size).toBe(instances.length);
      expect(await baton.db.selectFrom('timer').select('id').where('instance_id', 'in', instances).execute()).toEqual([]);
    } finally {
      await consumer.close();
    }
  });
});
