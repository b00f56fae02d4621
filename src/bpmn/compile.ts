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
  hasServiceImplementation,
  isSingleExpression,
  readHumanTask,
  readIoMapping,
  readIoSpecification,
  readServiceTask,
  refuseListeners,
  spiffScripts,
  unwrapDollarExpression,
} from './extensions.js';
import { languageOf, type Language } from '../expressions/language.js';
import { eventDefinitionsOf, readCallActivity, readEventDefinition, readLoop, readMessageRef, type Unresolved } from './readers.js';
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
  EventDefinition,
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
  /** ids of the processes left out because they say isExecutable="false" */
  notExecutable: string[];
}

/** flowElements that are not flow nodes and carry no behaviour */
const IGNORED_FLOW_ELEMENTS = new Set(['bpmn:DataObject', 'bpmn:DataObjectReference', 'bpmn:DataStoreReference']);

export interface CompileOptions {
  /**
   * Most flow nodes and sequence flows one process may have (a compile takes
   * ~90 ms and ~2 MB per thousand; the runtime compiles in its compile
   * thread, compile-thread.ts, not on its event loop).
   * Default 10,000 (BATON_MAX_MODEL_ELEMENTS).
   */
  maxElements?: number;
  /**
   * The language of expressions and scripts that name none, for a file whose
   * definitions declare no expressionLanguage (the deployment's `language`).
   * Without it: Python in a model that declares the spiffworkflow namespace,
   * else JavaScript. See bpmn/index.ts "Languages".
   */
  language?: Language;
}

export const DEFAULT_MAX_MODEL_ELEMENTS = 10_000;

export async function compileFile(file: ModelFile, options: CompileOptions = {}): Promise<FileResult> {
  const result: FileResult = { file: file.name, fileProblems: [], processes: [], notExecutable: [] };
  const fileProblem = (elementId: string | null, message: string): void => {
    result.fileProblems.push({ file: file.name, elementId, message });
  };

  const hostile = screenXml(file.content);
  if (hostile !== null) {
    fileProblem(null, hostile);
    return result;
  }
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
  const withContent = processes.filter((p) => list(p, 'flowElements').length > 0);
  if (withContent.length === 0) {
    fileProblem(null, 'the file contains no process with flow elements');
    return result;
  }
  // isExecutable="false" marks a pool that documents a partner, not something
  // to run: Camunda skips it and SpiffWorkflow refuses to run it. Skipped, not
  // validated; a missing attribute counts as executable (Camunda 7).
  const deployable = withContent.filter((p) => p['isExecutable'] !== false);
  for (const p of withContent) if (p['isExecutable'] === false) result.notExecutable.push(str(p, 'id') ?? '');

  const dialect = dialectOf(definitions);
  const declaredText = text(definitions, 'expressionLanguage');
  const declared = languageOf(declaredText);
  if (declared === null) {
    fileProblem(null, `expressionLanguage '${declaredText}' is not supported (Baton runs JavaScript and Python)`);
    return result;
  }
  const language: Language = declared !== 'unspecified' ? declared : (options.language ?? (dialect.spiffworkflow ? 'python' : 'javascript'));
  for (const p of deployable) {
    const key = str(p, 'id') ?? '';
    let compiled: { graph: ProcessGraph | null; problems: Problem[] };
    try {
      compiled = compileProcessElement(p, file.name, unresolved, dialect, language, options.maxElements ?? DEFAULT_MAX_MODEL_ELEMENTS);
    } catch (err) {
      // screenXml bounds the nesting, so the recursive walks below cannot run
      // out of stack on a model it let through; should one still do, the model
      // is rejected as too complex instead of failing the deployment with a 500.
      if (!(err instanceof RangeError)) throw err;
      compiled = { graph: null, problems: [{ file: file.name, elementId: key || null, message: `the process is too large or too deeply nested to compile (${err.message})` }] };
    }
    result.processes.push({ key, name: text(p, 'name'), graph: compiled.graph, problems: compiled.problems });
  }
  return result;
}

/** Deepest element nesting accepted in a model file (real models stay far below it). */
export const MAX_XML_DEPTH = 256;

/**
 * A linear pass over the raw text before the XML parser sees it. It refuses:
 *
 * - any DOCTYPE (and any other `<!…>` declaration but comments and CDATA).
 *   bpmn-moddle's parser (saxen) neither expands entities nor fetches external
 *   ones: `&lol9;` and `&xxe;` would reach the model as literal text (test/
 *   security/deploy-fuzz.test.ts proves it). A DTD in a BPMN file is still
 *   never legitimate, and refusing it outright (as Camunda does) keeps the
 *   safety independent of what a future parser version does with entities.
 * - characters XML 1.0 forbids (NUL and other C0 controls, U+FFFE/U+FFFF,
 *   unpaired surrogates), raw or as character references: Postgres cannot
 *   store NUL, and the rest would be mangled on the way to the database.
 * - element nesting deeper than MAX_XML_DEPTH: the compiler walks
 *   subprocesses recursively, and thousands of levels would overflow the stack.
 *
 * Returns a problem message, or null when the text may be parsed.
 */
export function screenXml(xml: string): string | null {
  const bad = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(xml);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    return `not well-formed XML: character U+${code} is not allowed in XML (line ${lineAt(xml, bad.index)})`;
  }
  const refs = /&#(x[0-9a-fA-F]+|[0-9]+);/g;
  for (let m = refs.exec(xml); m !== null; m = refs.exec(xml)) {
    const ref = m[1] as string;
    const cp = ref.startsWith('x') ? parseInt(ref.slice(1), 16) : parseInt(ref, 10);
    const ok = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
    if (!ok) return `not well-formed XML: character reference ${m[0].slice(0, 20)} names a character not allowed in XML (line ${lineAt(xml, m.index)})`;
  }
  let depth = 0;
  let i = xml.indexOf('<');
  while (i !== -1 && i < xml.length) {
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end === -1) return null; // unterminated: the parser reports it with a position
      i = xml.indexOf('<', end + 3);
      continue;
    }
    if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i + 9);
      if (end === -1) return null;
      i = xml.indexOf('<', end + 3);
      continue;
    }
    if (xml.startsWith('<!', i)) {
      const what = /^<!([A-Za-z]*)/.exec(xml.slice(i, i + 20))?.[1] || '…';
      return what.toUpperCase() === 'DOCTYPE'
        ? `DOCTYPE declarations are not accepted (no DTDs, no entity declarations) (line ${lineAt(xml, i)})`
        : `the markup declaration <!${what} is not accepted (line ${lineAt(xml, i)})`;
    }
    if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i + 2);
      if (end === -1) return null;
      i = xml.indexOf('<', end + 2);
      continue;
    }
    if (xml.startsWith('</', i)) {
      depth--;
      i = xml.indexOf('<', i + 2);
      continue;
    }
    // a start tag: find its '>' outside quoted attribute values
    let j = i + 1;
    let quote = '';
    for (; j < xml.length; j++) {
      const c = xml[j];
      if (quote !== '') {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '>' || c === '<') break;
    }
    if (j >= xml.length || xml[j] === '<') return null; // malformed: the parser says where
    if (xml[j - 1] !== '/') {
      depth++;
      if (depth > MAX_XML_DEPTH) return `the XML is nested deeper than ${MAX_XML_DEPTH} elements (line ${lineAt(xml, i)})`;
    }
    i = xml.indexOf('<', j + 1);
  }
  return null;
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let k = text.indexOf('\n'); k !== -1 && k < index; k = text.indexOf('\n', k + 1)) line++;
  return line;
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

/**
 * Which engines' vocabularies a definitions document declares (by namespace
 * URI, whatever the prefix). Where BPMN leaves a construct open, Baton reads
 * it the way the engine the model was written for does: see README,
 * "Semantics".
 */
export interface Dialect {
  spiffworkflow: boolean;
  camunda: boolean;
  zeebe: boolean;
}

const SPIFF_URI = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
const CAMUNDA_URI = 'http://camunda.org/schema/1.0/bpmn';
const ZEEBE_URI = 'http://camunda.org/schema/zeebe/1.0';

function dialectOf(definitions: ModdleElement): Dialect {
  const attrs = (definitions['$attrs'] ?? {}) as Record<string, unknown>;
  const uris = new Set(Object.entries(attrs).filter(([k]) => k.startsWith('xmlns:')).map(([, v]) => String(v)));
  return { spiffworkflow: uris.has(SPIFF_URI), camunda: uris.has(CAMUNDA_URI), zeebe: uris.has(ZEEBE_URI) };
}

interface ScopeDraft {
  id: string;
  kind: 'process' | 'subProcess' | 'eventSubProcess';
  parentScopeId: string | null;
  elementIds: string[];
  startEventIds: string[];
  noneStartEventIds: string[];
  eventSubProcessIds: string[];
  dataObjectIds: string[];
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
  unresolved: Unresolved,
  dialect: Dialect,
  language: Language,
  maxElements: number,
): { graph: ProcessGraph | null; problems: Problem[] } {
  const problems: Problem[] = [];
  const problem = (elementId: string | null, message: string): void => {
    problems.push({ file, elementId, message });
  };
  /** elements and flows whose expressions are not in the process's language */
  const languages: Record<string, Language> = {};
  /**
   * The language of an element's (or flow's) expressions: its own attribute
   * when it names one, else the process's. Null after a problem when the
   * attribute names a language Baton does not run.
   */
  const languageAt = (id: string, spelling: string | null, what: string): Language | null => {
    const own = languageOf(spelling);
    if (own === null) {
      problem(id, `${what} '${spelling}' is not supported (Baton runs JavaScript and Python)`);
      return null;
    }
    if (own === 'unspecified') return language;
    if (own !== language) languages[id] = own;
    return own;
  };

  const processId = str(processEl, 'id') ?? '';
  const processSpec = child(processEl, 'ioSpecification');
  const dataName = (d: ModdleElement) => text(d, 'id') ?? text(d, 'name') ?? '';
  const ioSpecification =
    list(processSpec, 'dataInputs').length + list(processSpec, 'dataOutputs').length > 0
      ? { inputs: list(processSpec, 'dataInputs').map(dataName), outputs: list(processSpec, 'dataOutputs').map(dataName) }
      : null;
  const scopes: ScopeDraft[] = [];
  const nodes = new Map<string, NodeDraft>();
  const nodeByEl = new Map<ModdleElement, NodeDraft>();
  const flowDrafts: FlowDraft[] = [];
  /** ids of flows that carry a conditionExpression element (even an empty or rejected one) */
  const conditional = new Set<string>();
  const lanes = new Map<string, string | null>();
  /** association source id → target ids (compensation boundary event → handler) */
  const associations = new Map<string, string[]>();

  collectLanes(processEl, lanes);

  const walkScope = (container: ModdleElement, scopeId: string, kind: ScopeDraft['kind'], parent: string | null): void => {
    const scope: ScopeDraft = {
      id: scopeId,
      kind,
      parentScopeId: parent,
      elementIds: [],
      startEventIds: [],
      noneStartEventIds: [],
      eventSubProcessIds: [],
      dataObjectIds: [],
    };
    scopes.push(scope);
    if (kind !== 'process') collectLanes(container, lanes);
    for (const a of list(container, 'artifacts')) {
      if (!is(a, 'bpmn:Association')) continue;
      const from = str(child(a, 'sourceRef'), 'id');
      const to = str(child(a, 'targetRef'), 'id');
      if (from && to) push(associations, from, to);
    }
    for (const el of list(container, 'flowElements')) {
      const id = str(el, 'id') ?? '';
      if (is(el, 'bpmn:SequenceFlow')) {
        flowDrafts.push({ el, id, scopeId });
        continue;
      }
      if (is(el, 'bpmn:DataObject') && id) scope.dataObjectIds.push(id);
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
        if (eventDefinitionsOf(el).length === 0) scope.noneStartEventIds.push(id);
      }
      if (type === 'subProcess') {
        const esp = bool(el, 'triggeredByEvent');
        if (esp) scope.eventSubProcessIds.push(id);
        walkScope(el, id, esp ? 'eventSubProcess' : 'subProcess', scopeId);
      }
    }
    const label = kind === 'process' ? 'process' : kind === 'subProcess' ? 'subprocess' : 'event subprocess';
    if (kind === 'eventSubProcess') {
      if (scope.startEventIds.length !== 1 || scope.noneStartEventIds.length > 0) {
        problem(scopeId, `${label} '${scopeId}' must have exactly one start event, with an event definition`);
      }
    } else if (kind === 'subProcess' && scope.noneStartEventIds.length === 0 && scope.startEventIds.length > 0) {
      problem(scopeId, `${label} '${scopeId}' has no none start event`);
    } else if (scope.noneStartEventIds.length > 1) {
      problem(scopeId, `${label} '${scopeId}' has more than one none start event (${scope.noneStartEventIds.join(', ')})`);
    }
    if (kind === 'subProcess' && scope.startEventIds.length > scope.noneStartEventIds.length) {
      problem(scopeId, `start events with an event definition inside embedded subprocess '${scopeId}' are not allowed`);
    }
  };
  walkScope(processEl, processId, 'process', null);
  if (nodes.size + flowDrafts.length > maxElements) {
    // before the per-element work: a model this large is refused, not compiled
    problem(processId, `the process has ${nodes.size + flowDrafts.length} flow nodes and sequence flows, more than the limit of ${maxElements} (BATON_MAX_MODEL_ELEMENTS); split it into called processes`);
    return { graph: null, problems };
  }

  // ---- flows ---------------------------------------------------------------
  const flows: Record<string, GraphFlow> = {};
  const incoming = new Map<string, string[]>();
  const outgoing = new Map<string, string[]>();
  refuseListeners(processEl, (message) => problem(processId || null, message));
  for (const { el, id, scopeId } of flowDrafts) {
    refuseListeners(el, (message) => problem(id, message));
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
      const conditionLanguage = languageAt(id, text(condEl, 'language'), 'condition language');
      if (body === '') problem(id, 'condition expression is empty');
      else if (conditionLanguage === null) {
        // reported
      } else if (body.startsWith('=')) {
        problem(id, `FEEL conditions (=…) are not supported yet; conditions are ${conditionLanguage === 'python' ? 'Python' : 'JavaScript'} expressions`);
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

  // ---- boundary events and links -----------------------------------------
  const boundaryOf = new Map<string, string[]>();
  for (const node of nodes.values()) {
    if (node.type !== 'boundaryEvent') continue;
    const attached = child(node.el, 'attachedToRef');
    const target = attached ? nodeByEl.get(attached) : undefined;
    if (!target) {
      const missing = unresolved.get(node.el)?.get('attachedToRef');
      problem(node.id, missing !== undefined ? `boundary event attachedToRef '${missing}' does not exist` : 'boundary event is not attached to an activity');
      continue;
    }
    if (target.scopeId !== node.scopeId || !isActivityType(target.type)) {
      problem(node.id, `boundary event must be attached to an activity of its own scope, not '${target.id}'`);
      continue;
    }
    push(boundaryOf, target.id, node.id);
  }
  /** compensation handler of each activity with a compensation boundary event */
  const handlerOf = new Map<string, string>();
  const handlers = new Set<string>();
  for (const [activityId, boundaryIds] of boundaryOf) {
    for (const bId of boundaryIds) {
      const b = nodes.get(bId);
      if (!b || !eventDefinitionsOf(b.el).some((d) => is(d, 'bpmn:CompensateEventDefinition'))) continue;
      const handlerId = (associations.get(bId) ?? []).find((t) => nodes.get(t) !== undefined);
      const handler = handlerId !== undefined ? nodes.get(handlerId) : undefined;
      if (!handler || !bool(handler.el, 'isForCompensation')) {
        problem(bId, 'compensation boundary event must be associated with an activity marked isForCompensation');
        continue;
      }
      if (handler.scopeId !== b.scopeId) {
        problem(bId, `compensation handler '${handler.id}' must be in the same scope as the boundary event`);
        continue;
      }
      if (handlerOf.has(activityId)) problem(bId, `activity '${activityId}' has more than one compensation boundary event`);
      handlerOf.set(activityId, handler.id);
      handlers.add(handler.id);
    }
  }
  /** link catch events by scope and name */
  const linkCatches = new Map<string, string>();

  // ---- elements ------------------------------------------------------------
  const elements: Record<string, GraphElement> = {};
  let elementLanguage: Language = language;
  const eventDef = (el: ModdleElement, allowed: readonly EventDefinition['kind'][], report: (m: string) => void) =>
    readEventDefinition(el, allowed, report, unresolved, elementLanguage);
  for (const node of nodes.values()) {
    const { el, id, type } = node;
    if (type === null) continue;
    const report = (message: string): void => problem(id, message);
    // a scriptTask's language is its scriptFormat (below); other elements may name one on a formal expression
    const ownLanguage = type === 'scriptTask' ? language : languageAt(id, formalExpressionLanguage(el), 'expression language');
    if (ownLanguage === null) continue;
    elementLanguage = ownLanguage;
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
      boundaryEventIds: boundaryOf.get(id) ?? [],
    };
    const loop = isActivityType(type) ? readLoop(child(el, 'loopCharacteristics'), report, unresolved) : null;
    if (loop === 'invalid') continue;
    const isForCompensation = bool(el, 'isForCompensation');
    if (isForCompensation) {
      if (ins.length > 0 || outs.length > 0) report('a compensation handler (isForCompensation) must not have sequence flows');
      if (!handlers.has(id)) report('compensation handler is not associated with any compensation boundary event');
    }
    const activity = () => ({
      ...base,
      defaultFlow,
      ...spiffScripts(el),
      loop,
      isForCompensation,
      compensationHandlerId: handlerOf.get(id) ?? null,
      io,
    });

    refuseListeners(el, report);
    const ioRead = readIoMapping(
      el,
      {
        type,
        multiInstance: loop?.kind === 'multiInstance',
        eventSubProcess: type === 'subProcess' && bool(el, 'triggeredByEvent'),
        linkThrow: type === 'intermediateThrowEvent' && eventDefinitionsOf(el).some((d) => is(d, 'bpmn:LinkEventDefinition')),
      },
      report,
    );
    const specRead = readIoSpecification(el, { type: type ?? '', multiInstance: loop?.kind === 'multiInstance' }, report);
    if (specRead !== null && ioRead !== null) report('both bpmn:ioSpecification and an input/output mapping: keep one of them');
    const io = ioRead === 'invalid' || specRead === 'invalid' ? null : (ioRead ?? specRead);

    switch (type) {
      case 'startEvent': {
        if (ins.length > 0) report('start event must not have incoming sequence flows');
        // no outgoing flow: the token ends at once (an implicit end, as after an activity; Camunda and SpiffWorkflow do the same)
        const scopeKind = scopes.find((sc) => sc.id === node.scopeId)?.kind;
        const def = eventDef(
          el,
          scopeKind === 'eventSubProcess'
            ? ['timer', 'message', 'signal', 'conditional', 'error', 'escalation']
            : ['timer', 'message', 'signal', 'conditional'],
          report,
        );
        if (def === 'invalid') break;
        if (scopeKind === 'process' && def?.kind === 'timer' && !def.timer.literal) {
          // a process timer start is scheduled at deploy, before there are any variables to evaluate it over
          report(`a timer start event needs a literal ${def.timer.kind} (ISO 8601${def.timer.kind === 'cycle' ? ' or cron' : ''}), not the expression '${def.timer.expression}'`);
          break;
        }
        const interrupting = el['isInterrupting'] !== false;
        elements[id] = { ...base, type, eventDefinition: def, interrupting };
        break;
      }
      case 'endEvent': {
        if (outs.length > 0) report('end event must not have outgoing sequence flows');
        const def = eventDef(el, ['terminate', 'error', 'escalation', 'message', 'signal', 'compensate', 'cancel'], report);
        if (def === 'invalid') break;
        if (def?.kind === 'cancel') {
          const tx = nodes.get(node.scopeId);
          if (!tx || !is(tx.el, 'bpmn:Transaction')) report('a cancel end event must be inside a transaction');
          else if (!(boundaryOf.get(tx.id) ?? []).some((b) => eventDefinitionsOf(nodes.get(b)?.el ?? el).some((d) => is(d, 'bpmn:CancelEventDefinition')))) {
            report(`transaction '${tx.id}' has no cancel boundary event`);
          }
        }
        elements[id] = { ...base, type, eventDefinition: def, io };
        break;
      }
      case 'intermediateThrowEvent': {
        const def = eventDef(el, ['message', 'signal', 'escalation', 'link', 'compensate'], report);
        if (def === 'invalid') break;
        if (def?.kind === 'link' && outs.length > 0) report('link throw event must not have outgoing sequence flows');
        elements[id] = { ...base, type, eventDefinition: def, io };
        break;
      }
      case 'intermediateCatchEvent': {
        const def = eventDef(el, ['timer', 'message', 'signal', 'conditional', 'link'], report);
        if (def === 'invalid') break;
        if (def === null) {
          report('intermediateCatchEvent without an event definition');
          break;
        }
        if (def.kind === 'link') {
          if (ins.length > 0) report('link catch event must not have incoming sequence flows');
          const key = `${node.scopeId}\u0000${def.linkName}`;
          if (linkCatches.has(key)) report(`another link catch event in this scope is named '${def.linkName}'`);
          linkCatches.set(key, id);
        }
        elements[id] = { ...base, type, eventDefinition: def, io };
        break;
      }
      case 'boundaryEvent': {
        const def = eventDef(el, ['error', 'escalation', 'timer', 'message', 'signal', 'conditional', 'compensate', 'cancel'], report);
        if (def === 'invalid') break;
        if (def === null) {
          report('boundaryEvent without an event definition');
          break;
        }
        if (def.kind === 'cancel') {
          const attached = nodes.get(str(child(el, 'attachedToRef'), 'id') ?? '');
          if (!attached || !is(attached.el, 'bpmn:Transaction')) report('a cancel boundary event must be attached to a transaction');
        }
        if (def.kind === 'compensate' && outs.length > 0) report('a compensation boundary event must not have outgoing sequence flows');
        if (ins.length > 0) report('boundary event must not have incoming sequence flows');
        const attachedToId = str(child(el, 'attachedToRef'), 'id') ?? '';
        // error boundary events always interrupt (BPMN)
        const interrupting = def.kind === 'error' || el['cancelActivity'] !== false;
        elements[id] = { ...base, type, eventDefinition: def, attachedToId, interrupting };
        break;
      }
      case 'inclusiveGateway':
        if (outs.length === 0) report('gateway has no outgoing sequence flow');
        elements[id] = { ...base, type, defaultFlow, reach: {} };
        break;
      case 'eventBasedGateway': {
        if (outs.length < 2) report('event-based gateway needs at least two outgoing sequence flows');
        for (const f of outs) {
          const target = flows[f] ? nodes.get(flows[f].targetId) : undefined;
          const targetDefs = target ? eventDefinitionsOf(target.el).map((d) => d.$type) : [];
          const ok =
            target !== undefined &&
            ((target.type === 'intermediateCatchEvent' &&
              targetDefs.length === 1 &&
              ['bpmn:TimerEventDefinition', 'bpmn:MessageEventDefinition', 'bpmn:SignalEventDefinition', 'bpmn:ConditionalEventDefinition'].includes(targetDefs[0] ?? '')) ||
              target.type === 'receiveTask');
          if (!ok) report(`sequence flow '${f}' of an event-based gateway must lead to a timer/message/signal/conditional catch event or a receive task`);
          if (conditional.has(f)) report(`sequence flow '${f}' leaves an event-based gateway and must not have a condition`);
        }
        elements[id] = { ...base, type };
        break;
      }
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
        elements[id] = { ...base, type, reach: {}, loopBack: [] };
        break;
      case 'task':
        elements[id] = { ...activity(), type, human: dialect.spiffworkflow ? readHumanTask(el) : null };
        break;
      case 'scriptTask': {
        const scriptLanguage = languageAt(id, text(el, 'scriptFormat'), 'script format');
        if (extension(el, 'zeebe:Script')) report('zeebe:script (FEEL) is not supported yet');
        if (text(el, 'resource') !== null) report('camunda:resource (external script) is not supported yet');
        const script = str(el, 'script') ?? '';
        // SpiffWorkflow runs an empty script task as a no-op; in a JavaScript model it is a mistake
        if (script.trim() === '' && !dialect.spiffworkflow && scriptLanguage !== 'python') report('script is empty');
        const resultVariable = text(el, 'resultVariable');
        if (resultVariable !== null && scriptLanguage === 'python') {
          report(`camunda:resultVariable '${resultVariable}' needs a JavaScript script (set scriptFormat="javascript"); in Python, assign the variable in the script`);
        } else if (resultVariable !== null && script.trim() !== '' && !isSingleExpression(script)) {
          report(
            `camunda:resultVariable '${resultVariable}' needs a script that is a single JavaScript expression (its value is stored; Baton cannot take the value of the last of several statements)`,
          );
        }
        elements[id] = { ...activity(), type, script, resultVariable };
        break;
      }
      case 'userTask':
      case 'manualTask': {
        const human: HumanTaskDefinition = readHumanTask(el);
        elements[id] = type === 'userTask' ? { ...activity(), type, human } : { ...activity(), type, human };
        break;
      }
      case 'serviceTask':
      case 'businessRuleTask': {
        if (type === 'serviceTask' && !hasServiceImplementation(el) && (dialect.spiffworkflow || (!dialect.camunda && !dialect.zeebe))) {
          elements[id] = { ...activity(), type, service: null };
          break;
        }
        const service: ServiceTaskDefinition | null = readServiceTask(el, report);
        if (service) elements[id] = type === 'serviceTask' ? { ...activity(), type, service } : { ...activity(), type, service };
        break;
      }
      case 'sendTask':
      case 'receiveTask': {
        const message = readMessageRef(el, 'messageRef', report, unresolved, elementLanguage);
        if (message) elements[id] = type === 'sendTask' ? { ...activity(), type, message } : { ...activity(), type, message };
        break;
      }
      case 'callActivity': {
        const call = readCallActivity(el, report);
        if (call) elements[id] = { ...activity(), type, ...call };
        break;
      }
      case 'subProcess': {
        const triggeredByEvent = bool(el, 'triggeredByEvent');
        if (triggeredByEvent) {
          if (ins.length > 0 || outs.length > 0) report('an event subprocess must not have sequence flows');
          if (boundaryOf.has(id)) report('an event subprocess cannot have boundary events');
          if (loop !== null) report('loop characteristics on an event subprocess are not supported');
        }
        elements[id] = { ...activity(), type, childScopeId: id, triggeredByEvent, isTransaction: is(el, 'bpmn:Transaction') };
        break;
      }
    }
  }

  // link throw → catch of the same name in the same scope
  for (const [id, el] of Object.entries(elements)) {
    if (el.type !== 'intermediateThrowEvent' || el.eventDefinition?.kind !== 'link') continue;
    const targetId = linkCatches.get(`${el.scopeId}\u0000${el.eventDefinition.linkName}`);
    if (targetId === undefined) problem(id, `no link catch event named '${el.eventDefinition.linkName}' in this scope`);
    else elements[id] = { ...el, eventDefinition: { ...el.eventDefinition, targetId } };
  }
  // what can still reach each join
  const preds = predecessors(elements, flows);
  let reachTotal = 0;
  for (const [id, el] of Object.entries(elements)) {
    if (el.type !== 'inclusiveGateway' && el.type !== 'parallelGateway') continue;
    if (el.incoming.length < 2) continue;
    const { reach, loopBack } = joinReachOf(el, flows, preds);
    // Each join stores its reach in the graph, so the graph grows with
    // joins × elements × incoming flows; a chain of thousands of joins would
    // take seconds to compile and megabytes to store. No real model comes near
    // this budget.
    for (const r of Object.values(reach)) reachTotal += r.length;
    if (reachTotal > MAX_REACH_TOTAL) {
      problem(id, `too many elements lead to joining gateways (more than ${MAX_REACH_TOTAL} in all); split the process`);
      break;
    }
    elements[id] = el.type === 'parallelGateway' ? { ...el, reach, loopBack } : { ...el, reach };
  }

  // a scope without start events starts at every node nothing leads to
  const implicitStarts = new Map<string, string[]>();
  for (const sc of scopes) {
    if (sc.kind === 'eventSubProcess' || sc.startEventIds.length > 0) continue;
    const starts = sc.elementIds.filter((id) => {
      const el = elements[id];
      if (!el || el.incoming.length > 0 || el.type === 'boundaryEvent') return false;
      if ('isForCompensation' in el && el.isForCompensation) return false;
      if (el.type === 'subProcess' && el.triggeredByEvent) return false;
      if (el.type === 'intermediateCatchEvent' && el.eventDefinition.kind === 'link') return false;
      return true;
    });
    const label = sc.kind === 'process' ? 'process' : 'subprocess';
    // an empty embedded subprocess (a placeholder drawn expanded) completes at once
    if (starts.length === 0 && !(sc.kind === 'subProcess' && sc.elementIds.length === 0)) {
      problem(sc.id, `${label} '${sc.id}' has no start event, and no element without incoming sequence flows to start at`);
    }
    implicitStarts.set(sc.id, starts);
  }

  if (problems.length > 0) return { graph: null, problems };

  const graphScopes: Record<string, GraphScope> = {};
  for (const s of scopes) {
    graphScopes[s.id] = {
      implicitStartIds: implicitStarts.get(s.id) ?? [],
      id: s.id,
      kind: s.kind,
      parentScopeId: s.parentScopeId,
      noneStartEventId: s.noneStartEventIds[0] ?? '',
      eventSubProcessIds: s.eventSubProcessIds,
      dataObjectIds: s.dataObjectIds,
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
    ioSpecification,
    language,
    ...(Object.keys(languages).length > 0 ? { languages } : {}),
  };
  return { graph: deepFreeze(graph), problems };
}

/**
 * Decides what a flow node compiles to. Returns null (after reporting why) for
 * everything the engine cannot run yet, so no flow node is silently ignored.
 */
function classify(el: ModdleElement, report: (message: string) => void): ElementType | null {
  const type = localType(el);
  switch (el.$type) {
    case 'bpmn:StartEvent':
    case 'bpmn:IntermediateThrowEvent':
    case 'bpmn:IntermediateCatchEvent':
    case 'bpmn:BoundaryEvent':
    case 'bpmn:EndEvent':
    case 'bpmn:ExclusiveGateway':
    case 'bpmn:ParallelGateway':
    case 'bpmn:InclusiveGateway':
    case 'bpmn:EventBasedGateway':
    case 'bpmn:Task':
    case 'bpmn:ScriptTask':
    case 'bpmn:UserTask':
    case 'bpmn:ManualTask':
    case 'bpmn:ServiceTask':
    case 'bpmn:SendTask':
    case 'bpmn:ReceiveTask':
    case 'bpmn:CallActivity':
    case 'bpmn:SubProcess':
      return type as ElementType;
    case 'bpmn:Transaction':
      return 'subProcess';
    case 'bpmn:BusinessRuleTask': {
      const hasTaskType =
        extension(el, 'zeebe:TaskDefinition') !== undefined ||
        text(el, 'topic') !== null ||
        extension(el, 'spiffworkflow:ServiceTaskOperator') !== undefined;
      if (!hasTaskType) {
        report('businessRuleTask without a task type is not supported yet: DMN decisions come in a later release');
        return null;
      }
      return 'businessRuleTask';
    }
    default:
      report(`${type} is not supported yet`);
      return null;
  }
}

const ACTIVITY_TYPES: ReadonlySet<string> = new Set([
  'task',
  'scriptTask',
  'userTask',
  'manualTask',
  'serviceTask',
  'businessRuleTask',
  'sendTask',
  'receiveTask',
  'subProcess',
  'callActivity',
]);

function isActivityType(type: ElementType | null): boolean {
  return type !== null && ACTIVITY_TYPES.has(type);
}

/** Sum of the reach entries of all joins of one process, at most. */
const MAX_REACH_TOTAL = 1_000_000;

/**
 * Reverse edges of a process: sequence flows, boundary events (reached from
 * their activity) and links (catch reached from throw). Built once per process.
 */
function predecessors(elements: Record<string, GraphElement>, flows: Record<string, GraphFlow>): Map<string, string[]> {
  const preds = new Map<string, string[]>();
  for (const f of Object.values(flows)) push(preds, f.targetId, f.sourceId);
  for (const el of Object.values(elements)) {
    if (el.type === 'boundaryEvent') push(preds, el.id, el.attachedToId);
    if (el.type === 'intermediateThrowEvent' && el.eventDefinition?.kind === 'link' && el.eventDefinition.targetId !== null) {
      push(preds, el.eventDefinition.targetId, el.id);
    }
  }
  return preds;
}

/**
 * For each incoming flow of the join, walks backwards from the flow's source
 * without passing through the join, and notes the flow's index on every
 * element met: the elements from which that flow can still be reached. A
 * flow whose walk meets the join itself comes back from after it (a loop
 * back to the join): its index goes into `loopBack`.
 */
function joinReachOf(join: GraphElement, flows: Record<string, GraphFlow>, preds: Map<string, string[]>): { reach: Record<string, number[]>; loopBack: number[] } {
  const reach: Record<string, number[]> = {};
  const loopBack: number[] = [];
  join.incoming.forEach((flowId, index) => {
    const source = flows[flowId]?.sourceId;
    if (source === undefined) return;
    const seen = new Set<string>();
    const todo = [source];
    for (let id = todo.pop(); id !== undefined; id = todo.pop()) {
      if (id === join.id) {
        if (loopBack[loopBack.length - 1] !== index) loopBack.push(index);
        continue;
      }
      if (seen.has(id)) continue;
      seen.add(id);
      (reach[id] ??= []).push(index);
      const more = preds.get(id);
      if (more) for (const p of more) todo.push(p);
    }
  });
  return { reach, loopBack };
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

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/**
 * The `language` attribute of the formal expressions an element carries
 * besides a script (timer values, a conditional event's condition, loop
 * and multi-instance expressions): the first one that names a language.
 */
function formalExpressionLanguage(el: ModdleElement): string | null {
  const holders: (ModdleElement | undefined)[] = [];
  for (const def of eventDefinitionsOf(el)) {
    holders.push(child(def, 'timeDate'), child(def, 'timeDuration'), child(def, 'timeCycle'), child(def, 'condition'));
  }
  const loop = child(el, 'loopCharacteristics');
  holders.push(child(loop, 'loopCondition'), child(loop, 'loopCardinality'), child(loop, 'completionCondition'));
  for (const h of holders) {
    const spelling = text(h, 'language');
    if (spelling !== null && languageOf(spelling) !== 'unspecified') return spelling;
  }
  return null;
}
