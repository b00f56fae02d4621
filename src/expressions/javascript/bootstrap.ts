/**
 * Source of the code that runs once inside every fresh sandbox context
 * (see index.ts for the overall design). It hardens the context and returns
 * the `run` function the host calls for every evaluation.
 *
 * It is plain JavaScript in a string, not a TypeScript function turned into
 * text with `.toString()`: whatever compiles this package (tsc, tsx, esbuild,
 * vitest) may inject helpers into functions, and those helpers do not exist
 * inside the isolate.
 *
 * The script evaluates to `connect(fetchVariable, maxChars)`, called once by isolate.ts
 * (in the sandbox process) with a Reference to its `fetchVariable(name)` (JSON
 * text of the variable of the current evaluation, undefined if there is none,
 * `!message` if it cannot be serialised) and the most characters the strings
 * of one result may have together (more fail as `script_memory`). `connect` returns
 * `run(kind, fn, eagerJson, shadowed, typeofHelper)`:
 * - `kind` 0 condition, 1 expression, 2 script.
 * - `fn` the compiled user function (see `wrapSource`), called with the scope.
 * - `eagerJson` a JSON object of the variables that are cheap to send every
 *   time (numbers, booleans, null, short strings). Objects, arrays and long
 *   strings are fetched (as JSON text) and parsed when the code first reads
 *   them.
 * - `shadowed` comma-separated names of fetched variables that have the name
 *   of an allowed global (they must win over it); usually empty.
 * - `typeofHelper` the name under which the scope serves the `typeof` helper
 *   of this evaluation, when the source was rewritten (typeof.ts); else ''.
 * It returns a string whose first character says what follows:
 * `T`/`F` condition result, `R<json>` expression result, `S<json>` object of
 * assigned variables, `E<json>` `{ code, message, line? }` of a failure.
 */

/** File name given to user code; stack frames in user code carry it. */
export const USER_FILENAME = 'baton:user';
/** File name of this bootstrap code, so its frames are never mistaken for the user's. */
export const RUNTIME_FILENAME = 'baton:runtime';

/**
 * Names user code may resolve to the sandbox's globals. Every other free
 * identifier is a process variable. `globalThis`, `Function` and `eval` are
 * left out on purpose: they are the usual ways to reach dynamic code or the
 * global object, and a process variable may then use those names.
 */
export const ALLOWED_GLOBALS: readonly string[] = [
  'undefined', 'NaN', 'Infinity',
  'Object', 'Array', 'String', 'Number', 'Boolean', 'Symbol', 'BigInt',
  'Math', 'JSON', 'Date', 'RegExp', 'Map', 'Set', 'WeakMap', 'WeakSet', 'Promise', 'Reflect', 'Proxy',
  'Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError',
  'ArrayBuffer', 'DataView', 'Uint8Array', 'Int8Array', 'Uint8ClampedArray', 'Uint16Array', 'Int16Array',
  'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigUint64Array', 'BigInt64Array',
  'parseInt', 'parseFloat', 'isNaN', 'isFinite',
  'encodeURIComponent', 'decodeURIComponent', 'encodeURI', 'decodeURI',
  'Intl', 'console',
];

/**
 * User code is compiled as `WRAP_PREFIX + body + WRAP_SUFFIX` (see
 * `wrapSource` in isolate.ts); the body of a condition or expression is
 * `EXPRESSION_PREFIX + source + EXPRESSION_SUFFIX`. The prefixes have no line
 * break, so line N of the user's source is line N of the compiled script and
 * only columns on line 1 are shifted, by the length of the prefixes.
 */
export const WRAP_PREFIX = '(function(){const run=($scope)=>{with($scope){return function(){';
export const WRAP_SUFFIX = '\n}();}};return Object.freeze(run);})()';
export const EXPRESSION_PREFIX = 'return (';
export const EXPRESSION_SUFFIX = '\n);';

/** Longest error message handed back to the host (an incident is not a log dump). */
const MAX_MESSAGE = 2000;

export const BOOTSTRAP_SOURCE = `(function () {
'use strict';
const G = globalThis;
const { freeze, getOwnPropertyDescriptor, getOwnPropertyDescriptors, getPrototypeOf, defineProperty, hasOwn, create } = Object;
const ownKeys = Reflect.ownKeys;
const jsonParse = JSON.parse;
const jsonStringify = JSON.stringify;
const ProxyC = Proxy, MapC = Map, SetC = Set, PromiseC = Promise, StringC = String;
const TypeErrorC = TypeError, ReferenceErrorC = ReferenceError, RangeErrorC = RangeError;

// 1. Remove what a sandbox should not have. FinalizationRegistry and WeakRef
// run or reveal code after an evaluation has ended; SharedArrayBuffer,
// Atomics, WebAssembly and eval (reachable as a property of the global
// object, which Function('return this') returns) are not needed and widen
// the attack surface; the
// built-in console is replaced by a silent one.
for (const name of ['FinalizationRegistry', 'WeakRef', 'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'eval', 'console']) {
  delete G[name];
}
const noop = function () {};
defineProperty(G, 'console', { value: { log: noop, info: noop, warn: noop, error: noop, debug: noop, trace: noop }, writable: false, enumerable: false, configurable: false });
// RegExp.$1, RegExp.lastMatch, ... expose the last match of ANY evaluation:
// shared mutable state that freezing does not stop (they are accessors).
for (const key of ownKeys(RegExp)) {
  if (typeof key === 'string' && key !== 'length' && key !== 'name' && key !== 'prototype') delete RegExp[key];
}

// 2. Keep "obj.toString = ...", "this.name = ..." (custom errors) and the like
// working once the prototypes are frozen: assigning to a property that is
// inherited read-only fails silently in JS (the "override mistake"). Turn such
// data properties into accessors whose setter creates an own property on the
// receiver, as the assignment would have done before freezing.
// The original values live on only in the getters' closures, where the deep
// freeze below cannot see them: remember them for it.
const tamedValues = [];
function tame(proto) {
  for (const key of ownKeys(proto)) {
    const d = getOwnPropertyDescriptor(proto, key);
    if (!d || !('value' in d) || !d.writable || !d.configurable) continue;
    const value = d.value;
    tamedValues.push(value);
    defineProperty(proto, key, {
      get: function () { return value; },
      set: function (v) {
        if (this === proto) throw new TypeErrorC('Cannot assign to read only property \\'' + StringC(key) + '\\' of a shared prototype');
        defineProperty(this, key, { value: v, writable: true, enumerable: true, configurable: true });
      },
      enumerable: d.enumerable,
      configurable: false,
    });
  }
}
tame(Object.prototype);
for (const E of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError]) tame(E.prototype);

// 3. Deep-freeze everything reachable from the global object, plus intrinsics
// that are reachable only through syntax (generator, async and iterator
// prototypes). After this no evaluation can leave state behind.
const roots = [
  G,
  function* () {}, async function () {}, async function* () {}, (async function* () {})(),
  [][Symbol.iterator](), new Map().entries(), new Set().values(), ''[Symbol.iterator](), /a/[Symbol.matchAll](''),
  (function () { return arguments; })(),
  ...tamedValues,
];
try { const seg = new Intl.Segmenter().segment(''); roots.push(seg, seg[Symbol.iterator]()); } catch (e) { /* no Intl.Segmenter */ }
const seen = new WeakSet();
while (roots.length > 0) {
  const o = roots.pop();
  if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) continue;
  seen.add(o);
  freeze(o);
  roots.push(getPrototypeOf(o));
  const descs = getOwnPropertyDescriptors(o);
  for (const key of ownKeys(descs)) {
    const d = descs[key];
    if ('value' in d) roots.push(d.value); else { roots.push(d.get); roots.push(d.set); }
  }
}

// 4. The per-evaluation runner. Everything it uses was captured above or is a
// frozen intrinsic, so user code cannot tamper with it.
const ALLOWED = new SetC(${JSON.stringify(ALLOWED_GLOBALS)});
// Never shadowed by a variable of the same name: JS does not allow it either.
const RESERVED = new SetC(['undefined', 'NaN', 'Infinity']);
const LINE = /${USER_FILENAME}:(\\d+):(\\d+)/;
// Text Postgres cannot store in a jsonb or text column: a NUL character
// (JSON.stringify writes it as \\u0000) or an unpaired surrogate (written as
// \\udXXX; a valid pair is written as is). The lookbehind makes sure the
// backslash is not itself escaped (a string containing "\\\\u0000").
const UNSTORABLE_NUL = /(?<!\\\\)(?:\\\\\\\\)*\\\\u0000/;
const UNSTORABLE_SURROGATE = /(?<!\\\\)(?:\\\\\\\\)*\\\\ud[89a-f]/;
// The same characters in a message (not JSON-escaped): replaced, not refused.
const BAD_TEXT = /\\u0000|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]/g;
// Columns on line 1 are shifted by the code around the user's (bootstrap.ts WRAP_PREFIX).
const SCRIPT_SHIFT = ${WRAP_PREFIX.length};
const EXPRESSION_SHIFT = ${WRAP_PREFIX.length + EXPRESSION_PREFIX.length};
const NOT_JSON = {};
let notJsonKind = '';
// A string can be far longer than the memory it takes (s + s only links the
// two halves), until JSON.stringify flattens it: a 200 MB string would then
// exceed the isolate's heap inside V8 and abort the sandbox process. So the
// characters of the strings in one result are counted before they are
// written, against a budget derived from the memory limit (see connect).
const TOO_BIG = {};
let resultChars = 0;
let maxResultChars = Infinity;

function replacer(key, value) {
  const t = typeof value;
  if (t === 'string') {
    resultChars += value.length;
    if (resultChars > maxResultChars) throw TOO_BIG;
    return value;
  }
  if (t === 'function' || t === 'symbol' || t === 'bigint') { notJsonKind = t === 'bigint' ? 'BigInt' : t; throw NOT_JSON; }
  if (value instanceof PromiseC) { notJsonKind = 'Promise (scripts are synchronous)'; throw NOT_JSON; }
  return value;
}

function Failure(code, message, line, column) { this.code = code; this.message = clip(message); this.line = line; this.column = column; }

function clip(message) {
  const short = message.length > ${MAX_MESSAGE} ? message.slice(0, ${MAX_MESSAGE}) + '…' : message;
  return short.replace(BAD_TEXT, '\\ufffd');
}

function toJson(value, what) {
  let text;
  try {
    text = jsonStringify(value, replacer);
  } catch (e) {
    if (e === NOT_JSON) throw new Failure('script_result', what + ' is not JSON: it contains a ' + notJsonKind);
    if (e === TOO_BIG) throw new Failure('script_memory', what + ' is too big: the strings of the result have more than ' + maxResultChars + ' characters (a quarter of the memory limit)');
    throw new Failure('script_result', what + ' is not JSON: ' + describe(e, 0).message.split('\\n')[0]);
  }
  if (text === undefined) return 'null';
  if (UNSTORABLE_NUL.test(text)) throw new Failure('script_result', what + ' cannot be stored: it contains a NUL character (U+0000)');
  if (UNSTORABLE_SURROGATE.test(text)) throw new Failure('script_result', what + ' cannot be stored: it contains an unpaired surrogate (half of a UTF-16 pair)');
  return text;
}

// Turns anything user code threw into { message, line, column }: the
// position is the first frame of user code in the stack, in the user's
// coordinates (1-based). Reading a thrown value may run user code (getters,
// toString), hence the try.
function describe(e, kind) {
  try {
    if (e !== null && typeof e === 'object') {
      const message = e.message;
      if (typeof message === 'string') {
        const name = e.name;
        const stack = e.stack;
        const m = typeof stack === 'string' ? LINE.exec(stack) : null;
        const line = m ? +m[1] : undefined;
        let column = m ? +m[2] : undefined;
        if (line === 1 && column !== undefined) {
          // V8 may place a failure of an expression on the 'return (' in
          // front of it: that is column 1 of the user's expression.
          if (kind !== 2 && column > SCRIPT_SHIFT) column = column > EXPRESSION_SHIFT ? column - EXPRESSION_SHIFT : 1;
          else column -= SCRIPT_SHIFT;
        }
        if (column !== undefined && !(column >= 1)) column = undefined;
        return { message: (typeof name === 'string' && name !== '' ? name + ': ' : '') + message, line: line, column: column, name: name };
      }
    }
    return { message: 'Uncaught ' + StringC(e), line: undefined, column: undefined, name: undefined };
  } catch (inner) {
    return { message: 'the script threw a value that cannot be described', line: undefined, column: undefined, name: undefined };
  }
}

function fail(f) {
  return 'E' + jsonStringify({ code: f.code, message: f.message, line: f.line, column: f.column });
}

const applyFn = Reflect.apply;
return function connect(fetchRef, maxChars) {
maxResultChars = maxChars;
const fetchApply = fetchRef.applySync;
function fetchVariable(name) { return applyFn(fetchApply, fetchRef, [undefined, [name]]); }
const NO_SHADOW = new SetC();

return function run(kind, fn, eagerJson, shadowedList, typeofHelper) {
  const eager = jsonParse(eagerJson);
  const shadowed = shadowedList === '' ? NO_SHADOW : new SetC(shadowedList.split(','));
  const parsed = new MapC(); // fetched variables: name -> value
  const texts = new MapC(); // fetched variables: name -> JSON text as received
  const absent = new SetC(); // names the host said are not variables
  const assigned = new MapC();
  let open = true;
  // The ReferenceError the scope threw last for a missing name: the typeof
  // helper turns exactly that one into 'undefined' (typeof.ts).
  let missing = null;
  // typeof.ts rewrote each 'typeof name' into 'helper(()=>name)'. The reader
  // resolves the name where the typeof was (a local, the scope, a global);
  // only the scope's own "not defined" makes the result 'undefined'.
  const typeofOf = typeofHelper === '' ? null : function (read) {
    try {
      return typeof read();
    } catch (e) {
      if (e !== null && e === missing) return 'undefined';
      throw e;
    }
  };
  // The scope of the user's code: a 'with' object that claims every name
  // except the allowed globals, so free identifiers are variables, and
  // assignments to them land here instead of on the global object.
  const scope = new ProxyC(create(null), {
    has(target, key) {
      if (typeof key !== 'string' || RESERVED.has(key)) return false;
      if (!ALLOWED.has(key)) return true;
      return assigned.has(key) || hasOwn(eager, key) || shadowed.has(key);
    },
    get(target, key) {
      if (typeof key !== 'string') return undefined; // Symbol.unscopables
      // The source does not spell this name (typeof.ts picks one it does not).
      if (key === typeofHelper && typeofOf !== null) return typeofOf;
      if (assigned.has(key)) return assigned.get(key);
      if (hasOwn(eager, key)) return eager[key];
      if (parsed.has(key)) return parsed.get(key);
      if (!absent.has(key)) {
        const text = fetchVariable(key);
        if (typeof text === 'string') {
          if (text[0] === '!') throw new TypeErrorC('variable ' + key + ' is not JSON: ' + text.slice(1));
          const v = jsonParse(text);
          parsed.set(key, v);
          texts.set(key, text);
          return v;
        }
        absent.add(key);
      }
      missing = new ReferenceErrorC(key + ' is not defined');
      throw missing;
    },
    set(target, key, value) {
      if (typeof key !== 'string') return false;
      // After the evaluation (a late promise callback) assignments are dropped.
      if (open) assigned.set(key, value);
      return true;
    },
    deleteProperty() { return false; },
    defineProperty() { return false; },
  });
  let value;
  try {
    value = fn(scope);
  } catch (e) {
    open = false;
    const d = describe(e, kind);
    const memory = d.name === 'RangeError' && /allocation failed/.test(d.message);
    return fail(new Failure(memory ? 'script_memory' : 'script_error', d.message, d.line, d.column));
  }
  // Closed before serialising: a toJSON() cannot add variables while we list them.
  open = false;
  resultChars = 0;
  try {
    if (kind === 0) return value ? 'T' : 'F';
    if (kind === 1) return 'R' + toJson(value, 'the result');
    let out = '{';
    for (const [key, v] of assigned) {
      // The caller stores variables in plain objects: a variable named
      // __proto__ would set the prototype of the caller's object instead.
      if (key === '__proto__') throw new Failure('script_result', 'a variable cannot be named __proto__');
      out += (out.length > 1 ? ',' : '') + jsonStringify(key) + ':' + toJson(v, 'variable ' + key);
    }
    // A variable changed in place (items.push(4)) counts as assigned when its
    // JSON differs from what came in. Only fetched variables can have changed:
    // the eager ones are primitives.
    for (const [key, v] of parsed) {
      if (assigned.has(key)) continue;
      const text = toJson(v, 'variable ' + key);
      if (text !== texts.get(key)) out += (out.length > 1 ? ',' : '') + jsonStringify(key) + ':' + text;
    }
    return 'S' + out + '}';
  } catch (e) {
    if (e instanceof Failure) return fail(e);
    const d = describe(e, kind);
    return fail(new Failure('script_error', d.message, d.line, d.column));
  }
};
};
})()`;
