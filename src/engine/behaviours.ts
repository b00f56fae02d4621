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
import type { ElementOfType } from '../bpmn/types.js';
import { describeFailure, type BehaviourTable, type Run } from './run.js';
import type { Token } from './types.js';

function openHumanTask(run: Run, token: Token, el: ElementOfType<'userTask'> | ElementOfType<'manualTask'>): void {
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
      properties: structuredClone(el.human.properties) as JsonObject,
    },
  });
}

export const behaviours: BehaviourTable = {
  startEvent: (run, token, el) => run.complete(token, el),

  /** A none intermediate throw event is a milestone: it shows up in history and passes on. */
  intermediateThrowEvent: (run, token, el) => run.complete(token, el),

  endEvent: (run, token, el) => {
    if (el.eventDefinition?.kind === 'terminate') {
      // The terminate event itself completes; then its whole scope is
      // terminated, even when this was the scope's last token.
      run.removeCompleted(token, el);
      run.terminateScope(token.scopeId, el.id);
      return;
    }
    run.complete(token, el);
  },

  task: (run, token, el) => run.complete(token, el),

  scriptTask: (run, token, el) => {
    if (run.runScript(token, el.script)) run.complete(token, el);
  },

  userTask: openHumanTask,
  manualTask: openHumanTask,

  serviceTask: (run, token, el) => {
    const input: JsonObject = {};
    for (const param of el.service.inputs) {
      if (param.kind === 'literal') {
        input[param.name] = param.value;
        continue;
      }
      try {
        input[param.name] = run.ctx.evaluator.expression(param.value, run.visibleVariables(token.scopeId));
      } catch (err) {
        const f = describeFailure(err);
        run.incident(token, 'input_error', `input parameter '${param.name}' failed: ${f.message}`, f.line);
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
        headers: { ...el.service.headers },
        resultVariable: el.service.resultVariable,
      },
    });
  },

  subProcess: (run, token, el) => run.enterScope(token, el.childScopeId),

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
