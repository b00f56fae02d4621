/** Service jobs: work for built-in connectors and external workers. */
import { sql } from 'kysely';
import type { ServiceJobSpec } from '../engine/types.js';
import type { Executor } from './db.js';
import type { ServiceJobRow } from './schema.js';

/** One statement per chunk: a multi-instance fan-out creates thousands of jobs in one step. */
export async function insertServiceJobs(db: Executor, instanceId: string, processKey: string, jobs: ServiceJobSpec[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += 1000) {
    await db
      .insertInto('service_job')
      .values(
        jobs.slice(i, i + 1000).map((j) => ({
          id: j.id,
          instance_id: instanceId,
          process_key: processKey,
          element_id: j.elementId,
          token_id: j.tokenId,
          topic: j.topic,
          input: JSON.stringify(j.input),
          headers: JSON.stringify(j.headers),
          result_variable: j.resultVariable,
          state: 'available',
          retries: j.retries,
          retry_backoff_ms: j.retryBackoffMs ?? null,
        })),
      )
      .execute();
  }
}

/** Returns whether the job was still open (available or locked) and is now cancelled. */
export async function cancelServiceJob(db: Executor, id: string): Promise<boolean> {
  const r = await db
    .updateTable('service_job')
    .set({ state: 'cancelled', ended_at: sql`now()`, lock_expires_at: null })
    .where('id', '=', id)
    .where('state', 'in', ['available', 'locked'])
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * Claims up to `max` jobs of the given topics for one worker: available ones
 * whose backoff has passed, and locked ones whose lock expired (their worker
 * died or gave up). FOR UPDATE SKIP LOCKED lets any number of workers claim
 * concurrently without waiting on each other or claiming a job twice.
 */
export async function claimServiceJobs(
  db: Executor,
  opts: { workerId: string; topics: string[]; max: number; lockMs: number },
): Promise<ServiceJobRow[]> {
  if (opts.topics.length === 0 || opts.max <= 0) return [];
  const candidates = db
    .selectFrom('service_job')
    .select('id')
    .where('topic', 'in', opts.topics)
    .where((eb) =>
      eb.or([
        eb.and([eb('state', '=', 'available'), eb('available_at', '<=', sql<Date>`now()`)]),
        eb.and([eb('state', '=', 'locked'), eb('lock_expires_at', '<', sql<Date>`now()`)]),
      ]),
    )
    .orderBy('available_at')
    .limit(opts.max)
    .forUpdate()
    .skipLocked();
  return db
    .updateTable('service_job')
    .set({
      state: 'locked',
      attempts: sql`attempts + 1`,
      worker_id: opts.workerId,
      lock_expires_at: sql`now() + make_interval(secs => ${opts.lockMs / 1000})`,
    })
    .where('id', 'in', candidates)
    .returningAll()
    .execute();
}

export async function getServiceJob(db: Executor, id: string): Promise<ServiceJobRow | undefined> {
  return db.selectFrom('service_job').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Ends a locked job (completed, or handed to the engine as failed/BPMN error).
 * Only the worker that holds the lock may do it; a worker whose lock expired and
 * was taken over by another gets undefined.
 */
export async function finishLockedJob(
  db: Executor,
  id: string,
  workerId: string | null,
  state: 'completed' | 'failed' | 'bpmn_error',
  errorMessage: string | null = null,
): Promise<ServiceJobRow | undefined> {
  let q = db
    .updateTable('service_job')
    .set({ state, ended_at: sql`now()`, lock_expires_at: null, error_message: errorMessage })
    .where('id', '=', id)
    .where('state', '=', 'locked');
  if (workerId !== null) q = q.where('worker_id', '=', workerId);
  return q.returningAll().executeTakeFirst();
}

/** A failure with retries left: the job becomes available again after the backoff. */
export async function retryLockedJob(
  db: Executor,
  id: string,
  workerId: string | null,
  retries: number,
  backoffMs: number,
  errorMessage: string,
): Promise<ServiceJobRow | undefined> {
  let q = db
    .updateTable('service_job')
    .set({
      state: 'available',
      retries,
      worker_id: null,
      lock_expires_at: null,
      error_message: errorMessage,
      available_at: sql`now() + make_interval(secs => ${backoffMs / 1000})`,
    })
    .where('id', '=', id)
    .where('state', '=', 'locked');
  if (workerId !== null) q = q.where('worker_id', '=', workerId);
  return q.returningAll().executeTakeFirst();
}

/** Extends a worker's lock on a job it is still running; false when the job is no longer its own. */
export async function extendJobLock(db: Executor, id: string, workerId: string, lockMs: number): Promise<boolean> {
  const r = await db
    .updateTable('service_job')
    .set({ lock_expires_at: sql`now() + make_interval(secs => ${lockMs / 1000})` })
    .where('id', '=', id)
    .where('state', '=', 'locked')
    .where('worker_id', '=', workerId)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}
