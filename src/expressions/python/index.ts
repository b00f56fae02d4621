/**
 * Conditions, expressions and scripts in Python, run by Pyodide (CPython in
 * WebAssembly, the npm package `pyodide`, which ships its standard library
 * and loads offline) in a sandbox process of its own.
 *
 * Not wired into the engine yet: the engine still asks for JavaScript. See
 * the README's "Python" note for what works.
 */
export { createPythonEvaluator } from './evaluator.js';
export type { PythonEvaluator, PythonEvaluatorOptions } from './evaluator.js';
