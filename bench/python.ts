/**
 * Micro-benchmark of the Python evaluator (src/expressions/python), beside
 * the JavaScript sandbox with its fast path off (the same round trip to a
 * sandbox process, another interpreter).
 *
 *   node --no-node-snapshot --import tsx bench/python.ts [rounds]
 *
 * Prints the time to the first answer (Pyodide's load), then µs per call of
 * a trivial condition and a small script with a warm compile cache: best
 * and median of `rounds` rounds (default 5).
 */
import { createEvaluator } from '../src/expressions/index.js';
import { createPythonEvaluator } from '../src/expressions/python/index.js';
import type { Evaluator } from '../src/expressions/types.js';

const rounds = Math.max(1, Number(process.argv[2] ?? 5));
const ITERATIONS = 2000;

type Row = { case: string; 'best µs/call': number; 'median µs/call': number; calls: number };

function measure(label: string, fn: (i: number) => void): Row {
  for (let i = 0; i < 500; i++) fn(i); // warm-up
  const perCall: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) fn(i);
    perCall.push(Number(process.hrtime.bigint() - start) / ITERATIONS / 1000);
  }
  perCall.sort((a, b) => a - b);
  const round1 = (n: number) => Math.round(n * 10) / 10;
  return { case: label, 'best µs/call': round1(perCall[0] ?? 0), 'median µs/call': round1(perCall[Math.floor(perCall.length / 2)] ?? 0), calls: ITERATIONS };
}

function cases(name: string, ev: Evaluator, condition: string, script: string): Row[] {
  return [
    measure(`${name} condition \`${condition}\``, (i) => ev.condition(condition, { amount: i, approved: true })),
    measure(`${name} script \`${script.replace(/\n/g, '; ')}\``, (i) => ev.script(script, { price: i, qty: 3 })),
  ];
}

const started = performance.now();
const python = createPythonEvaluator();
python.condition('True', {});
const loadMs = Math.round(performance.now() - started);
const js = createEvaluator({ fastPath: false });
js.condition('true', {});
try {
  console.log(`Python sandbox process ready (Pyodide loaded) after ${loadMs} ms`);
  console.table([
    ...cases('Python', python, 'amount > 1000 and approved', 'total = price * qty\nbig = total > 100'),
    ...cases('JavaScript (no fast path)', js, 'amount > 1000 && approved', 'total = price * qty; big = total > 100'),
  ]);
} finally {
  python.close();
  js.close();
}
