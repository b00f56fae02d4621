/**
 * UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then randomness.
 * Time-ordered ids keep B-tree inserts local and let lists page by id in
 * creation order without a separate sort column.
 */
import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let seq = 0;

// Random bytes come from a pool refilled 4 KB at a time: the engine makes a
// dozen ids per instance, and one getrandom() system call per id cost more than
// the rest of the id (Node's own randomUUID() pools for the same reason).
const POOL = Buffer.allocUnsafe(4096);
let offset = POOL.length;
function random(n: number): number {
  if (offset + n > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const at = offset;
  offset += n;
  return at;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const out = new Uint8Array(16);

export function uuidv7(now: number = Date.now()): string {
  // Within one millisecond, a 12-bit counter (rand_a) keeps ids from one process
  // monotonic, so "order by id" is creation order for a single writer.
  if (now <= lastMs) {
    seq = (seq + 1) & 0xfff;
    if (seq === 0) lastMs += 1;
    now = lastMs;
  } else {
    lastMs = now;
    seq = POOL.readUInt16BE(random(2)) & 0x3ff;
  }
  const r = random(8);
  // 48-bit milliseconds, big-endian (too wide for bit operators: split it)
  const hi = Math.floor(now / 0x1000000);
  const lo = now % 0x1000000;
  out[0] = (hi >>> 16) & 0xff;
  out[1] = (hi >>> 8) & 0xff;
  out[2] = hi & 0xff;
  out[3] = (lo >>> 16) & 0xff;
  out[4] = (lo >>> 8) & 0xff;
  out[5] = lo & 0xff;
  out[6] = 0x70 | (seq >> 8);
  out[7] = seq & 0xff;
  for (let i = 0; i < 8; i++) out[8 + i] = POOL[r + i]!;
  out[8] = (out[8]! & 0x3f) | 0x80;
  const h = (i: number) => HEX[out[i]!]!;
  return `${h(0)}${h(1)}${h(2)}${h(3)}-${h(4)}${h(5)}-${h(6)}${h(7)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
