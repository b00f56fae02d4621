/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * Waits on the outside world, each a row written in the step transaction that
 * starts the wait and deleted in the one that ends it:
 * - timer: one row per armed timer. The scheduler claims due rows with
 *   FOR UPDATE SKIP LOCKED and deletes them in the same transaction that
 *   writes the `timerFired` inbox row, so a timer fires once whatever the
 *   number of schedulers.
 * - subscription: message, signal and conditional catches.
 * - message: published messages — buffered ones (outcome null) and the
 *   idempotency log of delivered ones (message_id unique).
 * - start_event / timer_schedule: the non-none start events of the latest
 *   version of each process, registered at deploy.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table timer (
      id uuid primary key,
      instance_id uuid not null,
      element_id text not null,
      token_id text,
      due_at timestamptz not null,
      spec jsonb not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index timer_due on timer (due_at)`.execute(db);
  await sql`create index timer_instance on timer (instance_id)`.execute(db);

  await sql`
    create table subscription (
      id uuid primary key,
      instance_id uuid not null,
      kind text not null,
      name text not null,
      correlation_key text,
      element_id text not null,
      token_id text,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index subscription_match on subscription (kind, name, correlation_key, created_at)`.execute(db);
  await sql`create index subscription_instance on subscription (instance_id)`.execute(db);

  await sql`
    create table message (
      id uuid primary key,
      message_id text unique,
      name text not null,
      correlation_key text,
      variables jsonb not null,
      outcome jsonb,
      expires_at timestamptz,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index message_buffered on message (name, correlation_key, created_at) where outcome is null`.execute(db);

  await sql`
    create table start_event (
      definition_id uuid not null,
      process_key text not null,
      element_id text not null,
      kind text not null,
      name text,
      spec jsonb,
      primary key (definition_id, element_id)
    )`.execute(db);
  await sql`create index start_event_name on start_event (kind, name)`.execute(db);

  await sql`
    create table timer_schedule (
      id uuid primary key,
      definition_id uuid not null,
      process_key text not null,
      element_id text not null,
      next_due_at timestamptz,
      remaining integer,
      spec jsonb not null,
      active boolean not null default true,
      unique (definition_id, element_id)
    )`.execute(db);
  await sql`create index timer_schedule_due on timer_schedule (next_due_at) where active and next_due_at is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['timer_schedule', 'start_event', 'message', 'subscription', 'timer']) {
    await sql`drop table if exists ${sql.raw(t)}`.execute(db);
  }
}
