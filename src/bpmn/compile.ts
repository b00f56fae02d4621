/**
 * BPMN definitions (moddle tree) → validated ProcessGraph.
 *
 * The compiler works in two passes per process:
 * 1. walk the scopes (process, embedded subprocesses), classify every flow node
 *    (supported → graph element; anything else → "… is not supported yet"),
 *    and collect sequence flows with the scope they are declared in;
 * 2. resolve and validate flows, derive incoming/outgoing lists, then check the
 *    per-element rules that need them (start/end/gateway/default/conditions).
 *
 * A process compiles to a graph only when it has no problem at all; problems
 * carry the file name and the element id so a deployment can be fixed from the
 * error alone.
 */
import {
  documentationOf,
  readHumanTask,
  readServiceTask,
  spiffScripts,
  unwrapDollarExpression,
} from './extensions.js';
import {
  bool,
  child,
  extension,
  is,
  list,
  localType,
  parseXml,
  str,
  text,
  type ModdleElement,
  type ParseWarning,
} from './model.js';
import type {
  ElementType,
  GraphElement,
  GraphFlow,
  GraphScope,
  HumanTaskDefinition,
  ProcessGraph,
  ServiceTaskDefinition,
} from './types.js';

export interface ModelFile {
  name: string;
  content: string;
}

export interface Problem {
  file: string;
  elementId: string | null;
  message: string;
}

export interface CompiledProcess {
  key: string;
  name: string | null;
  file: string;
  graph: ProcessGraph;
}

/** Everything found in one file, with problems kept apart per process. */
export interface FileResult {
  file: string;
  /** problems of the file as a whole (not XML, duplicate ids, no process) */
  fileProblems: Problem[];
  processes: { key: string; name: string | null; graph: ProcessGraph | null; problems: Problem[] }[];
}

const JS_SCRIPT_FORMATS = new Set([
  'javascript',
  'js',
  'ecmascript',
  'text/javascript',
  'application/javascript',
  'text/ecmascript',
  'application/ecmascript',
]);

/** flowElements that are not flow nodes and carry no behaviour */
const IGNORED_FLOW_ELEMENTS = new Set(['bpmn:DataObject', 'bpmn:DataObjectReference', 'bpmn:DataStoreReference']);

export async function compileFile(file: ModelFile): Promise<FileResult> {
  const result: FileResult = { file: file.name, fileProblems: [], processes: [] };
  const fileProblem = (elementId: string | null, message: string): void => {
    result.fileProblems.push({ file: file.name, elementId, message });
  };

  let parsed;
  try {
    parsed = await parseXml(file.content);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    fileProblem(null, `not a BPMN 2.0 definitions document: ${oneLine(msg)}`);
    return result;
  }
  const { definitions, warnings } = parsed;
  if (!is(definitions, 'bpmn:Definitions')) {
    fileProblem(null, 'not a BPMN 2.0 definitions document');
    return result;
  }

  const unresolved = new Map<ModdleElement, Map<string, string>>();
  for (const w of warnings) {
    const problem = warningProblem(w);
    if (problem) fileProblem(problem.elementId, problem.message);
    if (w.element && w.property && w.value !== undefined && /^unresolved reference/.test(w.message)) {
      let byProp = unresolved.get(w.element);
      if (!byProp) unresolved.set(w.element, (byProp = new Map()));
      byProp.set(w.property.replace(/^bpmn:/, ''), w.value);
    }
  }

  const processes = list(definitions, 'rootElements').filter((r) => is(r, 'bpmn:Process'));
  if (processes.length === 0) {
    fileProblem(null, 'the file contains no process');
    return result;
  }
  // Processes of empty pools (collaboration participants modelled as black boxes) are skipped.
  const deployable = processes.filter((p) => list(p, 'flowElements').length > 0);
  if (deployable.length === 0) {
    fileProblem(null, 'the file contains no process with flow elements');
    return result;
  }

  for (const p of deployable) {
    const key = str(p, 'id') ?? '';
    const compiled = compileProcessElement(p, file.name, unresolved);
    result.processes.push({ key, name: text(p, 'name'), graph: compiled.graph, problems: compiled.problems });
  }
  return result;
}

/** Moddle warnings that mean a BPMN element was dropped or a reference is broken. */
function warningProblem(w: ParseWarning): { elementId: string | null; message: string } | null {
  const nested = /nested error: (.*)$/m.exec(w.message)?.[1] ?? '';
  const line = /line: (\d+)/.exec(w.message)?.[1];
  const at = line !== undefined ? ` (line ${Number(line) + 1})` : '';
  const dup = /duplicate ID <([^>]*)>/.exec(nested);
  if (dup) return { elementId: dup[1] ?? null, message: `duplicate id '${dup[1]}'${at}` };
  const illegal = /illegal ID <([^>]*)>/.exec(nested);
  if (illegal) return { elementId: illegal[1] ?? null, message: `illegal id '${illegal[1]}'${at}` };
  // Unknown elements in the BPMN namespace would otherwise vanish silently.
  // Unknown elements/attributes of other namespaces are vendor data we tolerate.
  const unknownBpmn = /unknown type <bpmn:([^>]*)>/.exec(nested);
  if (unknownBpmn) return { elementId: null, message: `unknown BPMN element '${unknownBpmn[1]}'${at}` };
  return null;
}

/** moddle's multi-line parse error as one line, with 1-based line numbers */
function oneLine(message: string): string {
  return message
    .split('\n')
    .map((s) => s.trim().replace(/^line: (\d+)$/, (_m, n: string) => `line: ${Number(n) + 1}`))
    .filter(Boolean)
    .join(', ');
}

interface ScopeDraft {
  id: string;
  kind: 'process' | 'subProcess';
  parentScopeId: string | null;
  elementIds: string[];
  startEventIds: string[];
  noneStartEventIds: string[];
}

interface NodeDraft {
  el: ModdleElement;
  id: string;
  scopeId: string;
  /** null when the node is unsupported (already reported) */
  type: ElementType | null;
}

interface FlowDraft {
  el: ModdleElement;
  id: string;
  scopeId: string;
}

function compileProcessElement(
  processEl: ModdleElement,
  file: string,
  unresolved: Map<ModdleElement, Map<string, string>>,
): { graph: ProcessGraph | null; problems: Problem[] } {
  const problems: Problem[] = [];
  const problem = (elementId: string | null, message: string): void => {
    problems.push({ file, elementId, message });
  };

  const processId = str(processEl, 'id') ?? '';
  const scopes: ScopeDraft[] = [];
  const nodes = new Map<string, NodeDraft>();
  const nodeByEl = new Map<ModdleElement, NodeDraft>();
  const flowDrafts: FlowDraft[] = [];
  /** ids of flows that carry a conditionExpression element (even an empty or rejected one) */
  const conditional = new Set<string>();
  const lanes = new Map<string, string | null>();

  collectLanes(processEl, lanes);

  const walkScope = (container: ModdleElement, scopeId: string, kind: ScopeDraft['kind'], parent: string | null): void => {
    const scope: ScopeDraft = { id: scopeId, kind, parentScopeId: parent, elementIds: [], startEventIds: [], noneStartEventIds: [] };
    scopes.push(scope);
    if (kind === 'subProcess') collectLanes(container, lanes);
    for (const el of list(container, 'flowElements')) {
      const id = str(el, 'id') ?? '';
      if (is(el, 'bpmn:SequenceFlow')) {
        flowDrafts.push({ el, id, scopeId });
        continue;
      }
      if (IGNORED_FLOW_ELEMENTS.has(el.$type)) continue;
      if (!id) {
        problem(null, `${localType(el)} without an id`);
        continue;
      }
      const type = classify(el, (message) => problem(id, message));
      const draft: NodeDraft = { el, id, scopeId, type };
      nodes.set(id, draft);
      nodeByEl.set(el, draft);
      scope.elementIds.push(id);
      if (is(el, 'bpmn:StartEvent')) {
        scope.startEventIds.push(id);
        if (type === 'startEvent') scope.noneStartEventIds.push(id);
      }
      if (type === 'subProcess') walkScope(el, id, 'subProcess', scopeId);
    }
    if (scope.noneStartEventIds.length === 0) {
      problem(scopeId, `${kind === 'process' ? 'process' : 'subprocess'} '${scopeId}' has no none start event`);
    } else if (scope.noneStartEventIds.length > 1) {
      problem(
        scopeId,
        `${kind === 'process' ? 'process' : 'subprocess'} '${scopeId}' has more than one none start event (${scope.noneStartEventIds.join(', ')})`,
      );
    }
  };
  walkScope(processEl, processId, 'process', null);

  // ---- flows ---------------------------------------------------------------
  const flows: Record<string, GraphFlow> = {};
  const incoming = new Map<string, string[]>();
  const outgoing = new Map<string, string[]>();
  for (const { el, id, scopeId } of flowDrafts) {
    const endpoint = (prop: 'sourceRef' | 'targetRef'): NodeDraft | null => {
      const ref = child(el, prop);
      if (!ref) {
        const missing = unresolved.get(el)?.get(prop);
        problem(id, missing !== undefined ? `sequence flow ${prop} '${missing}' does not exist` : `sequence flow has no ${prop}`);
        return null;
      }
      const node = nodeByEl.get(ref);
      const refId = str(ref, 'id') ?? '?';
      if (!node) {
        problem(id, `sequence flow ${prop} '${refId}' is not a flow node of this process scope ('${scopeId}')`);
        return null;
      }
      if (node.scopeId !== scopeId) {
        problem(id, `sequence flow ${prop} '${refId}' is not in the same scope as the flow ('${node.scopeId}' vs '${scopeId}')`);
        return null;
      }
      return node;
    };
    const source = endpoint('sourceRef');
    const target = endpoint('targetRef');

    let condition: string | null = null;
    const condEl = child(el, 'conditionExpression');
    if (condEl) {
      conditional.add(id);
      const body = str(condEl, 'body')?.trim() ?? '';
      const language = text(condEl, 'language');
      if (body === '') problem(id, 'condition expression is empty');
      else if (language !== null && !JS_SCRIPT_FORMATS.has(language.toLowerCase())) {
        problem(id, `condition language '${language}' is not supported (conditions are JavaScript expressions)`);
      } else if (body.startsWith('=')) {
        problem(id, 'FEEL conditions (=…) are not supported yet; conditions are JavaScript expressions');
      } else {
        condition = unwrapDollarExpression(body) ?? body;
        if (condition === '') problem(id, 'condition expression is empty');
      }
    }

    if (!source || !target) continue;
    const defaultRef = child(source.el, 'default');
    flows[id] = {
      id,
      name: text(el, 'name'),
      sourceId: source.id,
      targetId: target.id,
      scopeId,
      condition,
      isDefault: defaultRef === el,
    };
    push(outgoing, source.id, id);
    push(incoming, target.id, id);
  }

  // ---- elements ------------------------------------------------------------
  const elements: Record<string, GraphElement> = {};
  for (const node of nodes.values()) {
    const { el, id, type } = node;
    if (type === null) continue;
    const report = (message: string): void => problem(id, message);
    const ins = incoming.get(id) ?? [];
    const outs = outgoing.get(id) ?? [];

    // default flow: must be one of the element's own outgoing flows
    let defaultFlow: string | null = null;
    const defaultRef = child(el, 'default');
    const missingDefault = unresolved.get(el)?.get('default');
    if (missingDefault !== undefined) report(`default flow '${missingDefault}' does not exist`);
    if (defaultRef) {
      const defId = str(defaultRef, 'id') ?? '?';
      if (!is(defaultRef, 'bpmn:SequenceFlow') || !outs.includes(defId)) {
        report(`default flow '${defId}' is not an outgoing sequence flow of '${id}'`);
      } else {
        defaultFlow = defId;
      }
    }

    const base = {
      id,
      name: text(el, 'name'),
      scopeId: node.scopeId,
      incoming: ins,
      outgoing: outs,
      lane: lanes.get(id) ?? laneOfEnclosing(node, nodes, lanes),
      documentation: documentationOf(el),
      boundaryEventIds: [] as string[],
    };
    const activity = () => ({ ...base, defaultFlow, ...spiffScripts(el), loop: null });

    if (type !== 'serviceTask' && (extension(el, 'camunda:InputOutput') || extension(el, 'zeebe:IoMapping'))) {
      report(`input/output mappings on ${type} are not supported yet`);
    }

    switch (type) {
      case 'startEvent':
        if (ins.length > 0) report('start event must not have incoming sequence flows');
        if (outs.length === 0) report('start event has no outgoing sequence flow');
        elements[id] = { ...base, type, eventDefinition: null };
        break;
      case 'endEvent':
        if (outs.length > 0) report('end event must not have outgoing sequence flows');
        elements[id] = {
          ...base,
          type,
          eventDefinition: list(el, 'eventDefinitions').length > 0 ? { kind: 'terminate' } : null,
        };
        break;
      case 'intermediateThrowEvent':
        elements[id] = { ...base, type, eventDefinition: null };
        break;
      case 'exclusiveGateway':
        if (outs.length === 0) report('gateway has no outgoing sequence flow');
        if (outs.length > 1) {
          for (const f of outs) {
            const flow = flows[f];
            if (flow && f !== defaultFlow && !conditional.has(f)) {
              problems.push({
                file,
                elementId: f,
                message: `sequence flow '${f}' leaves exclusive gateway '${id}' without a condition and is not its default flow`,
              });
            }
          }
        }
        elements[id] = { ...base, type, defaultFlow };
        break;
      case 'parallelGateway':
        if (outs.length === 0) report('gateway has no outgoing sequence flow');
        for (const f of outs) {
          if (conditional.has(f)) {
            problems.push({ file, elementId: f, message: `sequence flow '${f}' leaves parallel gateway '${id}' and must not have a condition` });
          }
        }
        elements[id] = { ...base, type };
        break;
      case 'task':
        elements[id] = { ...activity(), type };
        break;
      case 'scriptTask': {
        const format = text(el, 'scriptFormat');
        if (format !== null && !JS_SCRIPT_FORMATS.has(format.toLowerCase())) {
          report(`script format '${format}' is not supported (scripts are JavaScript)`);
        }
        if (extension(el, 'zeebe:Script')) report('zeebe:script (FEEL) is not supported yet');
        if (text(el, 'resource') !== null) report('camunda:resource (external script) is not supported yet');
        if (text(el, 'resultVariable') !== null) report('camunda:resultVariable on a script task is not supported yet');
        const script = str(el, 'script') ?? '';
        if (script.trim() === '') report('script is empty');
        elements[id] = { ...activity(), type, script };
        break;
      }
      case 'userTask':
      case 'manualTask': {
        const human: HumanTaskDefinition = readHumanTask(el);
        elements[id] = type === 'userTask' ? { ...activity(), type, human } : { ...activity(), type, human };
        break;
      }
      case 'serviceTask': {
        const service: ServiceTaskDefinition | null = readServiceTask(el, report);
        if (service) elements[id] = { ...activity(), type, service };
        break;
      }
      case 'subProcess':
        elements[id] = { ...activity(), type, childScopeId: id };
        break;
    }
  }

  if (problems.length > 0) return { graph: null, problems };

  const graphScopes: Record<string, GraphScope> = {};
  for (const s of scopes) {
    graphScopes[s.id] = {
      id: s.id,
      kind: s.kind,
      parentScopeId: s.parentScopeId,
      noneStartEventId: s.noneStartEventIds[0] ?? '',
      startEventIds: s.startEventIds,
      elementIds: s.elementIds,
    };
  }
  const graph: ProcessGraph = {
    v: 1,
    key: processId,
    name: text(processEl, 'name'),
    rootScopeId: processId,
    elements,
    flows,
    scopes: graphScopes,
  };
  return { graph: deepFreeze(graph), problems };
}

/**
 * Decides what a flow node compiles to. Returns null (after reporting why) for
 * everything the engine cannot run yet, so no flow node is silently ignored.
 */
function classify(el: ModdleElement, report: (message: string) => void): ElementType | null {
  const type = localType(el);
  const eventDefinitions = [...list(el, 'eventDefinitions'), ...list(el, 'eventDefinitionRef')];
  const definitionNames = eventDefinitions.map(localType).join(', ');

  const loop = child(el, 'loopCharacteristics');
  if (loop) {
    report(
      is(loop, 'bpmn:MultiInstanceLoopCharacteristics')
        ? `multi-instance (multiInstanceLoopCharacteristics) on ${type} '${str(el, 'id')}' is not supported yet`
        : `${localType(loop)} on ${type} '${str(el, 'id')}' is not supported yet`,
    );
    return null;
  }

  switch (el.$type) {
    case 'bpmn:StartEvent':
    case 'bpmn:IntermediateThrowEvent':
      if (eventDefinitions.length > 0) {
        report(`${type} with ${definitionNames} is not supported yet`);
        return null;
      }
      return type as ElementType;
    case 'bpmn:EndEvent':
      if (eventDefinitions.length === 1 && is(eventDefinitions[0], 'bpmn:TerminateEventDefinition')) return 'endEvent';
      if (eventDefinitions.length > 0) {
        report(`${type} with ${definitionNames} is not supported yet`);
        return null;
      }
      return 'endEvent';
    case 'bpmn:ExclusiveGateway':
    case 'bpmn:ParallelGateway':
    case 'bpmn:Task':
    case 'bpmn:ScriptTask':
    case 'bpmn:UserTask':
    case 'bpmn:ManualTask':
    case 'bpmn:ServiceTask':
      return type as ElementType;
    case 'bpmn:SubProcess':
      if (bool(el, 'triggeredByEvent')) {
        report('event subProcess (triggeredByEvent) is not supported yet');
        return null;
      }
      return 'subProcess';
    default:
      report(`${type} is not supported yet`);
      return null;
  }
}

/** Lane names by flow node id; nested lanes are visited after their parent so the innermost wins. */
function collectLanes(container: ModdleElement, lanes: Map<string, string | null>): void {
  const visitLaneSet = (laneSet: ModdleElement): void => {
    for (const lane of list(laneSet, 'lanes')) {
      const name = text(lane, 'name');
      for (const ref of list(lane, 'flowNodeRef')) {
        const id = str(ref, 'id');
        if (id) lanes.set(id, name);
      }
      const childSet = child(lane, 'childLaneSet');
      if (childSet) visitLaneSet(childSet);
    }
  };
  for (const laneSet of list(container, 'laneSets')) visitLaneSet(laneSet);
}

/** An element without a lane of its own inherits the lane of its enclosing subprocess. */
function laneOfEnclosing(node: NodeDraft, nodes: Map<string, NodeDraft>, lanes: Map<string, string | null>): string | null {
  let scopeId = node.scopeId;
  for (;;) {
    const enclosing = nodes.get(scopeId);
    if (!enclosing) return null;
    const lane = lanes.get(enclosing.id);
    if (lane !== undefined) return lane;
    scopeId = enclosing.scopeId;
  }
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const existing = map.get(key);
  if (existing) existing.push(value);
  else map.set(key, [value]);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
