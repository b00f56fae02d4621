/** Small helpers shared by the bench scripts. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** True when the module at `url` is the script node was started with (its CLI should run). */
export function isMain(url: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(resolve(entry)).href === url;
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((sorted.length * p) / 100) - 1))]!;
}

export function sortNum(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

export function median(xs: number[]): number {
  return pct(sortNum(xs), 50);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const round = (n: number, digits = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : n);

/** Latency summary in ms. */
export function latencySummary(ms: number[]) {
  const s = sortNum(ms);
  return { n: s.length, p50: round(pct(s, 50)), p95: round(pct(s, 95)), p99: round(pct(s, 99)), max: round(s[s.length - 1] ?? NaN) };
}
