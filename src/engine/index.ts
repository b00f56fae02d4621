/**
 * The Baton interpreter: pure functions (graph, state, event, ctx) → (state, effects).
 *
 * ## Execution model
 *
 * - A token sits on one element of one scope instance (the process, or one run
 *   of an embedded subprocess). Token ids come from `ctx.newId()`, timestamps
 *   from `ctx.now()`; nothing else is read, so the same inputs and the same ctx
 *   sequence give the same output.
 * - After every input the engine advances: ready tokens run depth first, like
 *   Camunda 7 executions: a token runs until it waits (human task, service
 *   job, child scope), joins, gets an incident, or is consumed; the tokens it
 *   made ready on the way (forked branches, a child scope's first token, the
 *   parent token of a finished child scope) run next, in creation order.
 * - At most `ctx.maxElementExecutions` (default 10,000) element executions
 *   happen in one call; every token that would execute past that gets a
 *   `step_limit` incident instead (a loop in the model without a wait state).
 * - The returned state holds only live things: active tokens, live scopes (the
 *   root scope always, as it carries the process variables), open incidents.
 *   History leaves as `history` effects.
 * - The caller's state is never changed: a Run sees it through a
 *   copy-on-write view (only the tokens and scopes an event touches are
 *   copied), unless `ctx.inPlace` hands the state over to be changed directly.
 *
 * ## Flow semantics (Camunda 7 where BPMN leaves a choice)
 *
 * - Activities and events leaving by several flows: every unconditional flow is
 *   taken (implicit parallel split), every conditional flow whose condition
 *   holds is taken, the default flow only when no condition held (BPMN). All
 *   conditional and no default, none holds → `no_matching_flow` incident. No
 *   outgoing flow at all → implicit end of the token.
 * - Several incoming flows into an activity or exclusive gateway: each arrival
 *   executes it again (implicit exclusive merge).
 * - Exclusive gateway: first condition that holds, in document order of the
 *   flows; else the default flow; else `no_matching_flow`. A condition that
 *   throws → `condition_error` (message and line from the ExpressionError).
 * - Parallel gateway: joins per scope instance, one token per incoming flow
 *   (extra tokens on a satisfied flow wait for the next round), then forks on
 *   every outgoing flow. A join that waits for a flow no live token of its
 *   scope instance can reach any more (an exclusive split feeding it, a branch
 *   that ended elsewhere, a leftover token of an earlier round) gets a
 *   `join_cannot_fire` incident naming the gateway and the flows, instead of
 *   leaving the instance silently waiting.
 * - Inclusive gateway: forks like an activity (every true condition, the
 *   default only when none holds, none and no default → `no_matching_flow`).
 *   The join (several incoming flows) follows BPMN 2.0 §13.4.3: it fires when
 *   at least one incoming flow has a token and no live token of the same
 *   scope instance can still reach an incoming flow without a token while it
 *   cannot reach one with a token (the gateway's precomputed `reach`: which
 *   incoming flows each element can reach without passing through the
 *   gateway, over flows, boundary events and links; a token in a nested scope
 *   counts as its ancestor token in this scope; a token about to execute the
 *   gateway counts as on the flow it arrives by). It consumes one token per
 *   incoming flow that has one, the earliest there; a second token on the same
 *   flow is a later activation of its own (Camunda 7/8 merge every waiting
 *   token into one, losing it). The check runs on arrival and again whenever
 *   the engine settles, so a branch that ends elsewhere releases the join.
 * - Event-based gateway: the token waits on the gateway while a trigger is
 *   open for every catch event / receive task after it; the first to fire
 *   wins, the others are closed in the same step (timerCancelled /
 *   subscriptionClosed), and the token passes the winning event.
 * - Link throw → the link catch of the same name in the same scope.
 *
 * ## Element semantics
 *
 * - scriptTask: `evaluator.script(source, visible variables)`; every assigned
 *   name is written where it already lives (innermost enclosing scope that has
 *   it), else created in the token's scope. Failure → incident with the
 *   ExpressionError's code (`script_error`, `script_timeout`, `script_memory`, …)
 *   and line; the token stays on the task.
 * - spiffworkflow preScript/postScript run like script tasks before an
 *   activity's behaviour / when it completes, before leaving.
 * - userTask / manualTask: `humanTaskOpened` (kind user/manual), the token
 *   waits. `humanTaskCompleted` with the open task's id merges its variables
 *   (same rule as scripts), emits `humanTaskClosed` completed and continues.
 *   Unknown or already-closed task ids are ignored (`ignored: true`).
 * - scriptTask with camunda:resultVariable: the script (one expression,
 *   checked at deploy) is evaluated and its value written to that variable.
 * - Input/output parameters (camunda:inputOutput, zeebe:ioMapping; Camunda 7's
 *   IoMapping): when an element starts (each instance of a loop activity,
 *   after its boundary events are armed, before a preScript), its inputs are
 *   evaluated (Camunda: each over the scope around the element; Zeebe: also
 *   over the inputs before it; failure → `input_error`, a retry starts over)
 *   into a local scope instance of the token (`Token.localScopeId`, a
 *   ScopeInstance marked `activityLocal`). The element's scripts, task
 *   instructions, job input and outputs read through it
 *   (`Run.variableScope`), and an embedded subprocess's content sees it (a
 *   call activity's in-mappings and an event's timer, correlation key and
 *   payload do not yet: they read the scope around the element). Writes through it update a local only when the name is an input;
 *   any other name goes where it would without the locals (Camunda: only
 *   input parameters are local). A task completion or job result with a Zeebe
 *   mapping that has outputs stays local instead (Zeebe). When the element
 *   completes (after a postScript, before the outgoing conditions), the
 *   outputs are evaluated one by one over the locals and everything visible
 *   and written to the scope the element lives in (failure → `output_error`
 *   at leaving), then the locals are dropped. An interrupted or cancelled
 *   element maps no outputs (the behaviour Camunda's InputOutputTest expects
 *   in its ignored boundary-event tests).
 * - serviceTask: the job input is the task's input parameters (their values
 *   in the local scope) plus spiffworkflow parameters, evaluated over the
 *   visible variables (failure → `input_error` incident), then
 *   `serviceJobCreated` and the token waits. `serviceJobCompleted` writes the
 *   job's variables into `resultVariable` as one object when the model names
 *   one, else merges them like a user task (through the locals, see above). `serviceJobFailed` →
 *   `service_failed` incident; `serviceJobBpmnError` throws a BPMN error from
 *   the task (see Events). Business rule tasks with a task type are service
 *   tasks.
 * - sendTask: `messageThrown` (name, evaluated correlation key, the visible
 *   variables), then leaves; message throw and end events do the same, signal
 *   throw/end events emit `signalThrown`. receiveTask: waits like a message
 *   catch event.
 * - userTask: spiffworkflow instructionsForEndUser is rendered (`{{ a.b }}`,
 *   missing → empty) with the variables the task sees when it opens.
 * - task, none intermediate throw event (milestone), none start event: pass
 *   through, with element_started/element_completed in history.
 * - subProcess (embedded): a child scope instance; the parent token waits
 *   `{kind:'subprocess'}` while a token runs from the subprocess's none start.
 *   Inside, variables are the child scope over the parent chain. When no
 *   token is left in the child scope, its local variables are merged into the
 *   parent scope (SpiffArena: outputs of an embedded subprocess are visible
 *   after it), the scope is removed and the parent token leaves the subprocess.
 * - endEvent none: the token is consumed; the root scope without tokens →
 *   `completed`. Terminate end event: every other token of its scope and of
 *   nested scopes is cancelled (human tasks closed as cancelled, service jobs
 *   cancelled, history element_cancelled); inside a subprocess the subprocess
 *   then completes normally (Camunda 7); at top level the instance ends as
 *   `terminated`.
 * - `cancel` event: like a top-level terminate; history instance_terminated.
 *   Cancelling a token cancels what hangs off it: child scopes, human task,
 *   service job, child instance (childInstanceCancelled), its triggers.
 *
 * ## Events (events.ts)
 *
 * - Waits on the outside world are triggers (`state.triggers`): timers
 *   (timerScheduled / timerFired / timerCancelled), message and signal
 *   subscriptions (subscriptionOpened / messageReceived, signalReceived /
 *   subscriptionClosed) and watched conditions (subscriptionOpened kind
 *   conditional, never answered from outside). A trigger that fires and is
 *   used up is dropped without an effect; one withdrawn is closed with one.
 *   Unknown or stale ids are `ignored`.
 * - Message/signal payload variables are written like task results, where
 *   the catching element lives (event subprocess: in its own scope, merged
 *   into the parent when it ends).
 * - Timers: `=expr` and `${expr}` are evaluated when the timer is scheduled,
 *   literals may be quoted. A cycle (`R3/PT10M`, `R/<start>/P1D`, cron in UTC)
 *   is due at its next occurrence; `cycle.remaining` counts repetitions left
 *   after this one (null = unbounded). A failing expression → `timer_error`
 *   incident; a failing correlation key → `correlation_key_error`.
 * - Conditional events are evaluated when the step settles after variables
 *   changed (and at once after an event brought variables in, before any
 *   token moves on, so a task completion that makes a condition true
 *   interrupts it on its way out, as in Camunda), and right after they open.
 *   A failing condition is an incident on a waiting catch event and counts as
 *   false on boundary events and event subprocess starts.
 * - Boundary events: their triggers open when the activity starts (for a loop,
 *   when the loop body starts) and close when it leaves or is cancelled.
 *   Interrupting: the activity is cancelled with everything inside, then the
 *   boundary event's token leaves by its flows. Non-interrupting: a token is
 *   added beside the activity; messages, signals and conditions stay open and
 *   may fire again, a cycle timer is rescheduled (new timer id) until its
 *   repetitions are used up, other timers fire once.
 * - Errors (error end event, serviceJobBpmnError, childFailed kind error) and
 *   escalations (throw/end events, childFailed kind escalation) look for a
 *   catcher from the thrower outwards: the thrower's own boundary events (for
 *   an activity), then per scope the event subprocesses of that scope, then
 *   the boundary events of the activity owning the scope. At each level the
 *   exact code wins over a catch-all. An event subprocess does not catch what
 *   is thrown inside itself. Error: always interrupting; the thrown-into
 *   scope is cancelled including the thrower (a throwing end event is
 *   recorded as completed first). Uncaught error → `unhandled_bpmn_error`
 *   incident on the thrower; in a called instance the child instead ends as
 *   terminated and sends `childFailed` kind error to its parent (Camunda 8
 *   propagates uncaught errors to the call activity). Uncaught escalation →
 *   nothing (Camunda), but a called instance reports it to its parent as
 *   `childFailed` kind escalation and goes on. A catching error event's
 *   camunda:errorCodeVariable / errorMessageVariable receive the code and
 *   message (boundary: in the activity's scope; event subprocess: in its own).
 * - Event subprocesses: the start triggers of a scope's event subprocesses
 *   (timer, message, signal, conditional) open when the scope instance is
 *   created (instance start, subprocess entered) and close when it ends.
 *   Error/escalation starts are found by the throw search. Interrupting:
 *   every token of the scope is cancelled and the scope's other event
 *   subprocess triggers are closed; the scope completes when the event
 *   subprocess does (Camunda). Non-interrupting: runs beside the scope; the
 *   scope completes when its last token (of either) is gone. The event
 *   subprocess sees and writes its parent scope's variables.
 *
 * ## Loops (loops.ts)
 *
 * - Multi-instance: the token becomes the loop body (`wait: loop`, counters in
 *   `token.loop`); every instance runs in its own scope instance holding the
 *   input element and `loopCounter` (1-based). Instance scopes are local: what
 *   an instance creates is dropped when it ends, except its output element,
 *   which goes to position `loopCounter - 1` of the output collection (null
 *   for instances that never completed); existing outer variables are updated
 *   in place. The completion condition sees the variables plus
 *   `nrOfInstances`, `nrOfActiveInstances`, `nrOfCompletedInstances`,
 *   `loopCounter` and the output collection so far; when it holds the other
 *   instances are cancelled. The output collection is written to the body's
 *   scope when the loop ends. An empty collection skips the activity. Boundary
 *   events belong to the body, pre/postScripts to each instance. Instances
 *   of a multi-instance do not count towards the step limit (they are
 *   bounded by the collection).
 * - State stays O(active): finished instances leave only counters and their
 *   output; a sequential multi-instance also keeps its input items. Each
 *   event copies only the tokens/scopes it touches (copy-on-write, run.ts).
 * - Standard loop: the same body/instance shape, one iteration at a time;
 *   what an iteration creates stays (merged into the body's scope) for the
 *   loop condition and the next iteration; test before/after, loopMaximum.
 *
 * ## Call activities
 *
 * - The token waits `{kind:'callActivity', childId}` and the engine emits
 *   `childInstanceStarted` (variables: all visible ones, or the mapped ones).
 *   `childCompleted` writes the child's variables back (all, or mapped) and
 *   leaves; `childFailed` kind error/escalation is thrown from the call
 *   activity (its boundary events first), kind incident → `child_incident`;
 *   `childTerminated` → `child_terminated` incident.
 * - A called instance (start event with `parent`) ends with `parentNotified`:
 *   childCompleted with its final variables (also after a terminate end
 *   event: the call activity completes, Camunda 7), childTerminated when
 *   cancelled, childFailed for an uncaught error (see above). It names itself
 *   by `parent.childId`, or by `parent.tokenId` when the runtime gave no
 *   childId; the parent accepts both.
 *
 * ## Compensation and transactions (compensation.ts)
 *
 * - An activity with a compensation boundary event leaves a record (activity,
 *   handler, the variables visible to it when it completed) in the scope
 *   instance it completed in; every instance of a multi-instance leaves one.
 *   Nothing else is recorded. A completed subprocess hands its records to its
 *   parent scope; records of a cancelled scope are dropped; all go with the
 *   instance. So the bookkeeping is bounded by the completed compensable
 *   activities of live scopes.
 * - A compensation throw (intermediate or end event) compensates the records
 *   of its own scope instance, all or those of `activityRef`, in reverse
 *   completion order, one handler at a time (the thrower waits, Camunda 8).
 *   Each handler runs in a child scope holding the snapshot; what it creates
 *   or changes (compared with the snapshot) is written back to the thrower's
 *   scope. Compensated records are removed (a second throw does nothing).
 * - Transaction: a cancel end event cancels the other tokens of the
 *   transaction, compensates the transaction's records, then cancels the
 *   transaction and starts its cancel boundary event.
 *
 * ## Data objects
 *
 * A bpmn:dataObject is a variable (named by its id, null until written) of
 * the scope instance it is declared in, so every task inside reads it and
 * writes it there (SpiffArena's data objects); data associations need no
 * further handling.
 *
 * ## Status and incidents
 *
 * After every call: `completed`/`terminated` when ended, else `error` while an
 * incident is open, else `waiting`. Events on an ended instance are ignored.
 * Incidents go into `state.incidents` and out as `incidentOpened`; cancelling a
 * token resolves its incidents (`incidentResolved`). A token in state
 * 'incident' can later be retried by executing its element again, or — when
 * `resumeAt === 'leave'` — by re-running only the leaving step.
 *
 * ## Operator controls (operator.ts)
 *
 * `retryIncident` runs the stopped token again; `setVariables` writes
 * variables while the instance waits; `reset` withdraws every token and starts
 * one at a chosen element. Each is ignored when it no longer applies (the
 * incident was resolved meanwhile, the scope is gone); the API checks first
 * with the exported `…Problem` functions to answer 4xx instead.
 *
 * ## Extending
 *
 * Element behaviours live in the `behaviours` dispatch table (behaviours.ts),
 * keyed by element type. Cancellation of a token (and of everything hanging
 * off it) is one function, `Run.cancelToken`. Scopes are instances with a
 * parent token (subprocess runs, loop instances, event subprocess runs).
 * Not supported yet (rejected at deploy time): complex gateways, ad-hoc
 * subprocesses, multiple/parallel-multiple events, DMN business rule tasks,
 * compensation of a completed subprocess's inner activities from outside it
 * as a unit (its records are flattened into the parent scope instead).
 */
import { BatonError, type JsonObject } from '../errors.js';
import type { ProcessGraph } from '../bpmn/types.js';
import { behaviours } from './behaviours.js';
import { Run, describeFailure } from './run.js';
import { fireTrigger, openEventSubProcessTriggers, throwError, throwEscalation } from './events.js';
import { resetInstance, retryIncident, setVariables } from './operator.js';
import type { EngineContext, EngineEvent, InstanceState, StepResult, Token } from './types.js';

export type * from './types.js';
export { DEFAULT_MAX_ELEMENT_EXECUTIONS } from './run.js';
export { incidentRetryProblem, resetTargetProblem, setVariablesProblem } from './operator.js';

/**
 * Starts an instance at the root scope's none start event (or at
 * `event.startEventId`, which must be a none start event of the root scope:
 * anything else is a caller error and throws `invalid_start_event`).
 */
export function startInstance(
  graph: ProcessGraph,
  event: Extract<EngineEvent, { type: 'start' }>,
  ctx: EngineContext,
): StepResult {
  const rootGraphScope = graph.scopes[graph.rootScopeId];
  const startEventId = event.startEventId ?? rootGraphScope?.noneStartEventId;
  const startEvent = startEventId ? graph.elements[startEventId] : undefined;
  // no start event at all: every element nothing leads to starts (GraphScope.implicitStartIds)
  const implicit = event.startEventId === undefined && !startEvent ? (rootGraphScope?.implicitStartIds ?? []) : [];
  if (!rootGraphScope || (implicit.length === 0 && (!startEvent || startEvent.type !== 'startEvent' || startEvent.scopeId !== graph.rootScopeId))) {
    throw new BatonError(
      'invalid_start_event',
      event.startEventId === undefined
        ? `process '${graph.key}' has no none start event: name one of its start events (${rootGraphScope?.startEventIds.join(', ') ?? ''})`
        : `'${startEventId ?? ''}' is not a start event of process '${graph.key}'`,
    );
  }

  // a called process with an ioSpecification gets only its data inputs, and each must be set (SpiffWorkflow)
  const dataInputs = event.parent ? (graph.ioSpecification?.inputs ?? []) : [];
  const given = event.variables ?? {};
  const missingInput = dataInputs.find((name) => !Object.hasOwn(given, name));
  const variables = dataInputs.length > 0 ? Object.fromEntries(dataInputs.filter((n) => Object.hasOwn(given, n)).map((n) => [n, given[n] ?? null])) : given;

  const rootScopeId = ctx.newId();
  const state: InstanceState = {
    v: 1,
    status: 'running',
    rootScopeId,
    tokens: {},
    scopes: {
      [rootScopeId]: {
        id: rootScopeId,
        elementId: graph.key,
        parentScopeId: null,
        parentTokenId: null,
        variables: structuredClone(variables),
      },
    },
    incidents: [],
  };
  if (event.parent) state.parent = { ...event.parent };
  const run = new Run(graph, state, ctx, behaviours);
  run.history('instance_started', {
    elementId: graph.key,
    elementType: 'process',
    scopeId: rootScopeId,
    data: startEvent ? { startEventId: startEvent.id } : { implicitStart: [...implicit] },
  });
  if (missingInput !== undefined && event.parent) {
    // the caller's call activity gets the incident; this instance never starts
    const parent = event.parent;
    const message = `data input '${missingInput}' of process '${graph.key}' is not set`;
    run.emit({ type: 'parentNotified', parentInstanceId: parent.instanceId, event: { type: 'childFailed', childId: parent.childId ?? parent.tokenId, errorCode: 'data_input_missing', message, kind: 'incident' } });
    run.endInstance('terminated', 'instance_terminated', { reason: message }, 'none');
    return run.result();
  }
  run.declareDataObjects(rootScopeId);
  openEventSubProcessTriggers(run, rootScopeId);
  if (startEvent) run.newToken(startEvent.id, rootScopeId);
  else for (const id of implicit) run.newToken(id, rootScopeId);
  run.advance();
  return run.result();
}

/** Applies one inbox event to a started instance. */
export function applyEvent(graph: ProcessGraph, state: InstanceState, event: EngineEvent, ctx: EngineContext): StepResult {
  if (state.status === 'completed' || state.status === 'terminated' || event.type === 'start') {
    return { state, effects: [], ignored: true };
  }
  const run = new Run(graph, state, ctx, behaviours);

  switch (event.type) {
    case 'humanTaskCompleted': {
      const token = run.findWaitingToken((w) => w.kind === 'humanTask' && w.taskId === event.taskId);
      if (!token) return ignored(state);
      run.writeResultVariables(token, structuredClone(event.variables ?? {}));
      run.emit({ type: 'humanTaskClosed', taskId: event.taskId, state: 'completed' });
      run.resumeToLeave(token);
      break;
    }
    case 'serviceJobCompleted': {
      const token = findJobToken(run, event.jobId);
      if (!token) return ignored(state);
      const element = run.element(token.elementId);
      const variables = structuredClone(event.variables ?? {});
      const resultVariable = element.type === 'serviceTask' ? (element.service?.resultVariable ?? null) : null;
      run.writeResultVariables(token, resultVariable !== null ? { [resultVariable]: variables } : variables);
      run.resumeToLeave(token);
      break;
    }
    case 'serviceJobFailed': {
      const token = findJobToken(run, event.jobId);
      if (!token) return ignored(state);
      run.incident(token, 'service_failed', event.message, undefined, false, event.attempts !== undefined ? { attempts: event.attempts } : {});
      break;
    }
    case 'serviceJobBpmnError': {
      const token = findJobToken(run, event.jobId);
      if (!token) return ignored(state);
      // the job is over: cancelling the task must not cancel it again
      delete token.wait;
      throwError(run, token, event.errorCode, event.message ?? '', false);
      break;
    }
    case 'cancel':
      run.cancelInstance(event.reason);
      break;
    case 'timerFired': {
      const trigger = state.triggers?.[event.timerId];
      if (!trigger || trigger.kind !== 'timer') return ignored(state);
      if (!fireTrigger(run, run.triggers[event.timerId] ?? trigger, {})) return ignored(state);
      break;
    }
    case 'messageReceived':
    case 'signalReceived': {
      const trigger = state.triggers?.[event.subscriptionId];
      const kind = event.type === 'messageReceived' ? 'message' : 'signal';
      if (!trigger || trigger.kind !== kind) return ignored(state);
      if (!fireTrigger(run, run.triggers[event.subscriptionId] ?? trigger, structuredClone(event.variables ?? {}))) return ignored(state);
      // a signal leaves its subscription row in place (a broadcast consumes nothing): close a used-up one
      if (kind === 'signal' && !run.state.triggers?.[event.subscriptionId]) run.emit({ type: 'subscriptionClosed', subscriptionId: event.subscriptionId });
      break;
    }
    case 'childCompleted': {
      const token = findChildToken(run, event.childId);
      if (!token) return ignored(state);
      const element = run.element(token.elementId);
      if (element.type !== 'callActivity') return ignored(state);
      const childVars = structuredClone(event.variables);
      const out: JsonObject = element.outputAll ? childVars : {};
      for (const m of element.outputs) {
        try {
          out[m.target] = /^[A-Za-z_$][\w$]*$/.test(m.source) ? (childVars[m.source] ?? null) : run.ctx.evaluators('javascript').expression(m.source, childVars); // camunda:out: Camunda's dialect, evaluated as JavaScript
        } catch (err) {
          run.incident(token, 'output_error', `output mapping '${m.target}' failed: ${describeFailure(err).message}`);
          run.advance();
          return run.result();
        }
      }
      delete token.wait;
      // through the call activity's locals, like a task result (its output parameters then map them on)
      run.writeResultVariables(token, out);
      run.resumeToLeave(token);
      break;
    }
    case 'childFailed': {
      const token = findChildToken(run, event.childId);
      if (!token) return ignored(state);
      if (event.kind === 'error') {
        // the child has ended: interrupting the call activity must not cancel it again
        delete token.wait;
        throwError(run, token, event.errorCode, event.message, false);
      } else if (event.kind === 'escalation') {
        throwEscalation(run, token, event.errorCode, false);
      } else {
        run.incident(token, 'child_incident', `called instance '${event.childId}' has an incident: ${event.message}`);
      }
      break;
    }
    case 'childTerminated': {
      const token = findChildToken(run, event.childId);
      if (!token) return ignored(state);
      delete token.wait;
      run.incident(token, 'child_terminated', `called instance '${event.childId}' was terminated`);
      break;
    }
    case 'retryIncident':
      if (!retryIncident(run, event.incidentId)) return ignored(state);
      break;
    case 'setVariables':
      if (!setVariables(run, event.variables, event.scopeId)) return ignored(state);
      break;
    case 'reset':
      if (!resetInstance(run, event.elementId)) return ignored(state);
      break;
  }
  run.advance();
  return run.result();
}

function findChildToken(run: Run, childId: string): Token | undefined {
  return run.findToken(
    (t) => t.state === 'waiting' && t.wait?.kind === 'callActivity' && (t.wait.childId === childId || t.id === childId),
  );
}

function findJobToken(run: Run, jobId: string): Token | undefined {
  return run.findWaitingToken((w) => w.kind === 'serviceJob' && w.jobId === jobId);
}

function ignored(state: InstanceState): StepResult {
  return { state, effects: [], ignored: true };
}

/** Element ids of all live tokens (waiting, joining, in incident), sorted, duplicates kept. */
export function activeElementIds(state: InstanceState): string[] {
  return Object.values(state.tokens)
    .map((t) => t.elementId)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The root scope's variables (the process variables), as a copy. */
export function processVariables(state: InstanceState): JsonObject {
  return structuredClone(state.scopes[state.rootScopeId]?.variables ?? {});
}
