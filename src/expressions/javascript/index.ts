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
 * ## Process layout: the isolate lives in a process we can lose
 *
 * isolated-vm's memory limit is "a guideline" (its README): code that grows
 * one hash table past it (a Map, a Set, an object used as a dictionary or a
 * sparse array, filled in an endless loop) makes V8 abort the process that
 * hosts the isolate with a fatal `CALL_AND_RETRY_LAST` out-of-memory error.
 * No V8 flag or isolated-vm option prevents that: `--max-old-space-size`
 * only lifts the isolate's real limit to gigabytes, and `onCatastrophicError`
 * deadlocks a synchronous caller. So the isolate runs in a separate Node
 * process, the sandbox process (child.ts), and Baton's process survives it:
 *
 *     host thread ──SharedArrayBuffer──▶ bridge thread ──pipes──▶ sandbox process (isolate)
 *
 * The Evaluator stays synchronous: the host thread writes the request into a
 * SharedArrayBuffer and blocks in `Atomics.wait`; a `worker_threads` bridge
 * (bridge.ts) forwards it over the sandbox process's stdin, writes the answer
 * back and notifies. Messages bigger than the buffer (256 KB) travel over a
 * MessagePort instead. The sandbox process is started when the evaluator is
 * created (~0.3-0.5 s, most of it the tsx loader for child.ts) and lives as
 * long as the evaluator; it runs with an empty environment.
 *
 * - It dies during an evaluation (V8 aborts it): the call fails with
 *   `script_memory` when its standard error shows an out-of-memory abort,
 *   else `script_crash`, and the bridge starts a new process at once.
 * - It stops answering: the host waits `hardTimeoutMs` (default
 *   `timeoutMs + max(timeoutMs, 1000)`) after the process got the request,
 *   then kills it: `script_timeout`. The isolate's own `timeoutMs` normally
 *   ends a loop long before that.
 * - It cannot start: `script_error` ("cannot start the script sandbox"),
 *   after at most `startTimeoutMs`; the next evaluation tries again.
 * - `close()` kills it and ends the bridge. Neither keeps the Baton process
 *   alive, and the sandbox process exits by itself when its stdin closes,
 *   that is when the Baton process is gone, however it ended.
 *
 * ## Speed: one isolate, one context, reused
 *
 * A new isolate costs ~2.4 ms and a new context ~0.5 ms, while the engine may
 * evaluate thousands of conditions a second. So the sandbox process owns ONE
 * isolate with ONE context, hardened once, and compiles each source once (LRU
 * cache, 500 by default). An evaluation is then one round trip to the
 * sandbox process (~50 µs on an idle machine, 100-200 µs when the CPUs are
 * busy: see bench/sandbox.ts) around a single call into the isolate.
 *
 * Only the variables whose name occurs in the source are sent: user code can
 * reach a variable only through an identifier in its text (`eval` is not
 * available and `Function` code runs outside the scope), so a condition next
 * to a 10,000-item list does not serialise the list. A source containing
 * `\u` gets every variable, since `\u0061` may spell an identifier. Inside
 * the sandbox process the cheap variables (numbers, booleans, null, short
 * strings) go into the isolate with the call as one JSON string; objects,
 * arrays and long strings are parsed in the isolate when the code first
 * reads them.
 *
 * ## The fast path: no sandbox for what runs no user code
 *
 * Most conditions and many scripts are one comparison or one arithmetic
 * assignment (`total > 1000`, `total = price * qty`). simple.ts parses such
 * sources into a closed set of node kinds and evaluates them here, over the
 * JSON variables, with JavaScript's own operators applied to primitives only:
 * nothing the user wrote is executed, so there is nothing to sandbox, and an
 * evaluation costs about a microsecond instead of a process round trip.
 * Whatever it is not sure to answer exactly as the sandbox would (a missing
 * variable, a global, an object operand, a non-JSON result, text Postgres
 * cannot store, any source outside its grammar) goes to the sandbox as
 * before. test/expressions/simple.test.ts checks the equivalence
 * differentially on random sources. `fastPath: false` turns it off.
 *
 * ## Isolation between evaluations in a shared context
 *
 * Reusing the context means evaluations must not be able to leave anything
 * behind for the next one. bootstrap.ts, run once per context:
 * - deletes what should not be there (FinalizationRegistry, WeakRef,
 *   SharedArrayBuffer, Atomics, WebAssembly, eval, the legacy `RegExp.$1`… statics
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
 * User code is compiled as (see `wrapSource` in isolate.ts):
 *
 *     Object.freeze(($scope) => { with ($scope) { return function () { <user code> }(); } })
 *
 * (the arrow function is shared by all evaluations of the source and user code
 * can reach it through `arguments.callee.caller`, hence frozen).
 *
 * Before the wrapper runs, the body must also parse alone as a function body
 * (checked with the isolate's Function constructor, which refuses a body that
 * closes the function around it). Otherwise a source such as
 * `}()}};…})(); let x = …; (function(){…{return function(){` would run part
 * of itself at the top level of a script, outside the scope, where a `let`
 * outlives the evaluation and every later evaluation could read it.
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
 * ## `typeof` of a missing name
 *
 * A Proxy cannot tell the read of a `typeof` from another read, so claiming
 * every name would make `typeof missing` throw instead of giving
 * 'undefined'. typeof.ts therefore rewrites, before compiling, every
 * `typeof <name>` (also `typeof (name)`; found with the acorn parser, so
 * strings, comments, regular expressions and template text are left alone)
 * into `ᵀ(()=> name)`: the scope serves `ᵀ` (a name the source does not
 * spell) as a helper of the evaluation that returns `typeof` of what the
 * arrow function reads, and 'undefined' when the read throws the scope's own
 * "not defined" error, and only then. The name still resolves where it is
 * written (a local, a variable, a global), `typeof x.y` of a missing `x`
 * and any read of a missing name outside `typeof` still throw, and the
 * counter idiom `count = (typeof count === 'number' ? count : 0) + 1` works.
 * The rewrite keeps every line break, and isolate.ts moves reported columns
 * back over the one character it inserts per `typeof`; a source acorn cannot
 * parse, or V8 refuses once rewritten, is compiled as written. The fast path
 * answers `typeof` of primitives and missing names itself.
 *
 * ## What a script returns
 *
 * `script()` reports as assigned: every top-level name the code assigned (also
 * from inside a nested function, since the assignment resolves to the scope),
 * and every variable it read whose JSON changed in place (`items.push(4)`).
 * Locals and shadowed names are not reported. Values are JSON-normalised:
 * `undefined` and NaN/Infinity become null, Dates their ISO string; a function,
 * symbol, BigInt, Promise or cycle anywhere in a result is `script_result`.
 * So is text Postgres cannot store (a NUL character, an unpaired surrogate, in
 * a value or a key: the runtime would fail to save the instance) and a
 * variable named `__proto__` (assigning it to the caller's plain object would
 * set that object's prototype). The strings of one result may have at most a
 * quarter of the memory limit in characters together, else `script_memory`:
 * a string can be much longer than the memory it takes (`s + s` only links
 * the halves) until serialising flattens it, which would abort the sandbox
 * process.
 *
 * ## Positions
 *
 * A failure of user code carries the 1-based `line` and `column` of the first
 * frame of user code in the error's stack (where V8 places the failing
 * operation: a property read, a call, `new`), and a syntax error the position
 * V8 reports, both in the coordinates of the user's source (the wrapper's
 * prefix only shifts columns on line 1, and is subtracted). A value thrown
 * that is not an Error, a limit, and an unhandled promise rejection
 * (`script_error`, "… (uncaught in a promise)") have no position. Messages
 * are clipped to 2,000 characters, and NUL characters and unpaired
 * surrogates in them are replaced by U+FFFD, so that an incident can store them.
 *
 * ## Escapes and limits
 *
 * `require`, `process`, `import()` and the like do not exist in the isolate:
 * they fail as ReferenceError (`script_error`); `Function('return this')()`
 * returns the isolate's own frozen, empty-of-Node global object. There are no
 * timers, network or file system. Each evaluation runs with a timeout
 * (`script_timeout`); the isolate has a heap limit, and when isolated-vm
 * disposes the isolate for exceeding it the call fails with `script_memory` and
 * the next call transparently builds a fresh isolate. When V8 aborts the whole
 * sandbox process instead (see "Process layout"), the call fails the same way
 * and the next call gets a fresh process.
 *
 * ## Known limits
 *
 * - Inside the user's own `with (object)` whose object claims every name (a
 *   Proxy whose `has` is always true), `typeof name` asks that object for
 *   the helper first and fails as a TypeError (see "`typeof` of a missing
 *   name"). A source in syntax that acorn does not parse (none known) keeps
 *   the old behaviour: `typeof missingName` throws ReferenceError.
 * - A runaway Map/Set/dictionary costs a sandbox process: the next evaluation
 *   waits for a new one to start (~0.3-0.5 s). It writes no core dump: the
 *   sandbox process runs with RLIMIT_CORE 0 (../channel.ts `SANDBOX_RLIMITS`).
 * - A sandbox process killed from outside while idle fails the next
 *   evaluation with `script_crash` if that evaluation is sent before the
 *   bridge has seen the process die (a window of milliseconds).
 * - Every evaluator owns a sandbox process (~80 MB resident with tsx) and a
 *   bridge thread: create one per Baton process and share it.
 * - A variable whose name occurs in the source is serialised even if the
 *   code does not read it (`flag || big.length`).
 * - Code that throws a non-Error value (`throw 'x'`) has no line number.
 * - The clock (`Date.now()`) and `Math.random()` are real: scripts that use
 *   them are not deterministic.
 */
export { createEvaluator } from './sandbox.js';
export type { EvaluatorOptions, SandboxEvaluator } from './sandbox.js';
export { ExpressionError } from '../types.js';
export type { Evaluator, ScriptResult } from '../types.js';
