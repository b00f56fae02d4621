/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * message_correlation: the BPMN-standard (SpiffArena) correlation of the
 * messages a process uses, registered at deploy: per process key and message
 * name, the correlationPropertyRetrievalExpression messagePaths (a JSON array
 * of strings, property-id order). A new version of a key replaces its rows.
 * The API computes a missing correlation key of a published message from them.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table message_correlation (
      process_key text not null,
      message_name text not null,
      paths jsonb not null,
      primary key (process_key, message_name)
    )`.execute(db);
  await sql`create index message_correlation_name on message_correlation (message_name)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists message_correlation`.execute(db);
}
