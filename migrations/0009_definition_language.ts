/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * The language of a process definition's expressions and scripts, as it was
 * resolved at deploy (from the model, the deployment's `language` option, or
 * the spiffworkflow namespace). The definition cache recompiles from the
 * stored XML with it, so a deployment option is not lost. Definitions
 * deployed before languages existed ran as JavaScript and keep doing so.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table process_definition add column language text`.execute(db);
  await sql`update process_definition set language = 'javascript'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table process_definition drop column if exists language`.execute(db);
}
