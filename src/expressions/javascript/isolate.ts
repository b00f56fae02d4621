/**
 * The isolated-vm side of the sandbox: one isolate with one hardened context,
 * compiled sources cached, evaluations run synchronously. It runs inside the
 * sandbox process (child.ts), never in a Baton process: V8 may abort the
 * process that hosts an isolate when code in it outgrows its heap (see
 * index.ts), and that process must be one we can lose.
 */
import ivm from 'isolated-vm';
import { BOOTSTRAP_SOURCE, EXPRESSION_PREFIX, EXPRESSION_SUFFIX, RUNTIME_FILENAME, USER_FILENAME, WRAP_PREFIX, WRAP_SUFFIX } from './bootstrap.js';
import { Lru } from '../lru.js';
import { failureReply, Kind, messageOf, type Request } from '../protocol.js';
import { ExpressionError } from '../types.js';
import { originalPosition, rewriteTypeof, type Shift } from './typeof.js';

export interface IsolateRunnerOptions {
  timeoutMs: number;
  memoryLimitMb: number;
  cacheSize: number;
}

export interface IsolateRunner {
  /** Runs one request and returns its reply (see protocol.ts). Never throws. */
  evaluate(request: Request): string;
  dispose(): void;
}

/**
 * What the cache holds for one source: the compiled function, or why it does
 * not compile. A source whose `typeof`s were rewritten (typeof.ts) also has
 * the helper's name and the inserted characters, to map columns back.
 */
type Compiled = { fn: ivm.Reference<unknown>; helper: string; shifts: readonly Shift[] } | { error: ExpressionError };

/** One isolate with its hardened context and the `run` function of bootstrap.ts. */
interface Sandbox {
  isolate: ivm.Isolate;
  context: ivm.Context;
  run: ivm.Reference<unknown>;
  /** `check(body)`: parses `body` with the isolate's Function constructor, throws a SyntaxError if it is not one function body. */
  check: ivm.Reference<unknown>;
}

const TIMEOUT_MESSAGE = 'Script execution timed out.';
const SYNTAX_LOCATION = new RegExp(` ?\\[${USER_FILENAME}:(\\d+):(\\d+)\\]$`);

/**
 * Parses a function body without running it. The Function constructor
 * refuses a body that closes the function around it ("Single function
 * literal required"), which is what makes the check sound; it is captured
 * here, when the context is fresh and hardened.
 */
const CHECK_SOURCE = `(function () { 'use strict'; const F = Function; return function check(body) { F(body); }; })()`;

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
function bodyOf(kind: Kind, source: string): string {
  return kind === Kind.Script ? source : EXPRESSION_PREFIX + source.replace(/;\s*$/, '') + EXPRESSION_SUFFIX;
}

function wrapSource(body: string): string {
  return WRAP_PREFIX + body + WRAP_SUFFIX;
}

/** How many columns line 1 of the compiled script is shifted against the user's source. */
function lineOneShift(kind: Kind): number {
  return WRAP_PREFIX.length + (kind === Kind.Script ? 0 : EXPRESSION_PREFIX.length);
}

export function createIsolateRunner(options: IsolateRunnerOptions): IsolateRunner {
  const { timeoutMs, memoryLimitMb, cacheSize } = options;
  let sandbox: Sandbox | undefined;
  /** The variables of the evaluation under way, for `fetchVariable`. */
  let current: Map<string, string> | undefined;

  /** Called from inside the isolate when user code first reads a variable that was not sent eagerly. */
  function fetchVariable(name: unknown): string | undefined {
    return typeof name === 'string' ? current?.get(name) : undefined;
  }

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
      // A quarter of the heap: flattening a string and writing its JSON both take a copy.
      const maxResultChars = Math.floor((memoryLimitMb * 1024 * 1024) / 4);
      const run = connect.applySync(undefined, [new ivm.Reference(fetchVariable), maxResultChars], { result: { reference: true } }) as ivm.Reference<unknown>;
      connect.release();
      const checkScript = isolate.compileScriptSync(CHECK_SOURCE, { filename: RUNTIME_FILENAME });
      const check = checkScript.runSync(context, { reference: true }) as ivm.Reference<unknown>;
      checkScript.release();
      sandbox = { isolate, context, run, check };
      return sandbox;
    } catch (e) {
      isolate.dispose();
      throw new ExpressionError('script_error', `cannot start the script sandbox: ${messageOf(e)}`);
    }
  }

  /**
   * Maps an exception out of isolated-vm to our error, dropping an isolate
   * that died. `run` catches whatever user code throws, so another exception
   * out of it is a promise that user code rejected and nobody handled
   * (isolated-vm reports those when the microtasks have run): `inPromise`.
   */
  function hostFailure(box: Sandbox, e: unknown, inPromise = false): ExpressionError {
    if (box.isolate.isDisposed) {
      if (sandbox === box) sandbox = undefined;
      cache.clear();
      return new ExpressionError('script_memory', `the script exceeded the memory limit of ${memoryLimitMb} MB`);
    }
    const message = messageOf(e);
    if (message === TIMEOUT_MESSAGE) {
      return new ExpressionError('script_timeout', `the script ran longer than ${timeoutMs} ms`);
    }
    if (inPromise) {
      const name = e instanceof Error && e.name !== '' && e.name !== 'Error' ? `${e.name}: ` : e instanceof Error ? 'Error: ' : '';
      return new ExpressionError('script_error', `${name}${message} (uncaught in a promise)`);
    }
    return new ExpressionError('script_error', message);
  }

  function compile(box: Sandbox, kind: Kind, source: string): Extract<Compiled, { fn: unknown }> {
    const key = `${kind}:${source}`;
    let entry = cache.get(key);
    if (entry === undefined) {
      entry = compileUncached(box, kind, source);
      cache.set(key, entry);
    }
    if ('error' in entry) throw entry.error;
    return entry;
  }

  function compileUncached(box: Sandbox, kind: Kind, source: string): Compiled {
    const body = bodyOf(kind, source);
    // `typeof name` of a missing name: rewritten so that it gives 'undefined'
    // (typeof.ts). Should V8 refuse the rewritten text where acorn took it,
    // the original is compiled instead: its error is the one to report.
    const rewrite = rewriteTypeof(body, kind === Kind.Script ? 0 : EXPRESSION_PREFIX.length);
    if (rewrite !== null) {
      const entry = compileBody(box, kind, source, rewrite.body, rewrite.helper, rewrite.shifts);
      if ('fn' in entry) return entry;
    }
    return compileBody(box, kind, source, body, '', []);
  }

  function compileBody(box: Sandbox, kind: Kind, source: string, body: string, helper: string, shifts: readonly Shift[]): Compiled {
    let script: ivm.Script;
    try {
      script = box.isolate.compileScriptSync(wrapSource(body), { filename: USER_FILENAME });
    } catch (e) {
      if (e instanceof SyntaxError) return { error: syntaxError(box, kind, source, e) };
      throw hostFailure(box, e);
    }
    // The source parses inside the wrapper; it must also parse alone as a
    // function body. Otherwise it closes the code around it ("}})(); …"):
    // running the wrapper would run part of it outside the scope, at the top
    // level of a script, where a `let` outlives the evaluation and is
    // visible to every later one.
    try {
      box.check.applySync(undefined, [body], { timeout: timeoutMs });
    } catch (e) {
      script.release();
      if (box.isolate.isDisposed || messageOf(e) === TIMEOUT_MESSAGE) throw hostFailure(box, e);
      return { error: new ExpressionError('syntax_error', `SyntaxError: the source closes the code around it (${messageOf(e)})`) };
    }
    try {
      const fn = script.runSync(box.context, { reference: true, timeout: timeoutMs }) as ivm.Reference<unknown>;
      if (fn.typeof !== 'function') {
        fn.release();
        return { error: new ExpressionError('syntax_error', 'SyntaxError: the source closes the code around it') };
      }
      return { fn, helper, shifts };
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
    const line = m ? Number(m[1]) : undefined;
    let column = m ? Number(m[2]) : undefined;
    // The wrapped source shifts line 1; the bare one (error !== e) does not.
    if (line === 1 && column !== undefined && error === e) column -= lineOneShift(kind);
    // The host clamps the line to the user's source.
    return new ExpressionError('syntax_error', message, line, column !== undefined && column >= 1 ? column : undefined);
  }

  function evaluateOrThrow(request: Request): string {
    const box = open();
    const entry = compile(box, request.kind, request.source);
    let out: unknown;
    current = request.texts;
    try {
      out = box.run.applySync(undefined, [request.kind, entry.fn.derefInto(), request.eager, request.shadowed, entry.helper], { timeout: timeoutMs });
    } catch (e) {
      throw hostFailure(box, e, true);
    } finally {
      current = undefined;
    }
    if (typeof out !== 'string' || out.length === 0) {
      throw new ExpressionError('script_error', 'the sandbox returned an unexpected value');
    }
    if (out[0] === 'E' && entry.shifts.length > 0) return unshift(out, entry.shifts);
    return out;
  }

  /** A failure of a rewritten source, with its column moved back to the user's text (see typeof.ts). */
  function unshift(reply: string, shifts: readonly Shift[]): string {
    let failure: { line?: unknown; column?: unknown };
    try {
      failure = JSON.parse(reply.slice(1)) as typeof failure;
    } catch {
      return reply;
    }
    if (typeof failure.line !== 'number' || typeof failure.column !== 'number') return reply;
    failure.column = originalPosition(shifts, failure.line, failure.column);
    return `E${JSON.stringify(failure)}`;
  }

  return {
    evaluate(request: Request): string {
      try {
        return evaluateOrThrow(request);
      } catch (e) {
        if (e instanceof ExpressionError) return failureReply(e.code, e.message, e.line, e.column);
        return failureReply('script_error', messageOf(e));
      }
    },
    dispose(): void {
      cache.clear();
      const box = sandbox;
      sandbox = undefined;
      if (box !== undefined && !box.isolate.isDisposed) box.isolate.dispose();
    },
  };
}
