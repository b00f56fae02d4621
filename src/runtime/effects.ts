/**
 * Writes a step's effects, inside the step's transaction. Effects that reach
 * other instances (messages, signals, child instances, parent notifications)
 * only insert rows — inbox rows or new instance rows — and collect the ids
 * whose doorbell must ring after the commit; they never lock another
 * instance's row.
 */
import type { Effect, HumanTaskSpec, InstanceState, ServiceJobSpec, TimerSpec } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
import type { Executor } from '../store/db.js';
import { definitionById } from '../store/definitions.js';
import { insertInboxEvent } from '../store/inbox.js';
import { insertIncident, resolveIncident } from '../store/incidents.js';
import { cancelServiceJob, getServiceJob, insertServiceJobs } from '../store/jobs.js';
import type { InboxRow, ProcessInstanceRow } from '../store/schema.js';
import { closeHumanTask, getHumanTask, insertHumanTasks } from '../store/tasks.js';
import { deleteInstanceWaits, deleteSubscription, deleteTimer, insertSubscription, insertTimers } from '../store/waits.js';
import { broadcastSignal, consumeBuffered, lockCorrelations, publishMessage, resolveCalled, spawnInstance } from './correlation.js';

export interface EffectOutput {
  /** other instances with new inbox rows */
  rings: Set<string>;
  /** service-job topics with new jobs */
  topics: Set<string>;
  /** the earliest due time of a timer armed by this step */
  earliestTimer: number | null;
  /** this instance got new inbox rows of its own (buffered message, failed call): step again */
  again: boolean;
}

/**
 * The step wanted to cancel a task or job whose outcome was already accepted
 * (the API completed the task, a worker finished the job) but not yet applied:
 * the two raced, and the outcome committed first. The step is rolled back and
 * run again with the outcome applied first (see step.ts), so a 2xx given for a
 * completion is never silently overridden by a later interrupting event.
 */
export class StepConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepConflict';
  }
}

export interface EffectOptions {
  /** throw StepConflict on a lost race (see above); false: the cancel loses quietly */
  strict: boolean;
}

export function emptyOutput(): EffectOutput {
  return { rings: new Set(), topics: new Set(), earliestTimer: null, again: false };
}

export async function writeEffects(
  trx: Executor,
  row: ProcessInstanceRow,
  state: InstanceState,
  effects: Effect[],
  applied: InboxRow[],
  out: EffectOutput,
  options: EffectOptions = { strict: false },
): Promise<void> {
  const instanceId = row.id;
  const processKey = row.process_key;

  // Correlation locks first, all of them, in one stable order (see lockCorrelations).
  const pairs: Array<{ name: string; correlationKey: string | null }> = [];
  for (const e of effects) {
    if (e.type === 'subscriptionOpened' && e.subscription.kind === 'message') pairs.push({ name: e.subscription.name, correlationKey: e.subscription.correlationKey });
    if (e.type === 'messageThrown') pairs.push({ name: e.message.name, correlationKey: e.message.correlationKey });
  }
  await lockCorrelations(trx, pairs);

  // Rows the step creates go in first, one statement per table (a fan-out
  // creates thousands); everything that closes, cancels or deletes follows in
  // effect order, so a task or timer opened and closed in the same step is
  // inserted before it is closed.
  // (history entries are written with the state, by the step's commit statement)
  const tasks: HumanTaskSpec[] = [];
  const jobs: ServiceJobSpec[] = [];
  const timers: TimerSpec[] = [];
  for (const e of effects) {
    if (e.type === 'humanTaskOpened') tasks.push(e.task);
    else if (e.type === 'serviceJobCreated') jobs.push(e.job);
    else if (e.type === 'timerScheduled') timers.push(e.timer);
  }
  await insertHumanTasks(trx, instanceId, processKey, tasks);
  await insertServiceJobs(trx, instanceId, processKey, jobs);
  for (const j of jobs) out.topics.add(j.topic);
  await insertTimers(trx, instanceId, timers);
  for (const t of timers) {
    const due = Date.parse(t.dueAt);
    if (!Number.isNaN(due) && (out.earliestTimer === null || due < out.earliestTimer)) out.earliestTimer = due;
  }

  let deploymentId: string | null = null;
  for (const e of effects) {
    switch (e.type) {
      case 'history':
      case 'humanTaskOpened':
      case 'serviceJobCreated':
      case 'timerScheduled':
        break;
      case 'humanTaskClosed':
        if (!(await closeHumanTask(trx, e.taskId, e.state)) && e.state === 'cancelled' && options.strict) {
          if ((await getHumanTask(trx, e.taskId))?.state === 'completed') {
            throw new StepConflict(`task ${e.taskId} was completed while the step cancelled it`);
          }
        }
        break;
      case 'serviceJobCancelled':
        if (!(await cancelServiceJob(trx, e.jobId)) && options.strict) {
          const job = await getServiceJob(trx, e.jobId);
          if (job && job.state !== 'cancelled') throw new StepConflict(`service job ${e.jobId} ended (${job.state}) while the step cancelled it`);
        }
        break;
      case 'incidentOpened':
        await insertIncident(trx, instanceId, processKey, e.incident);
        break;
      case 'incidentResolved':
        await resolveIncident(trx, e.incidentId, e.reason);
        break;
      case 'timerCancelled':
        await deleteTimer(trx, e.timerId);
        break;
      case 'subscriptionOpened': {
        const s = e.subscription;
        // Conditions are watched by the engine itself; nothing outside answers them.
        if (s.kind === 'conditional') break;
        if (s.kind === 'message' && (await consumeBuffered(trx, instanceId, { id: s.id, name: s.name, correlationKey: s.correlationKey, elementId: s.elementId }))) {
          out.again = true;
          break;
        }
        await insertSubscription(trx, instanceId, s);
        break;
      }
      case 'subscriptionClosed':
        await deleteSubscription(trx, e.subscriptionId);
        break;
      case 'messageThrown':
        // Not correlated anywhere (no subscription, no start event): the message
        // is dropped, as a Camunda 8 message with TTL 0 would be. History shows it.
        await publishMessage(trx, { name: e.message.name, correlationKey: e.message.correlationKey, variables: e.message.variables }, out.rings, true);
        break;
      case 'signalThrown':
        await broadcastSignal(trx, e.signal, out.rings, instanceId);
        break;
      case 'childInstanceStarted': {
        const c = e.child;
        deploymentId ??= (await definitionById(trx, row.definition_id))?.deployment_id ?? '';
        const def = await resolveCalled(trx, c.processKey, c.versionBinding, deploymentId);
        if (!def) {
          await insertInboxEvent(trx, instanceId, 'childFailed', {
            childId: c.id,
            errorCode: 'called_process_not_found',
            message: `call activity ${c.elementId}: process ${c.processKey} is not deployed`,
            kind: 'incident',
          });
          out.again = true;
          break;
        }
        await spawnInstance(trx, def, {
          id: c.id,
          variables: c.variables,
          businessKey: c.businessKey,
          // The child's depth travels in its parent link (start row, then its
          // state), so the engine can refuse the next level without reading
          // ancestors: this instance's depth (root 0; a link without one,
          // written before depths existed, 1) + 1. Same rule as the engine's.
          parent: { instanceId, tokenId: c.tokenId, childId: c.id, depth: (state.parent ? (state.parent.depth ?? 1) : 0) + 1 },
        });
        out.rings.add(c.id);
        break;
      }
      case 'childInstanceCancelled':
        await insertInboxEvent(trx, e.childId, 'cancel', { reason: `cancelled by parent ${instanceId}` });
        out.rings.add(e.childId);
        break;
      case 'parentNotified': {
        const { type, ...payload } = e.event;
        await insertInboxEvent(trx, e.parentInstanceId, type, payload as JsonObject);
        out.rings.add(e.parentInstanceId);
        break;
      }
    }
  }

  // A message delivered to a subscription removed that subscription's row (one
  // message, one receiver). A non-interrupting catch (boundary, event
  // subprocess start) stays armed in the engine: give it its row back.
  for (const ev of applied) {
    if (ev.kind !== 'messageReceived') continue;
    const subId = String((ev.payload as JsonObject).subscriptionId);
    const trigger = state.triggers?.[subId];
    if (trigger && trigger.kind === 'message' && trigger.name !== undefined) {
      await insertSubscription(trx, instanceId, {
        id: trigger.id,
        kind: 'message',
        name: trigger.name,
        correlationKey: trigger.correlationKey ?? null,
        tokenId: trigger.tokenId,
        elementId: trigger.elementId,
      });
    }
  }

  if (state.status === 'completed' || state.status === 'terminated') await deleteInstanceWaits(trx, instanceId);
}
