/**
 * Hostile input for the script sandbox (src/expressions): a catalogue of
 * attack attempts by user code of a BPMN model, each of which must fail
 * safely. Every case ends either as an ExpressionError with a stable code or
 * as a clean JSON result, and after every case:
 * - this process (the worker) and the sandbox process behind the evaluator
 *   are alive, and nothing leaked into this process (prototypes, JSON, …);
 * - the next evaluation on the SAME evaluator sees a clean context.
 *
 * One evaluator serves the whole catalogue, created like the runtime does
 * (src/boot.ts: createEvaluator), with small limits so the suite stays fast.
 * `hardTimeoutMs` is generous: it is only reached when the sandbox process
 * stops answering, and a memory bomb that makes V8 abort that process must
 * be reported as script_memory, not as a timeout, also on a loaded machine.
 *
 * The outcomes are printed as a table, and kept in SANDBOX-CATALOGUE.md next
 * to this file: the last test fails when the file is out of date; run
 * `UPDATE_SANDBOX_CATALOGUE=1 npx vitest run --config test/vitest.config.ts test/security/sandbox.test.ts`
 * to rewrite it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFiles } from '../../src/bpmn/index.js';
import type { ProcessGraph } from '../../src/bpmn/types.js';
import type { EngineContext } from '../../src/engine/types.js';
import type { Json, JsonObject } from '../../src/errors.js';
import { createEvaluator, ExpressionError, type SandboxEvaluator } from '../../src/expressions/index.js';
import { Instance, START_TIME } from '../engine/helpers.js';
import { failure } from '../support/expressions.js';

type Kind = 'script' | 'condition' | 'expression';
type Expected = { code: string; line?: number; column?: number } | { result: Json | boolean };

interface Case {
  /** What the attack attempts. */
  name: string;
  kind: Kind;
  source: string;
  variables?: JsonObject;
  expected: Expected;
}

/**
 * Time limit of the evaluators. Small, but with room for the memory bombs to
 * reach the memory limit first also when the machine is busy.
 */
const TIMEOUT_MS = 1000;

/** `(() => {}).constructor`: the isolate's Function, which user code can always reach. */
const F = '(() => {}).constructor';

const CASES: Case[] = [
  // ---- reaching Node -------------------------------------------------------
  { name: 'host `process`', kind: 'expression', source: 'process.pid', expected: { code: 'script_error', line: 1, column: 1 } },
  { name: "`require('child_process')`", kind: 'expression', source: "require('child_process')", expected: { code: 'script_error', line: 1, column: 1 } },
  { name: "dynamic `import('node:fs')`", kind: 'expression', source: "import('node:fs')", expected: { code: 'script_error' } },
  { name: "static `import fs from 'node:fs'`", kind: 'script', source: "import fs from 'node:fs'", expected: { code: 'syntax_error', line: 1 } },
  { name: '`globalThis` by name', kind: 'expression', source: 'globalThis', expected: { code: 'script_error' } },
  {
    name: 'inspect the real global object for Node names',
    kind: 'expression',
    source: `Object.getOwnPropertyNames(${F}('return this')()).filter(n => /^(process|require|module|exports|global|Buffer|setTimeout|setInterval|setImmediate|queueMicrotask|fetch|SharedArrayBuffer|Atomics|WebAssembly|eval|_ivm.*|ivm)$/.test(n))`,
    expected: { result: [] },
  },
  // ---- constructor chains --------------------------------------------------
  { name: "`this.constructor.constructor('return process')()`", kind: 'expression', source: "this.constructor.constructor('return process')()", expected: { code: 'script_error' } },
  { name: 'Function via an arrow function, `typeof` of Node globals', kind: 'expression', source: `${F}('return [typeof process, typeof require, typeof global, typeof module].join()')()`, expected: { result: 'undefined,undefined,undefined,undefined' } },
  { name: 'AsyncFunction constructor', kind: 'expression', source: "(async () => {}).constructor('return process')()", expected: { code: 'script_error' } },
  { name: 'GeneratorFunction constructor', kind: 'expression', source: "(function* () {}).constructor('yield process')().next().value", expected: { code: 'script_error' } },
  {
    name: '`Error.prepareStackTrace` to get CallSites (and their functions)',
    kind: 'script',
    source: "Error.prepareStackTrace = (e, frames) => frames.map(f => typeof f.getFunction()); trace = typeof new Error('x').stack; installed = Error.prepareStackTrace !== undefined",
    expected: { result: { trace: 'string', installed: false } },
  },
  { name: '`Error.captureStackTrace` on a frozen intrinsic', kind: 'script', source: 'Error.captureStackTrace(Object.prototype)', expected: { code: 'script_error', line: 1 } },
  {
    name: '`Symbol.species` returning a constructor that reaches `process`',
    kind: 'script',
    source: 'class X extends Array { static get [Symbol.species]() { return function () { return process } } }\nr = new X(1, 2).map(x => x)',
    expected: { code: 'script_error', line: 1 },
  },
  { name: '`arguments.callee.caller` walk to the runtime', kind: 'script', source: 'let f = arguments.callee; hops = 0; try { while (f) { f = f.caller; hops++ } } catch (e) { stopped = e.name }', expected: { result: { hops: 1, stopped: 'TypeError' } } },
  // ---- Function / eval -----------------------------------------------------
  { name: '`eval` by name', kind: 'expression', source: "eval('process')", expected: { code: 'script_error', line: 1, column: 1 } },
  { name: 'indirect eval through the real global object', kind: 'expression', source: `typeof ${F}('return this')().eval`, expected: { result: 'undefined' } },
  {
    name: 'escape the wrapper: `}})(); let leaked = …` at the top level',
    kind: 'script',
    source: '}()}};return Object.freeze(run);})(); let leaked = "from another script"; (function(){const run=($scope)=>{with($scope){return function(){',
    expected: { code: 'syntax_error' },
  },
  // ---- prototype pollution and tampering with builtins ---------------------
  { name: '`Object.prototype.polluted = 1` (sloppy)', kind: 'script', source: 'Object.prototype.polluted = 1; seen = ({}).polluted', expected: { result: { seen: null } } },
  { name: '`Object.prototype.polluted = 1` (strict)', kind: 'script', source: "'use strict'; Object.prototype.polluted = 1", expected: { code: 'script_error', line: 1, column: 41 } },
  { name: '`Object.defineProperty(Object.prototype, …)`', kind: 'script', source: "Object.defineProperty(Object.prototype, 'polluted', { value: 1 })", expected: { code: 'script_error', line: 1 } },
  { name: '`({}).__proto__.polluted = 1`', kind: 'script', source: '({}).__proto__.polluted = 1; seen = ({}).polluted', expected: { result: { seen: null } } },
  {
    name: 'replace `Array.prototype.map`, `JSON.stringify`, `Object.keys`',
    kind: 'script',
    source: "Array.prototype.map = () => 'hacked'; JSON.stringify = () => 'hacked'; Object.keys = () => []; mapped = [1, 2].map(x => x * 2)",
    expected: { result: { mapped: [2, 4] } },
  },
  { name: '`Object.prototype.toString = …` (tamed setter)', kind: 'script', source: "Object.prototype.toString = () => 'hacked'", expected: { code: 'script_error', line: 1 } },
  { name: 'freeze / seal builtins, cut `Array.prototype` off', kind: 'script', source: 'Object.freeze(Object.prototype); Object.seal(Array.prototype); Object.setPrototypeOf(Array.prototype, null)', expected: { code: 'script_error', line: 1 } },
  { name: 'define a global through `Function`', kind: 'script', source: `${F}('this.leaked = 1; leaked2 = 2')(); r = ${F}('return typeof leaked')()`, expected: { result: { r: 'undefined' } } },
  {
    name: 'a variable named `__proto__` (would set the prototype of the caller\'s object)',
    kind: 'script',
    source: '__proto__ = { isAdmin: true }',
    expected: { code: 'script_result' },
  },
  { name: '`__proto__` key inside a value stays a plain key', kind: 'script', source: 'r = JSON.parse(\'{"__proto__": {"isAdmin": true}}\')', expected: { result: { r: { ['__proto__']: { isAdmin: true } } } } },
  // ---- shared memory -------------------------------------------------------
  { name: '`Atomics.wait` to hang the sandbox', kind: 'script', source: 'Atomics.wait(new Int32Array(new SharedArrayBuffer(16)), 0, 0)', expected: { code: 'script_error', line: 1 } },
  { name: 'SharedArrayBuffer / Atomics / WebAssembly.Memory({shared}) via the global', kind: 'expression', source: `${F}('return [typeof SharedArrayBuffer, typeof Atomics, typeof WebAssembly].join()')()`, expected: { result: 'undefined,undefined,undefined' } },
  // ---- timers and promise jobs ---------------------------------------------
  { name: 'timers exist?', kind: 'expression', source: `${F}('return [typeof setTimeout, typeof setInterval, typeof setImmediate, typeof queueMicrotask].join()')()`, expected: { result: 'undefined,undefined,undefined,undefined' } },
  { name: '`setTimeout(…)`', kind: 'script', source: 'setTimeout(() => { late = 1 }, 0)', expected: { code: 'script_error', line: 1, column: 1 } },
  { name: 'promise job assigns after the script returned', kind: 'script', source: 'Promise.resolve().then(() => { late = 1 }); x = 1', expected: { result: { x: 1 } } },
  { name: 'promise job loops forever after the script returned', kind: 'script', source: 'Promise.resolve().then(() => { while (true) {} }); x = 1', expected: { code: 'script_timeout' } },
  { name: 'async function loops after two awaits', kind: 'script', source: '(async () => { await null; await null; while (true) {} })(); x = 2', expected: { code: 'script_timeout' } },
  { name: 'unhandled rejection', kind: 'script', source: "Promise.reject(new TypeError('late')); y = 1", expected: { code: 'script_error' } },
  // ---- time --------------------------------------------------------------
  { name: '`while (true) {}`', kind: 'script', source: 'while (true) {}', expected: { code: 'script_timeout' } },
  { name: 'endless loop in `toJSON` during result serialisation', kind: 'script', source: 'r = { toJSON() { while (true) {} } }', expected: { code: 'script_timeout' } },
  { name: 'endless loop in a getter during result serialisation', kind: 'expression', source: '({ get a() { while (true) {} } })', expected: { code: 'script_timeout' } },
  { name: 'endless loop in `valueOf` of a condition result (never called)', kind: 'condition', source: '({ valueOf() { while (true) {} } })', expected: { result: true } },
  { name: 'endless loop in a Proxy `ownKeys` trap of the result', kind: 'expression', source: 'new Proxy({}, { ownKeys() { while (true) {} } })', expected: { code: 'script_timeout' } },
  { name: 'condition result is a Proxy with traps (truthiness runs none)', kind: 'condition', source: 'new Proxy({}, { get() { while (true) {} }, getPrototypeOf() { while (true) {} } })', expected: { result: true } },
  { name: 'Proxy result whose `get` trap throws', kind: 'expression', source: "new Proxy({ a: 1 }, { get() { throw new Error('trap') } })", expected: { code: 'script_result' } },
  { name: 'deep recursion (stack overflow)', kind: 'script', source: 'function f() { return f() + 1 }\nf()', expected: { code: 'script_error', line: 1 } },
  { name: 'result nested 100,000 deep (stack overflow while serialising)', kind: 'script', source: 'let a = []; for (let i = 0; i < 1e5; i++) a = [a]; r = a', expected: { code: 'script_result' } },
  // ---- memory ----------------------------------------------------------------
  { name: '1 GB typed array', kind: 'script', source: 'ok = 1\nbuffer = new Uint8Array(1e9)', expected: { code: 'script_memory', line: 2, column: 10 } },
  { name: 'array of 1e9 elements, filled', kind: 'script', source: 'a = new Array(1e9).fill(0)', expected: { code: 'script_memory' } },
  { name: 'growing array of 8 MB buffers', kind: 'script', source: 'const a = []; for (;;) a.push(new Float64Array(1 << 20))', expected: { code: 'script_memory', line: 1 } },
  { name: 'Map growth with 1 MB values', kind: 'script', source: 'const m = new Map(); for (let i = 0; ; i++) m.set(i, new Array(1 << 17).fill(i))', expected: { code: 'script_memory' } },
  { name: 'string doubling (hits the maximum string length)', kind: 'script', source: "let s = 'x'; while (true) s += s", expected: { code: 'script_error', line: 1 } },
  { name: '200 MB string assigned to a variable', kind: 'script', source: "s = 'x'.repeat(200 * 1024 * 1024)", expected: { code: 'script_memory' } },
  { name: '200 MB string as an expression result', kind: 'expression', source: "'x'.repeat(200 * 1024 * 1024)", expected: { code: 'script_memory' } },
  // ---- results that are not JSON -------------------------------------------
  { name: 'a function as a variable', kind: 'script', source: 'f = () => process', expected: { code: 'script_result' } },
  { name: 'a symbol as a variable', kind: 'script', source: "s = Symbol('x')", expected: { code: 'script_result' } },
  { name: 'a BigInt result', kind: 'expression', source: '10n ** 30n', expected: { code: 'script_result' } },
  { name: 'a Promise result', kind: 'expression', source: 'Promise.resolve(1)', expected: { code: 'script_result' } },
  { name: 'a cycle', kind: 'script', source: 'a = {}; a.self = a', expected: { code: 'script_result' } },
  {
    name: 'Date, undefined, NaN, Infinity',
    kind: 'script',
    source: 'd = new Date(0); u = undefined; n = NaN; i = -Infinity; o = { gone: undefined, list: [undefined, NaN] }',
    expected: { result: { d: '1970-01-01T00:00:00.000Z', u: null, n: null, i: null, o: { list: [null, null] } } },
  },
  { name: 'typed array, Map, Set', kind: 'expression', source: '[new Uint8Array([1, 2]), new Map([[1, 2]]), new Set([1])]', expected: { result: [{ '0': 1, '1': 2 }, {}, {}] } },
  { name: 'NUL character in a string result', kind: 'script', source: "s = 'a' + String.fromCharCode(0) + 'b'", expected: { code: 'script_result' } },
  { name: 'NUL character in a key of the result', kind: 'expression', source: "({ ['k' + String.fromCharCode(0)]: 1 })", expected: { code: 'script_result' } },
  { name: 'unpaired surrogate in a string result', kind: 'expression', source: "'\\ud800'", expected: { code: 'script_result' } },
  { name: 'the text `\\u0000` (escaped, no NUL) is fine', kind: 'expression', source: "'\\\\u0000'", expected: { result: '\\u0000' } },
  // ---- what is thrown ------------------------------------------------------
  { name: '`throw null`', kind: 'script', source: 'throw null', expected: { code: 'script_error' } },
  { name: '`throw { toString() { while (true) {} } }`', kind: 'script', source: 'throw { toString() { while (true) {} } }', expected: { code: 'script_timeout' } },
  { name: 'thrown object with an endless `message` getter', kind: 'script', source: 'throw { get message() { while (true) {} } }', expected: { code: 'script_timeout' } },
  { name: 'thrown Proxy whose every trap throws', kind: 'script', source: "throw new Proxy({}, { get() { throw new Error('no') }, getPrototypeOf() { throw new Error('no') } })", expected: { code: 'script_error' } },
  { name: 'thrown Error with a NUL character and 1 MB of message', kind: 'script', source: "throw new Error('a' + String.fromCharCode(0) + 'x'.repeat(1 << 20))", expected: { code: 'script_error', line: 1, column: 7 } },
  // ---- syntax ----------------------------------------------------------------
  { name: 'syntax error', kind: 'script', source: 'x = 1\n  y = ;', expected: { code: 'syntax_error', line: 2, column: 7 } },
  { name: 'expression that closes its parenthesis and runs a statement', kind: 'expression', source: 'a); while (true) {} (a', variables: { a: 1 }, expected: { result: 1 } },
];

/** What a case came to. */
interface Outcome {
  code?: string;
  line?: number;
  column?: number;
  message?: string;
  result?: unknown;
  ms: number;
}

/**
 * Run after every case with `probe` as the variable: proves the next
 * evaluation sees a clean context. The same value must come back every time.
 */
const CLEAN_PROBE = `
const Fn = ${F};
const g = Fn('return this')();
state = {
  plainObject: ({}).polluted === undefined && ({}).x === undefined && ({}).isAdmin === undefined,
  noProcess: Fn('return typeof process')() === 'undefined',
  noLeakedGlobals: Fn('return [typeof leaked, typeof leaked2, typeof late].join()')() === 'undefined,undefined,undefined',
  map: [1, 2].map(x => x * 2).join(),
  json: JSON.stringify({ a: [1, 'b'] }),
  keys: Object.keys({ b: 1, c: 2 }).join(),
  toString: String({}),
  frozen: [Object.prototype, Array.prototype, Fn.prototype, Fn, JSON, Object, g].every(Object.isFrozen),
  globals: Object.getOwnPropertyNames(g).length,
  objectProto: Reflect.ownKeys(Object.prototype).length,
  arrayProto: Reflect.ownKeys(Array.prototype).length,
  stackTrace: typeof Error.prepareStackTrace,
  probe: probe.a,
};
probe.a = 2;
`;

const HOST = {
  map: Array.prototype.map,
  stringify: JSON.stringify,
  keys: Object.keys,
  objectProto: Reflect.ownKeys(Object.prototype).length,
  arrayProto: Reflect.ownKeys(Array.prototype).length,
};

/** Nothing changed in this (the worker's) process. */
function expectHostClean(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  expect(Array.prototype.map).toBe(HOST.map);
  expect(JSON.stringify).toBe(HOST.stringify);
  expect(Object.keys).toBe(HOST.keys);
  expect(Reflect.ownKeys(Object.prototype)).toHaveLength(HOST.objectProto);
  expect(Reflect.ownKeys(Array.prototype)).toHaveLength(HOST.arrayProto);
  expect([1, 2].map((x) => x * 2)).toEqual([2, 4]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function run(ev: SandboxEvaluator, c: Case): Outcome {
  const started = performance.now();
  try {
    const variables = c.variables ?? {};
    const result =
      c.kind === 'script' ? ev.script(c.source, variables).assigned : c.kind === 'condition' ? ev.condition(c.source, variables) : ev.expression(c.source, variables);
    return { result, ms: performance.now() - started };
  } catch (e) {
    // Anything but an ExpressionError is a failure of the sandbox.
    expect(e).toBeInstanceOf(ExpressionError);
    const x = e as ExpressionError;
    return {
      code: x.code,
      message: x.message,
      ...(x.line !== undefined ? { line: x.line } : {}),
      ...(x.column !== undefined ? { column: x.column } : {}),
      ms: performance.now() - started,
    };
  }
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').replace(/\|/g, '\\|');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function describeOutcome(o: Outcome): string {
  if (o.code === undefined) return `result ${JSON.stringify(o.result)}`;
  const at = o.line === undefined ? '' : ` (line ${o.line}${o.column === undefined ? '' : `, column ${o.column}`})`;
  return `${o.code}${at}`;
}

const outcomes = new Map<string, Outcome>();
const CATALOGUE = new URL('./SANDBOX-CATALOGUE.md', import.meta.url);

function catalogueMarkdown(): string {
  const rows = CASES.map((c) => {
    const o = outcomes.get(c.name);
    // Only what the case asserts, so that the file does not depend on timing.
    const at = 'code' in c.expected && c.expected.line !== undefined ? `, line ${c.expected.line}${c.expected.column === undefined ? '' : ` col ${c.expected.column}`}` : '';
    const outcome = o === undefined ? 'not run' : o.code === undefined ? `clean result \`${oneLine(JSON.stringify(o.result), 60)}\`` : `ExpressionError${at}`;
    return `| ${oneLine(c.name, 90)} | ${c.kind} | ${outcome} | ${o?.code ?? '—'} |`;
  });
  return [
    '# Script sandbox: hostile-input catalogue',
    '',
    'Generated by `test/security/sandbox.test.ts` (rewrite with `UPDATE_SANDBOX_CATALOGUE=1`; the suite fails when this file is out of date).',
    `Each attempt runs on one shared evaluator (time limit ${TIMEOUT_MS} ms, memory limit 32 MB); after each one the test process and the sandbox`,
    'process are alive, nothing changed in the test process, and the next evaluation sees a clean context.',
    '',
    '| attempt | kind | outcome | code |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

describe('hostile input: the catalogue', () => {
  let ev: SandboxEvaluator;
  let cleanState: Json | undefined;

  beforeAll(() => {
    ev = createEvaluator({ timeoutMs: TIMEOUT_MS, memoryLimitMb: 32, hardTimeoutMs: 10_000 });
    cleanState = ev.script(CLEAN_PROBE, { probe: { a: 1 } }).assigned.state;
    expect(cleanState).toMatchObject({ plainObject: true, noProcess: true, noLeakedGlobals: true, map: '2,4', frozen: true, probe: 1 });
  });
  afterAll(() => ev.close());

  it('has enough cases with distinct names', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  for (const c of CASES) {
    it(`${c.name} → ${'code' in c.expected ? c.expected.code : 'clean result'}`, () => {
      const o = run(ev, c);
      outcomes.set(c.name, o);
      if ('code' in c.expected) {
        expect({ code: o.code, message: o.message }).toMatchObject({ code: c.expected.code });
        if (c.expected.line !== undefined) expect(o.line).toBe(c.expected.line);
        if (c.expected.column !== undefined) expect(o.column).toBe(c.expected.column);
        // A message an incident can hold.
        expect(o.message?.length ?? 0).toBeLessThanOrEqual(2001);
        expect(o.message).not.toMatch(/\u0000|[\ud800-\udfff]/);
      } else {
        expect(o.code, o.message).toBeUndefined();
        expect(o.result).toEqual(c.expected.result);
      }
      // No hang: the slowest cases lose a sandbox process to V8 (~1 s).
      expect(o.ms).toBeLessThan(9_000);

      // The worker is fine, and so is the next evaluation.
      expectHostClean();
      expect(ev.script(CLEAN_PROBE, { probe: { a: 1 } }).assigned.state).toEqual(cleanState);
      const pid = ev.sandboxPid();
      expect(pid).toBeDefined();
      expect(alive(pid ?? 0)).toBe(true);
    });
  }

  it('prints the catalogue and keeps SANDBOX-CATALOGUE.md in sync', () => {
    const width = Math.max(...CASES.map((c) => Math.min(c.name.length, 70)));
    const lines = CASES.map((c) => {
      const o = outcomes.get(c.name);
      const message = o?.message === undefined ? '' : ` ${oneLine(o.message, 90)}`;
      return `${oneLine(c.name, 70).padEnd(width)} | ${o === undefined ? 'not run' : `${describeOutcome(o)}${message} [${Math.round(o.ms)} ms]`}`;
    });
    console.log(['', `${'case'.padEnd(width)} | outcome`, `${'-'.repeat(width)}-|--------`, ...lines].join('\n'));
    // Only a complete run may write or judge the file.
    if (outcomes.size !== CASES.length) return;
    const markdown = catalogueMarkdown();
    if (process.env.UPDATE_SANDBOX_CATALOGUE === '1') writeFileSync(CATALOGUE, markdown);
    expect(readFileSync(CATALOGUE, 'utf8')).toBe(markdown);
  });
});

describe('hostile input: line and column of a failure', () => {
  let ev: SandboxEvaluator;
  beforeAll(() => {
    ev = createEvaluator({ timeoutMs: 200, memoryLimitMb: 32 });
  });
  afterAll(() => ev.close());


  it('points at the failing token on line 1 and later lines, for every kind', () => {
    expect(failure(() => ev.script('x = 1; null.boom', {}))).toMatchObject({ code: 'script_error', line: 1, column: 13 });
    expect(failure(() => ev.script('x = 1\n   null.boom', {}))).toMatchObject({ code: 'script_error', line: 2, column: 9 });
    expect(failure(() => ev.expression('  null.boom', {}))).toMatchObject({ code: 'script_error', line: 1, column: 8 });
    expect(failure(() => ev.condition('a > 1 && missing', { a: 2 }))).toMatchObject({ code: 'script_error', line: 1, column: 10 });
  });

  it('gives syntax errors a column where V8 has one, and none past the source', () => {
    expect(failure(() => ev.expression('a +* b', {}))).toMatchObject({ code: 'syntax_error', line: 1, column: 4 });
    expect(failure(() => ev.script('y = ;', {}))).toMatchObject({ code: 'syntax_error', line: 1, column: 5 });
    // "(a + b" fails at the end of the input: still the user's line, no column past it.
    const e = failure(() => ev.expression('(a + b', {}));
    expect(e).toMatchObject({ code: 'syntax_error', line: 1 });
    if (e.column !== undefined) expect(e.column).toBeLessThanOrEqual(7);
  });

  it('has no column without a line (a thrown non-Error)', () => {
    const e = failure(() => ev.script("throw 'plain'", {}));
    expect(e.line).toBeUndefined();
    expect(e.column).toBeUndefined();
  });
});

// ---- through the engine ----------------------------------------------------

function scriptModel(id: string, script: string): string {
  const escaped = script.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="http://baton.test">
  <bpmn:process id="${id}" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="before" />
    <bpmn:scriptTask id="before" scriptFormat="javascript"><bpmn:script>ok = true</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="before" targetRef="hostile" />
    <bpmn:scriptTask id="hostile" scriptFormat="javascript"><bpmn:script>${escaped}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="hostile" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>`;
}

async function graphOf(id: string, script: string): Promise<ProcessGraph> {
  const { processes, problems } = await compileFiles([{ name: `${id}.bpmn`, content: scriptModel(id, script) }]);
  expect(problems).toEqual([]);
  const p = processes[0];
  if (p === undefined) throw new Error('no process');
  return p.graph;
}

describe('hostile input through the engine: a script task becomes an incident on its element', () => {
  let ev: SandboxEvaluator;
  beforeAll(() => {
    ev = createEvaluator({ timeoutMs: TIMEOUT_MS, memoryLimitMb: 32, hardTimeoutMs: 10_000 });
  });
  afterAll(() => ev.close());

  function context(): EngineContext {
    let clock = START_TIME;
    let counter = 0;
    return { now: () => new Date(clock++), newId: () => `id-${++counter}`, evaluators: () => ev };
  }

  it.each([
    ['an endless loop', 'script_timeout', 'partial = 1\nwhile (true) {}', undefined],
    ['a 1 GB buffer on line 2', 'script_memory', 'partial = 1\nbuffer = new Uint8Array(1e9)', 2],
    ['a heap bomb', 'script_memory', 'const a = []\nfor (;;) a.push(new Array(1 << 16).fill(1))', undefined],
    ['a throw on line 3', 'script_error', 'partial = 1\n\n  null.boom', 3],
  ] as const)('%s: %s', async (_name, code, script, line) => {
    const inst = Instance.start(await graphOf('hostile_script', script), { input: 1 }, context());
    expect(inst.status).toBe('error');
    expect(inst.state.incidents).toHaveLength(1);
    const incident = inst.state.incidents[0];
    expect(incident).toMatchObject({ code, elementId: 'hostile' });
    if (line === undefined) expect(incident?.line).toBeUndefined();
    else expect(incident?.line).toBe(line);
    // The failing script wrote nothing; the one before it did.
    expect(inst.variables).toEqual({ input: 1, ok: true });
    // And the evaluator is fine for the next instance.
    expect(ev.condition('input === 1', { input: 1 })).toBe(true);
    expectHostClean();
  });
});
