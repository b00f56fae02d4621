/** The distributed transport: BullMQ queues on Redis. */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Consumer, Transport, WorkQueue } from './types.js';

export interface BullTransportOptions {
  url: string;
  /** key prefix, so several deployments (or test files) share one Redis */
  prefix: string;
  onError?: (err: Error) => void;
}

export function createBullTransport(opts: BullTransportOptions): Transport {
  const onError = opts.onError ?? (() => {});
  // BullMQ workers block on Redis and must not give up on a command, hence
  // maxRetriesPerRequest: null. Queues share one connection; every worker gets
  // its own (BullMQ duplicates it for the blocking client).
  const connect = () => {
    const r = new Redis(opts.url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
    r.on('error', onError);
    return r;
  };
  const shared = connect();
  const queues = new Map<string, Queue>();
  const consumers = new Set<Worker>();
  // Pub/sub needs a connection of its own (a subscribed Redis connection can do
  // nothing else); made on first subscribe.
  let subscriber: Redis | null = null;
  const listeners = new Map<string, Set<(message: string) => void>>();
  const channelOf = (channel: string) => `${opts.prefix}:pubsub:${channel}`;
  let closed: Promise<void> | null = null;

  const queueFor = (name: string): Queue => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection: shared,
        prefix: opts.prefix,
        defaultJobOptions: {
          removeOnComplete: true,
          removeOnFail: { count: 1000 },
          attempts: 5,
          backoff: { type: 'exponential', delay: 100 },
        },
      });
      q.on('error', onError);
      queues.set(name, q);
    }
    return q;
  };

  return {
    kind: 'bullmq',
    queue<T>(name: string): WorkQueue<T> {
      const q = queueFor(name);
      return {
        async add(data: T, o?: { delayMs?: number }) {
          await q.add(name, data, o?.delayMs ? { delay: o.delayMs } : undefined);
        },
        async addMany(items: T[], o?: { dedupeKey?: (item: T) => string }) {
          if (items.length === 0) return;
          const key = o?.dedupeKey;
          // A custom jobId is ignored by BullMQ while a job with that id exists;
          // such jobs must not linger in the failed set, or the id would stay
          // taken and the next ring for it would be dropped.
          await q.addBulk(items.map((data) => ({ name, data, ...(key ? { opts: { jobId: key(data), removeOnFail: true } } : {}) })));
        },
      };
    },
    consume<T>(name: string, handler: (data: T) => Promise<void>, o: { concurrency: number }): Consumer {
      const w = new Worker(name, async (job) => handler(job.data as T), {
        connection: connect(),
        prefix: opts.prefix,
        concurrency: o.concurrency,
      });
      w.on('error', onError);
      consumers.add(w);
      let done: Promise<void> | null = null;
      return {
        close() {
          done ??= (async () => {
            consumers.delete(w);
            await w.close();
            await w.disconnect();
          })();
          return done;
        },
      };
    },
    async publish(channel: string, message: string) {
      await shared.publish(channelOf(channel), message);
    },
    async subscribe(channel: string, listener: (message: string) => void) {
      if (!subscriber) {
        subscriber = connect();
        subscriber.on('message', (ch: string, message: string) => {
          for (const l of listeners.get(ch) ?? []) l(message);
        });
      }
      const ch = channelOf(channel);
      let set = listeners.get(ch);
      if (!set) {
        set = new Set();
        listeners.set(ch, set);
        await subscriber.subscribe(ch);
      }
      set.add(listener);
      return async () => {
        set.delete(listener);
      };
    },
    async ping() {
      // The shared connection queues commands while Redis is away (it must, for
      // BullMQ), so a bare PING would hang; readiness wants a prompt no.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('redis did not answer PING within 1 s')), 1000);
      });
      try {
        const pong = await Promise.race([shared.ping(), timeout]);
        if (pong !== 'PONG') throw new Error(`redis answered ${pong}`);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      closed ??= (async () => {
        await Promise.allSettled([...consumers].map(async (w) => { await w.close(); await w.disconnect(); }));
        await Promise.allSettled([...queues.values()].map((q) => q.close()));
        subscriber?.disconnect();
        shared.disconnect();
      })();
      return closed;
    },
  };
}
