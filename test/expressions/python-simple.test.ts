/**
 * The Python fast path (src/expressions/python/simple.ts) must answer
 * exactly what the Pyodide sandbox answers, or defer. Checked case by case
 * (the tricky semantics: floor division, `and`/`or` operands, chained
 * comparisons, bool as int, int against float) and differentially: random
 * sources of the fast path's grammar (and a little outside it) over random
 * variables, evaluated both ways. One sandbox (fast path off) serves the
 * file: Pyodide takes seconds to load.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, JsonObject } from '../../src/errors.js';
import { ExpressionError } from '../../src/expressions/index.js';
import { createPythonEvaluator, type PythonEvaluator } from '../../src/expressions/python/index.js';
import { compileSimple, DEFER, runCondition, runExpression, runScript } from '../../src/expressions/python/simple.js';

let sandbox: PythonEvaluator;
/** The evaluator as the engine gets it (fast path on), with a low recursion limit to see the depth bound. */
let wired: PythonEvaluator;

beforeAll(() => {
  sandbox = createPythonEvaluator({ fastPath: false, timeoutMs: 2000, hardTimeoutMs: 6000 });
  wired = createPythonEvaluator({ recursionLimit: 50, timeoutMs: 2000, hardTimeoutMs: 6000 });
  // Both load Pyodide at once; wait here, not inside a test's time limit.
  sandbox.condition('True', {});
  wired.condition('len([]) == 0', {});
}, 90_000);

afterAll(() => {
  sandbox?.close();
  wired?.close();
});

type Kind = 'condition' | 'expression' | 'script';
type Outcome = { ok: Json | boolean | JsonObject } | { error: string };

/** -0 made visible: the sandbox gives -0 for Python's -0.0, and 0 for the int 0. */
function visible(v: unknown): unknown {
  if (Object.is(v, -0)) return { negativeZero: true };
  if (Array.isArray(v)) return v.map(visible);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, visible(x)]));
  return v;
}

function viaSandbox(kind: Kind, src: string, vars: JsonObject): Outcome {
  try {
    if (kind === 'condition') return { ok: sandbox.condition(src, vars) };
    if (kind === 'expression') return { ok: visible(sandbox.expression(src, vars)) as Json };
    const r = sandbox.script(src, vars);
    expect(r.deleted).toBeUndefined();
    return { ok: visible(r.assigned) as JsonObject };
  } catch (e) {
    expect(e).toBeInstanceOf(ExpressionError);
    return { error: (e as ExpressionError).code };
  }
}

function viaFast(kind: Kind, src: string, vars: JsonObject): Outcome | null {
  const p = compileSimple(src, kind === 'script' ? 'script' : 'expr');
  if (!p) return null;
  const r = kind === 'condition' ? runCondition(p, vars) : kind === 'expression' ? runExpression(p, vars) : runScript(p, vars);
  return r === DEFER ? null : { ok: visible(r) as Json };
}

/** The fast path's answer, which must exist and be the sandbox's. */
function answers(kind: Kind, src: string, vars: JsonObject = {}): unknown {
  const fast = viaFast(kind, src, vars);
  expect(fast, `the fast path defers ${kind} ${JSON.stringify(src)}`).not.toBeNull();
  expect(fast, `${kind} ${JSON.stringify(src)} ${JSON.stringify(vars)}`).toEqual(viaSandbox(kind, src, vars));
  return (fast as { ok: unknown }).ok;
}

describe('Python fast path: the tricky semantics, as CPython', () => {
  it.each([
    // floor division and modulo take the divisor's sign, on ints and floats
    ['-7 // 2', -4],
    ['7 // -2', -4],
    ['-7 % 2', 1],
    ['7 % -2', -1],
    ['-7 % -2', -1],
    ['-7.5 // 2', -4],
    ['-7.5 % 2', 0.5],
    ['7.5 % -2', -0.5],
    ['0.0 // -1', { negativeZero: true }],
    ['-0.0 % 5', 0],
    ['5 % -5.0', { negativeZero: true }],
    ['-1 % 10', 9],
    ['1e300 % 7', 1e300 % 7],
    ['4 % 2', 0],
    ['-4 % 2', 0],
    ['0 * -1', 0],
    ['-0.0', { negativeZero: true }],
    ['0 / -5', { negativeZero: true }],
    // true division always
    ['7 / 2', 3.5],
    ['6 / 3', 2],
    ['1 / 3', 1 / 3],
    // power: exact ints, binding tighter than unary minus on its left
    ['2 ** 10', 1024],
    ['-2 ** 2', -4],
    ['(-2) ** 3', -8],
    ['2 ** 3 ** 2', 512],
    ['0 ** 0', 1],
    // bool is an int
    ['True + 1', 2],
    ['True + True', 2],
    ['True * 2.5', 2.5],
    ['-True', -1],
    ['True // 2', 0],
    ['True == 1', true],
    ['False == 0.0', true],
    ['True is True', true],
    ['1 == 1.0', true],
    ['1 == True', true],
    ["1 == '1'", false],
    ['None == 0', false],
    ['None == None', true],
    // `and` / `or` return an operand
    ["0 or 'x'", 'x'],
    ["'' or None", null],
    ["'' or 0.0", 0],
    ["1 and 'y'", 'y'],
    ["0.0 and 'y'", 0],
    ['None and 1', null],
    ["not ''", true],
    ['not 0.0', true],
    ['not 2', false],
    // chains
    ['1 < 2 < 3', true],
    ['1 < 3 < 2', false],
    ['3 > 2 == 2', true],
    ['1 < 2 > 0 != 5', true],
    ["'a' < 'b' <= 'b'", true],
    // precedence
    ['not 1 == 2', true],
    ['1 + 2 * 3 - 4 / 2', 5],
    ["1 if 0 else 2 if '' else 3", 3],
    ["'yes' if 1 < 2 else 'no'", 'yes'],
    // strings
    ["'ab' + \"cd\"", 'abcd'],
    ["'ab' * 3", 'ababab'],
    ["3 * 'ab'", 'ababab'],
    ["'ab' * -1", ''],
    ["'ab' * True", 'ab'],
    ["'it\\'s\\n'", "it's\n"],
    ["'é' > 'z'", true],
    ["'a' in 'cat'", true],
    ["'' in 'x'", true],
    ["'b' not in ('a', 'c')", true],
    ["2 in [1, 2.0]", true],
    ['None in (0, False)', false],
    ['True in (1,)', true],
    ['1 in ()', false],
    ['x # a comment', 7],
    ['(1 +\n  2)', 3],
  ])('%s', (src, expected) => {
    expect(answers('expression', src, { x: 7 })).toEqual(expected);
  });

  it.each([
    '7.0 // 0.1',
    '7.0 % 0.1',
    '-1e-300 // 1e300',
    '1e-300 % -1e300',
    '1e300 // 3.7',
    '-5.5 // 0.5',
    '9007199254740991 // 2',
    '-9007199254740991 // 3',
    '9007199254740991 % -7',
    '-9007199254740991 - 0',
    '4503599627370495 * 2 + 1',
    '3 ** 33',
    '(-3) ** 33',
    '0.1 + 0.2',
    '1 - 0.9',
    '10 / 4 * 4',
    "'a' < 'B'",
    "'abc' < 'abd' < 'b'",
  ])('agrees with the sandbox on %s', (src) => {
    answers('expression', src);
  });

  it('short-circuits as Python does, past what would fail', () => {
    expect(answers('condition', '1 == 2 < missing')).toBe(false);
    expect(answers('condition', 'False and missing')).toBe(false);
    expect(answers('expression', "1 if True else missing + 'x'")).toBe(1);
    expect(answers('condition', 'x is not None and x > 1', { x: null })).toBe(false);
    expect(answers('condition', "x is None or x['k'] == 1", { x: null })).toBe(true);
  });

  it('compares strings by code point, not UTF-16 unit', () => {
    // U+FFFF < U+1F600 in Python; JavaScript's < says otherwise
    expect(answers('condition', 's < t', { s: '\uffff', t: '😀' })).toBe(true);
    expect(answers('condition', 's > t', { s: '\uffff', t: '😀' })).toBe(false);
  });

  it('reads JSON data: dicts, lists, negative indexes, `is None`', () => {
    const vars = { order: { total: 1200, items: [{ sku: 'a', qty: 2 }], note: null }, lst: [1, 2, 3], s: 'abc', x: null };
    expect(answers('expression', "order['items'][0]['qty'] * 2", vars)).toBe(4);
    expect(answers('expression', 'lst[-1]', vars)).toBe(3);
    expect(answers('expression', 'lst[True]', vars)).toBe(2);
    expect(answers('expression', 's[-3]', vars)).toBe('a');
    expect(answers('expression', "order['items']", vars)).toEqual([{ sku: 'a', qty: 2 }]);
    expect(answers('condition', "order['note'] is None", vars)).toBe(true);
    expect(answers('condition', 'x is not None', vars)).toBe(false);
    expect(answers('condition', "'total' in order and 'missing' not in order", vars)).toBe(true);
    expect(answers('condition', '1 in order', vars)).toBe(false);
    expect(answers('condition', 'order == order', vars)).toBe(true);
    expect(answers('condition', 'lst == lst and order != lst', vars)).toBe(true);
  });

  it('reports what a script assigns as the sandbox does', () => {
    expect(answers('script', 'total = price * qty\napproved = amount < 5000', { price: 2.5, qty: 4, amount: 10 })).toEqual({ total: 10, approved: true });
    // rebinding to another type is reported, an equal value of the same type is not
    expect(answers('script', 'a = True\nb = 2\nc = 1.0\nd = d', { a: 1, b: 2, c: 1, d: { k: [1] } })).toEqual({ a: true, c: 1 });
    expect(answers('script', 'x = x * 1.0', { x: 3 })).toEqual({ x: 3 });
    expect(answers('script', 'x = 2.5 * 2', { x: 5.5 })).toEqual({ x: 5 });
    expect(answers('script', 'o = p', { o: { a: 1, b: 2 }, p: { b: 2, a: 1 } })).toEqual({ o: { b: 2, a: 1 } });
    expect(answers('script', 'o = p', { o: { a: 1, b: 2 }, p: { a: 1, b: 2 } })).toEqual({});
    expect(answers('script', '# note\nn += 1; m = n;\n\n   # indented comment\nk = n / 2\nn -= 1', { n: 1 })).toEqual({ m: 2, k: 1 });
    expect(answers('script', 'count = 0\ncount += 1\ncount *= 10\ncount //= 3\ncount %= 2\ncount **= 3', {})).toEqual({ count: 1 });
    expect(answers('script', 'y = big', { big: 1e21, other: 'x' })).toEqual({ y: 1e21 });
    expect(answers('script', '# nothing', { a: 1 })).toEqual({});
    expect(answers('script', 'r = x', { x: -0 })).toEqual({ r: 0 });
    expect(answers('script', 'x = 1 / 2\ny = 1e21\nz = z', { x: 0.5, y: 1e21, z: 'é' })).toEqual({});
    expect(answers('script', 'big = 5\ny = 1', { big: 2 ** 60, y: 2 ** 60 })).toEqual({ big: 5, y: 1 });
    expect(answers('script', 'x = (a +\n     b)  # sum\nok = x > 2', { a: 1, b: 2 })).toEqual({ x: 3, ok: true });
    expect(answers('script', "label = 'é'", { zz: 'fine' })).toEqual({ label: 'é' });
  });

  it('answers the common idioms itself', () => {
    const vars: JsonObject = {
      amount: 1200,
      approved: true,
      status: 'open',
      total: 99.5,
      price: 12.5,
      qty: 3,
      name: 'Ada',
      reason: null,
      order: { customer: { tier: 'gold' }, lines: [{ qty: 2 }] },
      items: [1, 2],
      count: 4,
    };
    for (const src of [
      'amount > 1000',
      'amount > 1000 and approved',
      'approved == True',
      "status == 'open'",
      "status in ('open', 'new')",
      "status not in ['closed']",
      'reason is None',
      'reason is not None or amount < 10',
      'not approved',
      '100 <= amount < 5000',
      "order['customer']['tier'] == 'gold'",
      "order['lines'][0]['qty'] > 1",
      'total >= price * qty',
      'count % 2 == 0',
      'items',
    ]) {
      answers('condition', src, vars);
    }
    for (const src of ["'gold' if amount > 1000 else 'silver'", 'price * qty', "name + '!'", 'amount // 7', 'total / 2', 'items[0]']) {
      answers('expression', src, vars);
    }
    for (const src of [
      'total = price * qty',
      'approved = amount < 5000',
      'total = price * qty\napproved = amount < 5000',
      'count += 1',
      "label = 'big' if amount > 1000 else 'small'",
      'discount = total * 0.1; net = total - discount',
    ]) {
      answers('script', src, vars);
    }
  });
});

describe('Python fast path: what it leaves to the sandbox', () => {
  it.each([
    'len(x)',
    'x.lower()',
    "f'{x}'",
    "r'x'",
    "'''x'''",
    "'\\u0061'",
    "'a' 'b'",
    '0x1f',
    '1_000',
    '01',
    '1j',
    'x[1:2]',
    '[1, 2]',
    '(1, 2)',
    '{}',
    'lambda: 1',
    'a := 1',
    'x; y',
    'a\n+ 1',
    '# comment\nx',
    'x is 1',
    "x is 'a'",
    '~x',
    'x << 1',
    'x @ y',
    '__import__',
    'ünïcode',
    'x if y',
    'not',
    'x\u0000',
    "'\ud800'",
    'a +\\\n b',
  ])('does not compile the expression %j', (src) => {
    expect(compileSimple(src, 'expr')).toBeNull();
  });

  it.each(['  x = 1', 'x = 1\n  y = 2', 'x = y = 1', 'x, y = 1, 2', 'd["k"] = 1', 'x: int = 1', 'x = 1;;', '; x = 1', 'x = 1 y = 2', 'if x: y = 1', 'del x', 'pass', 'x', 'True = 1', 'x = 1\r\ny = 2'])(
    'does not compile the script %j',
    (src) => {
      expect(compileSimple(src, 'script')).toBeNull();
    },
  );

  it.each<[Kind, string, JsonObject]>([
    ['condition', 'missing > 1', {}],
    ['condition', 'len > 1', {}],
    ['expression', "a + 1", { a: '1' }],
    ['expression', '1 / 0', {}],
    ['expression', '1 // 0.0', {}],
    ['expression', '5 % 0', {}],
    ['expression', '2 ** 53 * 2', {}],
    ['expression', '2 ** -1', {}],
    ['expression', '2.0 ** 2', {}],
    ['expression', 'x', { x: 2 ** 60 }],
    ['expression', '1e308 * 10', {}],
    ['expression', "d['missing']", { d: {} }],
    ['expression', 'lst[3]', { lst: [1] }],
    ['expression', 'd[0]', { d: { '0': 1 } }],
    ['expression', "s * 'a'", { s: 'b' }],
    ['expression', 'None < 1', {}],
    ['expression', 'lst < lst', { lst: [1] }],
    ['expression', 'x', { x: 'nul\u0000' }],
    ['expression', "x + '\\n'", { x: '\ud800' }],
    ['expression', 'x', { x: '\udc00' }],
    ['expression', 'a + b', { a: '\ud83d', b: '\ude00' }],
    ['expression', "'a' in 1", {}],
    ['expression', "None in 'abc'", {}],
    ['expression', 'lst in d', { lst: [], d: {} }],
    ['expression', 'x is y', { x: 1, y: 1 }],
    ['expression', 's[0]', { s: '😀' }],
    ['expression', "'ab' * 100000", {}],
    ['script', 'total = 1', { a: 'nul\u0000' }], // `a` occurs in the source: the sandbox converts it back and fails
    ['script', "label = 'é'", { zz: 'nul\u0000' }], // a non-ASCII source is sent every variable
    ['script', 'x = d', { d: { k: 'nul\u0000' } }],
    ['script', 'y = x', {}],
    ['script', 'n += 1', {}],
  ])('defers %s %j %j', (kind, src, vars) => {
    expect(compileSimple(src, kind === 'script' ? 'script' : 'expr')).not.toBeNull();
    expect(viaFast(kind, src, vars)).toBeNull();
  });

  it('defers a script when a variable it is sent is not JSON (the request would fail)', () => {
    expect(viaFast('script', 'x = 1', { x: 10n as unknown as Json })).toBeNull();
    expect(viaFast('script', 'x = 1', { x: new Date(0) as unknown as Json })).toBeNull();
    expect(viaFast('expression', 'x', { x: new Date(0) as unknown as Json })).toBeNull();
  });
});

describe('Python fast path: wired into the evaluator', () => {
  it('answers in this process, and defers to the sandbox with its errors', () => {
    // Object.keys on the variables is where a request to the sandbox starts (requestStrings)
    let listed = 0;
    const vars = new Proxy({ amount: 1200, qty: 3 } as JsonObject, {
      ownKeys(target) {
        listed++;
        return Reflect.ownKeys(target);
      },
    });
    expect(wired.condition('amount > 1000', vars)).toBe(true);
    expect(wired.expression('amount * qty', vars)).toBe(3600);
    expect(listed).toBe(0);
    expect(wired.script('total = amount * qty', { amount: 2, qty: 3 })).toEqual({ assigned: { total: 6 } });
    // deferred: the sandbox's answers and errors
    expect(wired.expression('len(items)', { items: [1, 2] })).toBe(2);
    expect(() => wired.condition('rate > 1', {})).toThrow(/NameError: name 'rate' is not defined/);
    expect(() => wired.expression("amount + 'x'", { amount: 1 })).toThrow(/TypeError/);
    expect(() => wired.expression('1 / 0', {})).toThrow(/ZeroDivisionError/);
    expect(wired.condition('len([]) == 0', vars)).toBe(true);
    expect(listed).toBeGreaterThan(0);
  });

  it('leaves trees the sandbox cannot walk under its recursion limit to it', () => {
    const deep = Array.from({ length: 30 }, () => 'a').join(' + ');
    expect(compileSimple(deep, 'expr')).not.toBeNull(); // within the default bound (recursion limit 1000)
    const e = (() => {
      try {
        wired.expression(deep, { a: 1 });
      } catch (err) {
        return err as ExpressionError;
      }
      return null;
    })();
    expect(e?.code).toBe('syntax_error');
    expect(e?.message).toMatch(/RecursionError/);
    expect(wired.expression('a + a + a + a', { a: 1 })).toBe(4);
  });
});

describe('Python fast path: same answers as the sandbox (differential)', () => {
  const primitive = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: -6, max: 6 }) },
    fc.constantFrom(0, 1, -1, 2 ** 31, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e21, 0.5, -2.5, 0.1, 1e-7, 3.75, -0.25, 1e300),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom('', 'a', 'ab', 'B', 'é', '😀', '\uffff', ' ', '1', 'True', 'x\u0000', '\ud800', 'abc'),
    fc.boolean(),
    fc.constant(null),
  );
  const value = fc.oneof(
    { weight: 5, arbitrary: primitive },
    { weight: 1, arbitrary: fc.array(primitive, { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('x', 'y', 'k', '0', 'a'), primitive, { maxKeys: 3 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('x', 'k'), fc.array(primitive, { maxLength: 2 }), { maxKeys: 2 }) },
  );
  const number = fc.oneof(fc.integer({ min: -6, max: 6 }), fc.constantFrom(0, 2 ** 31, 2 ** 53 - 1, 1e21, 0.5, -2.5, 0.1, 1e-7, 3.75, -0.25), fc.double({ noNaN: true, noDefaultInfinity: true }));
  const text = fc.oneof(fc.constantFrom('', 'a', 'ab', 'B', 'é', '😀', '\uffff', ' ', 'abc', 'x\u0000', '\ud800'), fc.string({ maxLength: 3 }));
  // each variable usually of its typical type, sometimes of any, sometimes missing
  const typed = (typical: fc.Arbitrary<unknown>) =>
    fc.option(fc.oneof({ weight: 4, arbitrary: typical }, { weight: 1, arbitrary: value }), { nil: undefined, freq: 8 });
  // variables as the engine has them: parsed from the stored JSON state
  const vars = fc
    .record({
      a: typed(number),
      b: typed(number),
      c: typed(fc.oneof(number, fc.boolean(), fc.constant(null))),
      n: typed(fc.integer({ min: -3, max: 3 })),
      s: typed(text),
      lst: typed(fc.array(primitive, { maxLength: 4 })),
      d: typed(fc.dictionary(fc.constantFrom('x', 'y', 'k', '0', 'a'), primitive, { maxKeys: 4 })),
    })
    .map((v) => JSON.parse(JSON.stringify(v)) as JsonObject);
  const name = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('a', 'b', 'c', 'n', 's', 'lst', 'd') }, { weight: 1, arbitrary: fc.constantFrom('missing', 'len') });
  const literal = fc.oneof(
    fc.constantFrom('0', '1', '2', '3', '7', '2.5', '0.0', '1.0', '1e3', '0.5', '.5', '1.', "''", "'a'", '"ab"', "'é'", "'\\n'", "'x'", 'True', 'False', 'None'),
    fc.integer({ min: 0, max: 100 }).map(String),
  );
  const wrap = (x: string, paren: boolean) => (paren ? `(${x})` : x);
  const { expr } = fc.letrec<{ expr: string }>((tie) => ({
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      literal,
      name,
      name,
      fc
        .tuple(tie('expr'), fc.constantFrom('+', '-', '*', '/', '//', '%', '**', '+', '-', '*'), tie('expr'), fc.boolean(), fc.boolean())
        .map(([x, op, y, p, q]) => `${wrap(x, p)} ${op} ${wrap(y, q)}`),
      fc
        .tuple(tie('expr'), fc.constantFrom('==', '!=', '<', '<=', '>', '>=', 'in', 'not in'), tie('expr'), fc.boolean())
        .map(([x, op, y, p]) => `${wrap(x, p)} ${op} ${wrap(y, p)}`),
      fc
        .tuple(tie('expr'), fc.constantFrom('<', '<=', '==', '!='), tie('expr'), fc.constantFrom('<', '>=', '==', '!='), tie('expr'))
        .map(([x, o1, y, o2, z]) => `(${x}) ${o1} (${y}) ${o2} (${z})`),
      fc.tuple(tie('expr'), fc.constantFrom('None', 'True', 'False'), fc.boolean()).map(([x, y, not]) => `(${x}) is ${not ? 'not ' : ''}${y}`),
      fc
        .tuple(tie('expr'), fc.array(tie('expr'), { maxLength: 3 }), fc.boolean(), fc.boolean())
        .map(([x, items, list, not]) => `(${x}) ${not ? 'not in' : 'in'} ${list ? `[${items.join(', ')}]` : `(${items.join(', ')}${items.length === 1 ? ',' : ''})`}`),
      fc.tuple(tie('expr'), fc.constantFrom('and', 'or'), tie('expr'), fc.boolean()).map(([x, op, y, p]) => `${wrap(x, p)} ${op} ${wrap(y, p)}`),
      fc.tuple(fc.constantFrom('not ', '-', '+', '- '), tie('expr'), fc.boolean()).map(([op, x, p]) => `${op}${wrap(x, p)}`),
      fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([x, y, z]) => `${x} if ${y} else ${z}`),
      fc.constantFrom("d['x']", "d['k']", "d['0']", 'lst[0]', 'lst[-1]', 'lst[n]', 'lst[True]', 's[0]', 's[n]', 'a[0]', "d[s]"),
      fc.tuple(fc.constantFrom('d', 'lst'), tie('expr')).map(([o, k]) => `${o}[${k}]`),
    ),
  }));
  // right-hand sides of script statements: mostly small, sometimes any expression
  const operand = fc.oneof(literal, name, name);
  const rhs = fc.oneof(
    { weight: 2, arbitrary: operand },
    { weight: 3, arbitrary: fc.tuple(operand, fc.constantFrom('+', '-', '*', '/', '//', '%', '<', '==', 'and', 'or', 'in'), operand).map(([x, op, y]) => `${x} ${op} ${y}`) },
    { weight: 1, arbitrary: fc.tuple(operand, operand, operand).map(([x, y, z]) => `${x} if ${y} else ${z}`) },
    { weight: 2, arbitrary: expr },
  );
  const script = fc
    .tuple(
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'n', 'c', 'out', 'total'), fc.constantFrom('=', '=', '=', '+=', '-=', '*=', '/=', '//='), rhs), { minLength: 1, maxLength: 4 }),
      fc.array(fc.constantFrom('\n', '; ', '\n# note\n', '\n\n', ';\n'), { minLength: 4, maxLength: 4 }),
    )
    .map(([stmts, seps]) => stmts.map(([n, op, e], i) => `${n} ${op} ${e}${i < stmts.length - 1 ? seps[i] : ''}`).join(''));

  const RUNS = Number(process.env.FUZZ_RUNS ?? 1);

  it('agrees on random sources and variables', () => {
    let compared = 0;
    let tried = 0;
    fc.assert(
      fc.property(fc.constantFrom<Kind>('condition', 'expression'), expr, vars, (kind, src, v) => {
        tried++;
        const fast = viaFast(kind, src, v);
        if (fast === null) return;
        compared++;
        expect(fast, `${kind} ${JSON.stringify(src)} ${JSON.stringify(v)}`).toEqual(viaSandbox(kind, src, v));
      }),
      { numRuns: RUNS * 6000 },
    );
    fc.assert(
      fc.property(script, vars, (src, v) => {
        tried++;
        const fast = viaFast('script', src, v);
        if (fast === null) return;
        compared++;
        expect(fast, `script ${JSON.stringify(src)} ${JSON.stringify(v)}`).toEqual(viaSandbox('script', src, v));
      }),
      { numRuns: RUNS * 3000 },
    );
    console.log(`python fast path differential: ${compared} of ${tried} random evaluations answered by the fast path and compared`);
    // the property must have compared something real, not deferred everything
    expect(compared).toBeGreaterThan(2500);
  }, 120_000);
});
