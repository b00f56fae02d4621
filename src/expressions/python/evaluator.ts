import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Json, JsonObject } from '../../errors.js';
import { entryArgs, openChannel, sandboxCalls } from '../channel.js';
import { withFastPath } from '../fast-path.js';
import { Kind } from '../protocol.js';
import { compileSimple, DEFER, runCondition, runExpression, runScript } from './simple.js';
import type { Evaluator, ScriptResult } from '../types.js';

export interface PythonEvaluatorOptions {
  /** CPU/wall-clock limit of one evaluation, in milliseconds. Default 1000. */
  timeoutMs?: number;
  /** Cap of the interpreter's WebAssembly memory, in MB (Pyodide itself takes ~32). Default 256. */
  memoryLimitMb?: number;
  /** How many compiled sources the sandbox process keeps. Default 500. */
  cacheSize?: number;
  /** Python's recursion limit (`sys.setrecursionlimit`). Default 1000, at most 5000. */
  recursionLimit?: number;
  /**
   * How long the host waits for an answer once the sandbox process has the
   * request, before it kills the process and fails with `script_timeout`.
   * Default `timeoutMs + max(timeoutMs, 1000)`.
   */
  hardTimeoutMs?: number;
  /** How long an evaluation waits for a sandbox process to start (Pyodide loads in ~3-7 s). Default 60,000. */
  startTimeoutMs?: number;
  /**
   * Evaluate sources in the fast path's small grammar in this process, without
   * the sandbox (see simple.ts and index.ts, "The fast path"). Default true;
   * false sends everything to the sandbox.
   */
  fastPath?: boolean;
}

export type PythonEvaluator = Evaluator & {
  /** Stops the sandbox process and its bridge thread. Safe to call twice; later evaluations throw `evaluator_closed`. */
  close(): void;
  /** Process id of the current sandbox process, if one runs (for diagnostics and tests). */
  sandboxPid(): number | undefined;
  /**
   * Resolves true once a sandbox process has loaded Pyodide (starting one if
   * none runs), false after `timeoutMs`; waits without blocking the thread,
   * so a caller can let Pyodide load before its first synchronous evaluation.
   */
  ready(timeoutMs: number): Promise<boolean>;
};

const DEFAULT_START_TIMEOUT_MS = 60_000;
/**
 * Python folds identifiers to NFKC: `ｒａｔｅ` is `rate`. A source with any
 * character outside ASCII may name any variable, so it gets them all.
 */
const NON_ASCII = /[^\u0000-\u007f]/;

function childArgs(): string[] {
  const here = fileURLToPath(import.meta.url);
  return entryArgs(join(dirname(here), here.endsWith('.ts') ? 'child.ts' : 'child.js'));
}

/**
 * The request strings (protocol.ts): the source, a JSON object of the
 * primitive variables, an unused third string, then (name, JSON) of each
 * object or array variable, which the sandbox compares with the final value
 * to tell an in-place change. Only variables whose name occurs in the source
 * are sent: a script can name a variable only in its text (`globals()`,
 * `vars()`, `eval` are not offered).
 */
function requestStrings(source: string, variables: JsonObject): string[] {
  const everything = NON_ASCII.test(source);
  let eager = '{';
  const strings = [source, '', ''];
  for (const key of Object.keys(variables)) {
    if (!everything && !source.includes(key)) continue;
    const value = variables[key];
    if (value === undefined) continue;
    const t = typeof value;
    if (value === null || t === 'number' || t === 'boolean' || t === 'string') {
      eager += (eager.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + JSON.stringify(value);
      continue;
    }
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined) continue;
    strings.push(key, text);
  }
  strings[1] = eager + '}';
  return strings;
}

export function createPythonEvaluator(options: PythonEvaluatorOptions = {}): PythonEvaluator {
  const timeoutMs = options.timeoutMs ?? 1000;
  const memoryLimitMb = options.memoryLimitMb ?? 256;
  const cacheSize = options.cacheSize ?? 500;
  const recursionLimit = options.recursionLimit ?? 1000;
  const hardTimeoutMs = options.hardTimeoutMs ?? timeoutMs + Math.max(timeoutMs, 1000);
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number');
  if (!(memoryLimitMb >= 64)) throw new RangeError('memoryLimitMb must be at least 64');
  if (!(cacheSize >= 1)) throw new RangeError('cacheSize must be at least 1');
  if (!(recursionLimit >= 50 && recursionLimit <= 5000)) throw new RangeError('recursionLimit must be between 50 and 5000');
  if (!(hardTimeoutMs >= timeoutMs)) throw new RangeError('hardTimeoutMs must be at least timeoutMs');
  if (!(startTimeoutMs > 0)) throw new RangeError('startTimeoutMs must be a positive number');

  const args = [...childArgs(), JSON.stringify({ timeoutMs, memoryLimitMb, cacheSize, recursionLimit })];
  const channel = openChannel({ args, timeoutMs, hardTimeoutMs, startTimeoutMs, memoryLimitMb });
  const calls = sandboxCalls(channel, requestStrings);
  const { evaluate, guarded } = calls;

  // The fast path (simple.ts): sources in its small grammar are evaluated
  // here, the rest (and every case it is unsure of) in the sandbox. The
  // sandbox walks a syntax tree with Python recursion before compiling it,
  // so the deepest tree the fast path takes follows the recursion limit.
  const maxDepth = Math.min(40, Math.floor((recursionLimit - 20) / 3)); // limit 50: 10 (the sandbox fails from ~16)
  const { condition, expression, script } = withFastPath(
    options.fastPath === false
      ? null
      : { defer: DEFER, compile: (source: string, kind: 'expr' | 'script') => compileSimple(source, kind, maxDepth), condition: runCondition, expression: runExpression, script: runScript },
    cacheSize,
    {
      condition: (source, variables) => guarded(() => evaluate(Kind.Condition, source, variables) === 'T'),
      expression: (source, variables) => guarded(() => JSON.parse(evaluate(Kind.Expression, source, variables).slice(1)) as Json),
      script: (source, variables) =>
        guarded(() => {
          const reply = JSON.parse(evaluate(Kind.Script, source, variables).slice(1)) as { a: JsonObject; d?: string[] };
          const result: ScriptResult = { assigned: reply.a };
          if (reply.d !== undefined && reply.d.length > 0) result.deleted = reply.d;
          return result;
        }),
      closed: () => calls.closed,
    },
  );

  channel.warm();

  return {
    condition,
    expression,
    script,
    close(): void {
      if (calls.closed) return;
      calls.close();
      channel.close();
    },
    ready(timeoutMs: number): Promise<boolean> {
      return calls.closed ? Promise.resolve(false) : channel.ready(timeoutMs);
    },
    sandboxPid(): number | undefined {
      const pid = calls.closed ? 0 : channel.pid();
      return pid > 0 ? pid : undefined;
    },
  };
}
