/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * Incidents say more, for operators:
 * - column:     script column next to `line`, when user code failed;
 * - attempts:   how many times the failing work was tried when the incident
 *               opened (service job tries, or 1 + operator retries);
 * - resolution: why it closed: 'retried' (operator retry), 'cancelled' (its
 *               token is gone), 'reset' (the instance was rewound);
 * - details:    what an operator needs to act on it, e.g. the inbox event a
 *               step could not apply (kind + payload), so a retry can replay it.
 *
 * Service jobs count their tries (`attempts`, +1 per claim, so a try cut short
 * by a dead worker counts too) for the exponential backoff and the incident,
 * and may carry a fixed backoff from the model (camunda:failedJobRetryTimeCycle).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table incident add column "column" integer`.execute(db);
  await sql`alter table incident add column attempts integer not null default 1`.execute(db);
  await sql`alter table incident add column resolution text`.execute(db);
  await sql`alter table incident add column details jsonb`.execute(db);
  await sql`alter table service_job add column attempts integer not null default 0`.execute(db);
  await sql`alter table service_job add column retry_backoff_ms integer`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const c of ['"column"', 'attempts', 'resolution', 'details']) {
    await sql.raw(`alter table incident drop column if exists ${c}`).execute(db);
  }
  await sql`alter table service_job drop column if exists attempts`.execute(db);
  await sql`alter table service_job drop column if exists retry_backoff_ms`.execute(db);
}
