/**
 * Kysely's view of the tables created by migrations/. Kept by hand, in step
 * with the migrations (test/store/schema.test.ts compares the columns with the
 * live catalog).
 */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { Json, JsonObject } from '../errors.js';
import type { InstanceState } from '../engine/types.js';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** jsonb: we always send JSON text (pg and PGlite both accept it) and read parsed values */
type JsonColumn<T> = ColumnType<T, string, string>;

export interface DeploymentTable {
  id: string;
  name: string | null;
  created_at: Timestamp;
}

export interface DeploymentResourceTable {
  deployment_id: string;
  name: string;
  content: string;
  checksum: string;
}

export interface ProcessDefinitionTable {
  id: string;
  key: string;
  version: number;
  name: string | null;
  deployment_id: string;
  resource_name: string;
  checksum: string;
  /** the language the process's expressions resolved to at deploy (migration 0009; null: never, set for old rows) */
  language: string | null;
  created_at: Timestamp;
}

export interface ProcessInstanceTable {
  id: string;
  definition_id: string;
  process_key: string;
  version: number;
  business_key: string | null;
  status: string;
  suspended: Generated<boolean>;
  state: JsonColumn<InstanceState>;
  rev: Generated<number>;
  parent_instance_id: string | null;
  /** the start request's idempotency key, when it had one */
  request_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** SHA-256 of the start request's body, beside its idempotency key */
  request_fingerprint: ColumnType<string | null, string | null | undefined, string | null>;
  started_at: Timestamp;
  ended_at: NullableTimestamp;
  updated_at: Timestamp;
}

export interface InboxTable {
  id: Generated<number>;
  instance_id: string;
  kind: string;
  payload: JsonColumn<JsonObject>;
  created_at: Timestamp;
  processed_at: NullableTimestamp;
  /** steps that started applying the event after a possible crash and did not finish (migration 0010) */
  attempts: Generated<number>;
}

export interface HumanTaskTable {
  id: string;
  instance_id: string;
  process_key: string;
  element_id: string;
  token_id: string;
  name: string | null;
  kind: string;
  lane: string | null;
  candidate_groups: ColumnType<string[], string[] | undefined, string[]>;
  candidate_users: ColumnType<string[], string[] | undefined, string[]>;
  assignee: string | null;
  form_key: string | null;
  properties: JsonColumn<JsonObject>;
  state: string;
  variables: ColumnType<JsonObject | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  ended_at: NullableTimestamp;
}

export interface ServiceJobTable {
  id: string;
  instance_id: string;
  process_key: string;
  element_id: string;
  token_id: string;
  topic: string;
  input: JsonColumn<JsonObject>;
  headers: JsonColumn<Record<string, string>>;
  result_variable: string | null;
  state: string;
  retries: number;
  /** tries so far: +1 per claim */
  attempts: Generated<number>;
  /** fixed delay between tries from the model; null → exponential from the worker's base */
  retry_backoff_ms: number | null;
  worker_id: string | null;
  lock_expires_at: NullableTimestamp;
  available_at: Timestamp;
  error_message: string | null;
  created_at: Timestamp;
  ended_at: NullableTimestamp;
}

/** A view over history_batch (migration 0005): read-only. */
export interface HistoryTable {
  id: Generated<number>;
  instance_id: string;
  at: Timestamp;
  event: string;
  element_id: string | null;
  element_type: string | null;
  token_id: string | null;
  scope_id: string | null;
  data: ColumnType<Json | null, string | null | undefined, string | null>;
}

/** One step's history entries (see migration 0005); read them through the `history` view. */
export interface HistoryBatchTable {
  id: Generated<number>;
  instance_id: string;
  entries: JsonColumn<Json[]>;
}

export interface IncidentTable {
  id: string;
  instance_id: string;
  process_key: string;
  element_id: string;
  token_id: string | null;
  code: string;
  message: string;
  line: number | null;
  column: number | null;
  attempts: Generated<number>;
  resolution: string | null;
  details: ColumnType<JsonObject | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  resolved_at: NullableTimestamp;
}

export interface TimerTable {
  id: string;
  instance_id: string;
  element_id: string;
  token_id: string | null;
  due_at: Timestamp;
  spec: JsonColumn<JsonObject>;
  created_at: Timestamp;
}

export interface SubscriptionTable {
  id: string;
  instance_id: string;
  kind: string;
  name: string;
  correlation_key: string | null;
  element_id: string;
  token_id: string | null;
  created_at: Timestamp;
}

export interface MessageTable {
  id: string;
  message_id: string | null;
  name: string;
  correlation_key: string | null;
  variables: JsonColumn<JsonObject>;
  outcome: ColumnType<JsonObject | null, string | null | undefined, string | null>;
  expires_at: NullableTimestamp;
  created_at: Timestamp;
}

export interface StartEventTable {
  definition_id: string;
  process_key: string;
  element_id: string;
  kind: string;
  name: string | null;
  spec: ColumnType<JsonObject | null, string | null | undefined, string | null>;
}

export interface TimerScheduleTable {
  id: string;
  definition_id: string;
  process_key: string;
  element_id: string;
  next_due_at: NullableTimestamp;
  remaining: number | null;
  spec: JsonColumn<JsonObject>;
  active: Generated<boolean>;
}

/** message name → correlation retrieval paths of the latest version of a process key */
export interface MessageCorrelationTable {
  process_key: string;
  message_name: string;
  paths: JsonColumn<string[]>;
}

export interface Database {
  deployment: DeploymentTable;
  deployment_resource: DeploymentResourceTable;
  process_definition: ProcessDefinitionTable;
  process_instance: ProcessInstanceTable;
  inbox: InboxTable;
  human_task: HumanTaskTable;
  service_job: ServiceJobTable;
  history: HistoryTable;
  history_batch: HistoryBatchTable;
  incident: IncidentTable;
  timer: TimerTable;
  subscription: SubscriptionTable;
  message: MessageTable;
  start_event: StartEventTable;
  timer_schedule: TimerScheduleTable;
  message_correlation: MessageCorrelationTable;
}

export type ProcessDefinitionRow = Selectable<ProcessDefinitionTable>;
export type ProcessInstanceRow = Selectable<ProcessInstanceTable>;
export type InboxRow = Selectable<InboxTable>;
export type HumanTaskRow = Selectable<HumanTaskTable>;
export type ServiceJobRow = Selectable<ServiceJobTable>;
export type HistoryRow = Selectable<HistoryTable>;
export type IncidentRow = Selectable<IncidentTable>;
export type TimerRow = Selectable<TimerTable>;
export type SubscriptionRow = Selectable<SubscriptionTable>;
export type MessageRow = Selectable<MessageTable>;
export type StartEventRow = Selectable<StartEventTable>;
export type TimerScheduleRow = Selectable<TimerScheduleTable>;
export type MessageCorrelationRow = Selectable<MessageCorrelationTable>;
export type NewHumanTask = Insertable<HumanTaskTable>;
