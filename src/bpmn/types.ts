/**
 * The compiled, immutable definition graph of one BPMN process.
 *
 * A ProcessGraph is what the engine executes. It is plain JSON (records and
 * arrays, no Maps or class instances) so it can be cached, stored next to the
 * deployment and shipped between processes, and it is deep-frozen by the
 * compiler. Everything the engine needs while advancing tokens is precomputed
 * here: incoming/outgoing flow ids in document order, default flows, condition
 * and script sources, the start event of every scope, and the extension data of
 * human and service tasks. The engine never looks at XML or moddle objects.
 *
 * Extension points (kept in the shape on purpose, so later issues add data
 * without reshaping what exists):
 * - `GraphScope` is the unit every "container" compiles to (the process, an
 *   embedded subprocess; later an event subprocess or a multi-instance body).
 * - Every element has `boundaryEventIds` (empty for now): a boundary event will
 *   become its own element with `attachedToRef` pointing back at the activity.
 * - Every activity has `loop` (null for now): multi-instance characteristics go
 *   there.
 * - Events carry `eventDefinition` (null = none event): timer/message/signal/
 *   error definitions become further variants of `EventDefinition`.
 */
import type { JsonObject } from '../errors.js';

/** Flow-node types the engine can execute today. */
export type ElementType =
  | 'startEvent'
  | 'endEvent'
  | 'intermediateThrowEvent'
  | 'exclusiveGateway'
  | 'parallelGateway'
  | 'task'
  | 'scriptTask'
  | 'userTask'
  | 'manualTask'
  | 'serviceTask'
  | 'subProcess';

/** `null` on an event means a none event. */
export type EventDefinition = { readonly kind: 'terminate' };

/** Reserved for multi-instance / standard loop characteristics (not supported yet: always null). */
export type LoopDefinition = null;

interface ElementBase {
  readonly id: string;
  readonly name: string | null;
  /** id of the GraphScope the element lives in (the process id or a subprocess id) */
  readonly scopeId: string;
  /** sequence flow ids, in document order of the flows */
  readonly incoming: readonly string[];
  /** sequence flow ids, in document order of the flows (condition evaluation order) */
  readonly outgoing: readonly string[];
  /** name of the innermost lane the element is in */
  readonly lane: string | null;
  /** text of the element's bpmn:documentation, joined */
  readonly documentation: string | null;
  /** boundary events attached to this element (none supported yet) */
  readonly boundaryEventIds: readonly string[];
}

interface ActivityBase extends ElementBase {
  readonly defaultFlow: string | null;
  /** spiffworkflow:preScript, run before the activity's own behaviour */
  readonly preScript: string | null;
  /** spiffworkflow:postScript, run when the activity completes, before it leaves */
  readonly postScript: string | null;
  readonly loop: LoopDefinition;
}

export interface StartEventElement extends ElementBase {
  readonly type: 'startEvent';
  readonly eventDefinition: null;
}

export interface EndEventElement extends ElementBase {
  readonly type: 'endEvent';
  readonly eventDefinition: EventDefinition | null;
}

export interface IntermediateThrowEventElement extends ElementBase {
  readonly type: 'intermediateThrowEvent';
  readonly eventDefinition: null;
}

export interface ExclusiveGatewayElement extends ElementBase {
  readonly type: 'exclusiveGateway';
  readonly defaultFlow: string | null;
}

export interface ParallelGatewayElement extends ElementBase {
  readonly type: 'parallelGateway';
}

export interface TaskElement extends ActivityBase {
  readonly type: 'task';
}

export interface ScriptTaskElement extends ActivityBase {
  readonly type: 'scriptTask';
  /** JavaScript source */
  readonly script: string;
}

export interface HumanTaskDefinition {
  readonly assignee: string | null;
  readonly candidateGroups: readonly string[];
  readonly candidateUsers: readonly string[];
  readonly formKey: string | null;
  /** spiffworkflow properties, instructionsForEndUser, documentation, zeebe formId, … */
  readonly properties: JsonObject;
}

export interface UserTaskElement extends ActivityBase {
  readonly type: 'userTask';
  readonly human: HumanTaskDefinition;
}

export interface ManualTaskElement extends ActivityBase {
  readonly type: 'manualTask';
  readonly human: HumanTaskDefinition;
}

export interface InputParameter {
  readonly name: string;
  /** literal: `value` is used as is; expression: `value` is a JS expression over the visible variables */
  readonly kind: 'literal' | 'expression';
  readonly value: string;
}

export interface ServiceTaskDefinition {
  readonly topic: string;
  readonly retries: number;
  readonly inputs: readonly InputParameter[];
  readonly headers: Readonly<Record<string, string>>;
  readonly resultVariable: string | null;
}

export interface ServiceTaskElement extends ActivityBase {
  readonly type: 'serviceTask';
  readonly service: ServiceTaskDefinition;
}

export interface SubProcessElement extends ActivityBase {
  readonly type: 'subProcess';
  /** the GraphScope holding the subprocess content (same id as the element) */
  readonly childScopeId: string;
}

export type GraphElement =
  | StartEventElement
  | EndEventElement
  | IntermediateThrowEventElement
  | ExclusiveGatewayElement
  | ParallelGatewayElement
  | TaskElement
  | ScriptTaskElement
  | UserTaskElement
  | ManualTaskElement
  | ServiceTaskElement
  | SubProcessElement;

export type ElementOfType<T extends ElementType> = Extract<GraphElement, { type: T }>;

export interface GraphFlow {
  readonly id: string;
  readonly name: string | null;
  readonly sourceId: string;
  readonly targetId: string;
  readonly scopeId: string;
  /** JS expression (a `${…}` wrapper is stripped at compile time), null when unconditional */
  readonly condition: string | null;
  /** true when this flow is its source's default flow (its condition, if any, is ignored) */
  readonly isDefault: boolean;
}

export interface GraphScope {
  /** the process id for the root scope, the subprocess element id otherwise */
  readonly id: string;
  readonly kind: 'process' | 'subProcess';
  readonly parentScopeId: string | null;
  /** where a plain (none) start of this scope begins */
  readonly noneStartEventId: string;
  /** every start event of the scope, document order (later: message/timer starts) */
  readonly startEventIds: readonly string[];
  /** flow nodes directly inside the scope, document order */
  readonly elementIds: readonly string[];
}

export interface ProcessGraph {
  /** version of this JSON shape */
  readonly v: 1;
  /** process id */
  readonly key: string;
  readonly name: string | null;
  /** the process scope: `scopes[rootScopeId]` (equal to `key`) */
  readonly rootScopeId: string;
  readonly elements: Readonly<Record<string, GraphElement>>;
  readonly flows: Readonly<Record<string, GraphFlow>>;
  readonly scopes: Readonly<Record<string, GraphScope>>;
}
