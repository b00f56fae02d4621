/**
 * Queues carry doorbells, not data: a job says "instance X has work" or
 * "service jobs are waiting". Losing one costs latency (the scheduler's sweep
 * re-rings), never correctness; running one twice costs a no-op.
 */
export interface WorkQueue<T> {
  add(data: T, opts?: { delayMs?: number }): Promise<void>;
  /**
   * `dedupeKey`: while a doorbell with the same key is still queued or running,
   * adding another is a no-op. For re-rings (the sweep) that may repeat every
   * few hundred ms: without it, a backlog makes the sweep re-ring the same
   * instances again and again, and the duplicates grow the backlog.
   */
  addMany(items: T[], opts?: { dedupeKey?: (item: T) => string }): Promise<void>;
}

export interface Consumer {
  close(): Promise<void>;
}

export interface Transport {
  readonly kind: 'bullmq' | 'memory';
  queue<T>(name: string): WorkQueue<T>;
  /** The handler may throw: the job is retried a few times with backoff, then dropped (the sweep recovers). */
  consume<T>(name: string, handler: (data: T, meta: JobMeta) => Promise<void>, opts: { concurrency: number }): Consumer;
  /**
   * Fire-and-forget notifications between processes (Redis pub/sub, or an
   * in-process emitter). Used only to cut latency — e.g. to wake the scheduler
   * when a step arms a timer due sooner than its next poll — never for
   * anything that must not be lost.
   */
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>;
  /** resolves when the broker answers; rejects otherwise */
  ping(): Promise<void>;
  /** closes every queue and consumer; safe to call twice */
  close(): Promise<void>;
}

export const STEP_QUEUE = 'step';
export const SERVICE_QUEUE = 'service';
/** pub/sub channel: a timer was armed; the message is its due time in epoch ms */
export const TIMER_CHANNEL = 'timers';

export interface StepDoorbell {
  instanceId: string;
  /**
   * Rung by the scheduler's sweep for events pending too long: the step that
   * should have applied them may have crashed, so the step counts attempts
   * (see StepRunner.run `suspect`).
   */
  swept?: true;
}

/** What a consumer learns about a job besides its data. */
export interface JobMeta {
  /** the job ran before and did not finish (its worker died or lost it, or it failed): a retry */
  redelivered: boolean;
}
export interface ServiceDoorbell {
  topic: string;
}
