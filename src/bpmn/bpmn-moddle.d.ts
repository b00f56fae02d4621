/**
 * bpmn-moddle ships types for its element model (`bpmn-moddle/types`) but none
 * for its main export. This shim covers the small part of the API we call.
 * Elements are read through the loose `ModdleElement` shape and narrowed in
 * src/bpmn/model.ts, since extension packages add properties at run time.
 */
declare module 'bpmn-moddle' {
  export interface ModdleElement {
    readonly $type: string;
    readonly $parent?: ModdleElement;
    readonly $attrs?: Record<string, string>;
    readonly [property: string]: unknown;
  }

  export interface ParseWarning {
    message: string;
    element?: ModdleElement;
    property?: string;
    value?: string;
    error?: Error;
  }

  export interface ParseResult {
    rootElement: ModdleElement;
    warnings: ParseWarning[];
    elementsById: Record<string, ModdleElement>;
    references: unknown[];
  }

  export class BpmnModdle {
    constructor(packages?: Record<string, unknown>, options?: Record<string, unknown>);
    fromXML(xml: string, typeName?: string, options?: Record<string, unknown>): Promise<ParseResult>;
  }
}
