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
  });
});
