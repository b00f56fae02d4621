/**
 * Runs service jobs whose topic has a built-in connector (http, …). Jobs of
 * other topics wait for external workers (fetch-and-lock over the API).
 *
 * Claiming is a conditional UPDATE … FOR UPDATE SKIP LOCKED with a lock
 * expiry: any number of service workers may run, none waits on another, and a
 * job held by a worker that died is claimed again once its lock expires. The
 * HTTP call is therefore at-least-once; it carries the job id as its
 * idempotency key.
 */
import type { Logger } from 'pino';
import type { Connector, ConnectorOutcome } from '../connectors/index.js';
import type { JsonObject } from '../errors.js';
import { uuidv7 } from '../ids.js';
import { SERVICE_QUEUE, STEP_QUEUE, type Consumer, type ServiceDoorbell, type StepDoorbell, type Transport } from '../queue/index.js';
import { isConnectionError, type Db } from '../store/db.js';
import { claimServiceJobs, extendJobLock, finishJobWithEvent, retryLockedJob } from '../store/jobs.js';
import type { ServiceJobRow } from '../store/schema.js';
import { describeDbError, isPoison } from './poison.js';

export interface ServiceWorkerDeps {
  db: Db;
  transport: Transport;
  logger: Logger;
  connectors: Map<string, Connector>;
  concurrency: number;
  workerId?: string;
  /** how long a claimed job stays ours without renewal; renewed while its call runs */
  lockMs?: number;
  /** how often to look for work when no doorbell rings */
  pollMs?: number;
  /**
   * base delay before retrying a retryable failure: doubled per try
   * (base, 2×base, 4×base, … up to maxRetryBackoffMs), unless the model
   * fixes the delay (camunda:failedJobRetryTimeCycle)
   */
  retryBackoffMs?: number;
  maxRetryBackoffMs?: number;
}

export interface ServiceWorker {
  close(): Promise<void>;
}

export function startServiceWorker(deps: ServiceWorkerDeps): ServiceWorker {
  const workerId = deps.workerId ?? `service-worker-${uuidv7()}`;
  const lockMs = deps.lockMs ?? 60_000;
  const pollMs = deps.pollMs ?? 500;
  const backoff = deps.retryBackoffMs ?? 1000;
  const maxBackoff = deps.maxRetryBackoffMs ?? 10 * 60_000;
  const topics = [...deps.connectors.keys()];
  const stepQueue = deps.transport.queue<StepDoorbell>(STEP_QUEUE);
  const log = deps.logger.child({ workerId });
  const abort = new AbortController();
  const running = new Set<Promise<void>>();
  let wake: (() => void) | null = null;
  let stopped = false;

  const doorbell: Consumer = deps.transport.consume<ServiceDoorbell>(
    SERVICE_QUEUE,
    async () => {
      wake?.();
    },
    { concurrency: 1 },
  );

  async function report(job: ServiceJobRow, reported: ConnectorOutcome): Promise<void> {
    if (reported.kind === 'deferred') {
      // not attempted: back to the queue, its retries untouched
      await retryLockedJob(deps.db, job.id, workerId, job.retries, reported.delayMs, reported.message);
      log.debug({ jobId: job.id, delayMs: reported.delayMs }, reported.message);
      return;
    }
    // error texts may echo a remote body; Postgres text cannot hold NUL
    const outcome: ConnectorOutcome = reported.kind === 'completed' ? reported : { ...reported, message: reported.message.replaceAll('\u0000', '\uFFFD') };
    const jlog = log.child({ jobId: job.id, instanceId: job.instance_id, elementId: job.element_id });
    // A technical failure (retryable: network, 5xx, timeout) is tried again
    // while tries are left; a non-retryable one (4xx, no connector) and the
    // last try become an incident. A BPMN error is never retried: it is an
    // answer, for the model's boundary event.
    if (outcome.kind === 'failed' && outcome.retryable && job.retries - 1 > 0) {
      const retries = job.retries - 1;
      const delay = retryDelayMs(job, backoff, maxBackoff);
      await retryLockedJob(deps.db, job.id, workerId, retries, delay, outcome.message);
      jlog.info({ retries, delayMs: delay, message: outcome.message }, 'service job failed; will retry');
      return;
    }
    const [state, kind, payload, message]: [
      'completed' | 'failed' | 'bpmn_error',
      string,
      JsonObject,
      string | null,
    ] =
      outcome.kind === 'completed'
        ? ['completed', 'serviceJobCompleted', { jobId: job.id, variables: resultVariables(job, outcome.variables) }, null]
        : outcome.kind === 'bpmnError'
          ? ['bpmn_error', 'serviceJobBpmnError', { jobId: job.id, errorCode: outcome.errorCode, message: outcome.message }, outcome.message]
          : ['failed', 'serviceJobFailed', { jobId: job.id, message: outcome.message, attempts: job.attempts }, outcome.message];
    let finished: boolean;
    // Our lock expired and someone else took the job, or it was cancelled:
    // their outcome (or the cancel) wins, ours is dropped (finish → false).
    const finish = async () =>
      (await finishJobWithEvent(deps.db, { id: job.id, workerId, state, errorMessage: message, kind, payload })) !== undefined;
    try {
      // The call has been made: while Postgres is briefly away (a restart), try
      // to record its outcome a few times rather than drop it and make the call
      // again once the lock expires (still correct, at-least-once, but avoidable).
      for (let attempt = 1; ; attempt++) {
        try {
          finished = await finish();
          break;
        } catch (err) {
          if (!isConnectionError(err) || attempt >= 6 || stopped) throw err;
          await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
        }
      }
    } catch (err) {
      // A result Postgres refuses (a NUL character in a string, …) would fail
      // the same way on every try: it becomes the job's failure, not a retry loop.
      if (!isPoison(err) || outcome.kind === 'failed') throw err;
      jlog.warn({ err }, 'the connector result cannot be stored; failing the job');
      await report(job, { kind: 'failed', message: `the result cannot be stored: ${describeDbError(err)}`, retryable: false });
      return;
    }
    if (!finished) {
      jlog.warn('service job changed hands before we reported; result dropped');
      return;
    }
    await stepQueue.add({ instanceId: job.instance_id }).catch((err: unknown) => jlog.warn({ err }, 'doorbell failed; the sweep will ring'));
  }

  async function runJob(job: ServiceJobRow): Promise<void> {
    // The call is aborted when the worker stops, and when the lock cannot be
    // renewed: the job was cancelled with its instance, or another worker took
    // it over; its result could no longer be reported, and a slow call would
    // hold the slot for nothing (security review B2).
    const jobAbort = new AbortController();
    const onStop = () => jobAbort.abort();
    abort.signal.addEventListener('abort', onStop, { once: true });
    // Keep the lock while the call runs (a call may take longer than the lock):
    // renewed at a third of its length, so only a dead worker's jobs expire.
    const renew = setInterval(() => {
      extendJobLock(deps.db, job.id, workerId, lockMs)
        .then((held) => {
          if (!held && !jobAbort.signal.aborted) {
            log.info({ jobId: job.id }, 'service job lock lost (cancelled or taken over); aborting the call');
            jobAbort.abort();
          }
        })
        .catch((err: unknown) => log.warn({ err, jobId: job.id }, 'could not extend a job lock'));
    }, Math.max(250, lockMs / 3));
    try {
      await runLocked(job, jobAbort.signal);
    } finally {
      clearInterval(renew);
      abort.signal.removeEventListener('abort', onStop);
    }
  }

  async function runLocked(job: ServiceJobRow, signal: AbortSignal): Promise<void> {
    const connector = deps.connectors.get(job.topic);
    let outcome: ConnectorOutcome;
    if (!connector) {
      outcome = { kind: 'failed', message: `no connector for topic ${job.topic}`, retryable: false };
    } else {
      try {
        outcome = await connector.run({
          jobId: job.id,
          topic: job.topic,
          input: job.input,
          headers: job.headers,
          signal,
        });
      } catch (err) {
        // Connectors promise not to throw; if one does, it is a failed attempt, not a dead worker.
        outcome = { kind: 'failed', message: err instanceof Error ? err.message : String(err), retryable: true };
      }
    }
    if (stopped && (outcome.kind === 'failed' || outcome.kind === 'deferred')) return; // aborted by shutdown: the lock expires and another worker retries
    await report(job, outcome);
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      const free = deps.concurrency - running.size;
      let claimed: ServiceJobRow[] = [];
      if (free > 0 && topics.length > 0) {
        try {
          claimed = await claimServiceJobs(deps.db, { workerId, topics, max: free, lockMs });
        } catch (err) {
          log.error({ err }, 'claiming service jobs failed');
        }
      }
      for (const job of claimed) {
        const p = runJob(job)
          .catch((err: unknown) => log.error({ err, jobId: job.id }, 'service job bookkeeping failed; its lock will expire'))
          .finally(() => {
            running.delete(p);
            wake?.();
          });
        running.add(p);
      }
      if (stopped) break;
      // Full claim and room left: look again at once. Otherwise sleep until a
      // doorbell, a finished job, or the poll interval.
      if (claimed.length > 0 && claimed.length === free) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(t);
          wake = null;
          resolve();
        };
      });
    }
  }

  const looping = loop();
  let closing: Promise<void> | null = null;
  return {
    close() {
      closing ??= (async () => {
        stopped = true;
        wake?.();
        await doorbell.close();
        await looping;
        // Let in-flight calls finish (graceful); a hard kill is also safe.
        const grace = new Promise((r) => setTimeout(r, 5000));
        await Promise.race([Promise.allSettled([...running]), grace]);
        abort.abort();
        await Promise.allSettled([...running]);
      })();
      return closing;
    },
  };
}

/** The model's fixed delay, else base × 2^(tries − 1), capped. `attempts` counts this try (claims increment it). */
export function retryDelayMs(job: Pick<ServiceJobRow, 'attempts' | 'retry_backoff_ms'>, base: number, max: number): number {
  if (job.retry_backoff_ms !== null) return job.retry_backoff_ms;
  return Math.min(max, base * 2 ** Math.max(0, Math.min(30, job.attempts - 1)));
}

/**
 * A connector answers `{ response: {...} }`. When the model names a result
 * variable, the response itself goes there (the engine stores the variables
 * object under that name); otherwise the variables merge as they are.
 */
function resultVariables(job: ServiceJobRow, variables: JsonObject): JsonObject {
  if (job.result_variable && variables.response && typeof variables.response === 'object' && !Array.isArray(variables.response)) {
    return variables.response;
  }
  return variables;
}
