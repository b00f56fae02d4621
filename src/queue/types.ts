/**
 * Queues carry doorbells, not data: a job says "instance X has work" or
 * "service jobs are waiting". Losing one costs latency (the scheduler's sweep
 * re-rings), never correctness; running one twice costs a no-op.
 */
export interface WorkQueue<T> {
  add(data: T, opts?: { delayMs?: number }): Promise<void>;
  addMany(items: T[]): Promise<void>;
}

export interface Consumer {
  close(): Promise<void>;
}

export interface Transport {
  readonly kind: 'bullmq' | 'memory';
  queue<T>(name: string): WorkQueue<T>;
  /** The handler may throw: the job is retried a few times with backoff, then dropped (the sweep recovers). */
  consume<T>(name: string, handler: (data: T) => Promise<void>, opts: { concurrency: number }): Consumer;
  /** resolves when the broker answers; rejects otherwise */
  ping(): Promise<void>;
  /** closes every queue and consumer; safe to call twice */
  close(): Promise<void>;
}

export const STEP_QUEUE = 'step';
export const SERVICE_QUEUE = 'service';

export interface StepDoorbell {
  instanceId: string;
}
export interface ServiceDoorbell {
  topic: string;
}
