/**
 * Timer start events: when each occurrence is due.
 *
 * - timeDate: once, at that date (immediately if the date passed while Baton was down).
 * - timeDuration: once, that long after the deployment.
 * - timeCycle: `R[n]/PT…` from the deployment, `R[n]/<start>/PT…` on the grid
 *   start + k·interval, or a cron expression (UTC). `R<n>` limits the number of
 *   instances started.
 *
 * Missed occurrences (downtime) fire ONCE when the scheduler comes back, then
 * the schedule continues with the first occurrence after "now": no storm of
 * catch-up instances.
 */
import { addDuration, nextCycleDue, parseCycle, parseDate, parseDuration, type CycleSpec } from '../bpmn/timer.js';
import type { TimerDefinition } from '../bpmn/types.js';

export interface ScheduleSpec {
  kind: 'date' | 'duration' | 'cycle';
  expression: string;
}

/** `="PT5M"`, `${'PT5M'}`, `"PT5M"` and `PT5M` all mean the literal PT5M for a start timer (there are no variables yet). */
export function literalOf(expression: string): string {
  let t = expression.trim();
  if (t.startsWith('=')) t = t.slice(1).trim();
  const wrapped = /^\$\{([\s\S]*)\}$/.exec(t);
  if (wrapped) t = wrapped[1]!.trim();
  const quoted = /^(["'])([\s\S]*)\1$/.exec(t);
  return quoted ? quoted[2]! : t;
}

export function firstOccurrence(def: TimerDefinition, now: Date): { due: Date | null; remaining: number | null } {
  const text = literalOf(def.expression);
  if (def.kind === 'date') return { due: parseDate(text), remaining: 1 };
  if (def.kind === 'duration') {
    const d = parseDuration(text);
    return { due: d ? addDuration(now, d) : null, remaining: 1 };
  }
  const spec = parseCycle(text);
  if (!spec) return { due: null, remaining: 0 };
  return { due: occurrenceAfter(spec, now, true), remaining: spec.repetitions };
}

/** The occurrence after `after` (inclusive of a start lying ahead), aligned to the start date's grid when there is one. */
function occurrenceAfter(spec: CycleSpec, after: Date, first: boolean): Date | null {
  if (spec.kind === 'repeat' && spec.start && spec.interval) {
    if (spec.start.getTime() > after.getTime()) return spec.start;
    // Fixed-length intervals stay on the grid start + k·interval.
    const step = addDuration(new Date(0), spec.interval).getTime();
    const fixed = spec.interval.years === 0 && spec.interval.months === 0 && step > 0;
    if (fixed) {
      const k = Math.floor((after.getTime() - spec.start.getTime()) / step) + 1;
      const due = new Date(spec.start.getTime() + k * step);
      return spec.end && due.getTime() > spec.end.getTime() ? null : due;
    }
  }
  if (first && spec.kind === 'repeat' && !spec.start && spec.interval) return addDuration(after, spec.interval);
  return nextCycleDue(spec, after);
}

/**
 * After the occurrence due at `due` fired at `now`: the next one, or null when
 * the schedule is done. `remaining` counts the instances still to start,
 * including the one just started (null = unbounded).
 */
export function nextOccurrence(def: TimerDefinition, due: Date, now: Date, remaining: number | null): { due: Date | null; remaining: number | null } {
  const left = remaining === null ? null : remaining - 1;
  if (def.kind !== 'cycle' || left === 0) return { due: null, remaining: 0 };
  const spec = parseCycle(literalOf(def.expression));
  if (!spec) return { due: null, remaining: 0 };
  // Skip what was missed: the next occurrence strictly after both the one just fired and now.
  const from = new Date(Math.max(due.getTime(), now.getTime()));
  return { due: occurrenceAfter(spec, from, false), remaining: left };
}
