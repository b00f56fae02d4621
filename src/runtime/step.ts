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
import { languagesOf, type ProcessGraph } from '../bpmn/types.js';
import { applyEvent, startInstance } from '../engine/index.js';
import type { Effect, EngineContext, EngineEvent, HistoryEntry, HumanTaskSpec, InstanceState, ServiceJobSpec, StepResult, TimerSpec } from '../engine/types.js';
import { budgeted } from '../expressions/budget.js';
import type { Evaluators, Language } from '../expressions/index.js';
import { uuidv7 } from '../ids.js';
import { SERVICE_QUEUE, STEP_QUEUE, TIMER_CHANNEL, type ServiceDoorbell, type StepDoorbell, type Transport } from '../queue/index.js';
import type { Db, Executor } from '../store/db.js';
import type { Database } from '../store/schema.js';
import { BatonError } from '../errors.js';
import { countAttempt, countFirstAttempt, markInboxProcessed, pendingInboxIds, uncountAttempt } from '../store/inbox.js';
import { getInstance, instanceExists } from '../store/instances.js';
import { checkStateSize, checkTokenCount, commitStep, insertSteppedInstances, lockForStep, readForStep, StateTooLarge, StepRaced, type StepOpenings } from '../store/step.js';
import { createStartBatcher, type StartBatchOptions } from './start-batcher.js';
import type { InboxRow, ProcessDefinitionRow, ProcessInstanceRow } from '../store/schema.js';
import type { JsonObject } from '../errors.js';
import type { DefinitionCache } from './definitions.js';
import { emptyOutput, StepConflict, writeEffects, type EffectOutput } from './effects.js';
import { describeDbError, isPoison, rejectEvent } from './poison.js';
import { createStepLock } from './exclusive.js';
import { hasSandboxedScripts } from './sandboxed.js';
import { outcomesFirst, toEngineEvent } from './inbox-events.js';

export interface StepDeps {
  db: Db;
  transport: Transport;
  logger: Logger;
  /** the evaluator of each language (expressions/index.ts evaluatorsOf) */
  evaluators: Evaluators;
  /**
   * Called (and awaited) before the engine first runs a model that uses a
   * language other than JavaScript: lets that language's sandbox start
   * without blocking the event loop (Pyodide loads in seconds). Optional.
   */
  prepareLanguage?: (language: Language) => Promise<void>;
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
   * Leave models with scripts only a sandbox runs (sandboxed.ts) to the step
   * workers: startNew and stepAccepted decline them, run answers 'deferred'
   * (and rings a step worker). For the API's inline
   * steps in distributed mode, so that user scripts never hold the API's
   * event loop. Default false.
   */
  declineSandboxedScripts?: boolean;
  /** BATON_MAX_STEP_ELEMENTS: element executions one engine call may make (EngineContext.maxElementExecutions) */
  maxElementExecutions?: number;
  /** BATON_MAX_TOKENS: most live tokens of one instance; a step past it sets its event aside (event_rejected). Default 0: no limit */
  maxTokens?: number;
  /** BATON_STEP_SCRIPT_BUDGET_MS: total time the user code of one engine call may run (src/expressions/budget.ts). Absent or 0: no budget */
  stepScriptBudgetMs?: number;
  /** BATON_MAX_STATE_BYTES: largest serialized instance state; a step past it sets its event aside (event_rejected). Default 0: no limit */
  stateLimitBytes?: number;
  /** BATON_MAX_STEP_ATTEMPTS: crashed attempts after which an event is quarantined (see StepRunner.run). Default 3; 0 turns counting off */
  maxStepAttempts?: number;
  /**
   * Whether a statement may run beside an open transaction (Postgres: yes;
   * PGlite has one connection: no). Without, a suspect step counts its
   * attempt before its transaction instead of right before the engine. Default true.
   */
  concurrentStatements?: boolean;
  /**
   * Topics that have a built-in connector: new jobs of these ring the service
   * workers' doorbell. Jobs of other topics wait for external workers, which
   * poll (fetch-and-lock), so ringing for them only costs Redis. Absent: ring
   * for every topic.
   */
  connectorTopics?: ReadonlySet<string>;
  /** how inline starts share statements (start-batcher.ts); default 4 in flight, 100 per statement */
  startBatch?: StartBatchOptions;
  /** deepest call-activity nesting (EngineContext.maxCallDepth; config BATON_MAX_CALL_DEPTH); default 50 */
  maxCallDepth?: number;
  /** most instances of one multi-instance activity (EngineContext.maxMultiInstances; config BATON_MAX_MI_INSTANCES); default 10,000 */
  maxMultiInstances?: number;
  /** shortest timer cycle an expression may arm (EngineContext.minTimerIntervalMs; config BATON_MIN_TIMER_INTERVAL_MS); default 1000 */
  minTimerIntervalMs?: number;
}

export type StepOutcome =
  | { kind: 'missing' }
  | { kind: 'locked' }
  /** the state is over maxStateBytes: left to a step worker (the caller rings the doorbell) */
  | { kind: 'deferred' }
  | { kind: 'idle' }
  /** a pending event's attempts are spent (see StepRunner.run `suspect`): nothing applied; the runner sets it aside */
  | { kind: 'spent' }
  | { kind: 'stepped'; applied: number; status: string };

const ENDED = new Set(['completed', 'terminated']);
/**
 * Operator events that apply even while the instance is suspended: cancel, and
 * setting variables (suspend, fix the data, resume is the point of both).
 */
const PASS_SUSPENSION = new Set(['cancel', 'setVariables']);

/** A suspect step is about to make its event's last allowed attempt: it starts over holding the step lock alone. */
class LastAttempt extends Error {
  constructor() {
    super('the last allowed attempt runs alone');
    this.name = 'LastAttempt';
  }
}

/** A suspect step found its event's attempts spent (see StepRunner.run): the event is set aside. */
class AttemptsSpent extends Error {
  constructor(
    readonly inboxId: number,
    readonly attempts: number,
  ) {
    super(`inbox event ${inboxId}: ${attempts} attempts`);
    this.name = 'AttemptsSpent';
  }
}

export interface StepRunner {
  /**
   * Drains the instance's inbox. Never throws for a problem of the user's model or data.
   *
   * `suspect`: the doorbell may follow a step that crashed (a sweep's, a
   * redelivered job, a re-ring after the instance was locked). The first
   * pending event is then applied alone, its attempt counted in a statement
   * of its own right before the engine runs (a step that only waited behind
   * another step's long script when the process died is not counted); the
   * last allowed attempt holds the process's step lock alone (exclusive.ts),
   * so a crash then is that event's. An event whose `maxStepAttempts`
   * counted attempts all ended without a commit or a clean failure (the
   * process died, was killed, or stopped answering) is set aside as an
   * `event_rejected` incident instead; no step, counted or not, applies it
   * meanwhile; the instance's other events go on.
   */
  run(instanceId: string, opts?: { suspect?: boolean }): Promise<StepOutcome>;
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
    input: { variables: JsonObject; businessKey: string | null; onlyIfLatest?: boolean; requestId?: string; requestFingerprint?: string },
  ): Promise<{ instance: ProcessInstanceRow; inboxId: number } | 'stale' | null>;
  /**
   * The optimistic step (see tryOptimistic) for an instance whose input the
   * caller has just accepted and committed (one statement, durable on its
   * own). True when it committed; false when it could not be used or lost a
   * race, and the caller steps the ordinary way (`run`, or the doorbell).
   * Never throws.
   */
  stepAccepted(instanceId: string): Promise<boolean>;
}

/** What applying a run of inbox events gave (see applyInbox). */
interface Applied {
  state: InstanceState;
  suspended: boolean;
  /** the events applied (or consumed as control events), in order */
  consumed: InboxRow[];
  effects: Effect[];
  /** some events stay pending: the instance is suspended */
  deferred: boolean;
  status: string;
}

function historyOf(effects: Effect[]): HistoryEntry[] {
  const history: HistoryEntry[] = [];
  for (const e of effects) if (e.type === 'history') history.push(e.entry);
  return history;
}

/**
 * The inbox events an optimistic step applies: the outcomes the API itself
 * accepts. Anything else (messages, with their subscription bookkeeping;
 * operator events; child events) takes the locked step.
 */
const OPTIMISTIC_KINDS = new Set(['humanTaskCompleted', 'serviceJobCompleted', 'serviceJobBpmnError', 'timerFired']);

/**
 * A step's effects as what one guarded commit statement writes, or null when
 * any effect needs more than that statement (see tryOptimistic). A timer
 * armed and cancelled in the same step is neither written nor deleted (one
 * statement's delete would not see its own insert); an ended instance that
 * armed anything takes the locked step for the same reason.
 */
function openingsOf(effects: Effect[], processKey: string, ended: boolean): StepOpenings | null {
  const o: StepOpenings = { processKey, tasks: [], jobs: [], timers: [], timersCancelled: [], tasksCompleted: [] };
  for (const e of effects) {
    switch (e.type) {
      case 'history':
        break;
      case 'humanTaskOpened':
        o.tasks.push(e.task);
        break;
      case 'serviceJobCreated':
        o.jobs.push(e.job);
        break;
      case 'timerScheduled':
        o.timers.push(e.timer);
        break;
      case 'timerCancelled':
        o.timersCancelled.push(e.timerId);
        break;
      case 'humanTaskClosed':
        if (e.state !== 'completed') return null;
        o.tasksCompleted.push(e.taskId);
        break;
      default:
        return null;
    }
  }
  const armed = new Set(o.timers.map((t) => t.id));
  if (o.timersCancelled.some((id) => armed.has(id))) {
    const dropped = new Set(o.timersCancelled.filter((id) => armed.has(id)));
    o.timers = o.timers.filter((t) => !dropped.has(t.id));
    o.timersCancelled = o.timersCancelled.filter((id) => !dropped.has(id));
  }
  const opened = new Set(o.tasks.map((t) => t.id));
  if (o.tasksCompleted.some((id) => opened.has(id))) return null;
  if (ended && (o.tasks.length > 0 || o.jobs.length > 0 || o.timers.length > 0)) return null;
  return o;
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
  // one budget for the user code of each engine call (reset before every call: see `engine`)
  const budget = deps.stepScriptBudgetMs !== undefined && deps.stepScriptBudgetMs > 0 ? budgeted(deps.evaluators, deps.stepScriptBudgetMs) : null;
  const ctx: EngineContext = { now, newId: () => uuidv7(), evaluators: budget?.evaluators ?? deps.evaluators, ...(deps.maxCallDepth !== undefined ? { maxCallDepth: deps.maxCallDepth } : {}),
    ...(deps.maxMultiInstances !== undefined ? { maxMultiInstances: deps.maxMultiInstances } : {}),
    ...(deps.maxElementExecutions !== undefined ? { maxElementExecutions: deps.maxElementExecutions } : {}),
    ...(deps.minTimerIntervalMs !== undefined ? { minTimerIntervalMs: deps.minTimerIntervalMs } : {}),
  };
  /**
   * Before every step of a model in a language other than JavaScript: wait,
   * without blocking, until that language's sandbox runs (at the first use,
   * and again after a script cost the sandbox its process). A ready sandbox
   * answers at once.
   */
  const otherLanguages = new WeakMap<ProcessGraph, Language[]>();
  async function prepare(graph: ProcessGraph): Promise<void> {
    if (deps.prepareLanguage === undefined) return;
    let languages = otherLanguages.get(graph);
    if (languages === undefined) otherLanguages.set(graph, (languages = languagesOf(graph).filter((l) => l !== 'javascript')));
    for (const language of languages) await deps.prepareLanguage(language);
  }
  const stateLimit = deps.stateLimitBytes ?? 0;
  const tokenLimit = deps.maxTokens ?? 0;
  const starts = createStartBatcher(deps.db, deps.startBatch ?? { maxInFlight: 4, maxSize: 100 });
  // The state a step loads is its own (parsed fresh from the row): the engine
  // may change it in place instead of copying the token and scope records for
  // every event, which for a 10,000-item multi-instance was most of a step.
  const ctxInPlace: EngineContext = { ...ctx, inPlace: true };

  type StepOpts = {
    batchSize: number;
    strict: boolean;
    attempted?: number[];
    inPlace: boolean;
    ignoreAttempts?: boolean;
    /**
     * count the first event's attempt right before the engine applies it (the
     * suspect round); the id counted is put here. `alone`: this step holds
     * the process's step lock alone (the event's last allowed attempt)
     */
    countAttempt?: { id?: number; alone?: boolean };
  };
  const maxStepAttempts = deps.maxStepAttempts ?? 3;
  /**
   * An event whose counted attempts reached the limit is never applied by
   * an uncounted step (a plain doorbell's, or the API's): such a step could
   * otherwise crash on it again and again without it ever being counted.
   */
  const countAttempt_ = (inboxId: number) => countAttempt(deps.db, inboxId);
  const stepLock = createStepLock();
  const attemptsSpent = (events: readonly InboxRow[]) => maxStepAttempts > 0 && events.some((e) => (e.attempts ?? 0) >= maxStepAttempts);

  async function stepOnce(instanceId: string, opts: StepOpts): Promise<{ outcome: StepOutcome; more: boolean; out: EffectOutput }> {
    const out = emptyOutput();
    const run = () => deps.db.transaction().execute((trx) => stepIn(trx, instanceId, opts, out));
    // an event's last allowed attempt runs alone in this process (see exclusive.ts)
    const result = await (opts.countAttempt?.alone ? stepLock.exclusive(run) : stepLock.shared(run));
    return { ...result, out };
  }

  /** The step itself, inside the caller's transaction. */
  async function stepIn(trx: Transaction<Database>, instanceId: string, opts: StepOpts, out: EffectOutput): Promise<{ outcome: StepOutcome; more: boolean }> {
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
    if (!opts.ignoreAttempts && attemptsSpent(locked.events)) return { outcome: { kind: 'spent' }, more: false };
    // the API's runner in distributed mode: a model with sandboxed scripts goes to a step worker, as a big instance does
    if (deps.declineSandboxedScripts && hasSandboxedScripts(await deps.definitions.get(trx, row.definition_id))) return { outcome: { kind: 'deferred' }, more: false };
    const a = await applyInbox(trx, row, events, opts.inPlace, opts.countAttempt);
    // Only deferred events (suspended instance): nothing to write.
    if (a.consumed.length === 0) return { outcome: { kind: 'idle' }, more: false };
    opts.attempted?.push(...a.consumed.map((e) => e.id));
    await commitStep(trx, {
      id: instanceId,
      rev: row.rev,
      state: a.state,
      status: a.status,
      ended: ENDED.has(a.state.status),
      suspended: a.suspended,
      consumed: a.consumed.map((e) => e.id),
      history: historyOf(a.effects),
    }, stateLimit, tokenLimit);
    await writeEffects(trx, row, a.state, a.effects, a.consumed, out, { strict: opts.strict });
    return {
      outcome: { kind: 'stepped', applied: a.consumed.length, status: a.status },
      // A full batch means more may be waiting; events deferred by a
      // suspension that ended in this batch are still pending; effects may
      // have put new rows into this instance's own inbox.
      more: !a.suspended && (events.length === opts.batchSize || a.deferred || out.again),
    };
  }

  /**
   * Applies pending inbox events, in order, to the instance's state (the
   * engine's part of a step; nothing is written).
   *
   * Suspension: while suspended, events stay pending (in order) until a
   * `resume`; control events (suspend/resume/cancel) still go through. Once
   * one event is deferred, every later one is deferred too, so nothing is
   * ever applied out of order.
   */
  async function applyInbox(ex: Executor, row: ProcessInstanceRow, events: InboxRow[], inPlace: boolean, countAttempt?: { id?: number; alone?: boolean }): Promise<Applied> {
    const log = deps.logger.child({ instanceId: row.id });
    let state = row.state;
    let suspended = row.suspended;
    const consumed: InboxRow[] = [];
    const effects: Effect[] = [];
    let graph: ProcessGraph | null = null;
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
      if (graph === null) {
        graph = await deps.definitions.get(ex, row.definition_id);
        await prepare(graph);
      }
      if (countAttempt !== undefined && countAttempt.id === undefined) {
        // the last allowed attempt must run alone: start over under the exclusive lock
        if (!countAttempt.alone && (ev.attempts ?? 0) + 1 >= maxStepAttempts) throw new LastAttempt();
        // Counted in a statement of its own (it commits whatever this step does),
        // as the last thing before the engine runs: a step that waits behind
        // another one's long script and dies with it was not counted yet.
        const attempts = await countAttempt_(ev.id);
        countAttempt.id = ev.id;
        if (attempts > maxStepAttempts) throw new AttemptsSpent(ev.id, attempts);
      }
      const stepped = applySafely(graph, state, event, log, inPlace);
      state = stepped.state;
      effects.push(...stepped.effects);
    }
    const status = suspended && !ENDED.has(state.status) ? 'suspended' : state.status;
    return { state, suspended, consumed, effects, deferred, status };
  }

  /**
   * The optimistic step the API runs after an input it accepted on its own
   * (stepAccepted): read the row and its pending inbox without a lock, apply,
   * and write everything in ONE statement that checks itself — the revision
   * it read is still current and every inbox row it applied is still pending
   * — and raises otherwise, so that nothing of it is kept (commitStep's
   * guard). Three round trips for a completion (accept, read, commit) where
   * the locked step in a transaction takes six.
   *
   * Only steps whose every effect that one statement can write qualify; for
   * anything else (messages, incidents, cancellations with their race checks,
   * called instances, a suspended instance, a full batch, …) it answers
   * false before writing and the caller runs the ordinary locked step, which
   * is also what happens when the check fails. It never changes what a step
   * does, only how many statements it takes.
   */
  async function tryOptimistic(instanceId: string): Promise<{ out: EffectOutput; status: string } | false> {
    const read = await readForStep(deps.db, instanceId, batchSize, deps.maxStateBytes ?? 0);
    if (!read || read === 'too_big') return false;
    const events = outcomesFirst(read.events);
    if (events.length === 0 || events.length >= batchSize || attemptsSpent(read.events)) return false;
    if (!events.every((e) => OPTIMISTIC_KINDS.has(e.kind))) return false;
    const row = read.row;
    if (deps.declineSandboxedScripts && hasSandboxedScripts(await deps.definitions.get(deps.db, row.definition_id))) return false;
    let a: Applied;
    try {
      a = await applyInbox(deps.db, row, events, true);
    } catch (err) {
      if (err instanceof EngineFailedInPlace) return false; // redone on copies by the locked step
      throw err;
    }
    if (a.deferred || a.suspended || a.consumed.length === 0) return false;
    const ended = ENDED.has(a.state.status);
    const openings = openingsOf(a.effects, row.process_key, ended);
    if (!openings) return false;
    try {
      await commitStep(deps.db, {
        id: instanceId,
        rev: row.rev,
        state: a.state,
        status: a.status,
        ended,
        suspended: false,
        consumed: a.consumed.map((e) => e.id),
        history: historyOf(a.effects),
        guard: openings,
      }, stateLimit, tokenLimit);
    } catch (err) {
      // too large: the step workers apply the events one by one and set the culprit aside
      if (err instanceof StepRaced || err instanceof StateTooLarge) return false;
      throw err;
    }
    const out = emptyOutput();
    for (const j of openings.jobs) out.topics.add(j.topic);
    for (const t of openings.timers) {
      const due = Date.parse(t.dueAt);
      if (!Number.isNaN(due) && (out.earliestTimer === null || due < out.earliestTimer)) out.earliestTimer = due;
    }
    return { out, status: a.status };
  }

  async function stepAccepted(instanceId: string): Promise<boolean> {
    try {
      const done = await stepLock.shared(() => tryOptimistic(instanceId));
      if (!done) return false;
      deps.logger.debug({ instanceId, status: done.status }, 'stepped optimistically');
      await ringAfterCommit(instanceId, done.out);
      return true;
    } catch (err) {
      deps.logger.info({ err, instanceId }, 'optimistic step failed; stepping the ordinary way');
      return false;
    }
  }

  /**
   * The engine promises not to throw for user errors. If it throws anyway (a bug
   * of ours), the instance gets an incident and the worker carries on: one bad
   * instance must not poison the queue.
   */
  function applySafely(graph: ProcessGraph, state: InstanceState, event: EngineEvent, log: Logger, inPlace: boolean): StepResult {
    budget?.reset();
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
    input: { variables: JsonObject; businessKey: string | null; onlyIfLatest?: boolean; requestId?: string; requestFingerprint?: string },
  ): Promise<{ instance: ProcessInstanceRow; inboxId: number } | 'stale' | null> {
    if (deps.declineSandboxedScripts && hasSandboxedScripts(graph)) return null;
    const id = uuidv7();
    const log = deps.logger.child({ instanceId: id });
    let stepped: StepResult;
    await prepare(graph);
    budget?.reset();
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
    if (stateLimit > 0 || tokenLimit > 0) {
      try {
        checkTokenCount(state, tokenLimit);
        if (stateLimit > 0) checkStateSize(JSON.stringify(state), stateLimit);
      } catch (err) {
        if (!(err instanceof StateTooLarge)) throw err;
        // the ordinary start: its step sets the start aside as an event_rejected incident, on a row that says why
        return null;
      }
    }
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
      requestFingerprint: input.requestFingerprint ?? null,
    };
    const out = emptyOutput();
    let created: { row: ProcessInstanceRow; inboxId: number } | undefined;
    try {
      created = simple
        ? await starts.insert({ ...row, tasks, jobs, timers })
        : await deps.db.transaction().execute(async (trx) => {
            const [c] = await insertSteppedInstances(trx, [row]);
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

  /**
   * The quarantine round of a suspect doorbell (see StepRunner.run): null
   * when there is nothing pending.
   */
  async function suspectRound(instanceId: string): Promise<{ outcome: StepOutcome; more: boolean; out: EffectOutput } | null> {
    let r: { outcome: StepOutcome; more: boolean; out: EffectOutput };
    let counted: { id?: number; alone?: boolean } = {};
    if (deps.concurrentStatements === false) {
      // one connection (PGlite): count first, outside the step's transaction
      const first = await countFirstAttempt(deps.db, instanceId);
      if (!first) return null;
      if (first.attempts > maxStepAttempts) return setAside(instanceId, new AttemptsSpent(first.id, first.attempts));
      counted = { id: first.id, alone: first.attempts >= maxStepAttempts };
      try {
        r = await stepOnce(instanceId, { batchSize: 1, strict: false, inPlace: false, ignoreAttempts: true, countAttempt: counted });
      } catch (err) {
        deps.logger.debug({ err, instanceId }, 'suspect round failed; the ordinary rounds take over');
        await uncountAttempt(deps.db, first.id).catch(() => {});
        return null;
      }
      if (r.outcome.kind !== 'stepped') await uncountAttempt(deps.db, first.id);
      return r;
    }
    try {
      try {
        r = await stepOnce(instanceId, { batchSize: 1, strict: false, inPlace: false, ignoreAttempts: true, countAttempt: counted });
      } catch (err) {
        if (!(err instanceof LastAttempt)) throw err;
        counted = { alone: true };
        r = await stepOnce(instanceId, { batchSize: 1, strict: false, inPlace: false, ignoreAttempts: true, countAttempt: counted });
      }
    } catch (err) {
      if (err instanceof AttemptsSpent) return setAside(instanceId, err);
      // a clean failure (a race, a poison value, the database) is not a crash: the ordinary rounds handle it
      deps.logger.debug({ err, instanceId }, 'suspect round failed; the ordinary rounds take over');
      if (counted.id !== undefined) await uncountAttempt(deps.db, counted.id).catch(() => {});
      return null;
    }
    return r;
  }

  async function setAside(instanceId: string, spent: AttemptsSpent): Promise<{ outcome: StepOutcome; more: boolean; out: EffectOutput }> {
    const started = spent.attempts - 1;
    deps.logger.error({ instanceId, inboxId: spent.inboxId, attempts: started }, 'an inbox event was never applied in repeated attempts; set aside as an incident');
    try {
      await rejectEvent(
        deps.db,
        instanceId,
        spent.inboxId,
        `${started} steps started applying it and none finished (the process crashed, was killed or stopped answering); set aside after BATON_MAX_STEP_ATTEMPTS=${maxStepAttempts}`,
        uuidv7(),
        now(),
      );
    } catch (err) {
      // another step holds the instance now: not an attempt of ours
      await uncountAttempt(deps.db, spent.inboxId).catch(() => {});
      throw err;
    }
    return { outcome: { kind: 'stepped', applied: 1, status: 'error' }, more: true, out: emptyOutput() };
  }


  const runner: StepRunner = {
    startNew,
    stepAccepted,
    async run(instanceId, opts) {
      let last: StepOutcome = { kind: 'idle' };
      // Bounded: a flood of events for one instance must not starve the others;
      // after a few rounds we ring again and go back to the queue.
      for (let i = 0; i < 5; i++) {
        // after a possible crash, the first round is the quarantine's (its event alone, counted);
        // when it finds nothing to do, or fails cleanly, the ordinary round runs
        let r = (i === 0 && opts?.suspect && maxStepAttempts > 0 ? await suspectRound(instanceId) : null) ?? (await round(instanceId));
        // an event whose attempts are spent: counted once more, it is set aside (or, if another step took it meanwhile, nothing)
        if (r.outcome.kind === 'spent') r = (await suspectRound(instanceId)) ?? { outcome: { kind: 'idle' }, more: false, out: emptyOutput() };
        last = r.outcome;
        await ringAfterCommit(instanceId, r.out);
        if (last.kind === 'locked') {
          // Someone else is stepping this instance right now. Ring again shortly:
          // it may have read the inbox before our event was committed.
          await stepQueue.add({ instanceId, swept: true }, { delayMs: 25 + Math.floor(Math.random() * 50) });
          return last;
        }
        if (last.kind === 'deferred') {
          // too big for this runner (the API's): a step worker takes it, in batches
          await stepQueue.add({ instanceId });
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
