/**
 * Deploy-time rules for camunda:inputOutput / zeebe:ioMapping,
 * camunda:resultVariable on script tasks, and execution/task listeners.
 * Where Camunda 7 refuses a mapping (BpmnParse.checkActivityInputOutputSupported,
 * ensureNoIoMappingDefined) Baton refuses it too; what Baton cannot run yet is
 * refused naming the element, never ignored.
 */
import { describe, expect, it } from 'vitest';
import { compileFiles, type Problem } from '../../src/bpmn/index.js';
import { readFixture } from '../engine/helpers.js';

const NS =
  'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"';

function proc(content: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions ${NS} id="defs" targetNamespace="http://baton.test">\n<bpmn:process id="p">\n${content}\n</bpmn:process>\n</bpmn:definitions>`;
}

async function problemsOf(xml: string): Promise<Problem[]> {
  return (await compileFiles([{ name: 'model.bpmn', content: xml }])).problems;
}

const io = (body: string) => `<bpmn:extensionElements><camunda:inputOutput>${body}</camunda:inputOutput></bpmn:extensionElements>`;
/** start → x → end around one task element `x` */
const around = (x: string) =>
  proc(`<bpmn:startEvent id="start" /><bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="x" />${x}<bpmn:sequenceFlow id="f1" sourceRef="x" targetRef="end" /><bpmn:endEvent id="end" />`);

describe('input/output mappings compile', () => {
  it('reads camunda parameters into the graph: texts, expressions, composites, lists, maps and scripts', async () => {
    const { processes, problems } = await compileFiles([{ name: 'm.bpmn', content: readFixture('camunda-io-list-map.bpmn') }]);
    expect(problems).toEqual([]);
    const review = processes[0]?.graph.elements['review'];
    expect(review && 'io' in review ? review.io?.inputs : undefined).toEqual([
      {
        name: 'items',
        value: {
          kind: 'list',
          items: [
            { kind: 'literal', value: 'a' },
            { kind: 'expression', expression: 'n + 1' },
            { kind: 'null' },
            { kind: 'list', items: [{ kind: 'literal', value: 'nested' }] },
            { kind: 'map', entries: [{ key: { kind: 'literal', value: 'k' }, value: { kind: 'literal', value: 'v' } }] },
          ],
        },
      },
      {
        name: 'config',
        value: {
          kind: 'map',
          entries: [
            { key: { kind: 'literal', value: 'plain' }, value: { kind: 'literal', value: 'text' } },
            { key: { kind: 'expression', expression: 'keyName' }, value: { kind: 'expression', expression: 'n * 2' } },
            { key: { kind: 'literal', value: 'list' }, value: { kind: 'list', items: [{ kind: 'literal', value: 'x' }] } },
            { key: { kind: 'literal', value: 'empty' }, value: { kind: 'null' } },
          ],
        },
      },
      { name: 'scripted', value: { kind: 'expression', expression: 'n * 10 + 1' } },
    ]);
  });

  it.each([
    'camunda-input-output-script-task.bpmn',
    'camunda-io-list-map.bpmn',
    'camunda-result-variable.bpmn',
    'camunda-io-subprocess.bpmn',
    'camunda-io-service-task.bpmn',
    'camunda-io-events.bpmn',
    'camunda-io-multi-instance.bpmn',
    'camunda-io-call-activity.bpmn',
    'zeebe-io-mapping-user-task.bpmn',
  ])('%s compiles', async (name) => {
    expect((await compileFiles([{ name, content: readFixture(name) }])).problems).toEqual([]);
  });

  it('a zeebe:output on a service task now compiles (it was refused)', async () => {
    const problems = await problemsOf(
      around(`<bpmn:serviceTask id="x"><bpmn:extensionElements><zeebe:taskDefinition type="t" />
        <zeebe:ioMapping><zeebe:output source="=a" target="b" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:serviceTask>`),
    );
    expect(problems).toEqual([]);
  });

  it('service task inputs become the task io, not the spiff job inputs', async () => {
    const { processes } = await compileFiles([{ name: 's.bpmn', content: readFixture('camunda-io-service-task.bpmn') }]);
    const score = processes[0]?.graph.elements['score'];
    expect(score?.type === 'serviceTask' ? score.service?.inputs : null).toEqual([]);
    expect(score?.type === 'serviceTask' ? score.io?.inputs.map((p) => p.name) : null).toEqual(['customerId', 'headers', 'attempt']);
  });
});

describe('input/output mappings refused at deploy, naming the element', () => {
  const cases: [string, string, string][] = [
    [
      'on a start event (Camunda refuses it)',
      proc(`<bpmn:startEvent id="x">${io('<camunda:inputParameter name="a">1</camunda:inputParameter>')}</bpmn:startEvent>
        <bpmn:sequenceFlow id="f" sourceRef="x" targetRef="end" /><bpmn:endEvent id="end" />`),
      'camunda:inputOutput is not allowed on a start event (Camunda 7 refuses it too)',
    ],
    [
      'on a boundary event',
      around(`<bpmn:userTask id="x" /><bpmn:boundaryEvent id="b" attachedToRef="x">${io('<camunda:outputParameter name="a">1</camunda:outputParameter>')}
        <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
        <bpmn:sequenceFlow id="fb" sourceRef="b" targetRef="end" />`),
      'camunda:inputOutput is not allowed on a boundary event (Camunda 7 refuses it too)',
    ],
    [
      'on a gateway',
      around(`<bpmn:exclusiveGateway id="x">${io('<camunda:inputParameter name="a">1</camunda:inputParameter>')}</bpmn:exclusiveGateway>`),
      'camunda:inputOutput is not allowed on an exclusive gateway (Camunda 7 refuses it too)',
    ],
    [
      'an output on an end event',
      proc(`<bpmn:startEvent id="start" /><bpmn:sequenceFlow id="f" sourceRef="start" targetRef="x" />
        <bpmn:endEvent id="x">${io('<camunda:outputParameter name="a">1</camunda:outputParameter>')}</bpmn:endEvent>`),
      'camunda:outputParameter is not allowed on an end event (the process goes no further; Camunda 7 refuses it too)',
    ],
    [
      'an output on a multi-instance activity',
      around(`<bpmn:userTask id="x">${io('<camunda:outputParameter name="a">1</camunda:outputParameter>')}
        <bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>2</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>`),
      "camunda:outputParameter is not allowed on a multi-instance activity (every instance would overwrite the previous one's values; Camunda 7 refuses it too)",
    ],
    [
      'a groovy script value',
      around(`<bpmn:task id="x">${io('<camunda:inputParameter name="a"><camunda:script scriptFormat="groovy">1 + 1</camunda:script></camunda:inputParameter>')}</bpmn:task>`),
      "camunda:inputParameter 'a': script format 'groovy' is not supported (scripts are JavaScript)",
    ],
    [
      'a script resource',
      around(`<bpmn:task id="x">${io('<camunda:outputParameter name="a"><camunda:script scriptFormat="javascript" resource="parse.js" /></camunda:outputParameter>')}</bpmn:task>`),
      "camunda:outputParameter 'a': camunda:script with a resource (an external script file) is not supported; put the script inline",
    ],
    [
      'a script of several statements',
      around(`<bpmn:task id="x">${io('<camunda:inputParameter name="a"><camunda:script scriptFormat="javascript">var x = 1; x + 1</camunda:script></camunda:inputParameter>')}</bpmn:task>`),
      "camunda:inputParameter 'a': the script must be a single JavaScript expression (its value is the parameter's value; Baton cannot take the value of the last of several statements)",
    ],
    [
      "a script that breaks out of the expression (1); x = 2; (3)",
      around(`<bpmn:task id="x">${io('<camunda:inputParameter name="a"><camunda:script scriptFormat="javascript">1); x = 2; (3</camunda:script></camunda:inputParameter>')}</bpmn:task>`),
      "camunda:inputParameter 'a': the script must be a single JavaScript expression (its value is the parameter's value; Baton cannot take the value of the last of several statements)",
    ],
    [
      "a script using Camunda's execution API",
      around(`<bpmn:task id="x">${io('<camunda:inputParameter name="a"><camunda:script scriptFormat="javascript">execution.setVariable("defaultScore", 5);</camunda:script></camunda:inputParameter>')}</bpmn:task>`),
      "camunda:inputParameter 'a': the script uses Camunda's execution API (execution.…), which Baton's JavaScript does not have: read variables by name",
    ],
    [
      'an unclosed ${',
      around(`<bpmn:task id="x">${io('<camunda:inputParameter name="a">Order ${id</camunda:inputParameter>')}</bpmn:task>`),
      "camunda:inputParameter 'a': 'Order ${id' has a ${ without its closing }",
    ],
    [
      'a parameter without a name',
      around(`<bpmn:task id="x">${io('<camunda:inputParameter>1</camunda:inputParameter>')}</bpmn:task>`),
      'camunda:inputParameter has no name',
    ],
    [
      'both vendors on one element',
      around(`<bpmn:userTask id="x"><bpmn:extensionElements><camunda:inputOutput><camunda:inputParameter name="a">1</camunda:inputParameter></camunda:inputOutput>
        <zeebe:ioMapping><zeebe:input source="=1" target="b" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:userTask>`),
      'both camunda:inputOutput and zeebe:ioMapping: keep one of them',
    ],
    [
      'zeebe:ioMapping on a boundary event (not yet)',
      around(`<bpmn:userTask id="x" /><bpmn:boundaryEvent id="b" attachedToRef="x"><bpmn:extensionElements><zeebe:ioMapping><zeebe:output source="=m" target="n" /></zeebe:ioMapping></bpmn:extensionElements>
        <bpmn:messageEventDefinition messageRef="m1" /></bpmn:boundaryEvent><bpmn:sequenceFlow id="fb" sourceRef="b" targetRef="end" />`).replace(
        '</bpmn:process>',
        '</bpmn:process><bpmn:message id="m1" name="m1" />',
      ),
      'zeebe:ioMapping on a boundary event is not supported yet',
    ],
  ];
  it.each(cases)('%s', async (_label, xml, message) => {
    const problems = await problemsOf(xml);
    const id = message.startsWith('camunda:inputOutput is not allowed on a boundary') || message.startsWith('zeebe:ioMapping on a boundary') ? 'b' : 'x';
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: id, message }]);
  });

  it('on an event subprocess', async () => {
    const problems = await problemsOf(
      proc(`<bpmn:startEvent id="start" /><bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="end" /><bpmn:endEvent id="end" />
        <bpmn:subProcess id="esp" triggeredByEvent="true">${io('<camunda:inputParameter name="a">1</camunda:inputParameter>')}
          <bpmn:startEvent id="es"><bpmn:signalEventDefinition signalRef="s" /></bpmn:startEvent>
          <bpmn:sequenceFlow id="e0" sourceRef="es" targetRef="ee" /><bpmn:endEvent id="ee" />
        </bpmn:subProcess>`).replace('</bpmn:process>', '</bpmn:process><bpmn:signal id="s" name="s" />'),
    );
    expect(problems).toEqual([{ file: 'model.bpmn', elementId: 'esp', message: 'camunda:inputOutput is not allowed on an event subprocess (Camunda 7 refuses it too)' }]);
  });
});

describe('camunda:resultVariable on a script task', () => {
  it('is refused when the script is more than one expression', async () => {
    const problems = await problemsOf(
      around(`<bpmn:scriptTask id="x" scriptFormat="javascript" camunda:resultVariable="r"><bpmn:script>const a = 1;
a + 1</bpmn:script></bpmn:scriptTask>`),
    );
    expect(problems).toEqual([
      {
        file: 'model.bpmn',
        elementId: 'x',
        message:
          "camunda:resultVariable 'r' needs a script that is a single JavaScript expression (its value is stored; Baton cannot take the value of the last of several statements)",
      },
    ]);
  });

  it('compiles into the graph for a single expression', async () => {
    const { processes, problems } = await compileFiles([{ name: 'r.bpmn', content: readFixture('camunda-result-variable.bpmn') }]);
    expect(problems).toEqual([]);
    expect(processes[0]?.graph.elements['double']).toMatchObject({ type: 'scriptTask', resultVariable: 'doubled' });
  });
});

describe('listeners are refused at deploy, each named', () => {
  it('execution listeners on the process, flow nodes and sequence flows; task listeners', async () => {
    const problems = await problemsOf(readFixture('camunda-listeners-refused.bpmn'));
    expect(problems).toEqual([
      {
        file: 'model.bpmn',
        elementId: 'listeners_refused',
        message: "camunda:executionListener on 'start' with camunda:class 'com.acme.ProcessStarted' (Java) is not supported: listeners do not run in Baton; model the work as a task",
      },
      {
        file: 'model.bpmn',
        elementId: 'f0',
        message: "camunda:executionListener with camunda:expression '${audit.log(execution)}' is not supported: listeners do not run in Baton; model the work as a task",
      },
      {
        file: 'model.bpmn',
        elementId: 'start',
        message: "camunda:executionListener on 'end' with a groovy script resource 'readXmlFile.groovy' is not supported: listeners do not run in Baton; model the work as a task",
      },
      {
        file: 'model.bpmn',
        elementId: 'approve',
        message: "camunda:executionListener on 'end' with a javascript script is not supported: listeners do not run in Baton; model the work as a task",
      },
      {
        file: 'model.bpmn',
        elementId: 'approve',
        message: "camunda:taskListener on 'create' with camunda:delegateExpression '${assignReviewer}' (Java) is not supported: listeners do not run in Baton; model the work as a task",
      },
    ]);
  });

  it('zeebe execution listeners', async () => {
    const problems = await problemsOf(
      around(`<bpmn:task id="x"><bpmn:extensionElements><zeebe:executionListeners><zeebe:executionListener eventType="start" type="audit" /></zeebe:executionListeners></bpmn:extensionElements></bpmn:task>`),
    );
    expect(problems).toEqual([
      { file: 'model.bpmn', elementId: 'x', message: "zeebe:executionListeners on 'start' (job type 'audit') is not supported: listeners do not run in Baton; model the work as a task" },
    ]);
  });
});

describe('bpmn:ioSpecification', () => {
  const model = (body: string, processSpec = '') => `<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
    <bpmn:process id="p" isExecutable="true">${processSpec}<bpmn:startEvent id="s" /><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="t" />${body}</bpmn:process></bpmn:definitions>`;
  const spec = '<bpmn:ioSpecification><bpmn:dataInput id="a" /><bpmn:inputSet id="i"><bpmn:dataInputRefs>a</bpmn:dataInputRefs></bpmn:inputSet><bpmn:outputSet id="o" /></bpmn:ioSpecification>';

  it('on a process: its data inputs and outputs by id', async () => {
    const { processes, problems } = await compileFiles([{ name: 'm.bpmn', content: model('<bpmn:task id="t" />', spec) }]);
    expect(problems).toEqual([]);
    expect(processes[0]?.graph.ioSpecification).toEqual({ inputs: ['a'], outputs: [] });
  });

  it('is refused where Baton does not run it, naming the element: on a subprocess, a multi-instance task', async () => {
    const cases: [string, string, string][] = [
      [model(`<bpmn:subProcess id="t">${spec}<bpmn:startEvent id="ss" /></bpmn:subProcess>`), 't', 'bpmn:ioSpecification on subProcess is not supported yet'],
      [model(`<bpmn:task id="t">${spec}<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>2</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics></bpmn:task>`), 't', 'bpmn:ioSpecification on a multi-instance task is not supported yet'],
    ];
    for (const [xml, elementId, message] of cases) {
      const { problems } = await compileFiles([{ name: 'm.bpmn', content: xml }]);
      expect(problems).toEqual(expect.arrayContaining([expect.objectContaining({ elementId, message: expect.stringContaining(message) })]));
    }
  });
});
