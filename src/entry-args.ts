/** How to start a module of this project in another process or thread, from source or built. */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const tsxLoader: { args?: string[] } = {};

/**
 * The `node` arguments that run `entry` (a path ending in `.ts` or `.js`):
 * through the tsx loader when it is TypeScript (tsx, vitest), as it is when
 * it has been compiled. `flags` go first (`--no-node-snapshot` for isolated-vm).
 */
export function entryArgs(entry: string, flags: readonly string[] = []): string[] {
  if (!entry.endsWith('.ts')) return [...flags, entry];
  tsxLoader.args ??= ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];
  return [...flags, ...tsxLoader.args, entry];
}
