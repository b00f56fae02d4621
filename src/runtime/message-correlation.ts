/**
 * BPMN-standard (SpiffArena) message correlation outside the engine.
 *
 * At deploy, the correlationPropertyRetrievalExpression messagePaths of every
 * message a process catches or throws are registered by message name (one
 * row per process key and name, replaced by each new version of the key).
 *
 * When a client publishes a message without a correlation key, the key is
 * computed from the published variables with those paths — by the same rule
 * as the engine's key expression (src/bpmn/readers.ts correlationKeyExpression)
 * — but without running user code: a path must be a plain dotted path
 * (`a.b.c`, `a["b"]`, `a['b']`, `a[0]`). If it is not, or no path list is
 * registered, the key stays null. Several process keys registering different
 * paths for one name: the first in process-key order is used.
 */
import type { ProcessGraph } from '../bpmn/types.js';
import type { Json, JsonObject } from '../errors.js';
import type { Executor } from '../store/db.js';
import { messageCorrelationPaths, replaceMessageCorrelations } from '../store/messages.js';

/** message name → retrieval paths, for every message element of the graph whose key comes from retrieval expressions. */
export function correlationPathsOfGraph(graph: ProcessGraph): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const el of Object.values(graph.elements)) {
    const refs: Array<{ messageName: string; correlationPaths?: readonly string[] }> = [];
    if ('message' in el) refs.push(el.message);
    if ('eventDefinition' in el && el.eventDefinition?.kind === 'message') refs.push(el.eventDefinition);
    for (const r of refs) if (r.correlationPaths && r.correlationPaths.length > 0 && !out.has(r.messageName)) out.set(r.messageName, r.correlationPaths);
  }
  return out;
}

export async function registerMessageCorrelations(trx: Executor, processKey: string, graph: ProcessGraph): Promise<void> {
  const rows = [...correlationPathsOfGraph(graph)].map(([messageName, paths]) => ({ messageName, paths }));
  await replaceMessageCorrelations(trx, processKey, rows);
}

const IDENT = /^[A-Za-z_$][\w$]*/;

/** A plain path → its segments; anything else (calls, operators, …) → null. */
export function parsePath(path: string): string[] | null {
  let rest = path.trim();
  const head = IDENT.exec(rest);
  if (!head) return null;
  const segments = [head[0]];
  rest = rest.slice(head[0].length);
  while (rest.length > 0) {
    let m: RegExpExecArray | null;
    if ((m = /^\s*\.\s*([A-Za-z_$][\w$]*)/.exec(rest))) segments.push(m[1]!);
    else if ((m = /^\s*\[\s*"((?:[^"\\]|\\.)*)"\s*\]/.exec(rest))) segments.push(JSON.parse(`"${m[1]!}"`) as string);
    else if ((m = /^\s*\[\s*'((?:[^'\\]|\\.)*)'\s*\]/.exec(rest))) segments.push(m[1]!.replace(/\\(.)/g, '$1'));
    else if ((m = /^\s*\[\s*(\d+)\s*\]/.exec(rest))) segments.push(m[1]!);
    else if ((m = /^\s+$/.exec(rest))) break;
    else return null;
    rest = rest.slice(m[0].length);
  }
  return segments;
}

/** The value at a parsed path (own properties only), undefined when absent. */
export function valueAtPath(variables: JsonObject, segments: readonly string[]): Json | undefined {
  let cur: Json | undefined = variables;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, s)) return undefined;
    cur = (cur as Record<string, Json>)[s];
  }
  return cur;
}

/** Strips a `${…}` wrapper or a leading `=`, as the compiler does. */
function unwrap(path: string): string {
  const p = path.trim();
  if (p.startsWith('=')) return p.slice(1).trim();
  const m = /^\$\{([\s\S]*)\}$/.exec(p);
  return m ? m[1]!.trim() : p;
}

/**
 * The correlation key from a message payload: one path → its value (string
 * as is, absent/null → null, else JSON); several → each value (string as is,
 * absent/null → '', else JSON) joined with '|'. null when a path is not plain.
 */
export function correlationKeyFromPaths(paths: readonly string[], variables: JsonObject): string | null {
  const values: Array<Json | undefined> = [];
  for (const p of paths) {
    const segments = parsePath(unwrap(p));
    if (segments === null) return null;
    values.push(valueAtPath(variables, segments));
  }
  if (values.length === 0) return null;
  if (values.length === 1) {
    const v = values[0];
    return v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
  }
  return values.map((v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v))).join('|');
}

/** A published message's key: the given one, else computed from the registered paths of its name, else null. */
export async function publishedCorrelationKey(db: Executor, m: { name: string; correlationKey: string | null; variables: JsonObject }): Promise<string | null> {
  if (m.correlationKey !== null) return m.correlationKey;
  const registered = await messageCorrelationPaths(db, m.name);
  const paths = registered[0];
  return paths ? correlationKeyFromPaths(paths, m.variables) : null;
}
