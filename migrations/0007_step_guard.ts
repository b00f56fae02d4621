/**
 * Frozen in time: never import application code here, never edit after release.
 *
 * A step that commits without holding the instance's row lock (the API's
 * optimistic step after an accepted completion) writes everything in one
 * statement and must write nothing when another step got there first. The
 * statement ends by calling this guard over what it changed; a false check
 * raises, and the statement's every change is undone with it.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function baton_step_guard(ok boolean, message text) returns boolean
    language plpgsql as $$
    begin
      if not ok then
        raise exception using errcode = 'BT001', message = message;
      end if;
      return true;
    end
    $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function if exists baton_step_guard(boolean, text)`.execute(db);
}
