/** `npm run test:faults`: the long form of the fault suite, alone. */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/faults/faults.long.test.ts'],
    pool: 'forks',
    execArgv: ['--no-node-snapshot'],
    maxWorkers: 1,
    testTimeout: 45 * 60_000,
    hookTimeout: 120_000,
  },
});
