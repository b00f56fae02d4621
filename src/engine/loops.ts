/**
 * Multi-instance (parallel, sequential) and standard loops.
 *
 * The token that reaches a loop activity becomes the loop body: it waits
 * `{kind:'loop'}` and carries `LoopState` (counters, the next index, the
 * output collection so far; a sequential multi-instance also keeps the input
 * items). Every instance runs in its own scope instance (`loopInstance`,
 * holding the input element and `loopCounter`) with a token on the same
 * activity marked by `loopIndex`; that token runs the activity's ordinary
 * behaviour. A finished instance leaves nothing behind but counters and its
 * output element, so the state is O(active instances + output collection).
 */
import type { Json, JsonObject } from '../errors.js';
import type { GraphElement } from '../bpmn/types.js';
import { columnOf, describeFailure, type Run } from './run.js';
import type { LoopState, Token } from './types.js';
import { recordCompensable } from './compensation.js';

/** EngineContext.maxMultiInstances when not given: the 10,000-item benchmark fits, 20 million do not. */
export const DEFAULT_MAX_MULTI_INSTANCES = 10_000;

type Loop = NonNullable<Extract<GraphElement, { loop: unknown }>['loop']>;

function loopOf(element: GraphElement): Loop | null {
  return 'loop' in element ? element.loop : null;
}

export function startLoop(run: Run, token: Token, element: GraphElement): void {
  const loop = loopOf(element);
  if (!loop) return;
  const visible = run.visibleVariables(token.scopeId);
  if (loop.kind === 'standardLoop') {
    token.loop = { kind: 'standard', nrOfInstances: 0, nrOfActiveInstances: 0, nrOfCompletedInstances: 0, next: 0, items: null, output: null };
    run.wait(token, { kind: 'loop' });
    if (loop.testBefore && loop.loopCondition !== null) {
      const holds = evaluate(run, token, () => run.evaluator(element.id).condition(loop.loopCondition ?? 'false', { ...visible, loopCounter: 0 }), 'loopCondition');
      if (holds === undefined) return;
      if (!holds) return finishLoop(run, token, element);
    }
    if (loop.loopMaximum === 0) return finishLoop(run, token, element);
    startInstance(run, token, element, 0, undefined);
    return;
  }

  let items: Json[] | null = null;
  let count: number;
  if (loop.inputCollection !== null) {
    const value = evaluate(run, token, () => run.evaluator(element.id).expression(loop.inputCollection ?? 'null', visible), 'input collection');
    if (value === undefined) return;
    if (!Array.isArray(value)) {
      run.incident(token, 'loop_error', `input collection '${loop.inputCollection}' of '${element.id}' is not an array`);
      return;
    }
    items = value;
    count = value.length;
  } else {
    const value = evaluate(run, token, () => run.evaluator(element.id).expression(loop.loopCardinality ?? '0', visible), 'loopCardinality');
    if (value === undefined) return;
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      run.incident(token, 'loop_error', `loopCardinality of '${element.id}' is not a non-negative integer: ${JSON.stringify(value)}`);
      return;
    }
    count = n;
  }
  const max = run.ctx.maxMultiInstances ?? DEFAULT_MAX_MULTI_INSTANCES;
  if (count > max) {
    run.incident(token, 'loop_error', `multi-instance '${element.id}' would run ${count} instances, more than the limit of ${max} (BATON_MAX_MI_INSTANCES)`);
    return;
  }
  token.loop = {
    kind: loop.sequential ? 'sequential' : 'parallel',
    nrOfInstances: count,
    nrOfActiveInstances: 0,
    nrOfCompletedInstances: 0,
    next: 0,
    items: loop.sequential ? items : null,
    output: loop.outputCollection !== null ? new Array<Json>(count).fill(null) : null,
  };
  run.wait(token, { kind: 'loop' });
  if (count === 0) return finishLoop(run, token, element);
  if (loop.sequential) startInstance(run, token, element, 0, items?.[0]);
  else for (let i = 0; i < count; i++) startInstance(run, token, element, i, items?.[i]);
}

function evaluate<T>(run: Run, token: Token, fn: () => T, what: string): T | undefined {
  try {
    return fn();
  } catch (err) {
    const f = describeFailure(err);
    run.incident(token, 'loop_error', `${what} of '${token.elementId}' failed: ${f.message}`, f.line, false, columnOf(f));
    return undefined;
  }
}

function startInstance(run: Run, body: Token, element: GraphElement, index: number, item: Json | undefined): void {
  const state = body.loop as LoopState;
  const loop = loopOf(element);
  const variables: JsonObject = { loopCounter: index + 1 };
  if (loop?.kind === 'multiInstance' && loop.inputElement !== null) variables[loop.inputElement] = item ?? null;
  const scopeId = run.ctx.newId();
  run.state.scopes[scopeId] = {
    id: scopeId,
    elementId: element.id,
    parentScopeId: body.scopeId,
    parentTokenId: body.id,
    variables,
    loopInstance: true,
  };
  const inner = run.newToken(element.id, scopeId);
  inner.loopIndex = index;
  state.nrOfActiveInstances++;
  state.next = index + 1;
  if (state.kind === 'standard') state.nrOfInstances++;
}

/** An instance finished its activity: collect its output, drop its scope, then continue, complete or cut the loop short. */
export function completeLoopInstance(run: Run, inner: Token, element: GraphElement): void {
  const scope = run.state.scopes[inner.scopeId];
  const body = scope?.parentTokenId ? run.state.tokens[scope.parentTokenId] : undefined;
  const loop = loopOf(element);
  if (!scope || !body?.loop || !loop) {
    run.removeCompleted(inner, element);
    return;
  }
  const state = body.loop;
  const index = inner.loopIndex ?? 0;

  if (loop.kind === 'multiInstance' && loop.outputCollection !== null && loop.outputElement !== null && state.output) {
    const source = loop.outputElement;
    let value: Json;
    try {
      value = /^[A-Za-z_$][\w$]*$/.test(source)
        ? (run.lookupVariable(inner.scopeId, source) ?? null)
        : run.evaluator(element.id).expression(source, run.evalVariables(inner.scopeId));
    } catch (err) {
      const f = describeFailure(err);
      run.incident(inner, 'loop_error', `output element of '${element.id}' failed: ${f.message}`, f.line, true, columnOf(f));
      return;
    }
    state.output[index] = value;
  }
  if (loop.kind === 'standardLoop') {
    // a standard loop repeats in place: what an iteration created stays for the next one
    const { loopCounter: _counter, ...locals } = scope.variables;
    void _counter;
    run.writeVariables(body.scopeId, locals);
  }
  // the completion condition sees the finished instance's own variables (its
  // input and output items), as Camunda evaluates it in the instance and
  // SpiffWorkflow over the last child's data
  const instanceVariables = loop.kind === 'multiInstance' && loop.completionCondition !== null ? { ...scope.variables } : {};
  recordCompensable(run, inner, element, body.scopeId);
  run.removeCompleted(inner, element);
  delete run.state.scopes[scope.id];
  state.nrOfActiveInstances--;
  state.nrOfCompletedInstances++;

  if (loop.kind === 'standardLoop') {
    if (loop.loopMaximum !== null && state.nrOfCompletedInstances >= loop.loopMaximum) return finishLoop(run, body, element);
    if (loop.loopCondition !== null) {
      const vars = { ...run.visibleVariables(body.scopeId), loopCounter: state.nrOfCompletedInstances };
      const again = evaluate(run, body, () => run.evaluator(element.id).condition(loop.loopCondition ?? 'false', vars), 'loopCondition');
      if (again === undefined) return;
      if (!again) return finishLoop(run, body, element);
    }
    startInstance(run, body, element, state.next, undefined);
    return;
  }

  if (loop.completionCondition !== null) {
    const vars: JsonObject = {
      ...run.visibleVariables(body.scopeId),
      ...instanceVariables,
      nrOfInstances: state.nrOfInstances,
      nrOfActiveInstances: state.nrOfActiveInstances,
      nrOfCompletedInstances: state.nrOfCompletedInstances,
      loopCounter: index + 1,
    };
    if (loop.outputCollection !== null && state.output) vars[loop.outputCollection] = state.output;
    const done = evaluate(run, body, () => run.evaluator(element.id).condition(loop.completionCondition ?? 'false', vars), 'completionCondition');
    if (done === undefined) return;
    if (done) {
      // the remaining instances are cancelled (their tasks closed as cancelled)
      for (const s of Object.values(run.state.scopes)) if (s.parentTokenId === body.id) run.removeScope(s.id);
      return finishLoop(run, body, element);
    }
  }
  if (state.kind === 'sequential' && state.next < state.nrOfInstances) {
    startInstance(run, body, element, state.next, state.items?.[state.next]);
    return;
  }
  if (state.nrOfActiveInstances === 0) finishLoop(run, body, element);
}

function finishLoop(run: Run, body: Token, element: GraphElement): void {
  const loop = loopOf(element);
  if (loop?.kind === 'multiInstance' && loop.outputCollection !== null) {
    run.writeVariables(body.scopeId, { [loop.outputCollection]: body.loop?.output ?? [] });
  }
  delete body.loop;
  run.resumeToLeave(body);
}
