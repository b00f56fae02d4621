/** Deployments and process definitions. */
import { sql } from 'kysely';
import type { Executor } from './db.js';
import type { ProcessDefinitionRow } from './schema.js';

/** Serialises deployments: versions are "latest + 1" and must not race. */
export async function lockDeployments(trx: Executor): Promise<void> {
  // A transaction-scoped advisory lock: released at commit/rollback, so a
  // crashed API process cannot leave it held.
  await sql`select pg_advisory_xact_lock(hashtext('baton.deploy'))`.execute(trx);
}

export async function latestDefinition(db: Executor, key: string): Promise<ProcessDefinitionRow | undefined> {
  return db
    .selectFrom('process_definition')
    .selectAll()
    .where('key', '=', key)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function definitionByVersion(db: Executor, key: string, version: number): Promise<ProcessDefinitionRow | undefined> {
  return db.selectFrom('process_definition').selectAll().where('key', '=', key).where('version', '=', version).executeTakeFirst();
}

export async function definitionById(db: Executor, id: string): Promise<ProcessDefinitionRow | undefined> {
  return db.selectFrom('process_definition').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertDeployment(db: Executor, row: { id: string; name: string | null }): Promise<void> {
  await db.insertInto('deployment').values(row).execute();
}

export async function insertResource(
  db: Executor,
  row: { deployment_id: string; name: string; content: string; checksum: string },
): Promise<void> {
  await db.insertInto('deployment_resource').values(row).execute();
}

export async function insertDefinition(
  db: Executor,
  row: { id: string; key: string; version: number; name: string | null; deployment_id: string; resource_name: string; checksum: string; language: string },
): Promise<void> {
  await db.insertInto('process_definition').values(row).execute();
}

/** The latest version of every key, in key order. */
export async function listLatestDefinitions(db: Executor): Promise<ProcessDefinitionRow[]> {
  return db
    .selectFrom('process_definition as d')
    .selectAll('d')
    .where(({ eb, selectFrom }) =>
      eb('d.version', '=', selectFrom('process_definition as l').select(({ fn }) => fn.max('l.version').as('v')).whereRef('l.key', '=', 'd.key')),
    )
    .orderBy('d.key')
    .execute();
}

export async function listDefinitionVersions(db: Executor, key: string): Promise<ProcessDefinitionRow[]> {
  return db.selectFrom('process_definition').selectAll().where('key', '=', key).orderBy('version', 'desc').execute();
}

export async function resourceContent(db: Executor, deploymentId: string, name: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('deployment_resource')
    .select('content')
    .where('deployment_id', '=', deploymentId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.content;
}
