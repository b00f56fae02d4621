/**
 * Readers for event definitions, loop characteristics, call activities and
 * message references: moddle elements → the engine-neutral shapes of the
 * definition graph. What cannot be honoured is reported, never dropped.
 */
import type { Language } from '../expressions/language.js';
import { unwrapDollarExpression } from './extensions.js';
import { bool, child, extension, extensions, is, list, localType, str, text, type ModdleElement } from './model.js';
import { validTimerLiteral } from './timer.js';
import type { EventDefinition, LoopDefinition, MessageRef, TimerDefinition, VariableMapping } from './types.js';

type Report = (message: string) => void;
export type Unresolved = Map<ModdleElement, Map<string, string>>;

/**
 * An expression attribute as JavaScript: `=expr` (Zeebe FEEL style) and
 * `${expr}` (Camunda JUEL style) are unwrapped; anything else is taken as is.
 * Only simple FEEL (names, paths, arithmetic, comparisons) reads the same in JS.
 */
export function jsExpression(value: string | null | undefined): string | null {
  const v = value?.trim();
  if (!v) return null;
  if (v.startsWith('=')) return v.slice(1).trim() || null;
  const unwrapped = unwrapDollarExpression(v);
  if (unwrapped !== null) return unwrapped || null;
  return v;
}

function expressionBody(el: ModdleElement | undefined): string | null {
  return text(el, 'body');
}

export function eventDefinitionsOf(el: ModdleElement): ModdleElement[] {
  return [...list(el, 'eventDefinitions'), ...list(el, 'eventDefinitionRef')];
}

/**
 * An element or event definition's own name for a message or signal without
 * a reference: the spec allows a missing messageRef/signalRef, and
 * SpiffWorkflow then names the message (or signal) after the event. Baton does
 * the same, falling back to the element id when the element has no name
 * either (so two unnamed events never meet by accident).
 */
function ownName(el: ModdleElement): string {
  const owner = el.$type.endsWith('EventDefinition') ? (child(el, '$parent') ?? el) : el;
  return text(owner, 'name') ?? text(owner, 'id') ?? '';
}

export function readMessageRef(el: ModdleElement, prop: string, report: Report, unresolved?: Unresolved, language: Language = 'javascript'): MessageRef | null {
  const message = child(el, prop);
  if (!message) {
    const missing = unresolved?.get(el)?.get(prop);
    if (missing !== undefined) {
      report(`message '${missing}' does not exist`);
      return null;
    }
    return { messageName: ownName(el), correlationKey: null };
  }
  const messageName = text(message, 'name');
  if (messageName === null) {
    report(`message '${str(message, 'id') ?? '?'}' has no name`);
    return null;
  }
  const subscription = extension(message, 'zeebe:Subscription');
  const zeebeKey = jsExpression(str(subscription, 'correlationKey'));
  // A zeebe:subscription key wins over BPMN-standard retrieval expressions.
  if (zeebeKey !== null) return { messageName, correlationKey: zeebeKey };
  const paths = correlationPathsOf(message);
  if (paths.length === 0) return { messageName, correlationKey: null };
  return { messageName, correlationKey: correlationKeyExpression(paths, language), correlationPaths: paths };
}

/**
 * The BPMN-standard (SpiffArena) correlation of a message: for every
 * bpmn:correlationProperty of the definitions, in property-id order, the
 * messagePath of its first correlationPropertyRetrievalExpression whose
 * messageRef is this message, as a JS expression (`${…}` / `=` unwrapped).
 */
export function correlationPathsOf(message: ModdleElement): string[] {
  const definitions = child(message, '$parent');
  const properties = list(definitions, 'rootElements')
    .filter((r) => is(r, 'bpmn:CorrelationProperty'))
    .map((r) => ({ id: str(r, 'id') ?? '', el: r }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const paths: string[] = [];
  for (const { el } of properties) {
    for (const retrieval of list(el, 'correlationPropertyRetrievalExpression')) {
      if (child(retrieval, 'messageRef') !== message) continue;
      const path = jsExpression(expressionBody(child(retrieval, 'messagePath')));
      if (path !== null) {
        paths.push(path);
        break;
      }
    }
  }
  return paths;
}

/**
 * One JS expression giving the correlation key from the retrieval paths: the
 * path itself when there is one (the engine turns a non-string value into
 * JSON, null stays null); with several, each value (string as is, null or
 * undefined as '', anything else as JSON) joined with '|'. The API computes
 * the same key from a published payload (src/runtime/message-correlation.ts).
 */
export function correlationKeyExpression(paths: readonly string[], language: Language = 'javascript'): string {
  if (paths.length === 1) return paths[0] as string;
  const parts = paths.map((p) => `(${p})`).join(', ');
  if (language === 'python') {
    // json.dumps with these options writes what JSON.stringify writes for JSON values
    return `'|'.join([(v if isinstance(v, str) else '' if v is None else json.dumps(v, separators=(',', ':'), ensure_ascii=False)) for v in [${parts}]])`;
  }
  return `[${parts}].map((v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v))).join('|')`;
}

/**
 * Reads the one event definition of an event. `allowed` lists the kinds the
 * event's position accepts; anything else is reported as not supported yet.
 */
export function readEventDefinition(
  el: ModdleElement,
  allowed: readonly EventDefinition['kind'][],
  report: Report,
  unresolved: Unresolved,
  language: Language = 'javascript',
): EventDefinition | null | 'invalid' {
  const defs = eventDefinitionsOf(el);
  if (defs.length === 0) return null;
  const type = localType(el);
  if (defs.length > 1) {
    report(`${type} with several event definitions (multiple/parallel multiple) is not supported yet`);
    return 'invalid';
  }
  const def = defs[0] as ModdleElement;
  const kind = kindOf(def);
  if (kind === null || !allowed.includes(kind)) {
    report(`${type} with ${localType(def)} is not supported yet`);
    return 'invalid';
  }
  switch (kind) {
    case 'terminate':
      return { kind };
    case 'error': {
      const error = child(def, 'errorRef');
      const missing = unresolved.get(def)?.get('errorRef');
      if (missing !== undefined) {
        report(`error '${missing}' does not exist`);
        return 'invalid';
      }
      return {
        kind,
        errorCode: text(error, 'errorCode'),
        errorMessage: text(error, 'errorMessage') ?? text(error, 'name'),
        codeVariable: text(def, 'errorCodeVariable'),
        messageVariable: text(def, 'errorMessageVariable'),
      };
    }
    case 'escalation': {
      const escalation = child(def, 'escalationRef');
      const missing = unresolved.get(def)?.get('escalationRef');
      if (missing !== undefined) {
        report(`escalation '${missing}' does not exist`);
        return 'invalid';
      }
      return { kind, escalationCode: text(escalation, 'escalationCode') };
    }
    case 'timer': {
      const timer = readTimer(def, report, language);
      return timer ? { kind, timer } : 'invalid';
    }
    case 'message': {
      const ref = readMessageRef(def, 'messageRef', report, unresolved, language);
      return ref ? { kind, ...ref } : 'invalid';
    }
    case 'signal': {
      const signal = child(def, 'signalRef');
      if (!signal) {
        const missing = unresolved.get(def)?.get('signalRef');
        if (missing !== undefined) {
          report(`signal '${missing}' does not exist`);
          return 'invalid';
        }
        return { kind, signalName: ownName(def) };
      }
      const name = text(signal, 'name');
      if (name === null) {
        report(`signal '${str(signal, 'id') ?? '?'}' has no name`);
        return 'invalid';
      }
      return { kind, signalName: name };
    }
    case 'conditional': {
      const body = expressionBody(child(def, 'condition'));
      const condition = jsExpression(body);
      if (condition === null) {
        report('conditional event has no condition');
        return 'invalid';
      }
      return { kind, condition };
    }
    case 'compensate': {
      const missing = unresolved.get(def)?.get('activityRef');
      if (missing !== undefined) {
        report(`compensation activityRef '${missing}' does not exist`);
        return 'invalid';
      }
      return { kind, activityRef: str(child(def, 'activityRef'), 'id') ?? null };
    }
    case 'cancel':
      return { kind };
    case 'link': {
      const name = text(def, 'name');
      if (name === null) {
        report('link event has no name');
        return 'invalid';
      }
      return { kind, linkName: name, targetId: null };
    }
  }
}

function kindOf(def: ModdleElement): EventDefinition['kind'] | null {
  switch (def.$type) {
    case 'bpmn:TerminateEventDefinition':
      return 'terminate';
    case 'bpmn:ErrorEventDefinition':
      return 'error';
    case 'bpmn:EscalationEventDefinition':
      return 'escalation';
    case 'bpmn:TimerEventDefinition':
      return 'timer';
    case 'bpmn:MessageEventDefinition':
      return 'message';
    case 'bpmn:SignalEventDefinition':
      return 'signal';
    case 'bpmn:ConditionalEventDefinition':
      return 'conditional';
    case 'bpmn:LinkEventDefinition':
      return 'link';
    case 'bpmn:CompensateEventDefinition':
      return 'compensate';
    case 'bpmn:CancelEventDefinition':
      return 'cancel';
    default:
      return null;
  }
}

function readTimer(def: ModdleElement, report: Report, language: Language): TimerDefinition | null {
  const found: { kind: TimerDefinition['kind']; expression: string }[] = [];
  for (const [prop, kind] of [
    ['timeDate', 'date'],
    ['timeDuration', 'duration'],
    ['timeCycle', 'cycle'],
  ] as const) {
    const body = expressionBody(child(def, prop));
    if (body !== null) found.push({ kind, expression: body });
  }
  if (found.length !== 1) {
    report(found.length === 0 ? 'timer event has no timeDate, timeDuration or timeCycle' : 'timer event has more than one of timeDate, timeDuration, timeCycle');
    return null;
  }
  const { kind, expression: raw } = found[0]!;
  const timer = classifyTimer(kind, raw.trim(), language);
  if (typeof timer === 'string') {
    report(timer);
    return null;
  }
  return timer;
}

const TIMER_LITERAL_NAME = { date: 'ISO 8601 date-time', duration: 'ISO 8601 duration', cycle: 'ISO 8601 repeating interval or cron expression' };

/**
 * Literal or expression (see TimerDefinition). A text that is not a valid
 * literal but is shaped like one (`PT5X`, `R3/PTM`, `2026-13-01`, five cron
 * fields with a bad one) is a mistake in the literal, reported at deploy,
 * not an expression: it would only fail when the timer is armed. Returns the
 * problem message for a bad literal.
 */
export function classifyTimer(kind: TimerDefinition['kind'], text: string, language: Language = 'javascript'): TimerDefinition | string {
  const bad = (value: string) => `timer ${kind} '${value}' is not a valid ${TIMER_LITERAL_NAME[kind]}`;
  let inner: string | null = null;
  if (text.startsWith('=')) inner = text.slice(1).trim();
  else inner = /^[$#]\{([\s\S]*)\}$/.exec(text)?.[1]?.trim() ?? null;
  const candidate = inner ?? text;
  const quoted = /^(['"])([^'"]*)\1$/.exec(candidate);
  if (quoted) {
    const literal = (quoted[2] ?? '').trim();
    return validTimerLiteral(kind, literal) ? { kind, expression: literal, literal: true } : bad(literal);
  }
  if (inner !== null) return inner === '' ? bad(text) : { kind, expression: inner, literal: false };
  if (validTimerLiteral(kind, text)) return { kind, expression: text, literal: true };
  if (looksLikeTimerLiteral(text) || text === '') return bad(text);
  // a Python expression is checked when it is evaluated: no Python parser runs at deploy
  const syntax = language === 'javascript' ? jsSyntaxError(text) : null;
  if (syntax !== null) return `${bad(text)}, nor a JavaScript expression (${syntax})`;
  return { kind, expression: text, literal: false };
}

/**
 * Whether `text` parses as a JavaScript expression: null, or the parser's
 * message. `new Function` only compiles the body, it never runs it.
 */
export function jsSyntaxError(text: string): string | null {
  try {
    new Function(`return (\n${text}\n);`);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** ISO 8601 durations, repeating intervals and dates, and cron field lists, by their shape alone. */
function looksLikeTimerLiteral(text: string): boolean {
  return (
    /^P(T?\d|\d)/.test(text) ||
    /^R\d*\//.test(text) ||
    /^\d{4}-\d{2}/.test(text) ||
    /^(CRON_)?TZ=/i.test(text) ||
    /^[\d*?][\d*?/,\-]*(\s+[\w*?/,\-#]+){4,5}$/.test(text)
  );
}

export function stripQuotes(value: string): string {
  const v = value.trim();
  const m = /^(['"])(.*)\1$/s.exec(v);
  return m ? (m[2] ?? '') : v;
}

// ---- loops ---------------------------------------------------------------

/**
 * The variable an ItemAwareElement reference stands for. Resolved (a data
 * object, a property): its id, as data objects are variables named by id;
 * its name only when it has no id. Unresolved: the raw text.
 */
function refName(el: ModdleElement, prop: string, unresolved: Unresolved): string | null {
  const ref = child(el, prop);
  if (ref) return text(ref, 'id') ?? text(ref, 'name');
  const raw = unresolved.get(el)?.get(prop);
  return raw !== undefined && raw.trim() !== '' ? raw.trim() : null;
}

/**
 * The variable of a multi-instance inputDataItem/outputDataItem: its id
 * (SpiffWorkflow; a name like "input item" is a label, not an identifier),
 * the name only when there is no id.
 */
function dataItemName(item: ModdleElement | undefined): string | null {
  return item ? (text(item, 'id') ?? text(item, 'name')) : null;
}

export function readLoop(loop: ModdleElement | undefined, report: Report, unresolved: Unresolved): LoopDefinition | 'invalid' {
  if (!loop) return null;
  if (is(loop, 'bpmn:StandardLoopCharacteristics')) {
    const max = loop['loopMaximum'];
    const loopMaximum = typeof max === 'number' ? max : typeof max === 'string' && /^\d+$/.test(max) ? Number(max) : null;
    const loopCondition = jsExpression(expressionBody(child(loop, 'loopCondition')));
    if (loopCondition === null && loopMaximum === null) {
      report('standard loop without loopCondition and loopMaximum would never end');
      return 'invalid';
    }
    return { kind: 'standardLoop', testBefore: bool(loop, 'testBefore'), loopCondition, loopMaximum };
  }
  if (!is(loop, 'bpmn:MultiInstanceLoopCharacteristics')) {
    report(`${localType(loop)} is not supported yet`);
    return 'invalid';
  }
  const zeebe = extension(loop, 'zeebe:LoopCharacteristics');
  const inputCollection =
    jsExpression(str(zeebe, 'inputCollection')) ??
    jsExpression(str(loop, 'collection')) ??
    refName(loop, 'loopDataInputRef', unresolved);
  const inputElement =
    text(zeebe, 'inputElement') ??
    text(loop, 'elementVariable') ??
    dataItemName(child(loop, 'inputDataItem'));
  const outputCollection = text(zeebe, 'outputCollection') ?? refName(loop, 'loopDataOutputRef', unresolved);
  const outputElement =
    jsExpression(str(zeebe, 'outputElement')) ??
    dataItemName(child(loop, 'outputDataItem'));
  const loopCardinality = jsExpression(expressionBody(child(loop, 'loopCardinality')));
  const completionCondition = jsExpression(expressionBody(child(loop, 'completionCondition')));
  if (inputCollection === null && loopCardinality === null) {
    report('multi-instance needs an input collection or a loopCardinality');
    return 'invalid';
  }
  if (outputCollection !== null && outputElement === null) {
    report('multi-instance output collection without an output element');
    return 'invalid';
  }
  const behavior = str(loop, 'behavior');
  if (behavior !== undefined && behavior !== 'All') {
    report(`multi-instance behavior '${behavior}' is not supported yet`);
    return 'invalid';
  }
  return {
    kind: 'multiInstance',
    sequential: bool(loop, 'isSequential'),
    loopCardinality,
    inputCollection,
    inputElement,
    outputCollection,
    outputElement,
    completionCondition,
  };
}

// ---- call activity ---------------------------------------------------------

export interface CallActivityData {
  calledElement: string;
  versionBinding: { kind: 'latest' } | { kind: 'version'; version: number } | { kind: 'deployment' };
  inputAll: boolean;
  inputs: VariableMapping[];
  outputAll: boolean;
  outputs: VariableMapping[];
}

export function readCallActivity(el: ModdleElement, report: Report): CallActivityData | null {
  const zCalled = extension(el, 'zeebe:CalledElement');
  const calledElement = text(zCalled, 'processId') ?? text(el, 'calledElement');
  let ok = true;
  if (calledElement === null) {
    report('call activity has no calledElement');
    ok = false;
  } else if (calledElement.startsWith('=') || calledElement.startsWith('${')) {
    report('an expression as calledElement is not supported yet');
    ok = false;
  }
  let versionBinding: CallActivityData['versionBinding'] = { kind: 'latest' };
  const binding = text(el, 'calledElementBinding');
  if (binding === 'deployment') versionBinding = { kind: 'deployment' };
  else if (binding === 'version') {
    const v = text(el, 'calledElementVersion');
    if (v === null || !/^\d+$/.test(v)) {
      report(`camunda:calledElementVersion must be a version number, got '${v ?? ''}'`);
      ok = false;
    } else versionBinding = { kind: 'version', version: Number(v) };
  } else if (binding !== null && binding !== 'latest') {
    report(`camunda:calledElementBinding '${binding}' is not supported yet`);
    ok = false;
  }

  const inputs: VariableMapping[] = [];
  const outputs: VariableMapping[] = [];
  let inAll = false;
  let outAll = false;
  const cIns = extensions(el, 'camunda:In');
  const cOuts = extensions(el, 'camunda:Out');
  const readInOut = (b: ModdleElement, into: VariableMapping[], label: string): boolean => {
    if (text(b, 'variables') === 'all') return true;
    if (text(b, 'businessKey') !== null) return false; // business key passing is tolerated and ignored
    const target = text(b, 'target');
    const source = text(b, 'source') ?? jsExpression(str(b, 'sourceExpression'));
    if (target === null || source === null) {
      report(`${label} needs source (or sourceExpression) and target`);
      ok = false;
    } else into.push({ source, target });
    return false;
  };
  for (const b of cIns) if (readInOut(b, inputs, 'camunda:in')) inAll = true;
  for (const b of cOuts) if (readInOut(b, outputs, 'camunda:out')) outAll = true;

  const zIo = extension(el, 'zeebe:IoMapping');
  for (const [params, into] of [
    [list(zIo, 'inputParameters'), inputs],
    [list(zIo, 'outputParameters'), outputs],
  ] as const) {
    for (const p of params) {
      const target = text(p, 'target');
      const source = jsExpression(str(p, 'source'));
      if (target === null || source === null) {
        report('zeebe:input/output needs source and target');
        ok = false;
      } else into.push({ source, target });
    }
  }
  const propagateChild = str(zCalled, 'propagateAllChildVariables');
  const propagateParent = str(zCalled, 'propagateAllParentVariables');

  // Defaults: everything in and out (SpiffArena), unless explicit camunda:in/out mappings
  // exist (Camunda 7 then passes only those). Zeebe: all parent variables plus the input
  // mappings unless propagateAllParentVariables="false"; all child variables unless output
  // mappings exist or propagateAllChildVariables="false".
  const inputAll =
    inAll ||
    (propagateParent !== undefined
      ? propagateParent !== 'false'
      : zCalled !== undefined || (cIns.length === 0 && list(zIo, 'inputParameters').length === 0));
  const outputAll = outAll || (propagateChild !== undefined ? propagateChild !== 'false' : cOuts.length === 0 && list(zIo, 'outputParameters').length === 0);
  if (!ok || calledElement === null) return null;
  return { calledElement, versionBinding, inputAll, inputs, outputAll, outputs };
}
