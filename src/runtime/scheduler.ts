/**
 * The scheduler's loops. Any number of schedulers may run at once; each loop
 * claims its work with FOR UPDATE SKIP LOCKED and commits the claim together
 * with its consequence, so no work is done twice and none is lost when a
 * scheduler dies mid-way.
 *
 * - timers: due timer rows → deleted + `timerFired` inbox rows, one transaction
 *   per batch. The loop sleeps until the next due time (bounded by
 *   `maxSleepMs`) and wakes early when a step announces a sooner timer.
 * - timer start events: due schedules → one new instance per occurrence, and
 *   the schedule advanced, in one transaction.
 * - sweep: instances with inbox rows pending longer than `sweepAfterMs` get
 *   their doorbell rung again (a lost Redis job, a worker killed mid-step).
 * - buffered messages past their TTL are marked expired.
 */
import type { Logger } from 'pino';
import type { TimerDefinition } from '../bpmn/types.js';
import { STEP_QUEUE, TIMER_CHANNEL, type StepDoorbell, type Transport } from '../queue/index.js';
import type { Db } from '../store/db.js';
import { definitionById } from '../store/definitions.js';
import { strandedInstances } from '../store/inbox.js';
import { advanceSchedule, claimDueSchedules, expireBufferedMessages, msUntilNextSchedule } from '../store/messages.js';
import { fireDueTimers, msUntilNextTimer } from '../store/waits.js';
import { spawnInstance } from './correlation.js';
import { nextOccurrence } from './schedules.js';

export interface SchedulerDeps {
  db: Db;
  transport: Transport;
  logger: Logger;
  sweepAfterMs: number;
  sweepIntervalMs: number;
  /** longest sleep of the timer loop when nothing is due sooner */
  maxSleepMs?: number;
  /** timers claimed per transaction */
  batchSize?: number;
}

export interface Scheduler {
  /** one sweep now; returns how many instances were re-rung */
  sweep(): Promise<number>;
  /** fire due timers and timer-start occurrences now; returns how many */
  fireDue(): Promise<number>;
  close(): Promise<void>;
}

export function startScheduler(deps: SchedulerDeps): Scheduler {
  const stepQueue = deps.transport.queue<StepDoorbell>(STEP_QUEUE);
  const log = deps.logger.child({ role: 'scheduler' });
  const maxSleepMs = deps.maxSleepMs ?? 1000;
  const batchSize = deps.batchSize ?? 500;
  let stopped = false;

  async function ring(ids: Iterable<string>): Promise<void> {
    const list = [...new Set(ids)];
    if (list.length === 0) return;
    await stepQueue.addMany(list.map((instanceId) => ({ instanceId }))).catch((err: unknown) => {
      log.warn({ err }, 'could not ring; the sweep will');
    });
  }

  async function sweep(): Promise<number> {
    const ids = await strandedInstances(deps.db, deps.sweepAfterMs, 1000);
    if (ids.length > 0) {
      // One outstanding sweep doorbell per instance, however many schedulers
      // sweep and however often: under a backlog the same rows stay "old", and
      // re-ringing them every sweep would only deepen the backlog.
      await stepQueue.addMany(ids.map((instanceId) => ({ instanceId })), { dedupeKey: (d) => `sweep-${d.instanceId}` }).catch((err: unknown) => {
        log.warn({ err }, 'could not ring stranded instances');
      });
      log.info({ count: ids.length }, 're-rang stranded instances');
    }
    await expireBufferedMessages(deps.db);
    return ids.length;
  }


  async function fireSchedules(): Promise<number> {
    const started = await deps.db.transaction().execute(async (trx) => {
      const rows = await claimDueSchedules(trx, 50);
      const ids: string[] = [];
      for (const s of rows) {
        const def = await definitionById(trx, s.definition_id);
        const due = s.next_due_at!;
        if (def) {
          const { instance } = await spawnInstance(trx, def, { variables: {}, businessKey: null, startEventId: s.element_id });
          ids.push(instance.id);
        }
        const next = nextOccurrence(s.spec as unknown as TimerDefinition, due, new Date(), s.remaining);
        await advanceSchedule(trx, s.id, next.due, next.remaining);
      }
      return ids;
    });
    await ring(started);
    return started.length;
  }

  async function fireDue(): Promise<number> {
    let n = 0;
    // Timer-start schedules are few: one look per round (more while a batch comes back full).
    for (;;) {
      const s = await fireSchedules();
      n += s;
      if (s < 50) break;
    }
    // Timers: while a batch comes back full, more are due right now. The
    // doorbells of a batch ring while the next batch is claimed (at most one
    // ring in flight): with 10,000 timers due in one second, waiting for each
    // ring before claiming the next batch made the last ones late.
    let ringing: Promise<void> = Promise.resolve();
    try {
      for (;;) {
        const instances = await fireDueTimers(deps.db, batchSize);
        await ringing;
        ringing = ring(instances);
        n += instances.length;
        if (instances.length < batchSize) break;
      }
    } finally {
      await ringing;
    }
    return n;
  }

  // ---- the timer loop: sleep until the next due time or a wake-up --------
  let wake: (() => void) | null = null;
  let wakeAt = Infinity;
  const unsubscribe = deps.transport.subscribe(TIMER_CHANNEL, (message) => {
    const due = Number(message);
    // Only a timer due before we planned to wake is worth waking for.
    if (Number.isFinite(due) && due < wakeAt) wake?.();
  });

  async function timerLoop(): Promise<void> {
    while (!stopped) {
      try {
        const fired = await fireDue();
        const [t, s] = await Promise.all([msUntilNextTimer(deps.db), msUntilNextSchedule(deps.db)]);
        let next = Math.min(t ?? Infinity, s ?? Infinity, maxSleepMs);
        if (next <= 0) {
          if (fired > 0) continue;
          // Due but not claimable: another scheduler holds it right now. Do not spin.
          next = 10;
        }
        await new Promise<void>((resolve) => {
          wakeAt = Date.now() + next;
          const timer = setTimeout(done, next);
          function done() {
            clearTimeout(timer);
            wake = null;
            wakeAt = Infinity;
            resolve();
          }
          wake = done;
        });
      } catch (err) {
        log.error({ err }, 'timer loop failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(1000, maxSleepMs)));
      }
    }
  }

  // ---- the sweep loop ----------------------------------------------------
  let sweepTimer: NodeJS.Timeout | null = null;
  let sweeping: Promise<unknown> = Promise.resolve();
  const tick = () => {
    if (stopped) return;
    sweeping = sweep()
      .catch((err: unknown) => log.error({ err }, 'sweep failed'))
      .finally(() => {
        if (!stopped) sweepTimer = setTimeout(tick, deps.sweepIntervalMs);
      });
  };
  sweepTimer = setTimeout(tick, deps.sweepIntervalMs);
  const timers = timerLoop();

  let closing: Promise<void> | null = null;
  return {
    sweep,
    fireDue,
    close() {
      closing ??= (async () => {
        stopped = true;
        if (sweepTimer) clearTimeout(sweepTimer);
        wake?.();
        await sweeping;
        await timers;
        await (await unsubscribe)();
      })();
      return closing;
    },
  };
}
