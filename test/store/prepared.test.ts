/**
 * Repeated statements become named prepared statements (src/store/prepared.ts):
 * named the second time, prepared again as the executions grow tenfold, and
 * given up when a migration changes their result shape.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, type OpenedDb } from '../../src/store/db.js';
import { PG_URL, uniqueName } from '../support/env.js';

const schema = uniqueName('t_prepared');
let opened: OpenedDb;

beforeAll(async () => {
  // one connection, so every statement below runs where pg_prepared_statements looks
  opened = await openPostgres({ url: PG_URL, schema, max: 1 });
  await sql`create table item (id int primary key, label text)`.execute(opened.db);
  await sql`insert into item values (1, 'one'), (2, 'two')`.execute(opened.db);
});

afterAll(async () => {
  await sql`drop schema if exists ${sql.raw(schema)} cascade`.execute(opened.db);
  await opened.close();
});

const byId = (id: number) => sql<{ label: string }>`select label from item where id = ${id} /* prepared-test */`.execute(opened.db);

async function prepared(): Promise<string[]> {
  const r = await sql<{ name: string }>`select name from pg_prepared_statements where statement like ${'%prepared-test%'} order by name`.execute(opened.db);
  return r.rows.map((x) => x.name);
}

describe('named prepared statements', () => {
  it('names a text the second time it runs, and keeps answering correctly', async () => {
    expect((await byId(1)).rows).toEqual([{ label: 'one' }]);
    expect(await prepared()).toEqual([]); // once: unnamed
    expect((await byId(2)).rows).toEqual([{ label: 'two' }]);
    const names = await prepared();
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^baton_\d+_0$/);
  });

  it('prepares it again under a new name after 100 executions, deallocating the old one', async () => {
    for (let i = 0; i < 110; i++) expect((await byId(1 + (i % 2))).rows).toHaveLength(1);
    const names = await prepared();
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^baton_\d+_1$/);
  });

  it('a migration that changes a prepared statement’s result shape fails it once; the next run prepares it afresh', async () => {
    const all = () => sql`select * from item where id = ${1} /* prepared-test star */`.execute(opened.db);
    await all();
    expect((await all()).rows).toEqual([{ id: 1, label: 'one' }]);
    await sql`alter table item add column extra int`.execute(opened.db);
    await expect(all()).rejects.toMatchObject({ code: '0A000' });
    expect((await all()).rows).toEqual([{ id: 1, label: 'one', extra: null }]);
  });

  it('BATON_PG_PREPARE=false (prepare: false) names nothing', async () => {
    const plain = await openPostgres({ url: PG_URL, schema, max: 1, prepare: false });
    try {
      for (let i = 0; i < 3; i++) await sql`select label from item where id = ${1} /* unprepared-test */`.execute(plain.db);
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(plain.db);
      expect(r.rows[0]!.n).toBe(0);
    } finally {
      await plain.close();
    }
  });
});
