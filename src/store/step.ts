/**
 * The step's two statements: one read (lock the instance row, take its pending
 * inbox rows) and one write (new state, consumed inbox rows, the history batch). A step
 * used to spend seven round trips on these; on this kind of machine a round
 * trip costs more than the engine's whole work for a simple instance.
 */
import { sql } from 'kysely';
import type { HistoryEntry, HumanTaskSpec, InstanceState, ServiceJobSpec, TimerSpec } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
import type { Executor } from './db.js';
import { BATCH_SPAN, historyEntriesJson } from './history.js';
import { humanTaskColumns } from './tasks.js';
import type { InboxRow, ProcessInstanceRow } from './schema.js';

/**
 * Locks the instance row (SKIP LOCKED: a row another step holds is not waited
 * for) and reads up to `limit` pending inbox rows, oldest first, in one
 * statement. The inbox rows are read from the statement's snapshot, which may
 * be older than the row version the lock returns (a step that committed in
 * between): they may then include rows that step consumed. `commitStep`
 * detects that (it marks only rows still pending and counts them) and the
 * step is rolled back and run again; nothing is applied twice.
 */
export async function lockForStep(
  db: Executor,
  id: string,
  limit: number,
  /** when the stored state is larger than this, lock nothing and answer 'too_big' (the state is not even sent) */
  maxStateBytes = 0,
): Promise<{ row: ProcessInstanceRow; events: InboxRow[] } | 'too_big' | undefined> {
  // (the row is locked either way; a 'too_big' caller's transaction ends at once)
  const r = await sql<
    Omit<ProcessInstanceRow, 'state'> & { state: ProcessInstanceRow['state'] | null; pending: Array<Omit<InboxRow, 'created_at' | 'processed_at'> & { created_at: string }> }
  >`
    select p.id, p.definition_id, p.process_key, p.version, p.business_key, p.status, p.suspended, p.rev,
           p.parent_instance_id, p.started_at, p.ended_at, p.updated_at,
           case when ${maxStateBytes}::int > 0 and pg_column_size(p.state) > ${maxStateBytes}::int then null else p.state end as state,
           coalesce((
      select json_agg(x order by x.id) from (
        select i.id, i.instance_id, i.kind, i.payload, i.created_at
        from inbox i where i.instance_id = p.id and i.processed_at is null
        order by i.id limit ${limit}
      ) x), '[]'::json) as pending
    from process_instance p
    where p.id = ${id}
    for update of p skip locked`.execute(db);
  const found = r.rows[0];
  if (!found) return undefined;
  const { pending, state, ...rest } = found;
  if (state === null) return 'too_big';
  const events: InboxRow[] = pending.map((e) => ({ ...e, created_at: new Date(e.created_at), processed_at: null }));
  return { row: { ...rest, state }, events };
}

export class StepRaced extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepRaced';
  }
}

/**
 * Writes what a step produced, in one statement: the new state (only over the
 * revision that was read), the consumed inbox rows (only those still pending),
 * and the history entries. Throws StepRaced when the revision moved or an
 * inbox row was already consumed (see lockForStep): the caller's transaction
 * must then be rolled back.
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
  },
): Promise<void> {
  if (s.history.length > BATCH_SPAN) throw new RangeError(`a step wrote ${s.history.length} history entries; at most ${BATCH_SPAN} fit in one batch`);
  const r = await sql<{ saved: number; marked: number }>`
    with s as (
      update process_instance set
        state = ${JSON.stringify(s.state)}::jsonb,
        status = ${s.status},
        rev = rev + 1,
        updated_at = now(),
        ended_at = case when ${s.ended}::boolean then coalesce(ended_at, now()) else ended_at end,
        suspended = ${s.suspended}::boolean
      where id = ${s.id} and rev = ${s.rev}
      returning 1
    ),
    m as (
      update inbox set processed_at = now()
      where id = any(${s.consumed}::bigint[]) and processed_at is null
      returning 1
    ),
    h as (
      insert into history_batch (instance_id, entries)
      select ${s.id}::uuid, ${historyEntriesJson(s.history)}::jsonb where ${s.history.length > 0}::boolean
      returning 1
    )
    select (select count(*) from s)::int as saved, (select count(*) from m)::int as marked`.execute(db);
  const out = r.rows[0];
  if (!out || out.saved !== 1) throw new StepRaced(`instance ${s.id}: its revision moved from ${s.rev} under the step`);
  if (out.marked !== s.consumed.length) {
    throw new StepRaced(`instance ${s.id}: ${s.consumed.length - out.marked} of the step's inbox rows were consumed by another step`);
  }
}

/**
 * A new instance that the API started and stepped at once (see StepRunner.startNew):
 * the row with the state after its first step, its `start` inbox row already
 * processed, and the step's history, in one statement.
 */
export async function insertSteppedInstance(
  db: Executor,
  s: {
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
  },
): Promise<{ row: ProcessInstanceRow; inboxId: number } | undefined> {
  const tasks = (s.tasks ?? []).map(humanTaskColumns);
  const jobs = (s.jobs ?? []).map((j) => ({
    id: j.id,
    element_id: j.elementId,
    token_id: j.tokenId,
    topic: j.topic,
    input: j.input,
    headers: j.headers,
    result_variable: j.resultVariable,
    retries: j.retries,
    retry_backoff_ms: j.retryBackoffMs ?? null,
  }));
  const timers = (s.timers ?? []).map((t) => ({ id: t.id, element_id: t.elementId, token_id: t.tokenId, due_at: t.dueAt, spec: t }));
  if (s.history.length > BATCH_SPAN) throw new RangeError(`a step wrote ${s.history.length} history entries; at most ${BATCH_SPAN} fit in one batch`);
  const r = await sql<Omit<ProcessInstanceRow, 'state'> & { inbox_id: number }>`
    with i as (
      insert into process_instance (id, definition_id, process_key, version, business_key, status, state, rev, ended_at, request_id)
      select ${s.id}::uuid, ${s.definitionId}::uuid, ${s.processKey}::text, ${s.version}::int, ${s.businessKey}::text, ${s.status}::text,
             ${JSON.stringify(s.state)}::jsonb, 1, case when ${s.ended}::boolean then now() end, ${s.requestId ?? null}::text
      where not ${s.onlyIfLatest ?? false}::boolean
         or ${s.definitionId}::uuid = (select d.id from process_definition d where d.key = ${s.processKey}::text order by d.version desc limit 1)
      on conflict (request_id) where request_id is not null do nothing
      -- not the state: the caller has it, and sending it back costs Postgres a
      -- jsonb-to-text and the API a JSON.parse of the whole instance
      returning id, definition_id, process_key, version, business_key, status, suspended, rev, parent_instance_id, request_id,
                started_at, ended_at, updated_at
    ),
    e as (
      insert into inbox (instance_id, kind, payload, processed_at)
      select i.id, 'start', ${JSON.stringify(s.startPayload)}::jsonb, now() from i
      returning id
    ),
    h as (
      insert into history_batch (instance_id, entries)
      select i.id, ${historyEntriesJson(s.history)}::jsonb from i where ${s.history.length > 0}::boolean
      returning 1
    ),
    t as (
      insert into human_task (id, instance_id, process_key, element_id, token_id, name, kind, lane, candidate_groups, candidate_users,
                              assignee, form_key, properties, state)
      select x.id, i.id, i.process_key, x.element_id, x.token_id, x.name, x.kind, x.lane, coalesce(x.candidate_groups, '{}'),
             coalesce(x.candidate_users, '{}'), x.assignee, x.form_key, coalesce(x.properties, '{}'), 'open'
      from i, jsonb_to_recordset(${JSON.stringify(tasks)}::jsonb)
        as x(id uuid, element_id text, token_id text, name text, kind text, lane text, candidate_groups text[], candidate_users text[],
             assignee text, form_key text, properties jsonb)
      returning 1
    ),
    j as (
      insert into service_job (id, instance_id, process_key, element_id, token_id, topic, input, headers, result_variable, state,
                               retries, retry_backoff_ms)
      select x.id, i.id, i.process_key, x.element_id, x.token_id, x.topic, x.input, x.headers, x.result_variable, 'available',
             x.retries, x.retry_backoff_ms
      from i, jsonb_to_recordset(${JSON.stringify(jobs)}::jsonb)
        as x(id uuid, element_id text, token_id text, topic text, input jsonb, headers jsonb, result_variable text, retries int,
             retry_backoff_ms int)
      returning 1
    ),
    w as (
      insert into timer (id, instance_id, element_id, token_id, due_at, spec)
      select x.id, i.id, x.element_id, x.token_id, x.due_at, x.spec
      from i, jsonb_to_recordset(${JSON.stringify(timers)}::jsonb)
        as x(id uuid, element_id text, token_id text, due_at timestamptz, spec jsonb)
      on conflict (id) do nothing
      returning 1
    )
    select i.*, e.id as inbox_id from i, e`.execute(db);
  const found = r.rows[0];
  if (!found) return undefined;
  const { inbox_id, ...row } = found;
  return { row: { ...row, state: s.state }, inboxId: Number(inbox_id) };
}
