/**
 * The entry of the compile thread (compile-thread.ts): compiles what the
 * host sends and posts the result back. Plain data both ways (graphs are
 * JSON; a BatonError travels as its code, message and details).
 */
import { parentPort } from 'node:worker_threads';
import { BatonError } from '../errors.js';
import { compileFiles, compileProcess } from './index.js';
import type { CompileOptions, ModelFile } from './compile.js';

export type CompileRequest =
  | { id: number; op: 'files'; files: ModelFile[]; options: CompileOptions }
  | { id: number; op: 'process'; xml: string; processKey: string; fileName: string; options: CompileOptions };

export type CompileReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { code?: string; message: string; details?: unknown } };

parentPort?.on('message', (req: CompileRequest) => {
  const work = req.op === 'files' ? compileFiles(req.files, req.options) : compileProcess(req.xml, req.processKey, req.fileName, req.options);
  work.then(
    (value) => parentPort?.postMessage({ id: req.id, ok: true, value } satisfies CompileReply),
    (err: unknown) => {
      const error =
        err instanceof BatonError
          ? { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) }
          : { message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
      parentPort?.postMessage({ id: req.id, ok: false, error } satisfies CompileReply);
    },
  );
});
