/** History: append-only; written by steps, read only by the API. */
import type { HistoryEntry } from '../engine/types.js';
import type { Executor } from './db.js';
import type { HistoryRow } from './schema.js';

// Postgres takes at most 65,535 bind parameters per statement; a step that
// fans out a 10,000-item multi-instance writes tens of thousands of entries.
const CHUNK = 2000;

export async function appendHistory(db: Executor, instanceId: string, entries: HistoryEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += CHUNK) await appendChunk(db, instanceId, entries.slice(i, i + CHUNK));
}

async function appendChunk(db: Executor, instanceId: string, entries: HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await db
    .insertInto('history')
    .values(
      entries.map((e) => ({
        instance_id: instanceId,
        at: e.at,
        event: e.event,
        element_id: e.elementId,
        element_type: e.elementType,
        token_id: e.tokenId,
        scope_id: e.scopeId,
        data: e.data === undefined ? null : JSON.stringify(e.data),
      })),
    )
    .execute();
}

export async function listHistory(db: Executor, instanceId: string, afterId: number | undefined, limit: number): Promise<HistoryRow[]> {
  let q = db.selectFrom('history').selectAll().where('instance_id', '=', instanceId);
  if (afterId !== undefined) q = q.where('id', '>', afterId);
  return q.orderBy('id').limit(limit).execute();
}
