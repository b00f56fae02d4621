import { describe, expect, it } from 'vitest';
import { UUID_RE, uuidv7 } from '../src/ids.js';

describe('uuidv7', () => {
  it('is a version 7, variant 10 UUID whose first 48 bits are the milliseconds', () => {
    const at = Date.UTC(2026, 10, 24, 12, 0, 0, 123);
    const id = uuidv7(at);
    expect(id).toMatch(UUID_RE);
    expect(id[14]).toBe('7');
    expect(['8', '9', 'a', 'b']).toContain(id[19]);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('is unique and, from one process, sorts in creation order', () => {
    const ids = Array.from({ length: 100_000 }, () => uuidv7());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});
