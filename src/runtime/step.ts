/**
 * The step executor: lock one instance, apply its pending inbox events in
 * order, and commit the new state, the consumed inbox rows and every effect in
 * ONE transaction.
 *
 *   doorbell (queue) ─▶ lock row (SKIP LOCKED) ─▶ read pending inbox ─▶ engine ─▶ write all ─▶ commit ─▶ ring others
 *
 * Why this is exactly-once: an inbox row is marked processed in the same
 * transaction that writes the state it produced. If the worker dies before the
 * commit, nothing of the step exists and the rows are still pending; after the
 * commit, a duplicate doorbell finds no pending rows and does nothing.
 */
import type { Logger } from 'pino';
import type { ProcessGraph } from '../bpmn/types.js';
import { applyEvent, startInstance } from '../engine/index.js';
import type { Effect, EngineContext, EngineEvent, HistoryEntry, InstanceState, StepResult } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
import type { Evaluator } from '../expressions/types.js';
import { uuidv7 } from '../ids.js';
import { SERVICE_QUEUE, STEP_QUEUE, type ServiceDoorbell, type StepDoorbell, type Transport } from '../queue/index.js';
import type { Db, Executor } from '../store/db.js';
import { appendHistory } from '../store/history.js';
import { insertIncident, resolveIncident } from '../store/incidents.js';
import { markInboxProcessed, pendingInboxEvents } from '../store/inbox.js';
import { instanceExists, lockInstance, saveInstance } from '../store/instances.js';
import { cancelServiceJob, insertServiceJob } from '../store/jobs.js';
import type { InboxRow } from '../store/schema.js';
import { closeHumanTask, insertHumanTask } from '../store/tasks.js';
import type { DefinitionCache } from './definitions.js';

/** The state an instance row holds between its creation and its first step. */
export function notStartedState(): InstanceState {
  return { v: 1, status: 'running', rootScopeId: '', tokens: {}, scopes: {}, incidents: [] };
}

export interface StepDeps {
  db: Db;
  transport: Transport;
  logger: Logger;
  evaluator: Evaluator;
  definitions: DefinitionCache;
  now?: () => Date;
  /** inbox rows applied per transaction; more are taken in the next round */
  batchSize?: number;
}

export type StepOutcome =
  | { kind: 'missing' }
  | { kind: 'locked' }
  | { kind: 'idle' }
  | { kind: 'stepped'; applied: number; status: string };

const ENDED = new Set(['completed', 'terminated']);

export interface StepRunner {
  /** Drains the instance's inbox. Never throws for a problem of the user's model or data. */
  run(instanceId: string): Promise<StepOutcome>;
}

export function createStepRunner(deps: StepDeps): StepRunner {
  const now = deps.now ?? (() => new Date());
  const batchSize = deps.batchSize ?? 50;
  const stepQueue = deps.transport.queue<StepDoorbell>(STEP_QUEUE);
  const serviceQueue = deps.transport.queue<ServiceDoorbell>(SERVICE_QUEUE);
  const ctx: EngineContext = { now, newId: () => uuidv7(), evaluator: deps.evaluator };

  async function once(instanceId: string): Promise<{ outcome: StepOutcome; more: boolean; topics: Set<string> }> {
    const topics = new Set<string>();
    const outcome = await deps.db.transaction().execute(async (trx): Promise<{ outcome: StepOutcome; more: boolean }> => {
      const row = await lockInstance(trx, instanceId);
      if (!row) {
        return { outcome: (await instanceExists(trx, instanceId)) ? { kind: 'locked' } : { kind: 'missing' }, more: false };
      }
      const events = await pendingInboxEvents(trx, instanceId, batchSize);
      if (events.length === 0) return { outcome: { kind: 'idle' }, more: false };

      const log = deps.logger.child({ instanceId });
      let state = row.state;
      let suspended = row.suspended;
      const consumed: number[] = [];
      const effects: Effect[] = [];
      let graph: ProcessGraph | null = null;

      // Suspension: while suspended, events stay pending (in order) until a
      // `resume`; control events (suspend/resume/cancel) still go through. Once
      // one event is deferred, every later one is deferred too, so nothing is
      // ever applied out of order.
      let deferred = false;
      for (const ev of events) {
        if (ev.kind === 'suspend' || ev.kind === 'resume') {
          if (!ENDED.has(state.status)) suspended = ev.kind === 'suspend';
          consumed.push(ev.id);
          continue;
        }
        if (ev.kind !== 'cancel' && (suspended || deferred)) {
          deferred = true;
          continue;
        }
        if (ev.kind === 'cancel') suspended = false;
        consumed.push(ev.id);
        const event = toEngineEvent(ev);
        if (event === null) {
          log.warn({ inboxId: ev.id, kind: ev.kind }, 'unknown inbox event kind ignored');
          continue;
        }
        graph ??= await deps.definitions.get(trx, row.definition_id);
        const result = applySafely(graph, state, event, log);
        state = result.state;
        effects.push(...result.effects);
      }

      // Only deferred events (suspended instance): nothing to write.
      if (consumed.length === 0) return { outcome: { kind: 'idle' }, more: false };

      const status = suspended && !ENDED.has(state.status) ? 'suspended' : state.status;
      await saveInstance(trx, instanceId, row.rev, { state, status, ended: ENDED.has(state.status), suspended });
      await markInboxProcessed(trx, consumed);
      await writeEffects(trx, instanceId, row.process_key, effects, topics);
      return {
        outcome: { kind: 'stepped', applied: consumed.length, status },
        // A full batch means more may be waiting; events deferred by a
        // suspension that ended in this batch are still pending.
        more: !suspended && (events.length === batchSize || deferred),
      };
    });
    return { ...outcome, topics };
  }

  /**
   * The engine promises not to throw for user errors. If it throws anyway (a bug
   * of ours), the instance gets an incident and the worker carries on: one bad
   * instance must not poison the queue.
   */
  function applySafely(graph: ProcessGraph, state: InstanceState, event: EngineEvent, log: Logger): StepResult {
    try {
      if (event.type === 'start' && state.rootScopeId === '') return startInstance(graph, event, ctx);
      return applyEvent(graph, state, event, ctx);
    } catch (err) {
      log.error({ err, event: event.type }, 'engine failed on an event');
      const incident = {
        id: uuidv7(),
        code: 'engine_error',
        message: `internal engine error on ${event.type}: ${err instanceof Error ? err.message : String(err)}`,
        elementId: graph.key,
        tokenId: null,
        createdAt: now().toISOString(),
      };
      return {
        state: { ...state, status: 'error', incidents: [...state.incidents, incident] },
        effects: [{ type: 'incidentOpened', incident }],
        ignored: false,
      };
    }
  }

  async function writeEffects(trx: Executor, instanceId: string, processKey: string, effects: Effect[], topics: Set<string>) {
    const history: HistoryEntry[] = [];
    for (const e of effects) {
      switch (e.type) {
        case 'history':
          history.push(e.entry);
          break;
        case 'humanTaskOpened':
          await insertHumanTask(trx, instanceId, processKey, e.task);
          break;
        case 'humanTaskClosed':
          await closeHumanTask(trx, e.taskId, e.state);
          break;
        case 'serviceJobCreated':
          await insertServiceJob(trx, instanceId, processKey, e.job);
          topics.add(e.job.topic);
          break;
        case 'serviceJobCancelled':
          await cancelServiceJob(trx, e.jobId);
          break;
        case 'incidentOpened':
          await insertIncident(trx, instanceId, processKey, e.incident);
          break;
        case 'incidentResolved':
          await resolveIncident(trx, e.incidentId);
          break;
      }
    }
    await appendHistory(trx, instanceId, history);
  }

  return {
    async run(instanceId) {
      let last: StepOutcome = { kind: 'idle' };
      // Bounded: a flood of events for one instance must not starve the others;
      // after a few rounds we ring again and go back to the queue.
      for (let round = 0; round < 5; round++) {
        const r = await once(instanceId);
        last = r.outcome;
        if (r.topics.size > 0) {
          await serviceQueue.addMany([...r.topics].map((topic) => ({ topic }))).catch((err: unknown) => {
            deps.logger.warn({ err, instanceId }, 'could not ring the service queue; workers will poll');
          });
        }
        if (last.kind === 'locked') {
          // Someone else is stepping this instance right now. Ring again shortly:
          // it may have read the inbox before our event was committed.
          await stepQueue.add({ instanceId }, { delayMs: 25 + Math.floor(Math.random() * 50) });
          return last;
        }
        if (!r.more) return last;
      }
      await stepQueue.add({ instanceId });
      return last;
    },
  };
}

function toEngineEvent(ev: InboxRow): EngineEvent | null {
  const p = ev.payload as JsonObject;
  const vars = (v: unknown): JsonObject | undefined =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : undefined;
  switch (ev.kind) {
    case 'start': {
      const variables = vars(p.variables);
      return {
        type: 'start',
        ...(variables ? { variables } : {}),
        ...(typeof p.startEventId === 'string' ? { startEventId: p.startEventId } : {}),
      };
    }
    case 'humanTaskCompleted': {
      const variables = vars(p.variables);
      return { type: 'humanTaskCompleted', taskId: String(p.taskId), ...(variables ? { variables } : {}) };
    }
    case 'serviceJobCompleted': {
      const variables = vars(p.variables);
      return { type: 'serviceJobCompleted', jobId: String(p.jobId), ...(variables ? { variables } : {}) };
    }
    case 'serviceJobFailed':
      return { type: 'serviceJobFailed', jobId: String(p.jobId), message: String(p.message ?? 'service job failed') };
    case 'serviceJobBpmnError':
      return {
        type: 'serviceJobBpmnError',
        jobId: String(p.jobId),
        errorCode: String(p.errorCode),
        ...(typeof p.message === 'string' ? { message: p.message } : {}),
      };
    case 'cancel':
      return { type: 'cancel', ...(typeof p.reason === 'string' ? { reason: p.reason } : {}) };
    default:
      return null;
  }
}
