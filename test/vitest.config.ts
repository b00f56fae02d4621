import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    // the long form of the fault suite runs alone: npm run test:faults
    exclude: ['**/node_modules/**', 'test/faults/faults.long.test.ts'],
    pool: 'forks',
    // isolated-vm on Node >= 20 needs V8's startup snapshot off.
    execArgv: ['--no-node-snapshot'],
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
