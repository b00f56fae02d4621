/**
 * Reading vendor extension data (camunda:, zeebe:, spiffworkflow:) into the
 * engine-neutral shapes of the definition graph. Each reader reports what it
 * cannot honour through `report` instead of dropping it silently.
 */
import type { JsonObject } from '../errors.js';
import { Script } from 'node:vm';
import { extension, extensions, list, str, text, child, type ModdleElement } from './model.js';
import { addDuration, parseDuration } from './timer.js';
import type { ElementType, HumanTaskDefinition, InputParameter, IoMapping, IoParameter, IoValue, ServiceTaskDefinition } from './types.js';

type Report = (message: string) => void;

/**
 * A comma-separated list attribute (`camunda:candidateGroups="a, b"`). A value
 * that is an expression (`${…}`, `#{…}`, FEEL `=…`) is kept whole as one
 * literal entry: expression-valued assignments are not evaluated yet.
 */
export function splitList(value: string | null | undefined): string[] {
  const v = value?.trim();
  if (!v) return [];
  if (v.startsWith('=') || v.startsWith('${') || v.startsWith('#{')) return [v];
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** `${expr}` (JUEL style, as written in Camunda models) → `expr`; anything else → null. */
export function unwrapDollarExpression(value: string): string | null {
  const m = /^\s*\$\{([\s\S]*)\}\s*$/.exec(value);
  return m ? (m[1] ?? '').trim() : null;
}

export function documentationOf(el: ModdleElement): string | null {
  const parts = list(el, 'documentation')
    .map((d) => str(d, 'text')?.trim() ?? '')
    .filter((t) => t.length > 0);
  return parts.length > 0 ? parts.join('\n') : null;
}

export function spiffScripts(el: ModdleElement): { preScript: string | null; postScript: string | null } {
  return {
    preScript: text(extension(el, 'spiffworkflow:PreScript'), 'value'),
    postScript: text(extension(el, 'spiffworkflow:PostScript'), 'value'),
  };
}

/**
 * User and manual tasks. Zeebe's assignmentDefinition/formDefinition win over
 * camunda attributes when a model carries both (a model migrated to Camunda 8).
 */
export function readHumanTask(el: ModdleElement): HumanTaskDefinition {
  const zAssign = extension(el, 'zeebe:AssignmentDefinition');
  const zForm = extension(el, 'zeebe:FormDefinition');

  const assignee = text(zAssign, 'assignee') ?? text(el, 'assignee');
  const zGroups = splitList(str(zAssign, 'candidateGroups'));
  const zUsers = splitList(str(zAssign, 'candidateUsers'));
  const candidateGroups = zGroups.length > 0 ? zGroups : splitList(str(el, 'candidateGroups'));
  const candidateUsers = zUsers.length > 0 ? zUsers : splitList(str(el, 'candidateUsers'));
  const formKey = text(zForm, 'formKey') ?? text(el, 'formKey');

  const properties: JsonObject = {};
  for (const props of extensions(el, 'spiffworkflow:Properties')) {
    for (const p of list(props, 'properties')) {
      const name = text(p, 'name');
      if (name) properties[name] = str(p, 'value') ?? null;
    }
  }
  const instructions = text(extension(el, 'spiffworkflow:InstructionsForEndUser'), 'value');
  if (instructions !== null) properties['instructionsForEndUser'] = instructions;
  const formId = text(zForm, 'formId');
  if (formId !== null) properties['formId'] = formId;
  const documentation = documentationOf(el);
  if (documentation !== null) properties['documentation'] = documentation;

  return { assignee, candidateGroups, candidateUsers, formKey, properties };
}

/**
 * Whether a service task names what it runs: a task type of any vendor, an
 * `implementation` other than the spec's defaults, or a Camunda 7 Java
 * implementation (class, delegateExpression, expression, type).
 */
export function hasServiceImplementation(el: ModdleElement): boolean {
  const implementation = text(el, 'implementation');
  return (
    extension(el, 'zeebe:TaskDefinition') !== undefined ||
    extension(el, 'spiffworkflow:ServiceTaskOperator') !== undefined ||
    ['topic', 'class', 'delegateExpression', 'expression', 'type'].some((p) => text(el, p) !== null) ||
    (implementation !== null && !implementation.startsWith('##'))
  );
}

/**
 * Service tasks. The task type (the job topic workers subscribe to) comes
 * from, in order: zeebe:taskDefinition type, camunda:topic, spiffworkflow:
 * serviceTaskOperator id, a non-default `implementation` attribute.
 */
export function readServiceTask(el: ModdleElement, report: Report): ServiceTaskDefinition | null {
  const zTask = extension(el, 'zeebe:TaskDefinition');
  const spiffOp = extension(el, 'spiffworkflow:ServiceTaskOperator');
  const implementation = text(el, 'implementation');

  const topic =
    text(zTask, 'type') ??
    text(el, 'topic') ??
    text(spiffOp, 'id') ??
    (implementation && !implementation.startsWith('##') ? implementation : null);

  let ok = true;
  if (topic === null) {
    const javaOnly = ['class', 'delegateExpression', 'expression'].some((p) => text(el, p) !== null);
    report(
      javaOnly
        ? 'service task has no task type (camunda:class/delegateExpression/expression are Java-only; use camunda:type="external" with camunda:topic)'
        : 'service task has no task type',
    );
    ok = false;
  }

  let retries = 3;
  const retriesText = text(zTask, 'retries');
  if (retriesText !== null) {
    if (/^\d+$/.test(retriesText)) retries = Number(retriesText);
    else {
      report(`zeebe:taskDefinition retries must be a non-negative integer, got '${retriesText}'`);
      ok = false;
    }
  }

  // Camunda 7's per-activity retry policy, `R<n>/<duration>`: n tries in all,
  // a fixed delay between them (instead of the worker's exponential backoff).
  let retryBackoffMs: number | null = null;
  const cycle = str(extension(el, 'camunda:FailedJobRetryTimeCycle'), 'body')?.trim() ?? null;
  if (cycle !== null && cycle !== '') {
    const m = /^R(\d+)\/(P.+)$/i.exec(cycle);
    const delay = m ? parseDuration(m[2]!) : null;
    if (!m || !delay) {
      report(`camunda:failedJobRetryTimeCycle must be R<n>/<ISO 8601 duration>, got '${cycle}'`);
      ok = false;
    } else {
      retries = Number(m[1]);
      retryBackoffMs = addDuration(new Date(0), delay).getTime();
    }
  }

  // camunda:inputOutput / zeebe:ioMapping inputs are read by readIoMapping:
  // they become local variables of the task, and the job input is made of them
  const inputs: InputParameter[] = [];
  for (const param of list(child(spiffOp, 'parameters'), 'parameters')) {
    const name = text(param, 'id');
    if (name === null) {
      report('spiffworkflow:parameter has no id');
      ok = false;
      continue;
    }
    const value = text(param, 'value');
    // SpiffWorkflow leaves a parameter without a value out of the call
    if (value === null) continue;
    inputs.push({ name, kind: 'expression', value });
  }

  const headers: Record<string, string> = {};
  for (const h of list(extension(el, 'zeebe:TaskHeaders'), 'values')) {
    const key = text(h, 'key');
    if (key !== null) headers[key] = str(h, 'value') ?? '';
  }

  const resultVariable = text(el, 'resultVariable') ?? text(spiffOp, 'resultVariable');

  if (!ok || topic === null) return null;
  return { topic, retries, retryBackoffMs, inputs, headers, resultVariable };
}

// ---- scripts --------------------------------------------------------------

const JS_FORMATS = new Set([
  'javascript',
  'js',
  'ecmascript',
  'text/javascript',
  'application/javascript',
  'text/ecmascript',
  'application/ecmascript',
]);

export function isJavaScriptFormat(format: string): boolean {
  return JS_FORMATS.has(format.trim().toLowerCase());
}

/**
 * Whether a JavaScript source is one expression (a trailing `;` allowed), so
 * that `evaluator.expression` gives the value Camunda takes from a script:
 * the value of its last statement, which `evaluator.script` cannot report.
 *
 * The source is only compiled here, never run. It must compile inside two
 * wrappers that close with different brackets: a source that closes the
 * first wrapper to add statements of its own (`1); x = 2; (3`) cannot close
 * the second one the same way.
 */
export function isSingleExpression(source: string): boolean {
  const body = source.trim().replace(/;\s*$/, '');
  if (body === '') return false;
  try {
    new Script(`(function(){return (${body}\n);})`);
    new Script(`(function(){return [${body}\n];})`);
    return true;
  } catch {
    return false;
  }
}

/** Camunda's `execution.getVariable(…)`/`setVariable(…)` API: Baton's scripts read and assign variables by name instead. */
export function usesCamundaExecutionApi(source: string): boolean {
  return /\bexecution\s*\.\s*[A-Za-z_$]/.test(source);
}

// ---- input/output mappings --------------------------------------------------

export interface IoContext {
  readonly type: ElementType;
  /** a multi-instance activity (Camunda 7 refuses output parameters on it) */
  readonly multiInstance: boolean;
  /** an event subprocess (triggeredByEvent) */
  readonly eventSubProcess: boolean;
  /** an intermediate throw event with a link definition (it jumps, it does not complete) */
  readonly linkThrow: boolean;
}

const GATEWAYS: Readonly<Record<string, string>> = {
  exclusiveGateway: 'an exclusive gateway',
  parallelGateway: 'a parallel gateway',
  inclusiveGateway: 'an inclusive gateway',
  eventBasedGateway: 'an event-based gateway',
};

/**
 * camunda:inputOutput or zeebe:ioMapping of a flow node, where Camunda 7
 * allows it (BpmnParse.parseActivityInputOutput / checkActivityInputOutputSupported):
 * tasks, embedded subprocesses and transactions, call activities, intermediate
 * catch and throw events, end events (inputs only); not on start events,
 * boundary events, gateways or event subprocesses, and no outputs on a
 * multi-instance activity. A zeebe:ioMapping on a call activity is the call's
 * variable mapping (readCallActivity) and is not read here.
 *
 * Returns null when there is none, 'invalid' after reporting why it cannot run.
 */
const IO_SPEC_TYPES = new Set(['task', 'scriptTask', 'userTask', 'manualTask', 'serviceTask', 'businessRuleTask', 'sendTask', 'receiveTask']);

/**
 * A task's bpmn:ioSpecification (SpiffWorkflow): its data inputs are read
 * from the variables when it starts, its data outputs written when it
 * completes, each by id (its name only without an id).
 */
export function readIoSpecification(el: ModdleElement, ctx: { type: string; multiInstance: boolean }, report: Report): IoMapping | null | 'invalid' {
  const spec = child(el, 'ioSpecification');
  if (!spec) return null;
  const inputs = list(spec, 'dataInputs');
  const outputs = list(spec, 'dataOutputs');
  if (inputs.length === 0 && outputs.length === 0) return null;
  if (!IO_SPEC_TYPES.has(ctx.type)) {
    report(`bpmn:ioSpecification on ${ctx.type} is not supported yet (only on tasks)`);
    return 'invalid';
  }
  if (ctx.multiInstance) {
    report('bpmn:ioSpecification on a multi-instance task is not supported yet');
    return 'invalid';
  }
  const param = (d: ModdleElement) => {
    const name = text(d, 'id') ?? text(d, 'name') ?? '';
    return { name, value: { kind: 'variable' as const, name } };
  };
  return { vendor: 'spiff', inputs: inputs.map(param), outputs: outputs.map(param) };
}

export function readIoMapping(el: ModdleElement, ctx: IoContext, report: Report): IoMapping | null | 'invalid' {
  const cIo = extensions(el, 'camunda:InputOutput');
  const zIo = ctx.type === 'callActivity' ? [] : extensions(el, 'zeebe:IoMapping');
  if (cIo.length === 0 && zIo.length === 0) return null;
  if (cIo.length > 0 && zIo.length > 0) {
    report('both camunda:inputOutput and zeebe:ioMapping: keep one of them');
    return 'invalid';
  }
  const vendor = cIo.length > 0 ? 'camunda' : 'zeebe';
  const label = vendor === 'camunda' ? 'camunda:inputOutput' : 'zeebe:ioMapping';
  const found = vendor === 'camunda' ? cIo : zIo;
  if (found.length > 1) {
    report(`more than one ${label}: keep one`);
    return 'invalid';
  }
  const io = found[0] as ModdleElement;
  const hasOutputs = list(io, 'outputParameters').length > 0;

  const where = Object.hasOwn(GATEWAYS, ctx.type)
    ? (GATEWAYS[ctx.type] ?? null)
    : ctx.type === 'startEvent'
      ? 'a start event'
      : ctx.type === 'boundaryEvent'
        ? 'a boundary event'
        : ctx.eventSubProcess
          ? 'an event subprocess'
          : null;
  if (where !== null) {
    report(
      vendor === 'camunda'
        ? `camunda:inputOutput is not allowed on ${where} (Camunda 7 refuses it too)`
        : `zeebe:ioMapping on ${where} is not supported yet`,
    );
    return 'invalid';
  }
  const outputWord = vendor === 'camunda' ? 'camunda:outputParameter' : 'zeebe:output';
  if (hasOutputs && ctx.type === 'endEvent') {
    report(`${outputWord} is not allowed on an end event (the process goes no further; Camunda 7 refuses it too)`);
    return 'invalid';
  }
  if (hasOutputs && ctx.multiInstance && vendor === 'camunda') {
    report(`${outputWord} is not allowed on a multi-instance activity (every instance would overwrite the previous one's values; Camunda 7 refuses it too)`);
    return 'invalid';
  }
  if (hasOutputs && ctx.linkThrow) {
    report(`${outputWord} on a link throw event is not supported`);
    return 'invalid';
  }

  let ok = true;
  const inputs: IoParameter[] = [];
  const outputs: IoParameter[] = [];
  for (const [params, into, kind] of [
    [list(io, 'inputParameters'), inputs, 'input'],
    [list(io, 'outputParameters'), outputs, 'output'],
  ] as const) {
    for (const p of params) {
      const param = vendor === 'camunda' ? camundaParameter(p, kind, report) : zeebeParameter(p, kind, report);
      if (param === null) ok = false;
      else into.push(param);
    }
  }
  return ok ? { vendor, inputs, outputs } : 'invalid';
}

function camundaParameter(p: ModdleElement, kind: 'input' | 'output', report: Report): IoParameter | null {
  const tag = `camunda:${kind}Parameter`;
  const name = text(p, 'name');
  if (name === null) {
    report(`${tag} has no name`);
    return null;
  }
  const what = `${tag} '${name}'`;
  if (name === '__proto__') {
    report(`${what} is not a usable variable name`);
    return null;
  }
  const definition = child(p, 'definition');
  const value = definition ? camundaDefinition(definition, what, report) : camundaText(str(p, 'value'), what, report);
  return value === null ? null : { name, value };
}

/** camunda:list, camunda:map, camunda:script (or camunda:value inside a list) */
function camundaDefinition(def: ModdleElement, what: string, report: Report): IoValue | null {
  switch (def.$type) {
    case 'camunda:Value':
      return camundaText(str(def, 'value'), what, report);
    case 'camunda:List': {
      const items: IoValue[] = [];
      for (const item of list(def, 'items')) {
        const v = camundaDefinition(item, what, report);
        if (v === null) return null;
        items.push(v);
      }
      return { kind: 'list', items };
    }
    case 'camunda:Map': {
      const entries: Extract<IoValue, { kind: 'map' }>['entries'][number][] = [];
      for (const entry of list(def, 'entries')) {
        const rawKey = text(entry, 'key');
        if (rawKey === null) {
          report(`${what}: a camunda:entry has no key`);
          return null;
        }
        const key = camundaText(rawKey, `${what}, key '${rawKey}'`, report);
        if (key === null) return null;
        if (key.kind !== 'literal' && key.kind !== 'expression') {
          report(`${what}: a camunda:entry has no key`);
          return null;
        }
        const entryDef = child(entry, 'definition');
        const value = entryDef ? camundaDefinition(entryDef, `${what}, entry '${rawKey}'`, report) : camundaText(str(entry, 'value'), what, report);
        if (value === null) return null;
        entries.push({ key, value });
      }
      return { kind: 'map', entries };
    }
    case 'camunda:Script': {
      const format = text(def, 'scriptFormat');
      if (format === null) {
        report(`${what}: camunda:script has no scriptFormat`);
        return null;
      }
      if (!isJavaScriptFormat(format)) {
        report(`${what}: script format '${format}' is not supported (scripts are JavaScript)`);
        return null;
      }
      if (text(def, 'resource') !== null) {
        report(`${what}: camunda:script with a resource (an external script file) is not supported; put the script inline`);
        return null;
      }
      const source = str(def, 'value') ?? '';
      if (source.trim() === '') {
        report(`${what}: camunda:script is empty`);
        return null;
      }
      if (usesCamundaExecutionApi(source)) {
        report(`${what}: the script uses Camunda's execution API (execution.…), which Baton's JavaScript does not have: read variables by name`);
        return null;
      }
      if (!isSingleExpression(source)) {
        report(
          `${what}: the script must be a single JavaScript expression (its value is the parameter's value; Baton cannot take the value of the last of several statements)`,
        );
        return null;
      }
      return { kind: 'expression', expression: source.trim().replace(/;\s*$/, '') };
    }
    default:
      report(`${what}: ${def.$type} is not supported as a parameter value`);
      return null;
  }
}

/**
 * A parameter's text as Camunda reads it (trimmed): empty → null; `${expr}`
 * or `#{expr}` → the expression; text with `${…}` inside (`Order ${id}`) →
 * a composite, the texts and the expressions' values joined (null → '');
 * anything else is a string.
 */
function camundaText(raw: string | undefined, what: string, report: Report): IoValue | null {
  const v = (raw ?? '').trim();
  if (v === '') return { kind: 'null' };
  const parts = splitComposite(v);
  if (parts === null) {
    report(`${what}: '${v.length > 60 ? `${v.slice(0, 60)}…` : v}' has a \${ without its closing }`);
    return null;
  }
  const exprs = parts.filter((x) => x.kind === 'expression');
  if (exprs.length === 0) return { kind: 'literal', value: v };
  for (const e of exprs) {
    if (e.text.trim() === '') {
      report(`${what}: empty expression \${}`);
      return null;
    }
    if (usesCamundaExecutionApi(e.text)) {
      report(`${what}: the expression uses Camunda's execution API (execution.…), which Baton's JavaScript does not have: read variables by name`);
      return null;
    }
  }
  const [only] = parts;
  if (parts.length === 1 && only !== undefined) return { kind: 'expression', expression: only.text.trim() };
  const expression = parts.map((x) => (x.kind === 'text' ? JSON.stringify(x.text) : `String((${x.text}\n) ?? '')`)).join(' + ');
  return { kind: 'expression', expression };
}

/** Splits `a ${x} b #{y}` into texts and expression bodies; null when an expression is not closed. */
function splitComposite(v: string): { kind: 'text' | 'expression'; text: string }[] | null {
  const parts: { kind: 'text' | 'expression'; text: string }[] = [];
  let textStart = 0;
  let i = 0;
  while (i < v.length) {
    if ((v[i] === '$' || v[i] === '#') && v[i + 1] === '{') {
      // the matching }, skipping braces inside nested objects and string literals
      let depth = 1;
      let quote = '';
      let j = i + 2;
      for (; j < v.length; j++) {
        const c = v[j];
        if (quote !== '') {
          if (c === '\\') j++;
          else if (c === quote) quote = '';
        } else if (c === '"' || c === "'" || c === '`') quote = c;
        else if (c === '{') depth++;
        else if (c === '}' && --depth === 0) break;
      }
      if (j >= v.length) return null;
      if (i > textStart) parts.push({ kind: 'text', text: v.slice(textStart, i) });
      parts.push({ kind: 'expression', text: v.slice(i + 2, j) });
      i = j + 1;
      textStart = i;
      continue;
    }
    i++;
  }
  if (textStart < v.length) parts.push({ kind: 'text', text: v.slice(textStart) });
  return parts;
}

function zeebeParameter(p: ModdleElement, kind: 'input' | 'output', report: Report): IoParameter | null {
  const tag = `zeebe:${kind}`;
  const target = text(p, 'target');
  if (target === null) {
    report(`${tag} has no target`);
    return null;
  }
  if (target === '__proto__') {
    report(`${tag} '${target}' is not a usable variable name`);
    return null;
  }
  const source = str(p, 'source') ?? '';
  const trimmed = source.trim();
  if (trimmed === '') return { name: target, value: { kind: 'null' } };
  if (!trimmed.startsWith('=')) return { name: target, value: { kind: 'literal', value: source } };
  const expression = trimmed.slice(1).trim();
  if (expression === '') {
    report(`${tag} '${target}' has an empty source expression`);
    return null;
  }
  return { name: target, value: { kind: 'expression', expression } };
}

// ---- listeners ------------------------------------------------------------

/**
 * Execution and task listeners cannot run in Baton yet (class, expression and
 * delegateExpression listeners are Java; script listeners use Camunda's
 * `execution`/`task` API). A model that relies on one would behave
 * differently without it, so each is refused at deploy, named.
 */
export function refuseListeners(el: ModdleElement, report: Report): void {
  for (const [type, tag] of [
    ['camunda:ExecutionListener', 'camunda:executionListener'],
    ['camunda:TaskListener', 'camunda:taskListener'],
  ] as const) {
    for (const l of extensions(el, type)) {
      const event = text(l, 'event');
      const script = child(l, 'script');
      const impl =
        text(l, 'class') !== null
          ? `camunda:class '${text(l, 'class')}' (Java)`
          : text(l, 'delegateExpression') !== null
            ? `camunda:delegateExpression '${text(l, 'delegateExpression')}' (Java)`
            : text(l, 'expression') !== null
              ? `camunda:expression '${text(l, 'expression')}'`
              : script
                ? `a ${text(script, 'scriptFormat') ?? ''} script${text(script, 'resource') !== null ? ` resource '${text(script, 'resource')}'` : ''}`.replace('a  script', 'a script')
                : 'no implementation';
      report(`${tag}${event !== null ? ` on '${event}'` : ''} with ${impl} is not supported: listeners do not run in Baton; model the work as a task`);
    }
  }
  for (const [type, tag] of [
    ['zeebe:ExecutionListeners', 'zeebe:executionListeners'],
    ['zeebe:TaskListeners', 'zeebe:taskListeners'],
  ] as const) {
    for (const group of extensions(el, type)) {
      for (const l of list(group, 'listeners')) {
        const event = text(l, 'eventType');
        report(`${tag}${event !== null ? ` on '${event}'` : ''} (job type '${text(l, 'type') ?? ''}') is not supported: listeners do not run in Baton; model the work as a task`);
      }
    }
  }
}
