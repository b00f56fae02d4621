/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * Shape of the data, and why:
 * - process_instance.state is the engine's live state (active tokens, scopes,
 *   variables, open incidents) as JSON: O(active), loaded and written whole by
 *   one step at a time under a row lock (`rev` counts the writes).
 * - inbox is the only way in: every accepted input is a row here before the API
 *   answers 2xx. A step marks the rows it applied (processed_at) in the same
 *   transaction as the new state, which is what makes application exactly-once.
 * - history is append-only and never read by a step.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table deployment (
      id uuid primary key,
      name text,
      created_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table deployment_resource (
      deployment_id uuid not null references deployment(id),
      name text not null,
      content text not null,
      checksum text not null,
      primary key (deployment_id, name)
    )`.execute(db);

  await sql`
    create table process_definition (
      id uuid primary key,
      key text not null,
      version integer not null,
      name text,
      deployment_id uuid not null references deployment(id),
      resource_name text not null,
      checksum text not null,
      created_at timestamptz not null default now(),
      unique (key, version)
    )`.execute(db);

  await sql`
    create table process_instance (
      id uuid primary key,
      definition_id uuid not null references process_definition(id),
      process_key text not null,
      version integer not null,
      business_key text,
      status text not null,
      suspended boolean not null default false,
      state jsonb not null,
      rev integer not null default 0,
      parent_instance_id uuid,
      started_at timestamptz not null default now(),
      ended_at timestamptz,
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index process_instance_key_status on process_instance (process_key, status, id)`.execute(db);
  await sql`create index process_instance_status on process_instance (status, id)`.execute(db);
  await sql`create index process_instance_business_key on process_instance (business_key) where business_key is not null`.execute(db);

  await sql`
    create table inbox (
      id bigint generated always as identity primary key,
      instance_id uuid not null,
      kind text not null,
      payload jsonb not null,
      created_at timestamptz not null default now(),
      processed_at timestamptz
    )`.execute(db);
  // A step reads "pending rows of one instance in order"; the sweep reads
  // "pending rows older than N seconds". Both only ever look at pending rows,
  // so partial indexes stay small however long the table grows.
  await sql`create index inbox_pending on inbox (instance_id, id) where processed_at is null`.execute(db);
  await sql`create index inbox_pending_age on inbox (created_at) where processed_at is null`.execute(db);

  await sql`
    create table human_task (
      id uuid primary key,
      instance_id uuid not null,
      process_key text not null,
      element_id text not null,
      token_id text not null,
      name text,
      kind text not null,
      lane text,
      candidate_groups text[] not null default '{}',
      candidate_users text[] not null default '{}',
      assignee text,
      form_key text,
      properties jsonb not null default '{}',
      state text not null,
      variables jsonb,
      created_at timestamptz not null default now(),
      ended_at timestamptz
    )`.execute(db);
  await sql`create index human_task_instance on human_task (instance_id)`.execute(db);
  await sql`create index human_task_state on human_task (state, created_at, id)`.execute(db);

  await sql`
    create table service_job (
      id uuid primary key,
      instance_id uuid not null,
      process_key text not null,
      element_id text not null,
      token_id text not null,
      topic text not null,
      input jsonb not null,
      headers jsonb not null default '{}',
      result_variable text,
      state text not null,
      retries integer not null,
      worker_id text,
      lock_expires_at timestamptz,
      available_at timestamptz not null default now(),
      error_message text,
      created_at timestamptz not null default now(),
      ended_at timestamptz
    )`.execute(db);
  await sql`create index service_job_available on service_job (topic, available_at) where state = 'available'`.execute(db);
  await sql`create index service_job_locked on service_job (lock_expires_at) where state = 'locked'`.execute(db);
  await sql`create index service_job_instance on service_job (instance_id)`.execute(db);

  await sql`
    create table history (
      id bigint generated always as identity primary key,
      instance_id uuid not null,
      at timestamptz not null,
      event text not null,
      element_id text,
      element_type text,
      token_id text,
      scope_id text,
      data jsonb
    )`.execute(db);
  await sql`create index history_instance on history (instance_id, id)`.execute(db);

  await sql`
    create table incident (
      id uuid primary key,
      instance_id uuid not null,
      process_key text not null,
      element_id text not null,
      token_id text,
      code text not null,
      message text not null,
      line integer,
      created_at timestamptz not null default now(),
      resolved_at timestamptz
    )`.execute(db);
  await sql`create index incident_open on incident (created_at, id) where resolved_at is null`.execute(db);
  await sql`create index incident_instance on incident (instance_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['incident', 'history', 'service_job', 'human_task', 'inbox', 'process_instance', 'process_definition', 'deployment_resource', 'deployment']) {
    await sql`drop table if exists ${sql.raw(t)}`.execute(db);
  }
}
