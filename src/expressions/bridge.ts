/**
 * Source of the bridge thread, a `worker_threads` Worker started with
 * `eval: true` (see index.ts, "Process layout"). Like bootstrap.ts it is
 * plain JavaScript in a string: a Worker does not get the TypeScript loader
 * of its parent (tsx, vitest), and the bridge should not pay for one.
 *
 * The bridge owns the sandbox process (child.ts) and moves bytes between it
 * and the host thread, which is blocked in `Atomics.wait` meanwhile:
 *
 *   host thread ──SharedArrayBuffer──▶ bridge thread ──stdin pipe──▶ sandbox process
 *               ◀──────────────────────             ◀──stdout pipe──
 *
 * The shared buffer starts with CTL_SLOTS Int32 slots, then DATA bytes:
 * - STATE   IDLE → (host) REQUEST → (bridge) WORKING → (bridge) REPLY → (host) IDLE.
 *           The bridge notifies when it sets REPLY; the host when it sets REQUEST.
 * - LENGTH  bytes of the message in DATA, or -1: the message did not fit and
 *           travels as a Uint8Array over the MessagePort instead (read with
 *           `receiveMessageOnPort`, which works in a thread that is blocked
 *           or busy, because the sender posts before it notifies).
 * - FORWARDED 1 once the request went to a sandbox process that was ready;
 *           the host starts its deadline then, not while a process starts.
 * - PID     the process id of the running sandbox process, 0 if none; the
 *           host kills it by pid when it stops waiting.
 * - READY   1 while a sandbox process that said it is ready runs, else 0:
 *           the host can wait for a slow start (Pyodide's) without
 *           blocking its thread.
 *
 * When the sandbox process dies during a request, the reply is an `E` failure:
 * `script_memory` when its standard error shows that V8 ran out of memory
 * (that is how a Map or object grown without end ends), else `script_crash`;
 * a new process is started at once for the next request. When it dies
 * before it was ready, the failure is `script_error` ("cannot start the
 * script sandbox") and the next request tries again.
 */

export const CTL_SLOTS = 8;
export const STATE = 0;
export const LENGTH = 1;
export const FORWARDED = 2;
export const PID = 3;
export const READY = 4;

export const IDLE = 0;
export const REQUEST = 1;
export const WORKING = 2;
export const REPLY = 3;

/** Where the message bytes start in the shared buffer. */
export const DATA_OFFSET = CTL_SLOTS * 4;

/** How much of the sandbox process's standard error is kept, to tell why it died. */
const STDERR_TAIL = 16 * 1024;

export const BRIDGE_SOURCE = `'use strict';
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { spawn } = require('node:child_process');
const { sab, port, command, args, cwd, capacity, memoryLimitMb } = workerData;
const ctl = new Int32Array(sab, 0, ${CTL_SLOTS});
const data = Buffer.from(sab, ${DATA_OFFSET}, capacity);
// A pending Atomics.waitAsync does not keep a thread's event loop alive:
// without this the bridge would end while no sandbox process runs.
setInterval(function () {}, 1 << 30);

const OOM = /out of memory|CALL_AND_RETRY_LAST|Reached heap limit|is_heap_oom|allocation failed/i;
let child = null; // the current sandbox process
let request = null; // the frame being served, until its reply is posted
let holder = null; // the sandbox process that serves it

function messageOf(e) {
  try { return e && typeof e.message === 'string' ? e.message : String(e); } catch (inner) { return 'unknown error'; }
}

function post(bytes) {
  if (bytes.length <= capacity) {
    bytes.copy(data, 0);
    Atomics.store(ctl, ${LENGTH}, bytes.length);
  } else {
    const copy = new Uint8Array(bytes);
    port.postMessage(copy, [copy.buffer]);
    Atomics.store(ctl, ${LENGTH}, -1);
  }
  request = null;
  holder = null;
  Atomics.store(ctl, ${STATE}, ${REPLY});
  Atomics.notify(ctl, ${STATE});
}

function fail(code, message) {
  post(Buffer.from('E' + JSON.stringify({ code: code, message: message }), 'utf8'));
}

function spawnChild() {
  const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: {}, cwd: cwd, windowsHide: true });
  const c = { proc: proc, ready: false, gone: false, stderr: '', startError: '', chunks: [], length: 0, need: -1 };
  child = c;
  Atomics.store(ctl, ${PID}, proc.pid || 0);
  Atomics.store(ctl, ${READY}, 0);
  proc.stdout.on('data', function (chunk) { onData(c, chunk); });
  proc.stderr.on('data', function (chunk) { c.stderr = (c.stderr + chunk.toString('latin1')).slice(-${STDERR_TAIL}); });
  // EPIPE when the process died with a request on its way: 'close' reports it.
  proc.stdin.on('error', function () {});
  proc.on('error', function (e) {
    c.startError = messageOf(e);
    // A process that could not be spawned may never emit 'close'.
    if (!proc.pid) setImmediate(function () { gone(c, null, null); });
  });
  proc.on('close', function (code, signal) { gone(c, code, signal); });
  return c;
}

function onData(c, chunk) {
  if (c.gone) return;
  c.chunks.push(chunk);
  c.length += chunk.length;
  for (;;) {
    if (c.need < 0) {
      if (c.length < 4) return;
      if (c.chunks[0].length < 4) c.chunks = [Buffer.concat(c.chunks, c.length)];
      c.need = 4 + c.chunks[0].readUInt32LE(0);
    }
    if (c.length < c.need) return;
    const all = c.chunks.length === 1 ? c.chunks[0] : Buffer.concat(c.chunks, c.length);
    const frame = all.subarray(4, c.need);
    const rest = all.subarray(c.need);
    c.chunks = rest.length > 0 ? [rest] : [];
    c.length = rest.length;
    c.need = -1;
    onFrame(c, frame);
  }
}

function onFrame(c, frame) {
  if (frame[0] === 0x52 /* R: ready */) {
    c.ready = true;
    if (child === c) {
      Atomics.store(ctl, ${READY}, 1);
    }
    if (request !== null && holder === c) forward();
  } else if (frame[0] === 0x41 /* A: answer */) {
    if (request !== null && holder === c) post(frame.subarray(1));
  }
}

function forward() {
  holder.proc.stdin.write(request);
  Atomics.store(ctl, ${FORWARDED}, 1);
}

function describe(c, code, signal) {
  let how = signal ? 'killed by ' + signal : 'exit code ' + code;
  if (c.startError) how += ': ' + c.startError;
  const tail = c.stderr.trim().split('\\n').filter(function (l) { return l.trim() !== ''; }).slice(-3).join(' | ');
  return tail ? how + ' (' + tail.slice(0, 500) + ')' : how;
}

function gone(c, code, signal) {
  if (c.gone) return;
  c.gone = true;
  if (child === c) {
    child = null;
    Atomics.store(ctl, ${PID}, 0);
    Atomics.store(ctl, ${READY}, 0);
  }
  if (request === null || holder !== c) return;
  if (!c.ready) {
    fail('script_error', 'cannot start the script sandbox: ' + describe(c, code, signal));
    return;
  }
  if (OOM.test(c.stderr)) fail('script_memory', 'the script exceeded the memory limit of ' + memoryLimitMb + ' MB');
  else fail('script_crash', 'the script sandbox process died (' + describe(c, code, signal) + ')');
  // Warm up the next process now rather than on the next request.
  try { spawnChild(); } catch (e) { /* the next request tries again */ }
}

function take() {
  const length = Atomics.load(ctl, ${LENGTH});
  Atomics.store(ctl, ${FORWARDED}, 0);
  Atomics.store(ctl, ${STATE}, ${WORKING});
  let payload;
  if (length >= 0) {
    payload = data.subarray(0, length);
  } else {
    const m = receiveMessageOnPort(port);
    if (m === undefined) return fail('script_error', 'the script sandbox lost a request');
    payload = Buffer.from(m.message.buffer, m.message.byteOffset, m.message.byteLength);
  }
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  payload.copy(frame, 4);
  request = frame;
  if (child === null) {
    try {
      spawnChild();
    } catch (e) {
      return fail('script_error', 'cannot start the script sandbox: ' + messageOf(e));
    }
  }
  holder = child;
  if (holder.ready) forward();
}

(async function serve() {
  for (;;) {
    const state = Atomics.load(ctl, ${STATE});
    if (state === ${REQUEST}) {
      try {
        take();
      } catch (e) {
        if (Atomics.load(ctl, ${STATE}) !== ${REPLY}) fail('script_error', 'the script sandbox bridge failed: ' + messageOf(e));
      }
      continue;
    }
    const w = Atomics.waitAsync(ctl, ${STATE}, state);
    if (w.async) await w.value;
  }
})();

// Start the first sandbox process right away (unless a request that came
// first already did): the first evaluation then usually finds it ready.
if (child === null) {
  try { spawnChild(); } catch (e) { /* the first request reports it */ }
}
`;
