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
 *   every outgoing flow.
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
 * - serviceTask: input parameters evaluated (literals as is, expressions over
 *   the visible variables; failure → `input_error` incident), then
 *   `serviceJobCreated` and the token waits. `serviceJobCompleted` writes the
 *   job's variables into `resultVariable` as one object when the model names
 *   one, else merges them like a user task. `serviceJobFailed` →
 *   `service_failed` incident; `serviceJobBpmnError` → `unhandled_bpmn_error`
 *   incident (no boundary events yet).
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
 * ## Extending
 *
 * Element behaviours live in the `behaviours` dispatch table (behaviours.ts),
 * keyed by element type. Cancellation of a token (and of everything hanging
 * off it) is one function, `Run.cancelToken`, ready for interrupting boundary
 * events; scopes are instances with a parent token, ready for multi-instance
 * bodies, event subprocesses and call activities.
 */
import { BatonError, type JsonObject } from '../errors.js';
import type { ProcessGraph } from '../bpmn/types.js';
import { behaviours } from './behaviours.js';
import { Run, describeFailure } from './run.js';
import { fireTrigger, openEventSubProcessTriggers, throwError, throwEscalation } from './events.js';
import type { EngineContext, EngineEvent, InstanceState, StepResult, Token } from './types.js';

export type * from './types.js';
export { DEFAULT_MAX_ELEMENT_EXECUTIONS } from './run.js';

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
  if (!rootGraphScope || !startEvent || startEvent.type !== 'startEvent' || startEvent.scopeId !== graph.rootScopeId) {
    throw new BatonError(
      'invalid_start_event',
      event.startEventId === undefined
        ? `process '${graph.key}' has no none start event: name one of its start events (${rootGraphScope?.startEventIds.join(', ') ?? ''})`
        : `'${startEventId ?? ''}' is not a start event of process '${graph.key}'`,
    );
  }

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
        variables: structuredClone(event.variables ?? {}),
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
    data: { startEventId: startEvent.id },
  });
  openEventSubProcessTriggers(run, rootScopeId);
  run.newToken(startEvent.id, rootScopeId);
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
      run.writeVariables(token.scopeId, structuredClone(event.variables ?? {}));
      run.emit({ type: 'humanTaskClosed', taskId: event.taskId, state: 'completed' });
      run.resumeToLeave(token);
      break;
    }
    case 'serviceJobCompleted': {
      const token = findJobToken(run, event.jobId);
      if (!token) return ignored(state);
      const element = run.element(token.elementId);
      const variables = structuredClone(event.variables ?? {});
      const resultVariable = element.type === 'serviceTask' ? element.service.resultVariable : null;
      run.writeVariables(token.scopeId, resultVariable !== null ? { [resultVariable]: variables } : variables);
      run.resumeToLeave(token);
      break;
    }
    case 'serviceJobFailed': {
      const token = findJobToken(run, event.jobId);
      if (!token) return ignored(state);
      run.incident(token, 'service_failed', event.message);
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
          out[m.target] = /^[A-Za-z_$][\w$]*$/.test(m.source) ? (childVars[m.source] ?? null) : ctx.evaluator.expression(m.source, childVars);
        } catch (err) {
          run.incident(token, 'output_error', `output mapping '${m.target}' failed: ${describeFailure(err).message}`);
          run.advance();
          return run.result();
        }
      }
      delete token.wait;
      run.writeVariables(token.scopeId, out);
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
  }
  run.advance();
  return run.result();
}

function findChildToken(run: Run, childId: string): Token | undefined {
  const found = run.rawTokens().find(
    (t) => t.state === 'waiting' && t.wait?.kind === 'callActivity' && (t.wait.childId === childId || t.id === childId),
  );
  return found ? run.state.tokens[found.id] : undefined;
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
