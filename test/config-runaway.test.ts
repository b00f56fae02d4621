/** BATON_MAX_CALL_DEPTH and BATON_SHUTDOWN_GRACE_MS (issue 13): defaults, and bad values refused at start-up. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('config: call depth and shutdown grace', () => {
  it('defaults to a call depth of 50 and a grace of 10 s', () => {
    expect(loadConfig({})).toMatchObject({ maxCallDepth: 50, shutdownGraceMs: 10_000 });
    expect(loadConfig({ BATON_MAX_CALL_DEPTH: '5', BATON_SHUTDOWN_GRACE_MS: '2500' })).toMatchObject({ maxCallDepth: 5, shutdownGraceMs: 2500 });
  });

  it.each(['0', '-1', '2.5', 'ten', '1e9'])('refuses BATON_MAX_CALL_DEPTH=%s', (v) => {
    expect(() => loadConfig({ BATON_MAX_CALL_DEPTH: v })).toThrow(expect.objectContaining({ code: 'invalid_config', message: expect.stringContaining('BATON_MAX_CALL_DEPTH') }));
  });

  it.each(['0', '-5', 'soon'])('refuses BATON_SHUTDOWN_GRACE_MS=%s', (v) => {
    expect(() => loadConfig({ BATON_SHUTDOWN_GRACE_MS: v })).toThrow(/BATON_SHUTDOWN_GRACE_MS/);
  });
});

describe('config: multi-instance size limit', () => {
  it('defaults to 10,000 and takes a value', () => {
    expect(loadConfig({})).toMatchObject({ maxMultiInstances: 10_000 });
    expect(loadConfig({ BATON_MAX_MI_INSTANCES: '500' })).toMatchObject({ maxMultiInstances: 500 });
  });

  it.each(['0', '-1', 'many', '2000000'])('refuses BATON_MAX_MI_INSTANCES=%s', (v) => {
    expect(() => loadConfig({ BATON_MAX_MI_INSTANCES: v })).toThrow(/BATON_MAX_MI_INSTANCES/);
  });
});

describe('config: shortest timer cycle', () => {
  it('defaults to 1 s; 0 turns the check off', () => {
    expect(loadConfig({})).toMatchObject({ minTimerIntervalMs: 1000 });
    expect(loadConfig({ BATON_MIN_TIMER_INTERVAL_MS: '0' })).toMatchObject({ minTimerIntervalMs: 0 });
    expect(() => loadConfig({ BATON_MIN_TIMER_INTERVAL_MS: '-1' })).toThrow(/BATON_MIN_TIMER_INTERVAL_MS/);
  });
});
