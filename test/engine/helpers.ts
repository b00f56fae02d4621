/**
 * Test support for the engine: a deterministic context (clock advancing 1 ms
 * per call, ids `id-1`, `id-2`, …), fixture loading, and a small driver that
 * keeps the accumulated effects of an instance so tests can assert on the
 * path taken, open tasks and jobs, variables and status.
 *
 * The evaluators are the real sandboxes (src/expressions: isolated-vm for
 * JavaScript, Pyodide for Python, the latter started on a model's first
 * Python evaluation), shared by all tests of a file; call `closeEvaluator()`
 * in `afterAll`.
 */
import { readFileSync } from 'node:fs';
import { compileFiles } from '../../src/bpmn/index.js';
import type { ProcessGraph } from '../../src/bpmn/types.js';
import { activeElementIds, applyEvent, processVariables, startInstance } from '../../src/engine/index.js';
import type {
  Effect,
  EngineContext,
  EngineEvent,
  HistoryEntry,
  HumanTaskSpec,
  InstanceState,
  ServiceJobSpec,
  StepResult,
  Trigger,
} from '../../src/engine/types.js';
import type { JsonObject } from '../../src/errors.js';
import { createEvaluator, createPythonEvaluator, evaluatorsOf, type PythonEvaluator, type SandboxEvaluator } from '../../src/expressions/index.js';

let shared: SandboxEvaluator | null = null;
let sharedPython: PythonEvaluator | null = null;

export function evaluator(): SandboxEvaluator {
  shared ??= createEvaluator();
  return shared;
}

export function pythonEvaluator(): PythonEvaluator {
  sharedPython ??= createPythonEvaluator();
  return sharedPython;
}

export function closeEvaluator(): void {
  shared?.close();
  shared = null;
  sharedPython?.close();
  sharedPython = null;
}

export const START_TIME = Date.parse('2026-01-01T00:00:00.000Z');

export function testContext(overrides: Partial<EngineContext> = {}): EngineContext {
  let clock = START_TIME;
  let counter = 0;
  return {
    now: () => new Date(clock++),
    newId: () => `id-${++counter}`,
    evaluators: evaluatorsOf({ javascript: evaluator, python: pythonEvaluator }),
    ...overrides,
  };
}

export function fixturePath(name: string): string {
  return new URL(`../fixtures/${name}`, import.meta.url).pathname;
}

export function readFixture(name: string): string {
  return readFileSync(fixturePath(name), 'utf8');
}

/** Compiles a fixture and returns the graph of its (only, or named) process; fails on any problem. */
export async function loadGraph(name: string, processKey?: string): Promise<ProcessGraph> {
  const { processes, problems } = await compileFiles([{ name, content: readFixture(name) }]);
  if (problems.length > 0) throw new Error(`fixture ${name} has problems: ${JSON.stringify(problems, null, 2)}`);
  const p = processKey ? processes.find((x) => x.key === processKey) : processes[0];
  if (!p) throw new Error(`fixture ${name} has no process ${processKey ?? ''}`);
  return p.graph;
}

/** One process instance driven through the engine, with every effect kept. */
export class Instance {
  state!: InstanceState;
  readonly effects: Effect[] = [];
  last!: StepResult;

  private constructor(
    readonly graph: ProcessGraph,
    readonly ctx: EngineContext,
  ) {}

  static start(
    graph: ProcessGraph,
    variables?: JsonObject,
    ctx: EngineContext = testContext(),
    extra: { startEventId?: string; parent?: { instanceId: string; tokenId: string; childId?: string } } = {},
  ): Instance {
    const inst = new Instance(graph, ctx);
    inst.record(startInstance(graph, { type: 'start', ...(variables ? { variables } : {}), ...extra }, ctx));
    return inst;
  }

  apply(event: EngineEvent): StepResult {
    const before = JSON.stringify(this.state);
    const result = applyEvent(this.graph, this.state, event, this.ctx);
    // the engine is pure: the state it was given stays untouched
    if (JSON.stringify(this.state) !== before) throw new Error('applyEvent mutated its input state');
    return this.record(result);
  }

  private record(result: StepResult): StepResult {
    // state must survive a JSON round trip unchanged (the runtime stores it as JSON)
    const roundTripped = JSON.parse(JSON.stringify(result.state)) as InstanceState;
    this.state = roundTripped;
    this.effects.push(...result.effects);
    this.last = result;
    return result;
  }

  get status(): InstanceState['status'] {
    return this.state.status;
  }

  get variables(): JsonObject {
    return processVariables(this.state);
  }

  get active(): string[] {
    return activeElementIds(this.state);
  }

  get history(): HistoryEntry[] {
    return this.effects.flatMap((e) => (e.type === 'history' ? [e.entry] : []));
  }

  /** element ids in the order of the given history event (element_started by default) */
  path(event = 'element_started'): string[] {
    return this.history.filter((h) => h.event === event).map((h) => h.elementId ?? '');
  }

  /** history as "event:elementId" strings, for order assertions */
  trail(): string[] {
    return this.history.map((h) => `${h.event}:${h.elementId ?? ''}`);
  }

  effectsOf<T extends Effect['type']>(type: T): Extract<Effect, { type: T }>[] {
    return this.effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);
  }

  openTasks(): HumanTaskSpec[] {
    const closed = new Set(this.effectsOf('humanTaskClosed').map((e) => e.taskId));
    return this.effectsOf('humanTaskOpened')
      .map((e) => e.task)
      .filter((t) => !closed.has(t.id));
  }

  /** jobs created and still awaited by a token (not cancelled, completed or failed) */
  openJobs(): ServiceJobSpec[] {
    const cancelled = new Set(this.effectsOf('serviceJobCancelled').map((e) => e.jobId));
    const awaited = new Set(
      Object.values(this.state.tokens).flatMap((t) => (t.wait?.kind === 'serviceJob' ? [t.wait.jobId] : [])),
    );
    return this.effectsOf('serviceJobCreated')
      .map((e) => e.job)
      .filter((j) => !cancelled.has(j.id) && awaited.has(j.id));
  }

  task(elementId: string): HumanTaskSpec {
    const t = this.openTasks().find((x) => x.elementId === elementId);
    if (!t) throw new Error(`no open task at ${elementId}; open: ${this.openTasks().map((x) => x.elementId).join(', ')}`);
    return t;
  }

  job(elementId: string): ServiceJobSpec {
    const j = this.openJobs().find((x) => x.elementId === elementId);
    if (!j) throw new Error(`no open job at ${elementId}`);
    return j;
  }

  completeTask(elementId: string, variables?: JsonObject): StepResult {
    return this.apply({ type: 'humanTaskCompleted', taskId: this.task(elementId).id, ...(variables ? { variables } : {}) });
  }

  /** live triggers (timers, subscriptions, conditions) */
  triggers(): Trigger[] {
    return Object.values(this.state.triggers ?? {});
  }

  trigger(elementId: string, kind?: Trigger['kind']): Trigger {
    const t = this.triggers().find((x) => x.elementId === elementId && (kind === undefined || x.kind === kind));
    if (!t) throw new Error(`no live trigger at ${elementId}; live: ${this.triggers().map((x) => x.elementId).join(', ')}`);
    return t;
  }

  fireTimer(elementId: string): StepResult {
    return this.apply({ type: 'timerFired', timerId: this.trigger(elementId, 'timer').id });
  }

  receiveMessage(elementId: string, variables?: JsonObject): StepResult {
    const t = this.trigger(elementId, 'message');
    return this.apply({ type: 'messageReceived', subscriptionId: t.id, name: t.name ?? '', ...(variables ? { variables } : {}) });
  }

  receiveSignal(elementId: string, variables?: JsonObject): StepResult {
    const t = this.trigger(elementId, 'signal');
    return this.apply({ type: 'signalReceived', subscriptionId: t.id, name: t.name ?? '', ...(variables ? { variables } : {}) });
  }

  /** task ids closed as cancelled, as element ids */
  cancelledTasks(): string[] {
    const cancelled = new Set(this.effectsOf('humanTaskClosed').filter((e) => e.state === 'cancelled').map((e) => e.taskId));
    return this.effectsOf('humanTaskOpened')
      .map((e) => e.task)
      .filter((t) => cancelled.has(t.id))
      .map((t) => t.elementId);
  }

  completeJob(elementId: string, variables?: JsonObject): StepResult {
    return this.apply({ type: 'serviceJobCompleted', jobId: this.job(elementId).id, ...(variables ? { variables } : {}) });
  }
}
