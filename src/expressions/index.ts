/**
 * Conditions, expressions and script tasks in JavaScript, run in a sandbox.
 *
 * ## Why isolated-vm and not node:vm
 *
 * `node:vm` is not a security boundary: a context shares the host's heap and
 * its objects leak host realms, so `this.constructor.constructor('return process')()`
 * reaches `process` from inside it, and it has no memory limit. isolated-vm
 * runs code in a separate V8 isolate: its own heap (with a memory limit), its
 * own intrinsics, nothing of Node. Only strings cross the boundary.
 *
 * ## Speed: one isolate, one context, reused
 *
 * A new isolate costs ~2.4 ms and a new context ~0.5 ms, while the engine may
 * evaluate thousands of conditions a second. So an evaluator owns ONE isolate
 * with ONE context, hardened once, and compiles each source once (LRU cache,
 * 500 by default). An evaluation is then a single synchronous call into the
 * isolate with the compiled function and the cheap variables (numbers,
 * booleans, null, short strings) as a JSON string. Objects, arrays and long
 * strings are fetched from the host, as JSON, when the code first reads them:
 * an evaluation costs what it reads, not what the instance holds (a condition
 * next to a 10,000-item list variable does not serialise the list).
 *
 * ## Isolation between evaluations in a shared context
 *
 * Reusing the context means evaluations must not be able to leave anything
 * behind for the next one. bootstrap.ts, run once per context:
 * - deletes what should not be there (FinalizationRegistry, WeakRef,
 *   SharedArrayBuffer, Atomics, WebAssembly, the legacy `RegExp.$1`… statics
 *   that would reveal the last match of another evaluation) and installs a
 *   silent `console`;
 * - deep-freezes every object reachable from the global object, the global
 *   object itself, and the intrinsics only reachable through syntax
 *   (generator, async and iterator prototypes). `Object.prototype.x = 1`,
 *   `Array.prototype.push = null`, `globalThis.y = 2`, `JSON.parse = …` are
 *   then no-ops (or TypeErrors in strict code);
 * - because frozen prototypes break innocent assignments such as
 *   `this.name = 'MyError'` or `obj.toString = …` (the "override mistake"), the
 *   writable data properties of `Object.prototype` and the Error prototypes are
 *   turned into accessors whose setter defines an own property on the receiver.
 *
 * User code is compiled as (see `wrapSource` in sandbox.ts):
 *
 *     Object.freeze(($scope) => { with ($scope) { return function () { <user code> }(); } })
 *
 * (the arrow function is shared by all evaluations of the source and user code
 * can reach it through `arguments.callee.caller`, hence frozen).
 *
 * `$scope` is a fresh Proxy per evaluation. Its `has` claims every name except
 * the allowed globals (bootstrap.ts `ALLOWED_GLOBALS`), so each free identifier
 * is a process variable: `get` returns it (parsed from JSON on first read, so
 * every evaluation gets its own copy) or throws `ReferenceError: x is not
 * defined`; `set` records the assignment, also for new names. A variable
 * named like an allowed global (`Math`, `JSON`, …) wins over it. The inner
 * function keeps `var`, `let`, `const` and function declarations local. Since
 * variables are fresh copies, all intrinsics frozen and the scope new each time,
 * nothing one evaluation does is visible to another.
 *
 * ## What a script returns
 *
 * `script()` reports as assigned: every top-level name the code assigned (also
 * from inside a nested function, since the assignment resolves to the scope),
 * and every variable it read whose JSON changed in place (`items.push(4)`).
 * Locals and shadowed names are not reported. Values are JSON-normalised:
 * `undefined` and NaN/Infinity become null, Dates their ISO string; a function,
 * symbol, BigInt, Promise or cycle anywhere in a result is `script_result`.
 *
 * ## Escapes and limits
 *
 * `require`, `process`, `import()` and the like do not exist in the isolate:
 * they fail as ReferenceError (`script_error`); `Function('return this')()`
 * returns the isolate's own frozen, empty-of-Node global object. There are no
 * timers, network or file system. Each evaluation runs with a timeout
 * (`script_timeout`); the isolate has a heap limit, and when isolated-vm
 * disposes the isolate for exceeding it the call fails with `script_memory` and
 * the next call transparently builds a fresh isolate.
 *
 * ## Known limits
 *
 * - `typeof missingName` throws ReferenceError instead of giving 'undefined':
 *   the `with` scope must claim unknown names so that assignments to them are
 *   captured, and a Proxy cannot tell a `typeof` read from another read.
 * - isolated-vm's memory limit is "a guideline" (its README): code that grows
 *   one hash table past the limit (a Map, Set, or object used as a dictionary,
 *   filled in an endless loop) makes V8 abort the whole process instead of
 *   disposing the isolate. Array and string growth is contained. A guaranteed
 *   boundary needs a separate process or a WebAssembly engine (QuickJS).
 * - Code that throws a non-Error value (`throw 'x'`) has no line number.
 * - The clock (`Date.now()`) and `Math.random()` are real: scripts that use
 *   them are not deterministic.
 */
export { createEvaluator } from './sandbox.js';
export type { EvaluatorOptions, SandboxEvaluator } from './sandbox.js';
export { ExpressionError } from './types.js';
export type { Evaluator, ScriptResult } from './types.js';
