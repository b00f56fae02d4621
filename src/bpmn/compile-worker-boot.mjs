// Starts the compile thread's entry (compile-worker.ts or .js). A worker
// thread does not get its parent's module loader, so running from
// TypeScript sources (tsx, vitest) registers tsx here first.
import { workerData } from 'node:worker_threads';

if (workerData.tsx) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
