/**
 * The hand-kept Kysely schema (src/store/schema.ts) must match what the
 * migrations create, in Postgres and in PGlite; migrations must be safe to run
 * from several processes at once.
 */
import pg from 'pg';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateToLatest, openPglite, openPostgres, type Db } from '../../src/store/db.js';
import type { Database } from '../../src/store/schema.js';
import { PG_URL, uniqueName } from '../support/env.js';

// Every column of every table, as the TypeScript interface declares it: the
// mapped type makes the compiler reject a missing or an extra column here.
const columns: { [T in keyof Database]: { [C in keyof Database[T]]: true } } = {
  deployment: { id: true, name: true, created_at: true },
  deployment_resource: { deployment_id: true, name: true, content: true, checksum: true },
  process_definition: { id: true, key: true, version: true, name: true, deployment_id: true, resource_name: true, checksum: true, language: true, created_at: true },
  process_instance: {
    id: true, definition_id: true, process_key: true, version: true, business_key: true, status: true, suspended: true,
    state: true, rev: true, parent_instance_id: true, request_id: true, request_fingerprint: true, started_at: true, ended_at: true, updated_at: true,
  },
  inbox: { id: true, instance_id: true, kind: true, payload: true, created_at: true, processed_at: true, attempts: true },
  human_task: {
    id: true, instance_id: true, process_key: true, element_id: true, token_id: true, name: true, kind: true, lane: true,
    candidate_groups: true, candidate_users: true, assignee: true, form_key: true, properties: true, state: true,
    variables: true, created_at: true, ended_at: true,
  },
  service_job: {
    id: true, instance_id: true, process_key: true, element_id: true, token_id: true, topic: true, input: true, headers: true,
    result_variable: true, state: true, retries: true, attempts: true, retry_backoff_ms: true, worker_id: true, lock_expires_at: true, available_at: true,
    error_message: true, created_at: true, ended_at: true,
  },
  history: { id: true, instance_id: true, at: true, event: true, element_id: true, element_type: true, token_id: true, scope_id: true, data: true },
  history_batch: { id: true, instance_id: true, entries: true },
  incident: { id: true, instance_id: true, process_key: true, element_id: true, token_id: true, code: true, message: true, line: true, column: true,
    attempts: true, resolution: true, details: true, created_at: true, resolved_at: true },
  timer: { id: true, instance_id: true, element_id: true, token_id: true, due_at: true, spec: true, created_at: true },
  subscription: { id: true, instance_id: true, kind: true, name: true, correlation_key: true, element_id: true, token_id: true, created_at: true },
  message: { id: true, message_id: true, name: true, correlation_key: true, variables: true, outcome: true, expires_at: true, created_at: true },
  start_event: { definition_id: true, process_key: true, element_id: true, kind: true, name: true, spec: true },
  timer_schedule: { id: true, definition_id: true, process_key: true, element_id: true, next_due_at: true, remaining: true, spec: true, active: true },
  message_correlation: { process_key: true, message_name: true, paths: true },
};

const expected = Object.fromEntries(Object.entries(columns).map(([t, cols]) => [t, Object.keys(cols).sort()]));

async function catalog(db: Db, schema: string): Promise<Record<string, string[]>> {
  const rows = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
     where table_schema = ${schema} and table_name <> 'kysely_migration' and table_name <> 'kysely_migration_lock'`.execute(db);
  const out: Record<string, string[]> = {};
  for (const r of rows.rows) (out[r.table_name] ??= []).push(r.column_name);
  for (const k of Object.keys(out)) out[k]!.sort();
  return out;
}

describe('schema', () => {
  const schema = uniqueName('t_schema');
  afterAll(async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`drop schema if exists ${schema} cascade`);
    await c.end();
  });

  it('Postgres: concurrent migrators agree, and the tables match the Kysely interface', async () => {
    const dbs = await Promise.all([1, 2, 3].map(() => openPostgres({ url: PG_URL, schema, max: 2 })));
    try {
      const ran = await Promise.all(dbs.map((d) => migrateToLatest(d.db)));
      // The advisory lock lets exactly one of them apply the migration.
      expect(ran.map((r) => r.length).sort()).toEqual([0, 0, 10]);
      expect(await catalog(dbs[0]!.db, schema)).toEqual(expected);
      expect(await migrateToLatest(dbs[0]!.db)).toEqual([]);
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
    }
  });

  it('a second schema in the same database gets its own migration bookkeeping', async () => {
    // Regression: Kysely looked for its lock table in any schema and, finding
    // the first schema's, never created the second one's.
    const other = uniqueName('t_schema_b');
    const d = await openPostgres({ url: PG_URL, schema: other, max: 2 });
    try {
      expect(await migrateToLatest(d.db)).toEqual(['0001_initial', '0002_waits', '0003_message_correlation', '0004_incidents_and_retries', '0005_history_batches', '0006_start_request_id', '0007_step_guard', '0008_idempotency_scope', '0009_definition_language', '0010_inbox_attempts']);
      const t = await sql<{ n: number }>`select count(*)::int as n from information_schema.tables where table_schema = ${other} and table_name like 'kysely_migration%'`.execute(d.db);
      expect(t.rows[0]!.n).toBe(2);
    } finally {
      await sql`drop schema if exists ${sql.raw(other)} cascade`.execute(d.db);
      await d.close();
    }
  });

  it('PGlite: the same migrations give the same tables', async () => {
    const d = await openPglite(null);
    try {
      expect(await migrateToLatest(d.db)).toEqual(['0001_initial', '0002_waits', '0003_message_correlation', '0004_incidents_and_retries', '0005_history_batches', '0006_start_request_id', '0007_step_guard', '0008_idempotency_scope', '0009_definition_language', '0010_inbox_attempts']);
      expect(await catalog(d.db, 'public')).toEqual(expected);
    } finally {
      await d.close();
      await d.close();
    }
  });
});
