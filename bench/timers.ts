/**
 * Timer punctuality (workload 4): N timers due within the same second, fired
 * by scheduler processes (workers/scheduler.ts) against the real Postgres and
 * Redis.
 *
 *   fire lateness     = the scheduler's transaction that deleted the timer and
 *                       wrote its `timerFired` inbox row (Postgres now() of
 *                       that transaction) minus the due time;
 *   doorbell lateness = when the step doorbell for the timer's instance
 *                       reached a consumer in this process, minus the due time;
 *   fired twice       = timers with more than one `timerFired` inbox row.
 *
 *   node --no-node-snapshot --import tsx bench/timers.ts [N=10000] [schedulers=2]
 *
 * Also imported by bench/run.ts (runTimers).
 */
import { createBullTransport, STEP_QUEUE, TIMER_CHANNEL } from '../src/queue/index.js';
import { migrateToLatest, openPostgres } from '../src/store/db.js';
import { uuidv7 } from '../src/ids.js';
import { freePort, isolate, PG_URL, REDIS_URL, rssOf, spawnRole, stopProcs, type Proc } from './lib/cluster.js';
import { isMain, latencySummary, sleep } from './lib/util.js';

export interface TimersResult {
  timers: number;
  schedulers: number;
  fired: number;
  firedTwice: number;
  fireLatenessMs: ReturnType<typeof latencySummary>;
  doorbellLatenessMs: ReturnType<typeof latencySummary>;
  doorbellsArrived: number;
  processes: ReturnType<typeof rssOf>;
}

export async function runTimers(n: number, schedulers: number): Promise<TimersResult> {
  const iso = await isolate('timers');
  const opened = await openPostgres({ url: PG_URL, schema: iso.schema });
  const db = opened.db;
  const procs: Proc[] = [];
  const transport = createBullTransport({ url: REDIS_URL, prefix: iso.prefix });
  try {
    await migrateToLatest(db);
    for (let i = 0; i < schedulers; i++) {
      procs.push(
        spawnRole(
          'scheduler',
          {
            DATABASE_URL: iso.dbUrl,
            REDIS_URL,
            BATON_QUEUE_PREFIX: iso.prefix,
            HEALTH_PORT: String(await freePort()),
            LOG_LEVEL: 'warn',
            MIGRATE_ON_START: 'false',
            BATON_EXAMPLES: 'false',
          },
          `scheduler ${i + 1}`,
        ),
      );
    }
    // Wait until every scheduler answers /ready, then give the timers a due
    // time a little later, spread over one second.
    const deadline = Date.now() + 120_000;
    for (const p of procs) {
      for (;;) {
        if (p.child.exitCode !== null) throw new Error(`${p.role} exited: ${p.output.join('').slice(-2000)}`);
        const ok = await fetch(`http://127.0.0.1:${p.healthPort}/ready`).then((r) => r.ok, () => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`${p.role} not ready`);
        await sleep(100);
      }
    }
    // Lead time: the inserts below, then at least one scheduler poll (they
    // sleep at most a second) before the first timer is due.
    const dueBase = Date.now() + 3000 + n / 2;
    const due = new Map<string, number>();
    const rows = Array.from({ length: n }, (_, i) => {
      const id = uuidv7();
      const instanceId = uuidv7();
      const at = dueBase + (i % 1000);
      due.set(instanceId, at);
      return { id, instance_id: instanceId, element_id: 'wait', token_id: null, due_at: new Date(at), spec: JSON.stringify({}) };
    });
    for (let i = 0; i < rows.length; i += 1000) await db.insertInto('timer').values(rows.slice(i, i + 1000)).execute();
    // What a step that arms a timer does: tell the schedulers the earliest due time.
    await transport.publish(TIMER_CHANNEL, String(dueBase));
    if (Date.now() > dueBase - 1200) throw new Error('inserting the timers left the schedulers no time to see them before they fall due');

    const arrived = new Map<string, number>();
    const consumer = transport.consume<{ instanceId: string }>(
      STEP_QUEUE,
      async ({ instanceId }) => {
        if (!arrived.has(instanceId)) arrived.set(instanceId, Date.now());
      },
      { concurrency: 100 },
    );
    const until = dueBase + 60_000;
    while (arrived.size < n && Date.now() < until) await sleep(100);
    await sleep(500); // late duplicates
    await consumer.close();

    const fired = await db.selectFrom('inbox').select(['payload', 'instance_id', 'created_at']).where('kind', '=', 'timerFired').execute();
    const fireLate = fired.map((f) => f.created_at.getTime() - due.get(f.instance_id)!);
    const perTimer = new Map<string, number>();
    for (const f of fired) {
      const id = String((f.payload as { timerId: string }).timerId);
      perTimer.set(id, (perTimer.get(id) ?? 0) + 1);
    }
    const late = [...arrived.entries()].map(([id, t]) => t - due.get(id)!);
    const processes = rssOf(procs);
    return {
      timers: n,
      schedulers,
      fired: perTimer.size,
      firedTwice: [...perTimer.values()].filter((c) => c > 1).length,
      fireLatenessMs: latencySummary(fireLate),
      doorbellLatenessMs: latencySummary(late),
      doorbellsArrived: arrived.size,
      processes,
    };
  } finally {
    await stopProcs(procs);
    await transport.close();
    await opened.close();
    await iso.drop();
  }
}

if (isMain(import.meta.url)) {
  const N = Number(process.argv[2] ?? 10_000);
  const SCHEDULERS = Number(process.argv[3] ?? 2);
  const r = await runTimers(N, SCHEDULERS);
  const f = r.fireLatenessMs;
  const d = r.doorbellLatenessMs;
  console.log(`\nTimer punctuality: ${N} timers due within one second, ${SCHEDULERS} scheduler processes (${new Date().toISOString()})\n`);
  console.log('| timers | fired | fired twice | fire lateness p50 / p99 / max ms | doorbell at a step consumer p50 / p99 / max ms |');
  console.log('|---|---|---|---|---|');
  console.log(`| ${N} | ${r.fired} | ${r.firedTwice} | ${f.p50} / ${f.p99} / ${f.max} | ${d.p50} / ${d.p99} / ${d.max} |`);
  process.exit(0);
}
