/**
 * Issue 15 item 9: what each sandbox process (JavaScript and Python) is
 * allowed, read from /proc: no environment, its own empty owner-only
 * working directory (gone when the evaluator closes), no core dumps, no
 * regular file writes, a bounded number of descriptors.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { createEvaluator, createPythonEvaluator, type PythonEvaluator, type SandboxEvaluator } from '../../src/expressions/index.js';

const made: Array<SandboxEvaluator | PythonEvaluator> = [];
afterAll(() => {
  for (const e of made) e.close();
});

const limit = (limits: string, name: string) => {
  const line = limits.split('\n').find((l) => l.startsWith(name));
  return line?.slice(name.length).trim().split(/\s+/).slice(0, 2);
};

describe.each([
  ['JavaScript', () => createEvaluator({ fastPath: false })],
  ['Python', () => createPythonEvaluator({ fastPath: false })],
] as const)('the %s sandbox process', (_name, make) => {
  it('runs with no environment, in an empty directory of its own, without core dumps or file writes', { timeout: 60_000 }, async () => {
    const ev = make();
    made.push(ev);
    // one evaluation: the process is up
    ev.condition(_name === 'Python' ? 'True' : 'true', {});
    const pid = ev.sandboxPid();
    expect(pid).toBeGreaterThan(0);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).toBe('');
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    expect(cwd.startsWith(`${tmpdir()}/baton-sandbox-`)).toBe(true);
    expect(readdirSync(cwd)).toEqual([]);
    expect(statSync(cwd).mode & 0o777).toBe(0o700);
    const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
    expect(limit(limits, 'Max core file size')).toEqual(['0', '0']);
    expect(limit(limits, 'Max file size')).toEqual(['0', '0']);
    expect(limit(limits, 'Max open files')).toEqual(['1024', '1024']);
    ev.close();
    expect(existsSync(cwd)).toBe(false);
  });
});
