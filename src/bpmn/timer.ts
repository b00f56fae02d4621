/**
 * ISO 8601 timer values (dates, durations, repeating intervals) and cron
 * cycles, as used by timeDate / timeDuration / timeCycle. Shared by the
 * compiler (to reject a bad literal at deploy time) and the engine (to compute
 * when a timer is due). Pure: the current time is always passed in.
 *
 * - duration: `PnYnMnWnDTnHnMnS` (fractions allowed on the smallest unit,
 *   e.g. PT0.5S). Years and months are calendar steps in UTC; days are 24 h.
 * - date: anything `Date.parse` reads as an ISO 8601 date-time.
 * - cycle: `R[n]/<duration>`, `R[n]/<start>/<duration>`, `R[n]/<duration>/<end>`
 *   (n omitted = unbounded), or a cron expression (5 or 6 fields, as
 *   cron-parser 5 reads it, e.g. `0 0 9 * * MON`), evaluated in UTC unless it
 *   starts with a time zone: `CRON_TZ=Europe/Berlin 0 0 9 * * MON` (`TZ=` also
 *   accepted), the convention of Vixie cron and Kubernetes CronJobs.
 */
import { CronExpressionParser } from 'cron-parser';

export interface Duration {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
}

const DURATION = /^P(?:(\d+(?:[.,]\d+)?)Y)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;

export function parseDuration(text: string): Duration | null {
  const t = text.trim().toUpperCase();
  const m = DURATION.exec(t);
  if (!m || t === 'P' || t.endsWith('T')) return null;
  const n = (i: number): number => (m[i] ? Number(m[i]?.replace(',', '.')) : 0);
  return { years: n(1), months: n(2), weeks: n(3), days: n(4), hours: n(5), minutes: n(6), seconds: n(7) };
}

export function addDuration(from: Date, d: Duration): Date {
  const out = new Date(from.getTime());
  if (d.years !== 0 || d.months !== 0) {
    const wholeMonths = Math.trunc(d.years * 12 + d.months);
    out.setUTCMonth(out.getUTCMonth() + wholeMonths);
  }
  const ms = (((d.weeks * 7 + d.days) * 24 + d.hours) * 60 + d.minutes) * 60_000 + d.seconds * 1000;
  return new Date(out.getTime() + Math.round(ms));
}

export function parseDate(text: string): Date | null {
  const t = text.trim();
  // a bare number is not a date here (Date.parse would read "5" as a year)
  if (!/^\d{4}-\d{2}-\d{2}/.test(t)) return null;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : new Date(ms);
}

export interface CycleSpec {
  kind: 'repeat' | 'cron';
  /** repetitions left including the next firing; null = unbounded */
  repetitions: number | null;
  start: Date | null;
  end: Date | null;
  interval: Duration | null;
  cron: string | null;
  /** IANA time zone of a cron expression; null = UTC */
  tz?: string | null;
}

export function parseCycle(text: string): CycleSpec | null {
  const t = text.trim();
  if (/^R\d*\//i.test(t)) {
    const parts = t.split('/');
    const rep = parts[0]?.slice(1) ?? '';
    const repetitions = rep === '' ? null : Number(rep);
    if (repetitions !== null && !Number.isInteger(repetitions)) return null;
    if (parts.length === 2) {
      const interval = parseDuration(parts[1] ?? '');
      return interval ? { kind: 'repeat', repetitions, start: null, end: null, interval, cron: null } : null;
    }
    if (parts.length === 3) {
      const a = parts[1] ?? '';
      const b = parts[2] ?? '';
      const startDate = parseDate(a);
      const interval = parseDuration(startDate ? b : a);
      const endDate = startDate ? null : parseDate(b);
      if (!interval || (!startDate && !endDate)) return null;
      return { kind: 'repeat', repetitions, start: startDate, end: endDate, interval, cron: null };
    }
    return null;
  }
  let expr = t;
  let tz: string | null = null;
  const zoned = /^(?:CRON_)?TZ=(\S+)\s+([\s\S]+)$/i.exec(t);
  if (zoned) {
    tz = zoned[1]!;
    expr = zoned[2]!.trim();
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
    } catch {
      return null;
    }
  }
  const fields = expr.split(/\s+/);
  if (fields.length < 5 || fields.length > 6) return null;
  try {
    CronExpressionParser.parse(expr, { currentDate: new Date(0), ...(tz ? { tz } : {}) });
  } catch {
    return null;
  }
  return { kind: 'cron', repetitions: null, start: null, end: null, interval: null, cron: expr, tz };
}

/** The next firing of a cycle strictly after `after` (or at its start date when that lies ahead); null when the cycle is over. */
export function nextCycleDue(spec: CycleSpec, after: Date): Date | null {
  if (spec.kind === 'cron' && spec.cron !== null) {
    const it = CronExpressionParser.parse(spec.cron, { currentDate: after, tz: spec.tz ?? 'UTC' });
    return it.next().toDate();
  }
  if (!spec.interval) return null;
  let due: Date;
  if (spec.start && spec.start.getTime() > after.getTime()) due = spec.start;
  else due = addDuration(after, spec.interval);
  if (spec.end && due.getTime() > spec.end.getTime()) return null;
  return due;
}

/** Is the literal text of a timer definition valid for its kind? */
export function validTimerLiteral(kind: 'date' | 'duration' | 'cycle', text: string): boolean {
  if (kind === 'date') return parseDate(text) !== null;
  if (kind === 'duration') return parseDuration(text) !== null;
  return parseCycle(text) !== null;
}

/**
 * The shortest gap between two firings of a cycle, in ms: its interval, or
 * for a cron expression the smallest gap among its first occurrences (a
 * sample: enough to tell "every second" from "every day"). null: no gap (a
 * cycle of one firing).
 */
export function cycleIntervalMs(spec: CycleSpec): number | null {
  if (spec.kind === 'repeat') {
    if (!spec.interval || spec.repetitions === 1) return null;
    return addDuration(new Date(0), spec.interval).getTime();
  }
  let at = new Date(Date.UTC(2026, 0, 5));
  let least: number | null = null;
  for (let i = 0; i < 6; i++) {
    const next = nextCycleDue(spec, at);
    if (!next) break;
    if (i > 0) least = least === null ? next.getTime() - at.getTime() : Math.min(least, next.getTime() - at.getTime());
    at = next;
  }
  return least;
}
