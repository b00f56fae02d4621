/**
 * Hostile deployments (issue 5): malformed and truncated XML, entity expansion
 * and external entities, pathological nesting, characters XML forbids, 50 MB
 * uploads, malformed multipart bodies, and a property that mutates valid BPMN.
 * Every answer is 201 or a 4xx with a stable code, never a 5xx, and a rejected
 * deployment changes nothing.
 *
 * FUZZ_SCALE=20 runs twenty times the default number of cases; FUZZ_SEED
 * replays a run (the seed is printed with the counts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { parseXml } from '../../src/bpmn/model.js';
import type { Baton } from '../../src/boot.js';
import { EXAMPLE_FILE } from '../../src/boot.js';
import { isolation, silentLogger, startDistributed } from '../support/env.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1) || 1;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const MB = 1024 * 1024;

const iso = isolation('deploy_fuzz');
let baton: Baton;
let app: FastifyInstance;

beforeAll(async () => {
  baton = await startDistributed(iso, ['api']);
  app = baton.app!;
});
afterAll(async () => {
  await baton?.close();
  await iso.drop();
});

type Answer = { status: number; body: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

const parse = (raw: string): unknown => {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
};

async function deployJson(content: string, name = 'fuzz.bpmn', on: FastifyInstance = app): Promise<Answer> {
  const res = await on.inject({ method: 'POST', url: '/v1/deployments', payload: { name: 'fuzz', files: [{ name, content }] } });
  return { status: res.statusCode, body: parse(res.body) };
}

const BOUNDARY = '----baton-fuzz-boundary';
function multipartBody(content: string | Buffer, filename = 'fuzz.bpmn'): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/xml\r\n\r\n`),
    Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8'),
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}
async function deployMultipart(content: string | Buffer, on: FastifyInstance = app): Promise<Answer> {
  const res = await on.inject({
    method: 'POST',
    url: '/v1/deployments',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    payload: multipartBody(content),
  });
  return { status: res.statusCode, body: parse(res.body) };
}

async function counts(): Promise<string> {
  const r = await sql<{ d: string; p: string; r: string }>`select
      (select count(*) from deployment) as d,
      (select count(*) from process_definition) as p,
      (select count(*) from deployment_resource) as r`.execute(baton.db);
  return JSON.stringify(r.rows[0]);
}

function expectInvalidModel(a: Answer, pattern?: RegExp): void {
  expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(400);
  expect(a.body.code).toBe('invalid_model');
  expect(Array.isArray(a.body.details) && a.body.details.length > 0).toBe(true);
  for (const p of a.body.details) expect(p).toMatchObject({ file: expect.any(String), message: expect.any(String) });
  if (pattern) expect(a.body.details.map((p: { message: string }) => p.message).join(' | ')).toMatch(pattern);
}

const EXAMPLE = readFileSync(EXAMPLE_FILE, 'utf8');
const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>';
const withProlog = (prolog: string, xml = EXAMPLE) => xml.replace(XML_DECL, `${XML_DECL}\n${prolog}`);

/** start → task → end around `inner`, with the process id `key` */
const model = (key: string, inner = '<bpmn:task id="t" />', extra = '') => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d-${key}" targetNamespace="http://baton.dev/test">
  <bpmn:process id="${key}" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
    ${inner}
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />
    <bpmn:endEvent id="e" />
    ${extra}
  </bpmn:process>
</bpmn:definitions>`;

const LAUGHS = `<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>`;
const XXE = `<!DOCTYPE definitions [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> <!ENTITY % remote SYSTEM "http://127.0.0.1:1/evil.dtd"> %remote; ]>`;

describe('deploy: entities and DOCTYPE', () => {
  it('the XML parser itself neither expands entities nor reads external ones (so nothing blows up before our check)', async () => {
    const laughs = await parseXml(withProlog(LAUGHS).replace('name="Approve order"', 'name="&lol9;"'));
    const xxe = await parseXml(withProlog(XXE).replace('name="Approve order"', 'name="&xxe;"'));
    const nameOf = (defs: typeof laughs.definitions, id: string): unknown => {
      const process = (defs['rootElements'] as Array<Record<string, unknown>>)[0]!;
      return (process['flowElements'] as Array<Record<string, unknown>>).find((e) => e['id'] === id)?.['name'];
    };
    expect(nameOf(laughs.definitions, 'approve')).toBe('&lol9;');
    expect(nameOf(xxe.definitions, 'approve')).toBe('&xxe;');
  });

  it('rejects any DOCTYPE or entity declaration as invalid_model, and stores nothing', async () => {
    const before = await counts();
    const cases = [
      withProlog(LAUGHS).replace('name="Approve order"', 'name="&lol9;"'),
      withProlog(XXE).replace('name="Approve order"', 'name="&xxe;"'),
      withProlog('<!DOCTYPE bpmn:definitions>'),
      withProlog('<!doctype html>'),
      withProlog('<!ENTITY x "y">'),
      EXAMPLE.replace('<bpmn:process', '<!DOCTYPE late [<!ENTITY a "b">]><bpmn:process'),
      `<!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd">${EXAMPLE.replace(XML_DECL, '')}`,
    ];
    for (const xml of cases) {
      for (const a of [await deployJson(xml), await deployMultipart(xml)]) {
        expectInvalidModel(a, /DOCTYPE|declaration/);
        expect(a.body.details[0].elementId).toBeNull();
      }
    }
    expect(await counts()).toBe(before);
  });

  it('does not mistake DOCTYPE text in a comment or a CDATA script for a declaration', async () => {
    const xml = model(
      'doctype-in-text',
      '<bpmn:scriptTask id="t" scriptFormat="javascript"><bpmn:script><![CDATA[html = "<!DOCTYPE html><p>&amp;</p>";]]></bpmn:script></bpmn:scriptTask>',
      '<!-- <!DOCTYPE not-a-declaration [ <!ENTITY x "y"> ]> -->',
    );
    const a = await deployJson(xml);
    expect(a.status, JSON.stringify(a.body)).toBe(201);
  });
});

describe('deploy: malformed input', () => {
  it('answers every truncation of a model with invalid_model and a position', async () => {
    const before = await counts();
    const cuts = [1, 10, 38, 39, 60, 200, 500, EXAMPLE.indexOf('<bpmn:process') + 5, Math.floor(EXAMPLE.length / 2), EXAMPLE.length - 30, EXAMPLE.length - 2];
    for (const cut of cuts) {
      const a = await deployJson(EXAMPLE.slice(0, cut));
      expectInvalidModel(a);
      expect(a.body.details[0].message).toMatch(/line|not a BPMN|no process/);
    }
    expect(await counts()).toBe(before);
  });

  it('answers text that is not BPMN with invalid_model', async () => {
    const notBpmn = [
      ' ',
      'hello',
      '{"definitions":{}}',
      '<html><body>hi</body></html>',
      '<?xml version="1.0"?><root/>',
      '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
      '<<<>>>',
      '<a b="c></a>',
      '<a><b></a></b>',
      Buffer.from([0xff, 0xfe, 0x00, 0x3c, 0xc3, 0x28, 0xa0, 0xa1]).toString('latin1'),
    ];
    for (const xml of notBpmn) expectInvalidModel(await deployJson(xml));
    // invalid UTF-8 in a multipart upload decodes to U+FFFD: a parse problem, not a 500
    expectInvalidModel(await deployMultipart(Buffer.from([0x3c, 0xc3, 0x28, 0xff, 0xfe, 0x3e])));
  });

  it('rejects characters XML forbids, raw or as character references', async () => {
    const before = await counts();
    const bad = [
      EXAMPLE.replace('name="Approve order"', 'name="a\u0000b"'),
      EXAMPLE.replace('name="Approve order"', 'name="&#0;"'),
      EXAMPLE.replace('name="Approve order"', 'name="&#x1;"'),
      EXAMPLE.replace('name="Approve order"', 'name="&#99999999;"'),
      EXAMPLE.replace('name="Approve order"', 'name="&#x110000;"'),
      EXAMPLE.replace('name="Approve order"', 'name="\ud800"'),
      EXAMPLE.replace('name="Approve order"', 'name="\u001b[31m"'),
    ];
    for (const xml of bad) expectInvalidModel(await deployJson(xml), /not well-formed XML/);
    expectInvalidModel(await deployMultipart(bad[0]!), /U\+0000/);
    expect(await counts()).toBe(before);
  });

  it('rejects 100,000 nested elements quickly instead of overflowing the stack', async () => {
    const n = 100_000;
    for (const tag of ['bpmn:subProcess', 'x', 'bpmn:extensionElements']) {
      const nested = `${Array.from({ length: n }, (_, i) => `<${tag} id="n${i}">`).join('')}${`</${tag}>`.repeat(n)}`;
      expectInvalidModel(await deployJson(EXAMPLE.replace('<bpmn:startEvent', `${nested}<bpmn:startEvent`)), /nested deeper than/);
    }
  });

  it('compiles subprocesses nested as deep as the limit allows without a 500', async () => {
    // 120 levels of subprocess (each start → inner → end) is ~240 XML levels, under the 256 limit
    let inner = '<bpmn:task id="t" />';
    for (let i = 0; i < 120; i++) {
      inner = `<bpmn:subProcess id="sp${i}"><bpmn:startEvent id="sps${i}" /><bpmn:sequenceFlow id="spf${i}" sourceRef="sps${i}" targetRef="${i === 0 ? 't' : `sp${i - 1}`}" />${inner}</bpmn:subProcess>`;
    }
    const xml = model('deep-subprocesses', inner.replace('id="sp119"', 'id="t2"')).replace('targetRef="t" />\n    <bpmn:subProcess', 'targetRef="t2" />\n    <bpmn:subProcess');
    const a = await deployJson(xml);
    expect([201, 400], JSON.stringify(a.body).slice(0, 300)).toContain(a.status);
    if (a.status === 400) expect(a.body.code).toBe('invalid_model');
  });

  it('bounds the precomputation of thousands of chained inclusive joins', async () => {
    let body = '<bpmn:startEvent id="s" />';
    let prev = 's';
    for (let i = 0; i < 2000; i++) {
      // two flows into each gateway: every one is a join that stores what reaches it
      body += `<bpmn:inclusiveGateway id="g${i}" /><bpmn:sequenceFlow id="f${i}" sourceRef="${prev}" targetRef="g${i}" /><bpmn:sequenceFlow id="h${i}" sourceRef="${prev}" targetRef="g${i}" />`;
      prev = `g${i}`;
    }
    body += `<bpmn:endEvent id="e" /><bpmn:sequenceFlow id="fe" sourceRef="${prev}" targetRef="e" />`;
    const xml = `<?xml version="1.0"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x"><bpmn:process id="inclusive-chain" isExecutable="true">${body}</bpmn:process></bpmn:definitions>`;
    expectInvalidModel(await deployJson(xml), /too many elements lead to joining gateways/);
  });
});

describe('deploy: size limits and multipart', () => {
  /** a Readable of `total` bytes in 64 KiB chunks that counts what was read from it */
  function sizedStream(prefix: string, total: number, suffix: string): { stream: Readable; pulled: () => number } {
    // one chunk, pushed again and again: the test itself allocates nothing per MB
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    let stage: 'prefix' | 'body' | 'done' = 'prefix';
    const stream = new Readable({
      read() {
        if (stage === 'prefix') {
          stage = 'body';
          sent += prefix.length;
          this.push(prefix);
        } else if (stage === 'body' && sent < total) {
          sent += chunk.length;
          this.push(chunk);
        } else if (stage === 'body') {
          stage = 'done';
          sent += suffix.length;
          this.push(suffix);
          this.push(null);
        }
      },
    });
    return { stream, pulled: () => sent };
  }

  const heap = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  // a full GC without --expose-gc on the command line (the vitest config is shared)
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;

  /**
   * Runs `fn` and measures memory: the peak over the baseline (sampled every
   * millisecond, so it includes garbage not yet collected) and what is still
   * held after a full GC.
   */
  async function measured<T>(fn: () => Promise<T>): Promise<{ result: T; peak: number; retained: number }> {
    gc();
    const before = heap();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, heap() - before)), 1);
    try {
      const result = await fn();
      peak = Math.max(peak, heap() - before);
      // twice, a tick apart: buffers are freed by finalisers that run after the first
      gc();
      await new Promise((r) => setTimeout(r, 20));
      gc();
      return { result, peak, retained: heap() - before };
    } finally {
      clearInterval(sampler);
    }
  }

  it('answers a 50 MB JSON deployment with 413 payload_too_large', async () => {
    const before = await counts();
    const content = model('huge').replace('</bpmn:process>', `<!-- ${'x'.repeat(50 * MB)} --></bpmn:process>`);
    const res = await app.inject({ method: 'POST', url: '/v1/deployments', payload: { files: [{ name: 'huge.bpmn', content }] } });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'payload_too_large' });
    expect(await counts()).toBe(before);
  });

  it('answers a 50 MB multipart deployment with 413 payload_too_large (with and without Content-Length)', async () => {
    const before = await counts();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/deployments',
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
      payload: multipartBody(Buffer.alloc(50 * MB, 'a')),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'payload_too_large' });

    // streamed (chunked, no Content-Length): the per-file limit stops the read
    const head = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bpmn"\r\n\r\n`;
    const { stream, pulled } = sizedStream(head, 50 * MB, `\r\n--${BOUNDARY}--\r\n`);
    const { result: streamed, peak, retained } = await measured(() =>
      app.inject({ method: 'POST', url: '/v1/deployments', headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, payload: stream }),
    );
    expect(streamed.statusCode, streamed.body).toBe(413);
    expect(streamed.json()).toMatchObject({ code: 'payload_too_large' });
    console.log(`streamed 50 MB multipart: ${(pulled() / MB).toFixed(1)} MB read, memory peak +${(peak / MB).toFixed(1)} MB, retained +${(retained / MB).toFixed(1)} MB`);
    // Never the whole upload at once: the file part stops at the 10 MB limit.
    // What stays after a GC (about the limit: the last request's buffers and
    // pools) does not grow from one upload to the next.
    expect(peak).toBeLessThan(50 * MB);
    expect(retained).toBeLessThan(25 * MB);
    expect(await counts()).toBe(before);
  });

  it('answers a streamed 50 MB JSON body (no Content-Length) with 413, discarding what is over the limit', async () => {
    const { stream, pulled } = sizedStream('{"files":[{"name":"x.bpmn","content":"', 50 * MB, '"}]}');
    const { result: res, peak, retained } = await measured(() =>
      app.inject({ method: 'POST', url: '/v1/deployments', headers: { 'content-type': 'application/json' }, payload: stream }),
    );
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'payload_too_large' });
    // Fastify drains the rest of an over-long body (so the connection stays
    // usable) but keeps none of it
    console.log(`streamed 50 MB JSON: ${(pulled() / MB).toFixed(1)} MB read, memory peak +${(peak / MB).toFixed(1)} MB, retained +${(retained / MB).toFixed(1)} MB`);
    expect(peak).toBeLessThan(50 * MB);
    expect(retained).toBeLessThan(5 * MB);
  });

  it('takes BATON_MAX_MODEL_BYTES from the config', async () => {
    const small = await buildApp({ db: baton.db, transport: baton.transport, commands: baton.commands, logger: silentLogger(), limits: { maxModelBytes: 4096 } });
    try {
      const fits = model('fits-4k');
      expect(fits.length).toBeLessThan(3000);
      expect((await deployJson(fits, 'fits.bpmn', small)).status).toBe(201);
      const big = model('too-big-4k', '<bpmn:task id="t" />', `<!-- ${'x'.repeat(4096)} -->`);
      for (const a of [await deployJson(big, 'big.bpmn', small), await deployMultipart(big, small)]) {
        expect(a.status).toBe(413);
        expect(a.body.code).toBe('payload_too_large');
      }
      // several files that fit one by one but not together
      const half = model('half', '<bpmn:task id="t" />', `<!-- ${'x'.repeat(1500)} -->`);
      const two = Buffer.concat([
        Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"; filename="a.bpmn"\r\n\r\n${half}\r\n`),
        Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="b"; filename="b.bpmn"\r\n\r\n${half}\r\n`),
        Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="c"; filename="c.bpmn"\r\n\r\n${half}\r\n--${BOUNDARY}--\r\n`),
      ]);
      const { stream } = { stream: Readable.from([two]) };
      const res = await small.inject({ method: 'POST', url: '/v1/deployments', headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, payload: stream });
      expect(res.statusCode).toBe(413);
      expect(res.json().code).toBe('payload_too_large');
    } finally {
      await small.close();
    }
  });

  it('answers malformed multipart bodies and wrong media types with stable 4xx codes', async () => {
    const before = await counts();
    const send = async (contentType: string | undefined, payload: string | Buffer) => {
      const res = await app.inject({ method: 'POST', url: '/v1/deployments', headers: contentType ? { 'content-type': contentType } : {}, payload });
      return { status: res.statusCode, body: parse(res.body) as { code: string } };
    };
    const cases: Array<[string | undefined, string | Buffer, number, string]> = [
      ['multipart/form-data', multipartBody(EXAMPLE), 400, 'invalid_multipart'], // no boundary
      [`multipart/form-data; boundary=${BOUNDARY}`, '{"files":[{"name":"x.bpmn","content":"<x/>"}]}', 400, 'invalid_multipart'], // JSON sent as multipart
      [`multipart/form-data; boundary=${BOUNDARY}`, multipartBody(EXAMPLE).subarray(0, 200), 400, 'invalid_multipart'], // truncated
      [`multipart/form-data; boundary=${BOUNDARY}`, `--${BOUNDARY}\r\nbroken header\r\n\r\nx\r\n--${BOUNDARY}--\r\n`, 400, 'invalid_request'],
      [`multipart/form-data; boundary=${BOUNDARY}`, `--${BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nonly a name\r\n--${BOUNDARY}--\r\n`, 400, 'invalid_request'],
      [`multipart/form-data; boundary=${BOUNDARY}`, '', 400, 'invalid_request'],
      ['application/xml', EXAMPLE, 415, 'unsupported_media_type'],
      ['text/plain', EXAMPLE, 415, 'unsupported_media_type'],
      ['application/octet-stream', EXAMPLE, 415, 'unsupported_media_type'],
      ['application/json', '', 400, 'invalid_json'],
      ['application/json', '{"files":[{"name":"x.bpmn","content":', 400, 'invalid_json'],
      ['application/json', '[]', 400, 'invalid_request'],
      ['application/json', '{"files":[{"name":"x.bpmn","content":""}]}', 400, 'invalid_request'],
      [undefined, '', 400, 'invalid_request'],
    ];
    for (const [ct, payload, status, code] of cases) {
      const a = await send(ct, payload);
      expect([ct, String(payload).slice(0, 60), a.status, a.body.code]).toEqual([ct, String(payload).slice(0, 60), status, code]);
    }
    expect(await counts()).toBe(before);
  });
});

// ---- property: mutated BPMN ------------------------------------------------

const SOURCES: Array<[string, string]> = [
  ['order-approval.bpmn', EXAMPLE],
  ...readdirSync(new URL('../fixtures/', import.meta.url))
    .filter((f) => f.endsWith('.bpmn'))
    .sort()
    .map((f): [string, string] => [f, readFileSync(new URL(`../fixtures/${f}`, import.meta.url), 'utf8')]),
];

type Op =
  | { kind: 'truncate' | 'deleteLine' | 'duplicateLine' | 'deleteAttr' | 'deleteElement' | 'duplicateElement' | 'doctype'; a: number }
  | { kind: 'flip' | 'insert' | 'setAttr' | 'renameTag' | 'fragment'; a: number; text: string }
  | { kind: 'swapLines' | 'swapIds' | 'copyId'; a: number; b: number };

const nasty = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
  fc.constantFrom('<', '>', '&', '"', "'", '&amp;', '&#0;', '&#x10FFFF;', '&lol;', ']]>', '<!--', '-->', '\u0000', '\ud800', '\uffff', '${x}', '=a.b', 'R/PT1S', 'R3/PT10M', '0 0 * * *', 'CRON_TZ=Mars/Base 0 * * * *', '2026-13-45T99:99:99Z', 'P', 'PT-1S', 'javascript', 'python', 'true', 'false', '-1', '1e309', ''),
);
const FRAGMENTS = [
  '<bpmn:task id="extra" />',
  '<bpmn:sequenceFlow id="xf" sourceRef="nowhere" targetRef="start" />',
  '<bpmn:subProcess id="xsp"><bpmn:startEvent id="xs" /></bpmn:subProcess>',
  '<bpmn:boundaryEvent id="xb" attachedToRef="nothing"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>',
  '<bpmn:complexGateway id="xcg" />',
  '<bpmn:inclusiveGateway id="xig" default="nowhere" />',
  '<bpmn:intermediateThrowEvent id="xl"><bpmn:linkEventDefinition name="nolink" /></bpmn:intermediateThrowEvent>',
  '<bpmn:callActivity id="xca" calledElement="${dynamic}" />',
  '<bpmn:scriptTask id="xst" scriptFormat="groovy"><bpmn:script>1</bpmn:script></bpmn:scriptTask>',
  '<bpmn:multiInstanceLoopCharacteristics />',
  '<bpmn:standardLoopCharacteristics />',
  '<bpmn:extensionElements><zeebe:taskDefinition type="" /></bpmn:extensionElements>',
  '<unknown:thing xmlns:unknown="urn:x" />',
  '<bpmn:unknownThing />',
  '<bpmn:process id="second" isExecutable="true"><bpmn:startEvent id="s2" /></bpmn:process>',
  '<bpmn:message id="xm" />',
  '<bpmn:error id="xe" errorCode="" />',
];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('truncate', 'deleteLine', 'duplicateLine', 'deleteAttr', 'deleteElement', 'duplicateElement', 'doctype'), a: fc.nat() }),
  fc.record({ kind: fc.constantFrom('flip', 'insert', 'setAttr', 'renameTag'), a: fc.nat(), text: nasty }),
  fc.record({ kind: fc.constant('fragment'), a: fc.nat(), text: fc.constantFrom(...FRAGMENTS) }),
  fc.record({ kind: fc.constantFrom('swapLines', 'swapIds', 'copyId'), a: fc.nat(), b: fc.nat() }),
) as fc.Arbitrary<Op>;

const BPMN_TAGS = ['bpmn:task', 'bpmn:userTask', 'bpmn:startEvent', 'bpmn:endEvent', 'bpmn:subProcess', 'bpmn:exclusiveGateway', 'bpmn:boundaryEvent', 'bpmn:sequenceFlow', 'bpmn:process', 'bpmn:definitions', 'bpmn:script', 'bpmn:timeDuration'];

function matches(xml: string, re: RegExp): RegExpExecArray[] {
  return [...xml.matchAll(new RegExp(re.source, 'g'))] as RegExpExecArray[];
}

function applyOp(xml: string, op: Op): string {
  const len = Math.max(xml.length, 1);
  const lines = xml.split('\n');
  const line = (n: number) => n % Math.max(lines.length, 1);
  switch (op.kind) {
    case 'truncate':
      return xml.slice(0, op.a % (xml.length + 1));
    case 'flip': {
      const at = op.a % len;
      return xml.slice(0, at) + (op.text.slice(0, 1) || '<') + xml.slice(at + 1);
    }
    case 'insert': {
      const at = op.a % len;
      return xml.slice(0, at) + op.text + xml.slice(at);
    }
    case 'deleteLine':
      lines.splice(line(op.a), 1);
      return lines.join('\n');
    case 'duplicateLine': {
      const i = line(op.a);
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    }
    case 'swapLines': {
      const i = line(op.a);
      const j = line(op.b);
      [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
      return lines.join('\n');
    }
    case 'fragment': {
      lines.splice(line(op.a), 0, op.text);
      return lines.join('\n');
    }
    case 'doctype': {
      const decl = [LAUGHS, XXE, '<!DOCTYPE x>'][op.a % 3]!;
      return xml.includes(XML_DECL) ? xml.replace(XML_DECL, `${XML_DECL}${decl}`) : decl + xml;
    }
    case 'deleteAttr':
    case 'setAttr': {
      const attrs = matches(xml, /\s[\w:.-]+\s*=\s*"[^"]*"/);
      const m = attrs[op.a % Math.max(attrs.length, 1)];
      if (!m) return xml;
      if (op.kind !== 'setAttr') return xml.slice(0, m.index) + xml.slice(m.index + m[0].length);
      const name = m[0].slice(0, m[0].indexOf('=') + 1);
      const value = op.a % 2 === 0 ? op.text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;') : op.text;
      return `${xml.slice(0, m.index)}${name}"${value}"${xml.slice(m.index + m[0].length)}`;
    }
    case 'swapIds':
    case 'copyId': {
      const ids = matches(xml, /\bid="([^"]*)"/);
      if (ids.length < 2) return xml;
      const x = ids[op.a % ids.length]!;
      const y = ids[op.b % ids.length]!;
      if (x.index === y.index) return xml;
      const [first, second] = x.index < y.index ? [x, y] : [y, x];
      const firstValue = op.kind === 'swapIds' ? second[1] : x[1];
      const secondValue = op.kind === 'swapIds' ? first[1] : x[1];
      return (
        xml.slice(0, first.index) +
        `id="${firstValue}"` +
        xml.slice(first.index + first[0].length, second.index) +
        `id="${secondValue}"` +
        xml.slice(second.index + second[0].length)
      );
    }
    case 'renameTag': {
      const tags = matches(xml, /<([\w:.-]+)[\s/>]/);
      const m = tags[op.a % Math.max(tags.length, 1)];
      if (!m) return xml;
      const to = op.a % 3 === 0 ? op.text.replace(/[^\w:.-]/g, '') || 'x' : BPMN_TAGS[op.a % BPMN_TAGS.length]!;
      return `${xml.slice(0, m.index)}<${to}${xml.slice(m.index + 1 + (m[1] ?? '').length)}`;
    }
    case 'deleteElement':
    case 'duplicateElement': {
      const tags = matches(xml, /<([\w:.-]+)(?:\s[^<>]*?)?(\/?)>/);
      const m = tags[op.a % Math.max(tags.length, 1)];
      if (!m) return xml;
      let end = m.index + m[0].length;
      if (m[2] !== '/') {
        const close = xml.indexOf(`</${m[1]}>`, end);
        if (close !== -1) end = close + `</${m[1]}>`.length;
      }
      const element = xml.slice(m.index, end);
      return op.kind === 'deleteElement' ? xml.slice(0, m.index) + xml.slice(end) : xml.slice(0, end) + element + xml.slice(end);
    }
  }
}

describe('deploy: property — mutated BPMN is deployed or rejected as invalid_model, never a 5xx', () => {
  it('holds for truncations, byte flips, element/attribute deletions and duplications, swapped ids, random values, DOCTYPEs', async () => {
    const numRuns = Math.round(300 * SCALE);
    const stats = { cases: 0, http5xx: 0, created: 0, invalidModel: 0, invalidRequest: 0, other4xx: 0, multipart: 0 };
    const fiveXX: string[] = [];
    const unexpected: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: SOURCES.length - 1 }),
        fc.array(opArb, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (sourceIndex, ops, viaMultipart) => {
          const [file, source] = SOURCES[sourceIndex]!;
          const xml = ops.reduce(applyOp, source);
          const before = await counts();
          // multipart carries bytes: a lone surrogate becomes U+FFFD on the way
          const a = viaMultipart ? await deployMultipart(xml) : await deployJson(xml, file);
          stats.cases++;
          if (viaMultipart) stats.multipart++;
          const what = `${file} ${JSON.stringify(ops).slice(0, 400)} → ${a.status} ${JSON.stringify(a.body).slice(0, 300)}`;
          if (a.status >= 500) {
            stats.http5xx++;
            fiveXX.push(what);
          } else if (a.status === 201) stats.created++;
          else if (a.status === 400 && a.body.code === 'invalid_model') stats.invalidModel++;
          else if (a.status === 400 && a.body.code === 'invalid_request' && xml === '') stats.invalidRequest++;
          else {
            stats.other4xx++;
            unexpected.push(what);
          }
          if (a.status !== 201) expect(await counts(), what).toBe(before);
          return true;
        },
      ),
      { numRuns, seed: SEED },
    );
    console.log(`deploy fuzz (seed ${SEED}, FUZZ_SCALE ${SCALE})`);
    console.table(stats);
    expect(fiveXX).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(stats.cases).toBe(numRuns);
  }, 60_000 * SCALE);
});
