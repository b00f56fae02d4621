/**
 * Issue 15 item 3's measure: how fast `/health` answers while user scripts
 * run at full load. A distributed cluster (an API, one step worker; roles
 * as separate processes, bench/lib/cluster.ts) runs instances of a model
 * whose script spins for `scriptMs` (a JavaScript busy loop, inside the
 * sandbox's limits); `/health` of the API and of the step worker's health
 * port is asked every 20 ms meanwhile, each answer timed. Twice: with the
 * API stepping what it accepted itself (the default) and with
 * BATON_API_INLINE_STEPS=false (only the step worker runs scripts).
 *
 *   node --no-node-snapshot --import tsx bench/health-under-load.ts [seconds=10] [scriptMs=50] [concurrency=8]
 *
 * The target is p99 < 100 ms on every role. While the engine and its
 * synchronous evaluators run on a role's event loop, a role's /health waits
 * for the step in progress: this prints by how much.
 */
import { writeFileSync } from 'node:fs';
import { isolate, startCluster } from './lib/cluster.js';
import { latencySummary, sleep } from './lib/util.js';

const seconds = Number(process.argv[2] ?? 10);
const scriptMs = Number(process.argv[3] ?? 50);
const concurrency = Number(process.argv[4] ?? 8);

const model = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="bench">
  <bpmn:process id="spin" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="work"/>
    <bpmn:scriptTask id="work" scriptFormat="javascript"><bpmn:script>const until = Date.now() + ${scriptMs}; let n = 0; while (Date.now() &lt; until) { n++; } spun = n &gt; 0;</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="work" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>`;

async function timed(url: string): Promise<number> {
  const t = performance.now();
  try {
    await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch {
    return 10_000;
  }
  return performance.now() - t;
}

async function run(label: string, env: Record<string, string>) {
  const iso = await isolate(`health_${label}`);
  const cluster = await startCluster(iso, { stepWorkers: 1, env: { SCRIPT_TIMEOUT_MS: String(Math.max(1000, scriptMs * 4)), ...env } });
  try {
    const post = (path: string, body: unknown) => fetch(`${cluster.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const dep = await post('/v1/deployments', { files: [{ name: 'spin.bpmn', content: model }] });
    if (!dep.ok) throw new Error(`deploy: ${dep.status} ${await dep.text()}`);
    const worker = cluster.procs.find((p) => p.role.startsWith('step-worker'))!;
    const probes: Record<string, number[]> = { api: [], 'step-worker': [] };
    let started = 0;
    let stop = false;
    const until = Date.now() + seconds * 1000;
    const starters = Array.from({ length: concurrency }, async () => {
      while (!stop && Date.now() < until) {
        const r = await post('/v1/process-instances', { processKey: 'spin' }).catch(() => null);
        if (r?.ok) started++;
        await r?.text();
      }
    });
    const probe = async (name: string, url: string) => {
      while (!stop && Date.now() < until) {
        probes[name]!.push(await timed(url));
        await sleep(20);
      }
    };
    await Promise.all([...starters, probe('api', `${cluster.base}/health`), probe('step-worker', `http://127.0.0.1:${worker.healthPort}/health`)]);
    stop = true;
    return { label, started, scriptMs, api: latencySummary(probes['api']!), stepWorker: latencySummary(probes['step-worker']!) };
  } finally {
    await cluster.stop();
    await iso.drop();
  }
}

const rows = [await run('inline', {}), await run('worker_only', { BATON_API_INLINE_STEPS: 'false' })];
console.table(
  rows.flatMap((r) => [
    { form: r.label, role: 'api', instancesStarted: r.started, p50: r.api.p50, p99: r.api.p99, max: r.api.max },
    { form: r.label, role: 'step-worker', instancesStarted: r.started, p50: r.stepWorker.p50, p99: r.stepWorker.p99, max: r.stepWorker.max },
  ]),
);
const at = new Date().toISOString();
const out = new URL(`./results/${at.replace(/[:.]/g, '-')}-health-under-load.json`, import.meta.url);
writeFileSync(out, JSON.stringify({ at, seconds, scriptMs, concurrency, rows }, null, 2) + '\n');
console.log(`written ${out.pathname}`);
