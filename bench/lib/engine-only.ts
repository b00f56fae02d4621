/**
 * Workload 8: the engine alone (src/engine), in this process, with the same
 * sandboxed evaluator the step worker builds (src/expressions createEvaluator
 * with the config's default limits: scripts and conditions run in the
 * isolated-vm child process). No Postgres, no queue: what one instance costs
 * the interpreter, to compare with bpmn-engine on the same model.
 *
 * A transition is a sequence flow taken (the engine's `flow_taken` history
 * entries), counted on the real run, not assumed from the model.
 */
import { readFileSync } from 'node:fs';
import { compileProcess } from '../../src/bpmn/index.js';
import { applyEvent, startInstance } from '../../src/engine/index.js';
import type { ProcessGraph } from '../../src/bpmn/types.js';
import type { Effect, EngineContext, EngineEvent, InstanceState } from '../../src/engine/types.js';
import { createEvaluator, createPythonEvaluator, evaluatorsOf, type Evaluators, type PythonEvaluator, type SandboxEvaluator } from '../../src/expressions/index.js';
import { loadConfig } from '../../src/config.js';
import { uuidv7 } from '../../src/ids.js';
import { isMain, round } from './util.js';

const model = (name: string) => readFileSync(new URL(`../models/${name}`, import.meta.url), 'utf8');

export interface EngineOnlyRow {
  model: string;
  instances: number;
  ms: number;
  instancesPerSec: number;
  transitionsPerSec: number;
  /** engine calls (start + events) per second */
  stepsPerSec: number;
  flowsPerInstance: number;
}

function flows(effects: Effect[]): number {
  let n = 0;
  for (const e of effects) if (e.type === 'history' && e.entry.event === 'flow_taken') n++;
  return n;
}

/** The runtime's evaluator, with the limits a step worker gets from a default config. */
export function runtimeEvaluator(): SandboxEvaluator {
  const config = loadConfig({});
  return createEvaluator({ timeoutMs: config.scriptTimeoutMs, memoryLimitMb: config.scriptMemoryMb });
}

/** The runtime's Python evaluator, with the config's default limits. */
export function runtimePythonEvaluator(): PythonEvaluator {
  const config = loadConfig({});
  return createPythonEvaluator({ timeoutMs: config.scriptTimeoutMs, memoryLimitMb: config.pythonMemoryMb });
}

function ctxWith(evaluators: Evaluators): EngineContext {
  // Same shape as the step runner's context (src/runtime/step.ts).
  return { now: () => new Date(), newId: () => uuidv7(), evaluators };
}

/** One instance from start to its end; answers every wait with the event the runtime would deliver. */
function runInstance(graph: ProcessGraph, ctx: EngineContext, variables: Record<string, unknown>): { flows: number; steps: number; status: string } {
  let r = startInstance(graph, { type: 'start', variables: variables as never }, ctx);
  let taken = flows(r.effects);
  let steps = 1;
  let state: InstanceState = r.state;
  let effects = r.effects;
  while (state.status === 'running' || state.status === 'waiting') {
    const next = answer(effects);
    if (!next) break;
    r = applyEvent(graph, state, next, ctx);
    state = r.state;
    effects = r.effects;
    taken += flows(effects);
    steps++;
  }
  return { flows: taken, steps, status: state.status };
}

function answer(effects: Effect[]): EngineEvent | null {
  for (const e of effects) {
    if (e.type === 'serviceJobCreated') return { type: 'serviceJobCompleted', jobId: e.job.id, variables: { done: true } };
    if (e.type === 'humanTaskOpened') return { type: 'humanTaskCompleted', taskId: e.task.id, variables: { ok: true } };
    if (e.type === 'subscriptionOpened' && e.subscription.kind === 'message') {
      return { type: 'messageReceived', subscriptionId: e.subscription.id, name: e.subscription.name, variables: { got: true } };
    }
  }
  return null;
}

export async function engineOnlyModel(
  evaluators: Evaluators,
  file: string,
  key: string,
  maxInstances: number,
  vars: (i: number) => Record<string, unknown>,
  maxMs = Infinity,
): Promise<EngineOnlyRow> {
  const graph = await compileProcess(model(file), key, file);
  const ctx = ctxWith(evaluators);
  for (let i = 0; i < Math.min(500, maxInstances / 10); i++) runInstance(graph, ctx, vars(i)); // warm-up
  let totalFlows = 0;
  let totalSteps = 0;
  let instances = 0;
  const t0 = performance.now();
  for (let i = 0; i < maxInstances && (i % 100 !== 0 || performance.now() - t0 < maxMs); i++, instances++) {
    const r = runInstance(graph, ctx, vars(i));
    if (r.status !== 'completed') throw new Error(`engine-only ${key}: instance ended ${r.status}`);
    totalFlows += r.flows;
    totalSteps += r.steps;
  }
  const ms = performance.now() - t0;
  return {
    model: key,
    instances,
    ms: Math.round(ms),
    instancesPerSec: Math.round(instances / (ms / 1000)),
    transitionsPerSec: Math.round(totalFlows / (ms / 1000)),
    stepsPerSec: Math.round(totalSteps / (ms / 1000)),
    flowsPerInstance: round(totalFlows / instances, 2),
  };
}

export async function runEngineOnly(opts: { instances: number; maxMsPerModel?: number; loopRounds: number }): Promise<{ rows: EngineOnlyRow[]; loop: EngineLoopResult }> {
  const evaluator = runtimeEvaluator();
  const python = runtimePythonEvaluator();
  const evaluators = evaluatorsOf({ javascript: evaluator, python });
  try {
    evaluator.condition('true', {}); // wait for the sandbox processes
    await python.ready(60_000);
    const n = opts.instances;
    const ms = opts.maxMsPerModel ?? Infinity;
    const rows = [
      await engineOnlyModel(evaluators, 'straight-through.bpmn', 'straight', n, (i) => ({ price: 10 + (i % 7), qty: 2 }), ms),
      await engineOnlyModel(evaluators, 'service-task.bpmn', 'service', n, (i) => ({ n: i }), ms),
      await engineOnlyModel(evaluators, 'user-task.bpmn', 'usertask', n, (i) => ({ n: i }), ms),
      await engineOnlyModel(evaluators, 'message-wait.bpmn', 'msgwait', n, (i) => ({ key: `k${i}` }), ms),
      // SpiffArena's dialect: the same script + condition in Python (bench/spiffworkflow/straight.py runs it in SpiffWorkflow)
      await engineOnlyModel(evaluators, 'python-straight.bpmn', 'python_straight', n, () => ({ price: 10, qty: 3 }), ms),
    ];
    const loop = await engineLoop(evaluator, opts.loopRounds);
    return { rows, loop };
  } finally {
    evaluator.close();
    python.close();
  }
}

export interface EngineLoopResult {
  rounds: number;
  /** in sequence: µs per engine call, median of steps 10–59 / of the last 50 steps */
  usAt10: number;
  usAtLast: number;
  ratio: number;
  /**
   * replayed: the 10th and the last step applied again, alternately, from
   * their saved states (each from a fresh JSON parse), `replays` times each;
   * median µs of each, and their ratio
   */
  replays: number;
  replayUsAt10: number;
  replayUsAtLast: number;
  replayRatio: number;
  stateBytesAt10: number;
  stateBytesAtLast: number;
}

const medianOf = (xs: number[]) => {
  const w = [...xs].sort((a, b) => a - b);
  return w[Math.floor(w.length / 2)] ?? NaN;
};

/**
 * The loop model through the engine alone: is the 10,000th step as cheap as
 * the 10th? Timing the steps in sequence compares the start of the run with
 * its end, so a GC or another process busy near the end reads as growth (one
 * full run: ×1.92 with the very same state size). The replay compares the
 * two steps themselves: both saved, then applied again alternately.
 */
export async function engineLoop(evaluator: SandboxEvaluator, rounds: number, replays = 500): Promise<EngineLoopResult> {
  const graph = await compileProcess(model('loop.bpmn'), 'loop', 'loop.bpmn');
  const ctx = ctxWith(evaluatorsOf({ javascript: evaluator }));
  let r = startInstance(graph, { type: 'start', variables: { i: 0, rounds } }, ctx);
  const us: number[] = [];
  const bytes: number[] = [];
  const saved: Array<{ json: string; ev: NonNullable<ReturnType<typeof answer>> }> = [];
  while (r.state.status !== 'completed') {
    const ev = answer(r.effects);
    if (!ev) throw new Error(`engine loop stuck at ${us.length}: ${r.state.status}`);
    // The runtime parses the state fresh for every step; a JSON round trip
    // here keeps this comparable (and measures the state's size).
    const json = JSON.stringify(r.state);
    bytes.push(json.length);
    if (us.length === 9) saved[0] = { json, ev };
    saved[1] = { json, ev };
    const state = JSON.parse(json) as InstanceState;
    const t = performance.now();
    r = applyEvent(graph, state, ev, ctx);
    us.push((performance.now() - t) * 1000);
  }
  const [at10, atLast] = saved;
  if (!at10 || !atLast) throw new Error(`the loop ran ${us.length} steps, fewer than 10`);
  const replayed: [number[], number[]] = [[], []];
  for (let k = 0; k < replays; k++) {
    for (const which of k % 2 === 0 ? [0, 1] : [1, 0]) {
      const { json, ev } = which === 0 ? at10 : atLast;
      const state = JSON.parse(json) as InstanceState;
      const t = performance.now();
      applyEvent(graph, state, ev, ctx);
      replayed[which]!.push((performance.now() - t) * 1000);
    }
  }
  // Single µs-level samples are mostly GC and scheduler noise: compare medians.
  const usAt10 = medianOf(us.slice(9, 59));
  const usAtLast = medianOf(us.slice(-50));
  const replayUsAt10 = medianOf(replayed[0]);
  const replayUsAtLast = medianOf(replayed[1]);
  return {
    rounds: us.length,
    usAt10: round(usAt10),
    usAtLast: round(usAtLast),
    ratio: round(usAtLast / usAt10, 2),
    replays,
    replayUsAt10: round(replayUsAt10),
    replayUsAtLast: round(replayUsAtLast),
    replayRatio: round(replayUsAtLast / replayUsAt10, 2),
    stateBytesAt10: bytes[9] ?? NaN,
    stateBytesAtLast: bytes[bytes.length - 1] ?? NaN,
  };
}

if (isMain(import.meta.url)) {
  const out = await runEngineOnly({ instances: Number(process.argv[2] ?? 5000), loopRounds: Number(process.argv[3] ?? 1000) });
  console.table(out.rows);
  console.log(out.loop);
}
