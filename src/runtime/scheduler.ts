/**
 * The scheduler's loops. In this issue: the sweep that re-rings doorbells for
 * inbox rows left pending too long (a lost Redis job, a worker killed between
 * dequeue and commit). Any number of schedulers may run: two of them ringing
 * for the same instance cost one extra no-op step, nothing more.
 */
import type { Logger } from 'pino';
import { STEP_QUEUE, type StepDoorbell, type Transport } from '../queue/index.js';
import type { Db } from '../store/db.js';
import { strandedInstances } from '../store/inbox.js';

export interface SchedulerDeps {
  db: Db;
  transport: Transport;
  logger: Logger;
  sweepAfterMs: number;
  sweepIntervalMs: number;
}

export interface Scheduler {
  /** one sweep now; returns how many instances were re-rung */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

export function startScheduler(deps: SchedulerDeps): Scheduler {
  const stepQueue = deps.transport.queue<StepDoorbell>(STEP_QUEUE);
  const log = deps.logger.child({ role: 'scheduler' });
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let current: Promise<unknown> = Promise.resolve();

  async function sweep(): Promise<number> {
    const ids = await strandedInstances(deps.db, deps.sweepAfterMs, 1000);
    if (ids.length > 0) {
      await stepQueue.addMany(ids.map((instanceId) => ({ instanceId })));
      log.info({ count: ids.length }, 're-rang stranded instances');
    }
    return ids.length;
  }

  const tick = () => {
    if (stopped) return;
    current = sweep()
      .catch((err: unknown) => log.error({ err }, 'sweep failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, deps.sweepIntervalMs);
      });
  };
  timer = setTimeout(tick, deps.sweepIntervalMs);

  let closing: Promise<void> | null = null;
  return {
    sweep,
    close() {
      closing ??= (async () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        await current;
      })();
      return closing;
    },
  };
}
