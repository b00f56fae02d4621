/**
 * The languages of user code. One folder per language, each behind the one
 * `Evaluator` interface (types.ts):
 *
 * - `javascript/`: a fast path for simple sources, else an isolated-vm
 *   isolate in a sandbox process (javascript/index.ts);
 * - `python/`: a fast path for simple sources, else Pyodide in a sandbox
 *   process of its own (python/index.ts).
 *
 * The engine never knows which one it has: the compiled model names the
 * language of every expression (bpmn/languages.ts resolves it at deploy),
 * and the engine asks `EngineContext.evaluators(language)` for the
 * evaluator. FEEL (the DMN issue) slots in beside them.
 */
import type { Language } from './language.js';
import { ExpressionError, type Evaluator } from './types.js';

export { LANGUAGES, languageOf, type Language } from './language.js';

export { createEvaluator } from './javascript/sandbox.js';
export type { EvaluatorOptions, SandboxEvaluator } from './javascript/sandbox.js';
export { createPythonEvaluator } from './python/evaluator.js';
export type { PythonEvaluator, PythonEvaluatorOptions } from './python/evaluator.js';
export { ExpressionError } from './types.js';
export type { Evaluator, ScriptResult } from './types.js';

/** Gives the evaluator of a language; throws ExpressionError `language_unavailable` when there is none. */
export type Evaluators = (language: Language) => Evaluator;

/**
 * Evaluators by language, for an EngineContext. A language without one
 * fails its evaluations with `language_unavailable` (an incident on the
 * token), never silently as another language. A function value is called
 * on the language's first use, so that a sandbox (Pyodide's takes seconds
 * and ~180 MB to start) exists only where a model needs it.
 */
export function evaluatorsOf(byLanguage: Partial<Record<Language, Evaluator | (() => Evaluator)>>): Evaluators {
  const made = new Map<Language, Evaluator>();
  return (language) => {
    let ev = made.get(language);
    if (ev) return ev;
    const entry = byLanguage[language];
    if (entry === undefined) throw new ExpressionError('language_unavailable', `no ${language} evaluator is configured`);
    ev = typeof entry === 'function' ? entry() : entry;
    made.set(language, ev);
    return ev;
  };
}
