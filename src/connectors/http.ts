/**
 * The `http` connector: one HTTP request per service job.
 *
 * Input (the job's input variables):
 * - `url` (required, http or https)
 * - `method` (default GET; fixed by the SpiffArena operator ids `http/GetRequest`, …)
 * - `headers` object of header values (strings, numbers or booleans)
 * - `body` (alias `data`, SpiffArena's name): an object or array is sent as JSON
 *   with `content-type: application/json` unless a content type is given; a
 *   string is sent as it is; not allowed with GET or HEAD
 * - `query` (alias `queryParameters`, Camunda's name): object added to the URL
 * - `timeoutMs` (or Camunda's `connectionTimeoutInSeconds`), default from the
 *   connector options (30 s)
 * - authentication: `basic_auth_username` / `basic_auth_password` (SpiffArena),
 *   or `authentication: { type: 'basic', username, password }` /
 *   `{ type: 'bearer', token }` (Camunda)
 *
 * Every request carries `Idempotency-Key: <jobId>`: the service worker may run
 * a job more than once (a worker dies after the call, before it reports), and
 * the key lets the receiver drop the repeat. An `Idempotency-Key` given in
 * `headers` replaces ours.
 *
 * Outcome: 2xx → completed with `{ response: { status, headers, body } }`
 * (body parsed when the content type says JSON, text otherwise, null when
 * empty). 4xx → failed, not retryable: the same request will be refused again
 * (except 408 and 429, which ask to come back later and are retryable). 5xx,
 * network errors and timeouts → failed, retryable. Bad input → failed, not
 * retryable. Other statuses (an unfollowed 3xx) → failed, not retryable.
 */
import { TextDecoder } from 'node:util';
import type { Json, JsonObject } from '../errors.js';
import type { Connector, ConnectorOutcome, ConnectorRequest } from './types.js';

export interface HttpConnectorOptions {
  /** The fetch to use; global fetch by default (tests inject theirs). */
  fetch?: typeof fetch;
  /** Default timeout of a request, whole body included, when the input has none. Default 30,000 ms. */
  timeoutMs?: number;
  /** Largest response body accepted; a bigger one fails the job (it would become a variable). Default 10 MiB. */
  maxResponseBytes?: number;
  /**
   * Largest `timeoutMs` a model may ask for (BATON_HTTP_MAX_TIMEOUT_MS); more
   * fails the job for good. Default 60,000 ms; never above 2³¹−1, where
   * Node's timers would fire at once.
   */
  maxTimeoutMs?: number;
  /** Calls to one host (host:port) this process runs at once, shared by every HTTP connector given the same slots (see `hostSlots`). */
  hostSlots?: HostSlots;
}

/**
 * Running calls per host, in this process. One slow upstream may hold at
 * most `maxPerHost` of a service worker's slots (BATON_HTTP_MAX_PER_HOST);
 * a job for a host at its limit is deferred, not failed (security review B2).
 */
export interface HostSlots {
  readonly maxPerHost: number;
  /** takes a slot for `host`; false when all its slots are taken */
  take(host: string): boolean;
  release(host: string): void;
}

export function hostSlots(maxPerHost: number): HostSlots {
  const running = new Map<string, number>();
  return {
    maxPerHost,
    take(host) {
      const n = running.get(host) ?? 0;
      if (n >= maxPerHost) return false;
      running.set(host, n + 1);
      return true;
    },
    release(host) {
      const n = (running.get(host) ?? 1) - 1;
      if (n <= 0) running.delete(host);
      else running.set(host, n);
    },
  };
}

/** How long a job waits when its host is at its limit: a random 0.5–1.5 s, so deferred jobs do not come back all at once. */
const deferMs = () => 500 + Math.floor(Math.random() * 1000);

/** setTimeout's largest delay: anything longer fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** How much of an error response's body goes into the failure message. */
const SNIPPET = 500;

/** Bad input: the job fails for good, retrying cannot help. */
class InputError extends Error {}

class ResponseTooLarge extends Error {}

export function createHttpConnector(topic: string, options: HttpConnectorOptions & { method?: string } = {}): Connector {
  const maxTimeoutMs = Math.min(options.maxTimeoutMs ?? 60_000, MAX_TIMER_MS);
  const defaultTimeoutMs = Math.min(options.timeoutMs ?? 30_000, maxTimeoutMs);
  const maxResponseBytes = options.maxResponseBytes ?? 10 * 1024 * 1024;
  const fixedMethod = options.method;
  return {
    topic,
    async run(req: ConnectorRequest): Promise<ConnectorOutcome> {
      try {
        return await send(req, options.fetch ?? globalThis.fetch, fixedMethod, defaultTimeoutMs, maxResponseBytes, maxTimeoutMs, options.hostSlots);
      } catch (e) {
        // send() turns every expected failure into an outcome; this is the
        // last guard of "a connector never throws".
        return { kind: 'failed', message: `http connector: ${errorMessage(e)}`, retryable: !(e instanceof InputError) };
      }
    },
  };
}

interface Prepared {
  method: string;
  url: URL;
  headers: Headers;
  body: string | undefined;
  timeoutMs: number;
}

async function send(
  req: ConnectorRequest,
  fetchFn: typeof fetch,
  fixedMethod: string | undefined,
  defaultTimeoutMs: number,
  maxResponseBytes: number,
  maxTimeoutMs: number,
  slots: HostSlots | undefined,
): Promise<ConnectorOutcome> {
  let prepared: Prepared;
  try {
    prepared = prepare(req, fixedMethod, defaultTimeoutMs, maxTimeoutMs);
  } catch (e) {
    if (e instanceof InputError) return { kind: 'failed', message: e.message, retryable: false };
    throw e;
  }
  const { method, url, headers, body, timeoutMs } = prepared;
  const target = `${method} ${url.origin}${url.pathname}`;
  if (req.signal.aborted) return { kind: 'failed', message: `${target} not sent: the worker is shutting down`, retryable: true };
  if (slots !== undefined) {
    if (!slots.take(url.host)) {
      return { kind: 'deferred', delayMs: deferMs(), message: `${target} not sent yet: ${slots.maxPerHost} calls to ${url.host} are running in this worker (BATON_HTTP_MAX_PER_HOST)` };
    }
    try {
      return await call(req, fetchFn, prepared, target, maxResponseBytes);
    } finally {
      slots.release(url.host);
    }
  }
  return call(req, fetchFn, prepared, target, maxResponseBytes);
}

async function call(req: ConnectorRequest, fetchFn: typeof fetch, prepared: Prepared, target: string, maxResponseBytes: number): Promise<ConnectorOutcome> {
  const { method, url, headers, body, timeoutMs } = prepared;

  // One signal for both reasons to stop: our timeout and the worker's shutdown.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onShutdown = (): void => controller.abort();
  req.signal.addEventListener('abort', onShutdown, { once: true });
  const stopped = (): ConnectorOutcome | undefined => {
    if (timedOut) return { kind: 'failed', message: `${target} timed out after ${timeoutMs} ms`, retryable: true };
    if (req.signal.aborted) return { kind: 'failed', message: `${target} aborted: the worker is shutting down`, retryable: true };
    return undefined;
  };

  try {
    let res: Response;
    try {
      res = await fetchFn(url, { method, headers, body, signal: controller.signal, redirect: 'follow' });
    } catch (e) {
      return stopped() ?? { kind: 'failed', message: `${target} failed: ${errorMessage(e)}`, retryable: true };
    }
    let text: string;
    try {
      text = await readText(res, maxResponseBytes);
    } catch (e) {
      if (e instanceof ResponseTooLarge) {
        return { kind: 'failed', message: `${target}: response body larger than ${maxResponseBytes} bytes`, retryable: false };
      }
      return stopped() ?? { kind: 'failed', message: `${target}: reading the response failed: ${errorMessage(e)}`, retryable: true };
    }
    const status = res.status;
    if (status >= 200 && status < 300) {
      const response: JsonObject = { status, headers: headerObject(res.headers), body: parseBody(text, res.headers.get('content-type')) };
      return { kind: 'completed', variables: { response } };
    }
    const snippet = text.length > SNIPPET ? `${text.slice(0, SNIPPET)}…` : text;
    const message = `${target} answered ${status}${res.statusText ? ` ${res.statusText}` : ''}${snippet ? `: ${snippet}` : ''}`;
    // 5xx: the server's trouble, may pass. 408/429: the server asks us to come back later.
    const retryable = status >= 500 || status === 408 || status === 429;
    return { kind: 'failed', message, retryable };
  } finally {
    clearTimeout(timer);
    req.signal.removeEventListener('abort', onShutdown);
  }
}

function prepare(req: ConnectorRequest, fixedMethod: string | undefined, defaultTimeoutMs: number, maxTimeoutMs: number): Prepared {
  const input = req.input;
  const method = (fixedMethod ?? optionalString(input, 'method') ?? 'GET').toUpperCase();
  if (!METHODS.has(method)) throw new InputError(`unsupported HTTP method ${JSON.stringify(method)}`);

  const rawUrl = input.url;
  if (typeof rawUrl !== 'string' || rawUrl.trim() === '') throw new InputError('input "url" is required (a string)');
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new InputError(`input "url" is not a valid URL: ${rawUrl}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InputError(`input "url" must be http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  const query = input.query ?? input.queryParameters;
  if (query !== undefined && query !== null) {
    if (!isObject(query)) throw new InputError('input "query" must be an object');
    for (const [name, value] of Object.entries(query)) {
      if (value === null) continue;
      for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, scalar(v, `query parameter "${name}"`));
    }
  }

  const headers = new Headers();
  headers.set('idempotency-key', req.jobId);
  const auth = authorization(input);
  if (auth !== undefined) headers.set('authorization', auth);
  const given = input.headers;
  if (given !== undefined && given !== null) {
    if (!isObject(given)) throw new InputError('input "headers" must be an object');
    for (const [name, value] of Object.entries(given)) {
      if (value === null) continue;
      try {
        headers.set(name, scalar(value, `header "${name}"`));
      } catch (e) {
        throw e instanceof InputError ? e : new InputError(`header "${name}" is not valid: ${errorMessage(e)}`);
      }
    }
  }

  const rawBody = input.body !== undefined ? input.body : input.data;
  let body: string | undefined;
  if (rawBody !== undefined && rawBody !== null) {
    if (method === 'GET' || method === 'HEAD') throw new InputError(`a ${method} request cannot have a body`);
    if (typeof rawBody === 'string') {
      body = rawBody;
    } else {
      body = JSON.stringify(rawBody);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
  }

  let timeoutMs = defaultTimeoutMs;
  if (input.timeoutMs !== undefined && input.timeoutMs !== null) {
    timeoutMs = positiveNumber(input.timeoutMs, 'timeoutMs');
  } else if (input.connectionTimeoutInSeconds !== undefined && input.connectionTimeoutInSeconds !== null) {
    timeoutMs = positiveNumber(Number(input.connectionTimeoutInSeconds), 'connectionTimeoutInSeconds') * 1000;
  }
  if (timeoutMs > maxTimeoutMs) {
    throw new InputError(`timeoutMs ${timeoutMs} is over the maximum of ${maxTimeoutMs} ms (BATON_HTTP_MAX_TIMEOUT_MS)`);
  }
  return { method, url, headers, body, timeoutMs };
}

function authorization(input: JsonObject): string | undefined {
  const user = input.basic_auth_username;
  if (typeof user === 'string' && user !== '') {
    const password = typeof input.basic_auth_password === 'string' ? input.basic_auth_password : '';
    return basic(user, password);
  }
  const auth = input.authentication;
  if (!isObject(auth)) return undefined;
  const type = typeof auth.type === 'string' ? auth.type.toLowerCase() : '';
  if (type === 'basic') {
    if (typeof auth.username !== 'string') throw new InputError('authentication.username must be a string');
    return basic(auth.username, typeof auth.password === 'string' ? auth.password : '');
  }
  if (type === 'bearer') {
    if (typeof auth.token !== 'string') throw new InputError('authentication.token must be a string');
    return `Bearer ${auth.token}`;
  }
  if (type === '' || type === 'noauth') return undefined;
  throw new InputError(`unsupported authentication type ${JSON.stringify(auth.type)}`);
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** Reads the body, refusing more than `max` bytes, decoded with the declared charset (UTF-8 by default). */
async function readText(res: Response, max: number): Promise<string> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new ResponseTooLarge();
    }
    chunks.push(value);
  }
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(res.headers.get('content-type') ?? '')?.[1];
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset ?? 'utf-8');
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  return decoder.decode(Buffer.concat(chunks));
}

/** JSON when the content type says so (application/json, application/problem+json, …) and it parses; else the text; null when empty. */
function parseBody(text: string, contentType: string | null): Json {
  if (text === '') return null;
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/json' || type.endsWith('+json') || type === 'text/json') {
    try {
      return JSON.parse(text) as Json;
    } catch {
      return text;
    }
  }
  return text;
}

function headerObject(headers: Headers): JsonObject {
  const out: JsonObject = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

function optionalString(input: JsonObject, key: string): string | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new InputError(`input "${key}" must be a string`);
  return value;
}

function positiveNumber(value: Json, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InputError(`input "${what}" must be a positive number`);
  return value;
}

function scalar(value: Json, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new InputError(`${what} must be a string, number or boolean`);
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorMessage(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // undici reports "fetch failed" and hides the reason (ECONNREFUSED, ENOTFOUND, …) in `cause`.
  const cause: unknown = e.cause;
  if (cause instanceof Error && cause.message && cause.message !== e.message) return `${e.message} (${cause.message})`;
  return e.message;
}
