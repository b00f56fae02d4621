/**
 * Micro-benchmark of the script sandbox (src/expressions).
 *
 *   node --no-node-snapshot --import tsx bench/sandbox.ts [rounds]
 *
 * Prints µs per call for conditions, expressions and scripts with a warm
 * compile cache, for a new source on every call (compile included), and for
 * large variables; then, in ms, what a sandbox process costs to start and
 * how long a runaway Map takes to end as `script_memory` (a new sandbox
 * process included).
 *
 * Each case runs `rounds` times (default 5) and reports the best and the
 * median round: on a shared machine the best round is the cost of the code,
 * the median what neighbours leave of it.
 */
import { createEvaluator, type SandboxEvaluator } from '../src/expressions/index.js';

const rounds = Math.max(1, Number(process.argv[2] ?? 5));

const variables = {
  amount: 1500,
  customer: { name: 'Ada', tier: 'gold', tags: ['a', 'b'] },
  order: { items: [{ sku: 'x', qty: 2, price: 10 }, { sku: 'y', qty: 1, price: 5 }] },
  approved: false,
};

type Row = { case: string; 'best µs/call': number; 'median µs/call': number; calls: number };

function measure(label: string, iterations: number, fn: (i: number) => void): Row {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn(i); // warm-up
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

function ms(fn: () => void): number {
  const start = performance.now();
  fn();
  return Math.round(performance.now() - start);
}

const evaluator = createEvaluator();
evaluator.condition('true', {}); // wait for the sandbox process

let seq = 0;
const list = (n: number) => Array.from({ length: n }, (_, i) => ({ i, label: `item ${i}` }));
const withBig = { ...variables, big: list(1000) };
const withHuge = { ...variables, huge: list(10_000) };
const rows = [
  measure('condition, cached', 20_000, () => evaluator.condition('amount > 1000 && customer.tier === "gold"', variables)),
  measure('condition, no variables read', 20_000, () => evaluator.condition('true', variables)),
  measure('expression, cached', 20_000, () => evaluator.expression('order.items.map(i => i.qty * i.price).reduce((a, b) => a + b, 0)', variables)),
  measure('script, cached', 20_000, () =>
    evaluator.script('let sum = 0;\nfor (const i of order.items) sum += i.qty * i.price;\ntotal = sum;\napproved = total > 20;', variables),
  ),
  measure('expression, new source each call', 2_000, () => evaluator.expression(`amount + ${seq++}`, variables)),
  measure('script, new source each call', 2_000, () => evaluator.script(`total = amount * ${seq++};`, variables)),
  measure('condition, 1,000-item variable not read', 10_000, () => evaluator.condition('amount > 1000', withBig)),
  measure('expression, 1,000-item variable read', 2_000, () => evaluator.expression('big.length', withBig)),
  measure('expression, 10,000-item variable read', 200, () => evaluator.expression('huge.length', withHuge)),
  measure('script, 10,000-item variable changed in place', 200, () => evaluator.script('huge.push({ i: -1 })', withHuge)),
];
console.table(rows);

// What the out-of-process design costs when a process must start. (The
// in-process evaluator of earlier versions has no sandboxPid and no restart.)
const withPid = evaluator as SandboxEvaluator & { sandboxPid?: () => number | undefined };
if (typeof withPid.sandboxPid === 'function') {
  const starts: Record<string, number> = {};
  const fresh = createEvaluator();
  starts['createEvaluator() + first condition'] = ms(() => fresh.condition('true', {}));
  fresh.close();
  starts['runaway Map until script_memory'] = ms(() => {
    try {
      evaluator.script('const m = new Map(); let i = 0; while (true) m.set(i, i++)', {});
    } catch {
      // script_memory
    }
  });
  starts['next condition (new sandbox process)'] = ms(() => evaluator.condition('true', {}));
  console.table(Object.entries(starts).map(([what, took]) => ({ case: what, ms: took })));
}
evaluator.close();
