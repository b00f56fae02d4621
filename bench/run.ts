/**
 * The benchmark harness of issue 6: references, then workloads 1–8, one run,
 * one machine. Prints a table and writes bench/results/<timestamp>-<form>.json.
 *
 *   npm run bench                      quick form (< 3 minutes; smaller sizes, shorter passes)
 *   npm run bench:full                 the sizes (about 15–25 minutes today)
 *   npm run bench -- --only=1,2,8      a subset (ref = the two references)
 *   BENCH_FULL=1 npm run bench         same as --full
 *   BENCH_CONCURRENCY=64 …             load-generator callers of workloads 1 and 3
 *
 * Every workload runs in its own Postgres schema and BullMQ prefix, dropped
 * afterwards; every Baton process it spawns dies with the harness.
 * What each figure means: bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { runBpmnEngine, type BpmnEngineResult } from './lib/bpmn-engine-ref.js';
import { runEngineOnly } from './lib/engine-only.js';
import { machineInfo, otherBenches, pgbench, type PgbenchResult } from './lib/reference.js';
import { loop, messages, serviceTask, straightThrough, userTask } from './lib/workloads.js';
import { cpuLine } from './lib/cpu.js';
import { runTimers } from './timers.js';
import { engineRun, runtimeRun } from './multi-instance.js';
import { round } from './lib/util.js';
import { cleanUpOnCrash, dropStale } from './lib/cluster.js';

const argv = process.argv.slice(2);
const full = argv.includes('--full') || /^(1|true|yes)$/i.test(process.env.BENCH_FULL ?? '');
const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',') ?? null;
const want = (k: string) => only === null || only.includes(k);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? (full ? 64 : 32));

const SIZES = full
  ? { pgbenchSec: 30, refMaxMs: 15_000, refMax: 20_000, engineMax: 200_000, engineMs: 5_000, engineLoop: 10_000, peakMs: 45_000, halfMs: 30_000, warmup: 500, svcPeakMs: 45_000, svcHalfMs: 30_000, userMs: 30_000, timers: 10_000, messages: 10_000, mi: 10_000, loop: 10_000 }
  : { pgbenchSec: 10, refMaxMs: 3_000, refMax: 5_000, engineMax: 50_000, engineMs: 1_500, engineLoop: 1_000, peakMs: 8_000, halfMs: 5_000, warmup: 100, svcPeakMs: 6_000, svcHalfMs: 5_000, userMs: 6_000, timers: 2_000, messages: 600, mi: 2_000, loop: 200 };

interface Row {
  workload: string;
  figure: string;
  value: string;
  target: string;
  ratio: string;
  pass: string;
}
const rows: Row[] = [];
const add = (workload: string, figure: string, value: number | string, target = '', ratio = '', pass: boolean | string = '') =>
  rows.push({ workload, figure, value: String(value), target, ratio, pass: typeof pass === 'boolean' ? (pass ? 'PASS' : 'FAIL') : pass });
const lat = (l: { p50: number; p95?: number; p99: number; max?: number }) => `${l.p50} / ${l.p95 ?? '-'} / ${l.p99}`;

const results: Record<string, unknown> = {};
const errors: Record<string, string> = {};
const timings: Record<string, number> = {};
const started = performance.now();

async function step<T>(key: string, label: string, fn: () => Promise<T>): Promise<T | null> {
  const t = performance.now();
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${label}…`);
  try {
    const r = await fn();
    results[key] = r;
    return r;
  } catch (err) {
    errors[key] = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(` FAILED: ${String(err).slice(0, 500)}\n`);
    add(label, 'error', String(err).slice(0, 80), '', '', 'ERROR');
    return null;
  } finally {
    timings[key] = round((performance.now() - t) / 1000, 1);
    for (const o of otherBenches()) seenOthers.add(o);
    process.stderr.write(` ${timings[key]} s\n`);
    save(false);
  }
}

const machine = await machineInfo();
const form = full ? 'full' : 'quick';
const stamp = machine.at.replace(/[:.]/g, '-');
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const file = new URL(`${stamp}-${form}.json`, dir);
let totalSec = 0;
const seenOthers = new Set<string>(machine.otherBenchesAtStart);
/** Written after every workload too, so a run that dies half-way leaves what it measured. */
function save(complete: boolean): void {
  const loadAfter = os.loadavg().map((x) => round(x, 2));
  writeFileSync(
    file,
    `${JSON.stringify({ form, complete, machine: { ...machine, loadavgAfter: loadAfter, otherBenchesAtEnd: otherBenches(), otherBenchesSeen: [...seenOthers] }, sizes: SIZES, concurrency, seconds: totalSec, timings, table: rows, results, errors }, null, 2)}\n`,
  );
}
// A Postgres restart or any other surprise must not leave processes or schemas behind.
cleanUpOnCrash((what, err) => {
  errors[what] = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`\n${what}: ${String(err)}\n`);
  save(false);
});
const stale = await dropStale();
if (stale.length) process.stderr.write(`dropped schemas left by earlier runs: ${stale.join(', ')}\n`);
process.stderr.write(`Baton bench, ${form} form, ${machine.cpus.count} CPUs, load ${machine.loadavgBefore.join(' ')}, commit ${machine.git.commit.slice(0, 10)}${machine.git.dirty ? ' (dirty)' : ''}\n`);
if (machine.otherBenchesAtStart.length) process.stderr.write(`warning: another benchmark is running (${machine.otherBenchesAtStart.join('; ')}): figures will be skewed\n`);

// ---- references ---------------------------------------------------------------------
let pgb: PgbenchResult | null = null;
let ref: BpmnEngineResult | null = null;
if (want('ref') || want('1') || want('2') || want('8')) {
  pgb = await step('pgbench', 'reference: pgbench -N', () => pgbench(SIZES.pgbenchSec));
  if (pgb) add('reference', `pgbench -N, 8 clients, ${pgb.seconds} s: TPS`, pgb.tps);
  ref = await step('bpmnEngine', 'reference: bpmn-engine', () => runBpmnEngine(SIZES.refMax, SIZES.refMaxMs));
  if (ref) add('reference', `${ref.engine}, straight-through in-process: instances/s (${ref.instances} inst.)`, ref.instancesPerSec);
}
const toPg = (v: number) => (pgb ? `${round(v / pgb.tps, 3)} of pgbench` : '');

// ---- 8. engine alone (early: it wants a quiet CPU) --------------------------------------
if (want('8')) {
  const e = await step('engineOnly', '8. engine only', () => runEngineOnly({ instances: SIZES.engineMax, maxMsPerModel: SIZES.engineMs, loopRounds: SIZES.engineLoop }));
  if (e) {
    const st = e.rows.find((r) => r.model === 'straight')!;
    const x = ref ? round(st.instancesPerSec / ref.instancesPerSec, 1) : NaN;
    add('8. engine only', 'straight-through: instances/s (sandboxed script + condition)', st.instancesPerSec, '≥ 40,000', ref ? `${x}× bpmn-engine` : '', st.instancesPerSec >= 40_000);
    add('8. engine only', 'straight-through vs bpmn-engine, same model, same run', ref ? `${x}×` : 'n/a', '≥ 100×', '', ref ? x >= 100 : '');
    for (const r of e.rows) {
      const refT = r.model === 'straight' && ref ? `${round(r.transitionsPerSec / ref.transitionsPerSec, 1)}× bpmn-engine` : '';
      add('8. engine only', `${r.model}: transitions/s (${r.flowsPerInstance} flows/inst., ${r.instancesPerSec} inst/s)`, r.transitionsPerSec, '', refT);
    }
    add('8. engine only', `loop, engine alone: µs of the 10th vs the ${e.loop.rounds}th step, replayed alternately ${e.loop.replays}× each (median)`, `${e.loop.replayUsAt10} vs ${e.loop.replayUsAtLast} (×${e.loop.replayRatio})`, '≤ 1.2×', '', e.loop.replayRatio <= 1.2);
    add('8. engine only', `loop, engine alone, in sequence: µs/step, median of steps 10–59 vs of the last 50`, `${e.loop.usAt10} vs ${e.loop.usAtLast} (×${e.loop.ratio})`);
  }
}

/** How the half-peak window stood to Postgres checkpoints (see checkpointNow in lib/workloads.ts). */
function checkpoints(h: { checkpointedBefore: boolean; checkpointsDuring: number }): string {
  return `; ${h.checkpointedBefore ? 'checkpoint before' : 'no checkpoint before (not permitted)'}, ${h.checkpointsDuring} begun during`;
}

// ---- 1. straight-through ------------------------------------------------------------------
if (want('1')) {
  const r = await step('straightThrough', '1. straight-through', () => straightThrough({ concurrency, peakMs: SIZES.peakMs, halfMs: SIZES.halfMs, warmup: SIZES.warmup }));
  if (r) {
    const w = '1. straight-through (API + 2 step workers)';
    const ratio = pgb ? r.peak.completedPerSec / pgb.tps : NaN;
    add(w, `completed PI/s at peak (${concurrency} callers, ${r.peak.seconds} s)`, r.peak.completedPerSec, '≥ 1,000', toPg(r.peak.completedPerSec), r.peak.completedPerSec >= 1000);
    add(w, 'completed PI/s ÷ pgbench -N TPS', pgb ? round(ratio, 3) : 'n/a', '≥ 0.40', '', pgb ? ratio >= 0.4 : '');
    add(w, 'latency at peak, client p50 / p95 / p99 ms', lat(r.peak.clientLatencyMs));
    add(w, 'CPU ms per completed instance at peak', cpuLine(r.peak.cpu));
    add(w, `latency at half peak (${r.half.targetRate}/s${checkpoints(r.half)}), client p50 / p95 / p99 ms`, lat(r.half.clientLatencyMs), 'p99 < 50 ms', '', r.half.clientLatencyMs.p99 < 50);
    add(
      w,
      'latency at half peak, server (ended_at − started_at) p50 / p95 / p99 ms',
      // 0 when the instance completes inside the transaction that started it (both are that transaction's now()).
      r.half.serverLatencyMs.max === 0 ? '0 / 0 / 0 (completed in the start transaction)' : lat(r.half.serverLatencyMs),
    );
    add(w, 'Postgres rows written / bytes retained per completed instance', `${r.pg.rowsWrittenPerInstance} / ${r.pg.bytesRetainedPerInstance}`);
    if (r.peak.failed || r.half.failed || r.half.dropped) add(w, 'failed / dropped requests', `${r.peak.failed + r.half.failed} / ${r.half.dropped}`, '0', '', false);
  }
}

// ---- 2. service task with an external worker ------------------------------------------------
if (want('2')) {
  const r = await step('serviceTask', '2. service task + external worker', () =>
    serviceTask({ starters: Math.max(8, concurrency / 2), workers: 2, maxTasks: 50, backlog: 500, peakMs: SIZES.svcPeakMs, halfMs: SIZES.svcHalfMs, targetRate: 500 }),
  );
  if (r) {
    const w = '2. service task, external worker over HTTP';
    add(w, `completed PI/s at peak (${r.starters} starters, ${r.workers} workers × ${r.maxTasks} jobs)`, r.peak.completedPerSec, '≥ 500', toPg(r.peak.completedPerSec), r.peak.completedPerSec >= 500);
    add(w, 'latency at peak (ended_at − started_at) p50 / p95 / p99 ms', lat(r.peak.serverLatencyMs));
    add(w, 'CPU ms per completed instance at peak', cpuLine(r.peak.cpu));
    add(w, `latency at max(half peak, 500/s) (${r.half.targetRate}/s${checkpoints(r.half)}) p50 / p95 / p99 ms`, lat(r.half.serverLatencyMs), 'p99 < 100 ms', '', r.half.serverLatencyMs.p99 < 100);
    add(w, 'Postgres rows written / bytes retained per completed instance', `${r.pg.rowsWrittenPerInstance} / ${r.pg.bytesRetainedPerInstance}`);
  }
}

// ---- 3. user-task round trip ------------------------------------------------------------------
if (want('3')) {
  const r = await step('userTask', '3. user-task round trip', () => userTask({ concurrency, durationMs: SIZES.userMs }));
  if (r) {
    const w = '3. user-task round trip (start, list, complete)';
    add(w, `completions/s (${r.concurrency} callers)`, r.completionsPerSec, '', toPg(r.completionsPerSec));
    add(w, 'round trip p50 / p95 / p99 ms', lat(r.roundTripMs));
    add(w, 'complete call (waitMs) p50 / p95 / p99 ms', lat(r.completeCallMs));
    add(w, 'Postgres rows written / bytes retained per completed instance', `${r.pg.rowsWrittenPerInstance} / ${r.pg.bytesRetainedPerInstance}`);
  }
}

// ---- 4. timers -------------------------------------------------------------------------------------
if (want('4')) {
  const r = await step('timers', '4. timers', () => runTimers(SIZES.timers, 2));
  if (r) {
    const w = `4. timers (${r.timers} due in one second, ${r.schedulers} schedulers)`;
    add(w, 'fired', `${r.fired} of ${r.timers}`, `${r.timers}`, '', r.fired === r.timers);
    add(w, 'fire lateness (inbox row written − due) p50 / p99 / max ms', `${r.fireLatenessMs.p50} / ${r.fireLatenessMs.p99} / ${r.fireLatenessMs.max}`, 'p99 < 100 ms', '', r.fireLatenessMs.p99 < 100);
    add(w, 'doorbell at a step consumer − due, p50 / p99 / max ms', `${r.doorbellLatenessMs.p50} / ${r.doorbellLatenessMs.p99} / ${r.doorbellLatenessMs.max}`, '(p99 < 100 ms)', '', r.doorbellLatenessMs.p99 < 100 ? 'pass' : 'fail');
    add(w, 'timers fired twice', r.firedTwice, '0', '', r.firedTwice === 0);
  }
}

// ---- 5. messages -----------------------------------------------------------------------------------
if (want('5')) {
  const r = await step('messages', '5. messages', () => messages({ instances: SIZES.messages, concurrency }));
  if (r) {
    const w = `5. messages (${r.instances} waiting instances, ${r.instances} messages)`;
    add(w, 'correlations/s (publish answered "correlated")', r.correlationsPerSec, '', toPg(r.correlationsPerSec));
    add(w, 'publish → every instance completed, instances/s', r.publishToAllCompletedPerSec);
    add(w, 'correlated', `${r.correlated} of ${r.instances}`, `${r.instances}`, '', r.correlated === r.instances);
    if (r.startsFailed || r.publishFailed) add(w, 'starts / publishes refused by the API', `${r.startsFailed} / ${r.publishFailed}: ${(r.startFailures[0] ?? r.publishFailures[0] ?? '').slice(0, 120)}`, '0', '', false);
    add(w, 'start → all waiting (s), starts accepted/s', `${round(r.allWaitingAfterMs / 1000, 1)} s, ${r.startsAcceptedPerSec}/s`);
  }
}

// ---- 6. multi-instance --------------------------------------------------------------------------------
if (want('6')) {
  const r = await step('multiInstance', '6. multi-instance', () => runtimeRun(SIZES.mi));
  const e = await step('multiInstanceEngine', '6. multi-instance, engine alone', () => engineRun(SIZES.mi));
  if (r) {
    const w = `6. parallel multi-instance of ${r.items} items`;
    const s = r.totalMs / 1000;
    add(w, 'wall time start → completed (s)', round(s, 1), '< 30 s at 10,000', '', r.items >= 10_000 ? s < 30 : `n/a (${r.items} items)`);
    add(w, `steps; instance state bytes per step (mean / max)`, `${r.steps}; ${r.stateBytesPerStep} / ${r.stateBytesMax}`);
    add(w, 'Postgres rows written per step', r.pg.rowsWrittenPerStep);
  }
  if (e) add(`6. parallel multi-instance of ${e.items} items`, 'engine alone: µs per completion, first vs last 10 %', `${e.firstUs} vs ${e.lastUs}`);
}

// ---- 7. loop ---------------------------------------------------------------------------------------------
if (want('7')) {
  const r = await step('loop', '7. looping instance', () => loop({ rounds: SIZES.loop }));
  if (r) {
    const w = `7. one instance looping ${r.rounds} times through a user task`;
    add(w, `step ms: median around step 10 vs last 10 steps`, `${r.medianAround10Ms} vs ${r.medianLast10Ms} (×${r.ratioLastTo10})`, '≤ 1.2×', '', r.ratioLastTo10 <= 1.2);
    add(w, 'step ms: the 10th, the last', `${r.step10Ms}, ${r.stepLastMs}`);
    add(w, 'state bytes at step 10 / at the end; history rows', `${r.stateBytesAt10} / ${r.stateBytesAtEnd}; ${r.historyRows}`);
  }
}

// ---- output ---------------------------------------------------------------------------------------------------
totalSec = round((performance.now() - started) / 1000, 1);
const header: Row = { workload: 'workload', figure: 'figure', value: 'value', target: 'target', ratio: 'ratio to reference', pass: 'pass/fail' };
const cols = Object.keys(header) as Array<keyof Row>;
const md = [header, Object.fromEntries(cols.map((c) => [c, '---'])) as unknown as Row, ...rows].map((r) => `| ${cols.map((c) => r[c].replaceAll('|', '/')).join(' | ')} |`);

const memRows: string[] = ['| workload | process | RSS MB | peak RSS MB | children RSS MB (sandbox, tsx) |', '|---|---|---|---|---|'];
for (const [k, v] of Object.entries(results)) {
  const procs = (v as { processes?: Array<{ role: string; rssMb: number; peakMb: number; childrenRssMb: number }> }).processes;
  if (procs) for (const p of procs) memRows.push(`| ${k} | ${p.role} | ${p.rssMb} | ${(p as { peakMb: number }).peakMb} | ${p.childrenRssMb} |`);
}
const pgRows: string[] = ['| workload | completed instances | rows inserted / updated / deleted | rows per instance | bytes retained per instance | WAL bytes per instance (server-wide, upper bound) |', '|---|---|---|---|---|---|'];
for (const [k, v] of Object.entries(results)) {
  const p = (v as { pg?: { completedInstances?: number; rowsInserted: number; rowsUpdated: number; rowsDeleted: number; rowsWrittenPerInstance?: number; bytesRetainedPerInstance?: number; walBytesPerInstanceServerWide?: number } }).pg;
  if (p && p.completedInstances !== undefined) {
    pgRows.push(`| ${k} | ${p.completedInstances} | ${p.rowsInserted} / ${p.rowsUpdated} / ${p.rowsDeleted} | ${p.rowsWrittenPerInstance} | ${p.bytesRetainedPerInstance} | ${p.walBytesPerInstanceServerWide} |`);
  }
}

const loadAfter = os.loadavg().map((x) => round(x, 2));
save(true);
console.log(`\nBaton benchmarks, ${form} form${full ? '' : ' (smaller sizes: see the workload names)'} — ${machine.at}, commit ${machine.git.commit.slice(0, 10)}${machine.git.dirty ? ' (dirty tree)' : ''}`);
console.log(`${machine.cpus.count} × ${machine.cpus.model}, ${machine.memoryGb} GB, ${machine.os}, Node ${machine.node}, Postgres ${machine.postgres}, Redis ${machine.redis}`);
console.log(`load average before ${machine.loadavgBefore.join(' ')}, after ${loadAfter.join(' ')}; ${totalSec} s in all`);
console.log(seenOthers.size ? `other benchmark runs seen on this machine meanwhile (figures skewed): ${[...seenOthers].join('; ')}\n` : 'no other benchmark run seen meanwhile\n');
console.log(md.join('\n'));
console.log('\nMemory of each process at the end of its workload:\n');
console.log(memRows.join('\n'));
console.log('\nPostgres writes of each workload\'s schema (pg_stat_user_tables, read after its processes exited):\n');
console.log(pgRows.join('\n'));

console.log(`\nwritten: bench/results/${stamp}-${form}.json`);
process.exit(Object.keys(errors).length ? 1 : 0);
