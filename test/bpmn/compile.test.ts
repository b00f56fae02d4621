import { describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import type { MessageRef, ProcessGraph } from '../../src/bpmn/types.js';
import { readFixture } from '../engine/helpers.js';

async function compileFixture(name: string): Promise<ProcessGraph[]> {
  const { processes, problems } = await compileFiles([{ name, content: readFixture(name) }]);
  expect(problems).toEqual([]);
  return processes.map((p) => p.graph);
}

describe('compiled graph', () => {
  it('precomputes scopes, incoming/outgoing flows in document order, defaults and conditions', async () => {
    const [graph] = await compileFixture('exclusive-default-flow.bpmn');
    expect(graph).toBeDefined();
    if (!graph) return;
    expect(graph.key).toBe('exclusive_default');
    expect(graph.rootScopeId).toBe('exclusive_default');
    expect(graph.scopes['exclusive_default']).toEqual({
      id: 'exclusive_default',
      kind: 'process',
      parentScopeId: null,
      noneStartEventId: 'start',
      implicitStartIds: [],
      eventSubProcessIds: [],
      dataObjectIds: [],
      startEventIds: ['start'],
      elementIds: ['start', 'decide', 'big', 'medium', 'small', 'merge', 'end'],
    });
    expect(graph.elements['decide']).toMatchObject({
      type: 'exclusiveGateway',
      incoming: ['f0'],
      outgoing: ['f_big', 'f_medium', 'f_small'],
      defaultFlow: 'f_small',
      scopeId: 'exclusive_default',
    });
    expect(graph.elements['merge']).toMatchObject({ incoming: ['f1', 'f2', 'f3'], outgoing: ['f4'] });
    expect(graph.flows['f_big']).toEqual({
      id: 'f_big',
      name: null,
      sourceId: 'decide',
      targetId: 'big',
      scopeId: 'exclusive_default',
      condition: 'amount > 1000',
      isDefault: false,
    });
    expect(graph.flows['f_medium']?.condition).toBe('amount > 100');
    expect(graph.flows['f_small']).toMatchObject({ condition: null, isDefault: true });
    expect(graph.elements['big']).toMatchObject({ type: 'scriptTask', script: "size = 'big'", preScript: null, loop: null, boundaryEventIds: [] });
  });

  it('is plain JSON and deeply frozen', async () => {
    const [graph] = await compileFixture('nested-subprocess-scopes.bpmn');
    expect(JSON.parse(JSON.stringify(graph))).toEqual(graph);
    expect(Object.isFrozen(graph)).toBe(true);
    expect(Object.isFrozen(graph?.elements['outer'])).toBe(true);
    expect(Object.isFrozen(graph?.elements['outer']?.outgoing)).toBe(true);
    expect(() => {
      (graph?.flows as Record<string, unknown>)['x'] = 1;
    }).toThrow();
  });

  it('compiles nested subprocesses into nested scopes', async () => {
    const [graph] = await compileFixture('nested-subprocess-scopes.bpmn');
    expect(graph?.scopes['outer']).toMatchObject({ kind: 'subProcess', parentScopeId: 'nested_scopes', noneStartEventId: 'outer_start' });
    expect(graph?.scopes['inner']).toMatchObject({ kind: 'subProcess', parentScopeId: 'outer', noneStartEventId: 'inner_start' });
    expect(graph?.elements['inner']).toMatchObject({ type: 'subProcess', scopeId: 'outer', childScopeId: 'inner' });
    expect(graph?.elements['inner_work']?.scopeId).toBe('inner');
    expect(graph?.flows['i1']?.scopeId).toBe('inner');
  });

  it('records terminate end events', async () => {
    const [graph] = await compileFixture('terminate-top-level.bpmn');
    expect(graph?.elements['kill']).toMatchObject({ type: 'endEvent', eventDefinition: { kind: 'terminate' } });
    expect(graph?.elements['end']).toMatchObject({ type: 'endEvent', eventDefinition: null });
  });

  it('tolerates collaborations, empty pools, lanes, annotations, data objects, DI and vendor extras', async () => {
    const { processes, problems } = await compileFiles([{ name: 'u.bpmn', content: readFixture('user-task-assignment.bpmn') }]);
    expect(problems).toEqual([]);
    // the empty pool "customer_pool" is skipped
    expect(processes.map((p) => [p.key, p.name])).toEqual([['user_tasks', 'User task assignment']]);
    const graph = processes[0]?.graph;
    expect(Object.keys(graph?.elements ?? {})).toEqual(['start', 'camunda_task', 'zeebe_task', 'spiff_task', 'manual', 'end']);
    expect(graph?.elements['camunda_task']).toMatchObject({ lane: 'Sales', documentation: 'Check the amount.' });
    expect(graph?.elements['manual']?.lane).toBe('Warehouse');
    expect(graph?.elements['end']?.lane).toBe('Operations');
  });

  it('reads human task data from camunda, zeebe and spiffworkflow extensions', async () => {
    const [graph] = await compileFixture('user-task-assignment.bpmn');
    const human = (id: string) => {
      const el = graph?.elements[id];
      return el && (el.type === 'userTask' || el.type === 'manualTask') ? el.human : undefined;
    };
    expect(human('camunda_task')).toEqual({
      assignee: 'demo',
      candidateGroups: ['sales', 'managers'],
      candidateUsers: ['alice', 'bob'],
      formKey: 'embedded:app:forms/approve.html',
      properties: { documentation: 'Check the amount.' },
    });
    expect(human('zeebe_task')).toEqual({
      assignee: '=initiator',
      candidateGroups: ['finance'],
      candidateUsers: ['carol', 'dave'],
      formKey: 'camunda-forms:bpmn:approveForm',
      properties: {},
    });
    expect(human('spiff_task')?.properties).toEqual({
      formJsonSchemaFilename: 'approve-schema.json',
      formUiSchemaFilename: 'approve-uischema.json',
      instructionsForEndUser: 'Approve order {{ order_id }}',
    });
  });

  it('reads service task topics, retries, inputs, headers and result variables', async () => {
    const [graph] = await compileFixture('service-task-inputs.bpmn');
    const service = (id: string) => {
      const el = graph?.elements[id];
      return el?.type === 'serviceTask' ? el.service : undefined;
    };
    expect(service('zeebe_service')).toEqual({
      topic: 'payments.charge',
      retries: 5,
      retryBackoffMs: null,
      // zeebe:ioMapping / camunda:inputOutput inputs are the task's io (locals and job input)
      inputs: [],
      headers: { provider: 'stripe' },
      resultVariable: null,
    });
    const io = (id: string) => {
      const el = graph?.elements[id];
      return el && 'io' in el ? el.io : undefined;
    };
    expect(io('zeebe_service')).toEqual({
      vendor: 'zeebe',
      inputs: [
        { name: 'amountCents', value: { kind: 'expression', expression: 'order.total * 100' } },
        { name: 'currency', value: { kind: 'literal', value: 'EUR' } },
      ],
      outputs: [],
    });
    expect(io('camunda_service')).toEqual({
      vendor: 'camunda',
      inputs: [
        { name: 'to', value: { kind: 'expression', expression: 'customer.email' } },
        // a Camunda composite expression: the text with the values put in
        { name: 'subject', value: { kind: 'expression', expression: `"Your order " + String((orderId\n) ?? '')` } },
      ],
      outputs: [],
    });
    expect(io('spiff_service')).toBeNull();
    expect(service('camunda_service')).toEqual({
      topic: 'mail.send',
      retries: 3,
      retryBackoffMs: null,
      inputs: [],
      headers: {},
      resultVariable: 'mailResult',
    });
    expect(service('spiff_service')).toEqual({
      topic: 'http/GetRequest',
      retries: 3,
      retryBackoffMs: null,
      inputs: [
        { name: 'url', kind: 'expression', value: "'https://example.test/orders/' + orderId" },
        { name: 'attempt', kind: 'expression', value: '2' },
        // `headers` has no value: left out, as SpiffWorkflow does
      ],
      headers: {},
      resultVariable: 'response',
    });
  });

  it('reads spiffworkflow pre- and post-scripts', async () => {
    const [graph] = await compileFixture('spiff-pre-post-scripts.bpmn');
    expect(graph?.elements['greet']).toMatchObject({
      preScript: "greeting = 'hello ' + name",
      postScript: 'answered = len(reply)',
    });
    // the spiffworkflow namespace makes the model's expressions Python
    expect(graph?.language).toBe('python');
  });

  it('compiles every engine fixture without problems', async () => {
    const names = [
      'activity-conditions-no-match.bpmn',
      'activity-default-flow.bpmn',
      'condition-error.bpmn',
      'exclusive-no-matching-flow.bpmn',
      'implicit-split-merge.bpmn',
      'loop-back-edge.bpmn',
      'milestone-and-manual-task.bpmn',
      'parallel-join-next-round.bpmn',
      'parallel-mixed-gateway.bpmn',
      'parallel-uneven-branches.bpmn',
      'script-incident.bpmn',
      'script-timeout.bpmn',
      'step-limit-cycle.bpmn',
      'terminate-in-subprocess.bpmn',
      'user-task-simple.bpmn',
      'boundary-error-subprocess.bpmn',
      'boundary-service-error.bpmn',
      'boundary-timers.bpmn',
      'boundary-message-signal-conditional.bpmn',
      'boundary-escalation.bpmn',
      'error-end-uncaught.bpmn',
      'intermediate-events.bpmn',
      'end-events-signal-terminate.bpmn',
      'event-based-gateway.bpmn',
      'inclusive-branch-ends-early.bpmn',
      'inclusive-loops-upstream.bpmn',
      'inclusive-nested.bpmn',
      'mi-approval-2-of-3.bpmn',
      'mi-large.bpmn',
      'send-receive-business-rule.bpmn',
      'start-events.bpmn',
      'data-objects.bpmn',
    ];
    const { processes, problems } = await compileFiles(names.map((name) => ({ name, content: readFixture(name) })));
    expect(problems).toEqual([]);
    expect(processes).toHaveLength(names.length);
  });

  it('compiles boundary events, links, what reaches each join, loops and call activities into the graph', async () => {
    const [boundary] = await compileFixture('boundary-timers.bpmn');
    expect(boundary?.elements['review']?.boundaryEventIds).toEqual(['remind', 'too_late']);
    expect(boundary?.elements['remind']).toMatchObject({
      type: 'boundaryEvent',
      attachedToId: 'review',
      interrupting: false,
      eventDefinition: { kind: 'timer', timer: { kind: 'cycle', expression: 'R3/PT10M' } },
    });
    const [links] = await compileFixture('intermediate-events.bpmn');
    expect(links?.elements['jump']).toMatchObject({ eventDefinition: { kind: 'link', linkName: 'ToEnd', targetId: 'landing' } });
    expect(links?.elements['wait_payment']).toMatchObject({ eventDefinition: { kind: 'message', messageName: 'payment', correlationKey: 'orderId' } });
    const [loops] = await compileFixture('inclusive-loops-upstream.bpmn');
    // per element: which of the join's incoming flows (a_j = 0, b_j = 1) it can still reach
    expect(loops?.elements['join']).toMatchObject({
      type: 'inclusiveGateway',
      incoming: ['a_j', 'b_j'],
      reach: { a: [0], b: [1], b_ok: [1], fork: [0, 1], merge: [0, 1], again: [0, 1], count: [0, 1], start: [0, 1] },
    });
    expect(Object.keys((loops?.elements['join'] as { reach: object }).reach).sort()).toEqual(['a', 'again', 'b', 'b_ok', 'count', 'fork', 'merge', 'start']);
    const mi = await compileFixture('mi-forms.bpmn');
    expect(mi.find((g) => g.key === 'mi_spiff')?.elements['square']).toMatchObject({
      loop: { kind: 'multiInstance', sequential: true, inputCollection: 'numbers', inputElement: 'n', outputCollection: 'squares', outputElement: 'sq' },
    });
    expect(mi.find((g) => g.key === 'mi_camunda')?.elements['review']).toMatchObject({
      loop: { kind: 'multiInstance', inputCollection: 'reviewers', inputElement: 'reviewer' },
    });
    const calls = await compileFixture('call-activity.bpmn');
    expect(calls.find((g) => g.key === 'parent_camunda')?.elements['c_call']).toMatchObject({
      type: 'callActivity',
      calledElement: 'child_proc',
      versionBinding: { kind: 'version', version: 3 },
      inputAll: false,
      inputs: [{ source: 'amount', target: 'value' }, { source: 'amount * 10', target: 'big' }],
      outputAll: false,
      outputs: [{ source: 'result', target: 'childResult' }],
    });
    const [esp] = await compileFixture('event-subprocesses.bpmn');
    expect(esp?.scopes['esp_top']?.eventSubProcessIds).toEqual(['esp_msg', 'esp_timer', 'esp_signal', 'esp_cond']);
    expect(esp?.scopes['esp_timer']).toMatchObject({ kind: 'eventSubProcess', startEventIds: ['timer_start'], noneStartEventId: '' });
  });
});

describe('BPMN-standard message correlation (correlationPropertyRetrievalExpression)', () => {
  const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:collaboration id="c">
    <bpmn:participant id="pa" processRef="p"/>
    <bpmn:correlationKey name="order_key"><bpmn:correlationPropertyRef>order_id</bpmn:correlationPropertyRef></bpmn:correlationKey>
  </bpmn:collaboration>
  <bpmn:correlationProperty id="order_id" name="order_id">
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_paid"><bpmn:messagePath>order.id</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_both"><bpmn:messagePath>order.id</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_two"><bpmn:messagePath>\${order.id}</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:correlationProperty id="a_customer" name="customer">
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_two"><bpmn:messagePath>=customer["name"]</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:message id="msg_paid" name="order_paid"/>
  <bpmn:message id="msg_two" name="two_keys"/>
  <bpmn:message id="msg_both" name="both"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>
  <bpmn:message id="msg_plain" name="plain"/>
  <bpmn:process id="p" isExecutable="true">${body}</bpmn:process>
</bpmn:definitions>`;

  const compileXml = async (body: string): Promise<ProcessGraph> => {
    const { processes, problems } = await compileFiles([{ name: 'corr.bpmn', content: xml(body) }]);
    expect(problems).toEqual([]);
    return processes[0]!.graph;
  };
  const messageOf = (graph: ProcessGraph, id: string): MessageRef | undefined => {
    const el = graph.elements[id]!;
    if ('message' in el) return el.message;
    if ('eventDefinition' in el && el.eventDefinition?.kind === 'message') return el.eventDefinition;
    return undefined;
  };

  it('builds the key expression from the messagePath wherever a message is referenced', async () => {
    const graph = await compileXml(`
      <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="gw"/>
      <bpmn:eventBasedGateway id="gw"/>
      <bpmn:sequenceFlow id="f2" sourceRef="gw" targetRef="catch"/><bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="recv"/>
      <bpmn:intermediateCatchEvent id="catch"><bpmn:messageEventDefinition messageRef="msg_paid"/></bpmn:intermediateCatchEvent>
      <bpmn:receiveTask id="recv" messageRef="msg_two"/>
      <bpmn:sequenceFlow id="f4" sourceRef="catch" targetRef="work"/><bpmn:sequenceFlow id="f5" sourceRef="recv" targetRef="work"/>
      <bpmn:userTask id="work"/>
      <bpmn:boundaryEvent id="b" attachedToRef="work"><bpmn:messageEventDefinition messageRef="msg_paid"/></bpmn:boundaryEvent>
      <bpmn:sequenceFlow id="f6" sourceRef="b" targetRef="send"/>
      <bpmn:sendTask id="send" messageRef="msg_paid"/><bpmn:sequenceFlow id="f7" sourceRef="send" targetRef="e2"/><bpmn:endEvent id="e2"/>
      <bpmn:sequenceFlow id="f8" sourceRef="work" targetRef="e"/>
      <bpmn:endEvent id="e"><bpmn:messageEventDefinition messageRef="msg_plain"/></bpmn:endEvent>
      <bpmn:subProcess id="esp" triggeredByEvent="true">
        <bpmn:startEvent id="esp_s"><bpmn:messageEventDefinition messageRef="msg_paid"/></bpmn:startEvent>
        <bpmn:sequenceFlow id="ef" sourceRef="esp_s" targetRef="esp_e"/><bpmn:endEvent id="esp_e"/>
      </bpmn:subProcess>`);
    const single = { messageName: 'order_paid', correlationKey: 'order.id', correlationPaths: ['order.id'] };
    for (const id of ['catch', 'b', 'send', 'esp_s']) expect(messageOf(graph, id), id).toMatchObject(single);
    // several properties: the values in property-id order (a_customer < order_id), joined with '|'
    const two = messageOf(graph, 'recv')!;
    expect(two).toMatchObject({ messageName: 'two_keys', correlationPaths: ['customer["name"]', 'order.id'] });
    expect(two.correlationKey).toBe(
      `[(customer["name"]), (order.id)].map((v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v))).join('|')`,
    );
    // a message without retrieval expressions keeps a null key and no paths
    expect(messageOf(graph, 'e')).toEqual({ kind: 'message', messageName: 'plain', correlationKey: null });
  });

  it('a zeebe:subscription correlationKey wins over retrieval expressions', async () => {
    const graph = await compileXml(`
      <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="catch"/>
      <bpmn:intermediateCatchEvent id="catch"><bpmn:messageEventDefinition messageRef="msg_both"/></bpmn:intermediateCatchEvent>
      <bpmn:sequenceFlow id="f2" sourceRef="catch" targetRef="e"/><bpmn:endEvent id="e"/>`);
    expect(messageOf(graph, 'catch')).toEqual({ kind: 'message', messageName: 'both', correlationKey: 'orderId' });
  });
});

describe('service task retry policy', () => {
  const model = (cycle: string) => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <bpmn:process id="p">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
    <bpmn:serviceTask id="call" camunda:type="external" camunda:topic="pay">
      <bpmn:extensionElements><camunda:failedJobRetryTimeCycle>${cycle}</camunda:failedJobRetryTimeCycle></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>`;

  it('reads camunda:failedJobRetryTimeCycle as tries in all and a fixed delay', async () => {
    const { processes, problems } = await compileFiles([{ name: 'r.bpmn', content: model('R5/PT30S') }]);
    expect(problems).toEqual([]);
    const el = processes[0]!.graph.elements['call'];
    expect(el?.type === 'serviceTask' ? el.service : null).toMatchObject({ topic: 'pay', retries: 5, retryBackoffMs: 30_000 });
  });

  it('rejects a malformed cycle at deploy, naming the element', async () => {
    const { problems } = await compileFiles([{ name: 'r.bpmn', content: model('every minute') }]);
    expect(problems).toEqual([expect.objectContaining({ elementId: 'call', message: expect.stringMatching(/failedJobRetryTimeCycle/) })]);
  });
});
