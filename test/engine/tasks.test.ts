import { afterAll, describe, expect, it } from 'vitest';
import { startInstance } from '../../src/engine/index.js';
import { ExpressionError, createEvaluator } from '../../src/expressions/index.js';
import type { Evaluator } from '../../src/expressions/types.js';
import { Instance, closeEvaluator, evaluator, loadGraph, testContext } from './helpers.js';

afterAll(closeEvaluator);

describe('script task', () => {
  it('stops at a throwing script with a script_error incident carrying message and line, writing nothing', async () => {
    const graph = await loadGraph('script-incident.bpmn');
    const inst = Instance.start(graph, { input: 1 });
    expect(inst.status).toBe('error');
    expect(inst.path()).toEqual(['start', 'before', 'failing']);
    expect(inst.path('element_completed')).not.toContain('failing');
    expect(inst.variables).toEqual({ input: 1, ok: true });
    expect(inst.state.incidents).toEqual([
      {
        id: expect.any(String),
        code: 'script_error',
        message: expect.stringContaining('boom'),
        elementId: 'failing',
        tokenId: expect.any(String),
        line: 2,
        column: 7,
        attempts: 1,
        createdAt: expect.stringMatching(/^2026-01-01T00:00:00\.\d{3}Z$/),
      },
    ]);
    const token = inst.state.tokens[inst.state.incidents[0]?.tokenId ?? ''];
    expect(token).toMatchObject({ elementId: 'failing', state: 'incident' });
    expect(token?.resumeAt).toBeUndefined();
    expect(inst.effectsOf('incidentOpened').map((e) => e.incident)).toEqual(inst.state.incidents);
    expect(inst.history.at(-1)).toMatchObject({ event: 'incident', data: { code: 'script_error', line: 2 } });
  });

  it('passes the evaluator error code through (script_memory, …)', async () => {
    const graph = await loadGraph('script-incident.bpmn');
    const failing: Evaluator = {
      condition: () => true,
      expression: () => null,
      script: () => {
        throw new ExpressionError('script_memory', 'memory limit exceeded');
      },
    };
    const inst = Instance.start(graph, {}, testContext({ evaluators: () => failing }));
    expect(inst.state.incidents[0]).toMatchObject({ code: 'script_memory', message: 'memory limit exceeded', elementId: 'before' });
    expect(inst.state.incidents[0]).not.toHaveProperty('line');
  });

  it('turns an endless script into a script_timeout incident', async () => {
    const graph = await loadGraph('script-timeout.bpmn');
    const quick = createEvaluator({ timeoutMs: 50 });
    try {
      const inst = Instance.start(graph, {}, testContext({ evaluators: () => quick }));
      expect(inst.status).toBe('error');
      expect(inst.state.incidents[0]).toMatchObject({ code: 'script_timeout', elementId: 'spin' });
    } finally {
      quick.close();
    }
  });
});

describe('user and manual tasks', () => {
  it('opens tasks with lane, candidates, assignee and form from camunda, zeebe and spiffworkflow models', async () => {
    const graph = await loadGraph('user-task-assignment.bpmn', 'user_tasks');
    const inst = Instance.start(graph);

    expect(inst.task('camunda_task')).toEqual({
      id: expect.any(String),
      tokenId: expect.any(String),
      elementId: 'camunda_task',
      name: 'Approve (Camunda 7)',
      kind: 'user',
      lane: 'Sales',
      candidateGroups: ['sales', 'managers'],
      candidateUsers: ['alice', 'bob'],
      assignee: 'demo',
      formKey: 'embedded:app:forms/approve.html',
      properties: { documentation: 'Check the amount.' },
    });
    inst.completeTask('camunda_task');

    expect(inst.task('zeebe_task')).toMatchObject({
      lane: 'Sales',
      candidateGroups: ['finance'],
      candidateUsers: ['carol', 'dave'],
      assignee: '=initiator',
      formKey: 'camunda-forms:bpmn:approveForm',
    });
    inst.completeTask('zeebe_task', { order_id: 'A-17' });

    expect(inst.task('spiff_task')).toMatchObject({
      lane: 'Operations',
      candidateGroups: [],
      assignee: null,
      formKey: null,
      properties: {
        formJsonSchemaFilename: 'approve-schema.json',
        formUiSchemaFilename: 'approve-uischema.json',
        instructionsForEndUser: 'Approve order A-17',
      },
    });
    inst.completeTask('spiff_task');

    // a nested lane wins over its parent lane
    expect(inst.task('manual')).toMatchObject({ kind: 'manual', lane: 'Warehouse', properties: { instructionsForEndUser: 'Use the big box' } });
    inst.completeTask('manual');
    expect(inst.status).toBe('completed');
  });

  it('ignores unknown, stale and duplicate completions', async () => {
    const graph = await loadGraph('user-task-simple.bpmn');
    const inst = Instance.start(graph);
    const taskId = inst.task('review').id;
    const stateBefore = inst.state;

    const unknown = inst.apply({ type: 'humanTaskCompleted', taskId: 'no-such-task', variables: { x: 1 } });
    expect(unknown).toEqual({ state: stateBefore, effects: [], ignored: true });

    const first = inst.apply({ type: 'humanTaskCompleted', taskId, variables: { decision: 'ok' } });
    expect(first.ignored).toBe(false);
    expect(first.effects[0]).toEqual({ type: 'humanTaskClosed', taskId, state: 'completed' });
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ decision: 'ok' });

    const duplicate = inst.apply({ type: 'humanTaskCompleted', taskId, variables: { decision: 'changed' } });
    expect(duplicate.ignored).toBe(true);
    expect(inst.variables).toEqual({ decision: 'ok' });
  });

  it('ignores a completion of a task that was cancelled by a terminate end event', async () => {
    const graph = await loadGraph('terminate-in-subprocess.bpmn');
    const inst = Instance.start(graph);
    const insideTask = inst.task('inside').id;
    inst.completeTask('sub_gate');
    expect(inst.apply({ type: 'humanTaskCompleted', taskId: insideTask }).ignored).toBe(true);
    expect(inst.status).toBe('waiting');
  });

  it('passes a milestone and a manual task with full history', async () => {
    const graph = await loadGraph('milestone-and-manual-task.bpmn');
    const inst = Instance.start(graph);
    expect(inst.trail()).toEqual([
      'instance_started:milestone',
      'element_started:start',
      'element_completed:start',
      'flow_taken:f0',
      'element_started:reached',
      'element_completed:reached',
      'flow_taken:f1',
      'element_started:pack',
    ]);
    expect(inst.history.find((h) => h.elementId === 'reached')?.elementType).toBe('intermediateThrowEvent');
    expect(inst.task('pack')).toMatchObject({ kind: 'manual', name: 'Pack the parcel', lane: null });
    inst.completeTask('pack');
    expect(inst.status).toBe('completed');
    expect(inst.history.map((h) => h.at)).toEqual([...inst.history.map((h) => h.at)].sort());
  });

  it('runs spiffworkflow pre- and post-scripts around a user task', async () => {
    const graph = await loadGraph('spiff-pre-post-scripts.bpmn');
    const inst = Instance.start(graph, { name: 'Ada' });
    expect(inst.variables).toEqual({ name: 'Ada', greeting: 'hello Ada' });
    inst.completeTask('greet', { reply: 'hi!' });
    expect(inst.variables).toEqual({ name: 'Ada', greeting: 'hello Ada', reply: 'hi!', answered: 3 });
    expect(inst.status).toBe('completed');
  });

  it('stops with an incident after the task when the post-script fails, ready to resume at leaving', async () => {
    const graph = await loadGraph('spiff-pre-post-scripts.bpmn');
    const inst = Instance.start(graph, { name: 'Ada' });
    inst.completeTask('greet', {});
    expect(inst.status).toBe('error');
    expect(inst.state.incidents[0]).toMatchObject({ code: 'script_error', elementId: 'greet' });
    expect(Object.values(inst.state.tokens)[0]).toMatchObject({ state: 'incident', resumeAt: 'leave' });
  });
});

describe('service task', () => {
  it('evaluates inputs, creates jobs and stores results in the result variable or merged', async () => {
    const graph = await loadGraph('service-task-inputs.bpmn');
    const inst = Instance.start(graph, { order: { total: 12.5 }, orderId: 'A-1', customer: { email: 'c@example.test' } });

    expect(inst.job('zeebe_service')).toEqual({
      id: expect.any(String),
      tokenId: expect.any(String),
      elementId: 'zeebe_service',
      topic: 'payments.charge',
      input: { amountCents: 1250, currency: 'EUR' },
      retries: 5,
      headers: { provider: 'stripe' },
      resultVariable: null,
    });
    // no result variable: the job's variables are merged
    inst.completeJob('zeebe_service', { chargeId: 'ch_1' });
    expect(inst.variables['chargeId']).toBe('ch_1');

    expect(inst.job('camunda_service')).toMatchObject({
      topic: 'mail.send',
      // a Camunda composite expression (text around ${…}) is evaluated, as Camunda does
      input: { to: 'c@example.test', subject: 'Your order A-1' },
      retries: 3,
      resultVariable: 'mailResult',
    });
    inst.completeJob('camunda_service', { messageId: 'm-1', accepted: true });
    expect(inst.variables['mailResult']).toEqual({ messageId: 'm-1', accepted: true });
    expect(inst.variables).not.toHaveProperty('messageId');

    expect(inst.job('spiff_service')).toMatchObject({
      topic: 'http/GetRequest',
      input: { url: 'https://example.test/orders/A-1', attempt: 2 },
      resultVariable: 'response',
    });
    inst.completeJob('spiff_service', { status: 200 });
    expect(inst.variables['response']).toEqual({ status: 200 });
    expect(inst.status).toBe('completed');
  });

  it('opens an input_error incident when an input expression fails, without creating a job', async () => {
    const graph = await loadGraph('service-task-inputs.bpmn');
    const inst = Instance.start(graph, {});
    expect(inst.effectsOf('serviceJobCreated')).toEqual([]);
    expect(inst.state.incidents[0]).toMatchObject({ code: 'input_error', elementId: 'zeebe_service' });
    expect(inst.state.incidents[0]?.message).toContain("'amountCents'");
  });

  it('turns a failed job into service_failed and a BPMN error into unhandled_bpmn_error', async () => {
    const graph = await loadGraph('service-task-inputs.bpmn');
    const vars = { order: { total: 1 }, orderId: 'A-1', customer: { email: 'x' } };

    const failed = Instance.start(graph, vars);
    const jobId = failed.job('zeebe_service').id;
    failed.apply({ type: 'serviceJobFailed', jobId, message: 'card declined' });
    expect(failed.status).toBe('error');
    expect(failed.state.incidents[0]).toMatchObject({ code: 'service_failed', message: 'card declined', elementId: 'zeebe_service' });
    expect(Object.values(failed.state.tokens)[0]).toMatchObject({ state: 'incident', elementId: 'zeebe_service' });
    expect(Object.values(failed.state.tokens)[0]?.wait).toBeUndefined();
    // the job is gone from the token: a late completion is stale
    expect(failed.apply({ type: 'serviceJobCompleted', jobId }).ignored).toBe(true);

    const bpmnError = Instance.start(graph, vars);
    bpmnError.apply({ type: 'serviceJobBpmnError', jobId: bpmnError.job('zeebe_service').id, errorCode: 'CARD_EXPIRED', message: 'expired' });
    expect(bpmnError.state.incidents[0]).toMatchObject({ code: 'unhandled_bpmn_error', elementId: 'zeebe_service' });
    expect(bpmnError.state.incidents[0]?.message).toContain('CARD_EXPIRED');

    expect(bpmnError.apply({ type: 'serviceJobFailed', jobId: 'unknown', message: 'x' }).ignored).toBe(true);
  });
});

describe('engine guarantees', () => {
  it('stops a loop without wait state with a step_limit incident', async () => {
    const graph = await loadGraph('step-limit-cycle.bpmn');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toHaveLength(1);
    expect(inst.state.incidents[0]).toMatchObject({ code: 'step_limit' });
    expect(inst.path()).toHaveLength(10_000);

    const small = Instance.start(graph, {}, testContext({ maxElementExecutions: 7 }));
    expect(small.path()).toEqual(['start', 'a', 'b', 'a', 'b', 'a', 'b']);
    expect(small.state.incidents[0]).toMatchObject({ code: 'step_limit', elementId: 'a' });
  });

  it('is deterministic: the same inputs and ctx sequence give the same output', async () => {
    const graph = await loadGraph('nested-subprocess-scopes.bpmn');
    const run = () => {
      const inst = Instance.start(graph, { counter: 1 });
      inst.completeTask('outer_wait', { fromTask: 'x' });
      return { state: inst.state, effects: inst.effects };
    };
    expect(run()).toEqual(run());
  });

  it('keeps ids and timestamps from the context', async () => {
    const graph = await loadGraph('user-task-simple.bpmn');
    const result = startInstance(graph, { type: 'start' }, testContext());
    expect(result.state.rootScopeId).toBe('id-1');
    expect(Object.keys(result.state.tokens)).toEqual(['id-2']);
    expect(result.effects[0]).toEqual({
      type: 'history',
      entry: {
        at: '2026-01-01T00:00:00.000Z',
        event: 'instance_started',
        elementId: 'user_task_simple',
        elementType: 'process',
        tokenId: null,
        scopeId: 'id-1',
        data: { startEventId: 'start' },
      },
    });
  });

  it('rejects a start at an element that is not a none start event of the process', async () => {
    const graph = await loadGraph('user-task-simple.bpmn');
    expect(() => startInstance(graph, { type: 'start', startEventId: 'review' }, testContext())).toThrow(
      expect.objectContaining({ code: 'invalid_start_event' }),
    );
  });

  it('uses the shared sandbox evaluator', () => {
    expect(evaluator().condition('1 < 2', {})).toBe(true);
  });
});
