/**
 * The frame loop of a sandbox process (child.ts, python/child.ts): a u32
 * little-endian length, then that many bytes, on standard input and output.
 * In: one request per frame (protocol.ts). Out: a frame `R` once the process
 * is ready, then one frame `A<reply>` per request, in order.
 *
 * It is a plain synchronous loop with blocking reads, no event loop: while an
 * evaluation runs, nothing else in the process needs to happen. It exits the
 * process when its input ends, that is when the bridge (or the whole Baton
 * process) goes away. It never touches `process.stdin`/`process.stdout`:
 * Node would switch the descriptors to non-blocking mode.
 */
import { readSync, writeSync } from 'node:fs';

const IN = 0;
const OUT = 1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function isAgain(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'EAGAIN';
}

/** Fills `buffer` from standard input; exits the process when the input ends. */
function readFully(buffer: Buffer, length: number): void {
  let offset = 0;
  while (offset < length) {
    let n: number;
    try {
      n = readSync(IN, buffer, offset, length - offset, null);
    } catch (e) {
      // The descriptor is blocking when Node starts us (libuv makes the
      // standard descriptors of a child blocking); this is only a safety net.
      if (!isAgain(e)) throw e;
      Atomics.wait(sleeper, 0, 0, 1);
      continue;
    }
    if (n === 0) process.exit(0);
    offset += n;
  }
}

function writeFully(buffer: Buffer): void {
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += writeSync(OUT, buffer, offset, buffer.length - offset);
    } catch (e) {
      if (!isAgain(e)) throw e;
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
}

export function send(type: string, text: string): void {
  const length = 1 + Buffer.byteLength(text, 'utf8');
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32LE(length, 0);
  frame.write(type, 4, 'latin1');
  frame.write(text, 5, 'utf8');
  writeFully(frame);
}

/** Says `R`, then answers each request frame with `A<handle(frame)>`, forever. */
export function serve(handle: (request: Buffer) => string): never {
  send('R', '');
  const header = Buffer.allocUnsafe(4);
  let body = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    readFully(header, 4);
    const length = header.readUInt32LE(0);
    if (body.length < length) body = Buffer.allocUnsafe(Math.max(length, body.length * 2));
    readFully(body, length);
    send('A', handle(body.subarray(0, length)));
    // Do not keep a one-off huge request buffer alive.
    if (body.length > 4 * 1024 * 1024) body = Buffer.allocUnsafe(64 * 1024);
  }
}
