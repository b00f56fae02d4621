/**
 * A time budget for all the user code one engine call runs (issue 15:
 * BATON_STEP_SCRIPT_BUDGET_MS). Each evaluation has its own limit in its
 * sandbox; this bounds their sum, so that a step of many slow scripts
 * cannot hold the role's event loop for many limits in a row. Once a step
 * has spent the budget, its next evaluation fails with `script_budget`
 * (an incident on that token; retrying it starts a new step with a fresh
 * budget). Fast-path evaluations count too, at their real (tiny) cost.
 */
import type { Json, JsonObject } from '../errors.js';
import type { Evaluators } from './index.js';
import type { Language } from './language.js';
import { ExpressionError, type Evaluator, type ScriptResult } from './types.js';

export interface BudgetedEvaluators {
  evaluators: Evaluators;
  /** starts a new step: the budget is whole again */
  reset(): void;
  /** milliseconds spent since the last reset */
  spentMs(): number;
}

export function budgeted(inner: Evaluators, budgetMs: number): BudgetedEvaluators {
  let spent = 0;
  const wrapped = new Map<Language, Evaluator>();
  const timed = <T>(run: () => T): T => {
    if (spent >= budgetMs) {
      throw new ExpressionError(
        'script_budget',
        `the scripts and expressions of this step ran ${Math.round(spent)} ms, the budget of one step (BATON_STEP_SCRIPT_BUDGET_MS=${budgetMs}); retry the incident to go on in a new step`,
      );
    }
    const t0 = performance.now();
    try {
      return run();
    } finally {
      spent += performance.now() - t0;
    }
  };
  const evaluators: Evaluators = (language) => {
    let ev = wrapped.get(language);
    if (ev) return ev;
    const base = inner(language);
    ev = {
      condition: (expression: string, variables: JsonObject): boolean => timed(() => base.condition(expression, variables)),
      expression: (expression: string, variables: JsonObject): Json => timed(() => base.expression(expression, variables)),
      script: (source: string, variables: JsonObject): ScriptResult => timed(() => base.script(source, variables)),
    };
    wrapped.set(language, ev);
    return ev;
  };
  return {
    evaluators,
    reset() {
      spent = 0;
    },
    spentMs: () => spent,
  };
}
