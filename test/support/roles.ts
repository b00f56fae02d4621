/** Baton's roles as real child processes (`workers/<script>.ts`), as in production, for the tests that spawn them. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface RoleProcess {
  name: string;
  child: ChildProcess;
  /** the last chunks of its stdout and stderr, for failure messages */
  output: string[];
  /** resolves when it exits, with the time it did */
  exited: Promise<{ code: number | null; signal: string | null; at: number }>;
}

/** Starts `workers/<script>.ts` with `env` over this process's environment, keeping the last `keep` output chunks. */
export function spawnRole(script: string, env: Record<string, string>, name = script, keep = 200): RoleProcess {
  const child = spawn(process.execPath, ['--no-node-snapshot', '--import', 'tsx', `workers/${script}.ts`], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (d: Buffer) => {
    output.push(d.toString());
    if (output.length > keep) output.shift();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { name, child, output, exited };
}
