/**
 * A parallel multi-instance of N items (default 10,000): the per-event cost
 * must not grow with the number of completed items, because the state keeps
 * counters and the active set, not the finished children.
 *
 *   node --no-node-snapshot --import tsx bench/multi-instance.ts [N] [engine|runtime|both]
 *
 * engine:  the pure engine, completing the N service jobs one event at a time;
 *          µs per completion for the first and the last 10 % and state bytes.
 * runtime: the same model through Postgres + BullMQ with the step worker in
 *          this process and an external worker completing jobs in batches;
 *          wall time and step time for the first and last 10 % of completions.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import pg from 'pg';
import { compileProcess } from '../src/bpmn/index.js';
import { applyEvent, startInstance } from '../src/engine/index.js';
import type { EngineContext, InstanceState } from '../src/engine/types.js';
import { createEvaluator } from '../src/expressions/index.js';
import { loadConfig } from '../src/config.js';
import { startBaton } from '../src/boot.js';

const N = Number(process.argv[2] ?? 10_000);
const which = process.argv[3] ?? 'both';
const XML = readFileSync(new URL('../test/fixtures/mi-large.bpmn', import.meta.url), 'utf8');
const PG_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const items = Array.from({ length: N }, (_, i) => i);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function engineRun() {
  const graph = await compileProcess(XML, 'mi_large');
  const evaluator = createEvaluator();
  let n = 0;
  const ctx: EngineContext = { now: () => new Date(), newId: () => `id-${++n}`, evaluator, inPlace: true } as EngineContext;
  const t0 = performance.now();
  const started = startInstance(graph, { type: 'start', variables: { items } }, ctx);
  const fanOutMs = performance.now() - t0;
  const jobs = started.effects.flatMap((e) => (e.type === 'serviceJobCreated' ? [e.job.id] : []));
  let state: InstanceState = started.state;
  const per: number[] = [];
  const bytes: Record<string, number> = {};
  for (let i = 0; i < jobs.length; i++) {
    const s = performance.now();
    state = applyEvent(graph, state, { type: 'serviceJobCompleted', jobId: jobs[i]!, variables: { r: i * 2 } }, ctx).state;
    per.push(performance.now() - s);
    if (i + 1 === Math.round(N * 0.1) || i + 1 === Math.round(N * 0.9)) bytes[`after ${i + 1}`] = JSON.stringify(state).length;
  }
  evaluator.close();
  const tenth = Math.max(1, Math.round(N / 10));
  return {
    status: state.status,
    fanOutMs: fanOutMs.toFixed(0),
    firstUs: (mean(per.slice(0, tenth)) * 1000).toFixed(1),
    lastUs: (mean(per.slice(-tenth)) * 1000).toFixed(1),
    totalMs: (per.reduce((a, b) => a + b, 0) + fanOutMs).toFixed(0),
    bytes,
  };
}

async function runtimeRun() {
  const schema = `bench_mi_${process.pid}`;
  const config = loadConfig({ DATABASE_URL: PG_URL, REDIS_URL, BATON_QUEUE_PREFIX: schema, LOG_LEVEL: 'silent', BATON_EXAMPLES: 'false', STEP_CONCURRENCY: '4' });
  const b = await startBaton(config, ['step', 'scheduler'], { logger: pino({ level: 'silent' }), schema, healthServer: false });
  try {
    await b.commands.deploy([{ name: 'mi-large.bpmn', content: XML }]);
    const t0 = performance.now();
    const { instance } = await b.commands.startInstance({ processKey: 'mi_large', variables: { items } });
    // The fan-out: wait until all N jobs exist.
    for (;;) {
      const c = await b.db.selectFrom('service_job').select(({ fn }) => fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
      if (Number(c.c) >= N) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const fannedOut = performance.now();
    let done = 0;
    while (done < N) {
      const jobs = await b.commands.fetchAndLock({ workerId: 'bench', topics: ['work'], maxTasks: 500, lockMs: 600_000 });
      if (jobs.length === 0) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      await Promise.all(jobs.map((j, k) => b.commands.completeJob(j.id, 'bench', { r: k })));
      done += jobs.length;
    }
    for (;;) {
      const row = await b.db.selectFrom('process_instance').select(['status', 'rev']).where('id', '=', instance.id).executeTakeFirstOrThrow();
      if (row.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const end = performance.now();
    const steps = await b.db.selectFrom('process_instance').select('rev').where('id', '=', instance.id).executeTakeFirstOrThrow();
    return { fanOutMs: (fannedOut - t0).toFixed(0), totalMs: (end - t0).toFixed(0), steps: steps.rev };
  } finally {
    await b.close();
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`drop schema if exists ${schema} cascade`);
    await c.end();
  }
}

console.log(`\nParallel multi-instance of ${N} items (${new Date().toISOString()})\n`);
if (which === 'both' || which === 'engine') {
  const e = await engineRun();
  console.log('| engine | status | fan-out ms | µs per completion, first 10 % | last 10 % | total ms | state bytes |');
  console.log('|---|---|---|---|---|---|---|');
  console.log(`| pure | ${e.status} | ${e.fanOutMs} | ${e.firstUs} | ${e.lastUs} | ${e.totalMs} | ${Object.entries(e.bytes).map(([k, v]) => `${k}: ${v}`).join(', ')} |`);
}
if (which === 'both' || which === 'runtime') {
  const r = await runtimeRun();
  console.log('\n| runtime | fan-out ms | total ms (start → completed) | steps (instance revisions) |');
  console.log('|---|---|---|---|');
  console.log(`| Postgres + BullMQ | ${r.fanOutMs} | ${r.totalMs} | ${r.steps} |`);
}
process.exit(0);
