import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Json, JsonObject } from '../../errors.js';
import { ALLOWED_GLOBALS } from './bootstrap.js';
import { entryArgs, openChannel, sandboxCalls } from '../channel.js';
import { withFastPath } from '../fast-path.js';
import { Kind, messageOf } from '../protocol.js';
import { compileSimple, DEFER, runCondition, runExpression, runScript } from './simple.js';
import type { Evaluator } from '../types.js';

export interface EvaluatorOptions {
  /** CPU/wall-clock limit of one evaluation inside the sandbox, in milliseconds. Default 1000. */
  timeoutMs?: number;
  /** Heap limit of the isolate, in MB (isolated-vm's minimum is 8). Default 64. */
  memoryLimitMb?: number;
  /** How many compiled sources the sandbox process keeps. Default 500. */
  cacheSize?: number;
  /**
   * Evaluate sources in the fast path's small grammar in this process, without
   * the sandbox (see simple.ts). Default true; false sends everything to the sandbox.
   */
  fastPath?: boolean;
  /**
   * How long the host waits for an answer once the sandbox process has the
   * request, before it kills the process and fails with `script_timeout`.
   * Only reached when the process stops responding (the isolate's own
   * `timeoutMs` normally ends the evaluation first). Default
   * `timeoutMs + max(timeoutMs, 1000)`.
   */
  hardTimeoutMs?: number;
  /** How long an evaluation waits for a sandbox process to start. Default 30,000. */
  startTimeoutMs?: number;
}

export type SandboxEvaluator = Evaluator & {
  /** Stops the sandbox process and its bridge thread. Safe to call twice; later evaluations throw `evaluator_closed`. */
  close(): void;
  /** Process id of the current sandbox process, if one runs (for diagnostics and tests). */
  sandboxPid(): number | undefined;
};

const DEFAULT_START_TIMEOUT_MS = 30_000;

/** Strings up to this length travel as part of the eager JSON; longer ones as their own text. */
const EAGER_STRING_MAX = 256;
const ALLOWED = new Set(ALLOWED_GLOBALS);
/** A `\u` in the source may spell an identifier with escapes (`\u0061mount`): then every variable may be read. */
const MAY_ESCAPE_IDENTIFIER = /\\u/;

/**
 * How to start the sandbox process: child.ts through tsx when this module
 * runs as TypeScript (tsx, vitest), child.js when it has been compiled.
 * `--no-node-snapshot` is what isolated-vm needs on Node >= 20.
 */
function childArgs(): string[] {
  const here = fileURLToPath(import.meta.url);
  return entryArgs(join(dirname(here), here.endsWith('.ts') ? 'child.ts' : 'child.js'), ['--no-node-snapshot']);
}


/**
 * Builds the strings of a request (protocol.ts): the source, the JSON object
 * of the cheap variables (primitives, short strings), the names of other
 * variables that shadow an allowed global, and (name, JSON) of the other
 * variables. Only variables whose name occurs in the source are sent: user
 * code can read a variable only through an identifier in its text (`eval` is
 * not available, `Function` code runs outside the scope), so a condition next
 * to a 10,000-item list does not serialise the list. A source containing `\u`
 * gets every variable, since `\u0061` may spell an identifier.
 * A variable that cannot be serialised is sent as `!message` and fails only
 * when the code reads it.
 */
function requestStrings(source: string, variables: JsonObject): string[] {
  const everything = MAY_ESCAPE_IDENTIFIER.test(source);
  let eager = '{';
  let shadowed = '';
  const strings = [source, '', ''];
  for (const key of Object.keys(variables)) {
    if (!everything && !source.includes(key)) continue;
    const value = variables[key];
    const t = typeof value;
    if (value === null || t === 'number' || t === 'boolean' || (t === 'string' && (value as string).length <= EAGER_STRING_MAX)) {
      // NaN and Infinity become null, as JSON.stringify does everywhere else.
      eager += (eager.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + JSON.stringify(value);
      continue;
    }
    if (value === undefined) continue;
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      text = `!${messageOf(e)}`;
    }
    // A function or symbol (not JSON, so not a variable): like a missing one.
    if (text === undefined) continue;
    strings.push(key, text);
    if (ALLOWED.has(key)) shadowed += (shadowed === '' ? '' : ',') + key;
  }
  strings[1] = eager + '}';
  strings[2] = shadowed;
  return strings;
}

export function createEvaluator(options: EvaluatorOptions = {}): SandboxEvaluator {
  const timeoutMs = options.timeoutMs ?? 1000;
  const memoryLimitMb = options.memoryLimitMb ?? 64;
  const cacheSize = options.cacheSize ?? 500;
  const hardTimeoutMs = options.hardTimeoutMs ?? timeoutMs + Math.max(timeoutMs, 1000);
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number');
  if (!(memoryLimitMb >= 8)) throw new RangeError('memoryLimitMb must be at least 8');
  if (!(cacheSize >= 1)) throw new RangeError('cacheSize must be at least 1');
  if (!(hardTimeoutMs >= timeoutMs)) throw new RangeError('hardTimeoutMs must be at least timeoutMs');
  if (!(startTimeoutMs > 0)) throw new RangeError('startTimeoutMs must be a positive number');

  const args = [...childArgs(), JSON.stringify({ timeoutMs, memoryLimitMb, cacheSize })];
  const channel = openChannel({ args, timeoutMs, hardTimeoutMs, startTimeoutMs, memoryLimitMb });
  const calls = sandboxCalls(channel, requestStrings);
  const { evaluate, guarded } = calls;


  // Start the bridge and its sandbox process now: they warm up while the
  // caller does other things, and the first evaluation usually finds them
  // ready. If that fails, the first evaluation tries again and reports it.
  channel.warm();

  // The fast path (simple.ts): sources in its small grammar are evaluated
  // here, the rest (and every case it is unsure of) in the sandbox.
  const { condition, expression, script } = withFastPath(
    options.fastPath === false ? null : { defer: DEFER, compile: compileSimple, condition: runCondition, expression: runExpression, script: runScript },
    cacheSize,
    {
      condition: (source, variables) => guarded(() => evaluate(Kind.Condition, source, variables) === 'T'),
      expression: (source, variables) => guarded(() => JSON.parse(evaluate(Kind.Expression, source, variables).slice(1)) as Json),
      script: (source, variables) => guarded(() => ({ assigned: JSON.parse(evaluate(Kind.Script, source, variables).slice(1)) as JsonObject })),
      closed: () => calls.closed,
    },
  );

  return {
    condition,
    expression,
    script,
    close(): void {
      if (calls.closed) return;
      calls.close();
      channel.close();
    },
    sandboxPid(): number | undefined {
      const pid = calls.closed ? 0 : channel.pid();
      return pid > 0 ? pid : undefined;
    },
  };
}
