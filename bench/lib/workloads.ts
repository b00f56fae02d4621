/**
 * The distributed workloads of issue 6 (1, 2, 3, 5, 7): each in its own
 * schema and queue prefix, against an API process and two step-worker
 * processes spawned for it, driven over HTTP by the load generator in this
 * process. Each returns its raw figures; run.ts turns them into the table.
 */
import { readFileSync } from 'node:fs';
import { isolate, pgWrites, rssOf, selfRss, startCluster, walLsn, type Cluster, type Isolation, type PgWrites, type Rss } from './cluster.js';
import { closedLoop, HttpClient, openLoop, type LoopResult } from './load.js';
import { cpuPerInstance, cpuSnapshot } from './cpu.js';
import { latencySummary, round, sleep } from './util.js';

const model = (name: string) => readFileSync(new URL(`../models/${name}`, import.meta.url), 'utf8');

interface InstanceView {
  id: string;
  status: string;
}

export interface Common {
  schema: string;
  processes: Rss[];
  pg: PgWrites & { completedInstances: number; rowsWrittenPerInstance: number; bytesRetainedPerInstance: number; walBytesPerInstanceServerWide: number };
  statusCounts: Record<string, number>;
}

async function deploy(http: HttpClient, file: string): Promise<void> {
  const r = await http.post('/v1/deployments', { files: [{ name: file, content: model(file) }] });
  if (r.status >= 300) throw new Error(`deploy ${file}: ${r.status} ${JSON.stringify(r.body)}`);
}

async function statusCounts(iso: Isolation): Promise<Record<string, number>> {
  const r = await iso.pg.query<{ status: string; c: string }>(`select status, count(*) as c from ${iso.schema}.process_instance group by status`);
  return Object.fromEntries(r.rows.map((x) => [x.status, Number(x.c)]));
}

/** Server-side lifetime of completed instances whose business key starts with `tag-`: ended_at − started_at, ms. */
async function serverLatency(iso: Isolation, tag: string): Promise<number[]> {
  const r = await iso.pg.query<{ ms: number }>(
    `select extract(epoch from (ended_at - started_at)) * 1000 as ms from ${iso.schema}.process_instance where business_key like $1 and status = 'completed'`,
    [`${tag}-%`],
  );
  return r.rows.map((x) => Number(x.ms));
}

async function waitFor(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function countWhere(iso: Isolation, table: string, where = 'true'): Promise<number> {
  const r = await iso.pg.query<{ c: string }>(`select count(*) as c from ${iso.schema}.${table} where ${where}`);
  return Number(r.rows[0]!.c);
}

/**
 * Runs `body` against a fresh cluster; afterwards stops the processes (so
 * Postgres has their row counters), reads memory, counts, writes; drops the schema.
 */
async function withCluster<T>(
  name: string,
  opts: { stepWorkers?: number; sockets: number },
  body: (c: Cluster, http: HttpClient) => Promise<T>,
): Promise<T & Common> {
  const iso = await isolate(name);
  try {
    const lsn = await walLsn(iso.pg);
    const cluster = await startCluster(iso, { stepWorkers: opts.stepWorkers ?? 2 });
    const http = new HttpClient(cluster.base, opts.sockets);
    let out: T;
    let processes: Rss[];
    try {
      out = await body(cluster, http);
      processes = [...rssOf(cluster.procs), selfRss()];
    } finally {
      http.close();
      await cluster.stop();
    }
    const counts = await statusCounts(iso);
    const completed = counts.completed ?? 0;
    const w = await pgWrites(iso.pg, iso.schema, lsn);
    const per = (n: number) => (completed ? round(n / completed, 1) : NaN);
    return {
      ...out,
      schema: iso.schema,
      processes,
      statusCounts: counts,
      pg: {
        ...w,
        completedInstances: completed,
        rowsWrittenPerInstance: per(w.rowsInserted + w.rowsUpdated + w.rowsDeleted),
        bytesRetainedPerInstance: per(w.bytesRetained),
        walBytesPerInstanceServerWide: per(w.walBytesServer),
      },
    };
  } finally {
    await iso.drop();
  }
}

/**
 * A checkpoint that begins during a latency window adds tens to hundreds of
 * milliseconds to its p99 (measured on straight-through at half peak: 62 and
 * 269 ms against 25–31 ms without): full-page writes and the checkpointer's
 * I/O, whose timing is the server's (max_wal_size, checkpoint_timeout), not
 * Baton's. So the half-peak windows start right after a CHECKPOINT — they
 * still pay the full-page writes that follow one — and every window reports
 * how many checkpoints began in it anyway. Needs a superuser or
 * pg_checkpoint (PG 15); without, the window runs as it is.
 */
async function checkpointNow(pool: { query: (q: string) => Promise<unknown> }): Promise<boolean> {
  return pool.query('checkpoint').then(
    () => true,
    () => false,
  );
}

async function checkpointsSoFar(pool: { query: (q: string) => Promise<{ rows: Array<{ n: number | string }> }> }): Promise<number> {
  const r = await pool.query('select checkpoints_timed + checkpoints_req as n from pg_stat_bgwriter');
  return Number(r.rows[0]!.n);
}

const rate = (r: LoopResult) => round(r.ok / (r.elapsedMs / 1000), 0);

// ---- 1. straight-through ---------------------------------------------------------

export interface StraightOpts {
  concurrency: number;
  peakMs: number;
  halfMs: number;
  warmup: number;
}

/**
 * Every request starts an instance with `waitMs`: the API answers when the
 * instance has stopped running (here: completed, as the model has no wait
 * state). Client latency = that request's round trip. Peak: a closed loop of
 * `concurrency` callers; then an open loop at half the peak rate.
 */
export async function straightThrough(o: StraightOpts) {
  return withCluster('straight', { sockets: o.concurrency + 8 }, async (cluster, http) => {
    await deploy(http, 'straight-through.bpmn');
    const start = (tag: string) => async (i: number) => {
      const r = await http.post<InstanceView>('/v1/process-instances', {
        processKey: 'straight',
        businessKey: `${tag}-${i}`,
        variables: { price: 10 + (i % 7), qty: 2 },
        waitMs: 30_000,
      });
      if (r.status !== 201) throw new Error(`start: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.status === 'completed';
    };
    const warm = await closedLoop(o.concurrency, 60_000, start('warm'), o.warmup);
    const c0 = cpuSnapshot(cluster.procs);
    const peak = await closedLoop(o.concurrency, o.peakMs, start('peak'));
    const cpu = cpuPerInstance(c0, cpuSnapshot(cluster.procs), peak.ok);
    const peakRate = rate(peak);
    const iso = cluster.iso;
    const checkpointedBefore = await checkpointNow(iso.pg);
    const k0 = await checkpointsSoFar(iso.pg);
    const half = await openLoop(Math.max(1, peakRate / 2), o.halfMs, start('half'));
    const checkpointsDuring = (await checkpointsSoFar(iso.pg)) - k0;
    return {
      concurrency: o.concurrency,
      warmup: { ok: warm.ok, failed: warm.failed },
      peak: {
        completedPerSec: peakRate,
        ok: peak.ok,
        failed: peak.failed,
        failures: peak.failures,
        seconds: round(peak.elapsedMs / 1000, 1),
        clientLatencyMs: latencySummary(peak.latencies),
        serverLatencyMs: latencySummary(await serverLatency(iso, 'peak')),
        cpu,
      },
      half: {
        targetRate: round(peakRate / 2, 0),
        achievedPerSec: rate(half),
        ok: half.ok,
        failed: half.failed,
        dropped: half.dropped,
        failures: half.failures,
        clientLatencyMs: latencySummary(half.latencies),
        serverLatencyMs: latencySummary(await serverLatency(iso, 'half')),
        checkpointedBefore,
        checkpointsDuring,
      },
    };
  });
}

// ---- 2. service task, external worker -----------------------------------------------

export interface ServiceOpts {
  starters: number;
  workers: number;
  maxTasks: number;
  /** starters pause while more than this many started instances have not had their job completed */
  backlog: number;
  peakMs: number;
  halfMs: number;
  /** the throughput target: the latency pass runs at max(half the peak, this) */
  targetRate: number;
}

/**
 * Starters POST instances (no waitMs); external workers over HTTP
 * fetch-and-lock up to maxTasks jobs and complete each. Completed PI/s =
 * instances whose ended_at falls in the pass, per second; latency =
 * ended_at − started_at of the instances started in the pass (Postgres
 * timestamps: the start's transaction to the completing step's transaction).
 */
export async function serviceTask(o: ServiceOpts) {
  return withCluster('service', { sockets: o.starters + o.workers * (o.maxTasks + 1) + 8 }, async (cluster, http) => {
    await deploy(http, 'service-task.bpmn');
    const iso = cluster.iso;
    let started = 0;
    let completedJobs = 0;
    let stopWorkers = false;
    const workerErrors: string[] = [];
    let workerErrorCount = 0;
    // An external worker that gets an error answer logs it and carries on, as a real one would.
    const workerLoop = async (w: number) => {
      while (!stopWorkers) {
        try {
          await workerRound(w);
        } catch (err) {
          workerErrorCount++;
          if (workerErrors.length < 5) workerErrors.push(String(err));
          await sleep(50);
        }
      }
    };
    const workerRound = async (w: number) => {
      {
        const r = await http.post<{ items: Array<{ id: string }> }>('/v1/external-tasks/fetch-and-lock', {
          workerId: `bench-${w}`,
          topics: ['bench-work'],
          maxTasks: o.maxTasks,
          // Short enough that a job whose completion was refused is fetched again before the drain gives up.
          lockMs: 20_000,
        });
        if (r.status !== 200) throw new Error(`fetch-and-lock: ${r.status} ${JSON.stringify(r.body)}`);
        if (r.body.items.length === 0) {
          await sleep(5);
          return;
        }
        await Promise.all(
          r.body.items.map(async (j) => {
            const c = await http.post(`/v1/external-tasks/${j.id}/complete`, { workerId: `bench-${w}`, variables: { done: true } });
            if (c.status !== 204) throw new Error(`complete: ${c.status} ${JSON.stringify(c.body)}`);
            completedJobs++;
          }),
        );
      }
    };
    const workers = Array.from({ length: o.workers }, (_, w) => workerLoop(w));
    const start = (tag: string, throttle: boolean) => async (i: number) => {
      while (throttle && started - completedJobs > o.backlog) await sleep(2);
      started++;
      const r = await http.post<InstanceView>('/v1/process-instances', { processKey: 'service', businessKey: `${tag}-${i}`, variables: { n: i } });
      if (r.status !== 201) {
        started--;
        throw new Error(`start: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
      return true;
    };
    const now = async () => (await iso.pg.query<{ t: Date }>('select clock_timestamp() as t')).rows[0]!.t;
    const completedBetween = async (a: Date, b: Date) =>
      countWhere(iso, 'process_instance', `status = 'completed' and ended_at >= '${a.toISOString()}' and ended_at < '${b.toISOString()}'`);
    const drain = () =>
      waitFor('every started instance to complete', 120_000, async () => (await countWhere(iso, 'process_instance', `status not in ('completed', 'failed')`)) === 0);

    await closedLoop(o.starters, 60_000, start('warm', true), 100);
    await drain();
    const p0 = await now();
    const c0 = cpuSnapshot(cluster.procs);
    const peak = await closedLoop(o.starters, o.peakMs, start('peak', true));
    const c1 = cpuSnapshot(cluster.procs);
    const p1 = await now();
    await drain();
    const peakSecs = (p1.getTime() - p0.getTime()) / 1000;
    const peakCompleted = await completedBetween(p0, p1);
    const peakRate = round(peakCompleted / peakSecs, 0);
    const cpu = cpuPerInstance(c0, c1, peakCompleted);

    const checkpointedBefore = await checkpointNow(iso.pg);
    const k0 = await checkpointsSoFar(iso.pg);
    const h0 = await now();
    // The latency pass runs at half the peak, but never below the issue's
    // throughput target (500/s) when the peak reached it: p99 < 100 ms is
    // meant at a rate that meets the target.
    const halfTarget = Math.max(1, peakRate / 2, Math.min(o.targetRate, peakRate));
    const half = await openLoop(halfTarget, o.halfMs, start('half', false));
    const h1 = await now();
    const checkpointsDuring = (await checkpointsSoFar(iso.pg)) - k0;
    await drain();
    const halfRate = round((await completedBetween(h0, h1)) / ((h1.getTime() - h0.getTime()) / 1000), 0);
    stopWorkers = true;
    await Promise.all(workers);
    return {
      starters: o.starters,
      workers: o.workers,
      maxTasks: o.maxTasks,
      backlog: o.backlog,
      workerErrors: { count: workerErrorCount, first: workerErrors },
      peak: {
        completedPerSec: peakRate,
        startsAcceptedPerSec: rate(peak),
        failed: peak.failed,
        failures: peak.failures,
        seconds: round(peakSecs, 1),
        serverLatencyMs: latencySummary(await serverLatency(iso, 'peak')),
        cpu,
      },
      half: {
        targetRate: round(halfTarget, 0),
        completedPerSec: halfRate,
        failed: half.failed,
        dropped: half.dropped,
        startClientLatencyMs: latencySummary(half.latencies),
        serverLatencyMs: latencySummary(await serverLatency(iso, 'half')),
        checkpointedBefore,
        checkpointsDuring,
      },
    };
  });
}

// ---- 3. user-task round trip -------------------------------------------------------------

/**
 * One round trip: start (waitMs: answers once the task is open), list the
 * instance's open tasks, complete the task (waitMs: answers once the instance
 * completed). Completions per second = round trips per second.
 */
export async function userTask(o: { concurrency: number; durationMs: number }) {
  return withCluster('usertask', { sockets: o.concurrency + 8 }, async (_cluster, http) => {
    await deploy(http, 'user-task.bpmn');
    const completeMs: number[] = [];
    const trip = (tag: string) => async (i: number) => {
      const s = await http.post<InstanceView>('/v1/process-instances', { processKey: 'usertask', businessKey: `${tag}-${i}`, waitMs: 30_000 });
      if (s.status !== 201 || s.body.status !== 'waiting') throw new Error(`start: ${s.status} ${JSON.stringify(s.body)}`);
      const l = await http.get<{ items: Array<{ id: string }> }>(`/v1/tasks?processInstanceId=${s.body.id}&state=open`);
      const task = l.body.items?.[0];
      if (l.status !== 200 || !task) throw new Error(`list: ${l.status} ${JSON.stringify(l.body)}`);
      const t = performance.now();
      const c = await http.post<{ instance: InstanceView }>(`/v1/tasks/${task.id}/complete`, { variables: { ok: true }, waitMs: 30_000 });
      if (c.status !== 200) throw new Error(`complete: ${c.status} ${JSON.stringify(c.body)}`);
      if (tag !== 'warm') completeMs.push(performance.now() - t);
      return c.body.instance.status === 'completed';
    };
    await closedLoop(o.concurrency, 60_000, trip('warm'), 100);
    const r = await closedLoop(o.concurrency, o.durationMs, trip('run'));
    return {
      concurrency: o.concurrency,
      completionsPerSec: rate(r),
      ok: r.ok,
      failed: r.failed,
      failures: r.failures,
      roundTripMs: latencySummary(r.latencies),
      completeCallMs: latencySummary(completeMs),
    };
  });
}

// ---- 5. messages ---------------------------------------------------------------------------

/**
 * N instances wait at a message catch event (correlation key = their `key`);
 * then N messages are published over HTTP, one per key. Correlations/s = N /
 * time until every publish was answered `correlated`; end-to-end = N / time
 * from the first publish until every instance completed.
 */
export async function messages(o: { instances: number; concurrency: number }) {
  return withCluster('messages', { sockets: o.concurrency + 8 }, async (cluster, http) => {
    await deploy(http, 'message-wait.bpmn');
    const iso = cluster.iso;
    const n = o.instances;
    const t0 = performance.now();
    // Keys of the instances whose start was accepted: a start the API refused
    // (reported below) gets no message.
    const keys: number[] = [];
    const starts = await closedLoop(
      o.concurrency,
      600_000,
      async (i) => {
        const r = await http.post('/v1/process-instances', { processKey: 'msgwait', businessKey: `m-${i}`, variables: { key: `k${i}` } });
        if (r.status !== 201) throw new Error(`start: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
        keys.push(i);
        return true;
      },
      n,
    );
    const m = keys.length;
    await waitFor(`${m} message subscriptions`, 300_000, async () => (await countWhere(iso, 'subscription')) >= m);
    const waitingAfterMs = performance.now() - t0;
    let correlated = 0;
    const p0 = performance.now();
    const pub = await closedLoop(
      o.concurrency,
      600_000,
      async (j) => {
        const i = keys[j]!;
        const r = await http.post<{ kind: string }>('/v1/messages', { name: 'bench-go', correlationKey: `k${i}`, variables: { got: i } });
        if (r.status !== 200) throw new Error(`publish: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
        if (r.body.kind === 'correlated') correlated++;
        return true;
      },
      m,
    );
    const published = performance.now();
    await waitFor(`${correlated} instances completed`, 300_000, async () => (await countWhere(iso, 'process_instance', `status = 'completed'`)) >= correlated);
    const done = performance.now();
    return {
      instances: n,
      startsFailed: starts.failed,
      startFailures: starts.failures,
      publishFailures: pub.failures,
      concurrency: o.concurrency,
      startsAcceptedPerSec: rate(starts),
      allWaitingAfterMs: Math.round(waitingAfterMs),
      correlated,
      publishFailed: pub.failed,
      correlationsPerSec: round(correlated / ((published - p0) / 1000), 0),
      publishLatencyMs: latencySummary(pub.latencies),
      publishToAllCompletedPerSec: round(correlated / ((done - p0) / 1000), 0),
    };
  });
}

// ---- 7. a looping instance ---------------------------------------------------------------------

/**
 * One instance loops `rounds` times through a user task. Step k = list the
 * open task, complete it with waitMs (answers once the step that moves the
 * instance to its next round has committed). Compared: the median of steps
 * 6–15 (around the 10th) and of the last 10, plus the raw 10th and last.
 */
export async function loop(o: { rounds: number }) {
  return withCluster('loop', { sockets: 4 }, async (cluster, http) => {
    await deploy(http, 'loop.bpmn');
    const iso = cluster.iso;
    const s = await http.post<InstanceView>('/v1/process-instances', { processKey: 'loop', variables: { i: 0, rounds: o.rounds }, waitMs: 30_000 });
    if (s.status !== 201 || s.body.status !== 'waiting') throw new Error(`loop start: ${s.status} ${JSON.stringify(s.body)}`);
    const id = s.body.id;
    const stepMs: number[] = [];
    const stateBytes = async () => {
      const r = await iso.pg.query<{ b: number; rev: number }>(`select octet_length(state::text) as b, rev from ${iso.schema}.process_instance where id = $1`, [id]);
      return { bytes: Number(r.rows[0]!.b), rev: Number(r.rows[0]!.rev) };
    };
    let at10 = { bytes: NaN, rev: NaN };
    const t0 = performance.now();
    for (let k = 1; k <= o.rounds; k++) {
      const t = performance.now();
      const l = await http.get<{ items: Array<{ id: string }> }>(`/v1/tasks?processInstanceId=${id}&state=open`);
      const task = l.body.items?.[0];
      if (!task) throw new Error(`loop round ${k}: no open task (${l.status} ${JSON.stringify(l.body)})`);
      const c = await http.post<{ instance: InstanceView }>(`/v1/tasks/${task.id}/complete`, { waitMs: 30_000 });
      if (c.status !== 200) throw new Error(`loop round ${k}: complete ${c.status} ${JSON.stringify(c.body)}`);
      stepMs.push(performance.now() - t);
      if (k === 10) at10 = await stateBytes();
      const want = k === o.rounds ? 'completed' : 'waiting';
      if (c.body.instance.status !== want) throw new Error(`loop round ${k}: instance ${c.body.instance.status}, expected ${want}`);
    }
    const totalMs = performance.now() - t0;
    const end = await stateBytes();
    const history = await countWhere(iso, 'history', `instance_id = '${id}'`);
    const med = (xs: number[]) => latencySummary(xs).p50;
    const near10 = med(stepMs.slice(5, 15));
    const last10 = med(stepMs.slice(-10));
    return {
      rounds: o.rounds,
      totalSeconds: round(totalMs / 1000, 1),
      step10Ms: round(stepMs[9] ?? NaN, 2),
      stepLastMs: round(stepMs[stepMs.length - 1] ?? NaN, 2),
      medianAround10Ms: near10,
      medianLast10Ms: last10,
      ratioLastTo10: round(last10 / near10, 2),
      allStepsMs: latencySummary(stepMs),
      stateBytesAt10: at10.bytes,
      stateBytesAtEnd: end.bytes,
      instanceRevisions: end.rev,
      historyRows: history,
    };
  });
}
