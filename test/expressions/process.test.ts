/**
 * The sandbox runs in a separate process (src/expressions/index.ts): user
 * code that makes V8 abort, or a sandbox process that dies or stops
 * answering, must end as an ExpressionError in the host, and the next
 * evaluation must work.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvaluator, ExpressionError, type SandboxEvaluator } from '../../src/expressions/index.js';
import { failure } from '../support/expressions.js';

// Sources here call a function (`Boolean(…)`, `Number(…)`) so that they go to
// the sandbox process, not the in-process fast path (simple.ts): these tests
// are about that process.


function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !alive(pid);
}

describe('code that grows one hash table without end', () => {
  // A generous time limit: these must end on memory, also on a loaded machine.
  let ev: SandboxEvaluator;
  /** Rounds that ended with V8 aborting the sandbox process. */
  let processesLost = 0;
  beforeAll(() => {
    ev = createEvaluator({ memoryLimitMb: 64, timeoutMs: 20_000 });
  });
  afterAll(() => ev.close());

  // Each of these usually makes V8 abort the process that hosts the isolate
  // (a fatal CALL_AND_RETRY_LAST out-of-memory error): in-process, that was
  // the whole Baton worker. Depending on GC timing isolated-vm sometimes
  // disposes the isolate first; the result must be the same either way.
  it.each([
    ['a Map', 'const m = new Map(); let i = 0; while (true) m.set(i, i++)'],
    ['a Set', 'const s = new Set(); let i = 0; while (true) s.add(i++)'],
    ['an object used as a dictionary', 'const o = {}; let i = 0; while (true) o["k" + i] = i++'],
    ['a sparse array', 'const a = []; let i = 0; while (true) { a[i * 1000] = i; i++ }'],
  ])('%s ends as script_memory, three times in a row, and the next evaluation works', { timeout: 120_000 }, (_label, source) => {
    for (let round = 0; round < 3; round++) {
      const before = ev.sandboxPid();
      const e = failure(() => ev.script(source, {}));
      expect(e.code).toBe('script_memory');
      expect(e.message).toBe('the script exceeded the memory limit of 64 MB');
      expect(ev.expression('Number(n + 1)', { n: round })).toBe(round + 1);
      if (ev.sandboxPid() !== before) processesLost++;
    }
    // The new process is hardened like the first one.
    ev.script('Array.prototype.push = null; Object.prototype.x = 1', {});
    expect(ev.expression('[typeof ({}).x, [].push(1)]', {})).toEqual(['undefined', 1]);
  });

  it('took the sandbox process down in some of those rounds (what used to abort Baton itself)', () => {
    expect(processesLost).toBeGreaterThan(0);
  });

  it('also at a memory limit of 128 MB', { timeout: 60_000 }, () => {
    const big = createEvaluator({ memoryLimitMb: 128, timeoutMs: 20_000 });
    try {
      expect(failure(() => big.script('const m = new Map(); let i = 0; while (true) m.set(i, i++)', {})).code).toBe('script_memory');
      expect(big.condition('a > 1', { a: 2 })).toBe(true);
    } finally {
      big.close();
    }
  });
});

describe('a sandbox process that dies or hangs', () => {
  let ev: SandboxEvaluator;
  beforeAll(() => {
    ev = createEvaluator({ timeoutMs: 300, hardTimeoutMs: 800 });
  });
  afterAll(() => ev.close());

  it('is replaced when it was killed between evaluations', async () => {
    expect(ev.condition('Boolean(true)', {})).toBe(true);
    const pid = ev.sandboxPid();
    expect(pid).toBeGreaterThan(0);
    expect(pid).toBeGreaterThan(0); // never signal pid 0: that is our own process group
    process.kill(pid!, 'SIGKILL');
    // Once the bridge has seen it die (a request sent before that fails as
    // script_crash: a documented limit), the next evaluation starts a new one.
    for (let i = 0; i < 100 && ev.sandboxPid() === pid; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ev.sandboxPid()).toBeUndefined();
    expect(ev.expression('Number(a * 2)', { a: 21 })).toBe(42);
    expect(ev.sandboxPid()).not.toBe(pid);
  });

  it('ends the evaluation it was running as script_crash when it dies of something else', () => {
    expect(ev.condition('Boolean(true)', {})).toBe(true);
    const pid = ev.sandboxPid() ?? 0;
    expect(pid).toBeGreaterThan(0); // never signal pid 0: that is our own process group
    const slow = createEvaluator({ timeoutMs: 10_000 });
    try {
      expect(slow.condition('Boolean(true)', {})).toBe(true);
      const target = slow.sandboxPid() ?? 0;
      expect(target).toBeGreaterThan(0);
      // The host thread is blocked during the evaluation: another process delivers the signal.
      spawn('/bin/sh', ['-c', `sleep 0.5; kill -SEGV ${target}`], { stdio: 'ignore' }).unref();
      const e = failure(() => slow.script('while (true) {}', {}));
      expect(e.code).toBe('script_crash');
      expect(e.message).toContain('SIGSEGV');
      expect(slow.expression('String("still here")', {})).toBe('still here');
      expect(slow.sandboxPid()).not.toBe(target);
    } finally {
      slow.close();
    }
    expect(ev.sandboxPid()).toBe(pid);
  });

  it('is killed when it stops answering, with script_timeout, and the next evaluation works', () => {
    expect(ev.condition('Boolean(true)', {})).toBe(true);
    const pid = ev.sandboxPid() ?? 0;
    expect(pid).toBeGreaterThan(0); // never signal pid 0: that is our own process group
    process.kill(pid, 'SIGSTOP');
    const started = performance.now();
    const e = failure(() => ev.condition('Boolean(true)', {}));
    const waited = performance.now() - started;
    expect(e.code).toBe('script_timeout');
    expect(waited).toBeGreaterThanOrEqual(750);
    expect(ev.condition('Boolean(x === 1)', { x: 1 })).toBe(true);
    expect(ev.sandboxPid()).not.toBe(pid);
    expect(alive(pid)).toBe(false);
  });
});

describe('messages larger than the shared buffer', () => {
  let ev: SandboxEvaluator;
  beforeAll(() => {
    ev = createEvaluator({ timeoutMs: 10_000 });
  });
  afterAll(() => ev.close());

  it('carries big variables, results and sources both ways', () => {
    const text = 'é'.repeat(300_000); // 600,000 UTF-8 bytes
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ i, label: `row ${i}` }));
    expect(ev.expression('Number(text.length + rows.length)', { text, rows })).toBe(320_000);
    expect(ev.expression('String(text + "!")', { text })).toBe(`${text}!`);
    const result = ev.script('copy = rows.map(r => r.i * 2); rows.push({ i: -1 })', { rows });
    expect((result.assigned.copy as number[]).length).toBe(20_000);
    expect((result.assigned.rows as unknown[]).at(-1)).toEqual({ i: -1 });
    const source = `big = ${JSON.stringify('x'.repeat(400_000))}.length`;
    expect(ev.script(source, {}).assigned).toEqual({ big: 400_000 });
    // And the small path still works after the big ones.
    expect(ev.expression('String("ok")', {})).toBe('ok');
  });
});

describe('variables', () => {
  let ev: SandboxEvaluator;
  beforeAll(() => {
    ev = createEvaluator();
  });
  afterAll(() => ev.close());

  it('are sent when the source spells a name with escapes', () => {
    expect(ev.condition('\\u0061mount > 1000', { amount: 1500 })).toBe(true);
    expect(ev.expression('\\u{62}ig.length', { big: [1, 2, 3] })).toBe(3);
  });

  it('that cannot be serialised fail only when read', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(ev.condition('ok', { ok: true, self: cyclic } as never)).toBe(true);
    // `self` appears in the source but is not read (short-circuit).
    expect(ev.condition('ok || typeof self === "object"', { ok: true, self: cyclic } as never)).toBe(true);
    expect(failure(() => ev.expression('self', { self: cyclic } as never)).message).toContain('variable self is not JSON');
  });
});

describe('process lifecycle', () => {
  const fixture = fileURLToPath(new URL('./fixtures/host.ts', import.meta.url));
  const tsx = createRequire(import.meta.url).resolve('tsx');
  const run = (mode: string) =>
    spawnSync(process.execPath, ['--no-node-snapshot', '--import', tsx, fixture, mode], { encoding: 'utf8', timeout: 30_000 });

  it('close() leaves nothing that keeps the process alive, and stops the sandbox process', async () => {
    const out = run('close');
    expect(out.error).toBeUndefined();
    expect(out.signal).toBeNull();
    expect(out.status).toBe(0);
    const { pid, result } = JSON.parse(out.stdout) as { pid: number; result: number };
    expect(result).toBe(42);
    expect(pid).toBeGreaterThan(0);
    expect(await waitUntilGone(pid, 5000)).toBe(true);
  });

  it('a process that never calls close() still exits, and so does its sandbox process', async () => {
    const out = run('no-close');
    expect(out.signal).toBeNull();
    expect(out.status).toBe(0);
    const { pid } = JSON.parse(out.stdout) as { pid: number };
    expect(await waitUntilGone(pid, 5000)).toBe(true);
  });

  it('the sandbox process goes away when the host process is killed', async () => {
    const host = spawn(process.execPath, ['--no-node-snapshot', '--import', tsx, fixture, 'hang'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      host.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) resolve(text);
      });
      host.on('error', reject);
      host.on('exit', () => reject(new Error(`host exited early: ${text}`)));
    });
    const { pid } = JSON.parse(line) as { pid: number };
    expect(alive(pid)).toBe(true);
    host.kill('SIGKILL');
    expect(await waitUntilGone(pid, 5000)).toBe(true);
  });
});
