/**
 * At deploy: the message, signal and timer start events of a new version
 * replace those of the previous version of the same key (only the latest
 * version starts on events, as in Camunda). Timer starts become schedules;
 * the earliest first occurrence is returned, for the schedulers' wake-up.
 */
import type { ProcessGraph } from '../bpmn/types.js';
import type { JsonObject } from '../errors.js';
import { uuidv7 } from '../ids.js';
import type { Executor } from '../store/db.js';
import { deleteStartEventsOfKey, insertStartEvents, insertTimerSchedule } from '../store/messages.js';
import { firstOccurrence } from './schedules.js';

export async function registerStartEvents(trx: Executor, definitionId: string, processKey: string, graph: ProcessGraph, now = new Date()): Promise<Date | null> {
  await deleteStartEventsOfKey(trx, processKey);
  const root = graph.scopes[graph.rootScopeId];
  if (!root) return null;
  let earliest: Date | null = null;
  const rows: Parameters<typeof insertStartEvents>[1] = [];
  for (const id of root.startEventIds) {
    const el = graph.elements[id];
    if (!el || el.type !== 'startEvent' || !el.eventDefinition) continue;
    const d = el.eventDefinition;
    if (d.kind === 'message') rows.push({ definitionId, processKey, elementId: id, kind: 'message', name: d.messageName, spec: null });
    else if (d.kind === 'signal') rows.push({ definitionId, processKey, elementId: id, kind: 'signal', name: d.signalName, spec: null });
    else if (d.kind === 'timer') {
      const spec = { kind: d.timer.kind, expression: d.timer.expression } as JsonObject;
      rows.push({ definitionId, processKey, elementId: id, kind: 'timer', name: null, spec });
      const first = firstOccurrence(d.timer, now);
      await insertTimerSchedule(trx, {
        id: uuidv7(),
        definitionId,
        processKey,
        elementId: id,
        nextDueAt: first.due,
        remaining: first.remaining,
        spec,
      });
      if (first.due && (earliest === null || first.due < earliest)) earliest = first.due;
    }
  }
  await insertStartEvents(trx, rows);
  return earliest;
}
