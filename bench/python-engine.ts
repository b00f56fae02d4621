/**
 * Issue 14's speed target: the straight-through model with a Python script
 * and a Python condition (bench/models/python-straight.bpmn, SpiffArena
 * style), through Baton's engine alone, against SpiffWorkflow 3.1.2 running
 * the same model in-process (bench/spiffworkflow/straight.py; its newest
 * result JSON in bench/results/ is the reference). Three runs each with the
 * Python fast path on (the default) and off (every evaluation a round trip
 * to the Pyodide sandbox), medians, ratio to SpiffWorkflow's median.
 *
 *   npm run bench:python-engine -- [instances=20000]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { createPythonEvaluator, evaluatorsOf } from '../src/expressions/index.js';
import { engineOnlyModel, runtimeEvaluator } from './lib/engine-only.js';
import { median, round } from './lib/util.js';

const instances = Number(process.argv[2] ?? 20_000);
const RUNS = 3;
const results = new URL('./results/', import.meta.url);

function spiffReference(): { perSecond: number; file: string } | null {
  const files = readdirSync(results).filter((f) => f.endsWith('-spiffworkflow-straight.json')).sort();
  const file = files.at(-1);
  if (!file) return null;
  const j = JSON.parse(readFileSync(new URL(file, results), 'utf8')) as { median?: number; runs?: Array<{ perSecond: number }> };
  const perSecond = j.median ?? median((j.runs ?? []).map((r) => r.perSecond));
  return Number.isFinite(perSecond) ? { perSecond, file } : null;
}

const config = loadConfig({});
const js = runtimeEvaluator();
const rows: Array<{ fastPath: boolean; run: number; instancesPerSec: number; ms: number }> = [];
try {
  for (const fastPath of [true, false]) {
    const python = createPythonEvaluator({ timeoutMs: config.scriptTimeoutMs, memoryLimitMb: config.pythonMemoryMb, fastPath });
    try {
      if (!(await python.ready(60_000))) throw new Error('the Python sandbox did not start');
      const evaluators = evaluatorsOf({ javascript: js, python });
      for (let run = 1; run <= RUNS; run++) {
        const n = fastPath ? instances : Math.min(instances, 5000);
        const r = await engineOnlyModel(evaluators, 'python-straight.bpmn', 'python_straight', n, () => ({ price: 10, qty: 3 }));
        rows.push({ fastPath, run, instancesPerSec: r.instancesPerSec, ms: r.ms });
        console.log(`fast path ${fastPath ? 'on ' : 'off'} run ${run}: ${r.instancesPerSec} instances/s (${r.instances} in ${r.ms} ms)`);
      }
    } finally {
      python.close();
    }
  }
} finally {
  js.close();
}

const spiff = spiffReference();
const med = (fast: boolean) => median(rows.filter((r) => r.fastPath === fast).map((r) => r.instancesPerSec));
const summary = {
  at: new Date().toISOString(),
  model: 'bench/models/python-straight.bpmn',
  instances,
  runs: rows,
  medianFastPath: med(true),
  medianSandboxOnly: med(false),
  spiffworkflow: spiff,
  ratioFastPath: spiff ? round(med(true) / spiff.perSecond, 2) : null,
  ratioSandboxOnly: spiff ? round(med(false) / spiff.perSecond, 2) : null,
};
console.table([
  { form: 'Baton engine, Python fast path (default)', instancesPerSec: summary.medianFastPath, vsSpiffWorkflow: summary.ratioFastPath },
  { form: 'Baton engine, every evaluation in Pyodide', instancesPerSec: summary.medianSandboxOnly, vsSpiffWorkflow: summary.ratioSandboxOnly },
  { form: `SpiffWorkflow 3.1.2 (${spiff?.file ?? 'no result on file'})`, instancesPerSec: spiff?.perSecond ?? null, vsSpiffWorkflow: 1 },
]);
const out = new URL(`${summary.at.replace(/[:.]/g, '-')}-python-engine.json`, results);
writeFileSync(out, JSON.stringify(summary, null, 2) + '\n');
console.log(`written ${out.pathname}`);
