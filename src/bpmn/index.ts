/**
 * BPMN 2.0 XML → validated, compiled, immutable ProcessGraph.
 *
 * Parsing uses bpmn-moddle with the camunda, zeebe and our own spiffworkflow
 * extension descriptors, so vendor extension elements come out typed.
 *
 * ## Support table
 *
 * | BPMN element                         | status                                                                 |
 * |--------------------------------------|------------------------------------------------------------------------|
 * | process                              | supported; key = `id`, name = `name`; processes with no flow elements (empty pools) are skipped |
 * | startEvent (none)                    | supported; exactly one none start per scope (process, subprocess)      |
 * | startEvent with an event definition  | not supported yet                                                      |
 * | endEvent (none)                      | supported                                                              |
 * | endEvent terminate                   | supported: ends the enclosing scope (subprocess) or the whole instance |
 * | endEvent with other definitions      | not supported yet                                                      |
 * | intermediateThrowEvent (none)        | supported (milestone: passes through)                                  |
 * | intermediateThrowEvent with a definition, intermediateCatchEvent, boundaryEvent | not supported yet           |
 * | sequenceFlow                         | supported; `conditionExpression` body is a JavaScript expression (a Camunda `${…}` wrapper is stripped; FEEL `=…` and non-JS `language` are rejected) |
 * | `default` flow                       | supported on exclusive gateways and activities                         |
 * | exclusiveGateway                     | supported (decision and merge)                                         |
 * | parallelGateway                      | supported (fork, join, mixed)                                          |
 * | inclusiveGateway, eventBasedGateway, complexGateway | not supported yet                                       |
 * | task                                 | supported (pass-through)                                               |
 * | scriptTask                           | supported; scriptFormat empty/javascript/js/ecmascript; other formats, zeebe:script, camunda:resource, camunda:resultVariable rejected |
 * | userTask                             | supported; assignee/candidateGroups/candidateUsers/formKey from camunda: attributes or zeebe:assignmentDefinition/formDefinition; spiffworkflow properties, instructionsForEndUser and documentation go to `properties` |
 * | manualTask                           | supported (a human task of kind `manual`)                              |
 * | serviceTask                          | supported; topic from zeebe:taskDefinition type, camunda:topic, spiffworkflow:serviceTaskOperator id or a non-default `implementation`; inputs from zeebe:ioMapping, camunda:inputOutput, spiffworkflow:parameters; headers from zeebe:taskHeaders; output mappings rejected |
 * | spiffworkflow:preScript/postScript   | supported on activities (run before the behaviour / before leaving)    |
 * | subProcess (embedded)                | supported; its own variable scope                                      |
 * | subProcess triggeredByEvent, transaction, adHocSubProcess, callActivity | not supported yet                   |
 * | sendTask, receiveTask, businessRuleTask | not supported yet                                                   |
 * | loopCharacteristics (multi-instance, standard loop) on any activity | not supported yet                        |
 * | camunda:inputOutput / zeebe:ioMapping on non-service elements | not supported yet                               |
 * | laneSet / lane                       | tolerated; the innermost lane name is recorded per flow node           |
 * | collaboration, participant, messageFlow | ignored                                                             |
 * | textAnnotation, association, group, dataObject(Reference), dataStoreReference, documentation, BPMNDiagram | ignored |
 *
 * "Not supported yet" is a deploy-time problem naming the element: no flow
 * node is ever silently ignored. Unknown elements and attributes of other
 * namespaces are tolerated; an unknown element of the BPMN namespace is a problem.
 *
 * ## Validation problems (each `{ file, elementId, message }`)
 *
 * not XML / not bpmn:definitions (elementId null), no process, duplicate or
 * illegal ids, sequence flow source/target missing or outside the flow's scope,
 * gateway or start event without outgoing flow (an activity without outgoing
 * flow is an implicit end, as in Camunda), start event with incoming flow, end
 * event with outgoing flow, exclusive gateway with several outgoing flows of
 * which a non-default one has no condition, default flow that is not an
 * outgoing flow of its element, condition on a parallel gateway's outgoing
 * flow, scope without exactly one none start event, empty script, empty
 * condition, service task without a task type.
 */
import { BatonError } from '../errors.js';
import { compileFile, type CompiledProcess, type ModelFile, type Problem } from './compile.js';
import type { ProcessGraph } from './types.js';

export type { CompiledProcess, ModelFile, Problem } from './compile.js';
export type * from './types.js';

/**
 * Compiles every process of every file. A process is returned only when it
 * compiled without a problem; problems are reported per file so one bad file
 * does not hide the problems (or the processes) of the others. The caller
 * decides whether a deployment with problems is rejected as a whole.
 */
export async function compileFiles(files: ModelFile[]): Promise<{ processes: CompiledProcess[]; problems: Problem[] }> {
  const processes: CompiledProcess[] = [];
  const problems: Problem[] = [];
  const seenKeys = new Map<string, string>();
  for (const file of files) {
    const result = await compileFile(file);
    problems.push(...result.fileProblems);
    for (const p of result.processes) {
      problems.push(...p.problems);
      const other = seenKeys.get(p.key);
      if (other !== undefined) {
        problems.push({
          file: file.name,
          elementId: p.key,
          message: `process '${p.key}' is also defined in ${other === file.name ? 'this file' : `'${other}'`}`,
        });
        continue;
      }
      seenKeys.set(p.key, file.name);
      if (p.graph && result.fileProblems.length === 0) {
        processes.push({ key: p.key, name: p.name, file: file.name, graph: p.graph });
      }
    }
  }
  return { processes, problems };
}

/**
 * Compiles one process of one file. Throws BatonError('invalid_model', …,
 * problems) when the process is not found, has problems, or its file has
 * file-level problems (not BPMN, duplicate ids, …).
 */
export async function compileProcess(xml: string, processKey: string, fileName = 'model.bpmn'): Promise<ProcessGraph> {
  const result = await compileFile({ name: fileName, content: xml });
  const process = result.processes.find((p) => p.key === processKey);
  const problems = [...result.fileProblems, ...(process?.problems ?? [])];
  if (process?.graph && problems.length === 0) return process.graph;
  if (!process) {
    problems.push({ file: fileName, elementId: null, message: `process '${processKey}' not found` });
  }
  const summary = problems
    .slice(0, 5)
    .map((p) => (p.elementId ? `${p.elementId}: ${p.message}` : p.message))
    .join('; ');
  throw new BatonError(
    'invalid_model',
    process ? `process '${processKey}' is invalid: ${summary}` : `process '${processKey}' not found in ${fileName}${summary ? `: ${summary}` : ''}`,
    problems,
  );
}
