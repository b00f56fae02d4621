import { describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import { correlationKeyFromPaths, correlationPathsOfGraph, parsePath, valueAtPath } from '../../src/runtime/message-correlation.js';

describe('correlation path evaluation (no user code)', () => {
  it('parses plain dotted paths and rejects everything else', () => {
    expect(parsePath('order.id')).toEqual(['order', 'id']);
    expect(parsePath(' order . id ')).toEqual(['order', 'id']);
    expect(parsePath(`a["b c"]['d'].e[0]`)).toEqual(['a', 'b c', 'd', 'e', '0']);
    expect(parsePath('$x._y1')).toEqual(['$x', '_y1']);
    for (const bad of ['', 'order.id()', 'a + b', 'a[b]', '1a', 'a.', 'a..b', 'a["b"', 'process.exit(1)', 'a.b; c']) {
      expect(parsePath(bad), bad).toBeNull();
    }
  });

  it('reads own properties only', () => {
    const v = { order: { id: 'B', lines: [{ sku: 'x' }] } };
    expect(valueAtPath(v, ['order', 'id'])).toBe('B');
    expect(valueAtPath(v, ['order', 'lines', '0', 'sku'])).toBe('x');
    expect(valueAtPath(v, ['order', 'missing'])).toBeUndefined();
    expect(valueAtPath(v, ['order', 'id', 'length'])).toBeUndefined();
    expect(valueAtPath(v, ['order', 'constructor'])).toBeUndefined();
    expect(valueAtPath(v, ['__proto__'])).toBeUndefined();
  });

  it('computes the key by the same rule as the engine', () => {
    const v = { order: { id: 'B', n: 7 }, region: 'eu', nothing: null };
    expect(correlationKeyFromPaths(['order.id'], v)).toBe('B');
    expect(correlationKeyFromPaths(['order.n'], v)).toBe('7');
    expect(correlationKeyFromPaths(['order'], v)).toBe('{"id":"B","n":7}');
    expect(correlationKeyFromPaths(['order.missing'], v)).toBeNull();
    expect(correlationKeyFromPaths(['nothing'], v)).toBeNull();
    expect(correlationKeyFromPaths(['${order.id}'], v)).toBe('B');
    expect(correlationKeyFromPaths(['=order["id"]'], v)).toBe('B');
    expect(correlationKeyFromPaths(['region', 'order.id'], v)).toBe('eu|B');
    expect(correlationKeyFromPaths(['region', 'order.missing', 'order.n'], v)).toBe('eu||7');
    // not a plain path: no key
    expect(correlationKeyFromPaths(['order.id.toUpperCase()'], v)).toBeNull();
    expect(correlationKeyFromPaths(['region', 'a || b'], v)).toBeNull();
    expect(correlationKeyFromPaths([], v)).toBeNull();
  });

  it('collects the retrieval paths of the messages a graph uses', async () => {
    const { processes, problems } = await compileFiles([
      {
        name: 'c.bpmn',
        content: `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:correlationProperty id="order_id">
    <bpmn:correlationPropertyRetrievalExpression messageRef="m1"><bpmn:messagePath>order.id</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:message id="m1" name="paid"/><bpmn:message id="m2" name="plain"/>
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="r"/>
    <bpmn:receiveTask id="r" messageRef="m1"/><bpmn:sequenceFlow id="f2" sourceRef="r" targetRef="e"/>
    <bpmn:endEvent id="e"><bpmn:messageEventDefinition messageRef="m2"/></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>`,
      },
    ]);
    expect(problems).toEqual([]);
    expect([...correlationPathsOfGraph(processes[0]!.graph)]).toEqual([['paid', ['order.id']]]);
  });
});
