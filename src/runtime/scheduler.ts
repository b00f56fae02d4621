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
import { expireRequestIds } from '../store/instances.js';
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
  /** idempotency keys of starts older than this are forgotten (Config.idempotencyTtlMs); default 24 h */
  idempotencyTtlMs?: number;
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
      await stepQueue.addMany(ids.map((instanceId) => ({ instanceId, swept: true as const })), { dedupeKey: (d) => `sweep-${d.instanceId}` }).catch((err: unknown) => {
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

  // Timer-start schedules are few and rarely due: they are looked at when the
  // earliest one is due, and at least every maxSleepMs (a deploy on another
  // process wakes the loop through TIMER_CHANNEL, which also forces a look).
  let schedulesDueAt = 0;
  async function fireSchedulesIfDue(): Promise<number> {
    if (Date.now() < schedulesDueAt) return 0;
    let n = 0;
    for (;;) {
      const s = await fireSchedules();
      n += s;
      if (s < 50) break;
    }
    const ms = await msUntilNextSchedule(deps.db);
    schedulesDueAt = Date.now() + Math.min(ms ?? Infinity, maxSleepMs);
    return n;
  }

  // The claim does not wait for the doorbells: with 10,000 timers due in one
  // second, ringing a batch (BullMQ: ~0.1 ms of work per job) took longer
  // than claiming the next, and a claim that waited for the previous ring
  // made the later timers late. Rings go out one after another, in order;
  // only with more than maxPendingRings batches still to ring does the claim
  // wait (Redis slow: the ids wait in memory, bounded). A send to a lost Redis
  // fails at once or after the transport's send timeout, and the sweep rings
  // for those instances later: the fired inbox rows are already committed.
  const maxPendingRings = 20;
  const rings: Promise<void>[] = [];
  async function fireTimerBatch(): Promise<number> {
    const instances = await fireDueTimers(deps.db, batchSize);
    if (instances.length === 0) return 0;
    const ringing = (rings.at(-1) ?? Promise.resolve()).then(() => ring(instances));
    rings.push(ringing);
    // ring() never rejects and the chain settles in order, so the oldest is the one done
    void ringing.then(() => rings.shift());
    while (rings.length > maxPendingRings) await rings[0];
    return instances.length;
  }
  /** settles when every batch fired so far has been rung for */
  const allRung = () => rings.at(-1) ?? Promise.resolve();

  /** One round: due schedules, then due timers while batches come back full. */
  async function fireRound(): Promise<number> {
    let n = await fireSchedulesIfDue();
    for (;;) {
      const fired = await fireTimerBatch();
      n += fired;
      if (fired < batchSize) return n;
    }
  }

  async function fireDue(): Promise<number> {
    schedulesDueAt = 0;
    try {
      return await fireRound();
    } finally {
      await allRung();
    }
  }

  // ---- the timer loop: sleep until the next due time or a wake-up --------
  let wake: (() => void) | null = null;
  let wakeAt = Infinity;
  const unsubscribe = deps.transport.subscribe(TIMER_CHANNEL, (message) => {
    const due = Number(message);
    if (!Number.isFinite(due)) return;
    // A timer-start schedule due sooner than we planned to look (a deploy).
    if (due < schedulesDueAt) schedulesDueAt = due;
    // Only a timer due before we planned to wake is worth waking for.
    if (due < wakeAt) wake?.();
  });

  async function timerLoop(): Promise<void> {
    while (!stopped) {
      try {
        // While timers keep coming, claim again at once: the next-due query
        // is only worth its round trip when the last round found nothing.
        if ((await fireRound()) > 0) continue;
        const t = await msUntilNextTimer(deps.db);
        let next = Math.min(t ?? Infinity, schedulesDueAt - Date.now(), maxSleepMs);
        // Due but not claimable: another scheduler holds it right now. Do not spin.
        if (next <= 0) next = 10;
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
    await allRung();
  }

  // ---- the sweep loop ----------------------------------------------------
  let sweepTimer: NodeJS.Timeout | null = null;
  let sweeping: Promise<unknown> = Promise.resolve();
  // Old idempotency keys go in rounds of a thousand, at most once a minute:
  // any scheduler may do it, the update is idempotent.
  let keysExpiredAt = 0;
  const expireKeys = async () => {
    if (Date.now() - keysExpiredAt < 60_000) return;
    keysExpiredAt = Date.now();
    const n = await expireRequestIds(deps.db, deps.idempotencyTtlMs ?? 24 * 3_600_000, 1000);
    if (n > 0) log.info({ count: n }, 'forgot expired idempotency keys');
  };
  const tick = () => {
    if (stopped) return;
    sweeping = sweep()
      .then(expireKeys)
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
