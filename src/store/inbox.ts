/** The inbox: every accepted input, per instance, in arrival order. */
import { sql } from 'kysely';
import type { JsonObject } from '../errors.js';
import type { Executor } from './db.js';
import type { InboxRow } from './schema.js';

export async function insertInboxEvent(db: Executor, instanceId: string, kind: string, payload: JsonObject): Promise<number> {
  const row = await db
    .insertInto('inbox')
    .values({ instance_id: instanceId, kind, payload: JSON.stringify(payload) })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function markInboxProcessed(db: Executor, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('inbox').set({ processed_at: sql`now()` }).where('id', 'in', ids).where('processed_at', 'is', null).execute();
}


/**
 * Instances that have had a pending inbox row for longer than `olderThanMs`:
 * their doorbell was lost (Redis restart, crashed worker) or is very late.
 */
export async function strandedInstances(db: Executor, olderThanMs: number, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('inbox')
    .select('instance_id')
    .distinct()
    .where('processed_at', 'is', null)
    .where('created_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`)
    .limit(limit)
    .execute();
  return rows.map((r) => r.instance_id);
}

/**
 * Counts one more attempt for the instance's oldest pending inbox row, in a
 * statement of its own; answers its id and count (nothing pending: undefined).
 */
export async function countFirstAttempt(db: Executor, instanceId: string): Promise<{ id: number; attempts: number } | undefined> {
  const r = await sql<{ id: number; attempts: number }>`
    update inbox set attempts = attempts + 1
    where id = (select id from inbox where instance_id = ${instanceId} and processed_at is null order by id limit 1)
    returning id, attempts`.execute(db);
  return r.rows[0];
}

/**
 * Counts one more attempt to apply an inbox row, in a statement of its own
 * (it commits even if the step after it never does); answers the count.
 */
export async function countAttempt(db: Executor, id: number): Promise<number> {
  const r = await sql<{ attempts: number }>`update inbox set attempts = attempts + 1 where id = ${id} returning attempts`.execute(db);
  return r.rows[0]?.attempts ?? 0;
}

/** Takes back a counted attempt that turned out not to be one (the step did not apply the event, or failed cleanly). */
export async function uncountAttempt(db: Executor, id: number): Promise<void> {
  await sql`update inbox set attempts = greatest(attempts - 1, 0) where id = ${id} and processed_at is null`.execute(db);
}

export async function pendingInboxIds(db: Executor, instanceId: string): Promise<number[]> {
  const rows = await db.selectFrom('inbox').select('id').where('instance_id', '=', instanceId).where('processed_at', 'is', null).execute();
  return rows.map((r) => r.id);
}

export async function getInboxEvent(db: Executor, id: number): Promise<InboxRow | undefined> {
  return db.selectFrom('inbox').selectAll().where('id', '=', id).executeTakeFirst();
}
