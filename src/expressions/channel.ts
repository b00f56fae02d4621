/**
 * The host's end of a sandbox process: one bridge thread (bridge.ts) and the
 * shared buffer the host thread blocks on (see index.ts, "Process layout").
 * It knows nothing of the language that runs in the sandbox process: the
 * JavaScript evaluator (sandbox.ts, child.ts) and the Python one
 * (python/evaluator.ts, python/child.ts) each open a channel with their own
 * entry script and encode their own requests (protocol.ts).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { BRIDGE_SOURCE, CTL_SLOTS, DATA_OFFSET, FORWARDED, IDLE, LENGTH, PID, READY, REPLY, REQUEST, STATE } from './bridge.js';
import { clampPosition, encodeRequest, encodeRequestInto, type Kind, messageOf, readFailure, requestSizeBound } from './protocol.js';
import type { JsonObject } from '../errors.js';
import { ExpressionError } from './types.js';

/** The host's end of one bridge thread (bridge.ts) and the shared buffer it talks through. */
interface Bridge {
  worker: Worker;
  port: MessagePort;
  ctl: Int32Array;
  data: Buffer;
  /** Set from the worker's 'error'/'exit' events: build a new bridge for the next call. */
  broken: boolean;
}

/** Size of the message area of the shared buffer; bigger messages go over the MessagePort. */
const CAPACITY = 256 * 1024;
/** While the sandbox process has not got the request yet, the host looks at FORWARDED this often. */
const POLL_MS = 20;
/** After killing an unresponsive sandbox process, how long to wait for the bridge to confirm. */
const KILL_GRACE_MS = 5000;

export interface ChannelOptions {
  /** Arguments of `node` that start the sandbox process (see `entryArgs`). */
  args: string[];
  /** The evaluation limit, for the message of a `script_timeout`. */
  timeoutMs: number;
  /** How long the host waits once the process has the request before it kills it. */
  hardTimeoutMs: number;
  /** How long an evaluation waits for a sandbox process to start. */
  startTimeoutMs: number;
  /** For the bridge's `script_memory` message when the process dies of memory. */
  memoryLimitMb: number;
}

export interface Channel {
  /** Sends one request to the sandbox process and returns its reply, within the deadlines. Throws ExpressionError. */
  exchange(kind: Kind, strings: readonly string[]): string;
  /** Starts the bridge and its process now, if they do not run (errors are left to the next exchange). */
  warm(): void;
  /**
   * Starts the bridge and its process if they do not run, and resolves true
   * once a sandbox process is ready, false after `timeoutMs` (the process
   * may still come up later). Waits without blocking the thread.
   */
  ready(timeoutMs: number): Promise<boolean>;
  /** Stops the sandbox process and the bridge thread; a later exchange starts new ones. */
  close(): void;
  /** Process id of the current sandbox process, 0 if none. */
  pid(): number;
}

export { entryArgs } from '../entry-args.js';

/**
 * What the sandbox process may not do, set by util-linux's `prlimit` before
 * it executes node (the pid stays the same): write a core dump (a V8 abort
 * would otherwise leave one per runaway Map, where core dumps are on), write
 * any regular file (RLIMIT_FSIZE 0: it needs none; pipes are not files),
 * hold more than 1,024 descriptors. No address-space limit: V8 and
 * WebAssembly reserve far more virtual memory than they use. Without
 * `prlimit` on the machine the process runs without these.
 */
const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => existsSync(p));
const SANDBOX_RLIMITS = ['--core=0', '--fsize=0', '--nofile=1024'];

function sandboxCommand(args: readonly string[]): { command: string; args: string[] } {
  return PRLIMIT !== undefined ? { command: PRLIMIT, args: [...SANDBOX_RLIMITS, '--', process.execPath, ...args] } : { command: process.execPath, args: [...args] };
}

export function killPid(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

export function openChannel(options: ChannelOptions): Channel {
  const { args, timeoutMs, hardTimeoutMs, startTimeoutMs, memoryLimitMb } = options;
  let bridge: Bridge | undefined;
  // its own empty working directory (owner-only), never the role's
  let cwd: string | undefined;
  const workDir = (): string => (cwd ??= mkdtempSync(join(tmpdir(), 'baton-sandbox-')));

  function openBridge(): Bridge {
    if (bridge !== undefined && !bridge.broken) return bridge;
    if (bridge !== undefined) closeBridge(bridge);
    const sab = new SharedArrayBuffer(DATA_OFFSET + CAPACITY);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(BRIDGE_SOURCE, {
      eval: true,
      // Not the parent's flags: the bridge needs no TypeScript loader.
      execArgv: [],
      env: {},
      workerData: { sab, port: port2, ...sandboxCommand(args), cwd: workDir(), capacity: CAPACITY, memoryLimitMb },
      transferList: [port2],
    });
    const b: Bridge = { worker, port: port1, ctl: new Int32Array(sab, 0, CTL_SLOTS), data: Buffer.from(sab, DATA_OFFSET, CAPACITY), broken: false };
    // Neither may keep the Baton process alive; close() stops both.
    worker.unref();
    port1.unref();
    // An 'error' event without a listener would be thrown in the host.
    worker.on('error', () => {
      b.broken = true;
    });
    worker.on('exit', () => {
      b.broken = true;
    });
    bridge = b;
    return b;
  }

  function closeBridge(b: Bridge): void {
    if (bridge === b) bridge = undefined;
    b.broken = true;
    killPid(Atomics.load(b.ctl, PID));
    b.worker.terminate().catch(() => {});
    b.port.close();
  }

  /** Blocks until the bridge posted a reply or `until` (performance.now()) passed. */
  function waitForReply(ctl: Int32Array, until: number): boolean {
    for (;;) {
      const state = Atomics.load(ctl, STATE);
      if (state === REPLY) return true;
      const left = until - performance.now();
      if (left <= 0) return false;
      Atomics.wait(ctl, STATE, state, left);
    }
  }

  function readReply(b: Bridge): string {
    const length = Atomics.load(b.ctl, LENGTH);
    let text: string | undefined;
    if (length >= 0) {
      text = b.data.toString('utf8', 0, length);
    } else {
      const m = receiveMessageOnPort(b.port) as { message: unknown } | undefined;
      if (m !== undefined && m.message instanceof Uint8Array) {
        text = Buffer.from(m.message.buffer, m.message.byteOffset, m.message.byteLength).toString('utf8');
      }
    }
    Atomics.store(b.ctl, STATE, IDLE);
    if (text === undefined || text.length === 0) throw new ExpressionError('script_error', 'the script sandbox lost a reply');
    return text;
  }

  /** Sends one request to the sandbox process and waits for its reply, within the deadlines. */
  function exchange(kind: Kind, strings: readonly string[]): string {
    const b = openBridge();
    const { ctl } = b;
    let length: number;
    if (requestSizeBound(strings) <= CAPACITY) {
      length = encodeRequestInto(b.data, kind, strings);
    } else {
      const bytes = encodeRequest(kind, strings);
      if (bytes.length <= CAPACITY) {
        length = bytes.copy(b.data, 0);
      } else {
        const copy = new Uint8Array(bytes);
        b.port.postMessage(copy, [copy.buffer]);
        length = -1;
      }
    }
    Atomics.store(ctl, LENGTH, length);
    Atomics.store(ctl, FORWARDED, 0);
    Atomics.store(ctl, STATE, REQUEST);
    Atomics.notify(ctl, STATE);

    // Two deadlines: one for a sandbox process to start (the bridge holds the
    // request until one is ready), then `hardTimeoutMs` from the moment the
    // process has the request. The bridge does not notify when it forwards,
    // so while FORWARDED is 0 the host looks every POLL_MS.
    const startBy = performance.now() + startTimeoutMs;
    let runBy = Number.POSITIVE_INFINITY;
    for (;;) {
      const state = Atomics.load(ctl, STATE);
      if (state === REPLY) return readReply(b);
      const now = performance.now();
      if (runBy === Number.POSITIVE_INFINITY && Atomics.load(ctl, FORWARDED) === 1) runBy = now + hardTimeoutMs;
      if (runBy !== Number.POSITIVE_INFINITY) {
        if (now >= runBy) break;
        Atomics.wait(ctl, STATE, state, runBy - now);
      } else {
        if (now >= startBy) {
          closeBridge(b);
          throw new ExpressionError('script_error', `cannot start the script sandbox: no sandbox process was ready within ${startTimeoutMs} ms`);
        }
        Atomics.wait(ctl, STATE, state, Math.min(POLL_MS, startBy - now));
      }
    }

    // The sandbox process stopped responding: kill it. The bridge then
    // answers the request as failed and starts a new process; if it does not
    // answer either, start over with a new bridge.
    killPid(Atomics.load(ctl, PID));
    if (waitForReply(ctl, performance.now() + KILL_GRACE_MS)) {
      try {
        readReply(b);
      } catch {
        // the answer of a killed process does not matter
      }
    } else {
      closeBridge(b);
    }
    throw new ExpressionError('script_timeout', `the script ran longer than ${timeoutMs} ms (the sandbox process stopped responding and was restarted)`);
  }

  return {
    exchange,
    warm(): void {
      try {
        openBridge();
      } catch {
        bridge = undefined;
      }
    },
    async ready(timeoutMs: number): Promise<boolean> {
      const until = performance.now() + timeoutMs;
      for (;;) {
        let b: Bridge;
        try {
          b = openBridge();
        } catch {
          bridge = undefined;
          return false;
        }
        if (Atomics.load(b.ctl, READY) === 1) return true;
        const left = until - performance.now();
        if (left <= 0) return false;
        // polled (a timer keeps the process alive, unlike Atomics.waitAsync);
        // a bridge that broke meanwhile is replaced on the next round
        await new Promise((resolve) => setTimeout(resolve, Math.min(left, READY_POLL_MS)));
      }
    },
    close(): void {
      if (bridge !== undefined) closeBridge(bridge);
      if (cwd !== undefined) {
        rmSync(cwd, { recursive: true, force: true });
        cwd = undefined;
      }
    },
    pid(): number {
      return bridge === undefined ? 0 : Atomics.load(bridge.ctl, PID);
    },
  };
}

/** How often `ready()` looks whether the sandbox process is up. */
const READY_POLL_MS = 20;

/** Longest message of an ExpressionError (the sandboxes clip user messages already; this covers the rest). */
const MAX_MESSAGE = 2000;
/** Characters a database cannot store in text: NUL, unpaired surrogates. */
const BAD_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** A message as an incident may carry it: clipped, with what Postgres cannot store replaced. */
export function cleanMessage(message: string): string {
  const short = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
  return short.replace(BAD_TEXT, '\ufffd');
}

/** One evaluator's calls over its channel, whatever language its sandbox runs. */
export interface SandboxCalls {
  /** Sends one evaluation and returns the reply; a failure reply is thrown as its ExpressionError. */
  evaluate(kind: Kind, source: string, variables: JsonObject): string;
  /** Runs `fn` and lets only ExpressionError out, whatever goes wrong. */
  guarded<T>(fn: () => T): T;
  readonly closed: boolean;
  /** Later evaluations throw `evaluator_closed` (the caller closes the channel). */
  close(): void;
}

export function sandboxCalls(channel: Channel, requestStrings: (source: string, variables: JsonObject) => string[]): SandboxCalls {
  let closed = false;
  return {
    get closed() {
      return closed;
    },
    close() {
      closed = true;
    },
    evaluate(kind, source, variables) {
      if (closed) throw new ExpressionError('evaluator_closed', 'the evaluator is closed');
      if (typeof source !== 'string') throw new ExpressionError('syntax_error', 'the source is not a string');
      let strings: string[];
      try {
        strings = requestStrings(source, variables);
      } catch (e) {
        throw new ExpressionError('script_error', `the variables are not JSON: ${messageOf(e)}`);
      }
      const out = channel.exchange(kind, strings);
      if (out[0] === 'E') {
        const failure = readFailure(out);
        const message = failure.message !== null ? cleanMessage(failure.message) : 'the script failed';
        // a position past the source's end (a suffix the sandbox added, blank lines it stripped) is clamped to its last line
        const { line, column } = clampPosition(failure.line, failure.column, source);
        throw new ExpressionError(failure.code, message, line, column);
      }
      return out;
    },
    guarded(fn) {
      try {
        return fn();
      } catch (e) {
        if (e instanceof ExpressionError) throw e;
        throw new ExpressionError('script_error', cleanMessage(messageOf(e)));
      }
    },
  };
}
