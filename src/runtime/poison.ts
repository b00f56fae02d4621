/**
 * Steps that fail for what their data is, not for a passing fault. A string
 * with a NUL character (Postgres cannot store it in jsonb), a value over a size
 * limit or a state too large to serialise fails the same way on every retry:
 * retried forever, it would block its instance and load the workers. The step
 * runner finds the one inbox event whose application fails and sets it aside
 * here, as an incident that carries the event, so nothing is lost: an operator
 * who fixed the cause retries the incident and the event is replayed.
 */
import type { Incident } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
import type { Db } from '../store/db.js';
import { appendHistory } from '../store/history.js';
import { getInboxEvent, markInboxProcessed } from '../store/inbox.js';
import { insertIncident } from '../store/incidents.js';
import { lockInstance, saveInstance } from '../store/instances.js';

const ENDED = new Set(['completed', 'terminated']);

/**
 * Postgres data exceptions (class 22: untranslatable character, invalid text,
 * numeric out of range, …) and program limits (class 54: too many columns,
 * statement too complex, a jsonb over its size limit), and a state too large
 * for JSON.stringify (RangeError). Connection loss, deadlocks, serialisation
 * failures and lock timeouts are passing faults, not poison.
 */
export function isPoison(err: unknown): boolean {
  if (err instanceof RangeError) return true;
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

export function describeDbError(err: unknown): string {
  if (err !== null && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    const message = typeof e.message === 'string' ? e.message : String(err);
    return typeof e.code === 'string' ? `${message} (SQLSTATE ${e.code})` : message;
  }
  return String(err);
}

/** Marks the event processed and opens an `event_rejected` incident carrying it, in one transaction. */
export async function rejectEvent(db: Db, instanceId: string, inboxId: number, reason: string, incidentId: string, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await lockInstance(trx, instanceId);
    if (!row) throw new Error(`instance ${instanceId} is locked by another step; the event is left for it`);
    const ev = await getInboxEvent(trx, inboxId);
    if (!ev || ev.processed_at !== null) return;
    await markInboxProcessed(trx, [inboxId]);
    const details: JsonObject = { replay: true, inboxId, kind: ev.kind, payload: ev.payload };
    const incident: Incident = {
      id: incidentId,
      code: 'event_rejected',
      message: `the ${ev.kind} event could not be applied: ${reason}`,
      elementId: row.process_key,
      tokenId: null,
      attempts: 1,
      details,
      createdAt: now.toISOString(),
    };
    const ended = ENDED.has(row.status);
    const state = { ...row.state, incidents: [...row.state.incidents, incident], ...(ended ? {} : { status: 'error' as const }) };
    await saveInstance(trx, instanceId, row.rev, { state, status: row.suspended && !ended ? 'suspended' : state.status, ended, suspended: row.suspended });
    await insertIncident(trx, instanceId, row.process_key, incident);
    await appendHistory(trx, instanceId, [
      { at: now.toISOString(), event: 'incident', elementId: row.process_key, elementType: 'process', tokenId: null, scopeId: null, data: { incidentId, code: incident.code, message: incident.message } },
    ]);
  });
}
