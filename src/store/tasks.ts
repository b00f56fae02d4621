/** Human tasks (user and manual tasks). */
import { sql } from 'kysely';
import type { JsonObject } from '../errors.js';
import type { HumanTaskSpec } from '../engine/types.js';
import type { Executor } from './db.js';
import type { HumanTaskRow } from './schema.js';

/** A task's own columns (the instance's are added by the caller). */
export function humanTaskColumns(t: HumanTaskSpec) {
  return {
    id: t.id,
    element_id: t.elementId,
    token_id: t.tokenId,
    name: t.name,
    kind: t.kind,
    lane: t.lane,
    candidate_groups: t.candidateGroups,
    candidate_users: t.candidateUsers,
    assignee: t.assignee,
    form_key: t.formKey,
    properties: t.properties,
  };
}

/** One statement per chunk: a multi-instance fan-out opens thousands of tasks in one step. */
export async function insertHumanTasks(db: Executor, instanceId: string, processKey: string, tasks: HumanTaskSpec[]): Promise<void> {
  for (let i = 0; i < tasks.length; i += 1000) {
    await db
      .insertInto('human_task')
      .values(
        tasks.slice(i, i + 1000).map((t) => ({
          ...humanTaskColumns(t),
          instance_id: instanceId,
          process_key: processKey,
          properties: JSON.stringify(t.properties),
          state: 'open',
        })),
      )
      .execute();
  }
}

/**
 * The engine closed a task (completed on its own event, or cancelled by a
 * terminate/cancel). Only an open task changes: a task the API already marked
 * completed keeps that state. Returns whether the row changed.
 */
export async function closeHumanTask(db: Executor, id: string, state: 'completed' | 'cancelled'): Promise<boolean> {
  const r = await db.updateTable('human_task').set({ state, ended_at: sql`now()` }).where('id', '=', id).where('state', '=', 'open').executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * Claims the completion of a task and writes its inbox event, in one
 * statement (durable on its own: see StepRunner.stepAccepted). The
 * conditional update is the arbiter between concurrent completions: exactly
 * one of them sees the row change from open to completed; the others get
 * undefined and answer 409.
 */
export async function completeTaskWithEvent(db: Executor, id: string, variables: JsonObject): Promise<{ instanceId: string; inboxId: number } | undefined> {
  const r = await sql<{ instance_id: string; inbox_id: number }>`
    with t as (
      update human_task set state = 'completed', ended_at = now(), variables = ${JSON.stringify(variables)}::jsonb
       where id = ${id}::uuid and state = 'open'
      returning instance_id
    ),
    e as (
      insert into inbox (instance_id, kind, payload)
      select t.instance_id, 'humanTaskCompleted', ${JSON.stringify({ taskId: id, variables })}::jsonb from t
      returning id, instance_id
    )
    select instance_id, id as inbox_id from e`.execute(db);
  const row = r.rows[0];
  return row ? { instanceId: row.instance_id, inboxId: Number(row.inbox_id) } : undefined;
}

export async function getHumanTask(db: Executor, id: string): Promise<HumanTaskRow | undefined> {
  return db.selectFrom('human_task').selectAll().where('id', '=', id).executeTakeFirst();
}

export interface TaskFilter {
  processInstanceId?: string;
  state?: string;
  assignee?: string;
  candidateGroup?: string;
  afterId?: string;
  limit: number;
}

export async function listHumanTasks(db: Executor, f: TaskFilter): Promise<HumanTaskRow[]> {
  let q = db.selectFrom('human_task').selectAll();
  if (f.processInstanceId !== undefined) q = q.where('instance_id', '=', f.processInstanceId);
  if (f.state !== undefined) q = q.where('state', '=', f.state);
  if (f.assignee !== undefined) q = q.where('assignee', '=', f.assignee);
  if (f.candidateGroup !== undefined) q = q.where(sql<boolean>`${f.candidateGroup} = any(candidate_groups)`);
  if (f.afterId !== undefined) q = q.where('id', '>', f.afterId);
  return q.orderBy('id').limit(f.limit).execute();
}
