/**
 * Per-element-type behaviour: what happens when a token executes an element.
 *
 * The table is keyed by ElementType and checked for completeness by the
 * compiler: a new element type in src/bpmn/types.ts does not compile until it
 * gets an entry here. A behaviour ends in exactly one of:
 * - `run.complete(token, el)`   activity/event done: leave by the outgoing flows
 * - `run.leaveVia(token, el, flows)`  gateways, which choose their own flows
 * - `run.wait(token, …)`        wait for an outside event (task, job, child scope)
 * - `run.incident(token, …)`    stop with an incident; the token stays on the element
 */
import type { JsonObject } from '../errors.js';
import type { ElementOfType, HumanTaskDefinition, ServiceTaskDefinition } from '../bpmn/types.js';
import { columnOf, describeFailure, type BehaviourTable, type Run } from './run.js';
import type { Token } from './types.js';
import { throwError, throwEscalation, throwMessage, throwSignal, waitForEvent } from './events.js';
import { renderTemplate } from './template.js';
import { startCompensation } from './compensation.js';

type HumanLike = (ElementOfType<'userTask'> | ElementOfType<'manualTask'> | ElementOfType<'task'>) & { readonly human: HumanTaskDefinition };
type ServiceLike = (ElementOfType<'serviceTask'> | ElementOfType<'businessRuleTask'>) & { readonly service: ServiceTaskDefinition };

/**
 * The job input: the task's input parameters (camunda:inputOutput,
 * zeebe:ioMapping; already evaluated into its local scope when it started,
 * as a preScript may have changed them since), then spiffworkflow parameters.
 */
function createServiceJob(run: Run, token: Token, el: ServiceLike): void {
  const input: JsonObject = {};
  const scopeId = run.variableScope(token);
  for (const param of el.io?.inputs ?? []) input[param.name] = run.lookupVariable(scopeId, param.name) ?? null;
  for (const param of el.service.inputs) {
    if (param.kind === 'literal') {
      input[param.name] = param.value;
      continue;
    }
    try {
      input[param.name] = run.evaluator(el.id).expression(param.value, run.evalVariables(scopeId));
    } catch (err) {
      const f = describeFailure(err);
      run.incident(token, 'input_error', `input parameter '${param.name}' failed: ${f.message}`, f.line, false, columnOf(f));
      return;
    }
  }
  const jobId = run.ctx.newId();
  run.wait(token, { kind: 'serviceJob', jobId });
  run.emit({
    type: 'serviceJobCreated',
    job: {
      id: jobId,
      tokenId: token.id,
      elementId: el.id,
      topic: el.service.topic,
      input,
      retries: el.service.retries,
      ...(el.service.retryBackoffMs !== null ? { retryBackoffMs: el.service.retryBackoffMs } : {}),
      headers: { ...el.service.headers },
      resultVariable: el.service.resultVariable,
    },
  });
}

/** Throw-side behaviour shared by intermediate throw and end events. Returns false when the token is gone or stopped. */
function throwDefinition(run: Run, token: Token, el: ElementOfType<'intermediateThrowEvent'> | ElementOfType<'endEvent'>): boolean {
  const def = el.eventDefinition;
  if (def?.kind === 'message') return throwMessage(run, token, def.messageName, def.correlationKey);
  if (def?.kind === 'signal') return throwSignal(run, token, def.signalName);
  if (def?.kind === 'escalation') {
    const cancelled = throwEscalation(run, token, def.escalationCode ?? '', true);
    return !cancelled && run.state.tokens[token.id] !== undefined && !run.ended;
  }
  return true;
}

function openHumanTask(run: Run, token: Token, el: HumanLike): void {
  const taskId = run.ctx.newId();
  run.wait(token, { kind: 'humanTask', taskId });
  run.emit({
    type: 'humanTaskOpened',
    task: {
      id: taskId,
      tokenId: token.id,
      elementId: el.id,
      name: el.name,
      kind: el.type === 'userTask' ? 'user' : 'manual',
      lane: el.lane,
      candidateGroups: [...el.human.candidateGroups],
      candidateUsers: [...el.human.candidateUsers],
      assignee: el.human.assignee,
      formKey: el.human.formKey,
      properties: humanProperties(run, token, el),
    },
  });
}

/** The task's properties; spiffworkflow instructionsForEndUser rendered with the visible variables. */
function humanProperties(run: Run, token: Token, el: HumanLike): JsonObject {
  const properties = structuredClone(el.human.properties) as JsonObject;
  const instructions = properties['instructionsForEndUser'];
  if (typeof instructions === 'string') properties['instructionsForEndUser'] = renderTemplate(instructions, run.visibleVariables(run.variableScope(token)));
  return properties;
}

export const behaviours: BehaviourTable = {
  startEvent: (run, token, el) => run.complete(token, el),

  /**
   * A none intermediate throw event is a milestone: it shows up in history and
   * passes on. Message/signal throws emit messageThrown/signalThrown;
   * escalation throws look for a catcher; a link throw jumps to its catch.
   */
  intermediateThrowEvent: (run, token, el) => {
    const def = el.eventDefinition;
    if (def?.kind === 'link' && def.targetId !== null) {
      run.history('element_completed', { elementId: el.id, elementType: el.type, tokenId: token.id, scopeId: token.scopeId });
      run.jump(token, def.targetId);
      return;
    }
    if (def?.kind === 'compensate') {
      if (!startCompensation(run, token, def.activityRef, 'continue')) run.complete(token, el);
      return;
    }
    if (throwDefinition(run, token, el)) run.complete(token, el);
  },

  /** Waits for its timer/message/signal/condition; a link catch passes through. */
  intermediateCatchEvent: (run, token, el) => {
    const def = el.eventDefinition;
    if (token.triggered || def.kind === 'link') {
      delete token.triggered;
      run.complete(token, el);
      return;
    }
    if (def.kind !== 'timer' && def.kind !== 'message' && def.kind !== 'signal' && def.kind !== 'conditional') {
      run.complete(token, el);
      return;
    }
    run.wait(token, { kind: 'event' });
    waitForEvent(run, token, def, 'catch', el.id);
  },

  /** A boundary event's token is created when the event fires: it just leaves. */
  boundaryEvent: (run, token, el) => run.complete(token, el),

  endEvent: (run, token, el) => {
    const def = el.eventDefinition;
    if (def?.kind === 'error') {
      throwError(run, token, def.errorCode ?? '', def.errorMessage ?? '', true);
      return;
    }
    if (def?.kind === 'message' || def?.kind === 'signal' || def?.kind === 'escalation') {
      if (!throwDefinition(run, token, el)) return;
    }
    if (def?.kind === 'compensate') {
      if (!startCompensation(run, token, def.activityRef, 'continue')) run.complete(token, el);
      return;
    }
    if (def?.kind === 'cancel') {
      // the rest of the transaction stops, its completed activities are compensated, then its cancel boundary event starts
      for (const other of run.tokensInScope(token.scopeId)) if (other.id !== token.id && run.state.tokens[other.id]) run.cancelToken(other);
      startCompensation(run, token, null, 'cancelTransaction');
      return;
    }
    if (el.eventDefinition?.kind === 'terminate') {
      // The terminate event itself completes; then its whole scope is
      // terminated, even when this was the scope's last token.
      run.removeCompleted(token, el);
      run.terminateScope(token.scopeId, el.id);
      return;
    }
    run.complete(token, el);
  },

  /** a pass-through, or in a SpiffArena model a task for a person (TaskElement.human) */
  task: (run, token, el) => {
    if (el.human !== null) openHumanTask(run, token, el as HumanLike);
    else run.complete(token, el);
  },

  /** camunda:resultVariable: the script is one expression (checked at deploy) and its value is stored */
  scriptTask: (run, token, el) => {
    const resultVariable = el.resultVariable ?? null;
    const done = resultVariable !== null ? run.runResultScript(token, el.script, resultVariable) : run.runScript(token, el.script);
    if (done) run.complete(token, el);
  },

  userTask: openHumanTask,
  manualTask: openHumanTask,

  /** a no-op when it names nothing to run (ServiceTaskElement.service) */
  serviceTask: (run, token, el) => {
    if (el.service === null) run.complete(token, el);
    else createServiceJob(run, token, el as ServiceLike);
  },
  businessRuleTask: createServiceJob,

  /** Like a message throw event: messageThrown, then leaves. */
  sendTask: (run, token, el) => {
    if (throwMessage(run, token, el.message.messageName, el.message.correlationKey)) run.complete(token, el);
  },

  /** Like a message catch event. */
  receiveTask: (run, token, el) => {
    if (token.triggered) {
      delete token.triggered;
      run.complete(token, el);
      return;
    }
    run.wait(token, { kind: 'event' });
    waitForEvent(run, token, { kind: 'message', messageName: el.message.messageName, correlationKey: el.message.correlationKey }, 'catch', el.id);
  },

  /**
   * Starts the called process as its own instance (childInstanceStarted) and
   * waits for childCompleted / childFailed / childTerminated.
   *
   * Unless the child would be nested deeper than `ctx.maxCallDepth`: then the
   * token stops with `call_depth_exceeded`. Recursion (A calls A, or A → B → A)
   * has no end of its own, and every level is a new instance; the depth rides
   * along in the parent link, so no instance needs to look at its ancestors.
   * A retry runs the element again and fails again, until the limit is raised.
   */
  callActivity: (run, token, el) => {
    const parent = run.state.parent;
    // root: 0; a parent link written before depths existed counts as 1
    const childDepth = (parent ? (parent.depth ?? 1) : 0) + 1;
    const maxDepth = run.ctx.maxCallDepth ?? 50;
    if (childDepth > maxDepth) {
      run.incident(
        token,
        'call_depth_exceeded',
        `call activity '${el.id}' would start process '${el.calledElement}' at call depth ${childDepth}, deeper than the limit of ${maxDepth} (BATON_MAX_CALL_DEPTH): is the process calling itself?`,
      );
      return;
    }
    // camunda:in / variables="all" see the call activity's own input parameters (Camunda 7 maps them first)
    const visible = run.visibleVariables(run.variableScope(token));
    const variables: JsonObject = el.inputAll ? structuredClone(visible) : {};
    for (const m of el.inputs) {
      try {
        variables[m.target] = /^[A-Za-z_$][\w$]*$/.test(m.source) ? (visible[m.source] ?? null) : run.ctx.evaluators('javascript').expression(m.source, visible); // camunda:in: Camunda's dialect, evaluated as JavaScript
      } catch (err) {
        const f = describeFailure(err);
        run.incident(token, 'input_error', `input mapping '${m.target}' failed: ${f.message}`, f.line, false, columnOf(f));
        return;
      }
    }
    const childId = run.ctx.newId();
    run.wait(token, { kind: 'callActivity', childId });
    run.emit({
      type: 'childInstanceStarted',
      child: {
        id: childId,
        processKey: el.calledElement,
        versionBinding: { ...el.versionBinding },
        variables,
        tokenId: token.id,
        elementId: el.id,
        businessKey: null,
      },
    });
  },

  subProcess: (run, token, el) => {
    run.enterScope(token, el.childScopeId);
  },

  /**
   * Fork: every outgoing flow whose condition holds (unconditional flows
   * always), the default flow only when none holds, else `no_matching_flow`.
   * Join: waits until no live token can still arrive (see Run.tryInclusiveJoin).
   */
  inclusiveGateway: (run, token, el) => {
    if (el.incoming.length > 1) {
      token.state = 'joining';
      const survivor = run.tryInclusiveJoin(el.id, token.scopeId, token);
      if (!survivor) return;
      if (survivor !== token) {
        // the token came on a flow that already had one: the earlier token goes on, this one waits for the next activation
        survivor.resumeAt = 'leave';
        run.ready(survivor);
        return;
      }
    }
    run.complete(token, el);
  },

  /** Opens the triggers of every event after it; the first to fire wins (events.ts, role gateway). */
  eventBasedGateway: (run, token, el) => {
    run.wait(token, { kind: 'event' });
    for (const flowId of el.outgoing) {
      const targetId = run.graph.flows[flowId]?.targetId;
      const target = targetId !== undefined ? run.graph.elements[targetId] : undefined;
      if (target?.type === 'receiveTask') {
        const def = { kind: 'message' as const, messageName: target.message.messageName, correlationKey: target.message.correlationKey };
        if (!waitForEvent(run, token, def, 'gateway', target.id)) return;
      } else if (target?.type === 'intermediateCatchEvent') {
        const def = target.eventDefinition;
        if (def.kind === 'timer' || def.kind === 'message' || def.kind === 'signal' || def.kind === 'conditional') {
          if (!waitForEvent(run, token, def, 'gateway', target.id)) return;
        }
      }
    }
  },

  /**
   * Conditions are evaluated in document order of the outgoing flows; the
   * first that holds wins, else the default flow, else a `no_matching_flow`
   * incident. Every arriving token passes on its own (exclusive merge).
   */
  exclusiveGateway: (run, token, el) => {
    const [only] = el.outgoing;
    if (el.outgoing.length === 1 && only !== undefined && run.graph.flows[only]?.condition === null) {
      run.leaveVia(token, el, [only]);
      return;
    }
    for (const flowId of el.outgoing) {
      if (flowId === el.defaultFlow) continue;
      const condition = run.graph.flows[flowId]?.condition ?? null;
      const holds = condition === null ? true : run.evaluateCondition(token, flowId, condition);
      if (holds === null) return;
      if (holds) {
        run.leaveVia(token, el, [flowId]);
        return;
      }
    }
    if (el.defaultFlow !== null) {
      run.leaveVia(token, el, [el.defaultFlow]);
      return;
    }
    run.incident(token, 'no_matching_flow', `no condition of exclusive gateway '${el.id}' holds and it has no default flow`);
  },

  /**
   * Join: within one scope instance the gateway waits for one token per
   * incoming flow (tokens in state 'joining', `arrivedVia` naming the flow).
   * A second token on an already-satisfied flow waits for the next round. When
   * every incoming flow has a token, those tokens are merged into the arriving
   * one, which then forks on every outgoing flow.
   */
  parallelGateway: (run, token, el) => {
    if (el.incoming.length > 1) {
      token.state = 'joining';
      const chosen: Token[] = [];
      const joining = run
        .tokensInScope(token.scopeId)
        .filter((t) => t.state === 'joining' && t.elementId === el.id);
      for (const flowId of el.incoming) {
        const first = joining.find((t) => t.arrivedVia === flowId);
        if (!first) return;
        chosen.push(first);
      }
      for (const t of chosen) {
        if (t.id === token.id) continue;
        run.history('element_completed', {
          elementId: el.id,
          elementType: el.type,
          tokenId: t.id,
          scopeId: t.scopeId,
          data: { mergedInto: token.id },
        });
        delete run.state.tokens[t.id];
      }
      token.state = 'ready';
    }
    run.leaveVia(token, el, el.outgoing);
  },
};
