/**
 * Compensation: activities with a compensation boundary event are recorded
 * when they complete (see CompensationRecord in types.ts for what is kept and
 * for how long). A compensation throw (intermediate or end event, for one
 * activity or all) or a transaction's cancel end event runs the handlers of
 * the thrower's scope instance in reverse completion order, one at a time,
 * each in its own child scope holding the variables its activity completed
 * with; what a handler creates or changes is written back to the thrower's
 * scope. The thrower waits until the last handler is done (Camunda
 * 8's waitForCompletion behaviour).
 */
import type { GraphElement } from '../bpmn/types.js';
import type { Run } from './run.js';
import type { CompensationRecord, Token } from './types.js';

/** Records a completed activity that has a compensation handler, in `scopeId`. */
export function recordCompensable(run: Run, token: Token, element: GraphElement, scopeId: string): void {
  if (!('compensationHandlerId' in element) || element.compensationHandlerId === null) return;
  const scope = run.state.scopes[scopeId];
  if (!scope) return;
  const record: CompensationRecord = {
    activityId: element.id,
    handlerId: element.compensationHandlerId,
    variables: run.visibleVariables(token.scopeId),
  };
  scope.compensation = [...(scope.compensation ?? []), record];
}

/**
 * Starts compensating the records of the thrower's scope (all, or those of
 * `activityRef`). Returns false when there is nothing to compensate and the
 * caller should go on at once (for `continue`).
 */
export function startCompensation(run: Run, thrower: Token, activityRef: string | null, then: 'continue' | 'cancelTransaction'): boolean {
  const scope = run.state.scopes[thrower.scopeId];
  const records = scope?.compensation ?? [];
  const chosen = records.filter((r) => activityRef === null || r.activityId === activityRef);
  if (scope) {
    const rest = records.filter((r) => !chosen.includes(r));
    if (rest.length > 0) scope.compensation = rest;
    else delete scope.compensation;
  }
  run.history('compensation_started', {
    elementId: thrower.elementId,
    elementType: run.element(thrower.elementId).type,
    tokenId: thrower.id,
    scopeId: thrower.scopeId,
    data: { activities: chosen.map((r) => r.activityId).reverse() },
  });
  if (chosen.length === 0 && then === 'continue') return false;
  run.wait(thrower, { kind: 'compensation', pending: chosen.reverse(), then });
  continueCompensation(run, thrower);
  return true;
}

/** Runs the next pending handler, or ends the compensation. */
export function continueCompensation(run: Run, thrower: Token): void {
  const wait = thrower.wait;
  if (wait?.kind !== 'compensation') return;
  const [next, ...rest] = wait.pending;
  if (!next) {
    if (wait.then === 'cancelTransaction') cancelTransaction(run, thrower);
    else run.resumeToLeave(thrower);
    return;
  }
  thrower.wait = { ...wait, pending: rest };
  const scopeId = run.ctx.newId();
  run.state.scopes[scopeId] = {
    id: scopeId,
    elementId: next.handlerId,
    parentScopeId: thrower.scopeId,
    parentTokenId: thrower.id,
    variables: structuredClone(next.variables),
    compensationSnapshot: next.variables,
  };
  const handlerToken = run.newToken(next.handlerId, scopeId);
  run.history('compensation_handler_started', {
    elementId: next.handlerId,
    elementType: run.element(next.handlerId).type,
    tokenId: handlerToken.id,
    scopeId,
    data: { compensates: next.activityId },
  });
}

/**
 * The cancel end event's compensation is done: the transaction is cancelled
 * and its cancel boundary event starts.
 */
function cancelTransaction(run: Run, thrower: Token): void {
  const scope = run.state.scopes[thrower.scopeId];
  const txToken = scope?.parentTokenId ? run.state.tokens[scope.parentTokenId] : undefined;
  if (!txToken) return;
  const tx = run.element(txToken.elementId);
  const boundaryId = tx.boundaryEventIds.find((id) => {
    const b = run.element(id);
    return b.type === 'boundaryEvent' && b.eventDefinition.kind === 'cancel';
  });
  // the cancel end event itself completed
  run.removeCompleted(thrower, run.element(thrower.elementId));
  const scopeId = txToken.scopeId;
  run.cancelToken(txToken);
  if (boundaryId !== undefined) run.newToken(boundaryId, scopeId);
}
