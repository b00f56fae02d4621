/**
 * The in-process reference: bpmn-engine (npm, a devDependency of the bench
 * only) executing the straight-through model, instances per second.
 *
 * The XML is parsed once: bpmn-moddle → moddle-context-serializer gives a
 * serialisable source context, and every instance is a new Engine given that
 * `sourceContext` (bpmn-engine's documented way to skip parsing; see its API
 * docs, `new Engine({ sourceContext })` / `addSource`). So what is timed is
 * building the definition from the context and executing it, which is what an
 * application that caches its models pays per instance.
 */
import { readFileSync } from 'node:fs';
import { BpmnModdle } from 'bpmn-moddle';
import * as elements from 'bpmn-elements';
import { Engine } from 'bpmn-engine';
import serialize, { TypeResolver } from 'moddle-context-serializer';
import { isMain } from './util.js';

export const BPMN_ENGINE_MODEL = new URL('../models/straight-through.bpmn-engine.bpmn', import.meta.url);

export interface BpmnEngineResult {
  engine: string;
  instances: number;
  ms: number;
  instancesPerSec: number;
  /** sequence flows taken per instance, counted from the engine's own flow.take events on the first instance */
  flowsPerInstance: number;
  transitionsPerSec: number;
  /** large/small split, to check both engines took the same paths */
  endLarge: number;
}

export async function parseOnce(xml: string) {
  const moddle = new BpmnModdle();
  // bpmn-moddle's fromXML result is what the serializer calls a moddle context.
  const moddleContext = await moddle.fromXML(xml);
  return serialize(moddleContext as never, TypeResolver({ ...elements }));
}

/** Runs one instance to its end; resolves with the end event it reached and the flows it took. */
async function runOne(sourceContext: unknown, variables: Record<string, unknown>): Promise<{ end: string; flows: number }> {
  const engine = new Engine({ name: 'bench', sourceContext: sourceContext as never });
  let flows = 0;
  let end = '';
  const listener = {
    // bpmn-engine accepts any EventEmitter-like listener; a minimal one avoids
    // counting EventEmitter overhead against it.
    emit(name: string, api: { id?: string; type?: string }) {
      if (name === 'flow.take') flows++;
      else if (name === 'activity.end' && api.type === 'bpmn:EndEvent') end = api.id ?? '';
      return true;
    },
  };
  // Listen for the end before executing: a model without wait states has
  // ended by the time execute() resolves.
  const ended = engine.waitFor('end');
  await engine.execute({ variables, listener: listener as never });
  await ended;
  return { end, flows };
}

/** Up to `maxInstances` instances, stopping early after `maxMs` of timed work. */
export async function runBpmnEngine(maxInstances: number, maxMs = Infinity): Promise<BpmnEngineResult> {
  const xml = readFileSync(BPMN_ENGINE_MODEL, 'utf8');
  const sourceContext = await parseOnce(xml);
  // Warm-up: JIT, vm, module caches.
  const first = await runOne(sourceContext, { price: 10, qty: 3 });
  for (let i = 0; i < Math.min(50, maxInstances / 10); i++) await runOne(sourceContext, { price: 10 + (i % 7), qty: 2 });
  let endLarge = 0;
  const t0 = performance.now();
  let instances = 0;
  for (let i = 0; i < maxInstances && performance.now() - t0 < maxMs; i++, instances++) {
    const r = await runOne(sourceContext, { price: 10 + (i % 7), qty: 2 });
    if (r.end === 'endLarge') endLarge++;
  }
  const ms = performance.now() - t0;
  const { version } = JSON.parse(readFileSync(new URL('../../node_modules/bpmn-engine/package.json', import.meta.url), 'utf8')) as { version: string };
  return {
    engine: `bpmn-engine ${version}`,
    instances,
    ms: Math.round(ms),
    instancesPerSec: Math.round(instances / (ms / 1000)),
    flowsPerInstance: first.flows,
    transitionsPerSec: Math.round((instances * first.flows) / (ms / 1000)),
    endLarge,
  };
}

if (isMain(import.meta.url)) {
  console.log(await runBpmnEngine(Number(process.argv[2] ?? 2000), Number(process.argv[3] ?? Infinity)));
}
