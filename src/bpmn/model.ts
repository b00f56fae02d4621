/**
 * Parsing BPMN XML with bpmn-moddle, plus small typed accessors for the loose
 * moddle element objects.
 *
 * The camunda and zeebe descriptors both declare a `TemplateSupported` type that
 * adds a `modelerTemplate` attribute to bpmn:Process/FlowElement; moddle refuses
 * to register the same property name twice, so loading both as shipped fails on
 * the first process. We drop zeebe's copy: `modelerTemplate` is modeler metadata
 * the engine never reads, and zeebe's attribute then survives in `$attrs`.
 */
import { createRequire } from 'node:module';
import { BpmnModdle, type ModdleElement, type ParseWarning } from 'bpmn-moddle';

export type { ModdleElement, ParseWarning };

const require = createRequire(import.meta.url);

interface Descriptor {
  types: { name: string }[];
  [key: string]: unknown;
}

let moddle: BpmnModdle | null = null;

function getModdle(): BpmnModdle {
  if (moddle) return moddle;
  const camunda = require('camunda-bpmn-moddle/resources/camunda.json') as Descriptor;
  const zeebeShipped = require('zeebe-bpmn-moddle/resources/zeebe.json') as Descriptor;
  const zeebe: Descriptor = {
    ...zeebeShipped,
    types: zeebeShipped.types.filter((t) => t.name !== 'TemplateSupported'),
  };
  const spiffworkflow = require('./spiffworkflow.json') as Descriptor;
  moddle = new BpmnModdle({ camunda, zeebe, spiffworkflow });
  return moddle;
}

export interface ParsedDefinitions {
  definitions: ModdleElement;
  warnings: ParseWarning[];
}

/** Throws the moddle error when the text is not XML or not a bpmn:Definitions document. */
export async function parseXml(xml: string): Promise<ParsedDefinitions> {
  const result = await getModdle().fromXML(xml);
  return { definitions: result.rootElement, warnings: result.warnings };
}

// ---- accessors ------------------------------------------------------------

export function str(el: ModdleElement | undefined, prop: string): string | undefined {
  const v = el?.[prop];
  return typeof v === 'string' ? v : undefined;
}

/** A non-empty trimmed string, or null. */
export function text(el: ModdleElement | undefined, prop: string): string | null {
  const v = str(el, prop)?.trim();
  return v ? v : null;
}

export function bool(el: ModdleElement | undefined, prop: string): boolean {
  return el?.[prop] === true;
}

export function list(el: ModdleElement | undefined, prop: string): ModdleElement[] {
  const v = el?.[prop];
  return Array.isArray(v) ? (v as ModdleElement[]) : [];
}

export function child(el: ModdleElement | undefined, prop: string): ModdleElement | undefined {
  const v = el?.[prop];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ModdleElement) : undefined;
}

export function is(el: ModdleElement | undefined, type: string): boolean {
  return el?.$type === type;
}

/** `bpmn:ServiceTask` → `serviceTask` */
export function localType(el: ModdleElement): string {
  const local = el.$type.includes(':') ? el.$type.slice(el.$type.indexOf(':') + 1) : el.$type;
  return local.charAt(0).toLowerCase() + local.slice(1);
}

/** Extension elements of the given moddle type(s), in document order. */
export function extensions(el: ModdleElement, type: string): ModdleElement[] {
  return list(child(el, 'extensionElements'), 'values').filter((v) => v.$type === type);
}

export function extension(el: ModdleElement, type: string): ModdleElement | undefined {
  return extensions(el, type)[0];
}
