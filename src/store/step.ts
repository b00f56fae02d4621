/**
 * The step's two statements: one read (lock the instance row, take its pending
 * inbox rows) and one write (new state, consumed inbox rows, the history batch). A step
 * used to spend seven round trips on these; on this kind of machine a round
 * trip costs more than the engine's whole work for a simple instance.
 */
import { sql, type RawBuilder } from 'kysely';
import type { HistoryEntry, HumanTaskSpec, InstanceState, ServiceJobSpec, TimerSpec } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
import type { Executor } from './db.js';
import { BATCH_SPAN, historyEntriesJson, historyEntryRows } from './history.js';
import { humanTaskColumns } from './tasks.js';
import type { InboxRow, ProcessInstanceRow } from './schema.js';

type StepInput = { row: ProcessInstanceRow; events: InboxRow[] } | 'too_big' | undefined;

/**
 * Locks the instance row (SKIP LOCKED: a row another step holds is not waited
 * for) and reads up to `limit` pending inbox rows, oldest first, in one
 * statement. The inbox rows are read from the statement's snapshot, which may
 * be older than the row version the lock returns (a step that committed in
 * between): they may then include rows that step consumed. `commitStep`
 * detects that (it marks only rows still pending and counts them) and the
 * step is rolled back and run again; nothing is applied twice.
 * When the stored state is larger than `maxStateBytes` (> 0) the answer is
 * 'too_big' and the state is not even sent (the caller's transaction ends at once).
 */
export function lockForStep(db: Executor, id: string, limit: number, maxStateBytes = 0): Promise<StepInput> {
  return readStepInput(db, id, limit, maxStateBytes, true);
}

/**
 * The same read without a lock: the optimistic step's snapshot, whose one
 * commit statement is guarded instead (see commitStep's `guard`).
 */
export function readForStep(db: Executor, id: string, limit: number, maxStateBytes = 0): Promise<StepInput> {
  return readStepInput(db, id, limit, maxStateBytes, false);
}

async function readStepInput(db: Executor, id: string, limit: number, maxStateBytes: number, lock: boolean): Promise<StepInput> {
  const r = await sql<
    Omit<ProcessInstanceRow, 'state'> & { state: ProcessInstanceRow['state'] | null; pending: Array<Omit<InboxRow, 'created_at' | 'processed_at'> & { created_at: string }> }
  >`
    select p.id, p.definition_id, p.process_key, p.version, p.business_key, p.status, p.suspended, p.rev,
           p.parent_instance_id, p.started_at, p.ended_at, p.updated_at,
           case when ${maxStateBytes}::int > 0 and pg_column_size(p.state) > ${maxStateBytes}::int then null else p.state end as state,
           coalesce((
      select json_agg(x order by x.id) from (
        select i.id, i.instance_id, i.kind, i.payload, i.created_at, i.attempts
        from inbox i where i.instance_id = p.id and i.processed_at is null
        order by i.id limit ${limit}
      ) x), '[]'::json) as pending
    from process_instance p
    where p.id = ${id}
    ${lock ? sql`for update of p skip locked` : sql``}`.execute(db);
  const found = r.rows[0];
  if (!found) return undefined;
  const { pending, state, ...rest } = found;
  if (state === null) return 'too_big';
  const events: InboxRow[] = pending.map((e) => ({ ...e, created_at: new Date(e.created_at), processed_at: null }));
  return { row: { ...rest, state }, events };
}

/**
 * A step whose instance state would be over a limit: larger than
 * BATON_MAX_STATE_BYTES, or with more tokens than BATON_MAX_TOKENS. A
 * RangeError, so the step runner treats it as poison: the event that made
 * the state grow is set aside as an `event_rejected` incident with this
 * message, and the stored state stays as it was.
 */
export class StateTooLarge extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'StateTooLarge';
  }
}

/** Throws StateTooLarge when `json` is longer than `max` bytes (max > 0). */
export function checkStateSize(json: string, max: number): void {
  // a UTF-8 byte is at most 3 per UTF-16 unit: short texts need no count
  if (max <= 0 || json.length * 3 <= max) return;
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > max) throw new StateTooLarge(`the instance state would be ${bytes} bytes, more than the limit of ${max} (BATON_MAX_STATE_BYTES)`);
}

/** Throws StateTooLarge when the state has more than `max` live tokens (max > 0). */
export function checkTokenCount(state: InstanceState, max: number): void {
  if (max <= 0) return;
  let n = 0;
  for (const _ in state.tokens) if (++n > max) throw new StateTooLarge(`the instance would have more than ${max} live tokens (BATON_MAX_TOKENS)`);
}

export class StepRaced extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepRaced';
  }
}

/** Rows a step opens or closes that its commit statement can write itself (see `openingCtes`). */
export interface StepOpenings {
  processKey: string;
  tasks: HumanTaskSpec[];
  jobs: ServiceJobSpec[];
  timers: TimerSpec[];
  /** timers the step cancelled */
  timersCancelled: string[];
  /** human tasks the step closed as completed (their completion was the accepted input) */
  tasksCompleted: string[];
}

/**
 * Writes what a step produced, in one statement: the new state (only over the
 * revision that was read), the consumed inbox rows (only those still pending),
 * and the history entries. Throws StepRaced when the revision moved or an
 * inbox row was already consumed (see lockForStep).
 *
 * Inside the step's transaction (the row locked by lockForStep) the caller
 * rolls back on StepRaced. With `guard` the statement stands alone, without a
 * lock or a transaction: it then also writes the step's openings and, for an
 * ended instance, drops its waits, and it checks itself — a failed check
 * raises inside the statement (baton_step_guard), so nothing of it is kept.
 */
export async function commitStep(
  db: Executor,
  s: {
    id: string;
    rev: number;
    state: InstanceState;
    status: string;
    ended: boolean;
    suspended: boolean;
    consumed: number[];
    history: HistoryEntry[];
    guard?: StepOpenings;
  },
  /** BATON_MAX_STATE_BYTES: a larger serialized state throws StateTooLarge (0: no limit) */
  maxStateBytes = 0,
  /** BATON_MAX_TOKENS: more live tokens throw StateTooLarge (0: no limit) */
  maxTokens = 0,
): Promise<void> {
  if (s.history.length > BATCH_SPAN) throw new RangeError(`a step wrote ${s.history.length} history entries; at most ${BATCH_SPAN} fit in one batch`);
  checkTokenCount(s.state, maxTokens);
  const stateJson = JSON.stringify(s.state);
  checkStateSize(stateJson, maxStateBytes);
  const g = s.guard;
  const checked = sql`(select count(*) from s) = 1 and (select count(*) from m) = ${s.consumed.length}::int`;
  let r;
  try {
    r = await sql<{ saved: number; marked: number }>`
    with s as (
      update process_instance set
        state = ${stateJson}::jsonb,
        status = ${s.status},
        rev = rev + 1,
        updated_at = now(),
        ended_at = case when ${s.ended}::boolean then coalesce(ended_at, now()) else ended_at end,
        suspended = ${s.suspended}::boolean
      where id = ${s.id} and rev = ${s.rev}
      returning id
    ),
    m as (
      -- by instance and id: exactly the pending index, whatever the plan
      update inbox set processed_at = now()
      where instance_id = ${s.id}::uuid and id = any(${s.consumed}::bigint[]) and processed_at is null
      returning 1
    ),
    h as (
      insert into history_batch (instance_id, entries)
      select ${s.id}::uuid, ${historyEntriesJson(s.history)}::jsonb where ${s.history.length > 0}::boolean
      returning 1
    )${g ? openingCtes(openingRows([{ id: s.id, ...g }]), sql`(select id from s)`) : sql``}${
      g && g.timersCancelled.length > 0
        ? sql`,
    tc as (delete from timer where id = any(${g.timersCancelled}::uuid[]) returning 1)`
        : sql``
    }${
      g && g.tasksCompleted.length > 0
        ? sql`,
    hc as (update human_task set state = 'completed', ended_at = now() where id = any(${g.tasksCompleted}::uuid[]) and state = 'open' returning 1)`
        : sql``
    }${
      g && s.ended
        ? sql`,
    wt as (delete from timer where instance_id = ${s.id}),
    ws as (delete from subscription where instance_id = ${s.id})`
        : sql``
    }
    select (select count(*) from s)::int as saved, (select count(*) from m)::int as marked${
      g ? sql`, baton_step_guard(${checked}, ${`instance ${s.id}: another step committed first`}) as guarded` : sql``
    }`.execute(db);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'BT001') throw new StepRaced(String((err as Error).message));
    throw err;
  }
  const out = r.rows[0];
  if (!out || out.saved !== 1) throw new StepRaced(`instance ${s.id}: its revision moved from ${s.rev} under the step`);
  if (out.marked !== s.consumed.length) {
    throw new StepRaced(`instance ${s.id}: ${s.consumed.length - out.marked} of the step's inbox rows were consumed by another step`);
  }
}

/** What a step opens, as the JSON rows `openingCtes` inserts (each row carries its instance). */
interface OpeningRows {
  tasks: object[];
  jobs: object[];
  timers: object[];
}

function openingRows(batch: Array<{ id: string; processKey: string; tasks?: HumanTaskSpec[]; jobs?: ServiceJobSpec[]; timers?: TimerSpec[] }>): OpeningRows {
  return {
    tasks: batch.flatMap((s) => (s.tasks ?? []).map((t) => ({ ...humanTaskColumns(t), instance_id: s.id, process_key: s.processKey }))),
    jobs: batch.flatMap((s) =>
      (s.jobs ?? []).map((j) => ({
        instance_id: s.id,
        process_key: s.processKey,
        id: j.id,
        element_id: j.elementId,
        token_id: j.tokenId,
        topic: j.topic,
        input: j.input,
        headers: j.headers,
        result_variable: j.resultVariable,
        retries: j.retries,
        retry_backoff_ms: j.retryBackoffMs ?? null,
      })),
    ),
    timers: batch.flatMap((s) =>
      (s.timers ?? []).map((t) => ({ instance_id: s.id, id: t.id, element_id: t.elementId, token_id: t.tokenId, due_at: t.dueAt, spec: t })),
    ),
  };
}

/**
 * CTEs (each led by a comma) inserting the tasks, jobs and timers of
 * `openingRows`, only for instances in `written` (a subquery of ids: rows of
 * instances the statement did not write are dropped). A CTE is left out when
 * it has no rows, so the common statements stay short; each variant is its
 * own prepared statement.
 */
function openingCtes(rows: OpeningRows, written: RawBuilder<unknown>): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [];
  if (rows.tasks.length > 0) {
    parts.push(sql`,
    ot as (
      insert into human_task (id, instance_id, process_key, element_id, token_id, name, kind, lane, candidate_groups, candidate_users,
                              assignee, form_key, properties, state)
      select y.id, y.instance_id, y.process_key, y.element_id, y.token_id, y.name, y.kind, y.lane, coalesce(y.candidate_groups, '{}'),
             coalesce(y.candidate_users, '{}'), y.assignee, y.form_key, coalesce(y.properties, '{}'), 'open'
      from jsonb_to_recordset(${JSON.stringify(rows.tasks)}::jsonb)
        as y(instance_id uuid, process_key text, id uuid, element_id text, token_id text, name text, kind text, lane text,
             candidate_groups text[], candidate_users text[], assignee text, form_key text, properties jsonb)
      where y.instance_id in ${written}
      returning 1
    )`);
  }
  if (rows.jobs.length > 0) {
    parts.push(sql`,
    oj as (
      insert into service_job (id, instance_id, process_key, element_id, token_id, topic, input, headers, result_variable, state,
                               retries, retry_backoff_ms)
      select y.id, y.instance_id, y.process_key, y.element_id, y.token_id, y.topic, y.input, y.headers, y.result_variable, 'available',
             y.retries, y.retry_backoff_ms
      from jsonb_to_recordset(${JSON.stringify(rows.jobs)}::jsonb)
        as y(instance_id uuid, process_key text, id uuid, element_id text, token_id text, topic text, input jsonb, headers jsonb,
             result_variable text, retries int, retry_backoff_ms int)
      where y.instance_id in ${written}
      returning 1
    )`);
  }
  if (rows.timers.length > 0) {
    parts.push(sql`,
    ow as (
      insert into timer (id, instance_id, element_id, token_id, due_at, spec)
      select y.id, y.instance_id, y.element_id, y.token_id, y.due_at, y.spec
      from jsonb_to_recordset(${JSON.stringify(rows.timers)}::jsonb)
        as y(instance_id uuid, id uuid, element_id text, token_id text, due_at timestamptz, spec jsonb)
      where y.instance_id in ${written}
      on conflict (id) do nothing
      returning 1
    )`);
  }
  return sql.join(parts, sql``);
}

/** A new instance that the API started and stepped at once (see StepRunner.startNew). */
export interface SteppedInstance {
  id: string;
  definitionId: string;
  processKey: string;
  version: number;
  businessKey: string | null;
  state: InstanceState;
  status: string;
  ended: boolean;
  startPayload: JsonObject;
  history: HistoryEntry[];
  /** what the first step opened, inserted by the same statement */
  tasks?: HumanTaskSpec[];
  jobs?: ServiceJobSpec[];
  timers?: TimerSpec[];
  /** insert only while this definition is still the latest version of its key (the caller's cache may be stale) */
  onlyIfLatest?: boolean;
  /** the start request's idempotency key: nothing is written when an instance has it already */
  requestId?: string | null;
  /** the fingerprint of the request that carried it */
  requestFingerprint?: string | null;
}

/**
 * New instances, each with the state after its first step, its `start` inbox
 * row already processed, the step's history and what the step opened (tasks,
 * jobs, timers), all in one statement: one round trip and one commit for a
 * whole batch of starts (see start-batcher.ts). Answers per instance, in the
 * order given: its row, or undefined when it was not written (its definition
 * is no longer the latest, or its request id was used already).
 */
export async function insertSteppedInstances(
  db: Executor,
  batch: SteppedInstance[],
): Promise<Array<{ row: ProcessInstanceRow; inboxId: number } | undefined>> {
  const instances = batch.map((s) => {
    if (s.history.length > BATCH_SPAN) throw new RangeError(`a step wrote ${s.history.length} history entries; at most ${BATCH_SPAN} fit in one batch`);
    return {
      id: s.id,
      definition_id: s.definitionId,
      process_key: s.processKey,
      version: s.version,
      business_key: s.businessKey,
      status: s.status,
      state: s.state,
      ended: s.ended,
      request_id: s.requestId ?? null,
      request_fingerprint: s.requestFingerprint ?? null,
      only_if_latest: s.onlyIfLatest ?? false,
      start_payload: s.startPayload,
      history: s.history.length > 0 ? historyEntryRows(s.history) : null,
    };
  });
  const opened = openingRows(batch);
  const r = await sql<Omit<ProcessInstanceRow, 'state'> & { inbox_id: number }>`
    with x as (
      select * from jsonb_to_recordset(${JSON.stringify(instances)}::jsonb)
        as x(id uuid, definition_id uuid, process_key text, version int, business_key text, status text, state jsonb, ended boolean,
             request_id text, request_fingerprint text, only_if_latest boolean, start_payload jsonb, history jsonb)
    ),
    i as (
      insert into process_instance (id, definition_id, process_key, version, business_key, status, state, rev, ended_at, request_id, request_fingerprint)
      select x.id, x.definition_id, x.process_key, x.version, x.business_key, x.status, x.state, 1, case when x.ended then now() end, x.request_id, x.request_fingerprint
      from x
      where not x.only_if_latest
         or x.definition_id = (select d.id from process_definition d where d.key = x.process_key order by d.version desc limit 1)
      on conflict (request_id) where request_id is not null do nothing
      -- not the state: the caller has it, and sending it back costs Postgres a
      -- jsonb-to-text and the API a JSON.parse of the whole instance
      returning id, definition_id, process_key, version, business_key, status, suspended, rev, parent_instance_id, request_id, request_fingerprint,
                started_at, ended_at, updated_at
    ),
    e as (
      insert into inbox (instance_id, kind, payload, processed_at)
      select i.id, 'start', x.start_payload, now() from i join x on x.id = i.id
      returning id, instance_id
    ),
    h as (
      insert into history_batch (instance_id, entries)
      select i.id, x.history from i join x on x.id = i.id where x.history is not null
      returning 1
    )${openingCtes(opened, sql`(select id from i)`)}
    select i.*, e.id as inbox_id from i join e on e.instance_id = i.id`.execute(db);
  const byId = new Map(r.rows.map((found) => [found.id, found]));
  return batch.map((s) => {
    const found = byId.get(s.id);
    if (!found) return undefined;
    const { inbox_id, ...row } = found;
    return { row: { ...row, state: s.state }, inboxId: Number(inbox_id) };
  });
}
