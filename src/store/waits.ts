/** Timers and subscriptions: an instance's waits on the outside world. */
import { sql } from 'kysely';
import type { JsonObject } from '../errors.js';
import type { SubscriptionSpec, TimerSpec } from '../engine/types.js';
import type { Executor } from './db.js';
import type { SubscriptionRow } from './schema.js';

export async function insertTimers(db: Executor, instanceId: string, timers: TimerSpec[]): Promise<void> {
  for (let i = 0; i < timers.length; i += 1000) {
    await db
      .insertInto('timer')
      .values(
        timers.slice(i, i + 1000).map((t) => ({
          id: t.id,
          instance_id: instanceId,
          element_id: t.elementId,
          token_id: t.tokenId,
          due_at: t.dueAt,
          spec: JSON.stringify(t as unknown as JsonObject),
        })),
      )
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }
}

export async function deleteTimer(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('timer').where('id', '=', id).execute();
}

/**
 * Fires due timers: deletes up to `limit` of them and writes their
 * `timerFired` inbox rows, in ONE statement, skipping rows another scheduler
 * holds. The delete and the inbox rows commit together or not at all, so a
 * timer fires exactly once whatever the number of schedulers. Returns the
 * instances to ring.
 */
export async function fireDueTimers(db: Executor, limit: number): Promise<string[]> {
  const rows = await sql<{ instance_id: string }>`
    with due as (
      select id from timer
       where due_at <= now()
       order by due_at
       limit ${limit}
       for update skip locked
    ), fired as (
      delete from timer t using due where t.id = due.id
      returning t.id, t.instance_id
    )
    insert into inbox (instance_id, kind, payload)
    select instance_id, 'timerFired', jsonb_build_object('timerId', id) from fired
    returning instance_id`.execute(db);
  return rows.rows.map((r) => r.instance_id);
}

/** Milliseconds until the earliest timer is due (0 if overdue), or null if there is none. */
export async function msUntilNextTimer(db: Executor): Promise<number | null> {
  const row = await db
    .selectFrom('timer')
    // No greatest(0, …) here: greatest ignores NULL, and "no timer at all" would read as "due now".
    .select(sql<number | null>`extract(epoch from (min(due_at) - now())) * 1000`.as('ms'))
    .executeTakeFirst();
  if (row?.ms == null) return null;
  return Math.max(0, Number(row.ms));
}

export async function insertSubscription(db: Executor, instanceId: string, s: SubscriptionSpec): Promise<void> {
  await db
    .insertInto('subscription')
    .values({
      id: s.id,
      instance_id: instanceId,
      kind: s.kind,
      name: s.name,
      correlation_key: s.correlationKey,
      element_id: s.elementId,
      token_id: s.tokenId,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

export async function deleteSubscription(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('subscription').where('id', '=', id).execute();
}

/**
 * The oldest message subscription for name + key, locked and removed: a
 * message is delivered to exactly one waiting subscription. SKIP LOCKED lets a
 * concurrent publisher move on to the next subscription instead of waiting.
 */
export async function takeMessageSubscription(db: Executor, name: string, correlationKey: string | null): Promise<SubscriptionRow | undefined> {
  const first = db
    .selectFrom('subscription')
    .select('id')
    .where('kind', '=', 'message')
    .where('name', '=', name)
    .where(sql<boolean>`correlation_key is not distinct from ${correlationKey}`)
    .orderBy('created_at')
    .limit(1)
    .forUpdate()
    .skipLocked();
  return db.deleteFrom('subscription').where('id', 'in', first).returningAll().executeTakeFirst();
}

export async function signalSubscriptions(db: Executor, name: string): Promise<SubscriptionRow[]> {
  return db.selectFrom('subscription').selectAll().where('kind', '=', 'signal').where('name', '=', name).orderBy('created_at').execute();
}

/** An ended instance waits for nothing: drop whatever the engine did not close itself. */
export async function deleteInstanceWaits(db: Executor, instanceId: string): Promise<void> {
  // one statement, not two: every instance that ends pays this round trip
  await sql`
    with t as (delete from timer where instance_id = ${instanceId})
    delete from subscription where instance_id = ${instanceId}`.execute(db);
}
