/**
 * History: append-only; written by steps (one `history_batch` row per step),
 * read only by the API through the `history` view (migration 0005).
 */
import { sql } from 'kysely';
import type { HistoryEntry } from '../engine/types.js';
import type { Json, JsonObject } from '../errors.js';
import type { Executor } from './db.js';
import type { HistoryRow } from './schema.js';

/** Entry ids are batch id × 2^20 + position (see the migration). */
export const BATCH_SPAN = 1_048_576;

/** A step's entries as the JSON array a batch row stores (the view's column names; absent data stays absent). */
export function historyEntriesJson(entries: HistoryEntry[]): string {
  return JSON.stringify(historyEntryRows(entries));
}

/** The stored form of history entries (one batch row's `entries`). */
export function historyEntryRows(entries: HistoryEntry[]): Json[] {
  return entries.map((e) => {
    const row: JsonObject = { at: e.at, event: e.event };
    if (e.elementId !== null) row['element_id'] = e.elementId;
    if (e.elementType !== null) row['element_type'] = e.elementType;
    if (e.tokenId !== null) row['token_id'] = e.tokenId;
    if (e.scopeId !== null) row['scope_id'] = e.scopeId;
    if (e.data !== undefined) row['data'] = e.data;
    return row;
  });
}

export async function appendHistory(db: Executor, instanceId: string, entries: HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return;
  if (entries.length > BATCH_SPAN) throw new RangeError(`a step wrote ${entries.length} history entries; at most ${BATCH_SPAN} fit in one batch`);
  await sql`insert into history_batch (instance_id, entries) values (${instanceId}, ${historyEntriesJson(entries)}::jsonb)`.execute(db);
}

/**
 * A page of an instance's history in order. Batches are read through their
 * index from the cursor's batch on and unnested lazily, so a page costs what
 * it returns, not the instance's whole history.
 */
export async function listHistory(db: Executor, instanceId: string, afterId: number | undefined, limit: number): Promise<HistoryRow[]> {
  const after = afterId ?? -1;
  const fromBatch = Math.max(0, Math.floor(after / BATCH_SPAN));
  const r = await sql<HistoryRow>`
    select b.id * ${BATCH_SPAN}::bigint + (e.n - 1) as id, b.instance_id,
           (e.x->>'at')::timestamptz as at, e.x->>'event' as event, e.x->>'element_id' as element_id,
           e.x->>'element_type' as element_type, e.x->>'token_id' as token_id, e.x->>'scope_id' as scope_id,
           e.x->'data' as data
    from history_batch b cross join lateral jsonb_array_elements(b.entries) with ordinality as e(x, n)
    where b.instance_id = ${instanceId} and b.id >= ${fromBatch}
      and b.id * ${BATCH_SPAN}::bigint + (e.n - 1) > ${after}
    order by b.id, e.n
    limit ${limit}`.execute(db);
  return r.rows;
}
