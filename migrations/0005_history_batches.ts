/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * History is written as one row per step (`history_batch`: the step's entries
 * as a JSON array), not one row per entry. A straight-through instance wrote
 * 13 history rows, each with two index entries, and they cost Postgres more
 * than the rest of the instance together. `history` becomes a view with the
 * columns it had, so readers are unchanged; an entry's id is
 * batch id × 2^20 + its position in the batch (ids keep their order, and stay
 * below 2^53 for 8 billion batches of up to a million entries).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table history_batch (
      id bigint generated always as identity primary key,
      instance_id uuid not null,
      entries jsonb not null
    )`.execute(db);
  await sql`create index history_batch_instance on history_batch (instance_id, id)`.execute(db);
  // Existing entries become batches of one, in their order.
  await sql`
    insert into history_batch (instance_id, entries)
    select instance_id, jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
             'at', at, 'event', event, 'element_id', element_id, 'element_type', element_type,
             'token_id', token_id, 'scope_id', scope_id, 'data', data)))
    from history order by id`.execute(db);
  await sql`drop table history`.execute(db);
  await sql`
    create view history as
    select b.id * 1048576 + (e.n - 1) as id,
           b.instance_id,
           (e.x->>'at')::timestamptz as at,
           e.x->>'event' as event,
           e.x->>'element_id' as element_id,
           e.x->>'element_type' as element_type,
           e.x->>'token_id' as token_id,
           e.x->>'scope_id' as scope_id,
           e.x->'data' as data
    from history_batch b cross join lateral jsonb_array_elements(b.entries) with ordinality as e(x, n)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop view if exists history`.execute(db);
  await sql`
    create table history (
      id bigint generated always as identity primary key,
      instance_id uuid not null,
      at timestamptz not null,
      event text not null,
      element_id text,
      element_type text,
      token_id text,
      scope_id text,
      data jsonb
    )`.execute(db);
  await sql`
    insert into history (instance_id, at, event, element_id, element_type, token_id, scope_id, data)
    select b.instance_id, (e.x->>'at')::timestamptz, e.x->>'event', e.x->>'element_id', e.x->>'element_type',
           e.x->>'token_id', e.x->>'scope_id', e.x->'data'
    from history_batch b cross join lateral jsonb_array_elements(b.entries) with ordinality as e(x, n)
    order by b.id, e.n`.execute(db);
  await sql`create index history_instance on history (instance_id, id)`.execute(db);
  await sql`drop table history_batch`.execute(db);
}
