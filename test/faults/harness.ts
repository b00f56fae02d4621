/**
 * The fault harness: Baton as separate processes (1 API, 3 step workers, 2
 * service workers, 2 schedulers) on a private Redis and a private or the
 * shared Postgres, a mixed workload driven over the HTTP API, faults injected
 * while it runs, and checks at the end read straight from Postgres.
 *
 * The harness behaves like a well-mannered client: it retries a request that
 * failed with a network error or a 5xx (Postgres is restarting), and treats
 * "already done" answers (409 task_not_open, an idempotent message re-publish)
 * as done. It never repairs the engine's state: every check counts what the
 * engine itself recorded.
 */
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { PG_URL, isolation } from '../support/env.js';
import {
  Fleet,
  PrivateRedis,
  cleanupSync,
  freePort,
  runDir,
  sharedPostgres,
  sleep,
  startPrivatePostgres,
  startWatchdog,
  type PostgresServer,
} from './infra.js';

export type FaultKind =
  | 'kill-step'
  | 'kill-service'
  | 'kill-scheduler'
  | 'term-step'
  | 'term-service'
  | 'term-scheduler'
  | 'redis-flushall'
  | 'redis-restart'
  | 'pg-restart';

export interface FaultRunOptions {
  label: string;
  instances: number;
  /** 'private': a throwaway cluster; 'shared': the machine's cluster (own schema), restarted with pg_ctlcluster */
  postgres: 'private' | 'shared';
  /** start rate: instances per second */
  startRate: number;
  /**
   * Faults at fixed offsets (ms after the first start), or 'random': a fault
   * every few seconds while instances are being started, every kind at least
   * once, the Postgres restart exactly once.
   */
  schedule: Array<{ atMs: number; fault: FaultKind }> | 'random';
  /** give up waiting for completion after this long (the checks still run and report) */
  drainTimeoutMs: number;
  /** how long Redis stays down in a 'redis-restart' (default 3000 ms) */
  redisDownMs?: number;
  /** env for every role, on top of the defaults */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface CheckRow {
  check: string;
  expected: number;
  observed: number;
  lost: number;
  duplicated: number;
  note?: string;
}

export interface FaultRunResult {
  rows: CheckRow[];
  faults: Record<string, number>;
  stuck: Array<{ id: string; processKey: string; status: string; waitingAt: string[]; pendingInbox: number; incidents: string[] }>;
  crashes: Array<{ name: string; code: number | null; signal: string | null }>;
  /** SIGTERMed processes that did not exit 0 (hung past the grace, or failed in shutdown) */
  uncleanStops: Array<{ name: string; code: number | null; signal: string | null }>;
  table: string;
  elapsedMs: number;
  dir: string;
}

const MODEL = readFileSync(new URL('./models/fault-load.bpmn', import.meta.url), 'utf8');
const EXT_TOPIC = 'fault-ext';
const MESSAGE = 'fault-go';

export async function runFaultSuite(o: FaultRunOptions): Promise<FaultRunResult> {
  const log = o.log ?? ((l: string) => console.log(`[faults ${o.label}] ${l}`));
  const t0 = Date.now();
  const dir = runDir(o.label);
  const pidFile = join(dir, 'pids');
  const iso = isolation(`faults_${o.label}`);
  let pgServer: PostgresServer | null = null;
  let redis: PrivateRedis | null = null;
  let fleet: Fleet | null = null;
  let harnessPool: pg.Pool | null = null;
  let echo: Server | null = null;
  const onExit = () => cleanupSync(fleet, redis, pgServer);
  process.on('exit', onExit);
  let watchdog: ReturnType<typeof startWatchdog> | null = null;

  try {
    // ---- infrastructure ---------------------------------------------------
    pgServer = o.postgres === 'private' ? await startPrivatePostgres(dir) : sharedPostgres(PG_URL);
    redis = await PrivateRedis.start(dir);
    watchdog = startWatchdog(dir, pidFile, pgServer.dataDir);
    log(`dir ${dir}; postgres ${pgServer.kind} ${pgServer.url}; redis ${redis.url}; schema ${iso.schema}`);

    const admin = new pg.Client({ connectionString: pgServer.url });
    await admin.connect(); // fails loudly when Postgres is unreachable
    await admin.query(`create schema if not exists ${iso.schema}`);
    await admin.end();
    const dbUrl = `${pgServer.url}?options=${encodeURIComponent(`-c search_path=${iso.schema}`)}`;
    harnessPool = new pg.Pool({ connectionString: dbUrl, max: 4 });
    // The harness's own connections die with every Postgres restart too.
    harnessPool.on('error', () => {});
    harnessPool.on('connect', (c) => c.on('error', () => {}));
    const db = harnessPool;

    // The http connector's counterpart: records every Idempotency-Key it sees.
    const echoCalls = new Map<string, number>();
    echo = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const key = String(req.headers['idempotency-key']);
        echoCalls.set(key, (echoCalls.get(key) ?? 0) + 1);
        // A little latency, so kills land in the middle of calls too.
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: true, echoed: body ? JSON.parse(body) : null }));
        }, 5 + Math.floor(Math.random() * 40));
      });
    });
    await new Promise<void>((r) => echo!.listen(0, '127.0.0.1', () => r()));
    const echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}/notify`;

    const apiPort = await freePort();
    const env: Record<string, string> = {
      DATABASE_URL: dbUrl,
      REDIS_URL: redis.url,
      BATON_QUEUE_PREFIX: iso.prefix,
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      HEALTH_PORT: '0',
      LOG_LEVEL: 'warn',
      BATON_EXAMPLES: 'false',
      SWEEP_AFTER_MS: '1000',
      SWEEP_INTERVAL_MS: '500',
      STEP_CONCURRENCY: '4',
      SERVICE_CONCURRENCY: '8',
      ...o.env,
    };
    const r = redis;
    fleet = new Fleet(env, dir, pidFile, () => [r.pid]);
    const f = fleet;
    const base = `http://127.0.0.1:${apiPort}`;

    // The API first: it migrates; the others would wait on the advisory lock anyway.
    const api = f.spawn('api', 'api');
    const readyBy = Date.now() + 120_000;
    for (;;) {
      if (!api.alive) throw new Error(`api exited: ${api.tail.join('')}`);
      try {
        if ((await fetch(`${base}/ready`, { signal: AbortSignal.timeout(2000) })).ok) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > readyBy) throw new Error(`api not ready after 120 s: ${api.tail.join('')}`);
      await sleep(200);
    }
    const roles: Array<[string, 'step-worker' | 'service-worker' | 'scheduler']> = [
      ['step-1', 'step-worker'],
      ['step-2', 'step-worker'],
      ['step-3', 'step-worker'],
      ['service-1', 'service-worker'],
      ['service-2', 'service-worker'],
      ['scheduler-1', 'scheduler'],
      ['scheduler-2', 'scheduler'],
    ];
    for (const [name, script] of roles) f.spawn(name, script, { HEALTH_PORT: String(await freePort()) });
    await Promise.all(roles.map(([name]) => f.ready(name)));
    log(`api and workers ready after ${Date.now() - t0} ms`);

    // ---- the client side ----------------------------------------------------
    const stats = {
      taskCompletions: 0,
      taskAlreadyDone: 0,
      extCompletions: 0,
      extLockLost: 0,
      extAbandoned: 0,
      published: 0,
      publishedEarly: 0,
      requestRetries: 0,
    };

    /** A request with a client's retry policy: network errors and 5xx are retried until `deadline`. */
    async function call(method: 'GET' | 'POST', path: string, body?: unknown, deadlineMs = 120_000): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
      const deadline = Date.now() + deadlineMs;
      let delay = 100;
      for (;;) {
        let status = 0;
        let text = '';
        try {
          const res = await fetch(`${base}${path}`, {
            method,
            headers: body !== undefined ? { 'content-type': 'application/json' } : {},
            ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
            signal: AbortSignal.timeout(30_000),
          });
          status = res.status;
          text = await res.text();
        } catch (err) {
          text = String(err);
        }
        if (status > 0 && status < 500) return { status, body: text ? JSON.parse(text) : null };
        if (Date.now() > deadline) throw new Error(`${method} ${path}: ${status} ${text}`);
        stats.requestRetries++;
        await sleep(delay);
        delay = Math.min(delay * 2, 2000);
      }
    }

    const deployed = await call('POST', '/v1/deployments', { files: [{ name: 'fault-load.bpmn', content: MODEL }] });
    if (deployed.status >= 300) throw new Error(`deploy failed: ${JSON.stringify(deployed.body)}`);

    let stopClients = false;
    const started = new Map<string, string>(); // key → instance id (acknowledged starts)
    const startErrors: string[] = [];
    const workT0 = Date.now();

    async function publish(key: string, ttl: boolean): Promise<void> {
      const res = await call('POST', '/v1/messages', {
        name: MESSAGE,
        correlationKey: key,
        messageId: `go-${key}`,
        variables: { messageFor: key },
        ...(ttl ? { ttlSeconds: 3600 } : {}),
      });
      if (res.status >= 300 && res.status !== 404) throw new Error(`publish ${key}: ${res.status} ${JSON.stringify(res.body)}`);
      if (res.status < 300) stats.published++;
    }

    // Starts, at the requested rate, a few in flight at a time.
    const starter = (async () => {
      const inFlight = new Set<Promise<void>>();
      for (let n = 0; n < o.instances && !stopClients; n++) {
        const key = `${o.label}-${n}`;
        const p = (async () => {
          try {
            const res = await call('POST', '/v1/process-instances', { processKey: 'fault-load', businessKey: key, variables: { key, n, url: echoUrl } });
            if (res.status !== 201 && res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(res.body)}`);
            started.set(key, res.body.id);
            // A third of the messages are published before the instance waits
            // for them: they are buffered, and the subscription takes them.
            if (n % 3 === 0) {
              await publish(key, true);
              stats.publishedEarly++;
            }
          } catch (err) {
            startErrors.push(`${key}: ${String(err)}`);
          }
        })().finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= 8) await Promise.race(inFlight);
        const due = workT0 + ((n + 1) * 1000) / o.startRate;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      await Promise.all(inFlight);
    })();

    /** A polling loop that survives Postgres restarts. */
    const loop = (name: string, everyMs: number, body: () => Promise<void>) =>
      (async () => {
        while (!stopClients) {
          try {
            await body();
          } catch (err) {
            if (!/terminat|ECONNREFUSED|Connection terminated|shutting down|starting up|ECONNRESET/i.test(String(err))) log(`${name}: ${String(err)}`);
          }
          await sleep(everyMs);
        }
      })();

    // User tasks: completed as they appear, exactly once by intent.
    const completedTasks = new Set<string>();
    const tasks = loop('tasks', 200, async () => {
      const open = await db.query<{ id: string }>(`select id from human_task where state = 'open' order by created_at limit 200`);
      const todo = open.rows.filter((t) => !completedTasks.has(t.id));
      await pool(todo, 8, async (t) => {
        const res = await call('POST', `/v1/tasks/${t.id}/complete`, { variables: { reviewed: true } });
        if (res.status === 200) stats.taskCompletions++;
        else if (res.status === 409) stats.taskAlreadyDone++; // an earlier attempt of ours committed
        else throw new Error(`complete task ${t.id}: ${res.status} ${JSON.stringify(res.body)}`);
        completedTasks.add(t.id);
      });
    });

    // External workers over the API; a few jobs are abandoned on purpose (a
    // worker that died holding them): their lock expires and they come back.
    const abandoned = new Set<string>();
    const externalWorker = (id: number) =>
      loop(`external-${id}`, 100, async () => {
        const res = await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: `harness-ext-${id}`, topics: [EXT_TOPIC], maxTasks: 20, lockMs: 3000 }, 10_000);
        if (res.status !== 200) throw new Error(`fetch-and-lock: ${res.status} ${JSON.stringify(res.body)}`);
        await pool(res.body.items as Array<{ id: string }>, 8, async (job) => {
          if (!abandoned.has(job.id) && Math.random() < 0.03) {
            abandoned.add(job.id);
            stats.extAbandoned++;
            return;
          }
          const done = await call('POST', `/v1/external-tasks/${job.id}/complete`, { workerId: `harness-ext-${id}`, variables: { extDone: true } });
          if (done.status === 204) stats.extCompletions++;
          else if (done.status === 409 || done.status === 404) stats.extLockLost++;
          else throw new Error(`complete job ${job.id}: ${done.status} ${JSON.stringify(done.body)}`);
        });
      });

    const externals = [externalWorker(0), externalWorker(1)];

    // Messages for every subscription that waits (idempotent by messageId).
    const publishedAt = new Map<string, number>();
    const messages = loop('messages', 200, async () => {
      const subs = await db.query<{ correlation_key: string }>(`select correlation_key from subscription where kind = 'message' and name = $1 limit 500`, [MESSAGE]);
      // Re-publish only if the subscription still waits long after our publish (a lost answer).
      const todo = subs.rows.map((s) => s.correlation_key).filter((k) => Date.now() - (publishedAt.get(k) ?? 0) > 5000);
      await pool(todo, 8, async (k) => {
        publishedAt.set(k, Date.now());
        await publish(k, false);
      });
    });

    // ---- faults ---------------------------------------------------------------
    const faults: Record<string, number> = {};
    const outage = { probes: 0, answered: 0 };
    const uncleanStops: FaultRunResult['uncleanStops'] = [];
    const count = (k: string) => (faults[k] = (faults[k] ?? 0) + 1);
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const names = { step: ['step-1', 'step-2', 'step-3'], service: ['service-1', 'service-2'], scheduler: ['scheduler-1', 'scheduler-2'] };

    async function inject(fault: FaultKind): Promise<void> {
      const at = `${((Date.now() - workT0) / 1000).toFixed(1)}s`;
      const [verb, role] = fault.split('-') as [string, 'step' | 'service' | 'scheduler'];
      if (verb === 'kill' || verb === 'term') {
        const name = pick(names[role].filter((n) => f.get(n).alive));
        if (!name) return;
        // A SIGTERM is meant to land on a worker that is busy (mid-step), not on one still starting.
        if (verb === 'term') await f.ready(name).catch(() => {});
        log(`${at} ${fault} ${name}`);
        count(fault);
        const sent = Date.now();
        const exit = await f.stop(name, verb === 'kill' ? 'SIGKILL' : 'SIGTERM');
        if (verb === 'term') {
          if (exit.code !== 0) uncleanStops.push({ name, code: exit.code, signal: exit.signal });
          log(`${name} exited ${exit.code ?? exit.signal} ${Date.now() - sent} ms after SIGTERM`);
        }
        await sleep(verb === 'kill' ? 500 + Math.random() * 1500 : 200);
        f.respawn(name);
        return;
      }
      log(`${at} ${fault}`);
      count(fault);
      if (fault === 'redis-flushall') await r.flushall();
      else if (fault === 'redis-restart') {
        // While Redis is down, the API must still answer: its inputs go to
        // Postgres; the doorbell is best-effort (the sweep rings later).
        await r.stop();
        const downMs = o.redisDownMs ?? 3000;
        const probeKey = `${o.label}-probe-${outage.probes++}`;
        const sent = Date.now();
        const probe = fetch(`${base}/v1/process-instances`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ processKey: 'fault-load', businessKey: probeKey, variables: { key: probeKey, n: -1, url: echoUrl } }),
          signal: AbortSignal.timeout(downMs),
        })
          .then(async (res) => {
            const body = (await res.json()) as { id?: string };
            if (res.status === 201 && body.id) started.set(probeKey, body.id);
            if (res.status === 201 || res.status === 200) outage.answered++;
            log(`probe start while Redis is down: ${res.status} after ${Date.now() - sent} ms`);
          })
          .catch((err: unknown) => log(`probe start while Redis is down: no answer (${String(err)})`));
        await sleep(downMs);
        await probe;
        await r.start();
      }
      else if (fault === 'pg-restart') {
        const t = Date.now();
        await pgServer!.restart();
        log(`postgres back after ${Date.now() - t} ms`);
      }
      f.writePids();
    }

    const injector = (async () => {
      if (o.schedule !== 'random') {
        for (const s of o.schedule) {
          const wait = workT0 + s.atMs - Date.now();
          if (wait > 0) await sleep(wait);
          if (stopClients) return;
          await inject(s.fault);
        }
        return;
      }
      // Random: a fault every 2–5 s while the starts last (and a little after),
      // every kind at least once, the Postgres restart once, near the middle.
      const startPhase = (o.instances / o.startRate) * 1000;
      const kinds: FaultKind[] = ['kill-step', 'kill-service', 'kill-scheduler', 'term-step', 'term-service', 'term-scheduler', 'redis-flushall', 'redis-restart'];
      const owed = new Set<FaultKind>([...kinds, 'pg-restart']);
      while (!stopClients) {
        await sleep(2000 + Math.random() * 3000);
        const elapsed = Date.now() - workT0;
        if (stopClients || (elapsed > startPhase + 10_000 && owed.size === 0)) return;
        let fault: FaultKind;
        if (owed.has('pg-restart') && elapsed > startPhase / 2) fault = 'pg-restart';
        else if (elapsed > startPhase * 0.8 && [...owed].some((k) => k !== 'pg-restart')) fault = [...owed].find((k) => k !== 'pg-restart')!;
        else fault = pick(['kill-step', 'kill-step', 'kill-service', 'kill-scheduler', 'term-step', 'term-step', 'term-service', 'term-scheduler', 'redis-flushall', 'redis-restart']);
        owed.delete(fault);
        await inject(fault);
      }
    })();

    // ---- wait for the work to finish ------------------------------------------
    await starter;
    log(`${started.size} of ${o.instances} started after ${Date.now() - workT0} ms (${startErrors.length} start errors)`);
    if (startErrors.length) log(`start errors: ${startErrors.slice(0, 5).join('; ')}`);
    await injector;
    const drainBy = Date.now() + o.drainTimeoutMs;
    let lastProgress = '';
    for (;;) {
      let done = -1;
      try {
        const res = await db.query<{ c: number }>(`select count(*)::int as c from process_instance where status = 'completed'`);
        done = res.rows[0]!.c;
      } catch {
        /* postgres away */
      }
      // parents + their children
      if (done >= started.size * 2) break;
      const progress = `completed ${done} of ${started.size * 2} instances (parents + children)`;
      if (progress !== lastProgress && (Date.now() - workT0) % 5000 < 600) log(progress);
      lastProgress = progress;
      if (Date.now() > drainBy) {
        log(`drain timeout: ${progress}`);
        break;
      }
      await sleep(500);
    }
    const elapsedWork = Date.now() - workT0;
    // Late duplicates would show up now: leave the fleet running a moment longer.
    await sleep(1500);
    stopClients = true;
    await Promise.all([tasks, messages, ...externals]);

    // ---- checks ---------------------------------------------------------------
    const result = await checks(db, [...started.values()], echoCalls);
    result.rows.push({ check: 'API answered while Redis was down', expected: outage.probes, observed: outage.answered, lost: outage.probes - outage.answered, duplicated: 0 });
    const crashes = f.crashes().map(({ name, code, signal }) => ({ name, code, signal }));
    await f.stopAll();
    const table = renderTable(result.rows, faults, stats, elapsedWork);
    log(`\n${table}`);
    if (result.stuck.length) log(`stuck instances (first 20):\n${result.stuck.slice(0, 20).map((s) => `  ${s.id} ${s.processKey} ${s.status} waits at [${s.waitingAt.join(', ')}] pending inbox ${s.pendingInbox} incidents [${s.incidents.join('; ')}]`).join('\n')}`);
    if (crashes.length) log(`crashed processes: ${JSON.stringify(crashes)}`);
    if (uncleanStops.length) log(`unclean SIGTERM stops: ${JSON.stringify(uncleanStops)}`);
    const clean = result.rows.every((x) => x.lost === 0 && x.duplicated === 0) && crashes.length === 0 && uncleanStops.length === 0;
    if (clean && !process.env.FAULTS_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
    else log(`process logs kept in ${dir}/logs`);
    return { ...result, faults, crashes, uncleanStops, table, elapsedMs: Date.now() - t0, dir };
  } finally {
    await fleet?.stopAll().catch(() => {});
    await harnessPool?.end().catch(() => {});
    if (echo) await new Promise<void>((r) => echo!.close(() => r()));
    await redis?.stop().catch(() => {});
    if (pgServer?.kind === 'private') {
      await pgServer.stop().catch(() => {});
      rmSync(pgServer.dataDir!, { recursive: true, force: true });
    } else if (pgServer) {
      await iso.drop().catch((err: unknown) => log(`could not drop ${iso.schema}: ${String(err)}`));
    }
    try {
      if (watchdog?.pid) process.kill(watchdog.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    process.off('exit', onExit);
  }
}

async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (i < items.length) {
        const item = items[i++]!;
        try {
          await fn(item);
        } catch (err) {
          errors.push(err);
        }
      }
    }),
  );
  if (errors.length) throw errors[0];
}

// ---- the checks ---------------------------------------------------------------

async function checks(
  db: pg.Pool,
  parentIds: string[],
  echoCalls: Map<string, number>,
): Promise<{ rows: CheckRow[]; stuck: FaultRunResult['stuck'] }> {
  // The harness's pool may still hold connections from before a restart.
  const q = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await db.query<R>(text, params)).rows;
      } catch (err) {
        if (attempt >= 5) throw err;
        await sleep(500);
      }
    }
  };
  const E = parentIds.length;
  const rows: CheckRow[] = [];
  /** per-parent counts → expected/observed/lost/duplicated, where each parent must count exactly 1 */
  const exactlyOnce = (check: string, counts: Map<string, number>, extraDup = 0, note?: string, per = 1): CheckRow => {
    let lost = 0;
    let dup = 0;
    let observed = 0;
    for (const id of parentIds) {
      const c = counts.get(id) ?? 0;
      observed += c;
      if (c < per) lost += per - c;
      if (c > per) dup += c - per;
    }
    return { check, expected: E * per, observed, lost, duplicated: dup + extraDup, ...(note ? { note } : {}) };
  };
  const countBy = (rs: Array<{ k: string; c: number }>) => new Map(rs.map((r) => [r.k, r.c]));
  const parents = `(select unnest($1::uuid[]) as id)`;

  // instances
  const completedParents = countBy(await q(`select i.id::text as k, 1 as c from process_instance i join ${parents} p on p.id = i.id where i.status = 'completed'`, [parentIds]));
  const allParents = await q<{ c: number; keys: number }>(`select count(*)::int as c, count(distinct business_key)::int as keys from process_instance where process_key = 'fault-load'`);
  const extraParents = allParents[0]!.c - allParents[0]!.keys;
  rows.push(exactlyOnce('instances completed', completedParents, extraParents, `${allParents[0]!.c} parent rows`));

  // history, per parent and element
  const hist = await q<{ k: string; element_id: string; c: number }>(
    `select h.instance_id::text as k, h.element_id, count(*)::int as c from history h join ${parents} p on p.id = h.instance_id
      where h.event = 'element_completed' group by 1, 2`,
    [parentIds],
  );
  const histOf = (el: string) => new Map(hist.filter((h) => h.element_id === el).map((h) => [h.k, h.c]));

  // user tasks: one row per parent, completed; its completion applied once
  const taskRows = countBy(await q(`select t.instance_id::text as k, count(*)::int as c from human_task t join ${parents} p on p.id = t.instance_id where t.element_id = 'review' and t.state = 'completed' group by 1`, [parentIds]));
  const taskInboxDup = (await q<{ c: number }>(`select count(*)::int as c from (select payload->>'taskId' from inbox where kind = 'humanTaskCompleted' group by 1 having count(*) > 1) d`))[0]!.c;
  rows.push(exactlyOnce('user task completed (task rows)', taskRows, taskInboxDup));
  rows.push(exactlyOnce('user task applied (history)', histOf('review')));

  // external service jobs
  const jobRows = (topic: string) =>
    q<{ k: string; c: number }>(`select j.instance_id::text as k, count(*)::int as c from service_job j join ${parents} p on p.id = j.instance_id where j.topic = $2 and j.state = 'completed' group by 1`, [parentIds, topic]).then(countBy);
  const jobInboxDup = (await q<{ c: number }>(`select count(*)::int as c from (select payload->>'jobId' from inbox where kind like 'serviceJob%' group by 1 having count(*) > 1) d`))[0]!.c;
  rows.push(exactlyOnce('external job completed (job rows)', await jobRows(EXT_TOPIC), jobInboxDup));
  rows.push(exactlyOnce('external job applied (history)', histOf('ext')));
  const httpJobs = await jobRows('http');
  const repeats = [...echoCalls.values()].filter((c) => c > 1).length;
  rows.push(exactlyOnce('http job completed (job rows)', httpJobs, 0, `${echoCalls.size} keys called, ${repeats} called again (at-least-once)`));
  rows.push(exactlyOnce('http job applied (history)', histOf('notify')));

  // timers
  const timerInboxDup = (await q<{ c: number }>(`select count(*)::int as c from (select payload->>'timerId' from inbox where kind = 'timerFired' group by 1 having count(*) > 1) d`))[0]!.c;
  const timerFired = countBy(await q(`select x.instance_id::text as k, count(*)::int as c from inbox x join ${parents} p on p.id = x.instance_id where x.kind = 'timerFired' group by 1`, [parentIds]));
  rows.push(exactlyOnce('timer fired (inbox)', timerFired, timerInboxDup));
  rows.push(exactlyOnce('timer applied (history)', histOf('wait')));

  // messages
  const msgInbox = countBy(await q(`select x.instance_id::text as k, count(*)::int as c from inbox x join ${parents} p on p.id = x.instance_id where x.kind = 'messageReceived' group by 1`, [parentIds]));
  const msgRecordDup = (await q<{ c: number }>(`select count(*)::int as c from (select message_id from message where message_id is not null group by 1 having count(*) > 1) d`))[0]!.c;
  const leftover = (await q<{ c: number }>(`select count(*)::int as c from message where outcome is null`))[0]!.c;
  rows.push(exactlyOnce('message correlated (inbox)', msgInbox, msgRecordDup, `${leftover} left in the buffer`));
  rows.push(exactlyOnce('message applied (history)', histOf('go')));

  // parallel join and call activity
  // Each of the three branches arrives at the join once (one element_completed per arriving token).
  rows.push(exactlyOnce('parallel join arrivals (history)', histOf('join'), 0, '3 branches per instance', 3));
  const children = countBy(await q(`select c.parent_instance_id::text as k, count(*)::int as c from process_instance c join ${parents} p on p.id = c.parent_instance_id where c.status = 'completed' group by 1`, [parentIds]));
  const childRows = (await q<{ c: number }>(`select count(*)::int as c from process_instance where process_key = 'fault-child'`))[0]!.c;
  rows.push(exactlyOnce('child instance completed', children, Math.max(0, childRows - E)));
  rows.push(exactlyOnce('call activity applied (history)', histOf('call')));
  rows.push(exactlyOnce('end reached (history)', histOf('end')));

  // no duplicate history entries anywhere (parents and children)
  const dupHist = await q<{ c: number }>(
    `select count(*)::int as c from (select 1 from history where event <> 'variable_updated' group by instance_id, element_id, event, token_id having count(*) > 1) d`,
  );
  const histTotal = (await q<{ c: number }>(`select count(*)::int as c from history`))[0]!.c;
  rows.push({ check: 'history entries (no duplicates)', expected: histTotal - dupHist[0]!.c, observed: histTotal, lost: 0, duplicated: dupHist[0]!.c });

  // leftovers
  const pending = (await q<{ c: number }>(`select count(*)::int as c from inbox where processed_at is null`))[0]!.c;
  rows.push({ check: 'inbox rows left unprocessed', expected: 0, observed: pending, lost: pending, duplicated: 0 });
  const incidents = (await q<{ c: number }>(`select count(*)::int as c from incident where resolved_at is null`))[0]!.c;
  rows.push({ check: 'open incidents', expected: 0, observed: incidents, lost: incidents, duplicated: 0 });

  // stuck instances: where they wait
  const stuckRows = await q<{ id: string; process_key: string; status: string; state: { tokens?: Record<string, { elementId: string; state: string }> }; pending: number; incidents: string[] | null }>(
    `select i.id::text, i.process_key, i.status, i.state,
            (select count(*)::int from inbox x where x.instance_id = i.id and x.processed_at is null) as pending,
            (select array_agg(n.code || ' at ' || n.element_id || ': ' || left(n.message, 120)) from incident n where n.instance_id = i.id and n.resolved_at is null) as incidents
       from process_instance i where i.status not in ('completed', 'terminated') order by i.started_at limit 200`,
  );
  const stuck = stuckRows.map((s) => ({
    id: s.id,
    processKey: s.process_key,
    status: s.status,
    waitingAt: Object.values(s.state.tokens ?? {}).map((t) => `${t.elementId}(${t.state})`),
    pendingInbox: s.pending,
    incidents: s.incidents ?? [],
  }));
  const stuckCount = (await q<{ c: number }>(`select count(*)::int as c from process_instance where status not in ('completed', 'terminated')`))[0]!.c;
  rows.push({ check: 'instances stuck (not completed)', expected: 0, observed: stuckCount, lost: stuckCount, duplicated: 0 });
  return { rows, stuck };
}

function renderTable(rows: CheckRow[], faults: Record<string, number>, stats: Record<string, number>, elapsedMs: number): string {
  const head = ['check', 'expected', 'observed', 'lost', 'duplicated', 'note'];
  const body = rows.map((r) => [r.check, String(r.expected), String(r.observed), String(r.lost), String(r.duplicated), r.note ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  const sep = widths.map((w) => '-'.repeat(w)).join('-|-');
  const lost = rows.reduce((a, r) => a + r.lost, 0);
  const dup = rows.reduce((a, r) => a + r.duplicated, 0);
  return [
    line(head),
    sep,
    ...body.map(line),
    sep,
    `TOTAL: ${lost} lost / ${dup} duplicated; work phase ${(elapsedMs / 1000).toFixed(1)} s`,
    `faults injected: ${Object.entries(faults).map(([k, v]) => `${k}×${v}`).join(', ') || 'none'}`,
    `client: ${Object.entries(stats).map(([k, v]) => `${k}=${v}`).join(', ')}`,
  ].join('\n');
}
