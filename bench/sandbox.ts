/**
 * Micro-benchmark of the script sandbox (src/expressions).
 *
 *   node --no-node-snapshot --import tsx bench/sandbox.ts
 *
 * Prints µs per call for conditions, expressions and scripts with a warm
 * compile cache, and for a new source on every call (compile included).
 */
import { createEvaluator } from '../src/expressions/index.js';

const evaluator = createEvaluator();

const variables = {
  amount: 1500,
  customer: { name: 'Ada', tier: 'gold', tags: ['a', 'b'] },
  order: { items: [{ sku: 'x', qty: 2, price: 10 }, { sku: 'y', qty: 1, price: 5 }] },
  approved: false,
};

function measure(label: string, iterations: number, fn: (i: number) => void): { case: string; 'µs/call': number; calls: number } {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn(i); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - start);
  return { case: label, 'µs/call': Math.round(ns / iterations / 10) / 100, calls: iterations };
}

let seq = 0;
const withBig = { ...variables, big: Array.from({ length: 1000 }, (_, i) => ({ i, label: `item ${i}` })) };
const rows = [
  measure('condition, cached', 50_000, () => evaluator.condition('amount > 1000 && customer.tier === "gold"', variables)),
  measure('condition, no variables read', 50_000, () => evaluator.condition('true', variables)),
  measure('expression, cached', 50_000, () => evaluator.expression('order.items.map(i => i.qty * i.price).reduce((a, b) => a + b, 0)', variables)),
  measure('script, cached', 50_000, () =>
    evaluator.script('let sum = 0;\nfor (const i of order.items) sum += i.qty * i.price;\ntotal = sum;\napproved = total > 20;', variables),
  ),
  measure('expression, new source each call', 5_000, () => evaluator.expression(`amount + ${seq++}`, variables)),
  measure('script, new source each call', 5_000, () => evaluator.script(`total = amount * ${seq++};`, variables)),
  measure('condition, 1,000-item variable not read', 10_000, () => evaluator.condition('amount > 1000', withBig)),
  measure('expression, 1,000-item variable read', 10_000, () => evaluator.expression('big.length', withBig)),
];
console.table(rows);
evaluator.close();
