/**
 * The fast path (src/expressions/simple.ts) must answer exactly what the
 * sandbox answers, or defer. Checked case by case and differentially: random
 * sources of the fast path's grammar (and a little outside it) over random
 * variables, evaluated both ways.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Json, JsonObject } from '../../src/errors.js';
import { createEvaluator } from '../../src/expressions/index.js';
import { compileSimple, DEFER, runCondition, runExpression, runScript } from '../../src/expressions/javascript/simple.js';

const sandbox = createEvaluator({ fastPath: false, timeoutMs: 2000 });
afterAll(() => sandbox.close());

type Outcome = { ok: Json | boolean | JsonObject } | { error: string };
function viaSandbox(kind: 'condition' | 'expression' | 'script', src: string, vars: JsonObject): Outcome {
  try {
    if (kind === 'condition') return { ok: sandbox.condition(src, vars) };
    if (kind === 'expression') return { ok: sandbox.expression(src, vars) };
    return { ok: sandbox.script(src, vars).assigned };
  } catch (e) {
    return { error: (e as { code: string }).code };
  }
}
function viaFast(kind: 'condition' | 'expression' | 'script', src: string, vars: JsonObject): Outcome | null {
  const p = compileSimple(src, kind === 'script' ? 'script' : 'expr');
  if (!p) return null;
  const r = kind === 'condition' ? runCondition(p, vars) : kind === 'expression' ? runExpression(p, vars) : runScript(p, vars);
  return r === DEFER ? null : { ok: r };
}

describe('fast path: what it compiles', () => {
  it.each([
    'total > 1000',
    'approved && amount < limit',
    "status === 'open' || status == \"new\"",
    'order.items[0].price * 2',
    '!(a >= b) ? x : -y',
    'a +\n b',
    "typeof a === 'undefined' || a > 1",
    'typeof (a) + typeof -b',
  ])('compiles %j', (src) => {
    expect(compileSimple(src, 'expr')).not.toBeNull();
  });

  it.each([
    'f(x)',
    'a.b()',
    'x => x',
    'new Date()',
    'typeof a()',
    'typeof Math',
    'a ** 2',
    'a?.b',
    'a ?? b',
    '`t${a}`',
    '/re/.test(a)',
    'a++',
    '0x1f',
    '1_000',
    '08',
    "'\\u0061'",
    'a; b',
    'this.x',
    'a in b',
    'void 0',
    'undefined',
    'x = 1',
    'a, b',
    '[1, 2]',
    '{}',
    'ünïcode',
  ])('leaves %j to the sandbox', (src) => {
    expect(compileSimple(src, 'expr')).toBeNull();
  });

  it.each(['total = price * qty', 'a = 1; b = a + 1', 'n += 1\nlabel = "x" + n;', '// note\nok = true'])('compiles the script %j', (src) => {
    expect(compileSimple(src, 'script')).not.toBeNull();
  });

  it.each(['let a = 1', 'a = 1 b = 2', 'a.b = 1', 'if (a) b = 1', 'a = b\n(c)', 'f()', 'a = function () {}', 'a = 1,\nb = 2'])(
    'leaves the script %j to the sandbox',
    (src) => {
      expect(compileSimple(src, 'script')).toBeNull();
    },
  );
});

describe('fast path: same answers as the sandbox', () => {
  const cases: Array<[kind: 'condition' | 'expression' | 'script', src: string, vars: JsonObject]> = [
    ['condition', 'total > 1000', { total: 1200 }],
    ['condition', 'total > 1000', { total: '1200' }],
    ['condition', 'missing > 1', {}],
    ['condition', 'order.discount > 0', { order: {} }],
    ['condition', 'order.toString', { order: {} }],
    ['condition', "s.length > 2 && s[0] == 'a'", { s: 'abc' }],
    ['expression', "a + b", { a: 1, b: '2' }],
    ['expression', '1 / 0', {}],
    ['expression', '-0', {}],
    ['expression', 'a.b', { a: { b: [1, 2] } }],
    ['expression', 'x', { x: 'nul\u0000' }],
    ['expression', 'list[5]', { list: [1] }],
    ['expression', 'n.x', { n: null }],
    ['script', 'total = price * qty', { price: 3, qty: 4 }],
    ['script', 'n += 1\nn *= 2; label = "v" + n', { n: 1 }],
    ['script', 'a = b', {}],
    ['script', 'x = undefinedThing', {}],
    ['script', 'Math = 1\ny = Math', {}],
    ['condition', 'Math > 1', { Math: 2 }],
    ['script', 'ok = 0.1 + 0.2 === 0.3', {}],
    ['expression', 'typeof missing', {}],
    ['expression', '[typeof a].length', {}],
    ['expression', 'typeof a', { a: null }],
    ['expression', 'typeof a', { a: {} }],
    ['expression', 'typeof a.b', { a: { b: 's' } }],
    ['expression', 'typeof a.b', {}],
    ['expression', 'typeof typeof a', {}],
    ['condition', "typeof a === 'undefined' || a > 1", { a: 2 }],
    ['script', "count = (typeof count === 'number' ? count : 0) + 1", {}],
    ['script', "count = (typeof count === 'number' ? count : 0) + 1", { count: 4 }],
    ['script', 'a = 1\nt = typeof a', {}],
    ['script', 't = typeof toString', {}],
  ];
  it.each(cases)('%s %j', (kind, src, vars) => {
    const fast = viaFast(kind, src, vars);
    if (fast !== null) expect(fast).toEqual(viaSandbox(kind, src, vars));
  });

  it('answers typeof of primitives and missing names itself, and defers on objects', () => {
    const src = "count = (typeof count === 'number' ? count : 0) + 1";
    expect(viaFast('script', src, {})).toEqual({ ok: { count: 1 } });
    expect(viaFast('script', src, { count: 4 })).toEqual({ ok: { count: 5 } });
    expect(viaFast('expression', 'typeof a', {})).toEqual({ ok: 'undefined' });
    expect(viaFast('expression', 'typeof a + typeof b + typeof c', { a: 's', b: true, c: null })).toEqual({ ok: 'stringbooleanobject' });
    expect(viaFast('expression', 'typeof a', { a: [1] })).toBeNull();
    expect(viaFast('expression', 'typeof a.b', {})).toBeNull();
  });

  it('agrees on random sources and variables (differential)', () => {
    const names = ['a', 'b', 'c', 'obj', 'list', 'missing', 'length'];
    const primitive = fc.oneof(
      fc.integer({ min: -5, max: 5 }),
      fc.double({ noNaN: false }),
      fc.constantFrom(0, -0, 1e21, 0.1, '', '0', '1', 'a', ' 2 ', 'true', 'null'),
      fc.string({ maxLength: 4 }),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.oneof(
      { weight: 4, arbitrary: primitive },
      { weight: 1, arbitrary: fc.array(primitive, { maxLength: 3 }) },
      { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('x', 'y', 'length', 'toString', '0'), primitive, { maxKeys: 3 }) },
    );
    // variables as the engine has them: parsed from the stored JSON state
    const vars = fc
      .dictionary(fc.constantFrom(...names.filter((n) => n !== 'missing')), value, { maxKeys: 6 })
      .map((v) => JSON.parse(JSON.stringify(v)) as JsonObject);
    const literal = fc.oneof(
      fc.constantFrom('0', '1', '2.5', '1e3', 'true', 'false', 'null', "''", "'a'", '"1"', "'x'"),
      fc.integer({ min: 0, max: 100 }).map(String),
    );
    const { expr } = fc.letrec((tie) => ({
      expr: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        literal,
        fc.constantFrom(...names),
        fc.tuple(tie('expr'), fc.constantFrom('+', '-', '*', '/', '%', '<', '>', '<=', '>=', '==', '!=', '===', '!==', '&&', '||'), tie('expr')).map(
          ([x, op, y]) => `${x} ${op} ${y}`,
        ),
        fc.tuple(fc.constantFrom('!', '-', '+', 'typeof '), tie('expr')).map(([op, x]) => `${op}${x}`),
        tie('expr').map((x) => `(${x})`),
        fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([x, y, z]) => `${x} ? ${y} : ${z}`),
        fc.tuple(fc.constantFrom(...names), fc.constantFrom('x', 'y', 'length', 'toString', 'constructor')).map(([o, k]) => `${o}.${k}`),
        fc.tuple(fc.constantFrom(...names), tie('expr')).map(([o, k]) => `${o}[${k}]`),
      ),
    }));
    const script = fc
      .array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'out'), fc.constantFrom('=', '+=', '-=', '*='), expr), { minLength: 1, maxLength: 3 })
      .map((stmts) => stmts.map(([n, op, e]) => `${n} ${op} ${e}`).join(';\n'));

    let compared = 0;
    fc.assert(
      fc.property(fc.constantFrom('condition' as const, 'expression' as const), expr, vars, (kind, src, v) => {
        const fast = viaFast(kind, src, v);
        if (fast === null) return;
        compared++;
        expect(fast, `${kind} ${src} ${JSON.stringify(v)}`).toEqual(viaSandbox(kind, src, v));
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1) * 1500 },
    );
    fc.assert(
      fc.property(script, vars, (src, v) => {
        const fast = viaFast('script', src, v);
        if (fast === null) return;
        compared++;
        expect(fast, `script ${src} ${JSON.stringify(v)}`).toEqual(viaSandbox('script', src, v));
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1) * 700 },
    );
    // the property must have compared something real, not deferred everything
    expect(compared).toBeGreaterThan(500);
  });
});
