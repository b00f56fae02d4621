/**
 * Issue 15 item 3: when the API's event loop lags past
 * BATON_MAX_EVENT_LOOP_DELAY_MS, its /v1 routes shed load with
 * `503 under_pressure` and Retry-After, while /health keeps answering (an
 * orchestrator must not restart a pod for being busy); it recovers by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { startEmbedded } from '../support/env.js';

describe('load shedding on event-loop lag', () => {
  let b: Baton;
  beforeAll(async () => {
    b = await startEmbedded({ BATON_MAX_EVENT_LOOP_DELAY_MS: '100', BATON_EXAMPLES: 'false' });
  });
  afterAll(async () => {
    await b?.close();
  });

  it('answers 503 under_pressure on /v1 while the loop lags, /health 200 throughout, and recovers', { timeout: 30_000 }, async () => {
    const inject = async (url: string) => {
      const r = await b.app!.inject({ method: 'GET', url });
      return { status: r.statusCode, headers: r.headers, body: r.json() as { code?: string } };
    };
    expect((await inject('/v1/process-definitions')).status).toBe(200);
    let shed: Awaited<ReturnType<typeof inject>> | null = null;
    const until = Date.now() + 15_000;
    while (!shed && Date.now() < until) {
      // a synchronous 300 ms block, as a runaway computation on the loop would be
      const end = Date.now() + 300;
      while (Date.now() < end) {
        // busy
      }
      await new Promise((r) => setImmediate(r));
      const r = await inject('/v1/process-definitions');
      expect((await inject('/health')).status).toBe(200);
      if (r.status === 503) shed = r;
    }
    expect(shed).not.toBeNull();
    expect(shed!.body.code).toBe('under_pressure');
    expect(shed!.headers['retry-after']).toBe('1');
    // no more lag: the next samples bring it back
    const back = Date.now() + 10_000;
    let status = 503;
    while (status === 503 && Date.now() < back) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await inject('/v1/process-definitions')).status;
    }
    expect(status).toBe(200);
  });
});
