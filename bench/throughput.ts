/**
 * End-to-end throughput of the core: start N instances of
 * start → script → user task → end, wait until all wait at the user task,
 * complete every task, wait until all completed. Runs in-process with the step
 * worker, service worker and scheduler roles, in embedded mode (PGlite +
 * in-process queue) and distributed mode (Postgres + BullMQ on this machine).
 *
 *   node --no-node-snapshot --import tsx bench/throughput.ts [N] [embedded|distributed|both]
 *
 * Prints a table. Latency = instance row's last update minus its start, i.e.
 * from the API's commit to the step's commit, as Postgres saw it.
 */
import { pino } from 'pino';
import pg from 'pg';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.js';
import { startBaton, type Baton } from '../src/boot.js';

const N = Number(process.argv[2] ?? 2000);
const which = process.argv[3] ?? 'both';
const PG_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const CONCURRENCY = 32;

const MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="bench-defs" targetNamespace="http://baton.dev/bench">
  <bpmn:process id="bench" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute" />
    <bpmn:scriptTask id="compute" scriptFormat="javascript"><bpmn:script>total = price * qty;</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="f4" />
    <bpmn:sequenceFlow id="f3" sourceRef="gw" targetRef="review"><bpmn:conditionExpression>total &gt; 10</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="end" />
    <bpmn:userTask id="review" />
    <bpmn:sequenceFlow id="f5" sourceRef="review" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>`;

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

async function waitCount(b: Baton, status: string, n: number): Promise<void> {
  for (;;) {
    const r = await b.db.selectFrom('process_instance').select(({ fn }) => fn.countAll<number>().as('c')).where('status', '=', status).executeTakeFirstOrThrow();
    if (Number(r.c) >= n) return;
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function latencies(b: Baton, status: string): Promise<number[]> {
  const rows = await sql<{ ms: number }>`select extract(epoch from (updated_at - started_at)) * 1000 as ms from process_instance where status = ${status}`.execute(b.db);
  return rows.rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

async function bench(mode: 'embedded' | 'distributed') {
  const schema = `bench_${process.pid}`;
  const config =
    mode === 'embedded'
      ? loadConfig({ LOG_LEVEL: 'silent', BATON_EXAMPLES: 'false' })
      : loadConfig({ DATABASE_URL: PG_URL, REDIS_URL, BATON_QUEUE_PREFIX: `bench_${process.pid}`, LOG_LEVEL: 'silent', BATON_EXAMPLES: 'false' });
  const b = await startBaton(config, ['step', 'service', 'scheduler'], {
    logger: pino({ level: 'silent' }),
    inMemory: true,
    healthServer: false,
    ...(mode === 'distributed' ? { schema } : {}),
  });
  try {
    await b.commands.deploy([{ name: 'bench.bpmn', content: MODEL }]);
    const t0 = performance.now();
    await pool(Array.from({ length: N }, (_, i) => i), CONCURRENCY, async (i) => {
      await b.commands.startInstance({ processKey: 'bench', variables: { price: 10 + (i % 7), qty: 2 } });
    });
    const accepted = performance.now();
    await waitCount(b, 'waiting', N);
    const waiting = performance.now();
    const startLat = await latencies(b, 'waiting');

    const tasks = await b.db.selectFrom('human_task').select('id').where('state', '=', 'open').execute();
    const t1 = performance.now();
    await pool(tasks, CONCURRENCY, async (t) => {
      await b.commands.completeTask(t.id, { approved: true });
    });
    const completedAccepted = performance.now();
    await waitCount(b, 'completed', N);
    const done = performance.now();
    const endLat = await latencies(b, 'completed');
    return {
      mode,
      N,
      startAcceptPerSec: Math.round(N / ((accepted - t0) / 1000)),
      startToWaitingPerSec: Math.round(N / ((waiting - t0) / 1000)),
      completeAcceptPerSec: Math.round(N / ((completedAccepted - t1) / 1000)),
      completeToEndPerSec: Math.round(N / ((done - t1) / 1000)),
      startLatencyP50: pct(startLat, 50).toFixed(1),
      startLatencyP99: pct(startLat, 99).toFixed(1),
      lifetimeP50: pct(endLat, 50).toFixed(0),
    };
  } finally {
    await b.close();
    if (mode === 'distributed') {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    }
  }
}

const rows = [];
for (const mode of ['embedded', 'distributed'] as const) {
  if (which === 'both' || which === mode) rows.push(await bench(mode));
}
console.log(`\nBaton core throughput, ${N} instances, ${CONCURRENCY} concurrent clients, roles in one process (${new Date().toISOString()})\n`);
console.log('| mode | starts accepted/s | start→waiting inst/s | start latency p50 ms | p99 ms | completions accepted/s | complete→end inst/s |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.mode} | ${r.startAcceptPerSec} | ${r.startToWaitingPerSec} | ${r.startLatencyP50} | ${r.startLatencyP99} | ${r.completeAcceptPerSec} | ${r.completeToEndPerSec} |`);
}
process.exit(0);
