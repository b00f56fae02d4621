/**
 * Timer punctuality: N timers due within the same second, fired by two
 * scheduler processes (workers/scheduler.ts) against the real Postgres and
 * Redis. Lateness = when the step doorbell for the timer's instance reached a
 * consumer in this process, minus the timer's due time.
 *
 *   node --no-node-snapshot --import tsx bench/timers.ts [N=10000] [schedulers=2]
 *
 * Prints a table: fired, fired twice, lateness p50 / p99 / max.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createBullTransport, STEP_QUEUE } from '../src/queue/index.js';
import { migrateToLatest, openPostgres } from '../src/store/db.js';
import { uuidv7 } from '../src/ids.js';

const N = Number(process.argv[2] ?? 10_000);
const SCHEDULERS = Number(process.argv[3] ?? 2);
const PG_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const schema = `bench_timers_${process.pid}`;
const prefix = `bench_timers_${process.pid}`;

const opened = await openPostgres({ url: PG_URL, schema });
const db = opened.db;
await migrateToLatest(db);

const children: ChildProcess[] = [];
for (let i = 0; i < SCHEDULERS; i++) {
  children.push(
    spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', 'workers/scheduler.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        DATABASE_URL: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
        REDIS_URL,
        BATON_QUEUE_PREFIX: prefix,
        HEALTH_PORT: '0',
        LOG_LEVEL: 'warn',
        MIGRATE_ON_START: 'false',
      },
    }),
  );
}

// The schedulers need a few seconds to boot; the timers fall due after that,
// spread over one second.
const dueBase = Date.now() + 8000;
const due = new Map<string, number>();
const rows = Array.from({ length: N }, (_, i) => {
  const id = uuidv7();
  const instanceId = uuidv7();
  const at = dueBase + (i % 1000);
  due.set(instanceId, at);
  return { id, instance_id: instanceId, element_id: 'wait', token_id: null, due_at: new Date(at), spec: JSON.stringify({}) };
});
for (let i = 0; i < rows.length; i += 1000) await db.insertInto('timer').values(rows.slice(i, i + 1000)).execute();

const transport = createBullTransport({ url: REDIS_URL, prefix });
const arrived = new Map<string, number>();
const consumer = transport.consume<{ instanceId: string }>(
  STEP_QUEUE,
  async ({ instanceId }) => {
    if (!arrived.has(instanceId)) arrived.set(instanceId, Date.now());
  },
  { concurrency: 100 },
);

const deadline = dueBase + 60_000;
while (arrived.size < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));

const fired = await db
  .selectFrom('inbox')
  .select(['payload', 'instance_id', 'created_at'])
  .where('kind', '=', 'timerFired')
  .execute();
// Fire lateness: the scheduler's transaction that wrote the inbox row (its
// start time, as Postgres's now()) minus the due time.
const fireLate = fired.map((f) => f.created_at.getTime() - due.get(f.instance_id)!).sort((a, b) => a - b);
const perTimer = new Map<string, number>();
for (const f of fired) {
  const id = String((f.payload as { timerId: string }).timerId);
  perTimer.set(id, (perTimer.get(id) ?? 0) + 1);
}
const twice = [...perTimer.values()].filter((c) => c > 1).length;
const late = [...arrived.entries()].map(([id, t]) => t - due.get(id)!).sort((a, b) => a - b);
const pctOf = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

console.log(`\nTimer punctuality: ${N} timers due within one second, ${SCHEDULERS} scheduler processes (${new Date().toISOString()})\n`);
console.log('| timers | fired | fired twice | fire lateness p50 / p99 / max ms | doorbell at a step consumer p50 / p99 / max ms |');
console.log('|---|---|---|---|---|');
console.log(
  `| ${N} | ${perTimer.size} | ${twice} | ${pctOf(fireLate, 50)} / ${pctOf(fireLate, 99)} / ${fireLate[fireLate.length - 1] ?? NaN} | ${pctOf(late, 50)} / ${pctOf(late, 99)} / ${late[late.length - 1] ?? NaN} |`,
);

for (const c of children) c.kill('SIGTERM');
await consumer.close();
await transport.close();
const c = new pg.Client({ connectionString: PG_URL });
await c.connect();
await c.query(`drop schema ${schema} cascade`);
await c.end();
await opened.close();
const r = new Redis(REDIS_URL);
const keys = await r.keys(`${prefix}:*`);
if (keys.length) await r.del(...keys);
r.disconnect();
process.exit(0);
