/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * How many times a step started applying an inbox event without finishing.
 * A step that may follow a crash (a sweep's doorbell, a redelivered job)
 * counts its first event's attempt in a transaction of its own before it
 * runs; past BATON_MAX_STEP_ATTEMPTS the event is set aside as an
 * `event_rejected` incident, so one event that kills its process cannot
 * crash-loop the workers.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table inbox add column attempts integer not null default 0`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table inbox drop column if exists attempts`.execute(db);
}
