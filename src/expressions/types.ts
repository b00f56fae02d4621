import type { Json, JsonObject } from '../errors.js';

/**
 * Why an expression or script failed. `code` is stable:
 * - `script_error`     the user's code threw (message, line and column from the thrown error)
 * - `script_timeout`   the time limit was hit (infinite loop), or the sandbox
 *                      process stopped answering and was killed
 * - `script_memory`    the memory limit was hit (also when V8 aborted the
 *                      sandbox process for it)
 * - `script_crash`     the sandbox process died during the evaluation for
 *                      another reason (a signal, a crash); the next
 *                      evaluation gets a new process
 * - `script_result`    the result cannot be turned into JSON (functions, cycles, …)
 *                      or stored (a NUL character, an unpaired surrogate, a
 *                      variable named `__proto__`)
 * - `syntax_error`     the source does not parse
 * - `evaluator_closed` the evaluator was closed (a programming error of the caller)
 */
export class ExpressionError extends Error {
  readonly code: string;
  /** 1-based line in the user's source where the failure happened, when known. */
  readonly line?: number;
  /** 1-based column on `line`, when known (only with a line). */
  readonly column?: number;
  constructor(code: string, message: string, line?: number, column?: number) {
    super(message);
    this.name = 'ExpressionError';
    this.code = code;
    if (line !== undefined) {
      this.line = line;
      if (column !== undefined) this.column = column;
    }
  }
}

export interface ScriptResult {
  /**
   * Variables the script assigned at top level (`total = price * qty`), with
   * their final values, JSON-normalised. `let`/`const`/`var` names and
   * function-local names are not included. An assigned `undefined` is reported
   * as `null`.
   *
   * A variable the script changed in place without assigning it
   * (`items.push(4)`, `order.status = 'paid'`) is reported too, when its JSON
   * differs from the value passed in: the caller cannot tell the two apart
   * and would otherwise lose the change.
   */
  assigned: JsonObject;
  /**
   * Variables the script removed (`del x` in Python), absent when none. The
   * caller removes them from the task's variables. Only the Python evaluator
   * reports deletions: JavaScript cannot delete a variable of the scope.
   */
  deleted?: string[];
}

/**
 * Evaluates user code. Synchronous on purpose: the engine is a pure,
 * synchronous function and calls this while advancing tokens. Implementations
 * must not let one evaluation observe globals, prototype changes or variables
 * of another, and must never change the `variables` object or any value in
 * it: the engine passes values of its live state without copying them. Every
 * method throws ExpressionError on failure and nothing else.
 */
export interface Evaluator {
  /** A JS expression over the variables, coerced to boolean (`amount > 1000`). */
  condition(expression: string, variables: JsonObject): boolean;
  /** A JS expression over the variables; the result must be JSON. */
  expression(expression: string, variables: JsonObject): Json;
  /** A script task body. Reads the variables, returns what it assigned at top level. */
  script(source: string, variables: JsonObject): ScriptResult;
}
