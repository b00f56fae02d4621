/**
 * The isolated-vm side of the sandbox: one isolate with one hardened context,
 * compiled sources cached, evaluations run synchronously. It runs inside the
 * sandbox process (child.ts), never in a Baton process: V8 may abort the
 * process that hosts an isolate when code in it outgrows its heap (see
 * index.ts), and that process must be one we can lose.
 */
import ivm from 'isolated-vm';
import { BOOTSTRAP_SOURCE, RUNTIME_FILENAME, USER_FILENAME } from './bootstrap.js';
import { Lru } from './lru.js';
import { failureReply, Kind, messageOf, type Request } from './protocol.js';
import { ExpressionError } from './types.js';

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
    // The host clamps the line to the user's source.
    return new ExpressionError('syntax_error', message, m ? Number(m[1]) : undefined);
  }

  function evaluateOrThrow(request: Request): string {
    const box = open();
    const fn = compile(box, request.kind, request.source);
    let out: unknown;
    current = request.texts;
    try {
      out = box.run.applySync(undefined, [request.kind, fn.derefInto(), request.eager, request.shadowed], { timeout: timeoutMs });
    } catch (e) {
      throw hostFailure(box, e);
    } finally {
      current = undefined;
    }
    if (typeof out !== 'string' || out.length === 0) {
      throw new ExpressionError('script_error', 'the sandbox returned an unexpected value');
    }
    return out;
  }

  return {
    evaluate(request: Request): string {
      try {
        return evaluateOrThrow(request);
      } catch (e) {
        if (e instanceof ExpressionError) return failureReply(e.code, e.message, e.line);
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
