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
import type { Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { ProcessGraph } from '../bpmn/types.js';
import { applyEvent, startInstance } from '../engine/index.js';
import type { Effect, EngineContext, EngineEvent, HistoryEntry, HumanTaskSpec, InstanceState, ServiceJobSpec, StepResult, TimerSpec } from '../engine/types.js';
import type { Evaluator } from '../expressions/types.js';
import { uuidv7 } from '../ids.js';
import { SERVICE_QUEUE, STEP_QUEUE, TIMER_CHANNEL, type ServiceDoorbell, type StepDoorbell, type Transport } from '../queue/index.js';
import type { Db } from '../store/db.js';
import type { Database } from '../store/schema.js';
import { BatonError } from '../errors.js';
import { markInboxProcessed, pendingInboxIds } from '../store/inbox.js';
import { getInstance, instanceExists } from '../store/instances.js';
import { commitStep, insertSteppedInstance, lockForStep, StepRaced } from '../store/step.js';
import type { InboxRow, ProcessDefinitionRow, ProcessInstanceRow } from '../store/schema.js';
import type { JsonObject } from '../errors.js';
import type { DefinitionCache } from './definitions.js';
import { emptyOutput, StepConflict, writeEffects, type EffectOutput } from './effects.js';
import { describeDbError, isPoison, rejectEvent } from './poison.js';
import { outcomesFirst, toEngineEvent } from './inbox-events.js';

export interface StepDeps {
  db: Db;
  transport: Transport;
  logger: Logger;
  evaluator: Evaluator;
  definitions: DefinitionCache;
  now?: () => Date;
  /**
   * inbox rows applied per transaction; more are taken in the next round.
   * Large by default: a hot instance (a big multi-instance collecting its
   * completions) pays for loading and saving its state once per batch.
   */
  batchSize?: number;
  /**
   * Leave instances whose stored state is larger than this to the step
   * workers ('deferred'): the API's inline steps use it, so that a big
   * multi-instance receiving completions one by one is stepped in batches
   * by a worker, not once per completion by the API. 0: no limit.
   */
  maxStateBytes?: number;
  /**
   * Topics that have a built-in connector: new jobs of these ring the service
   * workers' doorbell. Jobs of other topics wait for external workers, which
   * poll (fetch-and-lock), so ringing for them only costs Redis. Absent: ring
   * for every topic.
   */
  connectorTopics?: ReadonlySet<string>;
}

export type StepOutcome =
  | { kind: 'missing' }
  | { kind: 'locked' }
  /** the state is over maxStateBytes: left to a step worker (the caller rings the doorbell) */
  | { kind: 'deferred' }
  | { kind: 'idle' }
  | { kind: 'stepped'; applied: number; status: string };

const ENDED = new Set(['completed', 'terminated']);
/**
 * Operator events that apply even while the instance is suspended: cancel, and
 * setting variables (suspend, fix the data, resume is the point of both).
 */
const PASS_SUSPENSION = new Set(['cancel', 'setVariables']);

export interface StepRunner {
  /** Drains the instance's inbox. Never throws for a problem of the user's model or data. */
  run(instanceId: string): Promise<StepOutcome>;
  /**
   * Creates an instance and applies its start at once: the row, its (already
   * processed) start event, the state after the first step and the step's
   * effects are written in one transaction — for a straight-through process
   * one statement. Nobody can see the row before that commit, so this is the
   * one writer. Returns null when the step could not be written (a poison
   * result, a lost connection): nothing was, and the caller starts the
   * instance the ordinary way.
   */
  startNew(
    def: ProcessDefinitionRow,
    graph: ProcessGraph,
    input: { variables: JsonObject; businessKey: string | null; onlyIfLatest?: boolean; requestId?: string },
  ): Promise<{ instance: ProcessInstanceRow; inboxId: number } | 'stale' | null>;
  /**
   * Accepts an input (`accept` writes it: a task completion, a job's outcome)
   * and steps its instance in the same transaction: one commit for both. If
   * the step cannot be written, the input is accepted alone and the instance
   * stepped the ordinary way; an error `accept` throws (a 4xx) is passed on.
   * 'locked' or 'deferred' steps are left to `run` (which rings the doorbell).
   */
  runAfter<T extends { instanceId: string }>(accept: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
}

/** The engine threw while changing a state in place: the step is redone on copies (where a throw becomes an incident). */
class EngineFailedInPlace extends Error {
  constructor(cause: unknown) {
    super('engine failed while changing the state in place', { cause });
  }
}

export function createStepRunner(deps: StepDeps): StepRunner {
  const now = deps.now ?? (() => new Date());
  const batchSize = deps.batchSize ?? 500;
  const stepQueue = deps.transport.queue<StepDoorbell>(STEP_QUEUE);
  const serviceQueue = deps.transport.queue<ServiceDoorbell>(SERVICE_QUEUE);
  const ctx: EngineContext = { now, newId: () => uuidv7(), evaluator: deps.evaluator };
  // The state a step loads is its own (parsed fresh from the row): the engine
  // may change it in place instead of copying the token and scope records for
  // every event, which for a 10,000-item multi-instance was most of a step.
  const ctxInPlace: EngineContext = { ...ctx, inPlace: true };

  type StepOpts = { batchSize: number; strict: boolean; attempted?: number[]; inPlace: boolean };

  async function stepOnce(instanceId: string, opts: StepOpts): Promise<{ outcome: StepOutcome; more: boolean; out: EffectOutput }> {
    const out = emptyOutput();
    const result = await deps.db.transaction().execute((trx) => stepIn(trx, instanceId, opts, out));
    return { ...result, out };
  }

  /** The step itself, inside the caller's transaction. */
  async function stepIn(trx: Transaction<Database>, instanceId: string, opts: StepOpts, out: EffectOutput): Promise<{ outcome: StepOutcome; more: boolean }> {
    {
      const locked = await lockForStep(trx, instanceId, opts.batchSize, deps.maxStateBytes ?? 0);
      if (locked === 'too_big') return { outcome: { kind: 'deferred' }, more: false };
      if (!locked) {
        if (await instanceExists(trx, instanceId)) return { outcome: { kind: 'locked' }, more: false };
        // Inbox rows addressed to an instance that does not exist (a child that
        // was never created, a bad id): consume them, or the sweep would ring
        // for them forever.
        await markInboxProcessed(trx, await pendingInboxIds(trx, instanceId));
        return { outcome: { kind: 'missing' }, more: false };
      }
      const row = locked.row;
      const events = outcomesFirst(locked.events);
      if (events.length === 0) return { outcome: { kind: 'idle' }, more: false };

      const log = deps.logger.child({ instanceId });
      let state = row.state;
      let suspended = row.suspended;
      const consumed: InboxRow[] = [];
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
          consumed.push(ev);
          continue;
        }
        if (!PASS_SUSPENSION.has(ev.kind) && (suspended || deferred)) {
          deferred = true;
          continue;
        }
        if (ev.kind === 'cancel') suspended = false;
        consumed.push(ev);
        const event = toEngineEvent(ev);
        if (event === null) {
          log.warn({ inboxId: ev.id, kind: ev.kind }, 'unusable inbox event ignored');
          continue;
        }
        graph ??= await deps.definitions.get(trx, row.definition_id);
        const stepped = applySafely(graph, state, event, log, opts.inPlace);
        state = stepped.state;
        effects.push(...stepped.effects);
      }

      // Only deferred events (suspended instance): nothing to write.
      if (consumed.length === 0) return { outcome: { kind: 'idle' }, more: false };
      opts.attempted?.push(...consumed.map((e) => e.id));

      const status = suspended && !ENDED.has(state.status) ? 'suspended' : state.status;
      const history: HistoryEntry[] = [];
      for (const e of effects) if (e.type === 'history') history.push(e.entry);
      await commitStep(trx, {
        id: instanceId,
        rev: row.rev,
        state,
        status,
        ended: ENDED.has(state.status),
        suspended,
        consumed: consumed.map((e) => e.id),
        history,
      });
      await writeEffects(trx, row, state, effects, consumed, out, { strict: opts.strict });
      return {
        outcome: { kind: 'stepped', applied: consumed.length, status },
        // A full batch means more may be waiting; events deferred by a
        // suspension that ended in this batch are still pending; effects may
        // have put new rows into this instance's own inbox.
        more: !suspended && (events.length === opts.batchSize || deferred || out.again),
      };
    }
  }

  async function runAfter<T extends { instanceId: string }>(accept: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    const out = emptyOutput();
    let accepted: T;
    let stepped: { outcome: StepOutcome; more: boolean };
    try {
      ({ accepted, stepped } = await deps.db.transaction().execute(async (trx) => {
        const a = await accept(trx);
        return { accepted: a, stepped: await stepIn(trx, a.instanceId, { batchSize, strict: true, inPlace: true }, out) };
      }));
    } catch (err) {
      if (err instanceof BatonError) throw err; // the input was refused: nothing to step
      // The step failed (a race, a poison event, …) and took the input with it:
      // accept it alone, then step the ordinary way, with its retries.
      deps.logger.info({ err }, 'combined accept-and-step failed; accepting first, stepping after');
      accepted = await deps.db.transaction().execute(accept);
      await runner.run(accepted.instanceId);
      return accepted;
    }
    await ringAfterCommit(accepted.instanceId, out);
    const o = stepped.outcome;
    if (o.kind === 'deferred' || o.kind === 'locked' || stepped.more) await runner.run(accepted.instanceId);
    return accepted;
  }

  /**
   * The engine promises not to throw for user errors. If it throws anyway (a bug
   * of ours), the instance gets an incident and the worker carries on: one bad
   * instance must not poison the queue.
   */
  function applySafely(graph: ProcessGraph, state: InstanceState, event: EngineEvent, log: Logger, inPlace: boolean): StepResult {
    try {
      if (event.type === 'start' && state.rootScopeId === '') return startInstance(graph, event, ctx);
      return applyEvent(graph, state, event, inPlace ? ctxInPlace : ctx);
    } catch (err) {
      // in place, the state may be half changed: the step starts over on copies
      if (inPlace) throw new EngineFailedInPlace(err);
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

  /** After the commit: ring everything the step gave work to. Failures only cost latency (the sweep re-rings). */
  async function ringAfterCommit(instanceId: string, out: EffectOutput): Promise<void> {
    const warn = (what: string) => (err: unknown) => deps.logger.warn({ err, instanceId }, `could not ring ${what}; the sweep or polling will catch up`);
    const topics = deps.connectorTopics ? [...out.topics].filter((t) => deps.connectorTopics!.has(t)) : [...out.topics];
    if (topics.length > 0) await serviceQueue.addMany(topics.map((topic) => ({ topic }))).catch(warn('the service queue'));
    out.rings.delete(instanceId);
    if (out.rings.size > 0) await stepQueue.addMany([...out.rings].map((id) => ({ instanceId: id }))).catch(warn('other instances'));
    if (out.earliestTimer !== null) await deps.transport.publish(TIMER_CHANNEL, String(out.earliestTimer)).catch(warn('the scheduler'));
  }

  /**
   * One round, with the ways a step can fail for reasons of its own:
   * - the engine threw while changing the state in place: the step is redone
   *   on copies, where the throw becomes an `engine_error` incident;
   * - another step committed between this one's snapshot and its lock
   *   (StepRaced, see lockForStep): read again;
   * - a lost race (StepConflict): run again, strictly once more, then let the
   *   cancel win (the other side is then a completion of a task that is gone);
   * - a poison input: the step's writes are refused for what the data is
   *   (a string Postgres cannot store, a value over a size limit). Retrying
   *   would fail forever, so the events are applied one at a time to find the
   *   one that fails, and that one is set aside as an `event_rejected`
   *   incident that carries it (an operator retry replays it).
   */
  async function round(instanceId: string): Promise<{ outcome: StepOutcome; more: boolean; out: EffectOutput }> {
    let inPlace = true;
    const once = async (id: string, o: { batchSize: number; strict: boolean; attempted?: number[] }) => {
      try {
        return await stepOnce(id, { ...o, inPlace });
      } catch (err) {
        if (!(err instanceof EngineFailedInPlace)) throw err;
        inPlace = false;
        return stepOnce(id, { ...o, inPlace });
      }
    };
    try {
      return await once(instanceId, { batchSize, strict: true });
    } catch (err) {
      if (err instanceof StepRaced) {
        // another step committed between our snapshot and our lock (see lockForStep): read again
        return await once(instanceId, { batchSize, strict: true });
      }
      if (err instanceof StepConflict) {
        deps.logger.info({ instanceId, reason: err.message }, 'step raced an accepted outcome; applying the outcome first');
        try {
          return await once(instanceId, { batchSize, strict: true });
        } catch (again) {
          if (!(again instanceof StepConflict)) throw again;
          return await once(instanceId, { batchSize, strict: false });
        }
      }
      if (!isPoison(err)) throw err;
      const attempted: number[] = [];
      try {
        return await once(instanceId, { batchSize: 1, strict: false, attempted });
      } catch (single) {
        const culprit = attempted[0];
        if (!isPoison(single) || culprit === undefined) throw single;
        deps.logger.error({ err: single, instanceId, inboxId: culprit }, 'an inbox event cannot be applied; set aside as an incident');
        await rejectEvent(deps.db, instanceId, culprit, describeDbError(single), uuidv7(), now());
        return { outcome: { kind: 'stepped', applied: 1, status: 'error' }, more: true, out: emptyOutput() };
      }
    }
  }

  async function startNew(
    def: ProcessDefinitionRow,
    graph: ProcessGraph,
    input: { variables: JsonObject; businessKey: string | null; onlyIfLatest?: boolean; requestId?: string },
  ): Promise<{ instance: ProcessInstanceRow; inboxId: number } | 'stale' | null> {
    const id = uuidv7();
    const log = deps.logger.child({ instanceId: id });
    let stepped: StepResult;
    try {
      stepped = startInstance(graph, { type: 'start', variables: input.variables }, ctx);
    } catch (err) {
      // an engine bug: the ordinary path turns it into an incident on the instance
      log.warn({ err }, 'inline start failed in the engine; starting the ordinary way');
      return null;
    }
    const { state, effects } = stepped;
    // What the first step opened (tasks, jobs, timers) goes into the same
    // statement as the row; anything else (messages, subscriptions, called
    // instances, …) takes the transaction and writeEffects.
    const history: HistoryEntry[] = [];
    const tasks: HumanTaskSpec[] = [];
    const jobs: ServiceJobSpec[] = [];
    const timers: TimerSpec[] = [];
    let simple = true;
    for (const e of effects) {
      if (e.type === 'history') history.push(e.entry);
      else if (e.type === 'humanTaskOpened') tasks.push(e.task);
      else if (e.type === 'serviceJobCreated') jobs.push(e.job);
      else if (e.type === 'timerScheduled') timers.push(e.timer);
      else simple = false;
    }
    const ended = ENDED.has(state.status);
    const row = {
      id,
      definitionId: def.id,
      processKey: def.key,
      version: def.version,
      businessKey: input.businessKey,
      state,
      status: state.status,
      ended,
      startPayload: { variables: input.variables },
      history,
      onlyIfLatest: input.onlyIfLatest ?? false,
      requestId: input.requestId ?? null,
    };
    const out = emptyOutput();
    let created: { row: ProcessInstanceRow; inboxId: number } | undefined;
    try {
      created = simple
        ? await insertSteppedInstance(deps.db, { ...row, tasks, jobs, timers })
        : await deps.db.transaction().execute(async (trx) => {
            const c = await insertSteppedInstance(trx, row);
            if (c) await writeEffects(trx, c.row, state, effects, [], out, { strict: true });
            return c;
          });
    } catch (err) {
      log.warn({ err }, 'inline start could not be written; starting the ordinary way');
      return null;
    }
    // a newer version was deployed since the caller looked, or the request id
    // was used meanwhile: nothing was written, the caller looks again
    if (!created) return 'stale';
    if (simple) {
      for (const j of jobs) out.topics.add(j.topic);
      for (const t of timers) {
        const due = Date.parse(t.dueAt);
        if (!Number.isNaN(due) && (out.earliestTimer === null || due < out.earliestTimer)) out.earliestTimer = due;
      }
    }
    await ringAfterCommit(id, out);
    // a buffered message consumed by the first step, a called process missing: its own inbox has work
    if (out.again) {
      await round(id).catch((err: unknown) => log.warn({ err }, 'follow-up step failed; the doorbell will bring it back'));
      created.row = (await getInstance(deps.db, id)) ?? created.row;
    }
    return { instance: created.row, inboxId: created.inboxId };
  }

  const runner: StepRunner = {
    startNew,
    runAfter,
    async run(instanceId) {
      let last: StepOutcome = { kind: 'idle' };
      // Bounded: a flood of events for one instance must not starve the others;
      // after a few rounds we ring again and go back to the queue.
      for (let i = 0; i < 5; i++) {
        const r = await round(instanceId);
        last = r.outcome;
        await ringAfterCommit(instanceId, r.out);
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
  return runner;
}
