/** Both doorbell transports honour the same contract. */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createBullTransport, createMemoryTransport, type Transport } from '../../src/queue/index.js';
import { eventually, REDIS_URL, uniqueName } from '../support/env.js';

const prefixes: string[] = [];

afterAll(async () => {
  const r = new Redis(REDIS_URL);
  for (const p of prefixes) {
    const keys = await r.keys(`${p}:*`);
    if (keys.length) await r.del(...keys);
  }
  r.disconnect();
});

const transports: Array<[string, () => Transport]> = [
  ['memory', () => createMemoryTransport()],
  [
    'bullmq',
    () => {
      const prefix = uniqueName('bt_queue');
      prefixes.push(prefix);
      return createBullTransport({ url: REDIS_URL, prefix });
    },
  ],
];

describe.each(transports)('%s transport', (_name, make) => {
  it('delivers every doorbell to a consumer, with bounded concurrency', async () => {
    const t = make();
    const seen: number[] = [];
    let active = 0;
    let maxActive = 0;
    const c = t.consume<{ n: number }>(
      'q1',
      async ({ n }) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 5));
        seen.push(n);
        active--;
      },
      { concurrency: 3 },
    );
    await t.queue<{ n: number }>('q1').addMany(Array.from({ length: 20 }, (_, n) => ({ n })));
    await eventually(async () => seen.length === 20);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(maxActive).toBeLessThanOrEqual(3);
    expect(maxActive).toBeGreaterThan(1);
    await c.close();
    await c.close();
    await t.close();
    await t.close();
  });

  it('delays a doorbell when asked', async () => {
    const t = make();
    const at: number[] = [];
    const c = t.consume<{ x: number }>('q2', async () => void at.push(Date.now()), { concurrency: 1 });
    const t0 = Date.now();
    await t.queue<{ x: number }>('q2').add({ x: 1 }, { delayMs: 300 });
    await eventually(async () => at.length === 1);
    expect(at[0]! - t0).toBeGreaterThanOrEqual(250);
    await c.close();
    await t.close();
  });

  it('retries a doorbell whose handler throws', async () => {
    const t = make();
    let calls = 0;
    const c = t.consume<{ y: number }>(
      'q3',
      async () => {
        calls++;
        if (calls < 3) throw new Error('transient');
      },
      { concurrency: 1 },
    );
    await t.queue<{ y: number }>('q3').add({ y: 1 });
    await eventually(async () => calls === 3, 10_000);
    await c.close();
    await t.close();
  });

  it('answers ping', async () => {
    const t = make();
    await expect(t.ping()).resolves.toBeUndefined();
    await t.close();
  });
});

describe('memory transport', () => {
  it('merges equal doorbells that are still waiting', async () => {
    const t = createMemoryTransport();
    const q = t.queue<{ instanceId: string }>('q');
    await q.addMany([{ instanceId: 'a' }, { instanceId: 'a' }, { instanceId: 'b' }, { instanceId: 'a' }]);
    const seen: string[] = [];
    const c = t.consume<{ instanceId: string }>('q', async ({ instanceId }) => void seen.push(instanceId), { concurrency: 1 });
    await eventually(async () => seen.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual(['a', 'b']);
    await c.close();
    await t.close();
  });
});

describe('bullmq transport', () => {
  it('fails ping when Redis is unreachable', async () => {
    const t = createBullTransport({ url: 'redis://127.0.0.1:1', prefix: uniqueName('bt_down') });
    const t0 = Date.now();
    await expect(t.ping()).rejects.toThrow(/redis/);
    expect(Date.now() - t0).toBeLessThan(1500);
    await t.close();
  });
});
