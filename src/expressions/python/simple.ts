/**
 * The Python fast path: a small interpreter for the Python most SpiffArena
 * conditions and script tasks are made of (`amount > 1000`,
 * `status in ('new', 'open') and approved`, `total = price * qty`),
 * evaluated over the JSON variables in this process, without the round trip
 * to the Pyodide sandbox process (see index.ts, "The fast path").
 *
 * Why this is safe: no user code runs. The source is parsed into a tree of
 * a closed set of node kinds and evaluated by this file's own code over
 * JSON data. Whenever the answer might not be exactly CPython's (an
 * exception Python would raise, an integer past 2^53, a float that is not
 * finite, a name that is not a variable, text Postgres cannot store, …) the
 * evaluation gives up (`DEFER`) and the sandbox evaluates the source as
 * before, with its exact errors and limits. So the fast path never fails:
 * it answers, or defers (test/expressions/python-simple.test.ts checks the
 * answers differentially against the sandbox).
 *
 * Grammar (a subset of Python 3; anything else is not compiled):
 *   script      := line*   where each line is blank, a comment, or
 *                  stmt (';' stmt)* ';'? starting at column 0
 *   stmt        := NAME ('=' | '+=' | '-=' | '*=' | '/=' | '//=' | '%=' | '**=') expression
 *   expression  := disjunction ('if' disjunction 'else' expression)?
 *   disjunction := conjunction ('or' conjunction)*
 *   conjunction := inversion ('and' inversion)*
 *   inversion   := 'not' inversion | comparison
 *   comparison  := sum (compop sum)*  — the last operand of `in`/`not in`
 *                  may be a list or tuple display `[a, b]`, `(a, b)`
 *   compop      := '==' '!=' '<' '<=' '>' '>=' 'in' 'not in' 'is' 'is not'
 *   sum / term  := left-assoc '+' '-' / '*' '/' '//' '%'
 *   factor      := ('-' | '+') factor | power
 *   power       := primary ('**' factor)?
 *   primary     := atom ('[' expression ']')*
 *   atom        := int | float | 'str' | "str" | True | False | None | NAME | '(' expression ')'
 * Strings: single-line, no prefix, escapes \\ \' \" \n \t \r only. Numbers:
 * decimal, no underscores, no leading zeros. Names: ASCII, not starting
 * with `__` (the sandbox refuses those). An expression is one line, as the
 * sandbox's `eval` of the stripped source wants it (inside brackets,
 * newlines are whitespace). A comment runs to the end of its line.
 *
 * Values: JSON numbers arrive as JS numbers, and Python sees them through
 * JSON: an integral number (below 1e21) is a Python int, any other a float.
 * Here an int is a JS number (always integral, |n| ≤ 2^53 - 1, never -0) and
 * a float a `PyFloat` box, so that `7 // 2` (3) and `7.5 // 2` (3.0), `-0.0`
 * and `0`, or the type check of a script's result are Python's. Lists and
 * dicts are the caller's JSON arrays and objects, read and never changed.
 */
import type { Json, JsonObject } from '../../errors.js';

/** The fast path cannot answer for sure: ask the sandbox. */
export const DEFER: unique symbol = Symbol('defer');
export type Deferred = typeof DEFER;

/** A Python float (a Python int is a plain JS number). */
class PyFloat {
  constructor(readonly v: number) {}
}

type Container = Json[] | { [key: string]: Json };
type Value = null | boolean | number | string | PyFloat | Container;

type ArithOp = '+' | '-' | '*' | '/' | '//' | '%' | '**';
type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in' | 'is' | 'is not';

type Node =
  | { k: 'lit'; v: Value }
  | { k: 'name'; name: string }
  | { k: 'sub'; obj: Node; key: Node }
  | { k: 'neg' | 'pos' | 'not'; a: Node }
  | { k: 'bin'; op: ArithOp; a: Node; b: Node }
  | { k: 'and' | 'or'; a: Node; b: Node }
  | { k: 'cmp'; first: Node; ops: CmpOp[]; rest: Node[] }
  | { k: 'cond'; test: Node; yes: Node; no: Node }
  | { k: 'seq'; items: Node[] };

interface Statement {
  name: string;
  /** the operator of an augmented assignment, null for '=' */
  op: ArithOp | null;
  value: Node;
}

export type Program =
  | { kind: 'expr'; node: Node }
  | {
      kind: 'script';
      body: Statement[];
      /** the sandbox is sent the variables whose name occurs in the source (all of them when it has a non-ASCII character) */
      source: string;
      everything: boolean;
    };

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Longest string the fast path builds (`+`, `*`); longer ones are the sandbox's, with its memory limit. */
const MAX_STRING = 100_000;
/** How many JSON nodes one evaluation may visit (comparisons, copies, the scan of a script's variables). */
const NODE_BUDGET = 20_000;
/** How deep it follows JSON data. */
const MAX_DATA_DEPTH = 100;

// ---- tokens ---------------------------------------------------------------

type Token =
  | { t: 'num'; v: number | PyFloat }
  | { t: 'str'; v: string }
  | { t: 'name'; v: string }
  | { t: 'kw'; v: string }
  | { t: 'op'; v: string }
  | { t: 'nl' }
  | { t: 'end' };

const KEYWORDS = new Set(
  (
    'False None True and as assert async await break class continue def del elif else except finally for from global if import in is ' +
    'lambda nonlocal not or pass raise return try while with yield'
  ).split(' '),
);

const OPERATORS = ['**=', '//=', '**', '//', '==', '!=', '<=', '>=', '+=', '-=', '*=', '/=', '%=', '<', '>', '+', '-', '*', '/', '%', '(', ')', '[', ']', ',', ';', '='];
const ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r' };
const NUMBER = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/;
/** NUL (Python refuses it in source), CR (line endings are not ours to guess), any surrogate (Pyodide's conversion is not ours either) */
const REFUSED_IN_SOURCE = /[\u0000\r\uD800-\uDFFF]/;
const NON_ASCII = /[^\u0000-\u007f]/;

class Unsupported extends Error {}

function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}

function tokenize(src: string, script: boolean): Token[] {
  const out: Token[] = [];
  const n = src.length;
  let i = 0;
  let depth = 0; // brackets: inside them, newlines are whitespace
  let lineStart = true;
  while (i < n) {
    if (lineStart) {
      // A statement must start at column 0; a blank or comment line may be indented.
      let j = i;
      while (j < n && (src[j] === ' ' || src[j] === '\t')) j++;
      if (j > i && j < n && src[j] !== '\n' && src[j] !== '#') throw new Unsupported();
      lineStart = false;
      i = j;
      continue;
    }
    const c = src.charCodeAt(i);
    if (c === 10) {
      if (depth === 0) {
        if (!script) throw new Unsupported();
        if (out.length > 0 && out[out.length - 1]!.t !== 'nl') out.push({ t: 'nl' });
        lineStart = true;
      }
      i++;
      continue;
    }
    if (c === 32 || c === 9) {
      i++;
      continue;
    }
    if (c === 35) {
      // '#': a comment, up to the end of the line
      while (i < n && src.charCodeAt(i) !== 10) i++;
      continue;
    }
    if ((c >= 48 && c <= 57) || (c === 46 && i + 1 < n && src.charCodeAt(i + 1) >= 48 && src.charCodeAt(i + 1) <= 57)) {
      const m = NUMBER.exec(src.slice(i, i + 400));
      if (!m) throw new Unsupported();
      const text = m[0];
      const next = i + text.length < n ? src.charCodeAt(i + text.length) : -1;
      // 1_000, 0x1f, 1j, 1e, 1if, 1.real, 1..x: not ours
      if (next >= 0 && (isNameChar(next) || next === 46 || next > 127)) throw new Unsupported();
      // 01 is a SyntaxError, 00 is 0: leave both
      if (/^0[0-9]/.test(text)) throw new Unsupported();
      const v = Number(text);
      if (/[.eE]/.test(text)) {
        if (!Number.isFinite(v)) throw new Unsupported();
        out.push({ t: 'num', v: new PyFloat(v) });
      } else {
        if (!(v <= MAX_SAFE)) throw new Unsupported();
        out.push({ t: 'num', v });
      }
      i += text.length;
      continue;
    }
    if (c === 39 || c === 34) {
      const q = src[i]!;
      if (src[i + 1] === q && src[i + 2] === q) throw new Unsupported(); // triple-quoted
      let s = '';
      i++;
      for (;;) {
        if (i >= n) throw new Unsupported();
        const ch = src[i]!;
        if (ch === q) {
          i++;
          break;
        }
        if (ch === '\n') throw new Unsupported();
        if (ch === '\\') {
          const e = ESCAPES[src[i + 1] ?? ''];
          if (e === undefined) throw new Unsupported();
          s += e;
          i += 2;
          continue;
        }
        s += ch;
        i++;
      }
      out.push({ t: 'str', v: s });
      continue;
    }
    if (isNameStart(c)) {
      let j = i + 1;
      while (j < n && isNameChar(src.charCodeAt(j))) j++;
      // a non-ASCII letter (NFKC folding), a string prefix (f'…', r'…', b'…'): not ours
      if (j < n && (src.charCodeAt(j) > 127 || src[j] === "'" || src[j] === '"')) throw new Unsupported();
      const word = src.slice(i, j);
      if (KEYWORDS.has(word)) out.push({ t: 'kw', v: word });
      else if (word.startsWith('__')) throw new Unsupported(); // the sandbox refuses these names
      else out.push({ t: 'name', v: word });
      i = j;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op === undefined) throw new Unsupported();
    if (op === '(' || op === '[') depth++;
    else if (op === ')' || op === ']') {
      if (--depth < 0) throw new Unsupported();
    }
    out.push({ t: 'op', v: op });
    i += op.length;
  }
  out.push({ t: 'end' });
  return out;
}

// ---- parser ---------------------------------------------------------------

const CMP_OPS = new Set(['==', '!=', '<', '<=', '>', '>=']);
const AUGMENTED: Record<string, ArithOp | null> = { '=': null, '+=': '+', '-=': '-', '*=': '*', '/=': '/', '//=': '//', '%=': '%', '**=': '**' };
/** Tokens that would continue an operand after a list or tuple display. */
const CONTINUES = new Set(['+', '-', '*', '/', '//', '%', '**', '[', '(']);

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.tokens[this.i]!;
    if (t.t !== 'end') this.i++;
    return t;
  }
  private isOp(v: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.t === 'op' && t.v === v;
  }
  private isKw(v: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.t === 'kw' && t.v === v;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) throw new Unsupported();
    this.i++;
  }
  private enter(): void {
    if (++this.depth > 100) throw new Unsupported();
  }

  atEnd(): boolean {
    return this.peek().t === 'end';
  }

  expression(): Node {
    this.enter();
    let node = this.disjunction();
    if (this.isKw('if')) {
      this.i++;
      const test = this.disjunction();
      if (!this.isKw('else')) throw new Unsupported();
      this.i++;
      node = { k: 'cond', test, yes: node, no: this.expression() };
    }
    this.depth--;
    return node;
  }

  private disjunction(): Node {
    let a = this.conjunction();
    while (this.isKw('or')) {
      this.i++;
      a = { k: 'or', a, b: this.conjunction() };
    }
    return a;
  }

  private conjunction(): Node {
    let a = this.inversion();
    while (this.isKw('and')) {
      this.i++;
      a = { k: 'and', a, b: this.inversion() };
    }
    return a;
  }

  private inversion(): Node {
    if (this.isKw('not')) {
      this.i++;
      this.enter();
      const a = this.inversion();
      this.depth--;
      return { k: 'not', a };
    }
    return this.comparison();
  }

  private compOp(): CmpOp | null {
    const t = this.peek();
    if (t.t === 'op' && CMP_OPS.has(t.v)) {
      this.i++;
      return t.v as CmpOp;
    }
    if (t.t !== 'kw') return null;
    if (t.v === 'in') {
      this.i++;
      return 'in';
    }
    if (t.v === 'not' && this.isKw('in', 1)) {
      this.i += 2;
      return 'not in';
    }
    if (t.v === 'is') {
      this.i++;
      if (this.isKw('not')) {
        this.i++;
        return 'is not';
      }
      return 'is';
    }
    return null;
  }

  private comparison(): Node {
    const first = this.sum();
    const ops: CmpOp[] = [];
    const rest: Node[] = [];
    for (;;) {
      const op = this.compOp();
      if (op === null) break;
      const operand = op === 'in' || op === 'not in' ? this.display() ?? this.sum() : this.sum();
      ops.push(op);
      rest.push(operand);
      if (operand.k === 'seq' && this.peek().t === 'kw' && ['in', 'not', 'is'].includes((this.peek() as { v: string }).v)) throw new Unsupported();
      if (operand.k === 'seq' && this.peek().t === 'op' && CMP_OPS.has((this.peek() as { v: string }).v)) throw new Unsupported();
    }
    if (ops.length === 0) return first;
    // `x is 1`, `x is 'a'`: a SyntaxWarning and identity of ints and strings; not ours
    const operands = [first, ...rest];
    for (let j = 0; j < ops.length; j++) {
      if (ops[j] !== 'is' && ops[j] !== 'is not') continue;
      for (const o of [operands[j]!, operands[j + 1]!]) {
        if (o.k === 'lit' && (typeof o.v === 'number' || typeof o.v === 'string' || o.v instanceof PyFloat)) throw new Unsupported();
      }
    }
    return { k: 'cmp', first, ops, rest };
  }

  /**
   * A list or tuple display as the right operand of `in` (`x in ('a', 'b')`),
   * or null (with nothing consumed) for a parenthesised expression or another operand.
   */
  private display(): Node | null {
    const open = this.peek();
    if (open.t !== 'op' || (open.v !== '[' && open.v !== '(')) return null;
    const close = open.v === '[' ? ']' : ')';
    const start = this.i;
    this.i++;
    const items: Node[] = [];
    let comma = false;
    while (!this.isOp(close)) {
      items.push(this.expression());
      if (this.isOp(',')) {
        this.i++;
        comma = true;
      } else if (!this.isOp(close)) throw new Unsupported();
    }
    this.i++;
    if (open.v === '(' && items.length > 0 && !comma) {
      // `(expr)`: a parenthesised operand, parsed again as one
      this.i = start;
      return null;
    }
    const after = this.peek();
    if (after.t === 'op' && CONTINUES.has(after.v)) throw new Unsupported();
    return { k: 'seq', items };
  }

  private sum(): Node {
    let a = this.term();
    for (;;) {
      const t = this.peek();
      if (t.t !== 'op' || (t.v !== '+' && t.v !== '-')) return a;
      this.i++;
      a = { k: 'bin', op: t.v, a, b: this.term() };
    }
  }

  private term(): Node {
    let a = this.factor();
    for (;;) {
      const t = this.peek();
      if (t.t !== 'op' || (t.v !== '*' && t.v !== '/' && t.v !== '//' && t.v !== '%')) return a;
      this.i++;
      a = { k: 'bin', op: t.v, a, b: this.factor() };
    }
  }

  private factor(): Node {
    const t = this.peek();
    if (t.t === 'op' && (t.v === '-' || t.v === '+')) {
      this.i++;
      this.enter();
      const a = this.factor();
      this.depth--;
      return { k: t.v === '-' ? 'neg' : 'pos', a };
    }
    return this.power();
  }

  private power(): Node {
    const a = this.primary();
    if (!this.isOp('**')) return a;
    this.i++;
    this.enter();
    const b = this.factor();
    this.depth--;
    return { k: 'bin', op: '**', a, b };
  }

  private primary(): Node {
    let node = this.atom();
    for (;;) {
      if (this.isOp('[')) {
        this.i++;
        const key = this.expression();
        this.expectOp(']');
        node = { k: 'sub', obj: node, key };
      } else if (this.isOp('(')) {
        throw new Unsupported(); // a call
      } else {
        return node;
      }
    }
  }

  private atom(): Node {
    const t = this.next();
    switch (t.t) {
      case 'num':
      case 'str':
        return { k: 'lit', v: t.v };
      case 'name':
        return { k: 'name', name: t.v };
      case 'kw':
        if (t.v === 'True') return { k: 'lit', v: true };
        if (t.v === 'False') return { k: 'lit', v: false };
        if (t.v === 'None') return { k: 'lit', v: null };
        throw new Unsupported();
      case 'op':
        if (t.v === '(') {
          const e = this.expression();
          this.expectOp(')'); // a tuple `(a, b)` outside `in` is not ours
          return e;
        }
        throw new Unsupported();
      default:
        throw new Unsupported();
    }
  }

  script(): Statement[] {
    const body: Statement[] = [];
    for (;;) {
      while (this.peek().t === 'nl') this.i++;
      if (this.atEnd()) return body;
      // one line: stmt (';' stmt)* ';'?
      for (;;) {
        const name = this.next();
        if (name.t !== 'name') throw new Unsupported();
        const op = this.next();
        if (op.t !== 'op' || !Object.hasOwn(AUGMENTED, op.v)) throw new Unsupported();
        const value = this.expression();
        body.push({ name: name.v, op: AUGMENTED[op.v]!, value });
        if (this.isOp(';')) {
          this.i++;
          if (this.peek().t === 'nl' || this.atEnd()) break;
          continue;
        }
        if (this.peek().t === 'nl' || this.atEnd()) break;
        throw new Unsupported();
      }
    }
  }
}

/** Depth of the syntax tree, about that of Python's AST for the same source. */
function treeDepth(n: Node): number {
  switch (n.k) {
    case 'lit':
    case 'name':
      return 1;
    case 'sub':
      return 1 + Math.max(treeDepth(n.obj), treeDepth(n.key));
    case 'neg':
    case 'pos':
    case 'not':
      return 1 + treeDepth(n.a);
    case 'bin':
    case 'and':
    case 'or':
      return 1 + Math.max(treeDepth(n.a), treeDepth(n.b));
    case 'cmp':
      return 1 + Math.max(treeDepth(n.first), ...n.rest.map(treeDepth));
    case 'cond':
      return 1 + Math.max(treeDepth(n.test), treeDepth(n.yes), treeDepth(n.no));
    case 'seq':
      return 1 + Math.max(0, ...n.items.map(treeDepth));
  }
}

/**
 * Parses the source, or returns null when it is outside the grammar (the
 * sandbox will take it). `maxDepth` bounds the syntax tree's depth: the
 * sandbox walks the tree with Python recursion before compiling it, so a
 * deep tree may be a RecursionError there under a low recursion limit.
 */
export function compileSimple(source: string, kind: 'expr' | 'script', maxDepth = 40): Program | null {
  if (typeof source !== 'string' || source.length > 4000 || REFUSED_IN_SOURCE.test(source)) return null;
  try {
    if (kind === 'script') {
      const body = new Parser(tokenize(source, true)).script();
      for (const s of body) if (treeDepth(s.value) + 2 > maxDepth) return null;
      return { kind: 'script', body, source, everything: NON_ASCII.test(source) };
    }
    // the sandbox evaluates the stripped source
    const p = new Parser(tokenize(source.replace(/^[ \t\n]+|[ \t\n]+$/g, ''), false));
    const node = p.expression();
    if (!p.atEnd() || treeDepth(node) + 1 > maxDepth) return null;
    return { kind: 'expr', node };
  } catch (err) {
    if (err instanceof Unsupported || err instanceof RangeError) return null;
    throw err;
  }
}

// ---- evaluation -------------------------------------------------------------

/** Thrown to give up; never leaves this module. */
const STOP = { stop: true };
function stop(): never {
  throw STOP;
}

let budget = 0;
function spend(): void {
  if (--budget < 0) stop();
}

function isPlainArray(v: object): v is Json[] {
  return Array.isArray(v) && Object.getPrototypeOf(v) === Array.prototype;
}
function isPlainObject(v: object): v is { [key: string]: Json } {
  return !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
}

/** A number as Python sees it after JSON: an int when integral (below 1e21), else a float. */
function fromNumber(n: number): number | PyFloat {
  if (Number.isInteger(n)) {
    if (n <= MAX_SAFE && n >= -MAX_SAFE) return n === 0 ? 0 : n;
    if (n < 1e21 && n > -1e21) stop(); // an int Python holds exactly and this path cannot
    return new PyFloat(n);
  }
  if (!Number.isFinite(n)) stop(); // JSON makes it None; not worth the case
  return new PyFloat(n);
}

/** A JSON value of the caller's as a value here (containers stay as they are). */
function fromJson(v: unknown): Value {
  switch (typeof v) {
    case 'number':
      return fromNumber(v);
    case 'string':
    case 'boolean':
      return v;
    case 'object':
      if (v === null) return null;
      if (isPlainArray(v) || isPlainObject(v)) return v;
      return stop();
    default:
      return stop(); // undefined (a hole, a missing value), functions, BigInt
  }
}

function isNumeric(v: Value): v is number | boolean | PyFloat {
  return typeof v === 'number' || typeof v === 'boolean' || v instanceof PyFloat;
}
function toNumber(v: number | boolean | PyFloat): number {
  return typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : v.v;
}
/** An int operand (bool is an int subclass), or null. */
function asInt(v: Value): number | null {
  return typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : null;
}

function truthy(v: Value): boolean {
  if (v === null) return false;
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'number':
      return v !== 0;
    case 'string':
      return v.length > 0;
  }
  if (v instanceof PyFloat) return v.v !== 0;
  if (Array.isArray(v)) return v.length > 0;
  for (const key in v) if (Object.hasOwn(v, key)) return true;
  return false;
}

const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** What the sandbox refuses to return: NUL, an unpaired surrogate (Postgres cannot store them). */
function badText(s: string): boolean {
  return s.includes('\u0000') || LONE_SURROGATE.test(s);
}

/** Python's `a == b` on the values here. */
function equal(a: Value, b: Value): boolean {
  if (isNumeric(a)) return isNumeric(b) && toNumber(a) === toNumber(b);
  if (typeof a === 'string' || a === null) return a === b;
  if (typeof b !== 'object' || b === null || b instanceof PyFloat) return false;
  spend();
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equal(fromJson(a[i]), fromJson(b[i]))) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !equal(fromJson(a[k]), fromJson(b[k]))) return false;
  }
  return true;
}

/** Python's ordering of two strings: by code point (JS compares UTF-16 units). */
function compareStrings(a: string, b: string): number {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return i < a.length ? 1 : j < b.length ? -1 : 0;
}

function order(op: CmpOp, a: Value, b: Value): boolean {
  let c: number;
  if (isNumeric(a) && isNumeric(b)) {
    const x = toNumber(a);
    const y = toNumber(b);
    c = x < y ? -1 : x > y ? 1 : 0;
  } else if (typeof a === 'string' && typeof b === 'string') {
    c = compareStrings(a, b);
  } else {
    return stop(); // TypeError in Python (or list ordering, not ours)
  }
  switch (op) {
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    default:
      return c >= 0;
  }
}

/** Python's `x in container`; `items` when the container is a display. */
function contains(container: Value, x: Value, items: Value[] | null): boolean {
  if (items !== null) {
    for (const item of items) if (equal(item, x)) return true;
    return false;
  }
  if (typeof container === 'string') {
    if (typeof x !== 'string' || LONE_SURROGATE.test(x)) return stop();
    return container.includes(x);
  }
  if (container === null || typeof container !== 'object' || container instanceof PyFloat) return stop();
  if (Array.isArray(container)) {
    for (const e of container) {
      spend();
      if (equal(fromJson(e), x)) return true;
    }
    return false;
  }
  if (typeof x === 'string') return Object.hasOwn(container, x);
  if (x !== null && typeof x === 'object' && !(x instanceof PyFloat)) return stop(); // unhashable
  return false; // numbers, bools and None hash, and equal no string key
}

function compare(op: CmpOp, a: Value, b: Value, items: Value[] | null): boolean {
  switch (op) {
    case '==':
      return equal(a, b);
    case '!=':
      return !equal(a, b);
    case 'in':
      return contains(b, a, items);
    case 'not in':
      return !contains(b, a, items);
    case 'is':
    case 'is not': {
      // identity is certain only for the singletons None, True and False
      if (!(a === null || typeof a === 'boolean' || b === null || typeof b === 'boolean')) stop();
      return (a === b) === (op === 'is');
    }
    default:
      return order(op, a, b);
  }
}

function int(r: number): number {
  if (!(r <= MAX_SAFE && r >= -MAX_SAFE)) stop(); // Python's ints are exact beyond 2^53
  return r === 0 ? 0 : r;
}
function float(r: number): PyFloat {
  if (!Number.isFinite(r)) stop(); // inf, nan, or an OverflowError
  return new PyFloat(r);
}
function zeroWithSignOf(v: number): number {
  return v < 0 || Object.is(v, -0) ? -0 : 0;
}

/** CPython's float `//` and `%` (float_divmod): the remainder takes the divisor's sign. */
function floatDivmod(x: number, y: number): [number, number] {
  let mod = x % y; // fmod, exact
  let div = (x - mod) / y;
  if (mod !== 0) {
    if (y < 0 !== mod < 0) {
      mod += y;
      div -= 1;
    }
  } else {
    mod = zeroWithSignOf(y);
  }
  let floordiv: number;
  if (div !== 0) {
    floordiv = Math.floor(div);
    if (div - floordiv > 0.5) floordiv += 1;
  } else {
    floordiv = zeroWithSignOf(x / y);
  }
  return [floordiv, mod];
}

function repeat(s: string, n: number): string {
  if (n <= 0 || s.length === 0) return '';
  if (s.length * n > MAX_STRING) stop();
  // `s * 2` with s = '\uDC00…\uD800' would pair the surrogates in JS, not in Python
  if (n > 1 && isHigh(s.charCodeAt(s.length - 1)) && isLow(s.charCodeAt(0))) stop();
  return s.repeat(n);
}
function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function arithmetic(op: ArithOp, a: Value, b: Value): Value {
  if (isNumeric(a) && isNumeric(b)) {
    const x = toNumber(a);
    const y = toNumber(b);
    if (a instanceof PyFloat || b instanceof PyFloat) {
      switch (op) {
        case '+':
          return float(x + y);
        case '-':
          return float(x - y);
        case '*':
          return float(x * y);
        case '/':
          if (y === 0) stop(); // ZeroDivisionError
          return float(x / y);
        case '//':
          if (y === 0) stop();
          return float(floatDivmod(x, y)[0]);
        case '%':
          if (y === 0) stop();
          return float(floatDivmod(x, y)[1]);
        default:
          return stop(); // float powers: libm's pow and V8's may differ in the last bit
      }
    }
    switch (op) {
      case '+':
        return int(x + y);
      case '-':
        return int(x - y);
      case '*':
        return int(x * y);
      case '/':
        if (y === 0) stop();
        return float(x / y); // both exact doubles: one correctly rounded division, as CPython's
      case '//': {
        if (y === 0) stop();
        const r = x % y;
        let q = (x - r) / y; // exact: x - r is a multiple of y
        if (r !== 0 && r < 0 !== y < 0) q -= 1;
        return int(q);
      }
      case '%': {
        if (y === 0) stop();
        let r = x % y;
        if (r !== 0 && r < 0 !== y < 0) r += y;
        return int(r);
      }
      case '**': {
        if (y < 0) stop(); // a float result
        let result = 1;
        let base = x;
        let e = y;
        while (e > 0) {
          if (e % 2 === 1) result = int(result * base);
          e = Math.floor(e / 2);
          if (e > 0) base = int(base * base);
        }
        return result;
      }
    }
  }
  if (typeof a === 'string' && typeof b === 'string' && op === '+') {
    if (a.length + b.length > MAX_STRING) stop();
    if (a.length > 0 && b.length > 0 && isHigh(a.charCodeAt(a.length - 1)) && isLow(b.charCodeAt(0))) stop();
    return a + b;
  }
  if (op === '*') {
    if (typeof a === 'string') {
      const n = asInt(b);
      if (n !== null) return repeat(a, n);
    } else if (typeof b === 'string') {
      const n = asInt(a);
      if (n !== null) return repeat(b, n);
    }
  }
  return stop(); // a TypeError, list concatenation, string formatting: the sandbox's
}

function subscript(obj: Value, key: Value): Value {
  if (typeof obj === 'string') {
    const i = asInt(key);
    if (i === null || SURROGATE.test(obj)) return stop(); // Python indexes code points
    const j = i < 0 ? i + obj.length : i;
    if (j < 0 || j >= obj.length) return stop(); // IndexError
    return obj[j]!;
  }
  if (obj === null || typeof obj !== 'object' || obj instanceof PyFloat) return stop();
  if (Array.isArray(obj)) {
    const i = asInt(key);
    if (i === null) return stop();
    const j = i < 0 ? i + obj.length : i;
    if (j < 0 || j >= obj.length) return stop();
    return fromJson(obj[j]);
  }
  if (typeof key !== 'string' || !Object.hasOwn(obj, key)) return stop(); // KeyError, or an unhashable key
  return fromJson(obj[key]);
}

type Scope = Map<string, Value> | null;

function read(scope: Scope, vars: JsonObject, name: string): Value {
  if (scope !== null) {
    const v = scope.get(name);
    if (v !== undefined) return v;
  }
  // not a variable: a NameError, or one of the sandbox's builtins and modules
  if (!Object.hasOwn(vars, name)) return stop();
  return fromJson(vars[name]);
}

function evaluate(n: Node, scope: Scope, vars: JsonObject): Value {
  switch (n.k) {
    case 'lit':
      return n.v;
    case 'name':
      return read(scope, vars, n.name);
    case 'sub':
      return subscript(evaluate(n.obj, scope, vars), evaluate(n.key, scope, vars));
    case 'not':
      return !truthy(evaluate(n.a, scope, vars));
    case 'neg':
    case 'pos': {
      const a = evaluate(n.a, scope, vars);
      if (!isNumeric(a)) return stop();
      if (a instanceof PyFloat) return n.k === 'neg' ? new PyFloat(-a.v) : a;
      const x = toNumber(a);
      return n.k === 'neg' ? int(-x) : x;
    }
    case 'bin':
      return arithmetic(n.op, evaluate(n.a, scope, vars), evaluate(n.b, scope, vars));
    case 'and': {
      const a = evaluate(n.a, scope, vars);
      return truthy(a) ? evaluate(n.b, scope, vars) : a;
    }
    case 'or': {
      const a = evaluate(n.a, scope, vars);
      return truthy(a) ? a : evaluate(n.b, scope, vars);
    }
    case 'cond':
      return truthy(evaluate(n.test, scope, vars)) ? evaluate(n.yes, scope, vars) : evaluate(n.no, scope, vars);
    case 'cmp': {
      let left = evaluate(n.first, scope, vars);
      for (let i = 0; i < n.ops.length; i++) {
        const operand = n.rest[i]!;
        let right: Value;
        let items: Value[] | null = null;
        if (operand.k === 'seq') {
          // Python builds the whole tuple or list before looking into it
          items = operand.items.map((item) => evaluate(item, scope, vars));
          right = null;
        } else {
          right = evaluate(operand, scope, vars);
        }
        if (!compare(n.ops[i]!, left, right, items)) return false;
        left = right;
      }
      return true;
    }
    case 'seq':
      return stop(); // only as the operand of `in`
  }
}

/** The JSON the sandbox would return for a value (containers copied), or stop. */
function toJson(v: Value): Json {
  if (v instanceof PyFloat) return v.v; // -0.0 is '-0.0' in Python's JSON, -0 once parsed
  if (typeof v === 'string') {
    if (badText(v)) stop();
    return v;
  }
  if (v === null || typeof v !== 'object') return v;
  return copyJson(v, 0);
}

function copyJson(v: unknown, depth: number): Json {
  spend();
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) stop();
      return v === 0 ? 0 : v; // JSON sends -0 as 0, an int
    case 'string':
      if (badText(v)) stop();
      return v;
    case 'boolean':
      return v;
    case 'object': {
      if (v === null) return null;
      if (depth > MAX_DATA_DEPTH) stop();
      if (isPlainArray(v)) {
        const out: Json[] = [];
        for (let i = 0; i < v.length; i++) out.push(copyJson(v[i], depth + 1)); // a hole is undefined: stop
        return out;
      }
      if (!isPlainObject(v)) stop();
      const out: JsonObject = {};
      for (const k of Object.keys(v)) {
        if (k === '__proto__' || badText(k)) stop();
        out[k] = copyJson(v[k], depth + 1);
      }
      return out;
    }
    default:
      return stop();
  }
}

/**
 * Whether the sandbox would find a sent variable's JSON unchanged by the
 * script (`dumps` of the new value equals that of the value passed in):
 * the same JSON structure, keys in the same order.
 */
function sameJson(a: unknown, b: unknown, depth: number): boolean {
  spend();
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number' || tb === 'number') {
    // a number and another value, or two numbers: JSON's null for NaN and infinities is not worth the case
    if (ta !== tb) {
      if (a === null || b === null || ta === 'undefined' || tb === 'undefined') stop();
      return false;
    }
    if (!Number.isFinite(a) || !Number.isFinite(b)) stop();
    return a === b; // -0 and 0 are both the int 0
  }
  if (ta !== 'object' || tb !== 'object') {
    if (ta === 'undefined' || tb === 'undefined' || ta === 'function' || tb === 'function' || ta === 'symbol' || tb === 'symbol') stop();
    return a === b;
  }
  if (a === b) return true; // the same object (or both null)
  if (a === null || b === null) return false;
  if (depth > MAX_DATA_DEPTH) stop();
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], bb[i], depth + 1)) return false;
    return true;
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false;
    if (!sameJson((a as Record<string, unknown>)[ka[i]!], (b as Record<string, unknown>)[kb[i]!], depth + 1)) return false;
  }
  return true;
}

/** A primitive variable's Python type after JSON (NaN and infinities are null). */
function inputType(v: null | boolean | number | string): string {
  if (v === null) return 'none';
  if (typeof v === 'number') return !Number.isFinite(v) ? 'none' : Number.isInteger(v) && Math.abs(v) < 1e21 ? 'int' : 'float';
  return typeof v;
}
function valueType(v: Value): string {
  if (v === null) return 'none';
  if (typeof v === 'number') return 'int';
  if (v instanceof PyFloat) return 'float';
  if (typeof v === 'object') return 'container';
  return typeof v;
}

/** Whether the sandbox would leave a sent variable out of `assigned`: its new value equals the old, of the same type. */
function unchanged(old: unknown, now: Value): boolean {
  if (old !== null && typeof old === 'object') {
    if (now === null || typeof now !== 'object' || now instanceof PyFloat) return false;
    return sameJson(old, now, 0);
  }
  const before = old as null | boolean | number | string;
  if (inputType(before) !== valueType(now)) return false;
  if (before === null || (typeof before === 'number' && !Number.isFinite(before))) return true; // None is None
  return before === (now instanceof PyFloat ? now.v : now);
}

/** Whether the sandbox is sent the variable (requestStrings in evaluator.ts skips what JSON.stringify drops). */
function sent(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

/**
 * The sandbox turns every variable it was sent back into JSON after a
 * script and fails when one holds text Postgres cannot store; the fast path
 * answers only when none does (and when all are plain JSON it can follow).
 */
function scan(v: unknown, depth: number): void {
  spend();
  switch (typeof v) {
    case 'string':
      if (badText(v)) stop();
      return;
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'function':
    case 'symbol':
      return; // null, or left out, by JSON.stringify
    case 'object':
      if (v === null) return;
      if (depth > MAX_DATA_DEPTH) stop();
      if (isPlainArray(v)) {
        for (const x of v) scan(x, depth + 1);
        return;
      }
      if (!isPlainObject(v)) stop();
      for (const k of Object.keys(v)) {
        if (badText(k)) stop();
        scan(v[k], depth + 1);
      }
      return;
    default:
      stop(); // BigInt: the sandbox's request fails
  }
}

/** Variables the sandbox could not be sent as they are: its to report. */
function usable(variables: unknown): variables is JsonObject {
  return variables !== null && typeof variables === 'object' && !Array.isArray(variables) && Object.getPrototypeOf(variables) === Object.prototype;
}

// Every failure below defers, not only STOP: whatever goes wrong here, the
// sandbox gives the answer (and its error, if any). This path never throws.

export function runCondition(p: Program, variables: JsonObject): boolean | Deferred {
  if (p.kind !== 'expr' || !usable(variables)) return DEFER;
  budget = NODE_BUDGET;
  try {
    return truthy(evaluate(p.node, null, variables));
  } catch {
    return DEFER;
  }
}

export function runExpression(p: Program, variables: JsonObject): Json | Deferred {
  if (p.kind !== 'expr' || !usable(variables)) return DEFER;
  budget = NODE_BUDGET;
  try {
    return toJson(evaluate(p.node, null, variables));
  } catch {
    return DEFER;
  }
}

export function runScript(p: Program, variables: JsonObject): JsonObject | Deferred {
  if (p.kind !== 'script' || !usable(variables)) return DEFER;
  budget = NODE_BUDGET;
  try {
    const scope = new Map<string, Value>();
    for (const s of p.body) {
      let v = evaluate(s.value, scope, variables);
      if (s.op !== null) v = arithmetic(s.op, read(scope, variables, s.name), v);
      scope.set(s.name, v);
    }
    for (const key of Object.keys(variables)) {
      if (!p.everything && !p.source.includes(key)) continue;
      const v = variables[key];
      if (!sent(v)) continue;
      if (key === '__builtins__') stop();
      scan(v, 0);
    }
    const assigned: JsonObject = {};
    for (const [name, v] of scope) {
      if (Object.hasOwn(variables, name) && sent(variables[name]) && unchanged(variables[name], v)) continue;
      assigned[name] = toJson(v);
    }
    return assigned;
  } catch {
    return DEFER;
  }
}
