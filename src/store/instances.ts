/** Process instances: the live state row, one writer at a time. */
import { sql } from 'kysely';
import type { InstanceState } from '../engine/types.js';
import type { JsonObject } from '../errors.js';
import type { Executor } from './db.js';
import type { ProcessInstanceRow } from './schema.js';

export interface NewInstance {
  id: string;
  definition_id: string;
  process_key: string;
  version: number;
  business_key: string | null;
  state: InstanceState;
  parent_instance_id?: string | null;
  /** the start request's idempotency key (unique when given) */
  request_id?: string | null;
  /** the fingerprint of the request that carried it */
  request_fingerprint?: string | null;
}

/**
 * A new instance and its `start` inbox row, in one statement (atomic without a
 * transaction of its own; inside one it is simply part of it). Starting an
 * instance is the API's hottest write: one round trip instead of four.
 */
export async function insertInstanceWithStart(
  db: Executor,
  row: NewInstance,
  payload: JsonObject,
): Promise<{ instance: ProcessInstanceRow; inboxId: number } | undefined> {
  const r = await sql<ProcessInstanceRow & { inbox_id: number }>`
    with i as (
      insert into process_instance (id, definition_id, process_key, version, business_key, status, state, parent_instance_id, request_id, request_fingerprint)
      values (${row.id}, ${row.definition_id}, ${row.process_key}, ${row.version}, ${row.business_key}, 'running',
              ${JSON.stringify(row.state)}::jsonb, ${row.parent_instance_id ?? null}, ${row.request_id ?? null}, ${row.request_fingerprint ?? null})
      -- a request id seen before: nothing is written (undefined)
      on conflict (request_id) where request_id is not null do nothing
      returning *
    ),
    e as (
      insert into inbox (instance_id, kind, payload)
      select i.id, 'start', ${JSON.stringify(payload)}::jsonb from i
      returning id
    )
    select i.*, e.id as inbox_id from i, e`.execute(db);
  const found = r.rows[0];
  if (!found) return undefined;
  const { inbox_id, ...instance } = found;
  return { instance, inboxId: Number(inbox_id) };
}

export async function instanceByRequestId(db: Executor, requestId: string): Promise<ProcessInstanceRow | undefined> {
  return db.selectFrom('process_instance').selectAll().where('request_id', '=', requestId).executeTakeFirst();
}

/**
 * Locks one instance row for a step. SKIP LOCKED, not a blocking wait: if another
 * worker holds the row it is already draining this instance's inbox, and the
 * caller re-rings the doorbell a little later instead of parking a connection
 * behind the lock. One row per transaction means no lock cycles, so no deadlocks.
 */
export async function lockInstance(db: Executor, id: string): Promise<ProcessInstanceRow | undefined> {
  return db.selectFrom('process_instance').selectAll().where('id', '=', id).forUpdate().skipLocked().executeTakeFirst();
}

export async function instanceExists(db: Executor, id: string): Promise<boolean> {
  const row = await db.selectFrom('process_instance').select('id').where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

export async function saveInstance(
  db: Executor,
  id: string,
  rev: number,
  patch: { state: InstanceState; status: string; ended: boolean; suspended?: boolean },
): Promise<void> {
  // `rev` is belt and braces: the row lock already guarantees a single writer,
  // the revision check makes a violation of that rule fail loudly.
  const res = await db
    .updateTable('process_instance')
    .set({
      state: JSON.stringify(patch.state),
      status: patch.status,
      rev: rev + 1,
      updated_at: sql`now()`,
      ...(patch.ended ? { ended_at: sql`coalesce(ended_at, now())` } : {}),
      ...(patch.suspended !== undefined ? { suspended: patch.suspended } : {}),
    })
    .where('id', '=', id)
    .where('rev', '=', rev)
    .executeTakeFirst();
  if (res.numUpdatedRows !== 1n) throw new Error(`instance ${id}: concurrent write detected at rev ${rev}`);
}

export async function getInstance(db: Executor, id: string): Promise<ProcessInstanceRow | undefined> {
  return db.selectFrom('process_instance').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * The marker that stands for a process variable too large to read with its
 * instance (see getInstanceForRead): `{ [TRUNCATED]: bytes }`.
 */
export const TRUNCATED = '$baton.omitted';

/**
 * The instance for an API read: every process variable whose JSON is
 * larger than `maxVariableBytes` is replaced, in Postgres, by `{ [TRUNCATED]: its size }`, so a huge variable
 * is never loaded into this process nor sent with the instance (read it
 * alone: processVariable).
 */
export async function getInstanceForRead(db: Executor, id: string, maxVariableBytes: number): Promise<ProcessInstanceRow | undefined> {
  const r = await sql<ProcessInstanceRow>`
    select p.id, p.definition_id, p.process_key, p.version, p.business_key, p.status, p.suspended, p.rev,
           p.parent_instance_id, p.request_id, p.request_fingerprint, p.started_at, p.ended_at, p.updated_at,
           case when p.state->'scopes'->(p.state->>'rootScopeId')->'variables' is null then p.state
           else jsonb_set(p.state, array['scopes', p.state->>'rootScopeId', 'variables'], (
             select coalesce(jsonb_object_agg(e.k, case when octet_length(e.v::text) > ${maxVariableBytes}::int
                                                     then jsonb_build_object(${TRUNCATED}::text, octet_length(e.v::text)) else e.v end), '{}'::jsonb)
             from jsonb_each(p.state->'scopes'->(p.state->>'rootScopeId')->'variables') as e(k, v)))
           end as state
    from process_instance p where p.id = ${id}`.execute(db);
  return r.rows[0];
}

/** One process variable of an instance, read in Postgres: `found: false` when the instance or the variable does not exist. */
export async function processVariable(db: Executor, id: string, name: string): Promise<{ instance: boolean; found: boolean; value: unknown }> {
  const r = await sql<{ value: unknown; has: boolean }>`
    select p.state->'scopes'->(p.state->>'rootScopeId')->'variables'->${name} as value,
           (p.state->'scopes'->(p.state->>'rootScopeId')->'variables') ? ${name} as has
    from process_instance p where p.id = ${id}`.execute(db);
  const row = r.rows[0];
  if (!row) return { instance: false, found: false, value: null };
  return { instance: true, found: row.has === true, value: row.value };
}

export async function getInstances(db: Executor, ids: string[]): Promise<ProcessInstanceRow[]> {
  if (ids.length === 0) return [];
  // = any(array): one statement text (one prepared statement) for any number of ids
  return db.selectFrom('process_instance').selectAll().where('id', '=', sql<string>`any(${ids}::uuid[])`).execute();
}

export interface InstanceFilter {
  processKey?: string;
  status?: string;
  businessKey?: string;
  /** exclusive: rows with id greater than this */
  afterId?: string;
  limit: number;
  /** process variables to read; the others (and every scope's locals) stay in the database */
  variables?: readonly string[];
}

/**
 * A page of instances, for lists. The state comes back without its variable
 * scopes: a page of 1,000 instances holding megabytes of variables each would
 * otherwise be read and held at once (one such list took a 512 MiB process
 * down). In their place the root scope holds only the process variables
 * named in `variables` (none when absent), picked in Postgres.
 */
export async function listInstances(db: Executor, f: InstanceFilter): Promise<ProcessInstanceRow[]> {
  const names = [...(f.variables ?? [])];
  const picked =
    names.length === 0
      ? sql<JsonObject>`'{}'::jsonb`
      : sql<JsonObject>`(select coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
          from jsonb_each(state->'scopes'->(state->>'rootScopeId')->'variables') as e
          where e.key = any(${names}::text[]))`;
  let q = db
    .selectFrom('process_instance')
    .select(['id', 'definition_id', 'process_key', 'version', 'business_key', 'status', 'suspended', 'rev', 'parent_instance_id', 'request_id', 'request_fingerprint', 'started_at', 'ended_at', 'updated_at'])
    .select(sql<InstanceState>`jsonb_set(state - 'scopes', '{scopes}', jsonb_build_object(state->>'rootScopeId', jsonb_build_object('variables', ${picked})))`.as('state'));
  if (f.processKey !== undefined) q = q.where('process_key', '=', f.processKey);
  if (f.status !== undefined) q = q.where('status', '=', f.status);
  if (f.businessKey !== undefined) q = q.where('business_key', '=', f.businessKey);
  if (f.afterId !== undefined) q = q.where('id', '>', f.afterId);
  return q.orderBy('id').limit(f.limit).execute();
}

/**
 * The instance row and whether one of its inbox rows has been processed, read
 * in one statement (the API's waitMs polls with it). Both come from the same
 * snapshot: a processed row means the row read reflects the step that
 * processed it.
 */
export async function getInstanceAfterEvent(db: Executor, id: string, inboxId: number): Promise<{ row: ProcessInstanceRow; processed: boolean } | undefined> {
  const r = await sql<ProcessInstanceRow & { processed: boolean }>`
    select p.*, exists (select 1 from inbox i where i.id = ${inboxId} and i.processed_at is not null) as processed
    from process_instance p where p.id = ${id}`.execute(db);
  const found = r.rows[0];
  if (!found) return undefined;
  const { processed, ...row } = found;
  return { row, processed };
}

/**
 * Forgets the idempotency keys of starts older than `olderThanMs`, at most
 * `limit` of them (the scheduler calls it in rounds): an expired key may be
 * used again and starts a new instance. Returns how many were forgotten.
 */
export async function expireRequestIds(db: Executor, olderThanMs: number, limit: number): Promise<number> {
  const r = await sql`
    update process_instance set request_id = null, request_fingerprint = null
    where id in (
      select id from process_instance
      where request_id is not null and started_at < now() - make_interval(secs => ${olderThanMs / 1000})
      limit ${limit}
    )`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
