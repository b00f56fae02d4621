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
import type { Evaluator } from '../expressions/types.js';

export type InstanceStatus = 'running' | 'waiting' | 'completed' | 'terminated' | 'error';

export interface EngineContext {
  now(): Date;
  newId(): string;
  evaluator: Evaluator;
  /**
   * Upper bound on element executions within one startInstance/applyEvent call
   * (default 10,000). A model that loops without a wait state hits it and gets a
   * `step_limit` incident instead of spinning the worker forever.
   */
  maxElementExecutions?: number;
}

/** What a token is doing while it waits. */
export type Wait =
  | { kind: 'humanTask'; taskId: string }
  | { kind: 'serviceJob'; jobId: string }
  /** the token sits on a subprocess element while its child scope runs */
  | { kind: 'subprocess'; scopeId: string };

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
  /**
   * Set when the element's own work is done and only its leaving remains
   * (spiffworkflow postScript, outgoing-flow selection): a ready token with
   * `resumeAt: 'leave'` continues with leaving instead of executing its element
   * again. On a token in state 'incident' it tells a retry to re-run only the
   * leaving step; without it a retry re-executes the element.
   */
  resumeAt?: 'leave';
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
}

export interface Incident {
  id: string;
  /** stable: condition_error, script_error, script_timeout, script_memory, no_outgoing_flow, service_failed, unhandled_bpmn_error, … */
  code: string;
  message: string;
  elementId: string;
  tokenId: string | null;
  /** script line, when the failure came from user code */
  line?: number;
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
}

/** Inputs the engine reacts to. The runtime reads them from the instance's inbox. */
export type EngineEvent =
  | { type: 'start'; variables?: JsonObject; startEventId?: string }
  | { type: 'humanTaskCompleted'; taskId: string; variables?: JsonObject }
  | { type: 'serviceJobCompleted'; jobId: string; variables?: JsonObject }
  /** a service job failed with no retries left */
  | { type: 'serviceJobFailed'; jobId: string; message: string }
  | { type: 'serviceJobBpmnError'; jobId: string; errorCode: string; message?: string }
  | { type: 'cancel'; reason?: string };

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
  retries: number;
  /** static headers (zeebe:taskHeaders) */
  headers: Record<string, string>;
  /** where the result goes, when the model names a variable */
  resultVariable: string | null;
}

export interface HistoryEntry {
  at: string;
  /** instance_started, instance_completed, instance_terminated, element_started, element_completed, element_cancelled, flow_taken, incident */
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
  | { type: 'incidentResolved'; incidentId: string; reason: 'cancelled' }
  | { type: 'history'; entry: HistoryEntry };

export interface StepResult {
  state: InstanceState;
  effects: Effect[];
  /** true when the event did not apply (unknown/stale task or job, instance already ended) */
  ignored: boolean;
}
