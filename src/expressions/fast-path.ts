/**
 * The fast path in front of a sandbox, for any language: a language's
 * small interpreter (javascript/simple.ts, python/simple.ts) answers the
 * sources of its grammar in process, with a compile cache by source; what
 * it does not compile, or is not sure to answer exactly as the sandbox
 * would (its DEFER), goes to the sandbox. One wiring for both languages.
 */
import type { Json, JsonObject } from '../errors.js';
import { Lru } from './lru.js';
import type { ScriptResult } from './types.js';

/** A language's fast-path interpreter. `defer` is its "ask the sandbox" answer. */
export interface FastPath<P, D> {
  readonly defer: D;
  compile(source: string, kind: 'expr' | 'script'): P | null;
  condition(p: P, variables: JsonObject): boolean | D;
  expression(p: P, variables: JsonObject): Json | D;
  script(p: P, variables: JsonObject): JsonObject | D;
}

/** The sandbox's side, already guarded (throws ExpressionError only). */
export interface SandboxSide {
  condition(expression: string, variables: JsonObject): boolean;
  expression(expression: string, variables: JsonObject): Json;
  script(source: string, variables: JsonObject): ScriptResult;
  /** true once the evaluator is closed: then the sandbox side reports it, not the fast path */
  closed(): boolean;
}

export function withFastPath<P, D>(
  fast: FastPath<P, D> | null,
  cacheSize: number,
  sandbox: SandboxSide,
): { condition: SandboxSide['condition']; expression: SandboxSide['expression']; script: SandboxSide['script'] } {
  if (fast === null) return { condition: sandbox.condition, expression: sandbox.expression, script: sandbox.script };
  const programs = new Lru<string, P | false>(Math.max(cacheSize, 1));
  const compiled = (source: unknown, kind: 'expr' | 'script'): P | null => {
    if (typeof source !== 'string' || sandbox.closed()) return null;
    const key = (kind === 'expr' ? 'e' : 's') + source;
    const hit = programs.get(key);
    if (hit !== undefined) return hit === false ? null : hit;
    const p = fast.compile(source, kind);
    programs.set(key, p ?? false);
    return p;
  };
  return {
    condition(expression, variables) {
      const p = compiled(expression, 'expr');
      const r = p !== null ? fast.condition(p, variables) : fast.defer;
      return r !== fast.defer ? (r as boolean) : sandbox.condition(expression, variables);
    },
    expression(expression, variables) {
      const p = compiled(expression, 'expr');
      const r = p !== null ? fast.expression(p, variables) : fast.defer;
      return r !== fast.defer ? (r as Json) : sandbox.expression(expression, variables);
    },
    script(source, variables) {
      const p = compiled(source, 'script');
      const r = p !== null ? fast.script(p, variables) : fast.defer;
      return r !== fast.defer ? { assigned: r as JsonObject } : sandbox.script(source, variables);
    },
  };
}
