/**
 * Reading vendor extension data (camunda:, zeebe:, spiffworkflow:) into the
 * engine-neutral shapes of the definition graph. Each reader reports what it
 * cannot honour through `report` instead of dropping it silently.
 */
import type { JsonObject } from '../errors.js';
import { extension, extensions, list, str, text, child, type ModdleElement } from './model.js';
import { addDuration, parseDuration } from './timer.js';
import type { HumanTaskDefinition, InputParameter, ServiceTaskDefinition } from './types.js';

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

  const inputs: InputParameter[] = [];
  const zIo = extension(el, 'zeebe:IoMapping');
  for (const input of list(zIo, 'inputParameters')) {
    const target = text(input, 'target');
    const source = str(input, 'source') ?? '';
    if (target === null) {
      report('zeebe:input has no target');
      ok = false;
      continue;
    }
    const trimmed = source.trim();
    inputs.push(
      trimmed.startsWith('=')
        ? { name: target, kind: 'expression', value: trimmed.slice(1).trim() }
        : { name: target, kind: 'literal', value: source },
    );
  }
  if (list(zIo, 'outputParameters').length > 0) {
    report('zeebe:output mappings are not supported yet');
    ok = false;
  }

  const cIo = extension(el, 'camunda:InputOutput');
  for (const param of list(cIo, 'inputParameters')) {
    const name = text(param, 'name');
    if (name === null) {
      report('camunda:inputParameter has no name');
      ok = false;
      continue;
    }
    if (child(param, 'definition')) {
      report(`camunda:inputParameter '${name}' with a list/map/script definition is not supported yet`);
      ok = false;
      continue;
    }
    const value = str(param, 'value') ?? '';
    const expr = unwrapDollarExpression(value);
    inputs.push(expr !== null ? { name, kind: 'expression', value: expr } : { name, kind: 'literal', value });
  }
  if (list(cIo, 'outputParameters').length > 0) {
    report('camunda:outputParameter mappings are not supported yet');
    ok = false;
  }

  for (const param of list(child(spiffOp, 'parameters'), 'parameters')) {
    const name = text(param, 'id');
    if (name === null) {
      report('spiffworkflow:parameter has no id');
      ok = false;
      continue;
    }
    inputs.push({ name, kind: 'expression', value: text(param, 'value') ?? 'null' });
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
