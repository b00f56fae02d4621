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

  it('a start event without outgoing flow is an implicit end, not a problem', async () => {
    expect(await problemsOf(proc('<bpmn:startEvent id="start" /><bpmn:task id="x" />'))).toEqual([]);
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

  it('a process or subprocess without any start event starts implicitly, not a problem', async () => {
    expect(await problemsOf(proc('<bpmn:task id="x" />'))).toEqual([]);
    expect(await problemsOf(proc(`${START}<bpmn:subProcess id="x"><bpmn:task id="inner" /></bpmn:subProcess>${END}`))).toEqual([]);
  });

  it('a process without start events where every node has an incoming flow', async () => {
    const problems = await problemsOf(proc('<bpmn:task id="x" /><bpmn:sequenceFlow id="loop" sourceRef="x" targetRef="x" />'));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'p', message: "process 'p' has no start event, and no element without incoming sequence flows to start at" }]);
  });

  it('a subprocess with only event start events', async () => {
    const problems = await problemsOf(
      proc(`${START}<bpmn:subProcess id="x"><bpmn:startEvent id="ms"><bpmn:messageEventDefinition /></bpmn:startEvent><bpmn:sequenceFlow id="sf" sourceRef="ms" targetRef="inner" /><bpmn:task id="inner" /></bpmn:subProcess>${END}`),
    );
    expect(problems).toEqual(expect.arrayContaining([{ file: 'model.bpmn', elementId: 'x', message: "subprocess 'x' has no none start event" }]));
  });

  it('a scope with two none start events', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:startEvent id="start2" /><bpmn:sequenceFlow id="f2" sourceRef="start2" targetRef="x" /><bpmn:task id="x" />`));
    expect(problems).toEqual([expect.objectContaining({ elementId: 'p', message: expect.stringContaining('more than one none start event') })]);
  });

  it('an empty script', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:scriptTask id="x"><bpmn:script>   </bpmn:script></bpmn:scriptTask>${END}`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: 'script is empty' }]);
  });

  it('an empty script in a SpiffArena model is a no-op, as in SpiffWorkflow', async () => {
    const xml = proc(`${START}<bpmn:scriptTask id="x"><bpmn:script>  </bpmn:script></bpmn:scriptTask>${END}`).replace('<bpmn:definitions ', '<bpmn:definitions xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" ');
    expect(await problemsOf(xml)).toEqual([]);
  });

  it('a script task without script element', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:scriptTask id="x" />${END}`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: 'script is empty' }]);
  });

  it.each(['groovy', 'text/x-ruby', 'juel'])('a %s script', async (format) => {
    const problems = await problemsOf(proc(`${START}<bpmn:scriptTask id="x" scriptFormat="${format}"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>${END}`));
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'x', message: `script format '${format}' is not supported (Baton runs JavaScript and Python)` }]);
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

  it('an unknown element of the BPMN namespace', async () => {
    const problems = await problemsOf(proc(`${START}<bpmn:teleportTask id="x" />`));
    expect(problems.some((p) => p.message.includes("unknown BPMN element 'TeleportTask'"))).toBe(true);
  });
});

describe('unsupported flow nodes are never silently ignored', () => {
  const cases: [string, string, string][] = [
    ['complexGateway', '<bpmn:complexGateway id="u" />', 'complexGateway is not supported yet'],
    ['businessRuleTask without task type (DMN)', '<bpmn:businessRuleTask id="u" />', 'businessRuleTask without a task type is not supported yet: DMN decisions come in a later release'],
    ['adHocSubProcess', '<bpmn:adHocSubProcess id="u" />', 'adHocSubProcess is not supported yet'],
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

describe('events, gateways and activities of the coverage issue', () => {
  const ok = '<bpmn:startEvent id="start" /><bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="end" /><bpmn:endEvent id="end" />';
  const cases: [string, string, string, string][] = [
    ['a boundary event attached to an element of another scope', '<bpmn:subProcess id="s"><bpmn:startEvent id="ss" /><bpmn:sequenceFlow id="sf" sourceRef="ss" targetRef="inner" /><bpmn:task id="inner" /></bpmn:subProcess><bpmn:boundaryEvent id="u" attachedToRef="inner"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>', 'u', "boundary event must be attached to an activity of its own scope, not 'inner'"],
    ['a boundary event attached to a gateway', '<bpmn:exclusiveGateway id="g" /><bpmn:sequenceFlow id="gf" sourceRef="g" targetRef="end" /><bpmn:boundaryEvent id="u" attachedToRef="g"><bpmn:signalEventDefinition /></bpmn:boundaryEvent>', 'u', "boundary event must be attached to an activity of its own scope, not 'g'"],
    ['a timer without a definition', '<bpmn:intermediateCatchEvent id="u"><bpmn:timerEventDefinition /></bpmn:intermediateCatchEvent>', 'u', 'timer event has no timeDate, timeDuration or timeCycle'],
    ['a malformed duration literal', '<bpmn:intermediateCatchEvent id="u"><bpmn:timerEventDefinition><bpmn:timeDuration>5 minutes</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>', 'u', "timer duration '5 minutes' is not a valid ISO 8601 duration, nor a JavaScript expression (Unexpected identifier 'minutes')"],
    ['a timer start event with an expression', '<bpmn:startEvent id="u"><bpmn:timerEventDefinition><bpmn:timeDuration>delay</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>', 'u', "a timer start event needs a literal duration (ISO 8601), not the expression 'delay'"],
    ['a duration literal with a bad unit', '<bpmn:intermediateCatchEvent id="u"><bpmn:timerEventDefinition><bpmn:timeDuration>PT5X</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>', 'u', "timer duration 'PT5X' is not a valid ISO 8601 duration"],
    ['a quoted literal that is not a duration', '<bpmn:intermediateCatchEvent id="u"><bpmn:timerEventDefinition><bpmn:timeDuration>"5 min"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>', 'u', "timer duration '5 min' is not a valid ISO 8601 duration"],
    ['a cron literal with a bad field', '<bpmn:intermediateCatchEvent id="u"><bpmn:timerEventDefinition><bpmn:timeCycle>0 61 * * *</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>', 'u', "timer cycle '0 61 * * *' is not a valid ISO 8601 repeating interval or cron expression"],
    ['a malformed cycle literal', '<bpmn:intermediateCatchEvent id="u"><bpmn:timerEventDefinition><bpmn:timeCycle>every day</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>', 'u', "timer cycle 'every day' is not a valid ISO 8601 repeating interval or cron expression, nor a JavaScript expression (Unexpected identifier 'day')"],
    ['a message event whose message does not exist', '<bpmn:intermediateCatchEvent id="u"><bpmn:messageEventDefinition messageRef="nope" /></bpmn:intermediateCatchEvent>', 'u', "message 'nope' does not exist"],
    ['a signal event whose signal does not exist', '<bpmn:intermediateCatchEvent id="u"><bpmn:signalEventDefinition signalRef="gone" /></bpmn:intermediateCatchEvent>', 'u', "signal 'gone' does not exist"],
    ['a receive task whose message does not exist', '<bpmn:receiveTask id="u" messageRef="nada" />', 'u', "message 'nada' does not exist"],
    ['a link throw without its catch', '<bpmn:intermediateThrowEvent id="u"><bpmn:linkEventDefinition name="nowhere" /></bpmn:intermediateThrowEvent>', 'u', "no link catch event named 'nowhere' in this scope"],
    ['an event-based gateway leading to a task', '<bpmn:eventBasedGateway id="u" /><bpmn:sequenceFlow id="e1" sourceRef="u" targetRef="t1" /><bpmn:sequenceFlow id="e2" sourceRef="u" targetRef="t2" /><bpmn:task id="t1" /><bpmn:task id="t2" />', 'u', "sequence flow 'e1' of an event-based gateway must lead to a timer/message/signal/conditional catch event or a receive task"],
    ['an event subprocess with a none start', '<bpmn:subProcess id="u" triggeredByEvent="true"><bpmn:startEvent id="es" /><bpmn:sequenceFlow id="ef" sourceRef="es" targetRef="et" /><bpmn:task id="et" /></bpmn:subProcess>', 'u', "event subprocess 'u' must have exactly one start event, with an event definition"],
    ['a call activity without calledElement', '<bpmn:callActivity id="u" />', 'u', 'call activity has no calledElement'],
    ['multi-instance without collection or cardinality', '<bpmn:task id="u"><bpmn:multiInstanceLoopCharacteristics /></bpmn:task>', 'u', 'multi-instance needs an input collection or a loopCardinality'],
    ['a standard loop that cannot end', '<bpmn:task id="u"><bpmn:standardLoopCharacteristics /></bpmn:task>', 'u', 'standard loop without loopCondition and loopMaximum would never end'],
    ['an error start event at process level', '<bpmn:startEvent id="u"><bpmn:errorEventDefinition /></bpmn:startEvent><bpmn:sequenceFlow id="uf" sourceRef="u" targetRef="end" />', 'u', 'startEvent with errorEventDefinition is not supported yet'],
    ['a cancel end event outside a transaction', '<bpmn:endEvent id="u"><bpmn:cancelEventDefinition /></bpmn:endEvent>', 'u', 'a cancel end event must be inside a transaction'],
    ['a cancel boundary event on a subprocess', '<bpmn:subProcess id="s"><bpmn:startEvent id="ss" /></bpmn:subProcess><bpmn:boundaryEvent id="u" attachedToRef="s"><bpmn:cancelEventDefinition /></bpmn:boundaryEvent>', 'u', 'a cancel boundary event must be attached to a transaction'],
    ['a transaction whose cancel end event has no cancel boundary event', '<bpmn:transaction id="t"><bpmn:startEvent id="ts" /><bpmn:sequenceFlow id="tf" sourceRef="ts" targetRef="u" /><bpmn:endEvent id="u"><bpmn:cancelEventDefinition /></bpmn:endEvent></bpmn:transaction>', 'u', "transaction 't' has no cancel boundary event"],
    ['a compensation boundary event without a handler', '<bpmn:task id="x" /><bpmn:boundaryEvent id="u" attachedToRef="x"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>', 'u', 'compensation boundary event must be associated with an activity marked isForCompensation'],
    ['a compensation handler that nothing uses', '<bpmn:task id="u" isForCompensation="true" />', 'u', 'compensation handler is not associated with any compensation boundary event'],
    ['an unknown error reference', '<bpmn:endEvent id="u"><bpmn:errorEventDefinition errorRef="Nope" /></bpmn:endEvent>', 'u', "error 'Nope' does not exist"],
  ];
  it.each(cases)('%s', async (_label, element, elementId, message) => {
    const problems = await problemsOf(proc(`${ok}${element}`));
    expect(problems).toContainEqual({ file: 'model.bpmn', elementId, message });
  });

  it('accepts a process with only event start events', async () => {
    const problems = await problemsOf(defs(`<bpmn:message id="M" name="m" /><bpmn:process id="p"><bpmn:startEvent id="s"><bpmn:messageEventDefinition messageRef="M" /></bpmn:startEvent><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" /><bpmn:endEvent id="e" /></bpmn:process>`));
    expect(problems).toEqual([]);
  });
});
