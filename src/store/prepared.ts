/**
 * Server-side prepared statements for the statements Baton repeats.
 *
 * Kysely hands node-postgres a statement's text and values; without a name,
 * Postgres parses, analyses and plans that text on every execution. For the
 * hot statements (a step's lock-and-read and commit, an instance's start, a
 * fetch-and-lock) that costs more server CPU than executing them: measured on
 * the straight-through benchmark, planning alone was 0.21 ms of a 0.40 ms
 * statement. Giving node-postgres a name makes it parse once per connection
 * and then only bind and execute, and lets Postgres switch to a generic plan.
 *
 * A text is named the second time this process sees it, so one-off statements
 * (DDL, ad-hoc reads) stay unnamed, and at most `MAX_NAMED` texts are ever
 * named, which bounds what each backend keeps (statements whose text varies
 * with their input, such as `in ($1, $2, …)` lists, would otherwise grow it
 * without end). Names are process-wide: one text, one name, on every
 * connection, so node-postgres never sees one name with two texts.
 *
 * Each connection's search_path is fixed when it opens (see `openPostgres`),
 * so a prepared statement always resolves to the schema it was parsed in.
 * When a migration changes a table under a prepared statement, Postgres
 * re-plans it by itself; only a changed result shape fails (0A000 "cached plan
 * must not change result type"). Then the text gets a fresh name, so the
 * retry the caller makes anyway (a step is redone, a request answers 503)
 * prepares it anew.
 *
 * A generic plan is made from the statistics of its moment. One made in a
 * fresh database's first seconds, while the tables were nearly empty, can
 * pick an index that is only cheap then (measured: the step commit's inbox
 * update went from 0.1 to 2.4 ms per call as the table grew under a plan that
 * scanned a partial index). So each connection prepares a statement again,
 * under a new name, after 100, 1,000, 10,000, … executions: a plan never
 * outlives a tenfold growth of the work behind it.
 *
 * Off with `BATON_PG_PREPARE=false`, for connection poolers that do not carry
 * named statements (PgBouncer before 1.21 in transaction mode).
 */
import type pg from 'pg';

const MAX_NAMED = 300;
const MAX_COUNTED = 5000;

interface Naming {
  seen: Map<string, number>;
  names: Map<string, string>;
  next: number;
}

const PATCHED = Symbol('baton.prepared');

type QueryFn = (...args: unknown[]) => unknown;

/**
 * What Kysely's PostgresDialect uses of a pool (`connect`, `end`), with
 * clients that name repeated statements.
 */
export function preparingPool(pool: pg.Pool): { connect(): Promise<pg.PoolClient>; end(): Promise<void> } {
  const naming: Naming = { seen: new Map(), names: new Map(), next: 0 };
  return {
    async connect() {
      const client = await pool.connect();
      patch(client, naming);
      return client;
    },
    end: () => pool.end(),
  };
}

/** executions on one connection after which a statement is prepared (and planned) again */
const REPREPARE_AT = 100;

function patch(client: pg.PoolClient, naming: Naming): void {
  const c = client as unknown as { [PATCHED]?: true; query: QueryFn };
  if (c[PATCHED]) return;
  c[PATCHED] = true;
  const original = c.query.bind(client) as QueryFn;
  // per name: executions here, and the generation of the name in use
  const runs = new Map<string, { count: number; next: number; generation: number }>();
  c.query = (text: unknown, values?: unknown, ...rest: unknown[]) => {
    if (typeof text !== 'string' || !Array.isArray(values) || rest.length > 0) {
      return original(text, values, ...rest);
    }
    const base = nameFor(naming, text);
    if (base === undefined) return original(text, values);
    let r = runs.get(base);
    if (r === undefined) {
      r = { count: 0, next: REPREPARE_AT, generation: 0 };
      runs.set(base, r);
    }
    if (++r.count > r.next) {
      const old = `${base}_${r.generation}`;
      // Only a statement this connection did prepare is deallocated (inside a
      // transaction, deallocating an unknown name would abort it). Queued
      // ahead of the query on this connection.
      if (parsed(client)?.[old] !== undefined) {
        delete parsed(client)![old];
        void (original(`deallocate ${old}`) as Promise<unknown>).catch(() => undefined);
      }
      r.generation++;
      r.next *= 10;
    }
    const name = `${base}_${r.generation}`;
    const result = original({ name, text, values }) as Promise<unknown>;
    return result.catch((err: unknown) => {
      if ((err as { code?: unknown }).code === '0A000') {
        // The statement's result shape changed under it (a migration): forget
        // the name so the next execution prepares the new shape afresh.
        if (naming.names.get(text) === base) naming.names.delete(text);
      }
      throw err;
    });
  };
}

/** node-postgres's record of the statements this connection prepared (name → text) */
function parsed(client: pg.PoolClient): Record<string, string> | undefined {
  return (client as unknown as { connection?: { parsedStatements?: Record<string, string> } }).connection?.parsedStatements;
}

function nameFor(naming: Naming, text: string): string | undefined {
  const named = naming.names.get(text);
  if (named !== undefined) return named;
  if (naming.names.size >= MAX_NAMED) return undefined;
  const seen = (naming.seen.get(text) ?? 0) + 1;
  if (seen < 2) {
    if (naming.seen.size >= MAX_COUNTED) naming.seen.clear();
    naming.seen.set(text, seen);
    return undefined;
  }
  naming.seen.delete(text);
  const name = `baton_${naming.next++}`;
  naming.names.set(text, name);
  return name;
}
