/**
 * Micro-benchmark of the Python evaluator (src/expressions/python), with
 * and without its fast path (python/simple.ts: sources in its small grammar
 * evaluated in this process), beside the JavaScript sandbox with its fast
 * path off (the same round trip to a sandbox process, another interpreter).
 *
 *   node --no-node-snapshot --import tsx bench/python.ts [rounds]
 *
 * Prints the time to the first answer (Pyodide's load), then µs per call of
 * a trivial condition, a condition with `and`, and a small script with a
 * warm compile cache: best and median of `rounds` rounds (default 5).
 */
import { createEvaluator } from '../src/expressions/index.js';
import { createPythonEvaluator } from '../src/expressions/python/index.js';
import type { Evaluator } from '../src/expressions/types.js';

const rounds = Math.max(1, Number(process.argv[2] ?? 5));
/** Calls per round: the fast path answers in microseconds, so it gets more of them. */
const SANDBOX_CALLS = 2000;
const FAST_CALLS = 100_000;

type Row = { case: string; 'best µs/call': number; 'median µs/call': number; calls: number };

function measure(label: string, iterations: number, fn: (i: number) => void): Row {
  for (let i = 0; i < Math.min(iterations, 2000); i++) fn(i); // warm-up
  const perCall: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn(i);
    perCall.push(Number(process.hrtime.bigint() - start) / iterations / 1000);
  }
  perCall.sort((a, b) => a - b);
  const round2 = (n: number) => Math.round(n * 100) / 100;
  return { case: label, 'best µs/call': round2(perCall[0] ?? 0), 'median µs/call': round2(perCall[Math.floor(perCall.length / 2)] ?? 0), calls: iterations };
}

function cases(name: string, ev: Evaluator, iterations: number, conditions: string[], script: string): Row[] {
  return [
    ...conditions.map((condition) =>
      measure(`${name} condition \`${condition}\``, iterations, (i) => ev.condition(condition, { amount: i, approved: true })),
    ),
    measure(`${name} script \`${script.replace(/\n/g, '; ')}\``, iterations, (i) => ev.script(script, { price: i, qty: 3, amount: i })),
  ];
}

const started = performance.now();
const python = createPythonEvaluator();
python.condition('len([]) == 0', {}); // not the fast path's: waits for Pyodide
const loadMs = Math.round(performance.now() - started);
const pythonSandbox = createPythonEvaluator({ fastPath: false });
pythonSandbox.condition('True', {});
const js = createEvaluator({ fastPath: false });
js.condition('true', {});
const PY_CONDITIONS = ['amount > 1000', 'amount > 1000 and approved'];
const PY_SCRIPT = 'total = price * qty\napproved = amount < 5000';
try {
  console.log(`Python sandbox process ready (Pyodide loaded) after ${loadMs} ms`);
  console.table([
    ...cases('Python fast path', python, FAST_CALLS, PY_CONDITIONS, PY_SCRIPT),
    ...cases('Python sandbox (fastPath: false)', pythonSandbox, SANDBOX_CALLS, PY_CONDITIONS, PY_SCRIPT),
    ...cases('JavaScript (no fast path)', js, SANDBOX_CALLS, ['amount > 1000', 'amount > 1000 && approved'], 'total = price * qty; approved = amount < 5000'),
  ]);
} finally {
  python.close();
  pythonSandbox.close();
  js.close();
}
