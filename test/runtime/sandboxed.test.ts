/**
 * Which models the API's inline steps leave to the step workers in
 * distributed mode (src/runtime/sandboxed.ts): those with a script task,
 * pre- or post-script outside their language's fast path.
 */
import { describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import { hasSandboxedScripts } from '../../src/runtime/sandboxed.js';

const SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"';
const model = (ns: string, script: string, pre = '') => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" ${ns} id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="x"/>
    <bpmn:scriptTask id="x">${pre}<bpmn:script>${script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="x" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>`;

async function graphOf(xml: string) {
  const { processes, problems } = await compileFiles([{ name: 'm.bpmn', content: xml }]);
  expect(problems).toEqual([]);
  return processes[0]!.graph;
}

describe('models with sandboxed scripts', () => {
  it('tells fast-path scripts from those a sandbox runs, per language', async () => {
    expect(hasSandboxedScripts(await graphOf(model('', 'total = price * qty')))).toBe(false);
    expect(hasSandboxedScripts(await graphOf(model('', 'total = items.reduce((a, b) =&gt; a + b, 0)')))).toBe(true);
    expect(hasSandboxedScripts(await graphOf(model(SPIFF, 'total = price * qty')))).toBe(false);
    expect(hasSandboxedScripts(await graphOf(model(SPIFF, 'total = sum(items)')))).toBe(true);
    const pre = '<bpmn:extensionElements><spiffworkflow:preScript>import json\nx = json.dumps(y)</spiffworkflow:preScript></bpmn:extensionElements>';
    expect(hasSandboxedScripts(await graphOf(model(SPIFF, 'total = 1', pre)))).toBe(true);
  });
});
