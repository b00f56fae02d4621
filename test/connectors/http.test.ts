import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinConnectors, type Connector, type ConnectorOutcome, type ConnectorRequest } from '../../src/connectors/index.js';
import type { JsonObject } from '../../src/errors.js';

let server: Server;
let base: string;
/** Requests the server saw, by path. */
const seen = new Map<string, { method: string; headers: IncomingMessage['headers']; body: string }>();

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  const url = new URL(req.url ?? '/', 'http://localhost');
  seen.set(url.pathname, { method: req.method ?? '', headers: req.headers, body });
  const json = (status: number, value: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-test': 'yes' });
    res.end(JSON.stringify(value));
  };
  switch (url.pathname) {
    case '/json':
      return json(200, { hello: 'world', n: 1 });
    case '/echo':
      return json(201, {
        method: req.method,
        contentType: req.headers['content-type'] ?? null,
        body,
        query: Object.fromEntries(url.searchParams),
      });
    case '/text':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain text');
      return;
    case '/empty':
      res.writeHead(204);
      res.end();
      return;
    case '/missing':
      return json(404, { error: 'no such thing' });
    case '/boom':
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal trouble');
      return;
    case '/busy':
      res.writeHead(429);
      res.end();
      return;
    case '/slow':
      setTimeout(() => json(200, { late: true }), 2000).unref();
      return;
    case '/big':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(2048));
      return;
    default:
      res.writeHead(400);
      res.end();
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const connectors = builtinConnectors({ timeoutMs: 5000 });

function http(topic = 'http'): Connector {
  const connector = connectors.get(topic);
  if (!connector) throw new Error(`no connector ${topic}`);
  return connector;
}

function request(input: JsonObject, overrides: Partial<ConnectorRequest> = {}): ConnectorRequest {
  return { jobId: 'job-1', topic: 'http', input, headers: {}, signal: new AbortController().signal, ...overrides };
}

function completed(outcome: ConnectorOutcome): JsonObject {
  expect(outcome.kind).toBe('completed');
  if (outcome.kind !== 'completed') throw new Error('not completed');
  const response = outcome.variables.response;
  if (typeof response !== 'object' || response === null || Array.isArray(response)) throw new Error('no response object');
  return response;
}

describe('http connector', () => {
  it('GETs JSON', async () => {
    const response = completed(await http().run(request({ url: `${base}/json` })));
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ hello: 'world', n: 1 });
    expect(response.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8', 'x-test': 'yes' });
    expect(seen.get('/json')?.method).toBe('GET');
  });

  it('POSTs an object as JSON', async () => {
    const response = completed(await http().run(request({ method: 'post', url: `${base}/echo`, body: { a: 1, list: [true] } })));
    expect(response.status).toBe(201);
    expect(response.body).toEqual({ method: 'POST', contentType: 'application/json', body: '{"a":1,"list":[true]}', query: {} });
  });

  it('sends a string body as it is, with the given content type', async () => {
    const response = completed(
      await http().run(request({ method: 'PUT', url: `${base}/echo`, headers: { 'Content-Type': 'text/csv' }, body: 'a,b\n1,2' })),
    );
    expect(response.body).toMatchObject({ method: 'PUT', contentType: 'text/csv', body: 'a,b\n1,2' });
  });

  it('sends the job id as Idempotency-Key, and the given headers', async () => {
    completed(await http().run(request({ url: `${base}/json`, headers: { 'X-Trace': 'abc', 'X-Count': 3 } }, { jobId: 'job-42' })));
    const headers = seen.get('/json')?.headers;
    expect(headers?.['idempotency-key']).toBe('job-42');
    expect(headers?.['x-trace']).toBe('abc');
    expect(headers?.['x-count']).toBe('3');
  });

  it('adds query parameters and basic authentication', async () => {
    const response = completed(
      await http().run(
        request({
          method: 'POST',
          url: `${base}/echo?fixed=1`,
          query: { q: 'a b', page: 2 },
          basic_auth_username: 'ada',
          basic_auth_password: 'secret',
          data: { x: 1 },
        }),
      ),
    );
    expect(response.body).toMatchObject({ query: { fixed: '1', q: 'a b', page: '2' }, body: '{"x":1}' });
    expect(seen.get('/echo')?.headers.authorization).toBe(`Basic ${Buffer.from('ada:secret').toString('base64')}`);
  });

  it('returns a text body as text and an empty body as null', async () => {
    expect(completed(await http().run(request({ url: `${base}/text` }))).body).toBe('plain text');
    const empty = completed(await http().run(request({ url: `${base}/empty` })));
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
  });

  it('fails a 404 for good, with the status in the message', async () => {
    const outcome = await http().run(request({ url: `${base}/missing` }));
    expect(outcome).toMatchObject({ kind: 'failed', retryable: false });
    expect(outcome.kind === 'failed' && outcome.message).toContain('404');
    expect(outcome.kind === 'failed' && outcome.message).toContain('no such thing');
  });

  it('fails a 500 as retryable', async () => {
    const outcome = await http().run(request({ url: `${base}/boom` }));
    expect(outcome).toMatchObject({ kind: 'failed', retryable: true });
    expect(outcome.kind === 'failed' && outcome.message).toContain('500');
  });

  it('fails a 429 as retryable', async () => {
    expect(await http().run(request({ url: `${base}/busy` }))).toMatchObject({ kind: 'failed', retryable: true });
  });

  it('times out as retryable', async () => {
    const started = Date.now();
    const outcome = await http().run(request({ url: `${base}/slow`, timeoutMs: 100 }));
    expect(outcome).toMatchObject({ kind: 'failed', retryable: true });
    expect(outcome.kind === 'failed' && outcome.message).toContain('timed out after 100 ms');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('stops when the worker shuts down', async () => {
    const controller = new AbortController();
    const pending = http().run(request({ url: `${base}/slow` }, { signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    const outcome = await pending;
    expect(outcome).toMatchObject({ kind: 'failed', retryable: true });
    expect(outcome.kind === 'failed' && outcome.message).toContain('shutting down');
  });

  it('takes a timeout up to its maximum, and names the limit past it', async () => {
    const capped = builtinConnectors({ maxTimeoutMs: 2000, fetch: (async () => new Response('{}')) as typeof fetch });
    expect((await capped.get('http')!.run(request({ url: 'http://127.0.0.1/', timeoutMs: 2000 }))).kind).toBe('completed');
    const over = await capped.get('http')!.run(request({ url: 'http://127.0.0.1/', timeoutMs: 2001 }));
    expect(over).toEqual({ kind: 'failed', retryable: false, message: 'timeoutMs 2001 is over the maximum of 2000 ms (BATON_HTTP_MAX_TIMEOUT_MS)' });
  });

  it('fails a refused connection as retryable', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const outcome = await http().run(request({ url: `http://127.0.0.1:${port}/` }));
    expect(outcome).toMatchObject({ kind: 'failed', retryable: true });
    expect(outcome.kind === 'failed' && outcome.message).toContain('ECONNREFUSED');
  });

  it.each([
    ['a missing url', {}],
    ['a non-http url', { url: 'file:///etc/passwd' }],
    ['an invalid url', { url: 'not a url' }],
    ['an unknown method', { url: 'http://127.0.0.1/', method: 'BREW' }],
    ['a GET with a body', { url: 'http://127.0.0.1/', body: { a: 1 } }],
    ['headers that are not an object', { url: 'http://127.0.0.1/', headers: 'x' }],
    ['a header that is an object', { url: 'http://127.0.0.1/', headers: { 'x-a': { b: 1 } } }],
    ['a bad timeout', { url: 'http://127.0.0.1/', timeoutMs: -1 }],
    // past 2^31-1 ms Node's timer fires at once; a day would hold a worker slot for a day (security review B2)
    ['a timeout past what a timer can wait', { url: 'http://127.0.0.1/', timeoutMs: 3e9 }],
    ['a timeout over BATON_HTTP_MAX_TIMEOUT_MS (60 s)', { url: 'http://127.0.0.1/', timeoutMs: 86_400_000 }],
    ['a Camunda connection timeout over it', { url: 'http://127.0.0.1/', connectionTimeoutInSeconds: 61 }],
  ] as Array<[string, JsonObject]>)('fails %s for good, without sending', async (_label, input) => {
    let calls = 0;
    const counting = builtinConnectors({
      fetch: (async () => {
        calls++;
        return new Response('{}');
      }) as typeof fetch,
    });
    const outcome = await counting.get('http')!.run(request(input));
    expect(outcome).toMatchObject({ kind: 'failed', retryable: false });
    expect(calls).toBe(0);
  });

  it('refuses a response body over the size limit', async () => {
    const small = builtinConnectors({ maxResponseBytes: 1024 });
    const outcome = await small.get('http')!.run(request({ url: `${base}/big` }));
    expect(outcome).toMatchObject({ kind: 'failed', retryable: false });
  });

  it('uses the injected fetch, and never throws even when it does', async () => {
    const urls: string[] = [];
    const fake = builtinConnectors({
      fetch: (async (url: string | URL | Request) => {
        urls.push(String(url));
        return new Response(JSON.stringify({ ok: true }), { status: 200, headers: { 'content-type': 'application/json' } });
      }) as typeof fetch,
    });
    expect(completed(await fake.get('http')!.run(request({ url: 'https://example.test/x' }))).body).toEqual({ ok: true });
    expect(urls).toEqual(['https://example.test/x']);

    const throwing = builtinConnectors({
      fetch: (() => {
        throw new Error('synchronous surprise');
      }) as unknown as typeof fetch,
    });
    const outcome = await throwing.get('http')!.run(request({ url: 'https://example.test/x' }));
    expect(outcome).toMatchObject({ kind: 'failed', retryable: true });
  });
});

describe('aliases', () => {
  it('registers http under its aliases and the SpiffArena operator ids', () => {
    expect([...connectors.keys()].sort()).toEqual(
      [
        'http',
        'http-request',
        'io.camunda:http-json:1',
        'http/GetRequest',
        'http/PostRequest',
        'http/PutRequest',
        'http/PatchRequest',
        'http/DeleteRequest',
        'http/HeadRequest',
      ].sort(),
    );
    for (const [topic, connector] of connectors) expect(connector.topic).toBe(topic);
  });

  it.each([
    ['http/PostRequest', 'POST'],
    ['http/PutRequest', 'PUT'],
    ['http/PatchRequest', 'PATCH'],
    ['http/DeleteRequest', 'DELETE'],
  ])('%s sends %s whatever the input says', async (topic, method) => {
    const response = completed(await http(topic).run(request({ url: `${base}/echo`, method: 'GET' }, { topic })));
    expect(response.body).toMatchObject({ method });
  });

  it('http/HeadRequest sends HEAD and gets no body', async () => {
    const response = completed(await http('http/HeadRequest').run(request({ url: `${base}/json` }, { topic: 'http/HeadRequest' })));
    expect(seen.get('/json')?.method).toBe('HEAD');
    expect(response.body).toBeNull();
  });

  it('io.camunda:http-json:1 takes Camunda-style input', async () => {
    const response = completed(
      await http('io.camunda:http-json:1').run(
        request(
          {
            method: 'POST',
            url: `${base}/echo`,
            queryParameters: { a: '1' },
            authentication: { type: 'bearer', token: 't0k' },
            connectionTimeoutInSeconds: 5,
            body: { b: 2 },
          },
          { topic: 'io.camunda:http-json:1' },
        ),
      ),
    );
    expect(response.body).toMatchObject({ method: 'POST', query: { a: '1' }, body: '{"b":2}' });
    expect(seen.get('/echo')?.headers.authorization).toBe('Bearer t0k');
  });
});

describe('calls per host (BATON_HTTP_MAX_PER_HOST)', () => {
  it('defers a job for a host whose slots are all running, across every HTTP topic, and lets other hosts through', async () => {
    const releases: Array<() => void> = [];
    const hosts: string[] = [];
    const slowFetch = (async (input: string | URL | Request) => {
      hosts.push(new URL(String(input)).host);
      await new Promise<void>((r) => releases.push(r));
      return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    const connectors = builtinConnectors({ fetch: slowFetch, maxPerHost: 2 });
    const req = (topic: string, url: string): ConnectorRequest => ({ jobId: `j-${Math.random()}`, topic, input: { url }, headers: {}, signal: new AbortController().signal });
    const run = (topic: string, url: string) => connectors.get(topic)!.run(req(topic, url));
    const first = run('http', 'http://slow.test/a');
    const second = run('http/GetRequest', 'http://slow.test/b');
    await new Promise((r) => setTimeout(r, 10));
    // both slots of slow.test are taken, also by another topic's connector
    const third = await run('http', 'http://slow.test/c');
    expect(third).toMatchObject({ kind: 'deferred' });
    expect((third as { message: string }).message).toMatch(/2 calls to slow\.test are running in this worker \(BATON_HTTP_MAX_PER_HOST\)/);
    expect((third as { delayMs: number }).delayMs).toBeGreaterThan(0);
    // another host is not held up
    const other = run('http', 'http://fast.test/x');
    await new Promise((r) => setTimeout(r, 10));
    expect(hosts).toEqual(['slow.test', 'slow.test', 'fast.test']);
    for (const r of releases.splice(0)) r();
    expect((await first).kind).toBe('completed');
    expect((await second).kind).toBe('completed');
    expect((await other).kind).toBe('completed');
    // slots given back
    const again = run('http', 'http://slow.test/d');
    await new Promise((r) => setTimeout(r, 10));
    for (const r of releases.splice(0)) r();
    expect((await again).kind).toBe('completed');
  });
});
