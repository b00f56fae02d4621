/**
 * Operator controls: what an operator may do to a live instance besides
 * cancel/suspend/resume. Each is an inbox event like any other, so it is
 * applied by the instance's one writer, in order, exactly once.
 *
 * - retryIncident: the token an incident stopped runs its element again
 *   (or only its leaving, when the element's own work was done: a failed
 *   postScript or outgoing condition). Boundary events of the element are
 *   re-armed with it. An `event_rejected` incident (an inbox event the runtime
 *   could not apply) is resolved and the runtime replays the event. Other
 *   incidents without a token (a failed timer of an event subprocess start)
 *   cannot be retried; nor can one of an ended instance.
 * - setVariables: writes variables into the root scope or one scope instance.
 *   Conditional events see the change at once.
 * - reset: rewinds the instance to an element (SpiffArena's
 *   reset_from_task_id, Camunda's process instance modification reduced to
 *   "cancel all, start before X"). Variables are kept as they are.
 *
 * The checks are exported so the API can refuse a request with a clear 4xx
 * before it writes anything; the engine re-checks and ignores an event that
 * has become invalid in between (the incident was resolved meanwhile, …).
 */
import type { GraphElement, ProcessGraph } from '../bpmn/types.js';
import type { JsonObject } from '../errors.js';
import { openBoundaryTriggers, openEventSubProcessTriggers } from './events.js';
import type { Run } from './run.js';
import type { InstanceState, Token } from './types.js';

/** Why the incident cannot be retried now, or null when it can. */
export function incidentRetryProblem(state: InstanceState, incidentId: string): { code: string; message: string } | null {
  const incident = state.incidents.find((i) => i.id === incidentId);
  if (!incident) return { code: 'incident_not_open', message: `incident ${incidentId} is not open` };
  if (incident.tokenId === null) {
    // an inbox event the runtime set aside (see runtime/poison.ts): the retry replays it
    if (incident.details?.['replay'] === true) return null;
    return {
      code: 'incident_not_retryable',
      message: `incident ${incidentId} (${incident.code}) does not belong to a token; fix the cause and reset or cancel the instance`,
    };
  }
  const token = state.tokens[incident.tokenId];
  if (!token || token.state !== 'incident') {
    return { code: 'incident_not_retryable', message: `the token of incident ${incidentId} is not stopped by it any more` };
  }
  return null;
}

export function retryIncident(run: Run, incidentId: string): boolean {
  if (incidentRetryProblem(run.state, incidentId) !== null) return false;
  const incident = run.state.incidents.find((i) => i.id === incidentId)!;
  if (incident.tokenId === null) {
    // the runtime queued the set-aside event right after this one
    run.resolveIncidents((i) => i.id === incidentId, 'retried');
    run.history('incident_retried', { elementId: incident.elementId, data: { incidentId, code: incident.code } });
    return true;
  }
  const token = run.state.tokens[incident.tokenId]!;
  run.resolveIncidents((i) => i.tokenId === token.id, 'retried');
  run.history('incident_retried', {
    elementId: token.elementId,
    elementType: run.graph.elements[token.elementId]?.type ?? null,
    tokenId: token.id,
    scopeId: token.scopeId,
    data: { incidentId, code: incident.code },
  });
  // Executing the element again arms its boundary events again: close the
  // ones still open from the failed try, or they would be armed twice.
  if (token.resumeAt !== 'leave') run.closeTriggers((t) => t.tokenId === token.id);
  token.retries = (token.retries ?? 0) + 1;
  run.ready(token);
  return true;
}

/** Why the variables cannot be set there, or null. */
export function setVariablesProblem(state: InstanceState, scopeId: string | undefined): { code: string; message: string } | null {
  if (scopeId !== undefined && !state.scopes[scopeId]) {
    return { code: 'scope_not_found', message: `scope instance ${scopeId} is not active in this instance` };
  }
  return null;
}

export function setVariables(run: Run, variables: JsonObject, scopeId: string | undefined): boolean {
  if (setVariablesProblem(run.state, scopeId) !== null) return false;
  const target = run.scope(scopeId ?? run.state.rootScopeId);
  for (const [name, value] of Object.entries(structuredClone(variables))) target.variables[name] = value;
  run.conditionsDirty = true;
  run.history('variables_set', { elementId: target.elementId, scopeId: target.id, data: { names: Object.keys(variables) } });
  return true;
}

/**
 * Why the instance cannot be reset to `elementId`, or null. The target must be
 * a flow node reached by sequence flows (not a boundary event, not a
 * compensation handler, not inside an event subprocess or a loop activity:
 * those only exist as part of something else), and not a join, whose other
 * arrivals a single token would wait for forever.
 */
export function resetTargetProblem(graph: ProcessGraph, elementId: string): string | null {
  const el = graph.elements[elementId];
  if (!el) return `'${elementId}' is not a flow node of process '${graph.key}'`;
  if (el.type === 'boundaryEvent') return `'${elementId}' is a boundary event; reset to the activity it is attached to`;
  if ('isForCompensation' in el && el.isForCompensation) return `'${elementId}' is a compensation handler`;
  if ((el.type === 'parallelGateway' || el.type === 'inclusiveGateway') && el.incoming.length > 1) {
    return `'${elementId}' is a joining gateway; reset to an element before or after it`;
  }
  for (const s of enclosingSubprocesses(graph, el)) {
    if (s.triggeredByEvent) return `'${elementId}' is inside event subprocess '${s.id}'`;
    if (s.loop !== null) return `'${elementId}' is inside loop activity '${s.id}'; reset to the activity itself`;
  }
  if (el.type === 'startEvent' && graph.scopes[el.scopeId]?.kind === 'eventSubProcess') return `'${elementId}' starts an event subprocess`;
  return null;
}

/** Embedded subprocesses around the element, outermost first. */
function enclosingSubprocesses(graph: ProcessGraph, el: GraphElement): Array<Extract<GraphElement, { type: 'subProcess' }>> {
  const chain: Array<Extract<GraphElement, { type: 'subProcess' }>> = [];
  for (let scopeId = el.scopeId; scopeId !== graph.rootScopeId; ) {
    const sub = graph.elements[scopeId];
    if (!sub || sub.type !== 'subProcess') break;
    chain.unshift(sub);
    scopeId = sub.scopeId;
  }
  return chain;
}

export function resetInstance(run: Run, elementId: string): boolean {
  if (resetTargetProblem(run.graph, elementId) !== null) return false;
  const rootId = run.state.rootScopeId;
  run.history('instance_reset', { elementId, elementType: run.graph.elements[elementId]!.type, scopeId: rootId, data: { elementId } });
  // Withdraw everything: the incidents (closed as reset), then the tokens with
  // their tasks, jobs, called instances and triggers.
  run.resolveIncidents(() => true, 'reset');
  run.cancelScopeContent(rootId);
  // Rebuild the scope instances of the subprocesses around the target, as if
  // each had just been entered, then put one token on the target.
  let scopeId = rootId;
  for (const sub of enclosingSubprocesses(run.graph, run.graph.elements[elementId]!)) {
    const parent: Token = run.newToken(sub.id, scopeId);
    if (sub.boundaryEventIds.length > 0 && !openBoundaryTriggers(run, parent, sub)) return true;
    const childScope = run.ctx.newId();
    run.state.scopes[childScope] = { id: childScope, elementId: sub.childScopeId, parentScopeId: scopeId, parentTokenId: parent.id, variables: {} };
    run.wait(parent, { kind: 'subprocess', scopeId: childScope });
    run.history('element_started', { elementId: sub.id, elementType: sub.type, tokenId: parent.id, scopeId });
    run.declareDataObjects(childScope);
    openEventSubProcessTriggers(run, childScope);
    scopeId = childScope;
  }
  run.newToken(elementId, scopeId);
  return true;
}
