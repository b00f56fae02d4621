import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvaluator, ExpressionError, type SandboxEvaluator } from '../../src/expressions/index.js';
import type { JsonObject } from '../../src/errors.js';
import { failure } from '../support/expressions.js';

let ev: SandboxEvaluator;
beforeAll(() => {
  ev = createEvaluator({ timeoutMs: 200, memoryLimitMb: 64 });
});
afterAll(() => ev.close());


describe('conditions', () => {
  it('compares variables', () => {
    expect(ev.condition('amount > 1000', { amount: 1500 })).toBe(true);
    expect(ev.condition('amount > 1000', { amount: 999 })).toBe(false);
    expect(ev.condition('customer.tier === "gold" && !blocked', { customer: { tier: 'gold' }, blocked: false })).toBe(true);
  });

  it('uses JavaScript truthiness', () => {
    expect(ev.condition('v', { v: '' })).toBe(false);
    expect(ev.condition('v', { v: 'x' })).toBe(true);
    expect(ev.condition('v', { v: 0 })).toBe(false);
    expect(ev.condition('v', { v: [] })).toBe(true);
    expect(ev.condition('v', { v: null })).toBe(false);
  });

  it('fails on an unknown variable with a ReferenceError', () => {
    const e = failure(() => ev.condition('amount > 1000', {}));
    expect(e.code).toBe('script_error');
    expect(e.message).toBe('ReferenceError: amount is not defined');
    expect(e.line).toBe(1);
  });

  it('offers the allowed globals', () => {
    expect(ev.condition('Math.max(a, b) === 3', { a: 1, b: 3 })).toBe(true);
    expect(ev.condition('parseInt("42") === 42 && parseFloat("1.5") === 1.5 && isNaN(NaN) && isFinite(1)', {})).toBe(true);
    expect(ev.condition('encodeURIComponent("a b") === "a%20b" && decodeURIComponent("a%20b") === "a b"', {})).toBe(true);
    expect(ev.condition('new Map([[1, 2]]).size === 1 && new Set([1, 1]).size === 1', {})).toBe(true);
    expect(ev.condition('/^a+$/.test(s) && JSON.stringify([1]) === "[1]"', { s: 'aaa' })).toBe(true);
    expect(ev.condition('Array.isArray(Object.keys({ a: 1 })) && String(1) === "1" && Number("2") === 2 && Boolean(1)', {})).toBe(true);
    expect(ev.condition('typeof Date.now() === "number" && new Error("x") instanceof Error', {})).toBe(true);
    expect(ev.condition('console.log("ignored") === undefined', {})).toBe(true);
  });

  it('lets a variable shadow an allowed global', () => {
    expect(ev.expression('Math', { Math: 5 })).toBe(5);
  });
});

describe('expressions', () => {
  it('returns JSON values', () => {
    expect(ev.expression('order.items.length', { order: { items: [1, 2, 3] } })).toBe(3);
    expect(ev.expression('"literal"', {})).toBe('literal');
    expect(ev.expression('{ a: 1, b: [true, null] }', {})).toEqual({ a: 1, b: [true, null] });
    expect(ev.expression('items.filter(i => i > 1)', { items: [1, 2, 3] })).toEqual([2, 3]);
  });

  it('normalises like JSON', () => {
    expect(ev.expression('undefined', {})).toBeNull();
    expect(ev.expression('NaN', {})).toBeNull();
    expect(ev.expression('1 / 0', {})).toBeNull();
    expect(ev.expression('[undefined, NaN, -Infinity]', {})).toEqual([null, null, null]);
    expect(ev.expression('({ a: undefined, b: 1 })', {})).toEqual({ b: 1 });
    expect(ev.expression('new Date(0)', {})).toBe('1970-01-01T00:00:00.000Z');
  });

  it('accepts a trailing semicolon and a trailing comment', () => {
    expect(ev.expression('a + 1;', { a: 1 })).toBe(2);
    expect(ev.expression('a +\n  1 // the next one', { a: 1 })).toBe(2);
  });

  it('serialises only the variables the code reads', () => {
    let serialised = 0;
    const big = { toJSON: () => (serialised++, [1, 2, 3]) } as unknown as JsonObject;
    expect(ev.condition('amount > 1000', { amount: 1500, big })).toBe(true);
    expect(serialised).toBe(0);
    expect(ev.expression('big.length + big.length', { amount: 1500, big })).toBe(6);
    expect(serialised).toBe(1);
  });

  it('lets long strings and objects shadow allowed globals too', () => {
    expect(ev.expression('JSON.a', { JSON: { a: 1 } })).toBe(1);
    expect(ev.expression('Intl.length', { Intl: 'x'.repeat(1000) })).toBe(1000);
  });

  it('works on copies: neither the caller nor the next evaluation sees a change', () => {
    const variables = { items: [1, 2, 3] };
    expect(ev.expression('(items.push(9), items.length)', variables)).toBe(4);
    expect(variables.items).toEqual([1, 2, 3]);
    expect(ev.expression('items.length', variables)).toBe(3);
  });
});

describe('scripts', () => {
  it('returns top-level assignments and keeps declarations local', () => {
    const result = ev.script(
      ['let a = 1;', 'const b = 2;', 'var c = 3;', 'function helper(x) { const d = x * 2; return d; }', 'total = price * qty + helper(a + b + c);'].join('\n'),
      { price: 10, qty: 3 },
    );
    expect(result).toEqual({ assigned: { total: 42 } });
  });

  it('counts an assignment to an outer name from a nested function', () => {
    expect(ev.script('function f() { count = 7 }\nf()', {}).assigned).toEqual({ count: 7 });
    expect(ev.script('[1, 2].forEach(function (x) { sum = (typeof s === "number" ? s : 0) + x; s = sum })', { s: 0 }).assigned).toEqual({
      sum: 3,
      s: 3,
    });
  });

  it('does not report shadowed names', () => {
    expect(ev.script('let total = 1; total = 2;', { total: 0 }).assigned).toEqual({});
    expect(ev.script('function f(total) { total = 3 } f(1);', { total: 0 }).assigned).toEqual({});
    expect(ev.script('if (true) { let x = 1; x = 2 } y = 1', { x: 0 }).assigned).toEqual({ y: 1 });
    expect(ev.script('for (var i = 0; i < 3; i++) {}', {}).assigned).toEqual({});
  });

  it('reads back what it assigned and updates existing variables', () => {
    expect(ev.script('a = 1; b = a + 1; amount = amount * 2', { amount: 5 }).assigned).toEqual({ a: 1, b: 2, amount: 10 });
  });

  it('reports a variable changed in place, and not one only read', () => {
    const result = ev.script('items.push(4); order.status = "paid"; n = other.length', {
      items: [1, 2, 3],
      order: { status: 'new' },
      other: [1],
      untouched: { a: 1 },
    });
    expect(result.assigned).toEqual({ items: [1, 2, 3, 4], order: { status: 'paid' }, n: 1 });
  });

  it('reports an explicit assignment even when the value is unchanged', () => {
    expect(ev.script('x = x', { x: 1 }).assigned).toEqual({ x: 1 });
  });

  it('runs strict-mode scripts and allows an early return', () => {
    expect(ev.script('"use strict";\nx = 1; y = x + 1', {}).assigned).toEqual({ x: 1, y: 2 });
    expect(ev.script('if (skip) return;\ny = 1', { skip: true }).assigned).toEqual({});
    expect(ev.script('if (skip) return;\ny = 1', { skip: false }).assigned).toEqual({ y: 1 });
  });

  it('reports an assigned undefined as null', () => {
    expect(ev.script('x = undefined', { x: 1 }).assigned).toEqual({ x: null });
  });

  it('keeps the usual assignments working on frozen prototypes', () => {
    const result = ev.script(
      [
        'class MyError extends Error { constructor(m) { super(m); this.name = "MyError" } }',
        'const o = {}; o.toString = () => "custom";',
        'e = new MyError("x").name; s = String(o); h = o.hasOwnProperty("toString")',
      ].join('\n'),
      {},
    );
    expect(result.assigned).toEqual({ e: 'MyError', s: 'custom', h: true });
  });

  it('drops assignments made after the evaluation ended', () => {
    expect(ev.script('Promise.resolve().then(() => { late = 1 }); now = 1', {}).assigned).toEqual({ now: 1 });
    expect(failure(() => ev.expression('late', {})).message).toBe('ReferenceError: late is not defined');
  });

  it('gives "undefined" for `typeof unknownName` (more in typeof.test.ts)', () => {
    expect(ev.expression('typeof nothing', {})).toBe('undefined');
    expect(ev.expression('typeof something', { something: 1 })).toBe('number');
    expect(failure(() => ev.expression('nothing', {})).code).toBe('script_error');
  });
});

describe('isolation between evaluations', () => {
  const probe = (expression: string, variables: JsonObject = {}) => ev.expression(expression, variables);

  it('Object.prototype.x = 1 is invisible afterwards', () => {
    try {
      ev.script('Object.prototype.x = 1', {});
    } catch (e) {
      expect(e).toBeInstanceOf(ExpressionError);
    }
    expect(probe('typeof ({}).x')).toBe('undefined');
    expect(failure(() => ev.script('Object.defineProperty(Object.prototype, "z", { value: 1 })', {})).code).toBe('script_error');
    expect(probe('typeof ({}).z')).toBe('undefined');
  });

  it('Array.prototype.push = null is invisible afterwards', () => {
    try {
      ev.script('Array.prototype.push = null', {});
    } catch (e) {
      expect(e).toBeInstanceOf(ExpressionError);
    }
    expect(probe('[1].push(2)')).toBe(2);
  });

  it('writing to the global object is invisible afterwards', () => {
    expect(failure(() => ev.script('globalThis.y = 2', {})).code).toBe('script_error');
    // The global object itself, reached through the Function constructor, is frozen.
    ev.script('[].constructor.constructor("return this")().y = 2', {});
    expect(probe('[].constructor.constructor("return this")().y')).toBeNull();
    expect(probe('[].constructor.constructor("return typeof y")()')).toBe('undefined');
  });

  it('redefining JSON.parse or Math.max is invisible afterwards', () => {
    ev.script('JSON.parse = () => 42; Math.max = () => -1; delete Math.min', {});
    expect(probe('JSON.parse("1")')).toBe(1);
    expect(probe('Math.max(1, 2) + Math.min(1, 2)')).toBe(3);
  });

  it('variables and declarations of one evaluation are not visible to the next', () => {
    ev.script('leak = 1; var v = 2; function g() {}', {});
    expect(failure(() => probe('leak')).message).toBe('ReferenceError: leak is not defined');
    expect(failure(() => probe('v')).message).toBe('ReferenceError: v is not defined');
    expect(failure(() => probe('g')).message).toBe('ReferenceError: g is not defined');
  });

  it('cannot leave data on the compiled function shared by evaluations of one source', () => {
    const source = 'const f = arguments.callee.caller; out = f.prev === undefined ? null : f.prev; f.prev = secret;';
    expect(ev.script(source, { secret: 'A' }).assigned).toEqual({ out: null });
    expect(ev.script(source, { secret: 'B' }).assigned).toEqual({ out: null });
  });

  it('cannot leave data on intrinsic functions, tamed ones included', () => {
    for (const fn of ['Object.prototype.toString', 'Error.prototype.toString', 'Array.prototype.map', 'JSON.parse']) {
      const source = `const f = ${fn}; out = f.prev === undefined ? null : f.prev; f.prev = secret;`;
      expect(ev.script(source, { secret: 'A' }).assigned).toEqual({ out: null });
      expect(ev.script(source, { secret: 'B' }).assigned).toEqual({ out: null });
    }
  });

  it('the last RegExp match of another evaluation is not observable', () => {
    ev.script('/secret(\\d+)/.exec(text)', { text: 'secret42' });
    expect(probe('[typeof RegExp.$1, typeof RegExp.lastMatch]')).toEqual(['undefined', 'undefined']);
  });
});

describe('escapes', () => {
  it('has no process, require or module', () => {
    expect(failure(() => ev.expression('process', {})).code).toBe('script_error');
    expect(failure(() => ev.expression('process.env', {})).message).toBe('ReferenceError: process is not defined');
    expect(failure(() => ev.expression('require("fs")', {})).message).toBe('ReferenceError: require is not defined');
    expect(ev.expression('[].constructor.constructor("return [typeof process, typeof require, typeof module, typeof setTimeout, typeof fetch]")()', {})).toEqual([
      'undefined',
      'undefined',
      'undefined',
      'undefined',
      'undefined',
    ]);
  });

  it('cannot reach the host through constructor chains', () => {
    expect(failure(() => ev.expression('globalThis.constructor.constructor("return process")()', {})).code).toBe('script_error');
    expect(failure(() => ev.expression('this.constructor.constructor("return process")()', {})).message).toBe(
      'ReferenceError: process is not defined',
    );
    expect(failure(() => ev.expression('(() => {}).constructor("return process")()', {})).message).toBe('ReferenceError: process is not defined');
    expect(failure(() => ev.expression('Function("return this")()', {})).code).toBe('script_error');
    expect(failure(() => ev.script('x = [].constructor.constructor("return this")().constructor.constructor("return process")()', {})).code).toBe(
      'script_error',
    );
  });

  it('cannot import modules', () => {
    expect(failure(() => ev.expression('import("fs")', {})).code).toBe('script_error');
    expect(failure(() => ev.script('x = import("node:child_process")', {})).code).toBe('script_error');
  });

  it('has no eval, WebAssembly, SharedArrayBuffer or FinalizationRegistry', () => {
    expect(failure(() => ev.expression('eval("1")', {})).message).toBe('ReferenceError: eval is not defined');
    expect(
      ev.expression(
        '[].constructor.constructor("return [typeof WebAssembly, typeof SharedArrayBuffer, typeof FinalizationRegistry, typeof WeakRef]")()',
        {},
      ),
    ).toEqual(['undefined', 'undefined', 'undefined', 'undefined']);
  });
});

describe('limits', () => {
  it('stops an infinite loop with script_timeout, and the next evaluation works', () => {
    const e = failure(() => ev.script('while (true) {}', {}));
    expect(e.code).toBe('script_timeout');
    expect(ev.expression('1 + 1', {})).toBe(2);
  });

  it('stops an infinite loop in a promise callback', () => {
    expect(failure(() => ev.script('Promise.resolve().then(() => { while (true) {} })', {})).code).toBe('script_timeout');
    expect(ev.condition('true', {})).toBe(true);
  });

  it('stops a memory hog with script_memory, and the next evaluation works', () => {
    // Its own evaluator with a generous CPU limit: filling 64 MB takes 100–200 ms
    // on a loaded 2-core machine, and the shared 200 ms limit would sometimes win.
    const roomy = createEvaluator({ timeoutMs: 5000, memoryLimitMb: 64 });
    try {
      const e = failure(() => roomy.script('const a = []; while (true) a.push(new Array(1e6).fill(1))', {}));
      expect(e.code).toBe('script_memory');
      expect(roomy.expression('n + 1', { n: 1 })).toBe(2);
      // A fresh isolate is hardened like the first one.
      roomy.script('Array.prototype.push = null', {});
      expect(roomy.expression('[].push(1)', {})).toBe(1);
    } finally {
      roomy.close();
    }
  });

  it('reports a refused huge buffer as script_memory', () => {
    expect(failure(() => ev.script('b = new ArrayBuffer(2 ** 31)', {})).code).toBe('script_memory');
    expect(ev.expression('2', {})).toBe(2);
  });

  it('reports runaway recursion as script_error', () => {
    const e = failure(() => ev.script('function f() { return f() + 1 }\nf()', {}));
    expect(e.code).toBe('script_error');
    expect(e.message).toContain('Maximum call stack size exceeded');
  });
});

describe('errors', () => {
  it('gives the line of a thrown error in the user source', () => {
    const e = failure(() => ev.script('a = 1\nb = 2\nnull.x', {}));
    expect(e.code).toBe('script_error');
    expect(e.message).toBe("TypeError: Cannot read properties of null (reading 'x')");
    expect(e.line).toBe(3);
  });

  it('gives the line where a nested function threw', () => {
    const e = failure(() => ev.script('a = 1\nfunction f() {\n  throw new Error("boom")\n}\n\nf()', {}));
    expect(e.message).toBe('Error: boom');
    expect(e.line).toBe(3);
  });

  it('gives the line of an unknown variable', () => {
    expect(failure(() => ev.script('a = 1\n\nb = c', {})).line).toBe(3);
  });

  it('reports syntax errors with their line', () => {
    const e = failure(() => ev.script('a = 1\nb = (;\nc = 2', {}));
    expect(e.code).toBe('syntax_error');
    expect(e.message).toBe("SyntaxError: Unexpected token ';'");
    expect(e.line).toBe(2);
    const expr = failure(() => ev.expression('(a + b', { a: 1, b: 2 }));
    expect(expr.code).toBe('syntax_error');
    expect(expr.message).toBe('SyntaxError: Unexpected end of input');
    expect(expr.line).toBe(1);
    expect(failure(() => ev.condition('amount >', {})).code).toBe('syntax_error');
  });

  it('gives the column with the line, in the coordinates of the user source', () => {
    expect(failure(() => ev.script('a = 1; null.x', {}))).toMatchObject({ line: 1, column: 13 });
    expect(failure(() => ev.script('a = 1\n  null.x', {}))).toMatchObject({ line: 2, column: 8 });
    expect(failure(() => ev.expression('a + null.x', { a: 1 }))).toMatchObject({ line: 1, column: 10 });
    expect(failure(() => ev.script('a = 1\nb = (;', {}))).toMatchObject({ code: 'syntax_error', line: 2, column: 6 });
    expect(failure(() => ev.condition('a >* 1', {}))).toMatchObject({ code: 'syntax_error', line: 1, column: 4 });
    expect(failure(() => ev.script('throw "boom"', {})).column).toBeUndefined();
  });

  it('rejects a source that breaks out of its wrapper', () => {
    expect(failure(() => ev.script('}}}); (function () {', {})).code).toBe('syntax_error');
    // One that parses inside the wrapper too: it would leave a top-level `let` behind.
    const escape = '}()}};return Object.freeze(run);})(); let leaked = 1; (function(){const run=($scope)=>{with($scope){return function(){';
    expect(failure(() => ev.script(escape, {})).code).toBe('syntax_error');
    expect(ev.expression("(() => {}).constructor('return typeof leaked')()", {})).toBe('undefined');
  });

  it('describes thrown non-errors', () => {
    const s = failure(() => ev.script('throw "boom"', {}));
    expect(s.code).toBe('script_error');
    expect(s.message).toBe('Uncaught boom');
    expect(failure(() => ev.script('throw { message: "plain object" }', {})).message).toBe('plain object');
  });

  it('never lets anything but ExpressionError out', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(failure(() => ev.expression('self', cyclic as JsonObject)).code).toBe('script_error');
    expect(failure(() => ev.expression('n', { n: 1n } as unknown as JsonObject)).code).toBe('script_error');
    expect(failure(() => ev.expression('1', null as unknown as JsonObject)).code).toBe('script_error');
    expect(failure(() => ev.expression(42 as unknown as string, {})).code).toBe('syntax_error');
  });
});

describe('non-JSON results', () => {
  it.each([
    ['a function', '() => 1'],
    ['a symbol', 'Symbol("s")'],
    ['a BigInt', '10n'],
    ['a nested function', '({ f() {} })'],
    ['a promise', 'Promise.resolve(1)'],
  ])('rejects %s as script_result', (_label, source) => {
    expect(failure(() => ev.expression(source, {})).code).toBe('script_result');
  });

  it('rejects a cycle in an assigned variable', () => {
    const e = failure(() => ev.script('a = {}; a.self = a', {}));
    expect(e.code).toBe('script_result');
    expect(e.message).toContain('variable a is not JSON');
  });
});

describe('lifecycle', () => {
  it('recompiles sources evicted from a small cache', () => {
    const small = createEvaluator({ cacheSize: 2 });
    try {
      for (let i = 0; i < 5; i++) expect(small.expression(`${i} + n`, { n: 1 })).toBe(i + 1);
      expect(small.expression('0 + n', { n: 2 })).toBe(2);
    } finally {
      small.close();
    }
  });

  it('is closed after close(), which may be called twice', () => {
    const other = createEvaluator();
    expect(other.condition('true', {})).toBe(true);
    other.close();
    other.close();
    expect(failure(() => other.condition('true', {})).code).toBe('evaluator_closed');
  });
});
