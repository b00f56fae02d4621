/**
 * The fast path: a small interpreter for the JavaScript most conditions and
 * script tasks are made of (`total > 1000`, `approved && amount < limit`,
 * `total = price * qty`), evaluated over the variables in this process,
 * without the round trip to the sandbox process.
 *
 * Why this is safe: no user code runs here. The source is parsed into a tree
 * of a closed set of node kinds (literals, variable names, property reads,
 * unary/binary/logical/conditional operators, top-level assignments), and the
 * tree is evaluated by this file's own code over JSON data. Operators are
 * applied to primitives only (numbers, strings, booleans, null, undefined):
 * on those, the host's operators ARE the JavaScript semantics the sandbox
 * would apply, and they cannot call anything. An object operand, a property
 * that is not an own data property of JSON data, a missing variable (read
 * outside `typeof`, which gives 'undefined' as in the sandbox), a name
 * that is also a global (Math, JSON, …), a result that is not a primitive, a
 * string Postgres cannot store: each makes the fast path give up (`DEFER`),
 * and the sandbox evaluates the source as before, with its exact errors and
 * limits. So for every source the result is the sandbox's result; the fast
 * path only ever answers when it is sure to answer the same
 * (test/expressions/simple.test.ts checks that differentially).
 *
 * Grammar (a subset of ECMAScript; anything else is not compiled):
 *   script     := (assignment (';' | newline)+)* assignment? ';'*
 *   assignment := Identifier ('=' | '+=' | '-=' | '*=' | '/=' | '%=') expression
 *   expression := conditional
 *   conditional:= or ('?' expression ':' expression)?
 *   or / and   := left-assoc '||' / '&&'
 *   equality   := '==' '!=' '===' '!=='
 *   relational := '<' '>' '<=' '>='
 *   additive / multiplicative := '+' '-' / '*' '/' '%'
 *   unary      := ('!' | '-' | '+' | 'typeof') unary | member
 *   member     := primary ('.' Identifier | '[' expression ']')*
 *   primary    := number | string | true | false | null | Identifier | '(' expression ')'
 * Newlines inside an expression are whitespace (JavaScript does not insert a
 * semicolon where the next token can continue the expression, and the
 * grammar has none of the restricted productions); between statements a
 * newline or ';' is required, as without a separator JavaScript would fail.
 */
import type { Json, JsonObject } from '../../errors.js';
import { ALLOWED_GLOBALS } from './bootstrap.js';

/** The fast path cannot answer for sure: ask the sandbox. */
export const DEFER: unique symbol = Symbol('defer');
export type Deferred = typeof DEFER;

type Value = Json | undefined;

type Node =
  | { k: 'lit'; v: string | number | boolean | null }
  | { k: 'var'; name: string }
  | { k: 'get'; obj: Node; key: Node | string }
  | { k: 'un'; op: '!' | '-' | '+'; a: Node }
  | { k: 'typeof'; a: Node }
  | { k: 'bin'; op: BinOp; a: Node; b: Node }
  | { k: 'and' | 'or'; a: Node; b: Node }
  | { k: 'cond'; test: Node; yes: Node; no: Node };

type BinOp = '*' | '/' | '%' | '+' | '-' | '<' | '>' | '<=' | '>=' | '==' | '!=' | '===' | '!==';

interface Assignment {
  name: string;
  /** compound assignment operator, or null for '=' */
  op: '+' | '-' | '*' | '/' | '%' | null;
  value: Node;
}

export type Program = { kind: 'expr'; node: Node } | { kind: 'script'; body: Assignment[] };

// ---- tokens -------------------------------------------------------------

type Token =
  | { t: 'num'; v: number }
  | { t: 'str'; v: string }
  | { t: 'id'; v: string }
  | { t: 'op'; v: string }
  | { t: 'nl' }
  | { t: 'end' };

/** Names JavaScript reserves or gives a meaning the grammar lacks: never variables here. */
const RESERVED = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in ' +
    'instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package ' +
    'private protected public await async of get set arguments eval undefined NaN Infinity globalThis'
  ).split(' '),
);
/**
 * The sandbox's globals (Math, JSON, Date, …): a name that may resolve to one
 * (reading it when no variable has the name; assigning it, which the sandbox
 * sends to the frozen global object) is the sandbox's to answer.
 */
for (const g of ALLOWED_GLOBALS) RESERVED.add(g);

const OPERATORS = ['===', '!==', '==', '!=', '<=', '>=', '&&', '||', '+=', '-=', '*=', '/=', '%=', '<', '>', '+', '-', '*', '/', '%', '!', '?', ':', '(', ')', '[', ']', '.', ';', '='];

class Unsupported extends Error {}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') {
      if (out.at(-1)?.t !== 'nl') out.push({ t: 'nl' });
      i++;
      continue;
    }
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n' && src[i] !== '\r') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Unsupported();
      // a block comment with a line break counts as one for statement separation
      if (/[\n\r\u2028\u2029]/.test(src.slice(i, end)) && out.at(-1)?.t !== 'nl') out.push({ t: 'nl' });
      i = end + 2;
      continue;
    }
    if (c >= '0' && c <= '9') {
      const m = /^(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(src.slice(i, i + 400));
      if (!m) throw new Unsupported();
      const next = src[i + m[0].length];
      // 1.toFixed, 1_000, 0x1f, 1n, 08, 1a: not ours
      if (next !== undefined && /[\w$.]/.test(next)) throw new Unsupported();
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let s = '';
      i++;
      for (;;) {
        if (i >= n) throw new Unsupported();
        const ch = src[i]!;
        if (ch === c) {
          i++;
          break;
        }
        if (ch === '\n' || ch === '\r' || ch === '\u2028' || ch === '\u2029') throw new Unsupported();
        if (ch === '\\') {
          const e = src[i + 1];
          const simple: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r' };
          if (e === undefined || simple[e] === undefined) throw new Unsupported();
          s += simple[e];
          i += 2;
          continue;
        }
        s += ch;
        i++;
      }
      out.push({ t: 'str', v: s });
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(src[j]!)) j++;
      // a non-ASCII letter continuing a name: not ours
      if (j < n && src.charCodeAt(j) > 127) throw new Unsupported();
      out.push({ t: 'id', v: src.slice(i, j) });
      i = j;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (!op) throw new Unsupported();
    // `a++`, `a--`, `a ** b`, `a?.b`, `a ?? b`, `=>`, `>>`, `<<`: not in the grammar
    const after = src[i + op.length];
    if ((op === '+' && after === '+') || (op === '-' && after === '-') || (op === '*' && after === '*') || (op === '?' && (after === '.' || after === '?'))) {
      throw new Unsupported();
    }
    if (op === '=' && after === '>') throw new Unsupported();
    if ((op === '<' && after === '<') || (op === '>' && after === '>')) throw new Unsupported();
    out.push({ t: 'op', v: op });
    i += op.length;
  }
  out.push({ t: 'end' });
  return out;
}

// ---- parser -------------------------------------------------------------

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  /** next token, newlines skipped (inside an expression they are whitespace) */
  private peek(): Token {
    let j = this.i;
    while (this.tokens[j]!.t === 'nl') j++;
    return this.tokens[j]!;
  }

  private next(): Token {
    while (this.tokens[this.i]!.t === 'nl') this.i++;
    return this.tokens[this.i++]!;
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }

  private expectOp(v: string): void {
    const t = this.next();
    if (t.t !== 'op' || t.v !== v) throw new Unsupported();
  }

  atEnd(): boolean {
    return this.peek().t === 'end';
  }

  expression(): Node {
    if (++this.depth > 64) throw new Unsupported();
    const test = this.binary(0);
    let node = test;
    if (this.isOp('?')) {
      this.next();
      const yes = this.expression();
      this.expectOp(':');
      const no = this.expression();
      node = { k: 'cond', test, yes, no };
    }
    this.depth--;
    return node;
  }

  private static readonly LEVELS: string[][] = [['||'], ['&&'], ['==', '!=', '===', '!=='], ['<', '>', '<=', '>='], ['+', '-'], ['*', '/', '%']];

  private binary(level: number): Node {
    if (level === Parser.LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const t = this.peek();
      if (t.t !== 'op' || !Parser.LEVELS[level]!.includes(t.v)) return left;
      this.next();
      const right = this.binary(level + 1);
      if (t.v === '&&') left = { k: 'and', a: left, b: right };
      else if (t.v === '||') left = { k: 'or', a: left, b: right };
      else left = { k: 'bin', op: t.v as BinOp, a: left, b: right };
    }
  }

  private unary(): Node {
    const t = this.peek();
    if (t.t === 'id' && t.v === 'typeof') {
      this.next();
      if (++this.depth > 64) throw new Unsupported();
      const a = this.unary();
      this.depth--;
      return { k: 'typeof', a };
    }
    if (t.t === 'op' && (t.v === '!' || t.v === '-' || t.v === '+')) {
      this.next();
      if (++this.depth > 64) throw new Unsupported();
      const a = this.unary();
      this.depth--;
      return { k: 'un', op: t.v, a };
    }
    return this.member();
  }

  private member(): Node {
    let node = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.next();
        const name = this.next();
        if (name.t !== 'id') throw new Unsupported();
        node = { k: 'get', obj: node, key: name.v };
      } else if (this.isOp('[')) {
        this.next();
        const key = this.expression();
        this.expectOp(']');
        node = { k: 'get', obj: node, key };
      } else {
        // a call, a template, `++`…: not ours
        const t = this.peek();
        if (t.t === 'op' && t.v === '(') throw new Unsupported();
        return node;
      }
    }
  }

  private primary(): Node {
    const t = this.next();
    if (t.t === 'num' || t.t === 'str') return { k: 'lit', v: t.v };
    if (t.t === 'id') {
      if (t.v === 'true') return { k: 'lit', v: true };
      if (t.v === 'false') return { k: 'lit', v: false };
      if (t.v === 'null') return { k: 'lit', v: null };
      if (RESERVED.has(t.v)) throw new Unsupported();
      return { k: 'var', name: t.v };
    }
    if (t.t === 'op' && t.v === '(') {
      const e = this.expression();
      this.expectOp(')');
      return e;
    }
    throw new Unsupported();
  }

  /** statements: assignments separated by newlines or semicolons */
  script(): Assignment[] {
    const body: Assignment[] = [];
    for (;;) {
      while (this.tokens[this.i]!.t === 'nl' || (this.tokens[this.i]!.t === 'op' && (this.tokens[this.i] as { v: string }).v === ';')) this.i++;
      if (this.tokens[this.i]!.t === 'end') return body;
      const name = this.tokens[this.i++]!;
      if (name.t !== 'id' || RESERVED.has(name.v) || name.v === 'true' || name.v === 'false' || name.v === 'null') throw new Unsupported();
      const op = this.tokens[this.i++]!;
      if (op.t !== 'op' || !['=', '+=', '-=', '*=', '/=', '%='].includes(op.v)) throw new Unsupported();
      const value = this.expression();
      body.push({ name: name.v, op: op.v === '=' ? null : (op.v[0] as Assignment['op']), value });
      // the statement must end here: a separator or the end
      const sep = this.tokens[this.i]!;
      if (sep.t === 'end' || sep.t === 'nl' || (sep.t === 'op' && sep.v === ';')) continue;
      throw new Unsupported();
    }
  }
}

/** Parses the source, or returns null when it is outside the grammar (the sandbox will take it). */
export function compileSimple(source: string, kind: 'expr' | 'script'): Program | null {
  if (source.length > 4000) return null;
  try {
    const p = new Parser(tokenize(source));
    if (kind === 'script') {
      const body = p.script();
      return body.length > 0 ? { kind: 'script', body } : null;
    }
    const node = p.expression();
    return p.atEnd() ? { kind: 'expr', node } : null;
  } catch (err) {
    if (err instanceof Unsupported || err instanceof RangeError) return null;
    throw err;
  }
}

// ---- evaluation -----------------------------------------------------------

type Primitive = string | number | boolean | null | undefined;

function isPrimitive(v: Value): v is Primitive {
  return v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/**
 * A value as the sandbox would see it after its JSON round trip: primitives
 * and plain objects/arrays are the same; anything else (a Date, a BigInt, an
 * object with toJSON, a class instance — only possible when a caller breaks
 * the JsonObject contract) would be seen differently, so the sandbox answers.
 */
function asJson(v: unknown): Value {
  if (isPrimitive(v as Value)) return v as Value;
  if (typeof v !== 'object') throw new Defer();
  const proto = Object.getPrototypeOf(v) as unknown;
  if (!(Array.isArray(v) ? proto === Array.prototype : proto === Object.prototype) || Object.hasOwn(v as object, 'toJSON')) throw new Defer();
  return v as Value;
}

/** Prototype members the sandbox would find where JSON data has no own property: there, only the sandbox can answer. */
function inheritedName(obj: Value, key: string | number): boolean {
  const k = String(key);
  if (typeof obj === 'string') return k in String.prototype;
  if (Array.isArray(obj)) return k in Array.prototype;
  return k in Object.prototype;
}

class Defer extends Error {}

function read(scope: Map<string, Value>, variables: JsonObject, name: string): Value {
  if (scope.has(name)) return scope.get(name);
  if (!Object.hasOwn(variables, name)) throw new Defer(); // the sandbox decides: ReferenceError, or a global
  return asJson(variables[name]);
}

function evalNode(n: Node, scope: Map<string, Value>, vars: JsonObject): Value {
  switch (n.k) {
    case 'lit':
      return n.v;
    case 'var':
      return read(scope, vars, n.name);
    case 'get': {
      const obj = evalNode(n.obj, scope, vars);
      const key = typeof n.key === 'string' ? n.key : evalNode(n.key, scope, vars);
      if (typeof key !== 'string' && typeof key !== 'number') throw new Defer();
      if (obj === null || obj === undefined) throw new Defer(); // TypeError in the sandbox, with its message
      if (typeof obj === 'string') {
        if (key === 'length') return obj.length;
        if (typeof key === 'number' && Number.isInteger(key) && key >= 0) return key < obj.length ? obj[key] : undefined;
        throw new Defer();
      }
      if (typeof obj !== 'object') throw new Defer(); // numbers, booleans: prototype members
      if (Array.isArray(obj) && key === 'length') return obj.length;
      const k = String(key);
      if (k === '__proto__') throw new Defer();
      if (Object.hasOwn(obj, k)) return asJson((obj as Record<string, Json>)[k]);
      if (inheritedName(obj, k)) throw new Defer();
      return undefined;
    }
    case 'un': {
      const a = evalNode(n.a, scope, vars);
      if (n.op === '!') return !a; // truthiness runs no code, on objects too
      if (!isPrimitive(a)) throw new Defer();
      return n.op === '-' ? -(a as number) : +(a as number);
    }
    case 'typeof': {
      // A missing variable is 'undefined' (the name is no global: the parser
      // refuses those), as the sandbox answers since typeof.ts.
      const a = n.a.k === 'var' && !scope.has(n.a.name) && !Object.hasOwn(vars, n.a.name) ? undefined : evalNode(n.a, scope, vars);
      // Objects: the sandbox may fail to copy them (a cycle), or see them otherwise.
      if (!isPrimitive(a)) throw new Defer();
      return typeof a;
    }
    case 'and': {
      const a = evalNode(n.a, scope, vars);
      return a ? evalNode(n.b, scope, vars) : a;
    }
    case 'or': {
      const a = evalNode(n.a, scope, vars);
      return a ? a : evalNode(n.b, scope, vars);
    }
    case 'cond':
      return evalNode(n.test, scope, vars) ? evalNode(n.yes, scope, vars) : evalNode(n.no, scope, vars);
    case 'bin': {
      const a = evalNode(n.a, scope, vars);
      const b = evalNode(n.b, scope, vars);
      if (!isPrimitive(a) || !isPrimitive(b)) throw new Defer();
      return binary(n.op, a, b);
    }
  }
}

/** JavaScript's own operators, on primitives only (see the header). */
function binary(op: BinOp | NonNullable<Assignment['op']>, a: Primitive, b: Primitive): Primitive {
  /* eslint-disable @typescript-eslint/no-explicit-any */
  const x = a as any;
  const y = b as any;
  switch (op) {
    case '*':
      return x * y;
    case '/':
      return x / y;
    case '%':
      return x % y;
    case '+': {
      const r = x + y;
      // very long concatenations: let the sandbox apply its memory budget
      if (typeof r === 'string' && r.length > 100_000) throw new Defer();
      return r;
    }
    case '-':
      return x - y;
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
    case '==':
      return x == y; // eslint-disable-line eqeqeq
    case '!=':
      return x != y; // eslint-disable-line eqeqeq
    case '===':
      return x === y;
    case '!==':
      return x !== y;
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

/** The JSON form the sandbox gives a result: undefined, NaN, ±Infinity → null, -0 → 0; objects and unstorable text → defer. */
function normalise(v: Value): Json {
  if (v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? (v === 0 ? 0 : v) : null;
  if (typeof v === 'string') {
    // NUL or an unpaired surrogate: the sandbox refuses it with its own message
    if (v.includes('\u0000') || /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(v)) throw new Defer();
    return v;
  }
  if (v === null || typeof v === 'boolean') return v;
  throw new Defer(); // objects and arrays: the sandbox copies and checks them
}

/** Variables the sandbox could not serialise either are its to report. */
function usable(variables: unknown): variables is JsonObject {
  return variables !== null && typeof variables === 'object' && !Array.isArray(variables) && Object.getPrototypeOf(variables) === Object.prototype;
}

// Every failure below defers, not only Defer: whatever goes wrong here, the
// sandbox gives the answer (and its error, if any) — this path never throws.

export function runCondition(p: Program, variables: JsonObject): boolean | Deferred {
  if (p.kind !== 'expr' || !usable(variables)) return DEFER;
  try {
    return Boolean(evalNode(p.node, new Map(), variables));
  } catch {
    return DEFER;
  }
}

export function runExpression(p: Program, variables: JsonObject): Json | Deferred {
  if (p.kind !== 'expr' || !usable(variables)) return DEFER;
  try {
    return normalise(evalNode(p.node, new Map(), variables));
  } catch {
    return DEFER;
  }
}

export function runScript(p: Program, variables: JsonObject): JsonObject | Deferred {
  if (p.kind !== 'script' || !usable(variables)) return DEFER;
  try {
    const scope = new Map<string, Value>();
    for (const s of p.body) {
      if (s.name === '__proto__') throw new Defer();
      let v = evalNode(s.value, scope, variables);
      if (s.op !== null) {
        const old = read(scope, variables, s.name);
        if (!isPrimitive(old) || !isPrimitive(v)) throw new Defer();
        v = binary(s.op, old, v);
      }
      scope.set(s.name, v);
    }
    const assigned: JsonObject = {};
    for (const [k, v] of scope) assigned[k] = normalise(v);
    return assigned;
  } catch {
    return DEFER;
  }
}
