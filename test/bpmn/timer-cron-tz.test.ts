import { describe, expect, it } from 'vitest';
import { nextCycleDue, parseCycle, validTimerLiteral } from '../../src/bpmn/timer.js';

describe('cron cycles with seconds and a time zone', () => {
  const monday = new Date('2026-07-06T00:00:00Z'); // summer time in Europe and America

  it('reads a cron expression in UTC by default, with a seconds field', () => {
    expect(nextCycleDue(parseCycle('0 0 9 * * MON')!, monday)?.toISOString()).toBe('2026-07-06T09:00:00.000Z');
    expect(nextCycleDue(parseCycle('*/10 * * * * *')!, monday)?.toISOString()).toBe('2026-07-06T00:00:10.000Z');
  });

  it('honours a CRON_TZ= / TZ= prefix', () => {
    expect(nextCycleDue(parseCycle('CRON_TZ=Europe/Berlin 0 0 9 * * MON')!, monday)?.toISOString()).toBe('2026-07-06T07:00:00.000Z');
    expect(nextCycleDue(parseCycle('TZ=America/New_York 0 30 8 * * *')!, monday)?.toISOString()).toBe('2026-07-06T12:30:00.000Z');
    // Winter time: Berlin is UTC+1.
    expect(nextCycleDue(parseCycle('CRON_TZ=Europe/Berlin 0 0 9 * * *')!, new Date('2026-01-05T00:00:00Z'))?.toISOString()).toBe('2026-01-05T08:00:00.000Z');
  });

  it('rejects an unknown time zone at deploy time', () => {
    expect(parseCycle('CRON_TZ=Nowhere/Land 0 0 9 * * *')).toBeNull();
    expect(validTimerLiteral('cycle', 'CRON_TZ=Nowhere/Land 0 0 9 * * *')).toBe(false);
    expect(validTimerLiteral('cycle', 'CRON_TZ=Asia/Tokyo 0 0 9 * * *')).toBe(true);
  });
});
