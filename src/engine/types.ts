/**
 * The engine's contract with the rest of Baton.
 *
 * The engine is a pure function: (definition, state, event, context) → (state, effects).
 * It never does I/O, never reads the clock or Math.random directly (the context
 * gives `now()` and `newId()`), and never throws for a problem caused by the
 * user's model or data: such a problem becomes an Incident on the token.
 *
 * State holds only what is alive (active tokens, live scopes and their variables,
 * open incidents), so loading and saving it costs O(active), never O(history).
 * History leaves the engine as `history` effects, which the runtime appends to
 * an append-only table.
 *
 * The runtime stores `InstanceState` as JSON and hands it back on the next
 * event; it must stay plain JSON (no Maps, Dates, class instances).
 */
import type { Json, JsonObject } from '../errors.js';
import type { Evaluators } from '../expressions/index.js';

export type InstanceStatus = 'running' | 'waiting' | 'completed' | 'terminated' | 'error';

export interface EngineContext {
  now(): Date;
  newId(): string;
  /**
   * The evaluator of each language the models use (expressions/index.ts
   * `evaluatorsOf`). The engine asks for the language the compiled model
   * names for an element and never knows which evaluator it gets.
   */
  evaluators: Evaluators;
  /**
   * Upper bound on element executions within one startInstance/applyEvent call
   * (default 10,000). A model that loops without a wait state hits it and gets a
   * `step_limit` incident instead of spinning the worker forever.
   */
  maxElementExecutions?: number;
  /**
   * When true, applyEvent may change the `state` it is given in place instead
   * of working on a copy-on-write view (the caller must then use only the
   * returned state). For a caller that parses the state fresh for every step,
   * as the runtime does, this saves the per-event copy of the token and scope
   * records (O(live tokens)); the result is the same either way. Default false.
   */
  inPlace?: boolean;
  /**
   * Deepest call-activity nesting allowed (default 50): the root instance is
   * depth 0, a called instance its caller's depth + 1 (`ParentLink.depth`). A call activity whose child would be deeper gets a
   * `call_depth_exceeded` incident instead of starting it, so a process that
   * calls itself, directly or through others, ends instead of running away.
   */
  maxCallDepth?: number;
  /**
   * Most instances one multi-instance activity may run (its cardinality or
   * collection length; default 10,000). Past it the activity gets a
   * `loop_error` incident instead of building that many instances in memory.
   */
  maxMultiInstances?: number;
  /** shortest gap between two firings of a timer cycle armed from an expression, in ms (default 1000): shorter is a `timer_error` */
  minTimerIntervalMs?: number;
}

/** What a token is doing while it waits. */
export type Wait =
  | { kind: 'humanTask'; taskId: string }
  | { kind: 'serviceJob'; jobId: string }
  /** the token sits on a subprocess element while its child scope runs */
  | { kind: 'subprocess'; scopeId: string }
  /**
   * intermediate catch event, receive task or event-based gateway: the token
   * waits for one of the triggers (`InstanceState.triggers`) whose `tokenId` is its id
   */
  | { kind: 'event' }
  /** call activity: the child instance `childId` runs (childInstanceStarted) */
  | { kind: 'callActivity'; childId: string }
  /** multi-instance or standard loop: the token is the loop body; its instances run in child scopes (`Token.loop`) */
  | { kind: 'loop' }
  /**
   * compensation throw (or cancel end event): the handlers of `pending` run one
   * after another, each in a child scope; then the token goes on
   * (`continue`) or its transaction is cancelled (`cancelTransaction`)
   */
  | { kind: 'compensation'; pending: CompensationRecord[]; then: 'continue' | 'cancelTransaction' };

/**
 * A completed activity that has a compensation handler, with the variables it
 * completed with (those visible to it then). Only such activities are
 * recorded, in the scope instance they completed in; a finished subprocess
 * hands its records to its parent scope; records go away when compensated,
 * when their scope is cancelled, and with the instance.
 */
export interface CompensationRecord {
  activityId: string;
  handlerId: string;
  variables: JsonObject;
}

/**
 * The bounded bookkeeping of a running multi-instance / standard loop, kept on
 * the token of the loop body. Finished instances leave only counters behind;
 * the active ones are the child scopes whose `parentTokenId` is this token.
 */
export interface LoopState {
  kind: 'parallel' | 'sequential' | 'standard';
  nrOfInstances: number;
  nrOfActiveInstances: number;
  nrOfCompletedInstances: number;
  /** index of the next instance to start (sequential, standard) */
  next: number;
  /** the input collection, kept only for a sequential multi-instance (items are handed out one by one) */
  items: Json[] | null;
  /** the output collection so far (index = instance), when the model names one */
  output: Json[] | null;
}

/**
 * Something the instance waits for from the outside world or from its own
 * variables: a timer, a message or signal subscription, or a condition.
 * Opened with `timerScheduled` / `subscriptionOpened`, removed with
 * `timerCancelled` / `subscriptionClosed` (or silently when it fires and is
 * consumed). Only live triggers are kept.
 */
export interface Trigger {
  /** timer id or subscription id, as in the effects and events */
  id: string;
  kind: 'timer' | 'message' | 'signal' | 'conditional';
  /**
   * boundary:        `tokenId` is the activity's token; firing starts the boundary event (`elementId`)
   * catch:           `tokenId` waits on the catch event / receive task `elementId`
   * gateway:         `tokenId` waits on an event-based gateway; `elementId` is the catch event / receive task after it
   * eventSubProcess: hangs on the scope instance `scopeId`; `elementId` is the event subprocess's start event
   */
  role: 'boundary' | 'catch' | 'gateway' | 'eventSubProcess';
  elementId: string;
  tokenId: string | null;
  scopeId: string;
  /** timers */
  dueAt?: string;
  cycle?: { expression: string; remaining: number | null } | null;
  /** message / signal name */
  name?: string;
  correlationKey?: string | null;
  /** conditional: JavaScript expression */
  condition?: string;
}

export interface Token {
  id: string;
  elementId: string;
  /** id of the ScopeInstance the token lives in */
  scopeId: string;
  /**
   * ready:    about to be executed by advance()
   * waiting:  waits for an outside event (see `wait`)
   * joining:  arrived at a parallel join, waits for its siblings (`arrivedVia` says which flow)
   * incident: stopped by an incident (see InstanceState.incidents)
   */
  state: 'ready' | 'waiting' | 'joining' | 'incident';
  wait?: Wait;
  /** the sequence flow the token arrived by, when it matters (joins) */
  arrivedVia?: string;
  /** multi-instance / standard loop body token: the loop's counters */
  loop?: LoopState;
  /** the token runs one instance (0-based) of a loop activity, in its own scope */
  loopIndex?: number;
  /** the token arrives at a catch event / receive task whose trigger already fired (event-based gateway) */
  triggered?: true;
  /**
   * Set when the element's own work is done and only its leaving remains
   * (spiffworkflow postScript, outgoing-flow selection): a ready token with
   * `resumeAt: 'leave'` continues with leaving instead of executing its element
   * again. On a token in state 'incident' it tells a retry to re-run only the
   * leaving step; without it a retry re-executes the element.
   */
  resumeAt?: 'leave';
  /** operator retries of this token at its current element */
  retries?: number;
  /**
   * While the token is on an element with input/output parameters: the
   * ScopeInstance (`activityLocal`) holding its input parameters, the
   * element's local variables. Removed when the token leaves the element or
   * is cancelled (absent in states written before io mappings existed).
   */
  localScopeId?: string;
}

/** A live variable scope: the process instance itself or an embedded subprocess run. */
export interface ScopeInstance {
  id: string;
  /** process id for the root scope, subprocess element id otherwise */
  elementId: string;
  parentScopeId: string | null;
  /** the token in the parent scope that waits for this scope to finish */
  parentTokenId: string | null;
  variables: JsonObject;
  /** one instance of a loop activity (its locals: the input element, loopCounter) */
  loopInstance?: true;
  /** completed compensable activities of this scope, in completion order */
  compensation?: CompensationRecord[];
  /** a compensation handler's run: the variables it started with (what it changes is written back) */
  compensationSnapshot?: JsonObject;
  /**
   * The local variables of one element's run (its input parameters), for the
   * token `parentTokenId`, which stays in `parentScopeId`. No token lives in
   * it, and it never receives a new variable: a name it does not have is
   * written to the scopes around it (Camunda 7: only input parameters are
   * local to an activity).
   */
  activityLocal?: true;
}

export interface Incident {
  id: string;
  /**
   * stable: condition_error, script_error, script_timeout, script_memory, script_crash, no_matching_flow, step_limit,
   * input_error, output_error, service_failed, unhandled_bpmn_error, timer_error, correlation_key_error,
   * loop_error, child_incident, child_terminated, …
   */
  code: string;
  message: string;
  elementId: string;
  /** null for an incident without a token (the timer of an event subprocess start, which hangs on a scope) */
  tokenId: string | null;
  /** script line and column, when the failure came from user code */
  line?: number;
  column?: number;
  /** tries of the failing work when the incident opened: service job tries, else 1 + operator retries of the token */
  attempts?: number;
  /** what an operator needs to act on it (e.g. the inbox event a step could not apply) */
  details?: JsonObject;
  createdAt: string;
}

export interface InstanceState {
  /** version of this JSON shape */
  v: 1;
  status: InstanceStatus;
  /** the root scope's id; its ScopeInstance holds the process variables */
  rootScopeId: string;
  tokens: Record<string, Token>;
  scopes: Record<string, ScopeInstance>;
  /** open incidents */
  incidents: Incident[];
  /** live timers, subscriptions and watched conditions, by id (absent in states written before they existed) */
  triggers?: Record<string, Trigger>;
  /** set for an instance started by a call activity */
  parent?: ParentLink;
}

/**
 * The calling side of a child instance. `childId` is the id the parent gave the
 * child in `childInstanceStarted` (the runtime should pass it); when absent the
 * child reports itself by the parent's `tokenId`, which the parent accepts too.
 */
export interface ParentLink {
  instanceId: string;
  tokenId: string;
  childId?: string;
  /**
   * The called instance's call depth: its caller's depth + 1 (a root instance,
   * which has no parent link, is depth 0). Absent in states written before
   * depths existed: such a child counts as depth 1.
   */
  depth?: number;
}

/** Inputs the engine reacts to. The runtime reads them from the instance's inbox. */
export type EngineEvent =
  /**
   * startEventId: any start event of the process (none, message, signal, timer, conditional);
   * parent: set when a call activity started this instance
   */
  | { type: 'start'; variables?: JsonObject; startEventId?: string; parent?: ParentLink }
  | { type: 'humanTaskCompleted'; taskId: string; variables?: JsonObject }
  | { type: 'serviceJobCompleted'; jobId: string; variables?: JsonObject }
  /** a service job failed with no retries left; attempts: how often it was tried */
  | { type: 'serviceJobFailed'; jobId: string; message: string; attempts?: number }
  | { type: 'serviceJobBpmnError'; jobId: string; errorCode: string; message?: string }
  | { type: 'cancel'; reason?: string }
  /** a timer of `timerScheduled` is due */
  | { type: 'timerFired'; timerId: string }
  /** a message was correlated to the subscription; its variables are written where the catching element lives */
  | { type: 'messageReceived'; subscriptionId: string; name: string; variables?: JsonObject }
  | { type: 'signalReceived'; subscriptionId: string; name: string; variables?: JsonObject }
  /** the child of a call activity completed; `variables` are its final process variables */
  | { type: 'childCompleted'; childId: string; variables: JsonObject }
  /**
   * error: a BPMN error was not caught in the child (the child has ended);
   * escalation: an escalation was not caught in the child (the child goes on);
   * incident: the child got stuck (reported by the runtime)
   */
  | { type: 'childFailed'; childId: string; errorCode: string; message: string; kind: 'error' | 'escalation' | 'incident' }
  /** the child was cancelled from outside */
  | { type: 'childTerminated'; childId: string }
  // ---- operator controls ----
  /** run the element whose token an incident stopped again (or only its leaving, see Token.resumeAt) */
  | { type: 'retryIncident'; incidentId: string }
  /**
   * set variables while the instance waits: in the root scope (process
   * variables), or in one scope instance (a subprocess's locals) when scopeId
   * is given; null is a value, not a deletion
   */
  | { type: 'setVariables'; variables: JsonObject; scopeId?: string }
  /**
   * rewind to an element: every token is withdrawn (tasks, jobs, timers,
   * subscriptions and called instances cancelled, incidents resolved) and one
   * token starts at `elementId`, inside fresh scope instances of the embedded
   * subprocesses that contain it; variables stay as they are
   */
  | { type: 'reset'; elementId: string };

export interface HumanTaskSpec {
  id: string;
  tokenId: string;
  elementId: string;
  name: string | null;
  kind: 'user' | 'manual';
  lane: string | null;
  candidateGroups: string[];
  candidateUsers: string[];
  assignee: string | null;
  formKey: string | null;
  /** extension data worth showing to a task list (spiffworkflow form schema files, camunda form fields, documentation) */
  properties: JsonObject;
}

export interface ServiceJobSpec {
  id: string;
  tokenId: string;
  elementId: string;
  /** zeebe:taskDefinition type, camunda:topic, spiffworkflow:serviceTaskOperator id, or `implementation` */
  topic: string;
  /** evaluated input parameters */
  input: JsonObject;
  /** tries in all before the failure becomes an incident */
  retries: number;
  /** fixed delay between tries (camunda:failedJobRetryTimeCycle); absent → the worker's exponential backoff */
  retryBackoffMs?: number;
  /** static headers (zeebe:taskHeaders) */
  headers: Record<string, string>;
  /** where the result goes, when the model names a variable */
  resultVariable: string | null;
}

export interface HistoryEntry {
  at: string;
  /**
   * instance_started, instance_completed, instance_terminated, element_started, element_completed,
   * element_cancelled, flow_taken, incident, compensation_started (data: the activities to compensate,
   * in order), compensation_handler_started (data: the activity it compensates)
   */
  event: string;
  elementId: string | null;
  elementType: string | null;
  tokenId: string | null;
  scopeId: string | null;
  data?: Json;
}

export type Effect =
  | { type: 'humanTaskOpened'; task: HumanTaskSpec }
  | { type: 'humanTaskClosed'; taskId: string; state: 'completed' | 'cancelled' }
  | { type: 'serviceJobCreated'; job: ServiceJobSpec }
  | { type: 'serviceJobCancelled'; jobId: string }
  | { type: 'incidentOpened'; incident: Incident }
  /** an open incident went away because its token was cancelled (terminate end event, cancel) */
  | { type: 'incidentResolved'; incidentId: string; reason: 'cancelled' | 'retried' | 'reset' }
  | { type: 'history'; entry: HistoryEntry }
  /** a timer to fire at `dueAt`; answer with `timerFired { timerId }` */
  | { type: 'timerScheduled'; timer: TimerSpec }
  | { type: 'timerCancelled'; timerId: string }
  /** wait for a message/signal (or, kind conditional, a condition the engine watches itself; no answer expected) */
  | { type: 'subscriptionOpened'; subscription: SubscriptionSpec }
  | { type: 'subscriptionClosed'; subscriptionId: string }
  /** deliver a message to whichever instance subscribed to name + correlationKey (or a message start event) */
  | { type: 'messageThrown'; message: { name: string; correlationKey: string | null; variables: JsonObject } }
  /** broadcast a signal to every signal subscription and signal start event of that name */
  | { type: 'signalThrown'; signal: { name: string; variables: JsonObject } }
  /** create and start the child instance of a call activity (its start event gets `parent`) */
  | { type: 'childInstanceStarted'; child: ChildInstanceSpec }
  /** send `cancel` to the child instance */
  | { type: 'childInstanceCancelled'; childId: string }
  /** put `event` (childCompleted / childFailed / childTerminated) into the parent instance's inbox */
  | { type: 'parentNotified'; parentInstanceId: string; event: ChildEvent };

export type ChildEvent = Extract<EngineEvent, { type: 'childCompleted' | 'childFailed' | 'childTerminated' }>;

export interface TimerSpec {
  id: string;
  /** the owning token; null for an event subprocess's timer start (it hangs on a scope) */
  tokenId: string | null;
  /** the timer event (boundary, catch, or event subprocess start event) */
  elementId: string;
  /** ISO 8601 date-time */
  dueAt: string;
  /** cycles: the (evaluated) expression and the repetitions left after this one (null = unbounded) */
  cycle: { expression: string; remaining: number | null } | null;
  /** the timer definition with its expression already evaluated (`=wait` → `PT2H`), quotes removed */
  definition: { kind: 'date' | 'duration' | 'cycle'; expression: string };
}

export interface SubscriptionSpec {
  id: string;
  kind: 'message' | 'signal' | 'conditional';
  /** message or signal name; for conditional the condition expression */
  name: string;
  /** messages: the evaluated zeebe:subscription correlationKey, as a string; else null */
  correlationKey: string | null;
  /** null for an event subprocess's start (it hangs on a scope) */
  tokenId: string | null;
  elementId: string;
}

export interface ChildInstanceSpec {
  /** the id the child instance must get; it comes back as `childId` in child events */
  id: string;
  processKey: string;
  versionBinding: { kind: 'latest' } | { kind: 'version'; version: number } | { kind: 'deployment' };
  variables: JsonObject;
  /** the call activity's token and element in the parent */
  tokenId: string;
  elementId: string;
  businessKey: string | null;
}

export interface StepResult {
  state: InstanceState;
  effects: Effect[];
  /** true when the event did not apply (unknown/stale task or job, instance already ended) */
  ignored: boolean;
}
