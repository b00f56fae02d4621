/**
 * Entry point of the Python sandbox process (see python/index.ts).
 *
 *     node [--import tsx] python/child.ts '{"timeoutMs":…,"memoryLimitMb":…,"cacheSize":…,"recursionLimit":…}'
 *
 * It loads Pyodide once (asynchronously, ~3-7 s), runs runner.ts's Python in
 * a namespace of its own, then serves requests (protocol.ts) in the same
 * blocking frame loop as the JavaScript sandbox (frames.ts).
 *
 * Limits, enforced here:
 * - Time: a watchdog thread sets Pyodide's interrupt buffer when an
 *   evaluation passes `timeoutMs` (and again every 50 ms while it goes on:
 *   a bare `except:` may swallow one KeyboardInterrupt), and the evaluation
 *   answers `script_timeout`. Code that swallows every KeyboardInterrupt,
 *   or never returns to the interpreter loop, is killed by the host's hard
 *   timeout.
 * - Memory: the WebAssembly memory may not grow past `memoryLimitMb`
 *   (WebAssembly.Memory.prototype.grow refuses): Python gets a MemoryError,
 *   the evaluation answers `script_memory`, and the interpreter goes on.
 * - Stack: the interpreter runs in a worker thread with a 256 MB stack (see
 *   STACK_MB), so that deep C-level recursion ends as Python's
 *   RecursionError rather than a JavaScript stack overflow.
 * - A Pyodide fatal error (an internal failure) makes the interpreter
 *   unusable: the process exits without answering, the bridge answers
 *   `script_crash` and starts a new process.
 */
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainThread, Worker } from 'node:worker_threads';
import { serve } from '../frames.js';
import { decodeRequest, failureReply, messageOf } from '../protocol.js';
import { RUNNER_SOURCE } from './runner.js';

interface Options {
  timeoutMs?: unknown;
  memoryLimitMb?: unknown;
  cacheSize?: unknown;
  recursionLimit?: unknown;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const timeoutMs = Number(options.timeoutMs) || 1000;
const memoryLimitMb = Number(options.memoryLimitMb) || 256;
const cacheSize = Number(options.cacheSize) || 500;
const recursionLimit = Number(options.recursionLimit) || 1000;
const memoryCap = memoryLimitMb * 1024 * 1024;
/** A reply longer than this (UTF-16 units) is refused as `script_memory`, as the JavaScript sandbox does. */
const maxReply = memoryCap / 4;

// The cap on the WebAssembly heap. Emscripten's heap growth catches the
// RangeError and reports an allocation failure, which Python raises as
// MemoryError.
interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}
const memoryPrototype = (globalThis as unknown as { WebAssembly: { Memory: { prototype: WasmMemory } } }).WebAssembly.Memory.prototype;
const grow = memoryPrototype.grow;
memoryPrototype.grow = function (this: WasmMemory, pages: number): number {
  if (this.buffer.byteLength + pages * 65536 > memoryCap) throw new RangeError('the memory limit was reached');
  return grow.call(this, pages);
};

// Slots of the watchdog's shared buffer.
const INTERRUPT = 0; // Pyodide's interrupt buffer: 2 = SIGINT
const ARMED = 1; // odd: an evaluation runs (its number), even: idle
const FIRED = 2; // the number of the last evaluation the watchdog interrupted
const DONE = 3; // the number of the last evaluation the watchdog let go of

const WATCHDOG_SOURCE = `'use strict';
const { workerData } = require('node:worker_threads');
const { ctl, timeoutMs } = workerData;
for (;;) {
  const s = Atomics.load(ctl, ${ARMED});
  if ((s & 1) === 0) { Atomics.wait(ctl, ${ARMED}, s); continue; }
  if (Atomics.wait(ctl, ${ARMED}, s, timeoutMs) !== 'timed-out') continue;
  Atomics.store(ctl, ${FIRED}, s);
  while (Atomics.load(ctl, ${ARMED}) === s) {
    Atomics.store(ctl, ${INTERRUPT}, 2);
    Atomics.wait(ctl, ${ARMED}, s, 50);
  }
  Atomics.store(ctl, ${DONE}, s);
  Atomics.notify(ctl, ${DONE});
}
`;

interface PyCallable {
  (...args: unknown[]): unknown;
}

function fatal(message: string): never {
  try {
    writeSync(2, `baton python sandbox: ${message}\n`);
  } catch {
    // nothing to tell it to
  }
  process.exit(70);
}

/**
 * The interpreter runs in a worker thread with a large stack: deep C-level
 * recursion (a long `1 + 1 + …` chain, `__repr__` calling `repr(self)`)
 * uses the JavaScript stack, which Python's own recursion checks do not
 * watch, and a JavaScript stack overflow is a Pyodide fatal error. With
 * STACK_MB, Python's RecursionError comes first.
 */
const STACK_MB = 256;

async function main(): Promise<void> {
  const ctl = new Int32Array(new SharedArrayBuffer(16));
  const watchdog = new Worker(WATCHDOG_SOURCE, { eval: true, workerData: { ctl, timeoutMs }, env: {}, execArgv: [] });
  watchdog.unref();

  const indexURL = `${dirname(createRequire(import.meta.url).resolve('pyodide/package.json'))}/`;
  const { loadPyodide } = (await import('pyodide')) as typeof import('pyodide');
  const pyodide = await loadPyodide({
    indexURL,
    env: {},
    // Nothing a script prints may reach the protocol on standard output.
    stdout: () => {},
    stderr: () => {},
    stdin: () => null,
    checkAPIVersion: true,
  });
  // No script needs JavaScript; nothing of it should be importable.
  pyodide.unregisterJsModule('js');
  pyodide.unregisterJsModule('pyodide_js');
  pyodide.setInterruptBuffer(new Int32Array(ctl.buffer, 0, 1));

  const makeDict = pyodide.globals.get('dict') as PyCallable;
  const namespace = makeDict();
  pyodide.runPython(RUNNER_SOURCE.replace('@RECURSION_LIMIT@', String(recursionLimit)).replace('@CACHE_SIZE@', String(cacheSize)), { globals: namespace as never });
  const run = (namespace as { get(name: string): PyCallable }).get('baton_run');
  // Warm up: the first evaluation of each kind compiles and imports lazily.
  run(0, 'True', '{}');
  run(2, 'x = 1', '{}');

  let seq = 0;
  serve((request) => {
    let r;
    try {
      r = decodeRequest(request);
    } catch (e) {
      return failureReply('script_error', `the script sandbox received a bad request: ${messageOf(e)}`);
    }
    const args: unknown[] = [r.kind, r.source, r.eager];
    for (const [name, text] of r.texts) args.push(name, text);
    const armed = seq + 1;
    Atomics.store(ctl, INTERRUPT, 0);
    Atomics.store(ctl, ARMED, armed);
    Atomics.notify(ctl, ARMED);
    let reply: unknown;
    let failure: unknown;
    try {
      reply = run(...args);
    } catch (e) {
      failure = e;
    }
    seq += 2;
    Atomics.store(ctl, ARMED, seq);
    Atomics.notify(ctl, ARMED);
    const timedOut = Atomics.load(ctl, FIRED) === armed;
    if (timedOut) {
      while (Atomics.load(ctl, DONE) !== armed) Atomics.wait(ctl, DONE, Atomics.load(ctl, DONE), 100);
    }
    Atomics.store(ctl, INTERRUPT, 0);
    if (failure !== undefined && (failure as { pyodide_fatal_error?: boolean }).pyodide_fatal_error === true) {
      fatal(`Pyodide suffered a fatal error: ${messageOf(failure).split('\n')[0] ?? ''}`);
    }
    if (timedOut) return failureReply('script_timeout', `the script ran longer than ${timeoutMs} ms`);
    // A Python exception that left baton_run (none is known to): the interpreter is fine.
    if (failure !== undefined) return failureReply('script_error', `the Python sandbox failed: ${messageOf(failure).split('\n').filter((l) => l.trim() !== '').slice(-1)[0] ?? ''}`);
    if (typeof reply !== 'string') return failureReply('script_error', 'the Python sandbox gave no answer');
    if (reply.length > maxReply) return failureReply('script_memory', `the result is larger than a quarter of the memory limit of ${memoryLimitMb} MB`);
    return reply;
  });
}

if (isMainThread) {
  // Started from a string that imports this module: a Worker's own entry
  // file would not go through the TypeScript loader (tsx) of the process,
  // so when this runs as TypeScript the thread registers tsx first.
  const here = import.meta.url;
  const tsx = here.endsWith('.ts') ? pathToFileURL(join(dirname(createRequire(here).resolve('tsx')), 'esm/api/index.mjs')).href : '';
  const source = `(async () => {
    if (${JSON.stringify(tsx)}) (await import(${JSON.stringify(tsx)})).register();
    await import(${JSON.stringify(here)});
  })().catch((e) => { setImmediate(() => { throw e; }); });`;
  const worker = new Worker(source, {
    eval: true,
    argv: process.argv.slice(2),
    execArgv: process.execArgv,
    env: {},
    resourceLimits: { stackSizeMb: STACK_MB },
  });
  worker.on('error', (e: unknown) => fatal(`the interpreter thread failed: ${messageOf(e)}`));
  worker.on('exit', (code) => process.exit(code));
} else {
  main().catch((e: unknown) => fatal(`cannot start: ${messageOf(e)}`));
}
