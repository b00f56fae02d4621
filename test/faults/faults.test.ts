/**
 * The fault suite, short form (part of `npm test`): 200 instances of the mixed
 * workload (models/fault-load.bpmn) on 1 API, 3 step workers, 2 service
 * workers and 2 schedulers as separate processes, on a private Redis and a
 * private throwaway Postgres cluster, with a compressed fault schedule:
 * SIGKILL of a step worker, a service worker and a scheduler (each restarted),
 * FLUSHALL, a Redis restart, SIGTERM of a step worker mid-run, a Postgres
 * restart (while Redis is down, the API must keep answering). Every check
 * must end at 0 lost / 0 duplicated.
 *
 * The long form is `npm run test:faults` (faults.long.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { runFaultSuite } from './harness.js';

const N = Number(process.env.FAULTS_SHORT_INSTANCES ?? 200);

describe('fault suite (short form)', () => {
  it(`${N} instances survive killed workers, lost Redis data and a Postgres restart`, async () => {
    const r = await runFaultSuite({
      label: 'short',
      instances: N,
      postgres: 'private',
      startRate: 15,
      schedule: [
        // early: a killed service worker's claimed http jobs wait for their lock (60 s) to expire
        { atMs: 1_500, fault: 'kill-service' },
        { atMs: 3_000, fault: 'kill-step' },
        { atMs: 5_000, fault: 'kill-scheduler' },
        { atMs: 6_500, fault: 'redis-flushall' },
        { atMs: 8_000, fault: 'term-step' },
        { atMs: 10_000, fault: 'redis-restart' },
        { atMs: 12_500, fault: 'pg-restart' },
        { atMs: 15_000, fault: 'kill-step' },
      ],
      drainTimeoutMs: 150_000,
    });
    expect(r.crashes, 'processes that died on their own').toEqual([]);
    expect(r.uncleanStops, 'SIGTERMed processes that did not exit 0').toEqual([]);
    expect(r.stuck, 'stuck instances').toEqual([]);
    for (const row of r.rows) expect({ check: row.check, lost: row.lost, duplicated: row.duplicated }).toEqual({ check: row.check, lost: 0, duplicated: 0 });
    expect(Object.keys(r.faults).sort()).toEqual(['kill-scheduler', 'kill-service', 'kill-step', 'pg-restart', 'redis-flushall', 'redis-restart', 'term-step']);
  }, 300_000);
});
