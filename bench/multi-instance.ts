/**
 * A parallel multi-instance of N items (default 10,000; workload 6): the
 * per-event cost must not grow with the number of completed items, because
 * the state keeps counters and the active set, not the finished children.
 *
 *   node --no-node-snapshot --import tsx bench/multi-instance.ts [N] [engine|runtime|both]
 *
 * engine:  the pure engine, completing the N service jobs one event at a time;
 *          µs per completion for the first and the last 10 % and state bytes.
 * runtime: the same model through Postgres + BullMQ with the step worker in
 *          this process and an external worker completing jobs in batches;
 *          wall time, steps (instance revisions) and the instance state's
 *          size in Postgres as the run goes.
 *
 * Also imported by bench/run.ts (engineRun, runtimeRun).
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { compileProcess } from '../src/bpmn/index.js';
import { applyEvent, startInstance } from '../src/engine/index.js';
import type { EngineContext, InstanceState } from '../src/engine/types.js';
import { createEvaluator } from '../src/expressions/index.js';
import { loadConfig } from '../src/config.js';
import { startBaton } from '../src/boot.js';
import { isolate, pgWrites, REDIS_URL, PG_URL, walLsn } from './lib/cluster.js';
import { isMain, round, sleep } from './lib/util.js';

const XML = readFileSync(new URL('./models/multi-instance.bpmn', import.meta.url), 'utf8');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export async function engineRun(n: number) {
  const items = Array.from({ length: n }, (_, i) => i);
  const graph = await compileProcess(XML, 'mi_large');
  const evaluator = createEvaluator();
  let k = 0;
  const ctx: EngineContext = { now: () => new Date(), newId: () => `id-${++k}`, evaluators: () => evaluator, inPlace: true };
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
    if (i + 1 === Math.round(n * 0.1) || i + 1 === Math.round(n * 0.9)) bytes[`after ${i + 1}`] = JSON.stringify(state).length;
  }
  evaluator.close();
  const tenth = Math.max(1, Math.round(n / 10));
  return {
    items: n,
    status: state.status,
    fanOutMs: round(fanOutMs, 0),
    firstUs: round(mean(per.slice(0, tenth)) * 1000, 1),
    lastUs: round(mean(per.slice(-tenth)) * 1000, 1),
    totalMs: round(per.reduce((a, b) => a + b, 0) + fanOutMs, 0),
    stateBytes: bytes,
  };
}

export async function runtimeRun(n: number) {
  const items = Array.from({ length: n }, (_, i) => i);
  const iso = await isolate('mi');
  const lsn = await walLsn(iso.pg);
  const config = loadConfig({ DATABASE_URL: PG_URL, REDIS_URL, BATON_QUEUE_PREFIX: iso.prefix, LOG_LEVEL: 'silent', BATON_EXAMPLES: 'false', STEP_CONCURRENCY: '4' });
  const b = await startBaton(config, ['step', 'scheduler'], { logger: pino({ level: 'silent' }), schema: iso.schema, healthServer: false });
  try {
    await b.commands.deploy([{ name: 'multi-instance.bpmn', content: XML }]);
    const stateSize = async (id: string) => {
      const r = await iso.pg.query<{ b: string; rev: number }>(`select octet_length(state::text) as b, rev from ${iso.schema}.process_instance where id = $1`, [id]);
      return { bytes: Number(r.rows[0]!.b), rev: Number(r.rows[0]!.rev) };
    };
    const t0 = performance.now();
    const { instance } = await b.commands.startInstance({ processKey: 'mi_large', variables: { items } });
    // The fan-out: wait until all N jobs exist.
    for (;;) {
      const c = await b.db.selectFrom('service_job').select(({ fn }) => fn.countAll<number>().as('c')).executeTakeFirstOrThrow();
      if (Number(c.c) >= n) break;
      await sleep(50);
    }
    const fannedOut = performance.now();
    const afterFanOut = await stateSize(instance.id);
    let done = 0;
    const samples: Array<{ completed: number; stateBytes: number; rev: number }> = [];
    while (done < n) {
      const jobs = await b.commands.fetchAndLock({ workerId: 'bench', topics: ['work'], maxTasks: 500, lockMs: 600_000 });
      if (jobs.length === 0) {
        await sleep(20);
        continue;
      }
      await Promise.all(jobs.map((j, k) => b.commands.completeJob(j.id, 'bench', { r: k })));
      done += jobs.length;
      const s = await stateSize(instance.id);
      samples.push({ completed: done, stateBytes: s.bytes, rev: s.rev });
    }
    for (;;) {
      const row = await b.db.selectFrom('process_instance').select(['status', 'rev']).where('id', '=', instance.id).executeTakeFirstOrThrow();
      if (row.status === 'completed') break;
      await sleep(50);
    }
    const end = performance.now();
    const final = await stateSize(instance.id);
    await b.close();
    const w = await pgWrites(iso.pg, iso.schema, lsn);
    const steps = final.rev;
    const maxState = Math.max(afterFanOut.bytes, ...samples.map((s) => s.stateBytes));
    return {
      items: n,
      fanOutMs: round(fannedOut - t0, 0),
      totalMs: round(end - t0, 0),
      steps,
      stateBytesAfterFanOut: afterFanOut.bytes,
      stateBytesMax: maxState,
      stateBytesAtEnd: final.bytes,
      /** the instance row is rewritten whole at every step: its mean size, per step */
      stateBytesPerStep: round(samples.length ? mean(samples.map((s) => s.stateBytes)) : NaN, 0),
      pg: { ...w, rowsWrittenPerStep: round((w.rowsInserted + w.rowsUpdated + w.rowsDeleted) / Math.max(1, steps), 1), walBytesPerStepServerWide: round(w.walBytesServer / Math.max(1, steps), 0) },
    };
  } finally {
    await b.close();
    await iso.drop();
  }
}

if (isMain(import.meta.url)) {
  const N = Number(process.argv[2] ?? 10_000);
  const which = process.argv[3] ?? 'both';
  console.log(`\nParallel multi-instance of ${N} items (${new Date().toISOString()})\n`);
  if (which === 'both' || which === 'engine') {
    const e = await engineRun(N);
    console.log('| engine | status | fan-out ms | µs per completion, first 10 % | last 10 % | total ms | state bytes |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(`| pure | ${e.status} | ${e.fanOutMs} | ${e.firstUs} | ${e.lastUs} | ${e.totalMs} | ${Object.entries(e.stateBytes).map(([k, v]) => `${k}: ${v}`).join(', ')} |`);
  }
  if (which === 'both' || which === 'runtime') {
    const r = await runtimeRun(N);
    console.log('\n| runtime | fan-out ms | total ms (start → completed) | steps (instance revisions) | state bytes max / per step |');
    console.log('|---|---|---|---|---|');
    console.log(`| Postgres + BullMQ | ${r.fanOutMs} | ${r.totalMs} | ${r.steps} | ${r.stateBytesMax} / ${r.stateBytesPerStep} |`);
  }
  process.exit(0);
}
