import ivm from 'isolated-vm';
import type { Json, JsonObject } from '../errors.js';
import { ALLOWED_GLOBALS, BOOTSTRAP_SOURCE, RUNTIME_FILENAME, USER_FILENAME } from './bootstrap.js';
import { Lru } from './lru.js';
import { ExpressionError, type Evaluator, type ScriptResult } from './types.js';

export interface EvaluatorOptions {
  /** Wall-clock limit of one evaluation, in milliseconds. Default 1000. */
  timeoutMs?: number;
  /** Heap limit of the isolate, in MB (isolated-vm's minimum is 8). Default 64. */
  memoryLimitMb?: number;
  /** How many compiled sources to keep. Default 500. */
  cacheSize?: number;
}

export type SandboxEvaluator = Evaluator & {
  /** Disposes the isolate. Safe to call twice; later evaluations throw `evaluator_closed`. */
  close(): void;
};

const enum Kind {
  Condition = 0,
  Expression = 1,
  Script = 2,
}

/** What the cache holds for one source: the compiled function, or why it does not compile. */
type Compiled = { fn: ivm.Reference<unknown> } | { error: ExpressionError };

/** One isolate with its hardened context and the `run` function of bootstrap.ts. */
interface Sandbox {
  isolate: ivm.Isolate;
  context: ivm.Context;
  run: ivm.Reference<unknown>;
}

const TIMEOUT_MESSAGE = 'Script execution timed out.';
const SYNTAX_LOCATION = new RegExp(` ?\\[${USER_FILENAME}:(\\d+):\\d+\\]$`);
const LINE_BREAK = /\r\n|[\n\r\u2028\u2029]/;

/**
 * Wraps user code so that it runs as the body of a function (its `var`s,
 * `let`s and function declarations stay local) nested in a sloppy-mode
 * `with ($scope)` block (its free identifiers resolve to process variables).
 * The outer arrow function is compiled once and shared by every evaluation of
 * the source; user code can reach it (`arguments.callee.caller`), so it is
 * frozen, or one evaluation could leave data on it for the next.
 * The prefix has no line break, so line N of the user's source is line N of
 * the compiled script; the suffix starts with one, so a trailing `// comment`
 * cannot swallow it.
 */
function wrapSource(kind: Kind, source: string): string {
  const body = kind === Kind.Script ? source : `return (${source.replace(/;\s*$/, '')}\n);`;
  return `(function(){const run=($scope)=>{with($scope){return function(){${body}\n}();}};return Object.freeze(run);})()`;
}

function lineCount(source: string): number {
  return source.split(LINE_BREAK).length;
}

/** A line reported by V8 may point at our closing suffix; keep it inside the user's text. */
function clampLine(line: number | undefined, source: string): number | undefined {
  if (line === undefined || !Number.isFinite(line) || line < 1) return undefined;
  return Math.min(line, lineCount(source));
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  try {
    return String(e);
  } catch {
    return 'unknown error';
  }
}

/** Strings up to this length travel with every call; longer ones are fetched on first read. */
const EAGER_STRING_MAX = 256;
const ALLOWED = new Set(ALLOWED_GLOBALS);

/**
 * Splits the variables for one call (see bootstrap.ts): the JSON object of the
 * cheap ones (primitives, short strings), sent every time, and the names of
 * fetched variables that shadow an allowed global. Everything else is left
 * for `fetchVariable`: a 10,000-item list costs nothing to a condition that
 * does not read it.
 */
function encodeVariables(variables: JsonObject): { eager: string; shadowed: string } {
  let eager = '{';
  let shadowed = '';
  for (const key of Object.keys(variables)) {
    const value = variables[key];
    const t = typeof value;
    if (value === null || t === 'number' || t === 'boolean' || (t === 'string' && (value as string).length <= EAGER_STRING_MAX)) {
      // NaN and Infinity become null, as JSON.stringify does everywhere else.
      eager += (eager.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + JSON.stringify(value);
    } else if (ALLOWED.has(key) && value !== undefined) {
      shadowed += (shadowed === '' ? '' : ',') + key;
    }
  }
  return { eager: eager + '}', shadowed };
}

export function createEvaluator(options: EvaluatorOptions = {}): SandboxEvaluator {
  const timeoutMs = options.timeoutMs ?? 1000;
  const memoryLimitMb = options.memoryLimitMb ?? 64;
  const cacheSize = options.cacheSize ?? 500;
  if (!(timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number');
  if (!(memoryLimitMb >= 8)) throw new RangeError('memoryLimitMb must be at least 8');
  if (!(cacheSize >= 1)) throw new RangeError('cacheSize must be at least 1');

  let sandbox: Sandbox | undefined;
  /** The variables of the evaluation under way, for `fetchVariable`. */
  let current: JsonObject | undefined;

  /** Called from inside the isolate when user code first reads a variable that was not sent eagerly. */
  function fetchVariable(name: unknown): string | undefined {
    const variables = current;
    if (variables === undefined || typeof name !== 'string' || !Object.hasOwn(variables, name)) return undefined;
    try {
      return JSON.stringify(variables[name]);
    } catch (e) {
      return `!${messageOf(e)}`;
    }
  }

  let closed = false;
  const cache = new Lru<string, Compiled>(cacheSize, (entry) => {
    if ('fn' in entry) {
      try {
        entry.fn.release();
      } catch {
        // the isolate is gone already
      }
    }
  });

  function open(): Sandbox {
    if (sandbox !== undefined && !sandbox.isolate.isDisposed) return sandbox;
    // Compiled functions belong to the old isolate.
    cache.clear();
    sandbox = undefined;
    const isolate = new ivm.Isolate({ memoryLimit: memoryLimitMb });
    try {
      const context = isolate.createContextSync();
      const script = isolate.compileScriptSync(BOOTSTRAP_SOURCE, { filename: RUNTIME_FILENAME });
      const connect = script.runSync(context, { reference: true }) as ivm.Reference<unknown>;
      script.release();
      const run = connect.applySync(undefined, [new ivm.Reference(fetchVariable)], { result: { reference: true } }) as ivm.Reference<unknown>;
      connect.release();
      sandbox = { isolate, context, run };
      return sandbox;
    } catch (e) {
      isolate.dispose();
      throw new ExpressionError('script_error', `cannot start the script sandbox: ${messageOf(e)}`);
    }
  }

  /** Maps an exception out of isolated-vm to our error, dropping an isolate that died. */
  function hostFailure(box: Sandbox, e: unknown): ExpressionError {
    if (box.isolate.isDisposed) {
      if (sandbox === box) sandbox = undefined;
      cache.clear();
      return new ExpressionError('script_memory', `the script exceeded the memory limit of ${memoryLimitMb} MB`);
    }
    const message = messageOf(e);
    if (message === TIMEOUT_MESSAGE) {
      return new ExpressionError('script_timeout', `the script ran longer than ${timeoutMs} ms`);
    }
    return new ExpressionError('script_error', message);
  }

  function compile(box: Sandbox, kind: Kind, source: string): ivm.Reference<unknown> {
    const key = `${kind}:${source}`;
    let entry = cache.get(key);
    if (entry === undefined) {
      entry = compileUncached(box, kind, source);
      cache.set(key, entry);
    }
    if ('error' in entry) throw entry.error;
    return entry.fn;
  }

  function compileUncached(box: Sandbox, kind: Kind, source: string): Compiled {
    let script: ivm.Script;
    try {
      script = box.isolate.compileScriptSync(wrapSource(kind, source), { filename: USER_FILENAME });
    } catch (e) {
      if (e instanceof SyntaxError) return { error: syntaxError(box, kind, source, e) };
      throw hostFailure(box, e);
    }
    try {
      const fn = script.runSync(box.context, { reference: true, timeout: timeoutMs }) as ivm.Reference<unknown>;
      if (fn.typeof !== 'function') {
        fn.release();
        return { error: new ExpressionError('syntax_error', 'SyntaxError: the source closes the code around it') };
      }
      return { fn };
    } catch (e) {
      // The wrapper itself only creates a function; user code running here
      // means the source broke out of it (e.g. an unbalanced "})").
      if (box.isolate.isDisposed) throw hostFailure(box, e);
      return { error: new ExpressionError('syntax_error', `SyntaxError: the source closes the code around it (${messageOf(e)})`) };
    } finally {
      script.release();
    }
  }

  function syntaxError(box: Sandbox, kind: Kind, source: string, e: SyntaxError): ExpressionError {
    let error = e;
    if (kind !== Kind.Script) {
      // V8 names the token of our wrapper that it tripped on ("Unexpected
      // token ';'" for "(a + b"). The bare source, parsed alone, fails with
      // the message a user expects ("Unexpected end of input").
      try {
        box.isolate.compileScriptSync(source, { filename: USER_FILENAME }).release();
      } catch (bare) {
        if (bare instanceof SyntaxError) error = bare;
      }
    }
    const m = SYNTAX_LOCATION.exec(error.message);
    const message = `SyntaxError: ${error.message.replace(SYNTAX_LOCATION, '')}`;
    return new ExpressionError('syntax_error', message, clampLine(m ? Number(m[1]) : undefined, source));
  }

  function evaluate(kind: Kind, source: string, variables: JsonObject): string {
    if (closed) throw new ExpressionError('evaluator_closed', 'the evaluator is closed');
    if (typeof source !== 'string') throw new ExpressionError('syntax_error', 'the source is not a string');
    let encoded: { eager: string; shadowed: string };
    try {
      encoded = encodeVariables(variables);
    } catch (e) {
      throw new ExpressionError('script_error', `the variables are not JSON: ${messageOf(e)}`);
    }
    const box = open();
    const fn = compile(box, kind, source);
    let out: unknown;
    current = variables;
    try {
      out = box.run.applySync(undefined, [kind, fn.derefInto(), encoded.eager, encoded.shadowed], { timeout: timeoutMs });
    } catch (e) {
      throw hostFailure(box, e);
    } finally {
      current = undefined;
    }
    if (typeof out !== 'string' || out.length === 0) {
      throw new ExpressionError('script_error', 'the sandbox returned an unexpected value');
    }
    if (out[0] === 'E') {
      let failure: { code?: unknown; message?: unknown; line?: unknown };
      try {
        failure = JSON.parse(out.slice(1)) as typeof failure;
      } catch {
        failure = {};
      }
      const code = typeof failure.code === 'string' ? failure.code : 'script_error';
      const message = typeof failure.message === 'string' ? failure.message : 'the script failed';
      const line = typeof failure.line === 'number' ? clampLine(failure.line, source) : undefined;
      throw new ExpressionError(code, message, line);
    }
    return out;
  }

  /** Runs `fn` and lets only ExpressionError out, whatever goes wrong. */
  function guarded<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ExpressionError) throw e;
      throw new ExpressionError('script_error', messageOf(e));
    }
  }

  return {
    condition(expression: string, variables: JsonObject): boolean {
      return guarded(() => evaluate(Kind.Condition, expression, variables) === 'T');
    },
    expression(expression: string, variables: JsonObject): Json {
      return guarded(() => JSON.parse(evaluate(Kind.Expression, expression, variables).slice(1)) as Json);
    },
    script(source: string, variables: JsonObject): ScriptResult {
      return guarded(() => ({ assigned: JSON.parse(evaluate(Kind.Script, source, variables).slice(1)) as JsonObject }));
    },
    close(): void {
      if (closed) return;
      closed = true;
      cache.clear();
      const box = sandbox;
      sandbox = undefined;
      if (box !== undefined && !box.isolate.isDisposed) box.isolate.dispose();
    },
  };
}
