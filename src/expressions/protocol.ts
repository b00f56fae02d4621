/**
 * The byte format of one evaluation request, shared by the host (sandbox.ts,
 * which encodes) and the sandbox process (child.ts, which decodes). The
 * bridge thread in between forwards the bytes without looking at them.
 *
 *     u8  kind                    0 condition, 1 expression, 2 script
 *     u32 count                   number of strings that follow
 *     count × (u32 byteLength, UTF-8 bytes):
 *         source, eager, shadowed, then name₁, text₁, name₂, text₂, …
 *
 * All integers are little-endian. `eager`, `shadowed` and the (name, text)
 * pairs are the arguments of `run` in bootstrap.ts: `text` is the JSON of a
 * fetched variable, or `!message` when it cannot be serialised.
 *
 * A reply is the UTF-8 string `run` returns (`T`, `F`, `R<json>`, `S<json>`,
 * `E<json>`); failures outside user code (syntax errors, limits, a dead
 * sandbox process) use the same `E{"code","message","line","column"}` form
 * (`line` and `column` are 1-based positions in the user's source, absent
 * when unknown).
 */

export const Kind = {
  Condition: 0,
  Expression: 1,
  Script: 2,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface Request {
  kind: Kind;
  source: string;
  eager: string;
  shadowed: string;
  /** Variables fetched on first read, as name → JSON text (or `!message`). */
  texts: Map<string, string>;
}

/** Bytes of the fixed header (kind + count). */
const HEADER = 5;

/**
 * An upper bound of the encoded size, computed without encoding: a UTF-16
 * code unit never takes more than 3 UTF-8 bytes.
 */
export function requestSizeBound(strings: readonly string[]): number {
  let size = HEADER;
  for (const s of strings) size += 4 + s.length * 3;
  return size;
}

/**
 * Writes the request into `target` from offset 0 and returns the number of
 * bytes written. The caller guarantees `requestSizeBound(strings) <= target.length`
 * (then no string can be truncated).
 */
export function encodeRequestInto(target: Buffer, kind: Kind, strings: readonly string[]): number {
  target[0] = kind;
  target.writeUInt32LE(strings.length, 1);
  let offset = HEADER;
  for (const s of strings) {
    const written = s.length === 0 ? 0 : target.write(s, offset + 4, 'utf8');
    target.writeUInt32LE(written, offset);
    offset += 4 + written;
  }
  return offset;
}

/** Encodes the request into a new Buffer of its exact size. */
export function encodeRequest(kind: Kind, strings: readonly string[]): Buffer {
  let size = HEADER;
  for (const s of strings) size += 4 + Buffer.byteLength(s, 'utf8');
  const buffer = Buffer.allocUnsafe(size);
  encodeRequestInto(buffer, kind, strings);
  return buffer;
}

/** Decodes a request; throws on malformed input (a bug, never user input). */
export function decodeRequest(bytes: Buffer): Request {
  if (bytes.length < HEADER) throw new Error('truncated request');
  const kind = bytes[0];
  if (kind !== Kind.Condition && kind !== Kind.Expression && kind !== Kind.Script) throw new Error(`unknown request kind ${String(kind)}`);
  const count = bytes.readUInt32LE(1);
  if (count < 3 || count % 2 !== 1) throw new Error('malformed request');
  const strings: string[] = [];
  let offset = HEADER;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.length) throw new Error('truncated request');
    const length = bytes.readUInt32LE(offset);
    offset += 4;
    if (offset + length > bytes.length) throw new Error('truncated request');
    strings.push(bytes.toString('utf8', offset, offset + length));
    offset += length;
  }
  const [source = '', eager = '{}', shadowed = ''] = strings;
  const texts = new Map<string, string>();
  for (let i = 3; i + 1 < strings.length; i += 2) texts.set(strings[i] ?? '', strings[i + 1] ?? '');
  return { kind, source, eager, shadowed, texts };
}

/** The `E` reply of a failure. */
export function failureReply(code: string, message: string, line?: number, column?: number): string {
  return 'E' + JSON.stringify({ code, message, line, column });
}

/** An `E` reply read back on the host (see failureReply); a garbled one reads as a plain script failure. */
export interface Failure {
  code: string;
  /** null when the reply had none */
  message: string | null;
  /** 1-based, only when the reply gave a positive integer */
  line: number | undefined;
  column: number | undefined;
}

export function readFailure(reply: string): Failure {
  let f: { code?: unknown; message?: unknown; line?: unknown; column?: unknown };
  try {
    f = JSON.parse(reply.slice(1)) as typeof f;
  } catch {
    f = {};
  }
  const position = (n: unknown) => (typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : undefined);
  return {
    code: typeof f.code === 'string' ? f.code : 'script_error',
    message: typeof f.message === 'string' ? f.message : null,
    line: position(f.line),
    column: position(f.column),
  };
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  try {
    return String(e);
  } catch {
    return 'unknown error';
  }
}

const LINE_BREAK = /\r\n|[\n\r\u2028\u2029]/;

function lineCount(source: string): number {
  return source.split(LINE_BREAK).length;
}

/**
 * A position reported by V8 may point at our closing suffix; keep it inside
 * the user's text. The column goes with the line: it is dropped when the
 * line had to be moved, or when it is not a positive integer.
 */
export function clampPosition(line: unknown, column: unknown, source: string): { line?: number; column?: number } {
  if (typeof line !== 'number' || !Number.isInteger(line) || line < 1) return {};
  const last = lineCount(source);
  if (line > last) return { line: last };
  if (typeof column !== 'number' || !Number.isInteger(column) || column < 1) return { line };
  return { line, column };
}
