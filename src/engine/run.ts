/**
 * One engine call in progress: the working copy of the instance state, the
 * effects produced so far, and the token machinery every behaviour uses
 * (moving along flows, variables, incidents, scopes, cancellation).
 *
 * A Run mutates its own deep copy of the state; the caller's state object is
 * never touched, which keeps startInstance/applyEvent pure.
 */
import { BatonError, type Json, type JsonObject } from '../errors.js';
import { languageAt, type ElementType, type GraphElement, type IoMapping, type IoValue, type ParallelGatewayElement, type ProcessGraph } from '../bpmn/types.js';
import type { Evaluator, ScriptResult } from '../expressions/types.js';
import type {
  ChildEvent,
  Effect,
  Incident,
  EngineContext,
  HistoryEntry,
  InstanceState,
  ScopeInstance,
  StepResult,
  Token,
  Trigger,
  Wait,
} from './types.js';
import { closeTrigger, evaluateConditionalTriggers, openBoundaryTriggers, openEventSubProcessTriggers } from './events.js';
import { completeLoopInstance, startLoop } from './loops.js';
import { continueCompensation, recordCompensable } from './compensation.js';

export const DEFAULT_MAX_ELEMENT_EXECUTIONS = 10_000;

/** Whether a graph has joins the engine must look at when it settles (cached: a Run is made per step). */
interface GraphJoins {
  inclusive: boolean;
  parallel: boolean;
}
const graphJoins = new WeakMap<ProcessGraph, GraphJoins>();
function joinsOf(graph: ProcessGraph): GraphJoins {
  let joins = graphJoins.get(graph);
  if (!joins) {
    const multi = Object.values(graph.elements).filter((e) => e.incoming.length > 1);
    joins = { inclusive: multi.some((e) => e.type === 'inclusiveGateway'), parallel: multi.some((e) => e.type === 'parallelGateway') };
    graphJoins.set(graph, joins);
  }
  return joins;
}

/**
 * Copy-on-write view of a record of tokens or scopes. The first read of an
 * entry through the proxy replaces it (in the working record only) by a copy
 * the Run may mutate; entries never read stay shared with the caller's state,
 * untouched. An event thus costs O(what it touches) in copying, plus one
 * shallow copy of the record: a 10,000-instance multi-instance does not copy
 * 10,000 tokens per event. Hot scans read `raw` without copying.
 */
class CopyOnWrite<T extends object> {
  readonly raw: Record<string, T>;
  readonly proxy: Record<string, T>;
  private readonly owned = new WeakSet<T>();
  constructor(source: Record<string, T>, copy: (value: T) => T) {
    // for-in copy: records keyed by generated ids are dictionaries in V8, where this is ~2x faster than a spread
    const raw: Record<string, T> = {};
    for (const key in source) raw[key] = source[key] as T;
    this.raw = raw;
    const owned = this.owned;
    this.proxy = new Proxy(this.raw, {
      get(target, key, receiver) {
        if (typeof key !== 'string') return Reflect.get(target, key, receiver) as unknown;
        const value = target[key];
        if (value === undefined || owned.has(value)) return value;
        const mine = copy(value);
        owned.add(mine);
        target[key] = mine;
        return mine;
      },
      set(target, key, value: T) {
        if (typeof key === 'string') owned.add(value);
        return Reflect.set(target, key, value);
      },
    });
  }
}

function copyToken(t: Token): Token {
  const c: Token = { ...t };
  if (t.loop) c.loop = { ...t.loop, output: t.loop.output ? t.loop.output.slice() : null };
  return c;
}

/**
 * Variable *values* are shared with the caller's state: the engine only ever
 * replaces a variable, never changes a value in place (user code gets deep
 * copies through `visibleVariables`).
 */
function copyScope(s: ScopeInstance): ScopeInstance {
  return { ...s, variables: { ...s.variables } };
}
// (compensation records are replaced, never changed in place, so they are shared too)

/** What a behaviour of one element type does when a token executes it. */
export type Behaviour<T extends GraphElement = GraphElement> = (run: Run, token: Token, element: T) => void;
export type BehaviourTable = { [K in ElementType]: Behaviour<Extract<GraphElement, { type: K }>> };

/** A failure of user code, as thrown by the Evaluator (ExpressionError) or anything else. */
export interface UserCodeFailure {
  code: string | null;
  message: string;
  line?: number;
  column?: number;
}

/** The column of a failure, in the shape Run.incident takes it. */
export function columnOf(f: UserCodeFailure): { column?: number } {
  return f.column !== undefined ? { column: f.column } : {};
}

export function describeFailure(err: unknown): UserCodeFailure {
  if (err !== null && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; line?: unknown; column?: unknown };
    const failure: UserCodeFailure = {
      code: typeof e.code === 'string' ? e.code : null,
      message: typeof e.message === 'string' ? e.message : String(err),
    };
    if (typeof e.line === 'number') failure.line = e.line;
    if (typeof e.column === 'number') failure.column = e.column;
    return failure;
  }
  return { code: null, message: String(err) };
}

/** The element's input/output mapping (graphs compiled before io mappings existed have none). */
export function ioOf(element: GraphElement | undefined): IoMapping | null {
  return element !== undefined && 'io' in element ? (element.io ?? null) : null;
}

export class Run {
  readonly state: InstanceState;
  readonly effects: Effect[] = [];
  /** ready tokens waiting for their turn */
  private readonly queue: string[] = [];
  /** tokens made ready by the step in progress; they go to the front of the queue after it */
  private readonly fresh: string[] = [];
  private executions = 0;
  private historyAt: string | undefined;
  private readonly maxExecutions: number;
  ended = false;
  /** variables changed (or a conditional trigger opened) since conditions were last evaluated */
  conditionsDirty = false;

  private readonly tokenView: CopyOnWrite<Token> | null;
  private readonly scopeView: CopyOnWrite<ScopeInstance> | null;
  private readonly joins: GraphJoins;

  /** `state` is never mutated: the Run works on a copy-on-write view of it. */
  constructor(
    readonly graph: ProcessGraph,
    state: InstanceState,
    readonly ctx: EngineContext,
    private readonly behaviours: BehaviourTable,
  ) {
    if (ctx.inPlace) {
      // the caller gave the state away: work on it directly
      this.tokenView = null;
      this.scopeView = null;
      this.state = state;
      this.maxExecutions = ctx.maxElementExecutions ?? DEFAULT_MAX_ELEMENT_EXECUTIONS;
      this.joins = joinsOf(graph);
      return;
    }
    this.tokenView = new CopyOnWrite(state.tokens, copyToken);
    this.scopeView = new CopyOnWrite(state.scopes, copyScope);
    this.state = { ...state, tokens: this.tokenView.proxy, scopes: this.scopeView.proxy, incidents: state.incidents.map((i) => ({ ...i })) };
    if (state.triggers) {
      const triggers: Record<string, Trigger> = {};
      for (const id in state.triggers) {
        const t = state.triggers[id];
        if (t) triggers[id] = { ...t };
      }
      this.state.triggers = triggers;
    }
    if (state.parent) this.state.parent = { ...state.parent };
    this.maxExecutions = ctx.maxElementExecutions ?? DEFAULT_MAX_ELEMENT_EXECUTIONS;
    this.joins = joinsOf(graph);
  }

  /** Live tokens for reading only (no copy); get a mutable one through `state.tokens[id]`. */
  rawTokens(): Token[] {
    return Object.values(this.rawTokenRecord());
  }

  private rawTokenRecord(): Record<string, Token> {
    return this.tokenView && this.state.tokens === this.tokenView.proxy ? this.tokenView.raw : this.state.tokens;
  }

  private rawScopeRecord(): Record<string, ScopeInstance> {
    return this.scopeView && this.state.scopes === this.scopeView.proxy ? this.scopeView.raw : this.state.scopes;
  }

  /** First live token matching, as a mutable copy; stops at the first match (no full scan). */
  findToken(match: (t: Token) => boolean): Token | undefined {
    const raw = this.rawTokenRecord();
    for (const id in raw) {
      const t = raw[id];
      if (t && match(t)) return this.state.tokens[id];
    }
    return undefined;
  }

  // ---- lookups ---------------------------------------------------------------

  element(id: string): GraphElement {
    const el = this.graph.elements[id];
    // Only reachable when a stored state does not belong to this graph.
    if (!el) throw new BatonError('engine_state_mismatch', `element '${id}' is not in process '${this.graph.key}'`);
    return el;
  }

  scope(id: string): ScopeInstance {
    const s = this.state.scopes[id];
    if (!s) throw new BatonError('engine_state_mismatch', `scope '${id}' does not exist`);
    return s;
  }

  tokensInScope(scopeId: string): Token[] {
    const out: Token[] = [];
    for (const t of this.rawTokens()) {
      const mine = t.scopeId === scopeId ? this.state.tokens[t.id] : undefined;
      if (mine) out.push(mine);
    }
    return out;
  }

  /** live triggers (timers, subscriptions, conditions); created on first use for older states */
  get triggers(): Record<string, Trigger> {
    return (this.state.triggers ??= {});
  }

  /** closes (with timerCancelled/subscriptionClosed) every trigger matching */
  closeTriggers(match: (t: Trigger) => boolean): void {
    const all = this.state.triggers;
    if (!all) return;
    for (const t of Object.values(all)) if (match(t)) closeTrigger(this, t);
  }

  findWaitingToken(match: (wait: Wait) => boolean): Token | undefined {
    return this.findToken((t) => t.state === 'waiting' && t.wait !== undefined && match(t.wait));
  }

  // ---- effects ---------------------------------------------------------------

  emit(effect: Effect): void {
    this.effects.push(effect);
  }

  history(
    event: string,
    fields: { elementId?: string | null; elementType?: string | null; tokenId?: string | null; scopeId?: string | null; data?: Json },
  ): void {
    // one clock reading per engine call: its entries happen within microseconds,
    // and formatting a date per entry was a seventh of a simple instance's time
    this.historyAt ??= this.ctx.now().toISOString();
    const entry: HistoryEntry = {
      at: this.historyAt,
      event,
      elementId: fields.elementId ?? null,
      elementType: fields.elementType ?? null,
      tokenId: fields.tokenId ?? null,
      scopeId: fields.scopeId ?? null,
    };
    if (fields.data !== undefined) entry.data = fields.data;
    this.emit({ type: 'history', entry });
  }

  private elementHistory(event: string, token: Token, element: GraphElement, data?: Json): void {
    this.history(event, {
      elementId: element.id,
      elementType: element.type,
      tokenId: token.id,
      scopeId: token.scopeId,
      ...(data !== undefined ? { data } : {}),
    });
  }

  // ---- variables -------------------------------------------------------------

  /**
   * The variables a token sees: its scope's variables over those of every
   * enclosing scope. A deep copy, so user code can never alias live state.
   */
  visibleVariables(scopeId: string): JsonObject {
    const chain: ScopeInstance[] = [];
    for (let s: ScopeInstance | undefined = this.state.scopes[scopeId]; s; ) {
      chain.unshift(s);
      s = s.parentScopeId !== null ? this.state.scopes[s.parentScopeId] : undefined;
    }
    const visible: JsonObject = {};
    for (const s of chain) Object.assign(visible, s.variables);
    return structuredClone(visible);
  }

  /**
   * The variables a token sees, for an Evaluator call only: a fresh top-level
   * object whose values are shared with the live state, not copied. Evaluators
   * never change what they are given (the sandbox serialises it, the fast path
   * only reads it: see Evaluator), so the deep copy of `visibleVariables` is
   * not needed there; it was a sixth of a simple instance's engine time.
   */
  evalVariables(scopeId: string): JsonObject {
    const s = this.state.scopes[scopeId];
    if (s && s.parentScopeId === null) return { ...s.variables };
    const chain: ScopeInstance[] = [];
    for (let x: ScopeInstance | undefined = s; x; ) {
      chain.unshift(x);
      x = x.parentScopeId !== null ? this.state.scopes[x.parentScopeId] : undefined;
    }
    const visible: JsonObject = {};
    for (const c of chain) Object.assign(visible, c.variables);
    return visible;
  }

  /** One variable as seen from `scopeId` (innermost scope that has it), without copying the rest. */
  lookupVariable(scopeId: string, name: string): Json | undefined {
    for (let s: ScopeInstance | undefined = this.state.scopes[scopeId]; s; ) {
      if (Object.hasOwn(s.variables, name)) return structuredClone(s.variables[name]);
      s = s.parentScopeId !== null ? this.state.scopes[s.parentScopeId] : undefined;
    }
    return undefined;
  }

  /**
   * Writes variables as seen from `scopeId`: a name that already exists in
   * that scope or an enclosing one is updated where it lives; a new name is
   * created in `scopeId` itself (the innermost scope of the writing token).
   */
  writeVariables(scopeId: string, variables: JsonObject): void {
    for (const [name, value] of Object.entries(variables)) {
      let target = this.scope(scopeId);
      let found = false;
      for (let s: ScopeInstance | undefined = target; s; ) {
        if (Object.hasOwn(s.variables, name)) {
          target = s;
          found = true;
          break;
        }
        s = s.parentScopeId !== null ? this.state.scopes[s.parentScopeId] : undefined;
      }
      // an element's local scope holds only its input parameters (Camunda 7:
      // what an activity sets goes to the scopes around it unless it is local)
      while (!found && target.activityLocal && target.parentScopeId !== null) target = this.scope(target.parentScopeId);
      target.variables[name] = value;
      this.conditionsDirty = true;
    }
  }

  /**
   * Removes variables as seen from `scopeId` (a Python `del x`): each from
   * the innermost scope that has it, as it is the one the script saw.
   */
  deleteVariables(scopeId: string, names: readonly string[]): void {
    for (const name of names) {
      for (let s: ScopeInstance | undefined = this.state.scopes[scopeId]; s; ) {
        if (Object.hasOwn(s.variables, name)) {
          delete this.scope(s.id).variables[name];
          this.conditionsDirty = true;
          break;
        }
        s = s.parentScopeId !== null ? this.state.scopes[s.parentScopeId] : undefined;
      }
    }
  }

  /**
   * The evaluator for the expressions of an element or flow: the one of its
   * language (the model names it, bpmn/types.ts languageAt). Throws
   * ExpressionError `language_unavailable` when the context has none, inside
   * the caller's evaluation, which turns it into an incident.
   */
  evaluator(id: string): Evaluator {
    return this.ctx.evaluators(languageAt(this.graph, id));
  }

  /**
   * The scope instance a token reads and writes variables through: the local
   * scope of its element (input parameters) while it has one, else the scope
   * it lives in. Sequence flow conditions are evaluated after the locals are
   * gone and use `token.scopeId`.
   */
  variableScope(token: Token): string {
    const local = token.localScopeId;
    return local !== undefined && Object.hasOwn(this.rawScopeRecord(), local) ? local : token.scopeId;
  }

  /**
   * Writes what a task completion or a service job brought back for a token.
   * Through its local scope (Camunda 7: a name that is an input parameter
   * updates that local, any other goes where variables go); with a Zeebe
   * mapping that has outputs, everything stays local and only the outputs
   * reach the process (Zeebe's rule).
   */
  writeResultVariables(token: Token, variables: JsonObject): void {
    const scopeId = this.variableScope(token);
    const io = ioOf(this.graph.elements[token.elementId]);
    if (scopeId !== token.scopeId && ((io?.vendor === 'zeebe' && io.outputs.length > 0) || io?.vendor === 'spiff')) {
      Object.assign(this.scope(scopeId).variables, variables);
      this.conditionsDirty = true;
      return;
    }
    this.writeVariables(scopeId, variables);
  }

  /** Value of an input/output parameter over `variables`; throws the evaluator's error. */
  private ioValue(value: IoValue, variables: JsonObject): Json {
    switch (value.kind) {
      case 'null':
        return null;
      case 'variable':
        if (!Object.hasOwn(variables, value.name)) throw new Error(`'${value.name}' is not set`);
        return variables[value.name] ?? null;
      case 'literal':
        return value.value;
      case 'expression':
        // only camunda:/zeebe: mappings carry expressions, in Camunda's dialect, which Baton evaluates as JavaScript whatever the model's language
        return this.ctx.evaluators('javascript').expression(value.expression, variables);
      case 'list':
        return value.items.map((item) => this.ioValue(item, variables));
      case 'map': {
        const out: JsonObject = {};
        for (const entry of value.entries) {
          const key = this.ioValue(entry.key, variables);
          if (typeof key !== 'string' && typeof key !== 'number') throw new Error(`a map key is ${JSON.stringify(key)}, not a string`);
          if (String(key) === '__proto__') throw new Error("'__proto__' cannot be a map key");
          out[String(key)] = this.ioValue(entry.value, variables);
        }
        return out;
      }
    }
  }

  /**
   * The element starts: its input parameters become the variables of a new
   * local scope of the token (Camunda 7: each evaluated over the scope
   * around the element; Zeebe: an input also sees the inputs before it). A
   * failure is an `input_error` incident, and a retry starts over.
   */
  private enterLocals(token: Token, element: GraphElement): boolean {
    this.dropLocals(token);
    const io = ioOf(element);
    if (io === null) return true;
    const outer = this.evalVariables(token.scopeId);
    const locals: JsonObject = {};
    for (const p of io.inputs) {
      try {
        locals[p.name] = this.ioValue(p.value, io.vendor === 'zeebe' ? { ...outer, ...locals } : outer);
      } catch (err) {
        const f = describeFailure(err);
        this.incident(token, 'input_error', `input parameter '${p.name}' of '${element.id}' failed: ${f.message}`, f.line, false, columnOf(f));
        return false;
      }
    }
    const id = this.ctx.newId();
    this.state.scopes[id] = { id, elementId: element.id, parentScopeId: token.scopeId, parentTokenId: token.id, variables: locals, activityLocal: true };
    token.localScopeId = id;
    return true;
  }

  /**
   * The element completes: its output parameters are evaluated over its
   * locals and everything visible, one after another, and written to the
   * scope the element lives in; then the locals go away. A failure is an
   * `output_error` incident whose retry runs the outputs again. A token
   * without a local scope (its outputs already done) passes.
   */
  private leaveLocals(token: Token, element: GraphElement): boolean {
    const local = token.localScopeId;
    if (local === undefined) return true;
    for (const p of ioOf(element)?.outputs ?? []) {
      let value: Json;
      try {
        value = this.ioValue(p.value, this.evalVariables(local));
      } catch (err) {
        const f = describeFailure(err);
        this.incident(token, 'output_error', `output parameter '${p.name}' of '${element.id}' failed: ${f.message}`, f.line, true, columnOf(f));
        return false;
      }
      this.writeVariables(token.scopeId, { [p.name]: value });
    }
    this.dropLocals(token);
    return true;
  }

  /** Removes the token's local scope (the element left, was cancelled or starts over). */
  dropLocals(token: Token): void {
    const id = token.localScopeId;
    if (id === undefined) return;
    delete this.state.scopes[id];
    delete token.localScopeId;
  }

  /**
   * A finished subprocess's variables go to its parent scope; when that is
   * the local scope of the subprocess element, it keeps only its own names
   * (input parameters) and the rest goes on to the scope around it.
   */
  private mergeVariables(scopeId: string, variables: JsonObject): void {
    const target = this.scope(scopeId);
    if (!target.activityLocal || target.parentScopeId === null) {
      Object.assign(target.variables, variables);
      return;
    }
    const rest: JsonObject = {};
    for (const [name, value] of Object.entries(variables)) {
      if (Object.hasOwn(target.variables, name)) target.variables[name] = value;
      else rest[name] = value;
    }
    this.mergeVariables(target.parentScopeId, rest);
  }

  /**
   * Runs a script (script task body, spiffworkflow pre/post script) for a
   * token. Returns false after opening an incident when it fails.
   */
  runScript(token: Token, source: string, resumeAtLeave = false): boolean {
    const scopeId = this.variableScope(token);
    let result: ScriptResult;
    try {
      result = this.evaluator(token.elementId).script(source, this.evalVariables(scopeId));
    } catch (err) {
      const f = describeFailure(err);
      this.incident(token, f.code ?? 'script_error', f.message, f.line, resumeAtLeave, columnOf(f));
      return false;
    }
    this.writeVariables(scopeId, result.assigned);
    if (result.deleted !== undefined) this.deleteVariables(scopeId, result.deleted);
    return true;
  }

  /**
   * A script task with camunda:resultVariable: the script (one expression,
   * checked at deploy) is evaluated and its value stored in the variable,
   * written like a script's assignments. Returns false after an incident.
   */
  runResultScript(token: Token, source: string, resultVariable: string): boolean {
    const scopeId = this.variableScope(token);
    let value: Json;
    try {
      value = this.evaluator(token.elementId).expression(source, this.evalVariables(scopeId));
    } catch (err) {
      const f = describeFailure(err);
      this.incident(token, f.code ?? 'script_error', f.message, f.line, false, columnOf(f));
      return false;
    }
    this.writeVariables(scopeId, { [resultVariable]: value });
    return true;
  }

  // ---- tokens ----------------------------------------------------------------

  /** scope instances whose tokens moved, arrived or went away since the joins were last looked at (see settle) */
  private readonly touchedScopes = new Set<string>();

  private touch(scopeId: string): void {
    if (this.joins.parallel || this.joins.inclusive) this.touchedScopes.add(scopeId);
  }

  newToken(elementId: string, scopeId: string, arrivedVia?: string): Token {
    this.touch(scopeId);
    const token: Token = { id: this.ctx.newId(), elementId, scopeId, state: 'ready' };
    if (arrivedVia !== undefined) token.arrivedVia = arrivedVia;
    this.state.tokens[token.id] = token;
    this.fresh.push(token.id);
    return token;
  }

  /** Makes a waiting token continue by leaving its element (task completed, subprocess finished). */
  resumeToLeave(token: Token): void {
    token.state = 'ready';
    delete token.wait;
    token.resumeAt = 'leave';
    this.fresh.push(token.id);
  }

  /** Makes a stopped token (incident) run again from where it stopped: its element, or only the leaving (`resumeAt`). */
  ready(token: Token): void {
    this.touch(token.scopeId);
    token.state = 'ready';
    delete token.wait;
    this.fresh.push(token.id);
  }

  wait(token: Token, wait: Wait): void {
    token.state = 'waiting';
    token.wait = wait;
    delete token.resumeAt;
  }

  incident(
    token: Token,
    code: string,
    message: string,
    line?: number,
    resumeAtLeave = false,
    extra: { column?: number; attempts?: number } = {},
  ): void {
    token.state = 'incident';
    delete token.wait;
    if (resumeAtLeave) token.resumeAt = 'leave';
    else delete token.resumeAt;
    const incident: Incident = {
      id: this.ctx.newId(),
      code,
      message,
      elementId: token.elementId,
      tokenId: token.id,
      ...(line !== undefined ? { line } : {}),
      ...(extra.column !== undefined ? { column: extra.column } : {}),
      attempts: extra.attempts ?? (token.retries ?? 0) + 1,
      createdAt: this.ctx.now().toISOString(),
    };
    this.state.incidents.push(incident);
    this.emit({ type: 'incidentOpened', incident });
    const data: JsonObject = { incidentId: incident.id, code, message };
    if (line !== undefined) data['line'] = line;
    if (extra.column !== undefined) data['column'] = extra.column;
    this.history('incident', {
      elementId: token.elementId,
      elementType: this.graph.elements[token.elementId]?.type ?? null,
      tokenId: token.id,
      scopeId: token.scopeId,
      data,
    });
  }

  // ---- the advance loop ------------------------------------------------------

  /**
   * Runs ready tokens until every token waits, joins or has an incident, or the
   * instance ends. Depth first, like Camunda 7 executions: the current token
   * keeps running until it stops; tokens it made ready on the way (forked
   * branches, the first token of a child scope, the parent token of a finished
   * child scope) run next, in creation order, before tokens that were already
   * queued.
   */
  advance(): void {
    // variables an event brought in are checked against conditional events before
    // anything moves on (Camunda: a variable change triggers them at once)
    if (this.conditionsDirty) {
      this.conditionsDirty = false;
      evaluateConditionalTriggers(this);
    }
    for (;;) {
      this.queue.push(...this.fresh.splice(0));
      for (let id = this.queue.shift(); id !== undefined && !this.ended; id = this.queue.shift()) {
        for (let token = this.state.tokens[id]; token && token.state === 'ready' && !this.ended; token = this.state.tokens[id]) {
          if (token.resumeAt === 'leave') this.complete(token, this.element(token.elementId));
          else this.execute(token);
          if (this.fresh.length > 0) this.queue.unshift(...this.fresh.splice(0));
        }
      }
      if (this.ended || !this.settle()) return;
    }
  }

  /**
   * Runs when no token is ready: an inclusive join whose missing tokens can no
   * longer arrive fires; a parallel join that can never fire gets an incident;
   * conditions of conditional triggers are evaluated when variables changed.
   * Returns true when that made a token ready.
   */
  private settle(): boolean {
    if (this.joins.inclusive || this.joins.parallel) {
      // Joins are looked at only in scope instances whose tokens changed
      // since the last look: an inclusive join can fire, and a parallel one
      // become one that cannot, only when a token of its own scope instance
      // moved, arrived or went away (a nested scope changes its parent's
      // tokens only by ending or being cancelled, which moves or removes the
      // token it hangs on). 2,000 multi-instance scopes each waiting at a
      // join cost 16 ms per step when every settle looked at every join.
      const touched = this.touchedScopes;
      const parallel: Token[] = [];
      const raw = this.rawTokenRecord();
      for (const id in raw) {
        const t = raw[id] as Token;
        if (t.state !== 'joining') continue;
        const el = this.graph.elements[t.elementId];
        if (el?.type === 'inclusiveGateway' && touched.has(t.scopeId)) {
          const survivor = this.tryInclusiveJoin(el.id, t.scopeId, null);
          if (survivor) {
            survivor.resumeAt = 'leave';
            this.fresh.push(survivor.id);
            return true;
          }
        } else if (el?.type === 'parallelGateway' && touched.has(t.scopeId)) parallel.push(t);
      }
      touched.clear();
      if (parallel.length > 0 && this.settleParallelJoins(parallel)) return true;
    }
    if (this.conditionsDirty) {
      this.conditionsDirty = false;
      evaluateConditionalTriggers(this);
      if (this.fresh.length > 0) return true;
    }
    return false;
  }

  /**
   * The ancestor of a live token in scope instance `scopeId` (the token itself,
   * or the token its nested scope hangs on), or undefined when it lives elsewhere.
   */
  private ancestorIn(t: Token, scopeId: string): Token | undefined {
    let a: Token | undefined = t;
    while (a && a.scopeId !== scopeId) {
      const s: ScopeInstance | undefined = this.state.scopes[a.scopeId];
      a = s && s.parentTokenId !== null ? this.state.tokens[s.parentTokenId] : undefined;
    }
    return a;
  }

  /**
   * Inclusive join (BPMN 2.0 §13.4.3): fires when at least one incoming flow
   * has a token and no live token of the scope instance (a token inside a
   * nested scope counts as its ancestor in this scope) can still reach an
   * incoming flow that has no token while it cannot reach one that has (the
   * gateway's precomputed `reach`); a token about to execute the gateway
   * counts as being on the flow it arrives by. It consumes one token from
   * each incoming flow that has one, the earliest to arrive there; a second
   * token on the same flow stays for an activation of its own. The consumed
   * tokens merge into `into` when it is one of them, else into the first;
   * returns the surviving token, or null while the join waits.
   */
  tryInclusiveJoin(gatewayId: string, scopeId: string, into: Token | null): Token | null {
    const el = this.element(gatewayId);
    if (el.type !== 'inclusiveGateway') return null;
    const n = el.incoming.length;
    const first: (Token | undefined)[] = new Array<Token | undefined>(n);
    const arriving: number[] = [];
    const elsewhere: Token[] = [];
    for (const t of this.rawTokens()) {
      if (t.scopeId === scopeId && t.elementId === gatewayId) {
        const i = t.arrivedVia !== undefined ? el.incoming.indexOf(t.arrivedVia) : -1;
        if (t.state === 'joining' && i >= 0) first[i] ??= t;
        else if (t.state === 'ready' && t.id !== into?.id && i >= 0) arriving.push(i);
        continue;
      }
      elsewhere.push(t);
    }
    const filled = (i: number): boolean => first[i] !== undefined;
    if (!first.some((t) => t !== undefined)) return null;
    if (arriving.some((i) => !filled(i))) return null;
    for (const t of elsewhere) {
      const a = this.ancestorIn(t, scopeId);
      const r = a ? el.reach[a.elementId] : undefined;
      if (r && r.some((i) => !filled(i)) && !r.some(filled)) return null;
    }
    const chosen = first.filter((t): t is Token => t !== undefined);
    const survivorId = into && chosen.some((t) => t.id === into.id) ? into.id : (chosen[0] as Token).id;
    const survivor = into?.id === survivorId ? into : this.state.tokens[survivorId];
    if (!survivor) return null;
    for (const t of chosen) {
      if (t.id === survivor.id) continue;
      this.history('element_completed', { elementId: el.id, elementType: el.type, tokenId: t.id, scopeId: t.scopeId, data: { mergedInto: survivor.id } });
      delete this.state.tokens[t.id];
    }
    survivor.state = 'ready';
    return survivor;
  }

  /**
   * A parallel join that waits for a flow no live token of its scope instance
   * can reach any more would leave the instance waiting forever without
   * saying why. Two cases:
   * - the gateway is also a loop merge (SpiffWorkflow's reading): the missing
   *   flows are ones that come back from after it (its first pass), or the
   *   tokens came back that way and the missing flows are the way in (a later
   *   pass): it fires with the tokens it has, one per flow;
   * - anything else (an exclusive split feeding it, a branch that ended
   *   elsewhere, a leftover token of an earlier round): its earliest waiting
   *   token gets a `join_cannot_fire` incident naming the gateway and the
   *   flows that can no longer get a token. Once per gateway and scope
   *   instance: an incident already there stands for the rest.
   * Returns true when the join fired.
   */
  private settleParallelJoins(joining: Token[]): boolean {
    // One pass over the live tokens for every join that has waiting tokens, so
    // that a thousand multi-instance scopes each waiting at their own join cost
    // one scan, not a thousand.
    interface Group {
      el: ParallelGatewayElement;
      scopeId: string;
      first: Map<string, Token>;
      blocked: boolean;
      reachable: Set<number>;
    }
    const groups = new Map<string, Group>();
    const byScope = new Map<string, Group[]>();
    for (const t of joining) {
      const el = this.graph.elements[t.elementId];
      const key = `${t.elementId}\u0000${t.scopeId}`;
      if (el?.type !== 'parallelGateway' || groups.has(key)) continue;
      const g: Group = { el, scopeId: t.scopeId, first: new Map(), blocked: false, reachable: new Set() };
      groups.set(key, g);
      const list = byScope.get(t.scopeId);
      if (list) list.push(g);
      else byScope.set(t.scopeId, [g]);
    }
    const tokens = this.rawTokenRecord();
    const scopes = this.rawScopeRecord();
    for (const id in tokens) {
      const t = tokens[id] as Token;
      const own = byScope.has(t.scopeId) ? groups.get(`${t.elementId}\u0000${t.scopeId}`) : undefined;
      if (own) {
        if (t.state === 'incident') own.blocked = true;
        else if (t.state === 'joining' && t.arrivedVia !== undefined && !own.first.has(t.arrivedVia)) own.first.set(t.arrivedVia, t);
      }
      // what this token (or the token its nested scope hangs on) can still reach, for every join of each scope on the way up
      for (let a: Token | undefined = t; a; ) {
        for (const g of byScope.get(a.scopeId) ?? []) {
          if (g === own) continue;
          for (const i of g.el.reach[a.elementId] ?? []) g.reachable.add(i);
        }
        const sc: ScopeInstance | undefined = scopes[a.scopeId];
        a = sc && sc.parentTokenId !== null ? tokens[sc.parentTokenId] : undefined;
      }
    }
    for (const g of groups.values()) if (!g.blocked && this.settleParallelJoin(g.el, g.first, g.reachable)) return true;
    return false;
  }

  /** One join's verdict (see settleParallelJoins): fire it as a loop merge, raise `join_cannot_fire`, or keep waiting. Returns true when it fired. */
  private settleParallelJoin(el: ParallelGatewayElement, first: Map<string, Token>, reachable: Set<number>): boolean {
    const missing = el.incoming.map((f, i) => i).filter((i) => !first.has(el.incoming[i] as string));
    const dead = missing.filter((i) => !reachable.has(i));
    if (dead.length === 0 || first.size === 0) return false;
    const loopBack = new Set(el.loopBack);
    const cameBack = [...first.keys()].every((f) => loopBack.has(el.incoming.indexOf(f)));
    if (dead.every((i) => loopBack.has(i) || cameBack)) {
      // the flows still reachable may yet bring their tokens
      if (dead.length < missing.length) return false;
      const chosen = [...first.values()];
      const survivor = this.state.tokens[(chosen[0] as Token).id];
      if (!survivor) return false;
      for (const t of chosen.slice(1)) {
        this.history('element_completed', { elementId: el.id, elementType: el.type, tokenId: t.id, scopeId: t.scopeId, data: { mergedInto: survivor.id } });
        delete this.state.tokens[t.id];
      }
      survivor.state = 'ready';
      survivor.resumeAt = 'leave';
      this.fresh.push(survivor.id);
      return true;
    }
    const victim = this.state.tokens[(first.values().next().value as Token).id];
    if (!victim) return false;
    const names = (ids: number[]) => ids.map((i) => `'${el.incoming[i]}'`).join(', ');
    this.incident(
      victim,
      'join_cannot_fire',
      `parallel gateway '${el.id}' can never fire: no token can reach its incoming flow${dead.length > 1 ? 's' : ''} ${names(dead)} any more (tokens wait on ${[...first.keys()].map((f) => `'${f}'`).join(', ')})`,
    );
    return false;
  }

  /** Executes the token's element: history, spiff preScript, then the element type's behaviour. */
  execute(token: Token): void {
    const element = this.element(token.elementId);
    // instances of a multi-instance are bounded by its collection: they do not count towards the loop guard
    const boundedInstance = token.loopIndex !== undefined && 'loop' in element && element.loop?.kind === 'multiInstance';
    if (!boundedInstance && ++this.executions > this.maxExecutions) {
      this.incident(
        token,
        'step_limit',
        `more than ${this.maxExecutions} element executions in one step (BATON_MAX_STEP_ELEMENTS): the model loops without reaching a wait state`,
      );
      return;
    }
    this.elementHistory('element_started', token, element);
    const isLoopBody = 'loop' in element && element.loop !== null && token.loopIndex === undefined;
    // boundary events hang on the activity as a whole (the loop body, not its instances)
    if (token.loopIndex === undefined && element.boundaryEventIds.length > 0) {
      if (!openBoundaryTriggers(this, token, element)) return;
    }
    if (isLoopBody) {
      startLoop(this, token, element);
      return;
    }
    // input parameters (of each instance, for a loop activity)
    if (!this.enterLocals(token, element)) return;
    if ('preScript' in element && element.preScript !== null && !this.runScript(token, element.preScript)) return;
    const behaviour = this.behaviours[element.type] as Behaviour;
    behaviour(this, token, element);
  }

  /**
   * Completes an activity or event and leaves it: spiff postScript, then the
   * outgoing flows are chosen (unconditional flows all; conditional ones whose
   * condition holds; the default flow only when no condition held). No
   * outgoing flow at all is an implicit end of the token (as in Camunda).
   */
  complete(token: Token, element: GraphElement): void {
    token.resumeAt = 'leave';
    const isLoopBody = 'loop' in element && element.loop !== null && token.loopIndex === undefined;
    if (!isLoopBody && 'postScript' in element && element.postScript !== null && !this.runScript(token, element.postScript, true)) return;
    // output parameters, then the locals go: conditions of the outgoing flows do not see them (Camunda 7)
    if (!isLoopBody && !this.leaveLocals(token, element)) return;
    if (token.loopIndex !== undefined) {
      completeLoopInstance(this, token, element);
      return;
    }

    const taken: string[] = [];
    let conditionHeld = false;
    const defaultFlow = 'defaultFlow' in element ? element.defaultFlow : null;
    for (const flowId of element.outgoing) {
      if (flowId === defaultFlow) continue;
      const flow = this.graph.flows[flowId];
      if (!flow) continue;
      if (flow.condition === null) {
        taken.push(flowId);
        continue;
      }
      const result = this.evaluateCondition(token, flowId, flow.condition, true);
      if (result === null) return;
      if (result) {
        taken.push(flowId);
        conditionHeld = true;
      }
    }
    if (!conditionHeld && defaultFlow !== null) taken.push(defaultFlow);
    if (element.outgoing.length > 0 && taken.length === 0) {
      this.incident(
        token,
        'no_matching_flow',
        `no outgoing sequence flow of '${element.id}' could be taken: no condition holds and there is no default flow`,
        undefined,
        true,
      );
      return;
    }
    this.leaveVia(token, element, taken);
  }

  /**
   * Evaluates a flow condition for a token. Returns null after opening a
   * `condition_error` incident when the expression fails.
   */
  evaluateCondition(token: Token, flowId: string, condition: string, resumeAtLeave = false): boolean | null {
    try {
      return this.evaluator(flowId).condition(condition, this.evalVariables(token.scopeId));
    } catch (err) {
      const f = describeFailure(err);
      this.incident(token, 'condition_error', `condition of sequence flow '${flowId}' failed: ${f.message}`, f.line, resumeAtLeave, columnOf(f));
      return null;
    }
  }

  /**
   * Leaves `element` by the given flows: the token moves along the first one,
   * a new token is created for each further one. With no flows the token is
   * consumed (end event, implicit end).
   */
  leaveVia(token: Token, element: GraphElement, flowIds: readonly string[]): void {
    this.touch(token.scopeId);
    this.elementHistory('element_completed', token, element);
    this.dropLocals(token);
    delete token.resumeAt;
    delete token.triggered;
    delete token.retries;
    if (this.state.triggers) this.closeTriggers((t) => t.tokenId === token.id);
    if (!('loop' in element && element.loop !== null && token.loopIndex === undefined)) recordCompensable(this, token, element, token.scopeId);
    if (flowIds.length === 0) {
      this.consume(token);
      return;
    }
    const scopeId = token.scopeId;
    flowIds.forEach((flowId, i) => {
      const flow = this.graph.flows[flowId];
      if (!flow) throw new BatonError('engine_state_mismatch', `sequence flow '${flowId}' is not in process '${this.graph.key}'`);
      let moving: Token;
      if (i === 0) {
        moving = token;
        moving.elementId = flow.targetId;
        moving.arrivedVia = flowId;
        moving.state = 'ready';
      } else {
        moving = this.newToken(flow.targetId, scopeId, flowId);
      }
      this.history('flow_taken', {
        elementId: flowId,
        elementType: 'sequenceFlow',
        tokenId: moving.id,
        scopeId,
        data: { sourceId: flow.sourceId, targetId: flow.targetId },
      });
    });
  }

  /** Records the element as completed and removes the token, without looking at its scope. */
  removeCompleted(token: Token, element: GraphElement): void {
    this.touch(token.scopeId);
    this.elementHistory('element_completed', token, element);
    this.dropLocals(token);
    if (this.state.triggers) this.closeTriggers((t) => t.tokenId === token.id);
    delete this.state.tokens[token.id];
  }

  /** Moves a token to another element of its scope without a sequence flow (link events, event-based gateways). */
  jump(token: Token, targetId: string): void {
    this.touch(token.scopeId);
    this.dropLocals(token);
    token.elementId = targetId;
    delete token.retries;
    delete token.arrivedVia;
    delete token.resumeAt;
    delete token.wait;
    token.state = 'ready';
    this.fresh.push(token.id);
  }

  /** Removes a token that reached its end; completes its scope when it was the last one there. */
  consume(token: Token): void {
    this.touch(token.scopeId);
    delete this.state.tokens[token.id];
    if (this.tokensInScope(token.scopeId).length === 0) this.completeScope(token.scopeId);
  }

  // ---- scopes ----------------------------------------------------------------

  /** Creates the child scope of an embedded subprocess and starts a token at its none start event. */
  enterScope(token: Token, scopeElementId: string, startEventId?: string, variables: JsonObject = {}): string {
    const graphScope = this.graph.scopes[scopeElementId];
    if (!graphScope) throw new BatonError('engine_state_mismatch', `scope '${scopeElementId}' is not in process '${this.graph.key}'`);
    const scopeId = this.ctx.newId();
    this.state.scopes[scopeId] = {
      id: scopeId,
      elementId: scopeElementId,
      // the subprocess content sees the subprocess's input parameters
      parentScopeId: this.variableScope(token),
      parentTokenId: token.id,
      variables,
    };
    this.wait(token, { kind: 'subprocess', scopeId });
    this.declareDataObjects(scopeId);
    openEventSubProcessTriggers(this, scopeId);
    if (startEventId !== undefined || graphScope.noneStartEventId !== '') this.newToken(startEventId ?? graphScope.noneStartEventId, scopeId);
    else for (const id of graphScope.implicitStartIds) this.newToken(id, scopeId);
    // an empty subprocess has nothing to run: it is done as soon as it starts
    if (graphScope.elementIds.length === 0) this.completeScope(scopeId);
    return scopeId;
  }

  /** Data objects of the scope's graph scope become its variables (null until written). */
  declareDataObjects(scopeId: string): void {
    const scope = this.scope(scopeId);
    for (const id of this.graph.scopes[scope.elementId]?.dataObjectIds ?? []) {
      if (!Object.hasOwn(scope.variables, id)) scope.variables[id] = null;
    }
  }

  /**
   * A scope without tokens is done. The root scope ends the instance; a
   * subprocess scope merges its local variables into its parent scope
   * (SpiffArena: what an embedded subprocess produced is visible after it),
   * disappears, and its waiting parent token leaves the subprocess element.
   */
  completeScope(scopeId: string): void {
    const scope = this.scope(scopeId);
    if (this.state.triggers) this.closeTriggers((t) => t.scopeId === scopeId && t.tokenId === null);
    if (scope.parentScopeId === null) {
      this.endInstance('completed', 'instance_completed');
      return;
    }
    if (scope.compensationSnapshot) {
      // a compensation handler finished: what it created or changed goes to the thrower's scope,
      // the rest of the snapshot it ran with does not
      const snapshot = scope.compensationSnapshot;
      const changed = Object.fromEntries(
        Object.entries(scope.variables).filter(([k, v]) => !Object.hasOwn(snapshot, k) || JSON.stringify(v) !== JSON.stringify(snapshot[k])),
      );
      this.writeVariables(scope.parentScopeId, changed);
      delete this.state.scopes[scopeId];
      const thrower = scope.parentTokenId !== null ? this.state.tokens[scope.parentTokenId] : undefined;
      if (thrower) continueCompensation(this, thrower);
      return;
    }
    if (scope.compensation) {
      // a finished subprocess hands its compensable activities to its parent scope
      // (the one its element lives in, not the element's local scope)
      let parent = this.scope(scope.parentScopeId);
      while (parent.activityLocal && parent.parentScopeId !== null) parent = this.scope(parent.parentScopeId);
      parent.compensation = [...(parent.compensation ?? []), ...scope.compensation];
    }
    this.mergeVariables(scope.parentScopeId, scope.variables);
    this.conditionsDirty = true;
    delete this.state.scopes[scopeId];
    const parentToken = scope.parentTokenId !== null ? this.state.tokens[scope.parentTokenId] : undefined;
    if (parentToken) this.resumeToLeave(parentToken);
  }

  /**
   * Terminate end event reached in `scopeId` (the token has been consumed):
   * every other token in the scope and in nested scopes is cancelled. A
   * subprocess then completes normally (Camunda 7); the root scope ends the
   * instance as terminated.
   */
  terminateScope(scopeId: string, byElementId: string): void {
    this.cancelScopeContent(scopeId);
    const scope = this.scope(scopeId);
    if (scope.parentScopeId === null) {
      // a called instance ended by a terminate end event: its call activity completes (Camunda 7)
      this.endInstance('terminated', 'instance_terminated', { reason: 'terminate end event', elementId: byElementId }, 'completed');
    } else {
      this.completeScope(scopeId);
    }
  }

  /** `cancel` event: everything is cancelled and the instance ends as terminated. */
  cancelInstance(reason: string | undefined, notifyParent: 'terminated' | 'none' = 'terminated'): void {
    this.cancelScopeContent(this.state.rootScopeId);
    this.endInstance('terminated', 'instance_terminated', { reason: reason ?? 'cancelled' }, notifyParent);
  }

  cancelScopeContent(scopeId: string): void {
    for (const t of this.tokensInScope(scopeId)) if (this.state.tokens[t.id]) this.cancelToken(t);
  }

  /** Cancels everything in a scope instance and removes it (with its triggers). */
  removeScope(scopeId: string): void {
    this.cancelScopeContent(scopeId);
    if (this.state.triggers) this.closeTriggers((t) => t.scopeId === scopeId && t.tokenId === null);
    delete this.state.scopes[scopeId];
  }

  /**
   * Cancels one token and whatever hangs off it: the child scope it waits for
   * (depth first), its open human task or service job, its open incidents.
   * Boundary events will interrupt activities through this same path.
   */
  cancelToken(token: Token): void {
    this.touch(token.scopeId);
    const wait = token.wait;
    if (this.state.triggers) this.closeTriggers((t) => t.tokenId === token.id);
    if (wait?.kind === 'subprocess') {
      this.removeScope(wait.scopeId);
    } else if (wait?.kind === 'loop' || wait?.kind === 'compensation') {
      for (const s of Object.values(this.state.scopes)) if (s.parentTokenId === token.id) this.removeScope(s.id);
    } else if (wait?.kind === 'humanTask') {
      this.emit({ type: 'humanTaskClosed', taskId: wait.taskId, state: 'cancelled' });
    } else if (wait?.kind === 'serviceJob') {
      this.emit({ type: 'serviceJobCancelled', jobId: wait.jobId });
    } else if (wait?.kind === 'callActivity') {
      this.emit({ type: 'childInstanceCancelled', childId: wait.childId });
    }
    this.resolveIncidents((i) => i.tokenId === token.id);
    // interrupted: no output parameters (Camunda 7)
    this.dropLocals(token);
    const element = this.graph.elements[token.elementId];
    this.history('element_cancelled', {
      elementId: token.elementId,
      elementType: element?.type ?? null,
      tokenId: token.id,
      scopeId: token.scopeId,
    });
    delete this.state.tokens[token.id];
  }

  resolveIncidents(match: (incident: Incident) => boolean, reason: 'cancelled' | 'retried' | 'reset' = 'cancelled'): void {
    const keep = [];
    for (const incident of this.state.incidents) {
      if (match(incident)) this.emit({ type: 'incidentResolved', incidentId: incident.id, reason });
      else keep.push(incident);
    }
    this.state.incidents = keep;
  }

  /**
   * Ends the instance. A called instance tells its parent: `completed` →
   * childCompleted with the final variables, `terminated` → childTerminated,
   * `none` → nothing (the caller has already sent childFailed).
   */
  endInstance(
    status: 'completed' | 'terminated',
    event: string,
    data?: JsonObject,
    notifyParent: 'completed' | 'terminated' | 'none' = status,
  ): void {
    // Every live child scope is gone by now; only the root scope stays, holding the final variables.
    for (const id of Object.keys(this.state.scopes)) if (id !== this.state.rootScopeId) delete this.state.scopes[id];
    delete this.scope(this.state.rootScopeId).compensation;
    this.closeTriggers(() => true);
    delete this.state.triggers;
    this.resolveIncidents(() => true);
    const parent = this.state.parent;
    if (parent && notifyParent !== 'none') {
      const childId = parent.childId ?? parent.tokenId;
      const final = this.scope(this.state.rootScopeId).variables;
      // with an ioSpecification only the data outputs go back, and each must be set (SpiffWorkflow)
      const outputs = this.graph.ioSpecification?.outputs ?? [];
      const missing = outputs.find((name) => !Object.hasOwn(final, name));
      const ev: ChildEvent =
        notifyParent !== 'completed'
          ? { type: 'childTerminated', childId }
          : missing !== undefined
            ? { type: 'childFailed', childId, errorCode: 'data_output_missing', message: `data output '${missing}' of process '${this.graph.key}' is not set`, kind: 'incident' }
            : {
                type: 'childCompleted',
                childId,
                variables: structuredClone(outputs.length > 0 ? Object.fromEntries(outputs.map((n) => [n, final[n] ?? null])) : final),
              };
      this.emit({ type: 'parentNotified', parentInstanceId: parent.instanceId, event: ev });
    }
    this.state.tokens = {};
    this.state.status = status;
    this.ended = true;
    this.history(event, {
      elementId: this.graph.key,
      elementType: 'process',
      scopeId: this.state.rootScopeId,
      ...(data !== undefined ? { data } : {}),
    });
  }

  // ---- result ----------------------------------------------------------------

  result(ignored = false): StepResult {
    if (!this.ended) this.state.status = this.state.incidents.length > 0 ? 'error' : 'waiting';
    // hand out plain records, never the copy-on-write proxies
    if (this.tokenView && this.state.tokens === this.tokenView.proxy) this.state.tokens = this.tokenView.raw;
    if (this.scopeView && this.state.scopes === this.scopeView.proxy) this.state.scopes = this.scopeView.raw;
    return { state: this.state, effects: this.effects, ignored };
  }
}
