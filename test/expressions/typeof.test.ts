/**
 * `typeof name` of a name that is neither a variable, a local nor a global
 * gives 'undefined', as in JavaScript, although the sandbox's `with` scope
 * claims every name (issue 13). Run on the sandbox alone and with the fast
 * path in front of it: both must answer the same.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import { startInstance, processVariables } from '../../src/engine/index.js';
import type { JsonObject } from '../../src/errors.js';
import { createEvaluator, type SandboxEvaluator } from '../../src/expressions/index.js';
import { originalPosition, rewriteTypeof } from '../../src/expressions/javascript/typeof.js';
import { failure } from '../support/expressions.js';

const evaluators: Array<[string, SandboxEvaluator]> = [
  ['sandbox', createEvaluator({ fastPath: false, timeoutMs: 2000 })],
  ['fast path + sandbox', createEvaluator({ timeoutMs: 2000 })],
];
afterAll(() => {
  for (const [, ev] of evaluators) ev.close();
});

describe.each(evaluators)('typeof (%s)', (_, ev) => {
  it('of an undeclared name is "undefined"', () => {
    expect(ev.expression('typeof nothing', {})).toBe('undefined');
    expect(ev.condition("typeof nothing === 'undefined'", {})).toBe(true);
    expect(ev.condition("typeof nothing !== 'undefined'", {})).toBe(false);
    expect(ev.expression('typeof typeof nothing', {})).toBe('string');
    expect(ev.expression('[typeof a, typeof b, typeof a + typeof b]', {})).toEqual(['undefined', 'undefined', 'undefinedundefined']);
  });

  it('guards a read that follows it', () => {
    expect(ev.condition("typeof a === 'undefined' || a > 1", {})).toBe(true);
    expect(ev.condition("typeof a === 'undefined' || a > 1", { a: 2 })).toBe(true);
    expect(ev.condition("typeof a === 'undefined' || a > 1", { a: 0 })).toBe(false);
    expect(ev.expression("typeof limit === 'number' ? limit : 10", {})).toBe(10);
    expect(ev.expression("typeof limit === 'number' ? limit : 10", { limit: 3 })).toBe(3);
  });

  it('with parentheses, comments and line breaks around the name', () => {
    expect(ev.expression('typeof (x)', {})).toBe('undefined');
    expect(ev.expression('typeof(x)', {})).toBe('undefined');
    expect(ev.expression('typeof ((x))', {})).toBe('undefined');
    expect(ev.expression('typeof /* a comment */ x', {})).toBe('undefined');
    expect(ev.expression('typeof\n  x', {})).toBe('undefined');
    expect(ev.expression('typeof // a line comment\n x', {})).toBe('undefined');
    expect(ev.expression('(typeof x)', {})).toBe('undefined');
    expect(ev.expression('typeof\tx', { x: 's' })).toBe('string');
  });

  it('inside functions, arrow functions, templates and default parameters', () => {
    expect(ev.expression('(() => typeof x)()', {})).toBe('undefined');
    expect(ev.expression('(function () { return typeof x })()', {})).toBe('undefined');
    expect(ev.expression('`${typeof x}`', {})).toBe('undefined');
    expect(ev.expression('`x is ${typeof x}, y is ${typeof y}`', { y: 1 })).toBe('x is undefined, y is number');
    expect(ev.expression('(function (a = typeof z) { return a })()', {})).toBe('undefined');
    expect(ev.expression('[1, 2].map(i => typeof i + typeof j)', {})).toEqual(['numberundefined', 'numberundefined']);
    expect(ev.expression('new (class { t = typeof q })().t', {})).toBe('undefined');
  });

  it('of a variable, a local or a global gives its real type', () => {
    expect(ev.expression('typeof count', { count: 4 })).toBe('number');
    expect(ev.expression('[typeof s, typeof b, typeof n, typeof o, typeof l]', { s: 'x', b: true, n: null, o: { a: 1 }, l: [1] })).toEqual([
      'string',
      'boolean',
      'object',
      'object',
      'object',
    ]);
    expect(ev.expression('typeof long', { long: 'x'.repeat(1000) })).toBe('string');
    expect(ev.expression('[typeof Math, typeof JSON, typeof parseInt, typeof Date, typeof undefined, typeof NaN]', {})).toEqual([
      'object',
      'object',
      'function',
      'function',
      'undefined',
      'number',
    ]);
    // a variable named like a global wins over it
    expect(ev.expression('typeof Math', { Math: 5 })).toBe('number');
    expect(ev.script('let x = "a"; t = typeof x', {}).assigned).toEqual({ t: 'string' });
    expect(ev.script('let count = "s"; t = typeof count', { count: 4 }).assigned).toEqual({ t: 'string' });
    expect(ev.script('if (true) { let x = 1; inner = typeof x } outer = typeof x', {}).assigned).toEqual({ inner: 'number', outer: 'undefined' });
    expect(ev.script('f = (function (x) { return typeof x })(1)', {}).assigned).toEqual({ f: 'number' });
    expect(ev.script('function g() {}\nt = typeof g', {}).assigned).toEqual({ t: 'function' });
    expect(ev.script('t = (function () { return typeof arguments })()', {}).assigned).toEqual({ t: 'object' });
    expect(ev.script('with ({ w: 1 }) { t = [typeof w, typeof v] }', {}).assigned).toEqual({ t: ['number', 'undefined'] });
  });

  it('assigns after the typeof: the counter idiom', () => {
    const src = "count = (typeof count === 'number' ? count : 0) + 1";
    expect(ev.script(src, {}).assigned).toEqual({ count: 1 });
    expect(ev.script(src, { count: 4 }).assigned).toEqual({ count: 5 });
    expect(ev.script('n = typeof n', {}).assigned).toEqual({ n: 'undefined' });
  });

  it('does not hide a missing variable read outside typeof', () => {
    const guard = "if (typeof rate !== 'number') throw new Error('rate missing')";
    expect(failure(() => ev.script(guard, {}))).toMatchObject({ code: 'script_error', message: 'Error: rate missing', line: 1 });
    expect(ev.script(guard, { rate: 0.2 }).assigned).toEqual({});
    expect(failure(() => ev.condition("typeof x === 'undefined' && x", {}))).toMatchObject({
      code: 'script_error',
      message: 'ReferenceError: x is not defined',
    });
    expect(failure(() => ev.script('t = typeof x\ny = x', {}))).toMatchObject({ message: 'ReferenceError: x is not defined', line: 2 });
  });

  it('of a property of an undeclared name throws, as in JavaScript', () => {
    expect(failure(() => ev.expression('typeof x.y', {}))).toMatchObject({ code: 'script_error', message: 'ReferenceError: x is not defined' });
    expect(failure(() => ev.expression('typeof x[0]', {})).message).toBe('ReferenceError: x is not defined');
    expect(failure(() => ev.expression('typeof x?.y', {})).message).toBe('ReferenceError: x is not defined');
    expect(failure(() => ev.expression('typeof (x, 1)', {})).message).toBe('ReferenceError: x is not defined');
    expect(ev.expression('typeof x.y', { x: {} })).toBe('undefined');
  });

  it('of a local in its temporal dead zone throws, at the name', () => {
    expect(failure(() => ev.script('t = typeof x; let x = 1', {}))).toMatchObject({
      code: 'script_error',
      message: "ReferenceError: Cannot access 'x' before initialization",
      line: 1,
      column: 12,
    });
  });

  it('of a variable that cannot be serialised still fails', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(failure(() => ev.expression('typeof self', { self: cyclic } as never)).message).toContain('variable self is not JSON');
  });

  it('leaves strings, comments, regular expressions, templates and property names alone', () => {
    expect(ev.script("s = 'typeof x'; d = \"typeof (y)\"", {}).assigned).toEqual({ s: 'typeof x', d: 'typeof (y)' });
    expect(ev.script('// typeof x\n/* typeof y */ s = 1', {}).assigned).toEqual({ s: 1 });
    expect(ev.expression('/typeof x/.source', {})).toBe('typeof x');
    expect(ev.expression('`typeof x ${typeof x} typeof x`', {})).toBe('typeof x undefined typeof x');
    expect(ev.expression('({ typeof: 1 }).typeof', {})).toBe(1);
    expect(ev.expression("'a typeof b'.split(' ').length", {})).toBe(3);
  });

  it('keeps the line and column of a later failure', () => {
    // The same source with each `typeof name` replaced by a number literal
    // of the same length (line breaks kept) must fail at the same place.
    const same = (src: string) => src.replace(/typeof\s*(?:\(\s*\w+\s*\)|\w+)/g, (m) => m.replace(/[^\n]/g, ' ').replace(/^ /, '0'));
    const where = (run: () => unknown) => {
      const e = failure(run);
      return { code: e.code, line: e.line, column: e.column };
    };
    const scripts = [
      't = typeof a; null.x',
      't = (typeof a); null.x',
      't = typeof a === "x" || null.x',
      't = [typeof a, typeof b, null.x]',
      't = typeof (a) + typeof(b) + null.x',
      't = `${typeof a}${null.x}`',
      't = typeof a\nnull.x',
      't = typeof a\n\nu = 1; null.x',
      't = typeof /* c */ a; null.x',
      't = [typeof a,\n typeof b]; null.x',
      't = [typeof a,\n typeof b, null.x]',
      't = typeof\n a; null.x',
      't = typeof\n a, null.x',
      't = typeof a; throw new Error("after")',
    ];
    for (const src of scripts) {
      expect(where(() => ev.script(src, {})), src).toEqual(where(() => ev.script(same(src), {})));
      expect(where(() => ev.script(src, {})).line, src).toBe(src.split('\n').length);
    }
    const expressions = ['typeof a !== "number" && null.x', '[typeof a, typeof b].length + null.x', 'typeof a\n + null.x', '(typeof a) + null.x'];
    for (const src of expressions) {
      expect(where(() => ev.expression(src, {})), src).toEqual(where(() => ev.expression(same(src), {})));
    }
    expect(failure(() => ev.script('t = typeof a\nnull.x', {}))).toMatchObject({ line: 2, column: 6 });
  });

  it('does not change syntax errors', () => {
    const syntax = (run: () => unknown) => {
      const e = failure(run);
      return { code: e.code, message: e.message, line: e.line, column: e.column };
    };
    expect(syntax(() => ev.script('t = typeof a\nb = (;', {}))).toEqual({ ...syntax(() => ev.script('t = "xxxxxx"\nb = (;', {})), code: 'syntax_error' });
    expect(syntax(() => ev.condition('typeof a ===', {}))).toMatchObject({ code: 'syntax_error' });
  });

  it('leaves a variable with the name of its helper readable', () => {
    // the rewrite calls a helper named U+1D40, or another name when the source spells that one
    expect(ev.expression('\u1d40', { '\u1d40': 3 })).toBe(3);
    expect(ev.expression('typeof \u1d40', { '\u1d40': 3 })).toBe('number');
    expect(ev.expression('[typeof \\u1d40, typeof y]', { '\u1d40': 3 })).toEqual(['number', 'undefined']);
  });
});

describe('typeof in a script task', () => {
  const ev = evaluators[0]![1];
  const bpmn = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="http://baton.test">
  <bpmn:process id="typeof_counter">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="count" />
    <bpmn:scriptTask id="count" scriptFormat="javascript"><bpmn:script>count = (typeof count === 'number' ? count : 0) + 1
if (typeof rate !== 'number') rate = 0.1</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="count" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>`;

  it('counts from a missing variable instead of ending as an incident', async () => {
    const { processes, problems } = await compileFiles([{ name: 'typeof.bpmn', content: bpmn }]);
    expect(problems).toEqual([]);
    const graph = processes[0]!.graph;
    let clock = Date.parse('2026-01-01T00:00:00.000Z');
    let id = 0;
    const ctx = { now: () => new Date(clock++), newId: () => `id-${++id}`, evaluators: () => ev };
    const run = (variables: JsonObject) => startInstance(graph, { type: 'start', variables }, ctx).state;
    const fresh = run({});
    expect(fresh.incidents).toEqual([]);
    expect(fresh.status).toBe('completed');
    expect(processVariables(fresh)).toEqual({ count: 1, rate: 0.1 });
    expect(processVariables(run({ count: 4, rate: 0.5 }))).toEqual({ count: 5, rate: 0.5 });
  });
});

describe('the typeof rewrite (typeof.ts)', () => {
  it('wraps the read of a bare or parenthesised name only, keeping line breaks', () => {
    expect(rewriteTypeof("t = typeof a === 'x'")).toEqual({ body: "t = \u1d40(()=> a) === 'x'", helper: '\u1d40', shifts: [{ line: 1, column: 14 }] });
    expect(rewriteTypeof('t = typeof (a)')?.body).toBe('t = \u1d40(()=> (a))');
    expect(rewriteTypeof('t = typeof\n a; u = typeof b')?.body).toBe('t = \u1d40(()=>\n a); u = \u1d40(()=> b)');
    expect(rewriteTypeof('return (typeof a\n);', 'return ('.length)?.shifts).toEqual([{ line: 1, column: 10 }]);
    for (const src of ['t = typeof a.b', 't = typeof a()', 't = typeof (a, b)', 't = "typeof a"', '// typeof a', 't = /typeof a/', 't = `typeof a`', 't = o.typeof']) {
      expect(rewriteTypeof(src), src).toBeNull();
    }
    // does not parse: left to V8, which reports it
    expect(rewriteTypeof('t = typeof a +')).toBeNull();
    expect(rewriteTypeof('}); typeof a; (function () {')).toBeNull();
  });

  it('picks a helper name the source does not spell', () => {
    expect(rewriteTypeof('\u1d40 = typeof a')?.helper).toBe('\u1d41');
    expect(rewriteTypeof('t = typeof \\u1d40')?.helper).toBe('\u1d41');
    expect(rewriteTypeof("t = typeof a + '\u1d40'")?.helper).toBe('\u1d40');
  });

  it('maps a column after an inserted parenthesis back', () => {
    const r = rewriteTypeof('t = [typeof a, typeof b, c]')!;
    expect(r.body).toBe('t = [\u1d40(()=> a), \u1d40(()=> b), c]');
    const column = (text: string, what: string) => text.indexOf(what) + 1;
    expect(originalPosition(r.shifts, 1, column(r.body, 'c]'))).toBe(column('t = [typeof a, typeof b, c]', 'c]'));
    expect(originalPosition(r.shifts, 1, column(r.body, ', \u1d40'))).toBe(column('t = [typeof a, typeof b, c]', ', typeof'));
    expect(originalPosition(r.shifts, 1, column(r.body, 'a)'))).toBe(column('t = [typeof a, typeof b, c]', 'a,'));
    expect(originalPosition(r.shifts, 2, 5)).toBe(5);
  });
});

describe('typeof: the helper is no way out', () => {
  const ev = evaluators[0]![1];
  // A function called through the scope gets the scope Proxy as `this`, and
  // through it the helper of the evaluation (only when the source has a typeof).
  const helper = "g = function () { return this }; h = g()['\\u1d40']; t = typeof z;";

  it('belongs to one evaluation and reaches nothing', () => {
    expect(ev.script(`${helper} h.mark = 1; k = typeof h; c = h(function f() { return f.caller }); g = h = null`, {}).assigned).toMatchObject({
      t: 'undefined',
      k: 'function',
      c: 'object',
    });
    expect(ev.script(`${helper} m = h.mark; g = h = null`, {}).assigned).toMatchObject({ m: null });
    expect(ev.script(`${helper} p = Object.getPrototypeOf(h) === Object.getPrototypeOf(g) && Object.isFrozen(Object.getPrototypeOf(h)); g = h = null`, {}).assigned).toMatchObject({
      p: true,
    });
  });

  it('does not swallow other errors or the time limit', () => {
    expect(failure(() => ev.script(`${helper} h(() => { throw new TypeError('mine') })`, {})).message).toBe('TypeError: mine');
    expect(failure(() => ev.script(`${helper} h(() => { for (;;) {} })`, {})).code).toBe('script_timeout');
  });
});

describe('typeof: the same answers as JavaScript itself', () => {
  const ev = evaluators[0]![1];
  const names = ['a', 'b', 'c'];
  type Outcome = { ok: unknown } | { error: string };
  /** What plain JavaScript answers, with the declared variables as parameters and the others undeclared. */
  function native(src: string, vars: JsonObject): Outcome {
    try {
      const value: unknown = new Function(...Object.keys(vars), `return (${src}\n);`)(...Object.values(vars));
      return { ok: JSON.parse(JSON.stringify(value) ?? 'null') };
    } catch (e) {
      return { error: (e as Error).name };
    }
  }
  function sandboxed(src: string, vars: JsonObject): Outcome {
    try {
      return { ok: ev.expression(src, vars) };
    } catch (e) {
      return { error: /^(\w+):/.exec((e as Error).message)?.[1] ?? (e as Error).message };
    }
  }

  it('agrees on random sources mixing typeof, reads and locals (differential)', () => {
    const name = fc.constantFrom(...names);
    const { expr } = fc.letrec((tie) => ({
      expr: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom('1', "'s'", 'null', 'undefined', 'Math.PI'),
        name,
        name.map((n) => `typeof ${n}`),
        name.map((n) => `typeof (${n})`),
        name.map((n) => `typeof${' '.repeat(2)}/* c */${n}`),
        name.map((n) => `typeof ${n}.length`),
        name.map((n) => `(typeof ${n} === 'undefined' ? 0 : ${n})`),
        name.map((n) => `\`\${typeof ${n}}\``),
        fc.tuple(name, tie('expr')).map(([n, x]) => `((${n}) => ${x})(7)`),
        fc.tuple(name, tie('expr')).map(([n, x]) => `(() => { let ${n} = 'l'; return ${x} })()`),
        fc.tuple(tie('expr'), fc.constantFrom('+', '===', '||', '&&', ','), tie('expr')).map(([x, op, y]) => `(${x} ${op} ${y})`),
        tie('expr').map((x) => `typeof (${x})`),
        tie('expr').map((x) => `[${x}]`),
      ),
    }));
    const vars = fc.dictionary(fc.constantFrom(...names), fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null), fc.boolean()), { maxKeys: 3 });
    fc.assert(
      fc.property(expr, vars, (src, v) => {
        expect(sandboxed(src, v), `${src} ${JSON.stringify(v)}`).toEqual(native(src, v));
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1) * 400 },
    );
  });
});
