import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('config', () => {
  it('is embedded with neither URL, distributed with both', () => {
    const e = loadConfig({});
    expect(e).toMatchObject({ mode: 'embedded', host: '127.0.0.1', port: 3000, deployExamples: true, dataDir: './.baton' });
    const d = loadConfig({ DATABASE_URL: 'postgres://x/y', REDIS_URL: 'redis://z' });
    expect(d).toMatchObject({ mode: 'distributed', host: '0.0.0.0', deployExamples: false });
    expect(Object.isFrozen(d)).toBe(true);
  });

  it('refuses half a distributed setup and malformed numbers', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://x/y' })).toThrow(/both/);
    expect(() => loadConfig({ REDIS_URL: 'redis://z' })).toThrow(/both/);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ STEP_CONCURRENCY: '0' })).toThrow(/STEP_CONCURRENCY/);
    expect(() => loadConfig({ MIGRATE_ON_START: 'maybe' })).toThrow(/MIGRATE_ON_START/);
  });

  it('reads overrides', () => {
    expect(loadConfig({ PORT: '8080', STEP_CONCURRENCY: '3', MIGRATE_ON_START: 'false', BATON_EXAMPLES: 'no' })).toMatchObject({
      port: 8080,
      stepConcurrency: 3,
      migrateOnStart: false,
      deployExamples: false,
    });
    expect(loadConfig({})).toMatchObject({ apiInlineSteps: true, serviceLockMs: 15_000 });
    expect(loadConfig({ BATON_API_INLINE_STEPS: 'false', SERVICE_LOCK_MS: '5000' })).toMatchObject({ apiInlineSteps: false, serviceLockMs: 5000 });
    expect(() => loadConfig({ SERVICE_LOCK_MS: '10' })).toThrow(/SERVICE_LOCK_MS/);
  });

  it('has input limits with documented defaults, read from BATON_MAX_* and validated', () => {
    expect(loadConfig({}).limits).toEqual({ maxModelBytes: 10 * 1024 * 1024, maxBodyBytes: 1024 * 1024, maxJsonDepth: 64, maxPageSize: 1000, maxEventLoopDelayMs: 1000, maxVariableReadBytes: 1024 * 1024 });
    const c = loadConfig({ BATON_MAX_MODEL_BYTES: '2048', BATON_MAX_BODY_BYTES: '4096', BATON_MAX_JSON_DEPTH: '8', BATON_MAX_PAGE_SIZE: '25', BATON_MAX_EVENT_LOOP_DELAY_MS: '0' });
    expect(c.limits).toEqual({ maxModelBytes: 2048, maxBodyBytes: 4096, maxJsonDepth: 8, maxPageSize: 25, maxEventLoopDelayMs: 0, maxVariableReadBytes: 1024 * 1024 });
    expect(Object.isFrozen(c.limits)).toBe(true);
    expect(() => loadConfig({ BATON_MAX_MODEL_BYTES: '10MB' })).toThrow(/BATON_MAX_MODEL_BYTES/);
    expect(() => loadConfig({ BATON_MAX_BODY_BYTES: '10' })).toThrow(/BATON_MAX_BODY_BYTES must be an integer from 1024/);
    expect(() => loadConfig({ BATON_MAX_JSON_DEPTH: '1' })).toThrow(/BATON_MAX_JSON_DEPTH/);
    expect(() => loadConfig({ BATON_MAX_PAGE_SIZE: '0' })).toThrow(/BATON_MAX_PAGE_SIZE/);
    expect(() => loadConfig({ BATON_MAX_PAGE_SIZE: '1000001' })).toThrow(/BATON_MAX_PAGE_SIZE/);
    expect(() => loadConfig({ BATON_MAX_MODEL_BYTES: '99999999999999999999' })).toThrow(/BATON_MAX_MODEL_BYTES/);
  });
});
