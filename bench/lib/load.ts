/**
 * The load generator: an HTTP client with keep-alive (node:http, one socket
 * per concurrent caller) and two drivers.
 *
 * closedLoop: `concurrency` callers, each sends its next request when the
 *   previous answered: finds the peak rate the system sustains.
 * openLoop:   requests sent at a fixed rate whatever the answers do; each
 *   latency is measured from the moment the request was due, not sent, so a
 *   stalled system cannot hide its queueing (no coordinated omission).
 */
import http from 'node:http';
import { sleep } from './util.js';

export interface HttpAnswer<T = unknown> {
  status: number;
  body: T;
}

export class HttpClient {
  private agent: http.Agent;
  private url: URL;
  constructor(base: string, sockets: number) {
    this.url = new URL(base);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          agent: this.agent,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${path}: no answer in 120 s`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  post<T = unknown>(path: string, body?: unknown) {
    return this.request<T>('POST', path, body ?? {});
  }

  get<T = unknown>(path: string) {
    return this.request<T>('GET', path);
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface LoopResult {
  ok: number;
  failed: number;
  /** first few failure messages */
  failures: string[];
  elapsedMs: number;
  /** ms per successful call */
  latencies: number[];
}

/** A call answers true when it succeeded (counted) or throws/returns false (a failure). */
export type Call = (seq: number) => Promise<boolean>;

export async function closedLoop(concurrency: number, durationMs: number, call: Call, maxCalls = Infinity): Promise<LoopResult> {
  const out: LoopResult = { ok: 0, failed: 0, failures: [], elapsedMs: 0, latencies: [] };
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  let seq = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && seq < maxCalls) {
        const mine = seq++;
        const s = performance.now();
        try {
          if (await call(mine)) {
            out.ok++;
            out.latencies.push(performance.now() - s);
          } else out.failed++;
        } catch (err) {
          out.failed++;
          if (out.failures.length < 5) out.failures.push(String(err));
        }
      }
    }),
  );
  out.elapsedMs = performance.now() - t0;
  return out;
}

export async function openLoop(ratePerSec: number, durationMs: number, call: Call, maxInFlight = 2000): Promise<LoopResult & { dropped: number }> {
  const out = { ok: 0, failed: 0, failures: [] as string[], elapsedMs: 0, latencies: [] as number[], dropped: 0 };
  const t0 = performance.now();
  const total = Math.max(1, Math.floor((ratePerSec * durationMs) / 1000));
  const interval = 1000 / ratePerSec;
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    if (inFlight.size >= maxInFlight) {
      out.dropped++;
      continue;
    }
    const p = (async () => {
      try {
        if (await call(i)) {
          out.ok++;
          out.latencies.push(performance.now() - due);
        } else out.failed++;
      } catch (err) {
        out.failed++;
        if (out.failures.length < 5) out.failures.push(String(err));
      }
    })();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }
  await Promise.all(inFlight);
  out.elapsedMs = performance.now() - t0;
  return out;
}
