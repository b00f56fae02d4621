/** Process instances: the live state row, one writer at a time. */
import { sql } from 'kysely';
import type { InstanceState } from '../engine/types.js';
import type { Executor } from './db.js';
import type { ProcessInstanceRow } from './schema.js';

export async function insertInstance(
  db: Executor,
  row: {
    id: string;
    definition_id: string;
    process_key: string;
    version: number;
    business_key: string | null;
    state: InstanceState;
    parent_instance_id?: string | null;
  },
): Promise<ProcessInstanceRow> {
  return db
    .insertInto('process_instance')
    .values({
      id: row.id,
      definition_id: row.definition_id,
      process_key: row.process_key,
      version: row.version,
      business_key: row.business_key,
      status: 'running',
      state: JSON.stringify(row.state),
      parent_instance_id: row.parent_instance_id ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Locks one instance row for a step. SKIP LOCKED, not a blocking wait: if another
 * worker holds the row it is already draining this instance's inbox, and the
 * caller re-rings the doorbell a little later instead of parking a connection
 * behind the lock. One row per transaction means no lock cycles, so no deadlocks.
 */
export async function lockInstance(db: Executor, id: string): Promise<ProcessInstanceRow | undefined> {
  return db.selectFrom('process_instance').selectAll().where('id', '=', id).forUpdate().skipLocked().executeTakeFirst();
}

export async function instanceExists(db: Executor, id: string): Promise<boolean> {
  const row = await db.selectFrom('process_instance').select('id').where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

export async function saveInstance(
  db: Executor,
  id: string,
  rev: number,
  patch: { state: InstanceState; status: string; ended: boolean; suspended?: boolean },
): Promise<void> {
  // `rev` is belt and braces: the row lock already guarantees a single writer,
  // the revision check makes a violation of that rule fail loudly.
  const res = await db
    .updateTable('process_instance')
    .set({
      state: JSON.stringify(patch.state),
      status: patch.status,
      rev: rev + 1,
      updated_at: sql`now()`,
      ...(patch.ended ? { ended_at: sql`coalesce(ended_at, now())` } : {}),
      ...(patch.suspended !== undefined ? { suspended: patch.suspended } : {}),
    })
    .where('id', '=', id)
    .where('rev', '=', rev)
    .executeTakeFirst();
  if (res.numUpdatedRows !== 1n) throw new Error(`instance ${id}: concurrent write detected at rev ${rev}`);
}

export async function getInstance(db: Executor, id: string): Promise<ProcessInstanceRow | undefined> {
  return db.selectFrom('process_instance').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function getInstances(db: Executor, ids: string[]): Promise<ProcessInstanceRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('process_instance').selectAll().where('id', 'in', ids).execute();
}

export interface InstanceFilter {
  processKey?: string;
  status?: string;
  businessKey?: string;
  /** exclusive: rows with id greater than this */
  afterId?: string;
  limit: number;
}

export async function listInstances(db: Executor, f: InstanceFilter): Promise<ProcessInstanceRow[]> {
  let q = db.selectFrom('process_instance').selectAll();
  if (f.processKey !== undefined) q = q.where('process_key', '=', f.processKey);
  if (f.status !== undefined) q = q.where('status', '=', f.status);
  if (f.businessKey !== undefined) q = q.where('business_key', '=', f.businessKey);
  if (f.afterId !== undefined) q = q.where('id', '>', f.afterId);
  return q.orderBy('id').limit(f.limit).execute();
}
