import { describe, expect, it } from 'vitest';
import { compileFiles, compileProcess, type Problem } from '../../src/bpmn/index.js';
import { BatonError } from '../../src/errors.js';
import { readFixture } from '../engine/helpers.js';

const NS =
  'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ' +
  'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"';

function defs(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions ${NS} id="defs" targetNamespace="http://baton.test">\n${body}\n</bpmn:definitions>`;
}

/** A process `p` around the given flow content. */
function proc(content: string): string {
  return defs(`<bpmn:process id="p">\n${content}\n</bpmn:process>`);
}

async function problemsOf(xml: string, file = 'model.bpmn'): Promise<Problem[]> {
  return (await compileFiles([{ name: file, content: xml }])).problems;
}

/** start → [content] → end: content must provide elements `x_in`/`x_out` endpoints by flows f_in/f_out */
const START = '<bpmn:startEvent id="start" /><bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="x" />';
const END = '<bpmn:sequenceFlow id="f_end" sourceRef="x" targetRef="end" /><bpmn:endEvent id="end" />';

describe('files that are not BPMN', () => {
  it.each([
    ['not xml at all', 'this is not xml'],
    ['broken xml', '<bpmn:definitions><bpmn:process></bpmn:definitions>'],
    ['xml of another vocabulary', '<?xml version="1.0"?><html><body/></html>'],
  ])('%s → one problem with elementId null', async (_label, content) => {
    const problems = await problemsOf(content, 'bad.bpmn');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: 'bad.bpmn', elementId: null });
    expect(problems[0]?.message).toMatch(/not a BPMN 2\.0 definitions document/);
  });

  it('a file without any process is a problem', async () => {
    const problems = await problemsOf(defs('<bpmn:collaboration id="c" />'));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: null, message: 'the file contains no process' }]);
  });

  it('a file whose only process is an empty pool is a problem', async () => {
    const problems = await problemsOf(defs('<bpmn:process id="empty" />'));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: null, message: 'the file contains no process with flow elements' }]);
  });
});

describe('structural problems', () => {
  it('duplicate ids', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:task id="x" /><bpmn:task id="x" />${END}`));
    expect(problems).toEqual([expect.objectContaining({ elementId: 'x', message: expect.stringContaining("duplicate id 'x'") })]);
  });

  it('a sequence flow pointing to an element that does not exist', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:task id="x" /><bpmn:sequenceFlow id="f_bad" sourceRef="x" targetRef="ghost" /><bpmn:endEvent id="end" />`));
    expect(problems).toContainEqual(expect.objectContaining({ elementId: 'f_bad', message: "sequence flow targetRef 'ghost' does not exist" }));
  });

  it('a sequence flow without sourceRef', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:task id="x" /><bpmn:sequenceFlow id="f_bad" targetRef="x" />`));
    expect(problems).toEqual([expect.objectContaining({ elementId: 'f_bad', message: 'sequence flow has no sourceRef' })]);
  });

  it('a sequence flow into another scope', async () => {
    const problems = await problemsOf(
      proc(`${START}
        <bpmn:subProcess id="x">
          <bpmn:startEvent id="s_start" /><bpmn:sequenceFlow id="s1" sourceRef="s_start" targetRef="s_task" />
          <bpmn:task id="s_task" />
        </bpmn:subProcess>
        <bpmn:sequenceFlow id="f_cross" sourceRef="x" targetRef="s_task" />`),
    );
    expect(problems).toEqual([expect.objectContaining({ elementId: 'f_cross', message: expect.stringContaining('not in the same scope') })]);
  });

  it('a sequence flow pointing at something that is not a flow node', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:task id="x" /><bpmn:dataObject id="data" /><bpmn:sequenceFlow id="f_bad" sourceRef="x" targetRef="data" />`));
    expect(problems).toEqual([expect.objectContaining({ elementId: 'f_bad', message: expect.stringContaining('is not a flow node') })]);
  });

  it('a gateway without outgoing flow', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:exclusiveGateway id="x" />`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: 'gateway has no outgoing sequence flow' }]);
  });

  it('a start event without outgoing flow', async () => {
    const problems = await problemsOf(proc('<bpmn:startEvent id="start" /><bpmn:task id="x" />'));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'start', message: 'start event has no outgoing sequence flow' }]);
  });

  it('an activity without outgoing flow is an implicit end, not a problem', async () => {
    expect(await problemsOf(proc(`${START}<bpmn:userTask id="x" />`))).toEqual([]);
  });

  it('a start event with an incoming flow', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:task id="x" /><bpmn:sequenceFlow id="f_back" sourceRef="x" targetRef="start" />`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'start', message: 'start event must not have incoming sequence flows' }]);
  });

  it('an end event with an outgoing flow', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:endEvent id="x" /><bpmn:sequenceFlow id="f_out" sourceRef="x" targetRef="t" /><bpmn:task id="t" />`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: 'end event must not have outgoing sequence flows' }]);
  });

  it('a non-default flow without condition out of an exclusive gateway with several flows', async () => {
    const problems = await problemsOf(
      proc(`${START}<bpmn:exclusiveGateway id="x" default="f_default" />
        <bpmn:sequenceFlow id="f_cond" sourceRef="x" targetRef="end"><bpmn:conditionExpression>a</bpmn:conditionExpression></bpmn:sequenceFlow>
        <bpmn:sequenceFlow id="f_plain" sourceRef="x" targetRef="end" />
        <bpmn:sequenceFlow id="f_default" sourceRef="x" targetRef="end" />
        <bpmn:endEvent id="end" />`),
    );
    expect(problems).toEqual([expect.objectContaining({ elementId: 'f_plain', message: expect.stringContaining("exclusive gateway 'x' without a condition") })]);
  });

  it('a single unconditional flow out of an exclusive gateway is fine', async () => {
    expect(await problemsOf(proc(`${START}<bpmn:exclusiveGateway id="x" />${END}`))).toEqual([]);
  });

  it('a default flow that is not an outgoing flow of its element', async () => {
    const problems = await problemsOf(
      proc(`${START}<bpmn:exclusiveGateway id="x" default="f_start" />
        <bpmn:sequenceFlow id="f_a" sourceRef="x" targetRef="end"><bpmn:conditionExpression>a</bpmn:conditionExpression></bpmn:sequenceFlow>
        <bpmn:endEvent id="end" />`),
    );
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: "default flow 'f_start' is not an outgoing sequence flow of 'x'" }]);
  });

  it('a default flow that does not exist', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:task id="x" default="nope" />${END}`));
    expect(problems).toEqual([expect.objectContaining({ elementId: 'x', message: "default flow 'nope' does not exist" })]);
  });

  it('a condition on a flow out of a parallel gateway', async () => {
    const problems = await problemsOf(
      proc(`${START}<bpmn:parallelGateway id="x" />
        <bpmn:sequenceFlow id="f_cond" sourceRef="x" targetRef="end"><bpmn:conditionExpression>a</bpmn:conditionExpression></bpmn:sequenceFlow>
        <bpmn:endEvent id="end" />`),
    );
    expect(problems).toEqual([expect.objectContaining({ elementId: 'f_cond', message: expect.stringContaining('must not have a condition') })]);
  });

  it('a process without a none start event', async () => {
    const problems = await problemsOf(proc('<bpmn:task id="x" />'));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'p', message: "process 'p' has no none start event" }]);
  });

  it('a subprocess without a none start event', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:subProcess id="x"><bpmn:task id="inner" /></bpmn:subProcess>${END}`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: "subprocess 'x' has no none start event" }]);
  });

  it('a scope with two none start events', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:startEvent id="start2" /><bpmn:sequenceFlow id="f2" sourceRef="start2" targetRef="x" /><bpmn:task id="x" />`));
    expect(problems).toEqual([expect.objectContaining({ elementId: 'p', message: expect.stringContaining('more than one none start event') })]);
  });

  it('an empty script', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:scriptTask id="x"><bpmn:script>   </bpmn:script></bpmn:scriptTask>${END}`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: 'script is empty' }]);
  });

  it('a script task without script element', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:scriptTask id="x" />${END}`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: 'script is empty' }]);
  });

  it.each(['python', 'groovy'])('a %s script', async (format) => {
    const problems = await problemsOf(proc(`${START}<bpmn:scriptTask id="x" scriptFormat="${format}"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>${END}`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: `script format '${format}' is not supported (scripts are JavaScript)` }]);
  });

  it('an empty condition expression', async () => {
    const problems = await problemsOf(
      proc(`${START}<bpmn:task id="x" />
        <bpmn:sequenceFlow id="f_empty" sourceRef="x" targetRef="end"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">  </bpmn:conditionExpression></bpmn:sequenceFlow>
        <bpmn:endEvent id="end" />`),
    );
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'f_empty', message: 'condition expression is empty' }]);
  });

  it('a FEEL condition', async () => {
    const problems = await problemsOf(
      proc(`${START}<bpmn:task id="x" />
        <bpmn:sequenceFlow id="f_feel" sourceRef="x" targetRef="end"><bpmn:conditionExpression>=amount &gt; 5</bpmn:conditionExpression></bpmn:sequenceFlow>
        <bpmn:endEvent id="end" />`),
    );
    expect(problems).toEqual([expect.objectContaining({ elementId: 'f_feel', message: expect.stringContaining('FEEL') })]);
  });

  it('a service task without task type', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:serviceTask id="x" camunda:class="com.acme.Delegate" />${END}`));
    expect(problems).toEqual([expect.objectContaining({ elementId: 'x', message: expect.stringMatching(/^service task has no task type/) })]);
  });

  it('output mappings on a service task', async () => {
    const problems = await problemsOf(
      proc(`${START}<bpmn:serviceTask id="x"><bpmn:extensionElements><zeebe:taskDefinition type="t" />
        <zeebe:ioMapping><zeebe:output source="=a" target="b" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:serviceTask>${END}`),
    );
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: 'zeebe:output mappings are not supported yet' }]);
  });

  it('an unknown element of the BPMN namespace', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:teleportTask id="x" />`));
    expect(problems.some((p) => p.message.includes("unknown BPMN element 'TeleportTask'"))).toBe(true);
  });
});

describe('unsupported flow nodes are never silently ignored', () => {
  const cases: [string, string, string][] = [
    ['complexGateway', '<bpmn:complexGateway id="u" />', 'complexGateway is not supported yet'],
    ['businessRuleTask without task type (DMN)', '<bpmn:businessRuleTask id="u" />', 'businessRuleTask without a task type is not supported yet: DMN decisions come in a later release'],
    ['transaction', '<bpmn:transaction id="u" />', 'transaction is not supported yet'],
    ['adHocSubProcess', '<bpmn:adHocSubProcess id="u" />', 'adHocSubProcess is not supported yet'],
    ['compensation boundary event', '<bpmn:task id="x" /><bpmn:boundaryEvent id="u" attachedToRef="x"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>', 'boundaryEvent with compensateEventDefinition is not supported yet'],
    ['compensation throw event', '<bpmn:intermediateThrowEvent id="u"><bpmn:compensateEventDefinition /></bpmn:intermediateThrowEvent>', 'intermediateThrowEvent with compensateEventDefinition is not supported yet'],
    ['compensation end event', '<bpmn:endEvent id="u"><bpmn:compensateEventDefinition /></bpmn:endEvent>', 'endEvent with compensateEventDefinition is not supported yet'],
    ['cancel end event', '<bpmn:endEvent id="u"><bpmn:cancelEventDefinition /></bpmn:endEvent>', 'endEvent with cancelEventDefinition is not supported yet'],
    ['compensation handler', '<bpmn:task id="u" isForCompensation="true" />', 'compensation handler (isForCompensation) is not supported yet'],
    ['multiple event definitions', '<bpmn:intermediateCatchEvent id="u"><bpmn:messageEventDefinition /><bpmn:signalEventDefinition /></bpmn:intermediateCatchEvent>', 'intermediateCatchEvent with several event definitions (multiple/parallel multiple) is not supported yet'],
    ['terminate as a catch', '<bpmn:intermediateCatchEvent id="u"><bpmn:terminateEventDefinition /></bpmn:intermediateCatchEvent>', 'intermediateCatchEvent with terminateEventDefinition is not supported yet'],
  ];
  it.each(cases)('%s', async (_label, element, message) => {
    const problems = await problemsOf(proc(`<bpmn:startEvent id="start" /><bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="end" /><bpmn:endEvent id="end" />${element}`));
    expect(problems).toContainEqual({ file: 'model.bpmn', elementId: 'u', message });
    expect(problems.every((p) => p.message.includes('is not supported yet'))).toBe(true);
  });
});

describe('deployments of several files', () => {
  it('reports problems per file and still compiles the good file', async () => {
    const { processes, problems } = await compileFiles([
      { name: 'good.bpmn', content: readFixture('user-task-simple.bpmn') },
      { name: 'broken.bpmn', content: readFixture('invalid-unsupported-mix.bpmn') },
      { name: 'junk.bpmn', content: 'junk' },
    ]);
    expect(processes.map((p) => [p.key, p.file])).toEqual([['user_task_simple', 'good.bpmn']]);
    expect(problems).toEqual([
      { file: 'broken.bpmn', elementId: 'wait_timer', message: 'complexGateway is not supported yet' },
      { file: 'broken.bpmn', elementId: 'decide', message: 'gateway has no outgoing sequence flow' },
      { file: 'junk.bpmn', elementId: null, message: expect.stringContaining('not a BPMN 2.0 definitions document') },
    ]);
  });

  it('rejects the same process key in two files', async () => {
    const content = readFixture('user-task-simple.bpmn');
    const { processes, problems } = await compileFiles([
      { name: 'a.bpmn', content },
      { name: 'b.bpmn', content },
    ]);
    expect(processes.map((p) => p.file)).toEqual(['a.bpmn']);
    expect(problems).toEqual([{ file: 'b.bpmn', elementId: 'user_task_simple', message: "process 'user_task_simple' is also defined in 'a.bpmn'" }]);
  });
});

describe('compileProcess', () => {
  it('returns the graph of a valid process', async () => {
    const graph = await compileProcess(readFixture('user-task-simple.bpmn'), 'user_task_simple');
    expect(graph.key).toBe('user_task_simple');
  });

  it('throws invalid_model with the problems when the process is invalid', async () => {
    const error = await compileProcess(readFixture('invalid-unsupported-mix.bpmn'), 'broken_process', 'broken.bpmn').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatonError);
    expect(error).toMatchObject({ code: 'invalid_model' });
    expect((error as BatonError).details).toEqual([
      { file: 'broken.bpmn', elementId: 'wait_timer', message: 'complexGateway is not supported yet' },
      { file: 'broken.bpmn', elementId: 'decide', message: 'gateway has no outgoing sequence flow' },
    ]);
  });

  it('throws invalid_model when the process is not in the file', async () => {
    await expect(compileProcess(readFixture('user-task-simple.bpmn'), 'nope')).rejects.toMatchObject({
      code: 'invalid_model',
      details: [{ file: 'model.bpmn', elementId: null, message: "process 'nope' not found" }],
    });
  });
});
