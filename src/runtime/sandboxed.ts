/**
 * Whether a model has scripts only a sandbox can run: a script task, pre-
 * or post-script whose source is outside its language's fast path
 * (expressions/<language>/simple.ts). Those are the user code that can take
 * up to a script limit on the event loop of the role that steps it, so the
 * API's inline steps in distributed mode leave such models to the step
 * workers (boot.ts): the API's own event loop keeps answering. Conditions
 * and other expressions are not counted: they are short by nature, and a
 * model of only those stays on the fast path's cost.
 */
import { languageAt, type ProcessGraph } from '../bpmn/types.js';
import { compileSimple as compileJs } from '../expressions/javascript/simple.js';
import { compileSimple as compilePy } from '../expressions/python/simple.js';

const known = new WeakMap<ProcessGraph, boolean>();

export function hasSandboxedScripts(graph: ProcessGraph): boolean {
  let v = known.get(graph);
  if (v !== undefined) return v;
  v = false;
  for (const el of Object.values(graph.elements)) {
    const sources: string[] = [];
    if ('script' in el && typeof el.script === 'string') sources.push(el.script);
    if ('preScript' in el && el.preScript !== null) sources.push(el.preScript);
    if ('postScript' in el && el.postScript !== null) sources.push(el.postScript);
    if (sources.length === 0) continue;
    const compile = languageAt(graph, el.id) === 'python' ? compilePy : compileJs;
    if (sources.some((s) => s.trim() !== '' && compile(s, 'script') === null)) {
      v = true;
      break;
    }
  }
  known.set(graph, v);
  return v;
}
