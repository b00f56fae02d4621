/**
 * Hostile requests (issue 5): wrong content types, invalid and deeply nested
 * JSON, NUL characters, huge numbers, unknown and overlong ids, huge page
 * sizes, invalid cursors, oversized bodies; and a property that sends random
 * requests to every route of the app's own /openapi.json (so routes added
 * later are fuzzed too). Every answer is a success or a 4xx with a stable
 * `{code, message}`, never a 5xx.
 *
 * FUZZ_SCALE=20 runs twenty times the default number of cases; FUZZ_SEED
 * replays a run (the seed is printed with the counts).
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import type { Baton } from '../../src/boot.js';
import { isolation, silentLogger, startDistributed } from '../support/env.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1) || 1;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;

const iso = isolation('api_fuzz');
let baton: Baton;
let app: FastifyInstance;

type Answer = { status: number; body: any; contentType: string }; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Req {
  method: string;
  url: string;
  headers?: Record<string, string>;
  payload?: string | Buffer | object;
}

async function send(r: Req, on: FastifyInstance = app): Promise<Answer> {
  const res = await on.inject({
    method: r.method as 'GET',
    url: r.url,
    ...(r.headers ? { headers: r.headers } : {}),
    ...(r.payload !== undefined ? { payload: r.payload as string } : {}),
  });
  let body: unknown = res.body;
  try {
    body = res.body ? JSON.parse(res.body) : null;
  } catch {
    /* not JSON (the XML route) */
  }
  return { status: res.statusCode, body, contentType: String(res.headers['content-type'] ?? '') };
}

const json = (method: string, url: string, payload?: unknown): Req => ({
  method,
  url,
  ...(payload !== undefined ? { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) } : {}),
});

function expectCode(a: Answer, status: number, code: string | RegExp, what = ''): void {
  expect([what, a.status], JSON.stringify(a.body).slice(0, 400)).toEqual([what, status]);
  if (typeof code === 'string') expect(a.body.code, what).toBe(code);
  else expect(a.body.code, what).toMatch(code);
  expect(typeof a.body.message, what).toBe('string');
}

// ---- the app under test and the ids it knows ---------------------------------

const NS = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"';
const FUZZ_MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions ${NS} id="d-fuzz" targetNamespace="http://baton.dev/test">
  <bpmn:process id="fuzz" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:userTask id="review" name="Review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="svc" />
    <bpmn:serviceTask id="svc"><bpmn:extensionElements><zeebe:taskDefinition type="fuzz-topic" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f3" sourceRef="svc" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
  <bpmn:process id="fuzz-fail" isExecutable="true">
    <bpmn:startEvent id="s2" />
    <bpmn:sequenceFlow id="g1" sourceRef="s2" targetRef="boom" />
    <bpmn:scriptTask id="boom" scriptFormat="javascript"><bpmn:script>throw new Error('boom')</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="g2" sourceRef="boom" targetRef="e2" />
    <bpmn:endEvent id="e2" />
  </bpmn:process>
</bpmn:definitions>`;

const pool = {
  instances: [] as string[],
  tasks: [] as string[],
  jobs: [] as string[],
  incidents: [] as string[],
  messages: [] as string[],
  keys: ['fuzz', 'fuzz-fail'],
  elements: ['start', 'review', 'svc', 'end', 'boom'],
  names: ['fuzz-msg', 'fuzz-signal'],
};
const allIds = () => [...pool.instances, ...pool.tasks, ...pool.jobs, ...pool.incidents, ...pool.messages];

interface Operation {
  method: string;
  path: string;
  params: string[];
  query: Record<string, Schema>;
  body: Schema | null;
  jsonBody: boolean;
  multipart: boolean;
}
type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  default?: unknown;
  additionalProperties?: boolean;
};
let operations: Operation[] = [];

async function loadOperations(): Promise<Operation[]> {
  const doc = (await send({ method: 'GET', url: '/openapi.json' })).body as {
    paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string; schema: Schema }>; requestBody?: { content: Record<string, { schema: Schema }> } }>>;
  };
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const query: Record<string, Schema> = {};
      for (const p of op.parameters ?? []) if (p.in === 'query') query[p.name] = p.schema;
      const content = op.requestBody?.content ?? {};
      ops.push({
        method: method.toUpperCase(),
        path,
        params: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
        query,
        body: content['application/json']?.schema ?? null,
        jsonBody: content['application/json'] !== undefined,
        multipart: content['multipart/form-data'] !== undefined,
      });
    }
  }
  return ops;
}

beforeAll(async () => {
  baton = await startDistributed(iso, ['api', 'step']);
  app = baton.app!;
  const dep = await send(json('POST', '/v1/deployments', { files: [{ name: 'fuzz.bpmn', content: FUZZ_MODEL }] }));
  expect(dep.status, JSON.stringify(dep.body)).toBe(201);
  for (let i = 0; i < 6; i++) {
    const started = await send(json('POST', '/v1/process-instances', { processKey: 'fuzz', businessKey: `b${i}`, variables: { i }, waitMs: 10_000 }));
    expect(started.status).toBe(201);
    pool.instances.push(started.body.id);
  }
  const tasks = await send({ method: 'GET', url: '/v1/tasks?state=open&limit=100' });
  pool.tasks.push(...tasks.body.items.map((t: { id: string }) => t.id));
  for (const id of pool.tasks.slice(0, 3)) expect((await send(json('POST', `/v1/tasks/${id}/complete`, { variables: { ok: true }, waitMs: 10_000 }))).status).toBe(200);
  const jobs = await send(json('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'fuzzer', topics: ['fuzz-topic'], maxTasks: 2 }));
  pool.jobs.push(...jobs.body.items.map((j: { id: string }) => j.id));
  const failed = await send(json('POST', '/v1/process-instances', { processKey: 'fuzz-fail', waitMs: 10_000 }));
  pool.instances.push(failed.body.id);
  const incidents = await send({ method: 'GET', url: '/v1/incidents?limit=10' });
  pool.incidents.push(...incidents.body.items.map((i: { id: string }) => i.id));
  const buffered = await send(json('POST', '/v1/messages', { name: 'fuzz-msg', correlationKey: 'k', ttlSeconds: 3600 }));
  expect(buffered.status).toBe(202);
  const msgs = await send({ method: 'GET', url: '/v1/messages?name=fuzz-msg' });
  pool.messages.push(...msgs.body.items.map((m: { id: string }) => m.id));
  operations = await loadOperations();
}, 60_000);

afterAll(async () => {
  await baton?.close();
  await iso.drop();
});

const instanceCount = async () => Number((await sql<{ n: string }>`select count(*) as n from process_instance`.execute(baton.db)).rows[0]!.n);

/** a minimal valid value for a schema: the required properties, each at its smallest */
function minimal(schema: Schema | null | undefined): unknown {
  if (!schema) return undefined;
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (schema.enum) return schema.enum[0];
  switch (type) {
    case 'object': {
      const o = Object.fromEntries((schema.required ?? []).map((k) => [k, minimal(schema.properties?.[k] ?? {}) ?? {}]));
      for (let i = Object.keys(o).length; i < (schema.minProperties ?? 0); i++) o[`k${i}`] = 1;
      return o;
    }
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => minimal(schema.items ?? { type: 'string' }));
    case 'string':
      return 'x'.repeat(Math.max(schema.minLength ?? 1, 1));
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, schema.minimum ?? 0);
    case 'boolean':
      return true;
    default:
      return {};
  }
}

const urlOf = (op: Operation, params: Record<string, string>, query = '') =>
  op.path.replace(/\{(\w+)\}/g, (_m, name: string) => params[name] ?? 'x') + (query ? `?${query}` : '');

/** params that name existing rows, so list and id routes answer 200 */
const realParams = (op: Operation): Record<string, string> =>
  Object.fromEntries(op.params.map((p) => [p, p === 'key' ? 'fuzz' : (op.path.startsWith('/v1/tasks') ? pool.tasks[5] : op.path.startsWith('/v1/incidents') ? pool.incidents[0] : pool.instances[5]) ?? 'x']));

// ---- explicit cases ----------------------------------------------------------

describe('api: content types and JSON', () => {
  const jsonRoutes = () => operations.filter((o) => o.jsonBody && !o.multipart);

  it('finds the routes it fuzzes in /openapi.json', () => {
    const paths = operations.map((o) => `${o.method} ${o.path}`);
    expect(paths).toEqual(expect.arrayContaining(['POST /v1/deployments', 'POST /v1/process-instances', 'GET /v1/tasks', 'DELETE /v1/messages/{id}']));
    expect(jsonRoutes().length).toBeGreaterThan(8);
  });

  it('answers bodies of media types the route does not read with 415 unsupported_media_type', async () => {
    const before = await instanceCount();
    for (const op of jsonRoutes()) {
      const url = urlOf(op, realParams(op));
      const body = JSON.stringify(minimal(op.body));
      for (const ct of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x', 'text/plain; charset=utf-8']) {
        const a = await send({ method: op.method, url, headers: { 'content-type': ct }, payload: ct.startsWith('multipart') ? `--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n${body}\r\n--x--\r\n` : body });
        expectCode(a, 415, 'unsupported_media_type', `${op.method} ${op.path} as ${ct}`);
      }
    }
    expect(await instanceCount()).toBe(before);
  });

  it('answers empty, invalid and truncated JSON with 400 invalid_json', async () => {
    for (const op of jsonRoutes()) {
      const url = urlOf(op, realParams(op));
      // (a __proto__ key is refused by Fastify's parser: no prototype pollution through a body)
      for (const payload of ['', '{', '{"a":', 'nul', '{"a":1,}', "{'a':1}", '\u0000', '{"a":1}{"b":2}', '[1,2', '{"a":"\u0000"', '"\\ud800"x', '{"__proto__":{"polluted":1}}', '{"variables":{"constructor":{"prototype":{"polluted":1}}}}']) {
        const a = await send({ method: op.method, url, headers: { 'content-type': 'application/json' }, payload });
        expectCode(a, 400, 'invalid_json', `${op.method} ${op.path} ${JSON.stringify(payload)}`);
      }
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('answers NUL characters with 400 and stores nothing', async () => {
    const before = await instanceCount();
    const cases: Req[] = [
      json('POST', '/v1/process-instances', { processKey: 'fuzz', variables: { a: 'x\u0000y' } }),
      json('POST', '/v1/process-instances', { processKey: 'fuzz', variables: { 'k\u0000': 1 } }),
      json('POST', '/v1/process-instances', { processKey: 'fuzz', businessKey: '\u0000' }),
      json('POST', '/v1/process-instances', { processKey: 'fu\u0000zz' }),
      json('POST', '/v1/messages', { name: 'm', variables: { deep: [{ a: ['\u0000'] }] } }),
      json('POST', '/v1/signals', { name: '\u0000' }),
      json('POST', `/v1/tasks/${pool.tasks[5]}/complete`, { variables: { a: '\u0000' } }),
      { method: 'GET', url: '/v1/process-instances?processKey=%00' },
      { method: 'GET', url: '/v1/tasks?assignee=a%00b' },
    ];
    for (const r of cases) expectCode(await send(r), 400, 'invalid_request', `${r.method} ${r.url} ${String(r.payload)}`);
    expect(await instanceCount()).toBe(before);
    expect((await send({ method: 'GET', url: `/v1/tasks/${pool.tasks[5]}` })).body.state).toBe('open');
  });

  it('answers huge and non-finite numbers with 400', async () => {
    const before = await instanceCount();
    const raw = (url: string, payload: string): Req => ({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
    const cases: Req[] = [
      raw('/v1/process-instances', '{"processKey":"fuzz","version":1e400}'),
      raw('/v1/process-instances', '{"processKey":"fuzz","version":99999999999999999999}'),
      raw('/v1/process-instances', '{"processKey":"fuzz","version":2147483648}'),
      raw('/v1/process-instances', '{"processKey":"fuzz","version":-1}'),
      raw('/v1/process-instances', '{"processKey":"fuzz","waitMs":1e20}'),
      raw('/v1/external-tasks/fetch-and-lock', '{"workerId":"w","topics":["t"],"maxTasks":1e308}'),
      raw('/v1/messages', '{"name":"m","ttlSeconds":1e400}'),
      { method: 'GET', url: '/v1/process-definitions/fuzz?version=99999999999999999999' },
      { method: 'GET', url: '/v1/process-definitions/fuzz?version=2147483648' },
    ];
    for (const r of cases) {
      const a = await send(r);
      expect([r.url, String(r.payload), a.status]).toEqual([r.url, String(r.payload), 400]);
      expect(['invalid_request', 'invalid_json']).toContain(a.body.code);
    }
    // a huge number inside variables is a number (as JSON.parse reads it), not an error
    const big = await send(raw('/v1/process-instances', '{"processKey":"fuzz","waitMs":10000,"variables":{"n":1e308,"m":123456789012345678901234567890}}'));
    expect(big.status).toBe(201);
    expect(big.body.variables.n).toBe(1e308);
    expect(await instanceCount()).toBe(before + 1);
    pool.instances.push(big.body.id);
  });

  it('accepts variables nested to BATON_MAX_JSON_DEPTH (64) and answers one level more with 400 json_too_deep', async () => {
    const nest = (levels: number): unknown => {
      let v: unknown = 1;
      for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { a: v };
      return v;
    };
    // the body is level 1, variables level 2: 63 more levels reach 64
    const ok = await send(json('POST', '/v1/process-instances', { processKey: 'fuzz', variables: nest(63), waitMs: 10_000 }));
    expect(ok.status, JSON.stringify(ok.body).slice(0, 300)).toBe(201);
    // and the engine carries it: the instance runs to its user task with the value intact
    expect(ok.body).toMatchObject({ status: 'waiting', activeElements: ['review'], incidents: [] });
    expect(JSON.stringify(ok.body.variables)).toBe(JSON.stringify(nest(63)));
    pool.instances.push(ok.body.id);
    const before = await instanceCount();
    const deep = await send(json('POST', '/v1/process-instances', { processKey: 'fuzz', variables: nest(64) }));
    expectCode(deep, 400, 'json_too_deep');
    expect(deep.body.details).toEqual({ maxDepth: 64 });
    // every JSON route, with nesting far past what recursive code survives
    const veryDeep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    for (const op of jsonRoutes()) {
      const url = urlOf(op, realParams(op));
      const wrapped = { ...(minimal(op.body) as object), variables: nest(200) };
      expectCode(await send(json(op.method, url, wrapped)), 400, 'json_too_deep', `${op.method} ${op.path}`);
      const a = await send({ method: op.method, url, headers: { 'content-type': 'application/json' }, payload: veryDeep });
      expect([op.path, a.status]).toEqual([op.path, 400]);
      expect(['json_too_deep', 'invalid_json']).toContain(a.body.code);
    }
    expect(await instanceCount()).toBe(before);
  });

  it('answers a body over BATON_MAX_BODY_BYTES (1 MB) with 413 payload_too_large, up to 50 MB', async () => {
    const before = await instanceCount();
    for (const mb of [1.1, 50]) {
      const payload = `{"processKey":"fuzz","variables":{"blob":"${'x'.repeat(Math.round(mb * 1024 * 1024))}"}}`;
      expectCode(await send({ method: 'POST', url: '/v1/process-instances', headers: { 'content-type': 'application/json' }, payload }), 413, 'payload_too_large', `${mb} MB`);
    }
    expect(await instanceCount()).toBe(before);
  });

  it('takes the limits from the config (BATON_MAX_BODY_BYTES, BATON_MAX_JSON_DEPTH, BATON_MAX_PAGE_SIZE)', async () => {
    const small = await buildApp({
      db: baton.db,
      transport: baton.transport,
      commands: baton.commands,
      logger: silentLogger(),
      limits: { maxBodyBytes: 2048, maxJsonDepth: 8, maxPageSize: 10 },
    });
    try {
      expectCode(await send(json('POST', '/v1/signals', { name: 's', variables: { blob: 'x'.repeat(3000) } }), small), 413, 'payload_too_large');
      expect((await send(json('POST', '/v1/signals', { name: 's', variables: { blob: 'x'.repeat(1000) } }), small)).status).toBe(200);
      // body 1, variables 2, a 3 … f 8: at the limit; g would be 9
      expectCode(await send(json('POST', '/v1/signals', { name: 's', variables: { a: { b: { c: { d: { e: { f: { g: {} } } } } } } } }), small), 400, 'json_too_deep');
      expect((await send(json('POST', '/v1/signals', { name: 's', variables: { a: { b: { c: { d: { e: { f: {} } } } } } } }), small)).status).toBe(200);
      expectCode(await send({ method: 'GET', url: '/v1/tasks?limit=11' }, small), 400, 'page_size_too_large');
      expect((await send({ method: 'GET', url: '/v1/tasks?limit=10' }, small)).status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('api: ids, page sizes, cursors', () => {
  it('answers unknown, malformed and 10 kB ids with the resource\'s 404', async () => {
    const before = await instanceCount();
    const idRoutes = operations.filter((o) => o.params.length > 0);
    expect(idRoutes.length).toBeGreaterThan(8);
    for (const op of idRoutes) {
      for (const id of ['00000000-0000-4000-8000-000000000000', crypto.randomUUID(), 'not-a-uuid', 'x'.repeat(10 * 1024), '%20', '..', '12345']) {
        const url = urlOf(op, Object.fromEntries(op.params.map((p) => [p, id === '..' || id === '%20' ? id : encodeURIComponent(id)])));
        const payload = op.jsonBody ? minimal(op.body) : undefined;
        const a = await send(payload !== undefined ? json(op.method, url, payload) : { method: op.method, url });
        const what = `${op.method} ${op.path} with ${id.slice(0, 40)}`;
        if (id === '..') {
          // the URL resolves to another route (or none): whatever it is, not a 5xx
          expect(a.status, what).toBeLessThan(500);
          continue;
        }
        expectCode(a, 404, /^(?!route_)\w+_not_found$/, what);
      }
    }
    expect(await instanceCount()).toBe(before);
  });

  const listRoutes = () => operations.filter((o) => o.method === 'GET' && o.query['limit'] !== undefined);

  it('answers a page size over BATON_MAX_PAGE_SIZE (1000) with 400 page_size_too_large on every list', async () => {
    expect(listRoutes().length).toBeGreaterThanOrEqual(5);
    for (const op of listRoutes()) {
      const url = (q: string) => urlOf(op, realParams(op), q);
      expect([op.path, (await send({ method: 'GET', url: url('limit=1000') })).status]).toEqual([op.path, 200]);
      for (const limit of ['1001', '5000', '1000000000', '99999999999999999999', '1e9', '0x7fffffff', '1001.5']) {
        expectCode(await send({ method: 'GET', url: url(`limit=${limit}`) }), 400, 'page_size_too_large', `${op.path} limit=${limit}`);
      }
      for (const limit of ['0', '-1', 'ten', '', '1.5', 'Infinity', 'NaN']) {
        const a = await send({ method: 'GET', url: url(`limit=${limit}`) });
        expectCode(a, 400, /^(invalid_request|page_size_too_large)$/, `${op.path} limit=${limit}`);
      }
    }
  });

  it('answers cursors it did not give out with 400 invalid_cursor', async () => {
    const cursorRoutes = operations.filter((o) => o.method === 'GET' && o.query['cursor'] !== undefined);
    expect(cursorRoutes.length).toBeGreaterThanOrEqual(4);
    const b64 = (s: string) => Buffer.from(s).toString('base64url');
    const bad = ['%25%25%25', 'garbage!', b64('garbage'), b64('-1'), b64('99999999999999999999'), b64('00000000-0000-4000-8000-00000000000'), b64('\u0000'), 'x'.repeat(10_000), b64('1'.repeat(300)), '====', b64('1 OR 1=1'), "'--"];
    for (const op of cursorRoutes) {
      for (const cursor of bad) {
        expectCode(await send({ method: 'GET', url: urlOf(op, realParams(op), `cursor=${cursor.startsWith('%') ? cursor : encodeURIComponent(cursor)}`) }), 400, 'invalid_cursor', `${op.path} ${cursor.slice(0, 30)}`);
      }
    }
    // a cursor of the other kind (a history id on a UUID list, a UUID on the history) is a 400 too
    expectCode(await send({ method: 'GET', url: `/v1/tasks?cursor=${b64('12345')}` }), 400, 'invalid_cursor');
    expectCode(await send({ method: 'GET', url: `/v1/process-instances/${pool.instances[0]}/history?cursor=${b64(pool.instances[0]!)}` }), 400, 'invalid_cursor');
    for (const path of ['/v1/process-instances', '/v1/incidents']) {
      // these two routes do not say which kind they expect, so the database refuses it instead
      expectCode(await send({ method: 'GET', url: `${path}?cursor=${b64('12345')}` }), 400, /^(invalid_cursor|invalid_request)$/, path);
    }
    // a good cursor still pages
    const first = await send({ method: 'GET', url: '/v1/process-instances?limit=2' });
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await send({ method: 'GET', url: `/v1/process-instances?limit=2&cursor=${first.body.nextCursor}` });
    expect(second.status).toBe(200);
    expect(second.body.items[0].id).not.toBe(first.body.items[0].id);
  });
});

// ---- property: random requests to every route -------------------------------

const nasty = fc.constantFrom('', ' ', '%', '%00', '%ff', '%ED%A0%80', '..', '../..', 'null', 'undefined', 'true', '-1', '0', '1e309', 'NaN', '[]', '{}', "' OR 1=1 --", '${x}', '<x/>', 'x'.repeat(10 * 1024), '\u202e', '🙂');
const rawSegment = fc.constantFrom('%', '%00', '%ff', '%ED%A0%80', '%2F', '..', '%2e%2e');

function stringArb(name: string, schema: Schema): fc.Arbitrary<string> {
  const options: fc.Arbitrary<string>[] = [fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 10 }), nasty];
  if (schema.enum) options.push(fc.constantFrom(...(schema.enum as string[])));
  if (/id$/i.test(name)) options.push(fc.constantFrom(...allIds()), fc.uuid());
  if (/key$/i.test(name) || name === 'processKey') options.push(fc.constantFrom(...pool.keys));
  if (/element/i.test(name)) options.push(fc.constantFrom(...pool.elements));
  if (name === 'name') options.push(fc.constantFrom(...pool.names));
  if (name === 'topics' || name === 'topic') options.push(fc.constant('fuzz-topic'));
  if (name === 'cursor') options.push(fc.base64String({ maxLength: 60 }), fc.uuid().map((u) => Buffer.from(u).toString('base64url')));
  // the valid ones twice as likely: they get past validation to the handlers
  return fc.oneof(...options, ...options.slice(3));
}

function integerArb(name: string, schema: Schema): fc.Arbitrary<number> {
  // waiting routes answer when the step worker is done; keep the waits short
  if (name === 'waitMs') return fc.constantFrom(0, 1, 50, 200);
  const lo = schema.minimum ?? -10;
  const hi = schema.maximum ?? 10_000;
  return fc.oneof(fc.integer({ min: lo, max: hi }), fc.constantFrom(lo - 1, hi + 1, -1, 0, 2 ** 31, 2 ** 53, 1e20));
}

const variablesArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.integer({ min: 55, max: 75 }).map((n) => { let v: unknown = 'leaf'; for (let i = 0; i < n; i++) v = { n: v }; return { deep: v }; }) },
  { weight: 1, arbitrary: fc.constantFrom({ s: '\u0000' }, { s: '\ud800' }, { n: 1e308 }, { '': 1 }, { __proto__x: 1 }, { constructor: { prototype: 1 } }, { s: 'x'.repeat(100_000) }) },
);

function valueArb(name: string, schema: Schema | undefined, depth: number): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return fc.jsonValue({ maxDepth: 2 });
  if (name === 'variables') return variablesArb;
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  const choices: fc.Arbitrary<unknown>[] = [];
  for (const t of types) {
    if (t === 'object') choices.push(objectArb(schema, depth));
    else if (t === 'string') choices.push(stringArb(name, schema));
    else if (t === 'integer' || t === 'number') choices.push(integerArb(name, schema));
    else if (t === 'boolean') choices.push(fc.boolean());
    else if (t === 'null') choices.push(fc.constant(null));
    else if (t === 'array') choices.push(fc.array(valueArb(name, schema.items, depth + 1), { maxLength: 5 }));
  }
  if (choices.length === 0) return fc.jsonValue({ maxDepth: 3 });
  // now and then a value of the wrong type
  return fc.oneof({ weight: 6, arbitrary: fc.oneof(...choices) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
}

function objectArb(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  const props = schema.properties ?? {};
  const keys = Object.keys(props);
  if (keys.length === 0) return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
  const record = fc.record(Object.fromEntries(keys.map((k) => [k, valueArb(k, props[k], depth + 1)])), { requiredKeys: [] });
  // mostly with the required keys present, sometimes with an unknown one
  return fc.tuple(record, fc.nat(9), fc.nat(9)).map(([r, withRequired, extra]) => {
    const o = { ...(r as Record<string, unknown>) };
    if (withRequired > 1) for (const k of schema.required ?? []) if (!(k in o)) o[k] = minimal(props[k]);
    if (extra === 0) o['unexpected'] = 1;
    return o;
  });
}

/** values that pass the schema, so the request reaches the handler and the database */
function validArb(name: string, schema: Schema | undefined): fc.Arbitrary<unknown> {
  if (!schema) return fc.constant({});
  // a body's variables are an object; the list routes' ?variables= is a string of names
  if (name === 'variables' && schema.type !== 'string') return fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 4 });
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const props = schema.properties ?? {};
      const required = schema.required ?? [];
      const keys = Object.keys(props);
      if (keys.length === 0) return fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: schema.minProperties ?? 0, maxKeys: 4 });
      return fc.record(Object.fromEntries(keys.map((k) => [k, validArb(k, props[k])])), { requiredKeys: required.filter((k) => keys.includes(k)) });
    }
    case 'array':
      return fc.array(validArb(name === 'topics' ? 'topic' : name, schema.items), { minLength: Math.max(schema.minItems ?? 0, 1), maxLength: 3 });
    case 'integer':
    case 'number':
      if (name === 'waitMs') return fc.constantFrom(0, 50, 200);
      if (name === 'version') return fc.constantFrom(1, 2);
      return fc.integer({ min: schema.minimum ?? 0, max: Math.min(schema.maximum ?? 100, (schema.minimum ?? 0) + 100) });
    case 'boolean':
      return fc.boolean();
    case 'string': {
      if (/id$/i.test(name)) return fc.oneof(fc.constantFrom(...allIds()), fc.constantFrom(...pool.elements));
      if (/key$/i.test(name)) return fc.constantFrom(...pool.keys, 'k');
      if (/element/i.test(name)) return fc.constantFrom(...pool.elements);
      if (name === 'name') return fc.constantFrom(...pool.names);
      if (name === 'topic') return fc.constant('fuzz-topic');
      if (name === 'content') return fc.constantFrom(FUZZ_MODEL, FUZZ_MODEL.replace('name="Review"', 'name="Review v2"'), '<x/>');
      return fc.string({ minLength: Math.max(schema.minLength ?? 0, 1), maxLength: Math.min(schema.maxLength ?? 20, 20) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

type Body = { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'raw'; contentType: string | null; payload: string };

const rawBodyArb: fc.Arbitrary<Body> = fc.record({
  kind: fc.constant('raw' as const),
  contentType: fc.constantFrom(null, 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/xml', 'multipart/form-data', 'multipart/form-data; boundary=b', 'application/x-www-form-urlencoded', 'application/vnd.api+json', '*/*', 'garbage'),
  payload: fc.oneof(
    fc.string({ maxLength: 50 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
    fc.constantFrom('', '{', '{"a":1,}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '[[[[[[[[[[', `${'['.repeat(50_000)}${']'.repeat(50_000)}`, '1e999', '-0', '"\\u0000"', '--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n<x/>\r\n--b--\r\n'),
  ),
});

/** the ids of the kind a route's {id} names, so requests reach rows that exist */
function idsFor(path: string): string[] {
  const ids = path.startsWith('/v1/tasks')
    ? pool.tasks
    : path.startsWith('/v1/external-tasks')
      ? pool.jobs
      : path.startsWith('/v1/incidents')
        ? pool.incidents
        : path.startsWith('/v1/messages')
          ? pool.messages
          : path.startsWith('/v1/process-definitions')
            ? pool.keys
            : pool.instances;
  return ids.length > 0 ? ids : allIds();
}

function requestArb(op: Operation): fc.Arbitrary<Req & { op: string }> {
  const paramArb = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...idsFor(op.path)) },
    { weight: 2, arbitrary: fc.constantFrom(...allIds()).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom(...pool.keys) },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), nasty).map(encodeURIComponent) },
    { weight: 1, arbitrary: rawSegment },
  );
  const params = fc.tuple(...op.params.map(() => paramArb));
  const queryEntries = fc.array(
    fc.oneof(
      ...Object.entries(op.query).map(([k, s]) => validArb(k, s).map((v) => [k, String(v)] as [string, string])),
      ...Object.entries(op.query).map(([k, s]) => valueArb(k, s, 1).map((v) => [k, typeof v === 'string' ? v : JSON.stringify(v) ?? ''] as [string, string])),
      fc.tuple(fc.constantFrom('limit', 'cursor', 'unknown', ''), fc.oneof(fc.string({ maxLength: 20 }), nasty)),
    ),
    { maxLength: 4 },
  );
  const bodyArb: fc.Arbitrary<Body> = op.jsonBody
    ? fc.oneof(
        { weight: 4, arbitrary: validArb('body', op.body ?? undefined).map((value): Body => ({ kind: 'json', value })) },
        { weight: 4, arbitrary: valueArb('body', op.body ?? undefined, 0).map((value): Body => ({ kind: 'json', value })) },
        { weight: 2, arbitrary: rawBodyArb },
        { weight: 1, arbitrary: fc.constant<Body>({ kind: 'none' }) },
      )
    : fc.oneof({ weight: 4, arbitrary: fc.constant<Body>({ kind: 'none' }) }, { weight: 1, arbitrary: rawBodyArb });
  return fc.tuple(params, queryEntries, bodyArb, fc.boolean()).map(([ps, qs, body, rawQuery]) => {
    const url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => ps[op.params.indexOf(name)] ?? 'x');
    const query = rawQuery
      ? qs.map(([k, v]) => `${k}=${v}`).join('&')
      : qs.map(([k, v]) => `${encodeURIComponent(k)}=${safeEncode(v)}`).join('&');
    const r: Req & { op: string } = { op: `${op.method} ${op.path}`, method: op.method, url: query ? `${url}?${query}` : url };
    if (body.kind === 'json') {
      r.headers = { 'content-type': 'application/json' };
      r.payload = JSON.stringify(body.value) ?? 'null';
    } else if (body.kind === 'raw') {
      if (body.contentType !== null) r.headers = { 'content-type': body.contentType };
      r.payload = body.payload;
    }
    return r;
  });
}

function safeEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '?'));
  }
}

describe('api: property — random requests to every route in /openapi.json never get a 5xx', () => {
  it('holds for random ids, query parameters, JSON values and raw bodies', async () => {
    const numRuns = Math.round(600 * SCALE);
    const byOp = new Map<string, { cases: number; '2xx': number; '4xx': number; '5xx': number; codes: Record<string, number> }>();
    const failures: string[] = [];
    const arb = fc.oneof(...operations.map(requestArb));
    await fc.assert(
      fc.asyncProperty(arb, async (r) => {
        const row = byOp.get(r.op) ?? { cases: 0, '2xx': 0, '4xx': 0, '5xx': 0, codes: {} };
        byOp.set(r.op, row);
        row.cases++;
        const what = `${r.method} ${r.url.slice(0, 200)} ${JSON.stringify(r.headers ?? {})} ${String(r.payload ?? '').slice(0, 300)}`;
        let a: Answer;
        try {
          a = await Promise.race([
            send(r),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 20 s')), 20_000)),
          ]);
        } catch (err) {
          row['5xx']++;
          failures.push(`${what} → threw ${String(err)}`);
          return true;
        }
        if (a.status >= 500) {
          row['5xx']++;
          failures.push(`${what} → ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
        } else if (a.status >= 400) {
          row['4xx']++;
          const code = `${a.status} ${String(a.body?.code)}`;
          row.codes[code] = (row.codes[code] ?? 0) + 1;
          // a stable code and a message on every client error (the XML route answers 404s as JSON too)
          if (typeof a.body?.code !== 'string' || !/^[a-z][a-z0-9_]*$/.test(a.body.code) || typeof a.body?.message !== 'string') failures.push(`${what} → ${a.status} without {code, message}: ${String(a.body).slice(0, 200)}`);
        } else row['2xx']++;
        return true;
      }),
      { numRuns, seed: SEED },
    );
    const total = [...byOp.values()].reduce((s, r) => ({ cases: s.cases + r.cases, fiveXX: s.fiveXX + r['5xx'] }), { cases: 0, fiveXX: 0 });
    console.log(`api fuzz (seed ${SEED}, FUZZ_SCALE ${SCALE}): ${total.cases} requests, ${total.fiveXX} 5xx, ${operations.length} routes`);
    const topCodes = (codes: Record<string, number>) =>
      Object.entries(codes)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([c, n]) => `${c} ×${n}`)
        .join(', ');
    console.table(Object.fromEntries([...byOp.entries()].sort().map(([op, { codes, ...row }]) => [op, { ...row, 'most frequent 4xx': topCodes(codes) }])));
    expect(failures).toEqual([]);
    expect(total.cases).toBe(numRuns);
  }, 120_000 * SCALE);
});
