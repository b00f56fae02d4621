/**
 * CPU time spent per completed instance, by process kind, over one phase of a
 * workload. Throughput on a shared 2-core machine drifts with whatever else is
 * scheduled; CPU time per instance does not (much), so it is the figure to
 * compare when judging whether a change made Baton cheaper.
 *
 * Read from /proc: utime + stime of each Baton process and its children (the
 * script sandbox), of every `postgres` process on the machine (so other
 * databases' activity counts too: run on a quiet machine), of this process
 * (the load generator), and the machine's busy time from /proc/stat.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { descendants, type Proc } from './cluster.js';

/** clock ticks per second of /proc's times (USER_HZ; 100 on every Linux we run on) */
const HZ = 100;

export interface CpuSnapshot {
  at: number;
  byRole: Map<string, number>;
  postgresMs: number;
  selfMs: number;
  machineBusyMs: number;
}

function procMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / HZ;
  } catch {
    return 0; // exited meanwhile
  }
}

function postgresMs(): number {
  let ms = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ms += ((Number(f[11]) + Number(f[12])) * 1000) / HZ;
    } catch {
      // exited meanwhile
    }
  }
  return ms;
}

function machineBusyMs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - cpu[3]! - cpu[4]!) * 1000) / HZ;
}

/** Role names are collapsed to their kind: "step-worker 1" and "step-worker 2" add up. */
const kind = (role: string) => role.replace(/\s*\d+$/, '');

export function cpuSnapshot(procs: Proc[]): CpuSnapshot {
  const byRole = new Map<string, number>();
  for (const p of procs) {
    const ms = procMs(p.pid) + descendants(p.pid).reduce((a, k) => a + procMs(k), 0);
    byRole.set(kind(p.role), (byRole.get(kind(p.role)) ?? 0) + ms);
  }
  const u = process.cpuUsage();
  return { at: Date.now(), byRole, postgresMs: postgresMs(), selfMs: (u.user + u.system) / 1000, machineBusyMs: machineBusyMs() };
}

export interface CpuPerInstance {
  /** CPU milliseconds per completed instance, by process kind */
  msPerInstance: Record<string, number>;
  /** average cores busy over the phase, by process kind */
  cores: Record<string, number>;
}

export function cpuPerInstance(a: CpuSnapshot, b: CpuSnapshot, completed: number): CpuPerInstance {
  const secs = (b.at - a.at) / 1000;
  const parts: Record<string, number> = {};
  for (const [role, ms] of b.byRole) parts[role] = ms - (a.byRole.get(role) ?? 0);
  parts.postgres = b.postgresMs - a.postgresMs;
  parts['load generator'] = b.selfMs - a.selfMs;
  parts.machine = b.machineBusyMs - a.machineBusyMs;
  const msPerInstance: Record<string, number> = {};
  const cores: Record<string, number> = {};
  for (const [k, ms] of Object.entries(parts)) {
    msPerInstance[k] = completed > 0 ? Math.round((ms / completed) * 1000) / 1000 : NaN;
    cores[k] = secs > 0 ? Math.round((ms / 1000 / secs) * 100) / 100 : NaN;
  }
  return { msPerInstance, cores };
}

/** "api 0.31 · step-worker 0.01 · postgres 0.29 · load generator 0.12 · machine 0.83" */
export function cpuLine(c: CpuPerInstance): string {
  return Object.entries(c.msPerInstance)
    .map(([k, v]) => `${k} ${v}`)
    .join(' · ');
}
