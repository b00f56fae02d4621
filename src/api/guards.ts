/**
 * Input guards that hold for every route, including routes added later: they
 * run as hooks on the whole app, so a new route cannot forget them.
 *
 * - A multipart body larger than its route's bodyLimit (by Content-Length) is
 *   refused before any of it is read; Fastify does the same for JSON itself.
 * - A multipart body sent to a route that does not declare
 *   `multipart/form-data` in its body schema is a 415, not an empty body.
 * - A JSON body nested deeper than maxJsonDepth is a 400 json_too_deep: deep
 *   values would reach recursive code further on (JSON.stringify into
 *   Postgres, structured clones in the engine, response serialisation) and
 *   overflow its stack into a 500.
 * - Strings with a NUL character (in the body or the query) are a 400: Postgres
 *   cannot store them in text or jsonb, and failing early keeps the message clear.
 *   A route whose handler reports NULs better itself sets `config: { allowNul: true }`
 *   (deployments: the compiler names the file and line).
 * - `limit` above maxPageSize on any route that takes one is a 400
 *   page_size_too_large, checked before schema validation so every list route
 *   answers alike whatever maximum its own schema states.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiLimits } from '../config.js';
import { BatonError } from '../errors.js';

export function inputGuards(app: FastifyInstance, limits: ApiLimits): void {
  app.addHook('onRequest', async (req) => {
    if (!isMultipartRequest(req)) return;
    const length = Number(req.headers['content-length']);
    const max = req.routeOptions.bodyLimit ?? limits.maxBodyBytes;
    if (Number.isFinite(length) && length > max) {
      throw new BatonError('payload_too_large', `the request body is ${length} bytes; this route accepts at most ${max}`, { maxBytes: max });
    }
  });

  app.addHook('preValidation', async (req) => {
    if (isMultipartRequest(req) && !acceptsMultipart(req)) {
      throw new BatonError('unsupported_media_type', `${req.method} ${req.routeOptions.url ?? req.url} does not accept multipart/form-data; send application/json`);
    }
    checkQuery(req, limits);
    if (req.body !== undefined && req.body !== null && typeof req.body === 'object' && !isMultipartRequest(req)) {
      const config = req.routeOptions.config as { allowNul?: boolean } | undefined;
      checkJson(req.body, limits.maxJsonDepth, 'body', config?.allowNul === true);
    }
  });
}

function isMultipartRequest(req: FastifyRequest): boolean {
  return /^multipart\//i.test(String(req.headers['content-type'] ?? '').trim());
}

function acceptsMultipart(req: FastifyRequest): boolean {
  const body = (req.routeOptions.schema as { body?: { content?: Record<string, unknown> } } | undefined)?.body;
  return body?.content?.['multipart/form-data'] !== undefined;
}

function checkQuery(req: FastifyRequest, limits: ApiLimits): void {
  const query = req.query as Record<string, unknown> | undefined;
  if (!query || typeof query !== 'object') return;
  for (const [key, value] of Object.entries(query)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if ((typeof v === 'string' && v.includes('\u0000')) || key.includes('\u0000')) {
        throw new BatonError('invalid_request', `query parameter ${JSON.stringify(key.slice(0, 80))} contains a NUL character`);
      }
    }
  }
  const querySchema = (req.routeOptions.schema as { querystring?: { properties?: Record<string, unknown> } } | undefined)?.querystring;
  if (querySchema?.properties?.['limit'] === undefined) return;
  const raw = query['limit'];
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isNaN(n) && n > limits.maxPageSize) {
    throw new BatonError('page_size_too_large', `limit must be at most ${limits.maxPageSize} (BATON_MAX_PAGE_SIZE)`, { maxPageSize: limits.maxPageSize });
  }
}

/**
 * Walks a parsed JSON value without recursion (the value may be nested far
 * deeper than the stack allows) and stops at the first violation.
 */
export function checkJson(value: unknown, maxDepth: number, where: string, allowNul = false): void {
  const stack: Array<[unknown, number, string]> = [[value, 1, '']];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth, path] = item;
    if (typeof v === 'string') {
      if (!allowNul && v.includes('\u0000')) throw nulError(where, path);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > maxDepth) {
      throw new BatonError('json_too_deep', `the JSON ${where} is nested deeper than ${maxDepth} levels (at ${clipPath(path)})`, { maxDepth });
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], depth + 1, `${path}/${i}`]);
    } else {
      const entries = Object.entries(v as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i] as [string, unknown];
        if (!allowNul && k.includes('\u0000')) throw nulError(where, `${path}/${k}`);
        stack.push([child, depth + 1, `${path}/${k}`]);
      }
    }
  }
}

function nulError(where: string, path: string): BatonError {
  return new BatonError('invalid_request', `the JSON ${where} contains a NUL character (U+0000) at ${clipPath(path)}; it cannot be stored`);
}

function clipPath(path: string): string {
  const p = path === '' ? '/' : path;
  return p.length <= 200 ? JSON.stringify(p).replace(/\\u0000/g, '\\0') : `${JSON.stringify(p.slice(0, 200))}…`;
}
