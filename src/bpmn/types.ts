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
 * Shape:
 * - `GraphScope` is the unit every "container" compiles to: the process, an
 *   embedded subprocess, an event subprocess (kind `eventSubProcess`, listed
 *   in its parent scope's `eventSubProcessIds`).
 * - Boundary events are elements of the activity's scope with `attachedToId`;
 *   the activity lists them in `boundaryEventIds`.
 * - Every activity has `loop` (multi-instance or standard loop, else null).
 * - Events carry `eventDefinition` (null = none event).
 * - Expressions (conditions, loop expressions, mappings, correlation keys)
 *   are JavaScript with a FEEL `=` or JUEL `${}` wrapper already removed;
 *   a timer is a literal (validated at deploy) or an expression evaluated
 *   when the timer is armed (TimerDefinition).
 */
import type { Language } from '../expressions/language.js';
import type { JsonObject } from '../errors.js';

/** Flow-node types the engine can execute today. */
export type ElementType =
  | 'startEvent'
  | 'endEvent'
  | 'intermediateThrowEvent'
  | 'intermediateCatchEvent'
  | 'boundaryEvent'
  | 'exclusiveGateway'
  | 'parallelGateway'
  | 'inclusiveGateway'
  | 'eventBasedGateway'
  | 'task'
  | 'scriptTask'
  | 'userTask'
  | 'manualTask'
  | 'serviceTask'
  | 'businessRuleTask'
  | 'sendTask'
  | 'receiveTask'
  | 'subProcess'
  | 'callActivity';

/**
 * A timer definition. timeDate/timeDuration/timeCycle are formal expressions:
 * - `literal: true`: `expression` is an ISO 8601 date-time, duration or
 *   repeating interval (`R3/PT10M`, `R/<start>/P1D`), or a cron expression for
 *   cycles, validated at deploy. A quoted text (`"PT1M"`, as SpiffArena's
 *   modeler writes it), `="PT1M"` and `${'PT1M'}` are that literal.
 * - `literal: false`: `expression` is an expression (`=`/`${…}` wrapper
 *   removed) evaluated when the timer is armed; it must give such a text (a
 *   JavaScript `Date` arrives as its ISO string).
 */
export interface TimerDefinition {
  readonly kind: 'date' | 'duration' | 'cycle';
  readonly expression: string;
  readonly literal: boolean;
}

/** `null` on an event means a none event. */
export type EventDefinition =
  | { readonly kind: 'terminate' }
  /** errorCode null: no errorRef or an error without code (catch: catch-all) */
  | {
      readonly kind: 'error';
      readonly errorCode: string | null;
      readonly errorMessage: string | null;
      /** catching events: camunda:errorCodeVariable / errorMessageVariable receive the caught error's code and message */
      readonly codeVariable: string | null;
      readonly messageVariable: string | null;
    }
  /** escalationCode null: catch-all on a catching event */
  | { readonly kind: 'escalation'; readonly escalationCode: string | null }
  | { readonly kind: 'timer'; readonly timer: TimerDefinition }
  /**
   * correlationKey: the zeebe:subscription correlationKey of the message (an
   * expression, `=` stripped), else the expression built from its
   * correlationPropertyRetrievalExpression messagePaths, or null.
   * correlationPaths: those messagePaths (property-id order), only when the key comes from them
   */
  | { readonly kind: 'message'; readonly messageName: string; readonly correlationKey: string | null; readonly correlationPaths?: readonly string[] }
  | { readonly kind: 'signal'; readonly signalName: string }
  /** condition: a JavaScript expression */
  | { readonly kind: 'conditional'; readonly condition: string }
  /** on a throw link event `targetId` is the catch link event with the same name in the same scope */
  | { readonly kind: 'link'; readonly linkName: string; readonly targetId: string | null }
  /** compensation throw: activityRef null compensates every completed activity of the scope */
  | { readonly kind: 'compensate'; readonly activityRef: string | null }
  /** cancel end event (inside a transaction) / cancel boundary event (on a transaction) */
  | { readonly kind: 'cancel' };

/**
 * Loop characteristics of an activity. Expressions are JavaScript (a `${…}`
 * wrapper and a FEEL-style leading `=` are stripped at compile time).
 */
export type LoopDefinition =
  | {
      readonly kind: 'multiInstance';
      readonly sequential: boolean;
      /** expression giving the number of instances (when there is no input collection) */
      readonly loopCardinality: string | null;
      /** expression giving the array to iterate */
      readonly inputCollection: string | null;
      /** local variable of each instance holding its item */
      readonly inputElement: string | null;
      /** variable (in the activity's scope) receiving the array of outputs, in item order */
      readonly outputCollection: string | null;
      /** expression evaluated in each instance's scope when it completes (a plain name is a variable) */
      readonly outputElement: string | null;
      /** expression over the variables plus nrOfInstances, nrOfActiveInstances, nrOfCompletedInstances, loopCounter */
      readonly completionCondition: string | null;
    }
  | {
      readonly kind: 'standardLoop';
      readonly testBefore: boolean;
      /** loop while this holds; null loops until loopMaximum */
      readonly loopCondition: string | null;
      readonly loopMaximum: number | null;
    }
  | null;

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
  /** boundary events attached to this element, document order */
  readonly boundaryEventIds: readonly string[];
}

/**
 * The value of one input/output parameter (camunda:inputOutput, zeebe:ioMapping).
 * `literal` is a string used as is; `expression` is JavaScript over the
 * variables (a `${…}`/`#{…}` wrapper or a FEEL `=` already removed; a Camunda
 * composite text `Order ${id}` becomes a string-building expression); `null`
 * is an empty parameter; `list` and `map` (camunda:list, camunda:map) are
 * evaluated item by item. An inline JavaScript camunda:script that is a
 * single expression compiles to `expression`.
 */
export type IoValue =
  | { readonly kind: 'null' }
  /** a variable that must be set (SpiffWorkflow's ioSpecification data inputs and outputs): missing → a failure */
  | { readonly kind: 'variable'; readonly name: string }
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'expression'; readonly expression: string }
  | { readonly kind: 'list'; readonly items: readonly IoValue[] }
  | {
      readonly kind: 'map';
      /** keys: a literal, or an expression whose value becomes the key */
      readonly entries: readonly { readonly key: Extract<IoValue, { kind: 'literal' | 'expression' }>; readonly value: IoValue }[];
    };

export interface IoParameter {
  /** input: the local variable created; output: the variable written in the scope the element lives in */
  readonly name: string;
  readonly value: IoValue;
}

/**
 * Input/output variable mapping of an activity or event (Camunda 7
 * camunda:inputOutput, Zeebe zeebe:ioMapping), see src/engine/index.ts:
 * inputs become local variables of the element when it starts (visible to its
 * script, task, job, called instance and subprocess content only); outputs are
 * evaluated when it completes, over its locals and everything visible, and
 * written to the scope the element lives in; the locals then go away.
 */
export interface IoMapping {
  /**
   * camunda: each input is evaluated over the enclosing scope (inputs do not
   *   see each other); what a task completion or job brings back is written
   *   like any variable (a name that is an input updates that local).
   * zeebe: an input sees the inputs before it; with output mappings, what a
   *   task completion or job brings back stays local (only outputs propagate).
   */
  /*
   * spiff: a task's bpmn:ioSpecification as SpiffWorkflow reads it: every data
   *   input must be set when the task starts, every data output when it
   *   completes; what the task brings back stays local, only the outputs go on.
   */
  readonly vendor: 'camunda' | 'zeebe' | 'spiff';
  readonly inputs: readonly IoParameter[];
  readonly outputs: readonly IoParameter[];
}

interface ActivityBase extends ElementBase {
  readonly defaultFlow: string | null;
  /** input/output parameters (camunda:inputOutput, zeebe:ioMapping but on call activities), null when none */
  readonly io: IoMapping | null;
  /** spiffworkflow:preScript, run before the activity's own behaviour */
  readonly preScript: string | null;
  /** spiffworkflow:postScript, run when the activity completes, before it leaves */
  readonly postScript: string | null;
  readonly loop: LoopDefinition;
  /** isForCompensation: a compensation handler (never reached by sequence flows) */
  readonly isForCompensation: boolean;
  /** the compensation handler associated with this activity's compensation boundary event, if any */
  readonly compensationHandlerId: string | null;
}

export interface StartEventElement extends ElementBase {
  readonly type: 'startEvent';
  /** message/signal/timer/conditional for process starts; also error/escalation in event subprocesses */
  readonly eventDefinition: EventDefinition | null;
  /** event subprocess starts: isInterrupting (default true) */
  readonly interrupting: boolean;
}

export interface EndEventElement extends ElementBase {
  /** input parameters (and outputs, but on end events), null when none */
  readonly io: IoMapping | null;
  readonly type: 'endEvent';
  readonly eventDefinition: EventDefinition | null;
}

export interface IntermediateThrowEventElement extends ElementBase {
  /** input parameters (and outputs, but on end events), null when none */
  readonly io: IoMapping | null;
  readonly type: 'intermediateThrowEvent';
  readonly eventDefinition: EventDefinition | null;
}

export interface IntermediateCatchEventElement extends ElementBase {
  /** input parameters (and outputs, but on end events), null when none */
  readonly io: IoMapping | null;
  readonly type: 'intermediateCatchEvent';
  readonly eventDefinition: EventDefinition;
}

export interface BoundaryEventElement extends ElementBase {
  readonly type: 'boundaryEvent';
  readonly eventDefinition: EventDefinition;
  readonly attachedToId: string;
  /** cancelActivity (default true); error boundary events always interrupt */
  readonly interrupting: boolean;
}

export interface ExclusiveGatewayElement extends ElementBase {
  readonly type: 'exclusiveGateway';
  readonly defaultFlow: string | null;
}

/**
 * What can still reach a join (a parallel or inclusive gateway with several
 * incoming flows): for every element of the gateway's scope from which one of
 * its incoming flows can be reached without passing through the gateway (over
 * sequence flows, attached boundary events and links), the indices (into
 * `incoming`) of the incoming flows it can reach. The source of an incoming
 * flow reaches that flow. Empty for a gateway with fewer than two incoming flows.
 */
export type JoinReach = Readonly<Record<string, readonly number[]>>;

export interface ParallelGatewayElement extends ElementBase {
  readonly type: 'parallelGateway';
  /** see JoinReach: a join whose missing flows no live token can reach can never fire */
  readonly reach: JoinReach;
  /**
   * indices of the incoming flows that come back from after the gateway (a
   * loop through it): the gateway is then a loop merge as well (SpiffWorkflow)
   */
  readonly loopBack: readonly number[];
}

export interface InclusiveGatewayElement extends ElementBase {
  readonly type: 'inclusiveGateway';
  readonly defaultFlow: string | null;
  /**
   * see JoinReach: a live token on an element that can reach an incoming flow
   * still without a token, and none that has one, may still arrive, so the
   * join waits for it (BPMN 2.0 §13.4.3)
   */
  readonly reach: JoinReach;
}

export interface EventBasedGatewayElement extends ElementBase {
  readonly type: 'eventBasedGateway';
}

export interface TaskElement extends ActivityBase {
  readonly type: 'task';
  /**
   * null: a pass-through (BPMN's abstract task, as Camunda runs it). In a
   * model that declares the spiffworkflow namespace, SpiffWorkflow's reading:
   * the task waits for a person, like a manual task (its NoneTask is manual).
   */
  readonly human: HumanTaskDefinition | null;
}

export interface ScriptTaskElement extends ActivityBase {
  readonly type: 'scriptTask';
  /** JavaScript source */
  readonly script: string;
  /**
   * camunda:resultVariable: the variable receiving the script's value. Only
   * for a script that is one expression, evaluated as such (Camunda stores
   * the value of a script's last statement; the Evaluator cannot give that).
   */
  readonly resultVariable: string | null;
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
  /** tries in all (zeebe:taskDefinition retries, the count of camunda:failedJobRetryTimeCycle R<n>/…; default 3) */
  readonly retries: number;
  /** fixed delay between tries, from camunda:failedJobRetryTimeCycle; null → exponential backoff */
  readonly retryBackoffMs: number | null;
  /**
   * spiffworkflow parameters, part of the job input. camunda:inputOutput and
   * zeebe:ioMapping inputs are in the element's `io` (they become locals, and
   * the job input too); graphs compiled before `io` existed carry them here.
   */
  readonly inputs: readonly InputParameter[];
  readonly headers: Readonly<Record<string, string>>;
  readonly resultVariable: string | null;
}

export interface ServiceTaskElement extends ActivityBase {
  readonly type: 'serviceTask';
  /**
   * null: a service task with no task type and no implementation, in a model
   * written for neither Camunda 7 nor Camunda 8 (both refuse it): a no-op, as
   * in SpiffWorkflow
   */
  readonly service: ServiceTaskDefinition | null;
}

/** A business rule task with a task type runs like a service task (DMN comes later). */
export interface BusinessRuleTaskElement extends ActivityBase {
  readonly type: 'businessRuleTask';
  readonly service: ServiceTaskDefinition;
}

export interface MessageRef {
  readonly messageName: string;
  /** expression (`=` stripped) or null */
  readonly correlationKey: string | null;
  /** BPMN-standard retrieval messagePaths the key was built from (absent for zeebe keys and keyless messages) */
  readonly correlationPaths?: readonly string[];
}

export interface SendTaskElement extends ActivityBase {
  readonly type: 'sendTask';
  readonly message: MessageRef;
}

export interface ReceiveTaskElement extends ActivityBase {
  readonly type: 'receiveTask';
  readonly message: MessageRef;
}

export interface VariableMapping {
  /** expression over the source variables (a plain name reads that variable) */
  readonly source: string;
  readonly target: string;
}

export interface CallActivityElement extends ActivityBase {
  readonly type: 'callActivity';
  /** process key of the called process */
  readonly calledElement: string;
  readonly versionBinding: { readonly kind: 'latest' } | { readonly kind: 'version'; readonly version: number } | { readonly kind: 'deployment' };
  /** true: every visible variable is passed to the child (default, SpiffArena) */
  readonly inputAll: boolean;
  readonly inputs: readonly VariableMapping[];
  /** true: every variable of the child is merged back (default) */
  readonly outputAll: boolean;
  readonly outputs: readonly VariableMapping[];
}

export interface SubProcessElement extends ActivityBase {
  readonly type: 'subProcess';
  /** the GraphScope holding the subprocess content (same id as the element) */
  readonly childScopeId: string;
  /** an event subprocess: no sequence flows; started by its start event's trigger */
  readonly triggeredByEvent: boolean;
  /** a bpmn:transaction: a cancel end event inside compensates it and leaves by its cancel boundary event */
  readonly isTransaction: boolean;
}

export type GraphElement =
  | StartEventElement
  | EndEventElement
  | IntermediateThrowEventElement
  | IntermediateCatchEventElement
  | BoundaryEventElement
  | ExclusiveGatewayElement
  | ParallelGatewayElement
  | InclusiveGatewayElement
  | EventBasedGatewayElement
  | TaskElement
  | ScriptTaskElement
  | UserTaskElement
  | ManualTaskElement
  | ServiceTaskElement
  | BusinessRuleTaskElement
  | SendTaskElement
  | ReceiveTaskElement
  | SubProcessElement
  | CallActivityElement;

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
  readonly kind: 'process' | 'subProcess' | 'eventSubProcess';
  readonly parentScopeId: string | null;
  /** where a plain (none) start of this scope begins ('' for an event subprocess, or a process with only event starts) */
  readonly noneStartEventId: string;
  /** event subprocesses directly inside this scope, document order */
  readonly eventSubProcessIds: readonly string[];
  /**
   * bpmn:dataObject ids declared in this scope: each is a variable of the
   * scope instance (named by the id, null until written), so every task inside
   * reads it and writes to it there, however deeply nested (SpiffArena's data objects)
   */
  readonly dataObjectIds: readonly string[];
  /**
   * A process or embedded subprocess without any start event starts a token
   * on each of these: its flow nodes without incoming sequence flows (BPMN
   * 2.0 §10.5.2's implicit start), leaving out boundary events, compensation
   * handlers, event subprocesses and link catch events. Empty otherwise.
   */
  readonly implicitStartIds: readonly string[];
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
  /**
   * The process's bpmn:ioSpecification, as SpiffWorkflow reads it, by data
   * input/output id: a call activity hands the called instance only its data
   * inputs (each must be set) and takes back only its data outputs (each must
   * be set). null: everything in and out, as the call activity says.
   */
  readonly ioSpecification: { readonly inputs: readonly string[]; readonly outputs: readonly string[] } | null;
  /**
   * The language of the process's expressions and scripts (bpmn/index.ts
   * "Languages"); absent in graphs compiled before languages existed, which
   * are JavaScript.
   */
  readonly language?: Language;
  /** elements and flows whose expressions are in another language than `language` (their own scriptFormat or `language` attribute) */
  readonly languages?: Readonly<Record<string, Language>>;
}

/** Every language a graph's expressions are in. */
export function languagesOf(graph: ProcessGraph): Language[] {
  return [...new Set([graph.language ?? 'javascript', ...Object.values(graph.languages ?? {})])];
}

/** The language of the expressions of an element or flow. */
export function languageAt(graph: ProcessGraph, id: string): Language {
  return graph.languages?.[id] ?? graph.language ?? 'javascript';
}
