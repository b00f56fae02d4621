/**
 * Entry point of the sandbox process (see index.ts, "Process layout").
 *
 *     node --no-node-snapshot [--import tsx] child.ts '{"timeoutMs":…,"memoryLimitMb":…,"cacheSize":…}'
 *
 * It speaks frames on its standard input and output (frames.ts): a frame
 * `R` once the isolate is ready, then one frame `A<reply>` per request.
 */
import { serve } from '../frames.js';
import { createIsolateRunner } from './isolate.js';
import { decodeRequest, failureReply, Kind, messageOf } from '../protocol.js';

function main(): void {
  const options = JSON.parse(process.argv[2] ?? '{}') as { timeoutMs?: unknown; memoryLimitMb?: unknown; cacheSize?: unknown };
  const runner = createIsolateRunner({
    timeoutMs: Number(options.timeoutMs) || 1000,
    memoryLimitMb: Number(options.memoryLimitMb) || 64,
    cacheSize: Number(options.cacheSize) || 500,
  });
  // Build and harden the isolate before saying we are ready, so that the
  // first real evaluation does not pay for it inside its time limit.
  runner.evaluate({ kind: Kind.Condition, source: 'true', eager: '{}', shadowed: '', texts: new Map() });
  serve((request) => {
    try {
      return runner.evaluate(decodeRequest(request));
    } catch (e) {
      return failureReply('script_error', `the script sandbox received a bad request: ${messageOf(e)}`);
    }
  });
}

main();
