/** The distributed transport: BullMQ queues on Redis. */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Consumer, JobMeta, Transport, WorkQueue } from './types.js';

export interface BullTransportOptions {
  url: string;
  /** key prefix, so several deployments (or test files) share one Redis */
  prefix: string;
  onError?: (err: Error) => void;
  /** how long adding a doorbell (or publishing) may wait for Redis before it is given up; default 2000 ms */
  sendTimeoutMs?: number;
  /**
   * A consumer's lock on a job it runs (renewed while it runs): after a
   * worker died, its jobs go back to the queue within about this long
   * (BullMQ's stalled-job check runs at the same interval). Default 30,000 ms.
   */
  jobLockMs?: number;
}

/**
 * Producers must not wait for Redis. The connections queue commands while
 * Redis is away (they must: BullMQ's blocking workers rely on it), so an
 * unbounded `add` would hold an API request — whose input is already committed
 * to Postgres — for as long as Redis is down, and a client that times out
 * would retry a request that had in fact succeeded. A doorbell that cannot be
 * rung promptly is given up (the caller logs it and the scheduler's sweep
 * rings instead); if the queued command still runs once Redis is back, the
 * extra doorbell is harmless.
 */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis did not take the ${what} within ${ms} ms`)), ms);
  });
  // Nobody waits for a late failure any more; keep it from being unhandled.
  p.catch(() => {});
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function createBullTransport(opts: BullTransportOptions): Transport {
  const onError = opts.onError ?? (() => {});
  const sendTimeoutMs = opts.sendTimeoutMs ?? 2000;
  // BullMQ workers block on Redis and must not give up on a command, hence
  // maxRetriesPerRequest: null. Queues share one connection; every worker gets
  // its own (BullMQ duplicates it for the blocking client).
  const connect = () => {
    const r = new Redis(opts.url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
    r.on('error', onError);
    return r;
  };
  const shared = connect();
  // Once the connection has been up, a lost one fails sends at once (see
  // `bounded`); before that (start-up) they wait for it, at most sendTimeoutMs.
  let wasReady = false;
  shared.once('ready', () => (wasReady = true));
  const send = <R>(what: string, op: () => Promise<R>): Promise<R> => {
    if (wasReady && shared.status !== 'ready') return Promise.reject(new Error(`redis is not connected (${shared.status}); ${what} not sent`));
    return bounded(op(), sendTimeoutMs, what);
  };
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
          await send(`${name} doorbell`, () => q.add(name, data, o?.delayMs ? { delay: o.delayMs } : undefined));
        },
        async addMany(items: T[], o?: { dedupeKey?: (item: T) => string }) {
          if (items.length === 0) return;
          const key = o?.dedupeKey;
          // A custom jobId is ignored by BullMQ while a job with that id exists;
          // such jobs must not linger in the failed set, or the id would stay
          // taken and the next ring for it would be dropped.
          await send(`${name} doorbells`, () =>
            q.addBulk(items.map((data) => ({ name, data, ...(key ? { opts: { jobId: key(data), removeOnFail: true } } : {}) }))),
          );
        },
      };
    },
    consume<T>(name: string, handler: (data: T, meta: JobMeta) => Promise<void>, o: { concurrency: number }): Consumer {
      // a job that ran before: it failed (attemptsMade), or its worker died and the stalled-job check put it back (stalledCounter)
      const w = new Worker(name, async (job) => handler(job.data as T, { redelivered: job.attemptsMade > 0 || (job.stalledCounter ?? 0) > 0 || (job.attemptsStarted ?? 0) > 1 }), {
        connection: connect(),
        prefix: opts.prefix,
        concurrency: o.concurrency,
        ...(opts.jobLockMs !== undefined ? { lockDuration: opts.jobLockMs, stalledInterval: opts.jobLockMs } : {}),
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
      await send(`${channel} notification`, () => shared.publish(channelOf(channel), message));
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
