/**
 * `typeof name` of a name that is not declared anywhere must give
 * 'undefined'. In the sandbox it would throw: the `with ($scope)` Proxy
 * claims every name (so that assignments to new names are captured) and its
 * `get` throws `ReferenceError: name is not defined` for a name that is no
 * variable, and a Proxy cannot tell the read of a `typeof` from any other
 * read. So, before compiling, every `typeof <Identifier>` (also
 * parenthesised: `typeof (x)`) of the user's code is rewritten into a call
 * of a helper with a function that reads the name:
 *
 *     typeof count === 'number'   →   ᵀ(()=> count) === 'number'
 *
 * (one character more per `typeof`: see "Positions").
 *
 * `ᵀ` (U+1D40, or the next free letter of that block when the source spells
 * it somewhere) is resolved by the scope Proxy to a function of the current
 * evaluation (bootstrap.ts) that calls the reader and returns `typeof` of
 * its value; if the reader throws the very ReferenceError the Proxy threw
 * for a missing name, it returns 'undefined'. Any other error goes on: a
 * local in its temporal dead zone, a variable that is not JSON. The reader
 * is an arrow function written where the `typeof` was, so the name resolves
 * exactly as before: to a local (`let x`, a parameter, a function), to the
 * scope (a variable, or nothing), or to an allowed global (`Math`).
 * Nothing else changes: `typeof x.y` still throws when `x` is missing, as
 * in JavaScript, and reading a missing name outside `typeof` still throws.
 *
 * The source is parsed with acorn (as the body of a function, as V8 will
 * compile it), so strings, comments, regular expressions and template text
 * are never touched. When acorn cannot parse the source, the source is
 * compiled as it is (V8 reports its syntax error, or the `typeof` keeps
 * throwing as before); when V8 refuses the rewritten source, isolate.ts
 * compiles the original one, so syntax errors are always V8's own, on the
 * user's text.
 *
 * Security: the rewrite adds only a call of the helper and an arrow
 * function around a name that the user's code reads anyway. User code can
 * reach the helper (a function called through the scope gets the scope as
 * `this`, and the scope serves it), but the helper only calls the function
 * it is given and answers `typeof` of its result; it is a new function for
 * each evaluation, so nothing set on it outlives the evaluation. acorn runs
 * in the sandbox process, not in the isolate: it executes nothing, its work
 * is linear in the source, and a stuck process is killed by the host's
 * hard timeout like any other.
 *
 * Positions: `typeof` (6 characters) becomes `ᵀ(()=>` (6 characters) and a
 * `)` is inserted after the operand, so line breaks stay where they were,
 * and everything up to the operand's end keeps its line and column. What
 * follows on the operand's line is one column further right per rewritten
 * `typeof` before it; `shifts` lets isolate.ts move a reported column back.
 */
import { parse, type Node } from 'acorn';

/** One `)` inserted on `line` (1-based): columns from `column` on, in the rewritten text, are one more than in the user's. */
export interface Shift {
  line: number;
  column: number;
}

export interface TypeofRewrite {
  /** the rewritten function body */
  body: string;
  /** the helper's name: the scope serves the helper under it (bootstrap.ts) */
  helper: string;
  /** inserted characters, in the order of the text */
  shifts: Shift[];
}

/** Candidates for the helper's name: one UTF-16 unit each, letters that may start an identifier (U+1D40-U+1D6A, modifier letters). */
const FIRST_HELPER = 0x1d40;
const LAST_HELPER = 0x1d6a;

/** The text acorn parses: the body as the body of a sloppy function, as V8 compiles it. */
const PARSE_PREFIX = '(function(){';
const PARSE_SUFFIX = '\n})';

type AnyNode = Node & Record<string, unknown>;

/**
 * Rewrites every `typeof <Identifier>` of a function body (see above), or
 * returns null when there is none or the body does not parse.
 * `userOffset` is where the user's text starts in `body` (the expression
 * prefix `return (` of conditions and expressions), so that shifts on line 1
 * are in the user's columns.
 */
export function rewriteTypeof(body: string, userOffset = 0): TypeofRewrite | null {
  // The keyword cannot be spelled with escapes, so a body without the word has none.
  if (!body.includes('typeof')) return null;
  let program: Node;
  try {
    program = parse(PARSE_PREFIX + body + PARSE_SUFFIX, {
      ecmaVersion: 'latest',
      sourceType: 'script',
      preserveParens: true,
      allowHashBang: false,
    });
  } catch {
    // A syntax error (V8 will report it), a construct acorn does not know, a stack overflow on deep nesting.
    return null;
  }
  const shift = PARSE_PREFIX.length;
  // The body must be exactly the function's body, not close it ("}); …").
  // (V8's own check in isolate.ts would refuse that too.)
  const [statement] = (program as unknown as { body: AnyNode[] }).body;
  const wrapper = statement?.type === 'ExpressionStatement' ? (statement.expression as AnyNode) : undefined;
  const fn = wrapper?.type === 'ParenthesizedExpression' ? (wrapper.expression as AnyNode) : undefined;
  const block = fn?.type === 'FunctionExpression' ? (fn.body as AnyNode) : undefined;
  if ((program as unknown as { body: AnyNode[] }).body.length !== 1 || block === undefined || block.start !== shift - 1 || block.end !== shift + body.length + 2) {
    return null;
  }
  const names = new Set<string>();
  /** [start of `typeof`, end of the operand] in `body` */
  const sites: Array<[number, number]> = [];
  const stack: unknown[] = [program];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (const v of value) stack.push(v);
      continue;
    }
    if (value === null || typeof value !== 'object' || typeof (value as { type?: unknown }).type !== 'string') continue;
    const node = value as AnyNode;
    if (node.type === 'Identifier') names.add(node.name as string);
    if (node.type === 'UnaryExpression' && node.operator === 'typeof') {
      let operand = node.argument as AnyNode;
      while (operand.type === 'ParenthesizedExpression') operand = operand.expression as AnyNode;
      const start = node.start - shift;
      const end = (node.argument as AnyNode).end - shift;
      if (operand.type === 'Identifier' && body.startsWith('typeof', start) && end <= body.length) sites.push([start, end]);
    }
    for (const key of Object.keys(node)) {
      const child = node[key];
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  if (sites.length === 0) return null;
  let helper: string | undefined;
  for (let c = FIRST_HELPER; c <= LAST_HELPER && helper === undefined; c++) {
    if (!names.has(String.fromCharCode(c))) helper = String.fromCharCode(c);
  }
  if (helper === undefined) return null;

  sites.sort((a, b) => a[0] - b[0]);
  const lineStarts = lineStartsOf(body);
  const shifts: Shift[] = [];
  let out = '';
  let at = 0;
  // Edits in text order: `typeof` → `ᵀ(()=>` at each start, `)` at each
  // end. Sites never overlap (an operand is a name, it holds no `typeof`).
  const edits: Array<{ pos: number; replace: number; text: string }> = [];
  for (const [start, end] of sites) {
    edits.push({ pos: start, replace: 6, text: `${helper}(()=>` });
    edits.push({ pos: end, replace: 0, text: ')' });
  }
  edits.sort((a, b) => a.pos - b.pos || b.replace - a.replace);
  let inserted = 0;
  let lastLine = 0;
  for (const edit of edits) {
    if (edit.pos < at) return null; // cannot happen; never emit a broken text
    out += body.slice(at, edit.pos) + edit.text;
    at = edit.pos + edit.replace;
    if (edit.replace === 0) {
      const line = lineOf(lineStarts, edit.pos);
      if (line !== lastLine) inserted = 0;
      lastLine = line;
      const offset = line === 1 ? userOffset : 0;
      // the column of the first character after the `)`, in the rewritten text (1-based)
      const column = edit.pos - lineStarts[line - 1]! - offset + inserted + 2;
      inserted++;
      shifts.push({ line, column });
    }
  }
  out += body.slice(at);
  return { body: out, helper, shifts };
}

/**
 * Maps a position reported on the rewritten text back to the user's text.
 * A column at an inserted `)` itself goes to the end of the operand.
 */
export function originalPosition(shifts: readonly Shift[], line: number | undefined, column: number | undefined): number | undefined {
  if (line === undefined || column === undefined) return column;
  let moved = 0;
  for (const s of shifts) {
    if (s.line === line && column >= s.column - 1) moved++;
  }
  return column - moved;
}

const LINE_BREAK = /\r\n|[\n\r\u2028\u2029]/g;

/** Offsets where each line of `text` starts (line 1 at 0). */
function lineStartsOf(text: string): number[] {
  const starts = [0];
  for (const m of text.matchAll(LINE_BREAK)) starts.push(m.index + m[0].length);
  return starts;
}

/** 1-based line of offset `pos`. */
function lineOf(starts: readonly number[], pos: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
