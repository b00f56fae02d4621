/** Published messages (buffer and idempotency log) and registered start events. */
import { sql } from 'kysely';
import type { JsonObject } from '../errors.js';
import type { Executor } from './db.js';
import type { MessageRow, StartEventRow, TimerScheduleRow } from './schema.js';

/**
 * Serialises everything that matches messages of one name + correlation key:
 * publishers, subscription openers and the buffer sweep. Without it, a
 * publisher that finds no subscription and a step that opens one concurrently
 * would each miss the other's uncommitted row, leaving a buffered message next
 * to a waiting subscription. Transaction-scoped, so it cannot leak.
 */
export async function lockCorrelation(db: Executor, name: string, correlationKey: string | null): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${JSON.stringify(['baton.msg', name, correlationKey])}, 0))`.execute(db);
}

export async function messageByMessageId(db: Executor, messageId: string): Promise<MessageRow | undefined> {
  return db.selectFrom('message').selectAll().where('message_id', '=', messageId).executeTakeFirst();
}

export async function insertMessage(
  db: Executor,
  row: { id: string; messageId: string | null; name: string; correlationKey: string | null; variables: JsonObject; outcome: JsonObject | null; expiresAt: Date | null },
): Promise<void> {
  await db
    .insertInto('message')
    .values({
      id: row.id,
      message_id: row.messageId,
      name: row.name,
      correlation_key: row.correlationKey,
      variables: JSON.stringify(row.variables),
      outcome: row.outcome === null ? null : JSON.stringify(row.outcome),
      expires_at: row.expiresAt,
    })
    .execute();
}

/** The oldest unexpired buffered message for name + key, locked, marked delivered with `outcome`. */
export async function takeBufferedMessage(db: Executor, name: string, correlationKey: string | null, outcome: JsonObject): Promise<MessageRow | undefined> {
  const first = db
    .selectFrom('message')
    .select('id')
    .where('outcome', 'is', null)
    .where('name', '=', name)
    .where(sql<boolean>`correlation_key is not distinct from ${correlationKey}`)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .orderBy('created_at')
    .limit(1)
    .forUpdate()
    .skipLocked();
  return db.updateTable('message').set({ outcome: JSON.stringify(outcome) }).where('id', 'in', first).returningAll().executeTakeFirst();
}

export async function listBufferedMessages(db: Executor, name: string | undefined, limit: number): Promise<MessageRow[]> {
  let q = db
    .selectFrom('message')
    .selectAll()
    .where('outcome', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]));
  if (name !== undefined) q = q.where('name', '=', name);
  return q.orderBy('created_at').limit(limit).execute();
}

export async function deleteBufferedMessage(db: Executor, id: string): Promise<boolean> {
  const res = await db.deleteFrom('message').where('id', '=', id).where('outcome', 'is', null).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

/** Expired buffered messages without an idempotency key are garbage; those with one stay as the record of their outcome. */
export async function expireBufferedMessages(db: Executor): Promise<number> {
  const res = await db
    .updateTable('message')
    .set({ outcome: JSON.stringify({ kind: 'expired' }) })
    .where('outcome', 'is', null)
    .where('expires_at', '<=', sql<Date>`now()`)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

// ---- start events --------------------------------------------------------

export async function insertStartEvents(
  db: Executor,
  rows: Array<{ definitionId: string; processKey: string; elementId: string; kind: string; name: string | null; spec: JsonObject | null }>,
): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('start_event')
    .values(
      rows.map((r) => ({
        definition_id: r.definitionId,
        process_key: r.processKey,
        element_id: r.elementId,
        kind: r.kind,
        name: r.name,
        spec: r.spec === null ? null : JSON.stringify(r.spec),
      })),
    )
    .execute();
}

/** Only the latest version of a process starts on events; older versions' rows go when a new one is deployed. */
export async function deleteStartEventsOfKey(db: Executor, processKey: string): Promise<void> {
  await db.deleteFrom('start_event').where('process_key', '=', processKey).execute();
  await db.deleteFrom('timer_schedule').where('process_key', '=', processKey).execute();
}

export async function startEventsByName(db: Executor, kind: 'message' | 'signal', name: string): Promise<StartEventRow[]> {
  return db.selectFrom('start_event').selectAll().where('kind', '=', kind).where('name', '=', name).orderBy('process_key').execute();
}

export async function insertTimerSchedule(
  db: Executor,
  row: { id: string; definitionId: string; processKey: string; elementId: string; nextDueAt: Date | null; remaining: number | null; spec: JsonObject },
): Promise<void> {
  await db
    .insertInto('timer_schedule')
    .values({
      id: row.id,
      definition_id: row.definitionId,
      process_key: row.processKey,
      element_id: row.elementId,
      next_due_at: row.nextDueAt,
      remaining: row.remaining,
      spec: JSON.stringify(row.spec),
    })
    .execute();
}

/** Due timer-start schedules, locked so that one scheduler handles each occurrence. */
export async function claimDueSchedules(db: Executor, limit: number): Promise<TimerScheduleRow[]> {
  return db
    .selectFrom('timer_schedule')
    .selectAll()
    .where('active', '=', true)
    .where('next_due_at', '<=', sql<Date>`now()`)
    .orderBy('next_due_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
}

export async function advanceSchedule(db: Executor, id: string, nextDueAt: Date | null, remaining: number | null): Promise<void> {
  await db.updateTable('timer_schedule').set({ next_due_at: nextDueAt, remaining, active: nextDueAt !== null }).where('id', '=', id).execute();
}

export async function msUntilNextSchedule(db: Executor): Promise<number | null> {
  const row = await db
    .selectFrom('timer_schedule')
    // No greatest(0, …) here: greatest ignores NULL, and "no timer at all" would read as "due now".
    .select(sql<number | null>`extract(epoch from (min(next_due_at) - now())) * 1000`.as('ms'))
    .where('active', '=', true)
    .executeTakeFirst();
  if (row?.ms == null) return null;
  return Math.max(0, Number(row.ms));
}

/** At deploy: the message correlation paths of a new version replace those of the key's previous version. */
export async function replaceMessageCorrelations(db: Executor, processKey: string, rows: Array<{ messageName: string; paths: readonly string[] }>): Promise<void> {
  await db.deleteFrom('message_correlation').where('process_key', '=', processKey).execute();
  if (rows.length === 0) return;
  await db
    .insertInto('message_correlation')
    .values(rows.map((r) => ({ process_key: processKey, message_name: r.messageName, paths: JSON.stringify(r.paths) })))
    .execute();
}

/** The registered correlation paths of a message name, one list per process key, in process-key order. */
export async function messageCorrelationPaths(db: Executor, messageName: string): Promise<string[][]> {
  const rows = await db.selectFrom('message_correlation').select('paths').where('message_name', '=', messageName).orderBy('process_key').execute();
  return rows.map((r) => r.paths);
}
