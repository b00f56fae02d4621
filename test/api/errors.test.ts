import { describe, expect, it } from 'vitest';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { errorHandler } from '../../src/api/errors.js';

function answer(err: unknown): { status: number; body: unknown; headers: Record<string, string> } {
  const out = { status: 0, body: undefined as unknown, headers: {} as Record<string, string> };
  const reply = {
    status(s: number) {
      out.status = s;
      return reply;
    },
    header(k: string, v: string) {
      out.headers[k] = v;
      return reply;
    },
    send(b: unknown) {
      out.body = b;
      return reply;
    },
  };
  const req = { log: { error() {}, warn() {} } };
  errorHandler(err as FastifyError, req as unknown as FastifyRequest, reply as unknown as FastifyReply);
  return out;
}

describe('error mapping', () => {
  it('a database that is restarting or unreachable is 503 with Retry-After, not 500', () => {
    for (const err of [Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), new Error('Connection terminated unexpectedly')]) {
      const a = answer(err);
      expect(a.status).toBe(503);
      expect(a.body).toMatchObject({ code: 'unavailable' });
      expect(a.headers['retry-after']).toBe('1');
    }
  });

  it('anything else unexpected is a 500 that leaks nothing', () => {
    const a = answer(new Error('secret internals at /srv/x.ts:12'));
    expect(a).toMatchObject({ status: 500, body: { code: 'internal_error', message: 'internal error' } });
  });
});
