/**
 * Where BPMN leaves a construct open, Baton reads it as the engine the model
 * was written for (README, "Semantics").
 */
import { afterAll, describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

describe('a plain bpmn:task and an untyped service task', () => {
  it('in a SpiffArena model: the task waits for a person (a manual task), the service task is a no-op', async () => {
    const graph = await loadGraph('semantics-spiff-dialect.bpmn');
    const inst = Instance.start(graph, { item: 'the invoice' });
    expect(inst.active).toEqual(['look']);
    expect(inst.task('look')).toMatchObject({ kind: 'manual', name: 'Look at it', lane: 'Reviewers', properties: { instructionsForEndUser: 'Check the invoice' } });
    inst.completeTask('look');
    expect(inst.status).toBe('completed');
    expect(inst.openJobs()).toEqual([]);
    expect(inst.path()).toEqual(['start', 'look', 'untyped', 'end']);
  });

  it('in plain BPMN: the task passes through, the service task is a no-op', async () => {
    const graph = await loadGraph('semantics-plain-bpmn.bpmn', 'plain_dialect');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['start', 'look', 'untyped', 'end']);
  });

  it('in a Camunda 7 or Camunda 8 model, an untyped service task is refused as those engines refuse it', async () => {
    for (const [ns, uri] of [
      ['camunda', 'http://camunda.org/schema/1.0/bpmn'],
      ['zeebe', 'http://camunda.org/schema/zeebe/1.0'],
    ] as const) {
      const xml = `<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:${ns}="${uri}" id="d" targetNamespace="x">
        <bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" /><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="t" /><bpmn:serviceTask id="t" /></bpmn:process></bpmn:definitions>`;
      const { problems } = await compileFiles([{ name: `${ns}.bpmn`, content: xml }]);
      expect(problems).toEqual([{ file: `${ns}.bpmn`, elementId: 't', message: 'service task has no task type' }]);
    }
  });
});

describe('start events', () => {
  it('a process without any start event starts at every element nothing leads to, in subprocesses too', async () => {
    const graph = await loadGraph('semantics-plain-bpmn.bpmn', 'implicit_start');
    expect(graph.scopes['implicit_start']?.implicitStartIds).toEqual(['first', 'second']);
    expect(graph.scopes['sub']?.implicitStartIds).toEqual(['inner']);
    const inst = Instance.start(graph);
    expect(inst.history[0]).toMatchObject({ event: 'instance_started', data: { implicitStart: ['first', 'second'] } });
    expect(inst.active).toEqual(['first', 'join']);
    inst.completeTask('first');
    expect(inst.status).toBe('completed');
    expect(inst.variables).toEqual({ seen: 1, inside: true });
  });

  it('a start event without outgoing flow starts an instance that ends at once', async () => {
    const graph = await loadGraph('semantics-plain-bpmn.bpmn', 'start_only');
    const inst = Instance.start(graph);
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['lonely']);
  });

  it('an empty embedded subprocess completes as soon as it starts', async () => {
    const graph = await loadGraph('semantics-plain-bpmn.bpmn', 'empty_subprocess');
    const inst = Instance.start(graph);
    expect(inst.active).toEqual(['after']);
    expect(inst.path()).toEqual(['es', 'placeholder', 'after']);
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
  });
});
