/**
 * The fault suite, long form: `npm run test:faults`.
 *
 * At least 2,000 instances (FAULTS_INSTANCES) of the mixed workload, with a
 * fault every few seconds: SIGKILL and SIGTERM of random step workers, service
 * workers and schedulers (restarted after a moment), Redis FLUSHALL and Redis
 * restarts, and one Postgres restart. By default the Postgres restart is the
 * real one, `pg_ctlcluster --skip-systemctl-redirect 15 main restart` of the
 * machine's shared cluster (the run keeps to its own schema) — which disturbs
 * whatever else uses that cluster at the time. FAULTS_PG=private runs a
 * throwaway cluster instead. Prints the check table; must end at 0 lost /
 * 0 duplicated.
 */
import { describe, expect, it } from 'vitest';
import { runFaultSuite } from './harness.js';

const N = Number(process.env.FAULTS_INSTANCES ?? 2000);
const PG = process.env.FAULTS_PG === 'private' ? 'private' : 'shared';

describe('fault suite (long form)', () => {
  it(`${N} instances under repeated faults (postgres: ${PG})`, async () => {
    const r = await runFaultSuite({
      label: 'long',
      instances: N,
      postgres: PG,
      startRate: Number(process.env.FAULTS_START_RATE ?? 12),
      schedule: 'random',
      drainTimeoutMs: 20 * 60_000,
    });
    expect(r.crashes, 'processes that died on their own').toEqual([]);
    expect(r.uncleanStops, 'SIGTERMed processes that did not exit 0').toEqual([]);
    expect(r.stuck, 'stuck instances').toEqual([]);
    for (const row of r.rows) expect({ check: row.check, lost: row.lost, duplicated: row.duplicated }).toEqual({ check: row.check, lost: 0, duplicated: 0 });
    expect(r.faults['pg-restart']).toBe(1);
  }, 45 * 60_000);
});
