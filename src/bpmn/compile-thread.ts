/**
 * Compiling off the event loop (issue 15 item 7, security review D4): a
 * large model takes ~90 ms per thousand elements to compile, all of it
 * synchronous; in the API role (deploys) and the step role (a definition
 * the cache does not hold) that would stall every request and step of the
 * process meanwhile. So compiling runs in one `worker_threads` thread per
 * process (compile-worker.ts), started on first use and kept (unref'd, it
 * never keeps the process alive); requests queue there in order. The
 * graphs come back as plain data and are frozen again here. When the
 * thread dies (it should not), the calls in flight fail with
 * `compile_failed` and the next call starts a new thread.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BatonError } from '../errors.js';
import { deepFreeze, type CompileOptions, type CompiledProcess, type ModelFile, type Problem } from './compile.js';
import type { CompileReply, CompileRequest } from './compile-worker.js';
import type { ProcessGraph } from './types.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type Request = CompileRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function thread(): Worker {
  if (worker) return worker;
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  const entry = pathToFileURL(join(dirname(here), ts ? 'compile-worker.ts' : 'compile-worker.js')).href;
  // the boot module registers the tsx loader first when running from sources (compile-worker-boot.mjs)
  const w = new Worker(new URL('./compile-worker-boot.mjs', import.meta.url), { workerData: { entry, tsx: ts }, execArgv: [] });
  w.unref();
  w.on('message', (reply: CompileReply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.ok) p.resolve(reply.value);
    else p.reject(reply.error.code !== undefined ? new BatonError(reply.error.code, reply.error.message, reply.error.details) : new BatonError('compile_failed', reply.error.message));
  });
  const fail = (why: string) => {
    if (worker === w) worker = null;
    for (const [id, p] of pending) {
      pending.delete(id);
      p.reject(new BatonError('compile_failed', `the compile thread ${why}; try again`));
    }
  };
  w.on('error', (err) => fail(`failed: ${err.message}`));
  w.on('exit', (code) => fail(`exited (code ${code})`));
  worker = w;
  return w;
}

function send<T>(req: Request): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    // ref'd while something waits for it, so an awaited compile keeps the process alive
    const w = thread();
    w.ref();
    w.postMessage({ ...req, id });
  }).finally(() => {
    if (pending.size === 0) worker?.unref();
  });
}

function freezeGraphs(processes: CompiledProcess[]): CompiledProcess[] {
  for (const p of processes) deepFreeze(p.graph);
  return processes;
}

/** compileFiles (index.ts), in the compile thread. */
export async function compileFilesOffThread(
  files: ModelFile[],
  options: CompileOptions = {},
): Promise<{ processes: CompiledProcess[]; problems: Problem[]; notExecutable: Problem[] }> {
  const r = await send<{ processes: CompiledProcess[]; problems: Problem[]; notExecutable: Problem[] }>({ op: 'files', files, options });
  return { ...r, processes: freezeGraphs(r.processes) };
}

/** compileProcess (index.ts), in the compile thread; throws its BatonError. */
export async function compileProcessOffThread(xml: string, processKey: string, fileName = 'model.bpmn', options: CompileOptions = {}): Promise<ProcessGraph> {
  return deepFreeze(await send<ProcessGraph>({ op: 'process', xml, processKey, fileName, options }));
}

/** Stops the compile thread (tests; a process that exits needs not: the thread is unref'd). */
export async function stopCompileThread(): Promise<void> {
  const w = worker;
  worker = null;
  await w?.terminate();
}
