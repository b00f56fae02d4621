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

/** The token the incident stopped is gone (cancelled, terminated): the incident is closed with it. */
export async function resolveIncident(db: Executor, id: string): Promise<void> {
  await db.updateTable('incident').set({ resolved_at: sql`now()` }).where('id', '=', id).where('resolved_at', 'is', null).execute();
}
