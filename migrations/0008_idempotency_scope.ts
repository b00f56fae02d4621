/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * An idempotency key answers only the request it was first sent with: the
 * start keeps a fingerprint of its body beside the key, so the same key with
 * another body is refused instead of handing out another request's instance.
 * Keys expire: the index lets the scheduler find the old ones.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table process_instance add column request_fingerprint text`.execute(db);
  await sql`create index process_instance_request_started on process_instance (started_at) where request_id is not null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists process_instance_request_started`.execute(db);
  await sql`alter table process_instance drop column if exists request_fingerprint`.execute(db);
}
