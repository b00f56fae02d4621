export * from './types.js';
export { createBullTransport } from './bullmq.js';
export { createMemoryTransport } from './memory.js';
