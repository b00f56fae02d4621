/**
 * The embedded transport: an in-process queue with the same contract as the
 * BullMQ one. Doorbells that are still waiting and equal (same JSON) are
 * merged: the one that runs will see all the work.
 *
 * A consumer never runs from inside a push: a push only schedules a wake-up
 * (setImmediate, at most one pending per consumer), and every finished job
 * schedules the next take the same way. The API, timers, signal handlers and
 * shutdown share this process and its event loop; PGlite answers a step's
 * queries without ever leaving the microtask queue, so a step that rings
 * another step (a call activity calling its own process) would otherwise
 * start it in the same microtask chain, and the chain would never end: the
 * loop would never turn, not for /health, not for SIGTERM (issue 13). Going
 * through setImmediate lets one turn of the loop (timers, I/O) pass between
 * one round of jobs and the next, whatever the queue holds.
 */
import { EventEmitter } from 'node:events';
import type { Consumer, JobMeta, Transport, WorkQueue } from './types.js';

interface Item {
  data: unknown;
  key: string;
  attempts: number;
}

const MAX_ATTEMPTS = 5;

class MemoryQueue {
  readonly waiting: Item[] = [];
  readonly waitingKeys = new Set<string>();
  readonly timers = new Set<NodeJS.Timeout>();
  /** consumers' wake-ups: each only schedules its pump (see above), never runs it */
  readonly handlers: Array<() => void> = [];

  push(item: Item): void {
    if (this.waitingKeys.has(item.key)) return;
    this.waitingKeys.add(item.key);
    this.waiting.push(item);
    for (const wake of this.handlers) wake();
  }

  later(item: Item, delayMs: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.push(item);
    }, delayMs);
    this.timers.add(t);
  }

  take(): Item | undefined {
    const item = this.waiting.shift();
    if (item) this.waitingKeys.delete(item.key);
    return item;
  }
}

export function createMemoryTransport(opts: { onError?: (err: Error) => void } = {}): Transport {
  const onError = opts.onError ?? (() => {});
  const queues = new Map<string, MemoryQueue>();
  const consumers = new Set<Consumer>();
  let closing = false;
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const get = (name: string) => {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = new MemoryQueue()));
    return q;
  };

  return {
    kind: 'memory',
    queue<T>(name: string): WorkQueue<T> {
      const q = get(name);
      const item = (data: T): Item => ({ data, key: JSON.stringify(data), attempts: 0 });
      return {
        async add(data: T, o?: { delayMs?: number }) {
          if (closing) return;
          if (o?.delayMs) q.later(item(data), o.delayMs);
          else q.push(item(data));
        },
        async addMany(items: T[]) {
          // Equal waiting doorbells are always merged here (see above).
          if (closing) return;
          for (const d of items) q.push(item(d));
        },
      };
    },
    consume<T>(name: string, handler: (data: T, meta: JobMeta) => Promise<void>, o: { concurrency: number }): Consumer {
      const q = get(name);
      let running = 0;
      let stopped = false;
      const inflight = new Set<Promise<void>>();
      // One pending wake-up at most: a burst of pushes costs one pump, which takes what it can.
      let scheduled: NodeJS.Immediate | null = null;
      const wake = () => {
        if (scheduled || stopped) return;
        scheduled = setImmediate(() => {
          scheduled = null;
          pump();
        });
      };
      /** Starts jobs up to the concurrency; runs only from a wake-up, i.e. in its own turn of the event loop. */
      const pump = () => {
        while (!stopped && running < o.concurrency) {
          const it = q.take();
          if (!it) return;
          running++;
          const p = handler(it.data as T, { redelivered: it.attempts > 0 })
            .catch((err: unknown) => {
              onError(err instanceof Error ? err : new Error(String(err)));
              it.attempts++;
              if (it.attempts < MAX_ATTEMPTS && !stopped) q.later(it, 100 * 2 ** it.attempts);
            })
            .finally(() => {
              running--;
              inflight.delete(p);
              // The next job starts in a later turn of the event loop, never
              // in this job's microtask chain (see the top of this file).
              wake();
            });
          inflight.add(p);
        }
      };
      q.handlers.push(wake);
      wake();
      let done: Promise<void> | null = null;
      const consumer: Consumer = {
        close() {
          done ??= (async () => {
            stopped = true;
            if (scheduled) clearImmediate(scheduled);
            scheduled = null;
            const i = q.handlers.indexOf(wake);
            if (i >= 0) q.handlers.splice(i, 1);
            consumers.delete(consumer);
            await Promise.allSettled([...inflight]);
          })();
          return done;
        },
      };
      consumers.add(consumer);
      return consumer;
    },
    async publish(channel: string, message: string) {
      if (!closing) bus.emit(channel, message);
    },
    async subscribe(channel: string, listener: (message: string) => void) {
      bus.on(channel, listener);
      return async () => {
        bus.off(channel, listener);
      };
    },
    async ping() {},
    async close() {
      closing = true;
      bus.removeAllListeners();
      for (const q of queues.values()) {
        for (const t of q.timers) clearTimeout(t);
        q.timers.clear();
      }
      await Promise.allSettled([...consumers].map((c) => c.close()));
    },
  };
}
