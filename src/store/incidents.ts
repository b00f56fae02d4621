/** Incidents: a token stopped by a problem in the model or the data. */
import { sql } from 'kysely';
import type { Incident } from '../engine/types.js';
import type { Executor } from './db.js';
import type { IncidentRow } from './schema.js';

export async function insertIncident(db: Executor, instanceId: string, processKey: string, i: Incident): Promise<void> {
  await db
    .insertInto('incident')
    .values({
      id: i.id,
      instance_id: instanceId,
      process_key: processKey,
      element_id: i.elementId,
      token_id: i.tokenId,
      code: i.code,
      message: i.message,
      line: i.line ?? null,
      column: i.column ?? null,
      attempts: i.attempts ?? 1,
      details: i.details !== undefined ? JSON.stringify(i.details) : null,
      created_at: i.createdAt,
    })
    .execute();
}

export interface IncidentFilter {
  processInstanceId?: string;
  open?: boolean;
  afterId?: string;
  limit: number;
}

export async function listIncidents(db: Executor, f: IncidentFilter): Promise<IncidentRow[]> {
  let q = db.selectFrom('incident').selectAll();
  if (f.processInstanceId !== undefined) q = q.where('instance_id', '=', f.processInstanceId);
  if (f.open === true) q = q.where('resolved_at', 'is', null);
  if (f.open === false) q = q.where('resolved_at', 'is not', null);
  if (f.afterId !== undefined) q = q.where('id', '>', f.afterId);
  return q.orderBy('id').limit(f.limit).execute();
}

/** Closed: retried by an operator, its token gone (cancelled, terminated), or the instance reset. */
export async function resolveIncident(db: Executor, id: string, resolution: string): Promise<void> {
  await db
    .updateTable('incident')
    .set({ resolved_at: sql`now()`, resolution })
    .where('id', '=', id)
    .where('resolved_at', 'is', null)
    .execute();
}

export async function getIncident(db: Executor, id: string): Promise<IncidentRow | undefined> {
  return db.selectFrom('incident').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Claims the retry of an open incident: the conditional update is the arbiter
 * between operators retrying the same incident at once; exactly one sees the
 * row change and queues the retry. The step that applies it sets resolved_at.
 */
export async function claimIncidentRetry(db: Executor, id: string): Promise<IncidentRow | undefined> {
  return db
    .updateTable('incident')
    .set({ resolution: 'retrying' })
    .where('id', '=', id)
    .where('resolved_at', 'is', null)
    .where('resolution', 'is', null)
    .returningAll()
    .executeTakeFirst();
}
