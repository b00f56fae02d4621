/**
 * Events: triggers (timers, message/signal subscriptions, watched conditions)
 * and what happens when they fire; throwing errors, escalations, messages and
 * signals; starting event subprocesses. See the semantics notes in index.ts.
 */
import type { Json, JsonObject } from '../errors.js';
import type {
  BoundaryEventElement,
  TimerDefinition,
  EventDefinition,
  GraphElement,
  StartEventElement,
  SubProcessElement,
} from '../bpmn/types.js';
import { addDuration, cycleIntervalMs, nextCycleDue, parseCycle, parseDate, parseDuration } from '../bpmn/timer.js';
import { stripQuotes } from '../bpmn/readers.js';
import { describeFailure, type Run } from './run.js';
import type { Incident, ScopeInstance, Token, Trigger } from './types.js';

type TriggerDefinition = Extract<EventDefinition, { kind: 'timer' | 'message' | 'signal' | 'conditional' }>;

function isTriggerDefinition(def: EventDefinition | null): def is TriggerDefinition {
  return def !== null && (def.kind === 'timer' || def.kind === 'message' || def.kind === 'signal' || def.kind === 'conditional');
}

/** Opens an incident that belongs to a token when there is one, else to the element alone. */
function failure(run: Run, token: Token | null, elementId: string, code: string, message: string): void {
  if (token) {
    run.incident(token, code, message);
    return;
  }
  const incident: Incident = { id: run.ctx.newId(), code, message, elementId, tokenId: null, createdAt: run.ctx.now().toISOString() };
  run.state.incidents.push(incident);
  run.emit({ type: 'incidentOpened', incident });
  run.history('incident', { elementId, data: { incidentId: incident.id, code, message } });
}

/**
 * The text of a timer: its literal, or what its expression gives when the
 * timer is armed (a string, quotes around it removed; a JavaScript Date
 * arrives as its ISO string).
 */
function timerText(run: Run, timer: TimerDefinition, scopeId: string, elementId: string): string {
  if (timer.literal) return timer.expression;
  const result = run.evaluator(elementId).expression(timer.expression, run.evalVariables(scopeId));
  if (typeof result !== 'string') {
    throw new Error(`expression '${timer.expression}' gave ${result === null ? 'null' : typeof result === 'object' ? (Array.isArray(result) ? 'an array' : 'an object') : `the ${typeof result} ${String(result)}`}, not an ISO 8601 text`);
  }
  return stripQuotes(result);
}

interface TimerPlan {
  dueAt: string;
  cycle: { expression: string; remaining: number | null } | null;
  expression: string;
}

export function planTimer(run: Run, def: Extract<EventDefinition, { kind: 'timer' }>, scopeId: string, elementId: string): TimerPlan {
  const now = run.ctx.now();
  const expression = timerText(run, def.timer, scopeId, elementId);
  if (def.timer.kind === 'date') {
    const d = parseDate(expression);
    if (!d) throw new Error(`'${expression}' is not an ISO 8601 date-time`);
    return { dueAt: d.toISOString(), cycle: null, expression };
  }
  if (def.timer.kind === 'duration') {
    const d = parseDuration(expression);
    if (!d) throw new Error(`'${expression}' is not an ISO 8601 duration`);
    return { dueAt: addDuration(now, d).toISOString(), cycle: null, expression };
  }
  const spec = parseCycle(expression);
  if (!spec) throw new Error(`'${expression}' is not an ISO 8601 repeating interval or cron expression`);
  const gap = def.timer.literal ? null : cycleIntervalMs(spec);
  const min = run.ctx.minTimerIntervalMs ?? 1000;
  if (gap !== null && gap < min) throw new Error(`cycle '${expression}' fires every ${gap} ms, more often than the minimum of ${min} ms (BATON_MIN_TIMER_INTERVAL_MS)`);
  const due = nextCycleDue(spec, now);
  if (!due) throw new Error(`cycle '${expression}' has no due time left`);
  return { dueAt: due.toISOString(), cycle: { expression, remaining: spec.repetitions === null ? null : spec.repetitions - 1 }, expression };
}

/**
 * Opens one trigger and emits timerScheduled / subscriptionOpened. Returns
 * false after opening an incident (a timer or correlation key expression failed).
 */
export function openTrigger(
  run: Run,
  def: TriggerDefinition,
  fields: { role: Trigger['role']; elementId: string; token: Token | null; scopeId: string },
): boolean {
  const id = run.ctx.newId();
  const tokenId = fields.token?.id ?? null;
  const base = { id, role: fields.role, elementId: fields.elementId, tokenId, scopeId: fields.scopeId };
  const subscribed = (kind: 'message' | 'signal' | 'conditional', name: string, correlationKey: string | null) =>
    run.emit({ type: 'subscriptionOpened', subscription: { id, kind, name, correlationKey, tokenId, elementId: fields.elementId } });
  try {
    switch (def.kind) {
      case 'timer': {
        const plan = planTimer(run, def, fields.scopeId, fields.elementId);
        const trigger: Trigger = { ...base, kind: 'timer', dueAt: plan.dueAt, cycle: plan.cycle };
        run.triggers[id] = trigger;
        run.emit({
          type: 'timerScheduled',
          timer: {
            id,
            tokenId,
            elementId: fields.elementId,
            dueAt: plan.dueAt,
            cycle: plan.cycle,
            definition: { kind: def.timer.kind, expression: plan.expression },
          },
        });
        return true;
      }
      case 'message': {
        let correlationKey: string | null = null;
        if (def.correlationKey !== null) {
          const v: Json = run.evaluator(fields.elementId).expression(def.correlationKey, run.evalVariables(fields.scopeId));
          correlationKey = v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
        }
        run.triggers[id] = { ...base, kind: 'message', name: def.messageName, correlationKey };
        subscribed('message', def.messageName, correlationKey);
        return true;
      }
      case 'signal':
        run.triggers[id] = { ...base, kind: 'signal', name: def.signalName };
        subscribed('signal', def.signalName, null);
        return true;
      case 'conditional':
        run.triggers[id] = { ...base, kind: 'conditional', condition: def.condition };
        subscribed('conditional', def.condition, null);
        // evaluated when the step settles (and after every later variable change)
        run.conditionsDirty = true;
        return true;
    }
  } catch (err) {
    const f = describeFailure(err);
    const code = def.kind === 'timer' ? 'timer_error' : 'correlation_key_error';
    failure(run, fields.token, fields.elementId, code, `${def.kind} of '${fields.elementId}' could not be set up: ${f.message}`);
    return false;
  }
}

export function closeTrigger(run: Run, t: Trigger): void {
  if (!run.state.triggers?.[t.id]) return;
  delete run.state.triggers[t.id];
  if (t.kind === 'timer') run.emit({ type: 'timerCancelled', timerId: t.id });
  else run.emit({ type: 'subscriptionClosed', subscriptionId: t.id });
}

/** Forgets a trigger that fired and is used up (no effect: the runtime consumed it). */
function consumeTrigger(run: Run, t: Trigger): void {
  if (run.state.triggers) delete run.state.triggers[t.id];
}

/** Boundary timers/messages/signals/conditions of an activity its token starts. Returns false after an incident. */
export function openBoundaryTriggers(run: Run, token: Token, element: GraphElement): boolean {
  // a retried activity starts its boundary events afresh
  run.closeTriggers((t) => t.tokenId === token.id && t.role === 'boundary');
  for (const id of element.boundaryEventIds) {
    const b = run.element(id);
    if (b.type !== 'boundaryEvent' || !isTriggerDefinition(b.eventDefinition)) continue;
    if (!openTrigger(run, b.eventDefinition, { role: 'boundary', elementId: b.id, token, scopeId: token.scopeId })) return false;
  }
  return true;
}

/** Start triggers of the event subprocesses of a new scope instance (process or subprocess run). */
export function openEventSubProcessTriggers(run: Run, scopeId: string): void {
  const scope = run.state.scopes[scopeId];
  if (!scope || scope.loopInstance) return;
  const graphScope = run.graph.scopes[scope.elementId];
  for (const espId of graphScope?.eventSubProcessIds ?? []) {
    const start = espStart(run, espId);
    if (start && isTriggerDefinition(start.eventDefinition)) {
      openTrigger(run, start.eventDefinition, { role: 'eventSubProcess', elementId: start.id, token: null, scopeId });
    }
  }
}

function espStart(run: Run, espId: string): StartEventElement | null {
  const startId = run.graph.scopes[espId]?.startEventIds[0];
  const start = startId !== undefined ? run.graph.elements[startId] : undefined;
  return start?.type === 'startEvent' ? start : null;
}

/** Opens the trigger(s) a waiting catch event / receive task needs. */
export function waitForEvent(run: Run, token: Token, def: TriggerDefinition, role: 'catch' | 'gateway', elementId: string): boolean {
  // timers, correlation keys and conditions of a catch see its input parameters (Camunda 7)
  return openTrigger(run, def, { role, elementId, token, scopeId: run.variableScope(token) });
}

/** Conditions of every conditional trigger, after a step changed variables. */
export function evaluateConditionalTriggers(run: Run): void {
  const conditionals = Object.values(run.state.triggers ?? {}).filter((t) => t.kind === 'conditional');
  for (const t of conditionals) {
    if (!run.state.triggers?.[t.id]) continue; // closed by an earlier firing
    let holds: boolean;
    try {
      holds = run.evaluator(t.elementId).condition(t.condition ?? 'false', run.evalVariables(t.scopeId));
    } catch (err) {
      // A failing condition of a waiting catch event is an incident; on boundary
      // events and event subprocess starts it counts as "does not hold".
      const token = t.tokenId !== null ? run.state.tokens[t.tokenId] : undefined;
      if (token && (t.role === 'catch' || t.role === 'gateway')) {
        closeTrigger(run, t);
        run.incident(token, 'condition_error', `condition of '${t.elementId}' failed: ${describeFailure(err).message}`);
      }
      continue;
    }
    if (holds) fireTrigger(run, t, {});
  }
}

/**
 * A trigger fired (timerFired, messageReceived, signalReceived, a condition
 * became true). Returns false when it no longer applies.
 */
export function fireTrigger(run: Run, t: Trigger, variables: JsonObject): boolean {
  const token = t.tokenId !== null ? run.state.tokens[t.tokenId] : undefined;
  switch (t.role) {
    case 'catch': {
      if (!token) return false;
      consumeTrigger(run, t);
      run.closeTriggers((o) => o.tokenId === token.id);
      run.writeVariables(token.scopeId, variables);
      run.resumeToLeave(token);
      return true;
    }
    case 'gateway': {
      if (!token) return false;
      consumeTrigger(run, t);
      run.closeTriggers((o) => o.tokenId === token.id);
      const gateway = run.element(token.elementId);
      const flowId = gateway.outgoing.find((f) => run.graph.flows[f]?.targetId === t.elementId);
      run.history('element_completed', { elementId: gateway.id, elementType: gateway.type, tokenId: token.id, scopeId: token.scopeId });
      if (flowId !== undefined) {
        run.history('flow_taken', {
          elementId: flowId,
          elementType: 'sequenceFlow',
          tokenId: token.id,
          scopeId: token.scopeId,
          data: { sourceId: gateway.id, targetId: t.elementId },
        });
      }
      run.writeVariables(token.scopeId, variables);
      run.jump(token, t.elementId);
      token.triggered = true;
      if (flowId !== undefined) token.arrivedVia = flowId;
      return true;
    }
    case 'boundary': {
      if (!token) return false;
      const b = run.element(t.elementId) as BoundaryEventElement;
      if (b.interrupting) {
        consumeTrigger(run, t);
        run.cancelToken(token);
      } else {
        keepOrReschedule(run, t);
      }
      const boundaryToken = run.newToken(b.id, token.scopeId);
      run.writeVariables(boundaryToken.scopeId, variables);
      return true;
    }
    case 'eventSubProcess': {
      if (!run.state.scopes[t.scopeId]) return false;
      const start = run.element(t.elementId) as StartEventElement;
      if (start.interrupting) consumeTrigger(run, t);
      else keepOrReschedule(run, t);
      startEventSubProcess(run, t.scopeId, start, variables);
      return true;
    }
  }
}

/**
 * A non-interrupting trigger that fired: messages, signals and conditions stay
 * open (they may fire again while the activity runs); a cycle timer is
 * rescheduled under a new id until its repetitions are used up; other timers
 * are done.
 */
function keepOrReschedule(run: Run, t: Trigger): void {
  if (t.kind !== 'timer') return;
  consumeTrigger(run, t);
  const cycle = t.cycle;
  if (!cycle || (cycle.remaining !== null && cycle.remaining <= 0)) return;
  const spec = parseCycle(cycle.expression);
  const due = spec ? nextCycleDue(spec, new Date(Math.max(Date.parse(t.dueAt ?? ''), run.ctx.now().getTime()))) : null;
  if (!spec || !due) return;
  const id = run.ctx.newId();
  const next: Trigger = { ...t, id, dueAt: due.toISOString(), cycle: { expression: cycle.expression, remaining: cycle.remaining === null ? null : cycle.remaining - 1 } };
  run.triggers[id] = next;
  run.emit({
    type: 'timerScheduled',
    timer: {
      id,
      tokenId: next.tokenId,
      elementId: next.elementId,
      dueAt: next.dueAt ?? '',
      cycle: next.cycle ?? null,
      definition: { kind: 'cycle', expression: cycle.expression },
    },
  });
}

/**
 * Starts an event subprocess in the scope instance `scopeId`. Interrupting:
 * every token of the scope is cancelled and the scope's other event
 * subprocess triggers are closed first (Camunda).
 */
export function startEventSubProcess(run: Run, scopeId: string, start: StartEventElement, variables: JsonObject): void {
  const esp = run.element(start.scopeId) as SubProcessElement;
  if (start.interrupting) {
    run.closeTriggers((o) => o.scopeId === scopeId && o.tokenId === null);
    run.cancelScopeContent(scopeId);
  }
  const espToken = run.newToken(esp.id, scopeId);
  run.history('element_started', { elementId: esp.id, elementType: esp.type, tokenId: espToken.id, scopeId });
  run.enterScope(espToken, esp.childScopeId, start.id, structuredClone(variables));
}

// ---- throwing -----------------------------------------------------------------

type Catcher =
  | { kind: 'boundary'; token: Token; boundary: BoundaryEventElement }
  | { kind: 'eventSubProcess'; scopeId: string; start: StartEventElement };

function matches(def: EventDefinition | null, kind: 'error' | 'escalation', code: string): 'exact' | 'all' | null {
  if (!def || def.kind !== kind) return null;
  const c = def.kind === 'error' ? def.errorCode : def.kind === 'escalation' ? def.escalationCode : null;
  if (c === null) return 'all';
  return c === code ? 'exact' : null;
}

function pick<T>(candidates: T[], defOf: (c: T) => EventDefinition | null, kind: 'error' | 'escalation', code: string): T | null {
  return (
    candidates.find((c) => matches(defOf(c), kind, code) === 'exact') ??
    candidates.find((c) => matches(defOf(c), kind, code) === 'all') ??
    null
  );
}

/**
 * Where an error or escalation thrown by `thrower` is caught: the thrower's
 * own boundary events (an activity that fails), then — scope by scope
 * outwards — the event subprocesses of the scope, then the boundary events of
 * the activity that owns the scope. At each level a catcher with the exact
 * code wins over a catch-all one.
 */
function findCatcher(run: Run, thrower: Token, kind: 'error' | 'escalation', code: string, ownBoundaries: boolean): Catcher | null {
  let t: Token | undefined = thrower;
  let checkOwn = ownBoundaries;
  while (t) {
    const el = run.element(t.elementId);
    if (checkOwn && t.loopIndex === undefined && el.boundaryEventIds.length > 0) {
      const boundaries = el.boundaryEventIds.map((id) => run.element(id)).filter((b): b is BoundaryEventElement => b.type === 'boundaryEvent');
      const b = pick(boundaries, (x) => x.eventDefinition, kind, code);
      if (b) return { kind: 'boundary', token: t, boundary: b };
    }
    const scope: ScopeInstance | undefined = run.state.scopes[t.scopeId];
    if (!scope) return null;
    const fromEventSubProcess = el.type === 'subProcess' && el.triggeredByEvent;
    if (!scope.loopInstance && !fromEventSubProcess) {
      const starts = (run.graph.scopes[scope.elementId]?.eventSubProcessIds ?? [])
        .map((id) => espStart(run, id))
        .filter((s): s is StartEventElement => s !== null);
      const s = pick(starts, (x) => x.eventDefinition, kind, code);
      if (s) return { kind: 'eventSubProcess', scopeId: scope.id, start: s };
    }
    if (scope.parentTokenId === null) return null;
    t = run.state.tokens[scope.parentTokenId];
    checkOwn = true;
  }
  return null;
}

/**
 * Throws a BPMN error. Caught: the catching boundary event's activity (or the
 * event subprocess's scope) is cancelled with everything inside, the thrower
 * included, and the catcher starts. Uncaught at the top of a called instance:
 * the child ends and its parent gets childFailed. Uncaught otherwise:
 * `unhandled_bpmn_error` incident on the thrower.
 * `throwerIsEvent`: an error end event completes before the catch (it has no
 * boundary events of its own).
 */
export function throwError(run: Run, thrower: Token, errorCode: string, message: string, throwerIsEvent: boolean): void {
  const catcher = findCatcher(run, thrower, 'error', errorCode, !throwerIsEvent);
  if (!catcher) {
    const parent = run.state.parent;
    if (parent) {
      run.emit({
        type: 'parentNotified',
        parentInstanceId: parent.instanceId,
        event: { type: 'childFailed', childId: parent.childId ?? parent.tokenId, errorCode, message, kind: 'error' },
      });
      run.cancelInstance(`BPMN error '${errorCode}' propagated to the calling instance`, 'none');
      return;
    }
    run.incident(thrower, 'unhandled_bpmn_error', `BPMN error '${errorCode}' was not caught${message ? `: ${message}` : ''}`);
    return;
  }
  if (throwerIsEvent) run.removeCompleted(thrower, run.element(thrower.elementId));
  const def = catcher.kind === 'boundary' ? catcher.boundary.eventDefinition : catcher.start.eventDefinition;
  const variables: JsonObject = {};
  if (def?.kind === 'error') {
    if (def.codeVariable !== null) variables[def.codeVariable] = errorCode;
    if (def.messageVariable !== null) variables[def.messageVariable] = message;
  }
  catchThrown(run, catcher, true, variables);
}

/**
 * Throws an escalation. Caught by an interrupting catcher: as for errors.
 * Non-interrupting: the catcher starts and the thrower goes on. Uncaught: the
 * thrower goes on (Camunda); a called instance reports it to its parent as
 * childFailed kind escalation. Returns true when the thrower was cancelled.
 */
export function throwEscalation(run: Run, thrower: Token, escalationCode: string, throwerIsEvent: boolean): boolean {
  const catcher = findCatcher(run, thrower, 'escalation', escalationCode, !throwerIsEvent);
  if (!catcher) {
    const parent = run.state.parent;
    if (parent) {
      run.emit({
        type: 'parentNotified',
        parentInstanceId: parent.instanceId,
        event: { type: 'childFailed', childId: parent.childId ?? parent.tokenId, errorCode: escalationCode, message: `escalation '${escalationCode}'`, kind: 'escalation' },
      });
    }
    return false;
  }
  const interrupting = catcher.kind === 'boundary' ? catcher.boundary.interrupting : catcher.start.interrupting;
  // the throw event itself completed; what the catch cancels is the rest
  if (interrupting && throwerIsEvent) run.removeCompleted(thrower, run.element(thrower.elementId));
  catchThrown(run, catcher, interrupting, {});
  return interrupting;
}

/** `variables` (camunda:errorCodeVariable/errorMessageVariable) go where the catcher runs. */
function catchThrown(run: Run, catcher: Catcher, interrupting: boolean, variables: JsonObject): void {
  if (catcher.kind === 'boundary') {
    const scopeId = catcher.token.scopeId;
    if (interrupting) run.cancelToken(catcher.token);
    run.newToken(catcher.boundary.id, scopeId);
    run.writeVariables(scopeId, variables);
    return;
  }
  startEventSubProcess(run, catcher.scopeId, catcher.start, variables);
}

export function throwMessage(run: Run, token: Token, messageName: string, correlationKeyExpression: string | null): boolean {
  const variables = run.visibleVariables(run.variableScope(token));
  let correlationKey: string | null = null;
  if (correlationKeyExpression !== null) {
    try {
      const v = run.evaluator(token.elementId).expression(correlationKeyExpression, variables);
      correlationKey = v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
    } catch (err) {
      run.incident(token, 'correlation_key_error', `correlation key of message '${messageName}' failed: ${describeFailure(err).message}`);
      return false;
    }
  }
  run.emit({ type: 'messageThrown', message: { name: messageName, correlationKey, variables } });
  return true;
}

/**
 * Throws a signal. Every other instance hears it through the runtime
 * (signalThrown); this instance's own catchers that listen at the moment of
 * the throw fire here, within the throw (BPMN, Camunda): a signal end event
 * that ends the last token still starts the instance's own signal event
 * subprocess, and nothing waits for a doorbell. A fired trigger that is used
 * up is closed, so its subscription row goes too. Returns false when the
 * thrower's token is gone (an interrupting catcher cancelled it) or the
 * instance ended.
 */
export function throwSignal(run: Run, token: Token, signalName: string): boolean {
  const variables = run.visibleVariables(run.variableScope(token));
  run.emit({ type: 'signalThrown', signal: { name: signalName, variables } });
  const listening = Object.values(run.state.triggers ?? {}).filter((t) => t.kind === 'signal' && t.name === signalName);
  for (const t of listening) {
    if (run.ended || !run.state.triggers?.[t.id]) continue;
    if (fireTrigger(run, t, structuredClone(variables)) && !run.state.triggers?.[t.id]) {
      run.emit({ type: 'subscriptionClosed', subscriptionId: t.id });
    }
  }
  return run.state.tokens[token.id] !== undefined && !run.ended;
}
