/**
 * BPMN 2.0 XML → validated, compiled, immutable ProcessGraph.
 *
 * Parsing uses bpmn-moddle with the camunda, zeebe and our own spiffworkflow
 * extension descriptors, so vendor extension elements come out typed.
 *
 * ## Support table
 *
 * ## Languages
 *
 * Every expression and script is JavaScript or Python (CompileOptions.language,
 * compile.ts `languageAt`). The process's language is the definitions'
 * `expressionLanguage` when it names one, else the deployment's `language`
 * option, else Python for a model that declares the spiffworkflow namespace
 * (SpiffArena) and JavaScript for any other; an element or flow whose own
 * attribute names another language (a script task's `scriptFormat`, a
 * formal expression's `language`: conditions, timers, loop expressions) is
 * recorded in `ProcessGraph.languages`. A language Baton does not run is a
 * problem naming the element (or the file, for `expressionLanguage`); the
 * BPMN default XPath URI counts as unset. Camunda-dialect values
 * (camunda:/zeebe: mappings, `${expr}`, `=expr`) are evaluated as JavaScript
 * whatever the language: FEEL (`=expr`) or JUEL (`${expr}`) wrappers are
 * unwrapped, so names, paths, arithmetic and comparisons work as written;
 * other FEEL does not. JavaScript timer expressions are syntax-checked at
 * deploy; Python ones (no Python parser at deploy) when they are evaluated.
 *
 * | BPMN element                         | status                                                                 |
 * |--------------------------------------|------------------------------------------------------------------------|
 * | process                              | supported; key = `id`, name = `name`; processes with no flow elements (empty pools) are skipped |
 * | startEvent (none)                    | supported; at most one per process, exactly one per embedded subprocess |
 * | startEvent message/timer/signal/conditional | supported at process level (the runtime starts the instance at it by `startEventId`); a process may have only such starts |
 * | startEvent error/escalation          | supported in event subprocesses only                                    |
 * | endEvent none, terminate             | supported; terminate ends the enclosing scope (subprocess) or the whole instance |
 * | endEvent error                       | supported: caught by an error event subprocess or error boundary event; uncaught → `unhandled_bpmn_error` incident (in a called instance: propagated to the parent) |
 * | endEvent escalation, message, signal | supported (escalation uncaught: no incident, as in Camunda)             |
 * | endEvent compensation                | supported: compensates the scope (all, or `activityRef`), then ends     |
 * | endEvent cancel                      | supported inside a transaction with a cancel boundary event             |
 * | intermediateThrowEvent none, message, signal, escalation, link | supported                                     |
 * | intermediateThrowEvent compensation  | supported: compensates the scope (all, or `activityRef`), waits for the handlers, goes on |
 * | intermediateCatchEvent timer, message, signal, conditional, link | supported                                   |
 * | boundaryEvent error (by code, catch-all), escalation, timer, message, signal, conditional | supported, interrupting and non-interrupting (error always interrupts) |
 * | boundaryEvent compensation           | supported: marks the activity compensable; its handler is the isForCompensation activity it is associated with |
 * | boundaryEvent cancel                 | supported on transactions                                               |
 * | several event definitions on one event (multiple / parallel multiple) | not supported yet                      |
 * | timer definitions                    | timeDate (ISO 8601 date-time), timeDuration (ISO 8601 duration), timeCycle (`R[n]/duration`, `R[n]/start/duration`, `R[n]/duration/end`, cron with optional seconds, UTC unless prefixed `CRON_TZ=Zone`); literals (quoted or not) are validated at deploy time, `=expr` / `${expr}` evaluated when the timer is scheduled |
 * | message                              | name from `bpmn:message name`; correlation key from the message's `zeebe:subscription correlationKey`, else (BPMN standard, SpiffArena) from the `messagePath` of the `bpmn:correlationPropertyRetrievalExpression`s whose `messageRef` is the message (one per `bpmn:correlationProperty`; `${…}` / `=` unwrapped; a JS expression). One property: the key is its path's value; several: the values in property-id order (strings as is, null/absent as '', others as JSON) joined with `|`. The zeebe key wins when both exist. The key expression is evaluated against the catching instance's variables when its subscription opens (catch events, receive tasks, boundary events, event-subprocess starts, event-based gateways) and against the thrower's variables on a throw (throw/end events, send tasks) |
 * | message correlation on publish       | the retrieval paths are registered by message name at deploy (latest version of each process key); POST /v1/messages without `correlationKey` computes the key from the published `variables` by the same rule, reading plain dotted paths only (`a.b`, `a["b"]`, `a['b']`, `a[0]`; no user code runs); a path that is not plain, or no registered paths → the key stays null; names registered by several process keys with different paths: the first key in process-key order is used |
 * | sequenceFlow                         | supported; `conditionExpression` body is an expression in the flow's language (a Camunda `${…}` wrapper is stripped; FEEL `=…` and languages other than JavaScript and Python are rejected) |
 * | `default` flow                       | supported on exclusive and inclusive gateways and activities            |
 * | exclusiveGateway                     | supported (decision and merge)                                         |
 * | parallelGateway                      | supported (fork, join, mixed)                                          |
 * | inclusiveGateway                     | supported (fork, join of one token per flow that waits for the tokens that can still arrive; `reach` precomputed) |
 * | eventBasedGateway                    | supported; its flows must lead to timer/message/signal/conditional catch events or receive tasks |
 * | complexGateway                       | not supported yet                                                       |
 * | task                                 | supported: a pass-through; in a model declaring the spiffworkflow namespace a manual human task (SpiffWorkflow's NoneTask) |
 * | scriptTask                           | supported; scriptFormat empty (the process's language), JavaScript or Python spellings; other formats, zeebe:script, camunda:resource rejected; camunda:resultVariable when the script is one JavaScript expression (its value is stored), else rejected |
 * | userTask                             | supported; assignee/candidateGroups/candidateUsers/formKey from camunda: attributes or zeebe:assignmentDefinition/formDefinition; spiffworkflow properties, instructionsForEndUser (rendered at task creation) and documentation go to `properties` |
 * | manualTask                           | supported (a human task of kind `manual`)                              |
 * | serviceTask                          | supported; topic from zeebe:taskDefinition type, camunda:topic, spiffworkflow:serviceTaskOperator id or a non-default `implementation`; job input from the zeebe:ioMapping / camunda:inputOutput inputs (see below) and spiffworkflow:parameters; headers from zeebe:taskHeaders |
 * | businessRuleTask                     | supported as a service task when it has a task type; otherwise "not supported yet" (DMN comes later) |
 * | sendTask / receiveTask               | supported: like a message throw / catch event (without messageRef: the message is named after the task, else its id) |
 * | spiffworkflow:preScript/postScript   | supported on activities (run before the behaviour / before leaving; per instance on loops) |
 * | subProcess (embedded)                | supported; its own variable scope                                      |
 * | subProcess triggeredByEvent (event subprocess) | supported: timer, message, signal, conditional, error, escalation starts; interrupting and not |
 * | callActivity                         | supported: `calledElement` or `zeebe:calledElement processId`; binding latest / `camunda:calledElementBinding` deployment / version + `camunda:calledElementVersion`; variables: all in and out by default, or `camunda:in`/`camunda:out` (source, sourceExpression, target, variables="all"), or `zeebe:ioMapping` (+ propagateAll… flags); expressions as calledElement rejected |
 * | transaction                          | supported: an embedded subprocess whose cancel end event compensates it and leaves by its cancel boundary event |
 * | isForCompensation (compensation handlers) + association | supported (handler without sequence flows, in the activity's scope) |
 * | adHocSubProcess                      | not supported yet                                                       |
 * | multiInstanceLoopCharacteristics     | supported on every activity, parallel and sequential: loopCardinality; input collection and element in the BPMN-standard/SpiffArena form (loopDataInputRef/inputDataItem, loopDataOutputRef/outputDataItem), `camunda:collection`/`camunda:elementVariable`, `zeebe:loopCharacteristics`; output collection; completionCondition; `behavior` other than All rejected |
 * | standardLoopCharacteristics          | supported: loopCondition, testBefore, loopMaximum (one of the two required) |
 * | camunda:inputOutput / zeebe:ioMapping | supported where Camunda 7 allows it: every task, embedded subprocess / transaction, call activity (camunda:inputOutput; a zeebe:ioMapping there is the call's mapping), intermediate catch and throw events, end events (inputs only). Values: text (trimmed; empty → null), `${expr}`/`#{expr}`, composite text `a ${x} b`, camunda:list, camunda:map (literal or `${}` keys), inline JavaScript camunda:script that is one expression; zeebe `=expr` or static text. Rejected: on start and boundary events, gateways, event subprocesses (as Camunda 7; zeebe there: not supported yet), outputs on end events and on multi-instance activities (camunda), outputs on link throw events, non-JavaScript or resource scripts, scripts of several statements, Camunda's `execution.…` API, both vendors on one element |
 * | camunda:executionListener / camunda:taskListener, zeebe:executionListeners / zeebe:taskListeners | rejected, each named with its event and implementation (on the process, flow nodes and sequence flows): listeners do not run |
 * | ioSpecification (dataInput/dataOutput) | supported on tasks as SpiffWorkflow reads it (inputs must be set at start, outputs at completion, only outputs go on); on a process: a call activity passes only its data inputs in and takes only its data outputs back (each must be set); on subprocesses and multi-instance tasks rejected (not supported yet) |
 * | dataObject                           | supported: a variable of the scope it is declared in (named by its id, null until written) |
 * | dataObjectReference, data input/output associations, dataStoreReference | tolerated; the data object itself carries the semantics |
 * | laneSet / lane                       | tolerated; the innermost lane name is recorded per flow node           |
 * | collaboration, participant, messageFlow | ignored                                                             |
 * | process isExecutable="false"         | skipped (not compiled, not deployed), as Camunda does; a deployment with nothing executable is refused. No attribute: executable |
 * | textAnnotation, association, group, documentation, BPMNDiagram | ignored                                      |
 *
 * "Not supported yet" is a deploy-time problem naming the element: no flow
 * node is ever silently ignored. Unknown elements and attributes of other
 * namespaces are tolerated; an unknown element of the BPMN namespace is a problem.
 *
 * ## Validation problems (each `{ file, elementId, message }`)
 *
 * not XML / not bpmn:definitions (elementId null), no process, duplicate or
 * illegal ids, sequence flow source/target missing or outside the flow's scope,
 * gateway without outgoing flow (an activity or start event without outgoing
 * flow is an implicit end, as in Camunda), start event with incoming flow, end
 * event with outgoing flow, exclusive gateway with several outgoing flows of
 * which a non-default one has no condition, default flow that is not an
 * outgoing flow of its element, condition on a parallel gateway's outgoing
 * flow, a scope without start events and without a node to start at
 * implicitly, several none starts, embedded subprocess with event starts, event
 * subprocess without exactly one start event with a definition or with
 * sequence flows, empty script, empty condition, service task without a task
 * type (in a Camunda model; elsewhere an untyped service task is a no-op), boundary event not attached to an activity of its own scope, timer
 * without (or with more than one) time definition or with an invalid literal,
 * message/signal/error/escalation references that do not exist or name
 * nothing, link throw without a matching link catch (or two catches of one
 * name), event-based gateway flows that do not lead to catch events or receive
 * tasks, call activity without calledElement or with a bad version binding,
 * multi-instance without collection or cardinality (or output collection
 * without output element), standard loop without condition and maximum.
 */
import { BatonError } from '../errors.js';
import { compileFile, type CompileOptions, type CompiledProcess, type ModelFile, type Problem } from './compile.js';
import { cycleIntervalMs, parseCycle } from './timer.js';
import type { ProcessGraph } from './types.js';

export type { CompileOptions, CompiledProcess, ModelFile, Problem } from './compile.js';
export type * from './types.js';

/**
 * Compiles every process of every file. A process is returned only when it
 * compiled without a problem; problems are reported per file so one bad file
 * does not hide the problems (or the processes) of the others. The caller
 * decides whether a deployment with problems is rejected as a whole.
 */
export async function compileFiles(files: ModelFile[], options: CompileOptions = {}): Promise<{ processes: CompiledProcess[]; problems: Problem[]; notExecutable: Problem[] }> {
  const processes: CompiledProcess[] = [];
  const problems: Problem[] = [];
  const notExecutable: Problem[] = [];
  const seenKeys = new Map<string, string>();
  for (const file of files) {
    const result = await compileFile(file, options);
    problems.push(...result.fileProblems);
    for (const id of result.notExecutable) notExecutable.push({ file: file.name, elementId: id, message: `process '${id}' is not executable (isExecutable="false")` });
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
  return { processes, problems, notExecutable };
}

/**
 * Compiles one process of one file. Throws BatonError('invalid_model', …,
 * problems) when the process is not found, has problems, or its file has
 * file-level problems (not BPMN, duplicate ids, …).
 */
export async function compileProcess(xml: string, processKey: string, fileName = 'model.bpmn', options: CompileOptions = {}): Promise<ProcessGraph> {
  const result = await compileFile({ name: fileName, content: xml }, options);
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

/**
 * Timer cycles firing more often than every `minIntervalMs` (R100/PT0S
 * started 100 instances within a second; R/PT0.001S would never stop): one
 * problem per element whose literal cycle is that short. A cycle given by an
 * expression is checked when it is armed (EngineContext.minTimerIntervalMs).
 */
export function timerCycleProblems(process: CompiledProcess, minIntervalMs: number): Problem[] {
  const problems: Problem[] = [];
  for (const el of Object.values(process.graph.elements)) {
    const def = 'eventDefinition' in el ? el.eventDefinition : null;
    if (def?.kind !== 'timer' || def.timer.kind !== 'cycle' || !def.timer.literal) continue;
    const spec = parseCycle(def.timer.expression);
    const gap = spec ? cycleIntervalMs(spec) : null;
    if (gap !== null && gap < minIntervalMs) {
      problems.push({
        file: process.file,
        elementId: el.id,
        message: `timer cycle '${def.timer.expression}' fires every ${gap} ms, more often than the minimum of ${minIntervalMs} ms (BATON_MIN_TIMER_INTERVAL_MS)`,
      });
    }
  }
  return problems;
}
