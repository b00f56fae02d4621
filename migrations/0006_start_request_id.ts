/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * A start request may carry an idempotency key (the `Idempotency-Key` header
 * of POST /v1/process-instances): a client that retries a start whose answer
 * it lost gets the instance its first request created, not a second one.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table process_instance add column request_id text`.execute(db);
  await sql`create unique index process_instance_request_id on process_instance (request_id) where request_id is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists process_instance_request_id`.execute(db);
  await sql`alter table process_instance drop column if exists request_id`.execute(db);
}
