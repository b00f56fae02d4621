/** Service jobs: work for built-in connectors and external workers. */
import { sql } from 'kysely';
import type { ServiceJobSpec } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
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
  // Two candidate lists, each read through its own partial index in its own
  // order (available jobs oldest first; locks that expired, oldest expiry
  // first), rather than one OR over both states, which Postgres can only
  // answer by scanning every job of the topic and sorting. At most `max` of
  // either are locked (SKIP LOCKED: rows another worker is claiming are
  // passed over, never waited for); expired locks go first, then the oldest
  // available jobs. One statement: atomic without a transaction around it.
  const r = await sql<ServiceJobRow>`
    with expired as (
      select id, lock_expires_at as since from service_job
       where state = 'locked' and lock_expires_at < now() and topic = any(${opts.topics}::text[])
       order by lock_expires_at
       limit ${opts.max}
       for update skip locked
    ),
    available as (
      select id, available_at as since from service_job
       where state = 'available' and available_at <= now() and topic = any(${opts.topics}::text[])
       order by available_at
       limit ${opts.max}
       for update skip locked
    ),
    chosen as (
      select id from (select id, 0 as rank, since from expired union all select id, 1 as rank, since from available) c
       order by rank, since
       limit ${opts.max}
    )
    update service_job j
       set state = 'locked', attempts = attempts + 1, worker_id = ${opts.workerId},
           lock_expires_at = now() + make_interval(secs => ${opts.lockMs / 1000})
      from chosen
     where j.id = chosen.id
    returning j.*`.execute(db);
  return r.rows;
}

export async function getServiceJob(db: Executor, id: string): Promise<ServiceJobRow | undefined> {
  return db.selectFrom('service_job').selectAll().where('id', '=', id).executeTakeFirst();
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

/**
 * Ends a locked job and writes its outcome to the instance's inbox, in one
 * statement (atomic without a transaction of its own). Only the holder of the
 * lock may (any holder when workerId is null). Returns the instance and the
 * inbox row, or undefined when the job was not locked (by that worker).
 */
export async function finishJobWithEvent(
  db: Executor,
  f: {
    id: string;
    workerId: string | null;
    state: 'completed' | 'failed' | 'bpmn_error';
    errorMessage: string | null;
    kind: string;
    payload: JsonObject;
  },
): Promise<{ instanceId: string; inboxId: number } | undefined> {
  const r = await sql<{ instance_id: string; inbox_id: number }>`
    with j as (
      update service_job
         set state = ${f.state}, ended_at = now(), lock_expires_at = null, error_message = ${f.errorMessage}
       where id = ${f.id} and state = 'locked' and (${f.workerId}::text is null or worker_id = ${f.workerId}::text)
      returning instance_id
    ),
    e as (
      insert into inbox (instance_id, kind, payload)
      select j.instance_id, ${f.kind}, ${JSON.stringify(f.payload)}::jsonb from j
      returning id, instance_id
    )
    select instance_id, id as inbox_id from e`.execute(db);
  const row = r.rows[0];
  return row ? { instanceId: row.instance_id, inboxId: Number(row.inbox_id) } : undefined;
}
