/**
 * Inbox rows → engine events. The rows are written by our own code (API,
 * workers, scheduler, other instances' steps), but they are stored data: a row
 * that does not have the shape its kind needs is reported as unusable, never
 * passed to the engine half-formed.
 */
import type { EngineEvent } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
import type { InboxRow } from '../store/schema.js';

const obj = (v: unknown): JsonObject | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function toEngineEvent(ev: InboxRow): EngineEvent | null {
  const p = obj(ev.payload) ?? {};
  const variables = obj(p.variables);
  const withVars = variables ? { variables } : {};
  switch (ev.kind) {
    case 'start': {
      const parent = obj(p.parent);
      return {
        type: 'start',
        ...withVars,
        ...(str(p.startEventId) ? { startEventId: str(p.startEventId)! } : {}),
        ...(parent && str(parent.instanceId) && str(parent.tokenId)
          ? {
              parent: {
                instanceId: str(parent.instanceId)!,
                tokenId: str(parent.tokenId)!,
                ...(str(parent.childId) ? { childId: str(parent.childId)! } : {}),
                ...(Number.isSafeInteger(parent.depth) && (parent.depth as number) >= 1 ? { depth: parent.depth as number } : {}),
              },
            }
          : {}),
      };
    }
    case 'humanTaskCompleted':
      return str(p.taskId) ? { type: 'humanTaskCompleted', taskId: str(p.taskId)!, ...withVars } : null;
    case 'serviceJobCompleted':
      return str(p.jobId) ? { type: 'serviceJobCompleted', jobId: str(p.jobId)!, ...withVars } : null;
    case 'serviceJobFailed':
      return str(p.jobId)
        ? {
            type: 'serviceJobFailed',
            jobId: str(p.jobId)!,
            message: str(p.message) ?? 'service job failed',
            ...(typeof p.attempts === 'number' ? { attempts: p.attempts } : {}),
          }
        : null;
    case 'serviceJobBpmnError':
      return str(p.jobId) && str(p.errorCode)
        ? { type: 'serviceJobBpmnError', jobId: str(p.jobId)!, errorCode: str(p.errorCode)!, ...(str(p.message) ? { message: str(p.message)! } : {}) }
        : null;
    case 'cancel':
      return { type: 'cancel', ...(str(p.reason) ? { reason: str(p.reason)! } : {}) };
    case 'timerFired':
      return str(p.timerId) ? { type: 'timerFired', timerId: str(p.timerId)! } : null;
    case 'messageReceived':
    case 'signalReceived':
      return str(p.subscriptionId) && str(p.name) ? { type: ev.kind, subscriptionId: str(p.subscriptionId)!, name: str(p.name)!, ...withVars } : null;
    case 'childCompleted':
      return str(p.childId) ? { type: 'childCompleted', childId: str(p.childId)!, variables: variables ?? {} } : null;
    case 'childFailed': {
      const kind = p.kind === 'error' || p.kind === 'escalation' || p.kind === 'incident' ? p.kind : null;
      return str(p.childId) && kind
        ? { type: 'childFailed', childId: str(p.childId)!, errorCode: str(p.errorCode) ?? '', message: str(p.message) ?? '', kind }
        : null;
    }
    case 'childTerminated':
      return str(p.childId) ? { type: 'childTerminated', childId: str(p.childId)! } : null;
    case 'retryIncident':
      return str(p.incidentId) ? { type: 'retryIncident', incidentId: str(p.incidentId)! } : null;
    case 'setVariables':
      return variables ? { type: 'setVariables', variables, ...(str(p.scopeId) ? { scopeId: str(p.scopeId)! } : {}) } : null;
    case 'reset':
      return str(p.elementId) ? { type: 'reset', elementId: str(p.elementId)! } : null;
    default:
      return null;
  }
}

/**
 * Outcomes the outside world already committed to a row it owns (a task
 * completed through the API, a job finished by a worker) go before other
 * pending events. They never depend on a pending event (the task or job
 * existed before any of them was applied), and applying them first means an
 * interrupting event that arrived later in the inbox cannot cancel a task
 * whose completion was already answered with a 2xx. Stable otherwise, and
 * only between operator/control events (BARRIERS).
 */
const OUTCOMES = new Set(['humanTaskCompleted', 'serviceJobCompleted', 'serviceJobFailed', 'serviceJobBpmnError']);
/** Operator and control events keep their place: nothing moves across them (a replayed event stays after its retry). */
const BARRIERS = new Set(['cancel', 'suspend', 'resume', 'retryIncident', 'setVariables', 'reset']);

export function outcomesFirst(events: InboxRow[]): InboxRow[] {
  if (!events.some((e) => OUTCOMES.has(e.kind))) return events;
  const ordered: InboxRow[] = [];
  let outcomes: InboxRow[] = [];
  let others: InboxRow[] = [];
  const flush = () => {
    ordered.push(...outcomes, ...others);
    outcomes = [];
    others = [];
  };
  for (const e of events) {
    if (BARRIERS.has(e.kind)) {
      flush();
      ordered.push(e);
    } else if (OUTCOMES.has(e.kind)) outcomes.push(e);
    else others.push(e);
  }
  flush();
  return ordered;
}
