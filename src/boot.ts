/**
 * The composition root: builds the roles a process runs from a Config.
 *
 *   api        Fastify on HOST:PORT
 *   step       step worker: consumes the `step` queue, advances instances
 *   service    service worker: runs built-in connectors
 *   scheduler  sweeps stranded inbox rows (timers and messages come later)
 *
 * Embedded mode runs all four in one process over PGlite and the in-process
 * queue; distributed mode runs any subset over Postgres and BullMQ. Every role
 * that is not the API serves /health and /ready on HEALTH_PORT for probes.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { pino, type Logger } from 'pino';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { buildApp } from './api/app.js';
import { builtinConnectors } from './connectors/index.js';
import { createEvaluator, createPythonEvaluator, evaluatorsOf, type Language, type PythonEvaluator, type SandboxEvaluator } from './expressions/index.js';

/** How long a step waits, without blocking, for the Python sandbox to load before it evaluates anyway (and blocks for the rest). */
const PYTHON_START_WAIT_MS = 60_000;
import { createBullTransport, createMemoryTransport, STEP_QUEUE, type Consumer, type StepDoorbell, type Transport } from './queue/index.js';
import { createCommands, type Commands } from './runtime/commands.js';
import { createDefinitionCache } from './runtime/definitions.js';
import { startScheduler, type Scheduler } from './runtime/scheduler.js';
import { startServiceWorker, type ServiceWorker } from './runtime/service-worker.js';
import { createStepRunner } from './runtime/step.js';
import { isConnectionError, migrateToLatest, openPglite, openPostgres, type OpenedDb } from './store/db.js';

export type Role = 'api' | 'step' | 'service' | 'scheduler';
export const ALL_ROLES: Role[] = ['api', 'step', 'service', 'scheduler'];

export interface BootOptions {
  logger?: Logger;
  /** tests: isolate tables in a Postgres schema */
  schema?: string;
  /** tests: run PGlite in memory instead of in dataDir */
  inMemory?: boolean;
  /** listen on this port instead of config.port (0 = any free port) */
  port?: number;
  /** serve /health on HEALTH_PORT for non-API roles (default: when the api role is absent) */
  healthServer?: boolean;
}

export interface Baton {
  config: Readonly<Config>;
  logger: Logger;
  db: OpenedDb['db'];
  transport: Transport;
  commands: Commands;
  app: FastifyInstance | null;
  /** base URL of the API when it listens */
  url: string | null;
  scheduler: Scheduler | null;
  close(): Promise<void>;
}

export const EXAMPLE_FILE = new URL('./examples/order-approval.bpmn', import.meta.url);

/**
 * Connections this process may need: what its roles run at once, plus a
 * little for the health check and the sweep. Sized by role, so that a
 * deployment of many single-role processes does not reserve connections it
 * never uses (Postgres allows 100 by default).
 */
function poolSize(config: Readonly<Config>, roles: Role[]): number {
  let n = 2;
  if (roles.includes('api')) n += config.apiPoolSize;
  if (roles.includes('step')) n += config.stepConcurrency;
  if (roles.includes('service')) n += config.serviceConcurrency;
  if (roles.includes('scheduler')) n += 2;
  return n;
}

export async function startBaton(config: Readonly<Config>, roles: Role[], opts: BootOptions = {}): Promise<Baton> {
  const logger = opts.logger ?? pino({ level: config.logLevel, base: { roles: roles.join(',') } });
  /** what the roles use (database, transport, sandbox): closed last, in reverse order of opening */
  const closers: Array<() => Promise<void>> = [];
  /** the roles (and the health server): closed first, all at once */
  const roleClosers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    // Every role stops taking work at the same moment and finishes what is in
    // flight; only then do the transport and the database the work needed
    // close. At the same moment, not one after another: an API waiting for a
    // slow client's request must not keep the step worker beside it taking
    // new steps (a runaway model would go on until the grace period ends).
    const report = (err: unknown) => logger.error({ err }, 'error during shutdown');
    await Promise.all(roleClosers.splice(0).map((c) => c().catch(report)));
    for (const c of closers.reverse().splice(0)) await c().catch(report);
  };
  try {
    const opened =
      config.mode === 'distributed'
        ? await whileUnreachable(logger, () =>
            openPostgres({ url: config.databaseUrl!, ...(opts.schema ? { schema: opts.schema } : {}), max: poolSize(config, roles), prepare: config.pgPrepare }),
          )
        : await openPglite(opts.inMemory ? null : privateDir(config.dataDir, 'pgdata'));
    closers.push(() => opened.close());
    const db = opened.db;
    if (config.migrateOnStart) {
      // Migrations run in transactions under a session advisory lock: a
      // connection lost half-way rolls back and frees the lock, so trying again is safe.
      const ran = await whileUnreachable(logger, () => migrateToLatest(db));
      if (ran.length > 0) logger.info({ migrations: ran }, 'migrated');
    }

    const onError = (err: Error) => logger.warn({ err }, 'queue connection error');
    const transport =
      config.mode === 'distributed'
        ? createBullTransport({ url: config.redisUrl!, prefix: config.queuePrefix, onError, jobLockMs: config.queueJobLockMs })
        : createMemoryTransport({ onError: (err) => logger.error({ err }, 'step failed; will retry') });
    closers.push(() => transport.close());
    const definitions = createDefinitionCache(500, config.definitionCacheMb * 1024 * 1024);
    // One sandbox per language and process, shared by the step role and the
    // API's inline steps. JavaScript's starts with the first step; Python's
    // (Pyodide: seconds and ~180 MB) only when a Python model first runs, and
    // the step waits for it without blocking the event loop (prepareLanguage).
    let javascript: SandboxEvaluator | null = null;
    let python: PythonEvaluator | null = null;
    const jsSandbox = (): SandboxEvaluator => {
      if (!javascript) {
        const ev = createEvaluator({ timeoutMs: config.scriptTimeoutMs, memoryLimitMb: config.scriptMemoryMb });
        javascript = ev;
        closers.push(async () => ev.close());
      }
      return javascript;
    };
    const pySandbox = (): PythonEvaluator => {
      if (!python) {
        const ev = createPythonEvaluator({ timeoutMs: config.scriptTimeoutMs, memoryLimitMb: config.pythonMemoryMb });
        python = ev;
        closers.push(async () => ev.close());
        logger.info('starting the Python sandbox (Pyodide)');
      }
      return python;
    };
    const languageDeps = () => (jsSandbox(), {
      evaluators: evaluatorsOf(config.python ? { javascript: jsSandbox, python: pySandbox } : { javascript: jsSandbox }),
      prepareLanguage: async (language: Language) => {
        if (language !== 'python' || !config.python) return;
        const started = Date.now();
        if (await pySandbox().ready(PYTHON_START_WAIT_MS)) {
          if (Date.now() - started > 100) logger.info({ ms: Date.now() - started }, 'the Python sandbox is ready');
        } else logger.warn({ ms: Date.now() - started }, 'the Python sandbox is not ready yet; Python evaluations wait for it');
      },
    });
    const inline = roles.includes('api') && config.apiInlineSteps;
    const connectorTopics = new Set(builtinConnectors().keys());
    const commands = createCommands({
      db,
      transport,
      logger,
      definitions,
      minTimerIntervalMs: config.minTimerIntervalMs,
      maxModelElements: config.maxModelElements,
      languages: config.python ? ['javascript', 'python'] : ['javascript'],
      // distributed: user scripts that need a sandbox run on the step workers, never on the API's event loop
      ...(inline ? { inlineSteps: createStepRunner({ db, transport, logger, ...languageDeps(), definitions, connectorTopics, maxStateBytes: 64 * 1024, declineSandboxedScripts: config.mode === 'distributed', maxCallDepth: config.maxCallDepth, maxStepAttempts: config.maxStepAttempts, stateLimitBytes: config.maxStateBytes, maxTokens: config.maxTokens, maxElementExecutions: config.maxStepElements, stepScriptBudgetMs: config.stepScriptBudgetMs, concurrentStatements: opened.kind === 'postgres', maxMultiInstances: config.maxMultiInstances, minTimerIntervalMs: config.minTimerIntervalMs }) } : {}),
    });

    let scheduler: Scheduler | null = null;
    if (roles.includes('scheduler')) {
      scheduler = startScheduler({ db, transport, logger, sweepAfterMs: config.sweepAfterMs, sweepIntervalMs: config.sweepIntervalMs, idempotencyTtlMs: config.idempotencyTtlMs });
      roleClosers.push(() => scheduler!.close());
    }

    if (roles.includes('step')) {
      const runner = createStepRunner({ db, transport, logger, ...languageDeps(), definitions, connectorTopics, maxCallDepth: config.maxCallDepth, maxStepAttempts: config.maxStepAttempts, stateLimitBytes: config.maxStateBytes, maxTokens: config.maxTokens, maxElementExecutions: config.maxStepElements, stepScriptBudgetMs: config.stepScriptBudgetMs, concurrentStatements: opened.kind === 'postgres', maxMultiInstances: config.maxMultiInstances, minTimerIntervalMs: config.minTimerIntervalMs });
      const consumer: Consumer = transport.consume<StepDoorbell>(
        STEP_QUEUE,
        async ({ instanceId, swept }, { redelivered }) => {
          // after a sweep or a redelivery the last step may have crashed: count attempts (quarantine)
          await runner.run(instanceId, { suspect: swept === true || redelivered });
        },
        { concurrency: config.stepConcurrency },
      );
      roleClosers.push(() => consumer.close());
    }

    if (roles.includes('service')) {
      const sw: ServiceWorker = startServiceWorker({
        db,
        transport,
        logger,
        connectors: builtinConnectors({ maxTimeoutMs: config.httpMaxTimeoutMs, maxPerHost: config.httpMaxPerHost }),
        concurrency: config.serviceConcurrency,
        lockMs: config.serviceLockMs,
      });
      roleClosers.push(() => sw.close());
    }

    let app: FastifyInstance | null = null;
    let url: string | null = null;
    if (roles.includes('api')) {
      app = await buildApp({ db, transport, commands, logger, limits: config.limits });
      roleClosers.push(() => app!.close());
      if (config.deployExamples) {
        const content = readFileSync(EXAMPLE_FILE, 'utf8');
        const out = await commands.deploy([{ name: 'order-approval.bpmn', content }], 'examples');
        logger.info({ processes: out.processes }, 'example model deployed');
      }
      const address = await app.listen({ port: opts.port ?? config.port, host: config.host });
      url = address.replace('[::1]', '127.0.0.1');
      logger.info({ url }, 'api listening');
    } else if (opts.healthServer ?? true) {
      const server = await healthServer(config, db, transport, opts.port ?? config.healthPort);
      roleClosers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    }

    let closing: Promise<void> | null = null;
    return {
      config,
      logger,
      db,
      transport,
      commands,
      app,
      url,
      scheduler,
      close() {
        closing ??= closeAll();
        return closing;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * Start-up work that needs Postgres: a process that starts while Postgres
 * restarts (or before it is up, as in a fresh docker-compose) waits for it
 * for a while instead of exiting; a running process rides out the same outage
 * query by query. Anything but a connection error fails at once.
 */
async function whileUnreachable<T>(logger: Logger, fn: () => Promise<T>, forMs = 60_000): Promise<T> {
  const deadline = Date.now() + forMs;
  let delay = 250;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err) || Date.now() + delay > deadline) throw err;
      logger.warn({ err }, 'postgres unreachable at start-up; retrying');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

/** /health (process up) and /ready (database and queue reachable) for worker roles. */
async function healthServer(config: Readonly<Config>, db: OpenedDb['db'], transport: Transport, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/health') return send(200, { status: 'ok' });
    if (req.url === '/ready') {
      void Promise.all([sql`select 1`.execute(db), transport.ping()]).then(
        () => send(200, { status: 'ready' }),
        () => send(503, { status: 'not_ready' }),
      );
      return;
    }
    send(404, { code: 'route_not_found', message: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, config.host, () => resolve());
  });
  return server;
}

/**
 * Entry-point glue: start, and close gracefully on SIGTERM/SIGINT, within
 * BATON_SHUTDOWN_GRACE_MS, always.
 *
 * The handlers are installed before start-up, not after: a process told to
 * stop while it is still starting (a rolling deploy, a scale-down right after
 * a scale-up) must not die of the signal's default action half-way through
 * its start; it finishes starting, then closes like any other.
 *
 * Closing stops taking jobs and lets the running steps finish (Baton.close);
 * when that does not end within the grace period (a step stuck on a dead
 * connection, start-up still waiting for Postgres), the process exits with
 * code 1 anyway: whatever was cut short was not committed, Postgres rolls it
 * back and the sweep redoes it. A second signal exits at once, for an operator
 * who does not want to wait. The deadline timer keeps the process alive on
 * purpose: a close that hangs on nothing at all still ends in a logged exit 1.
 */
export async function runMain(config: Readonly<Config>, roles: Role[]): Promise<void> {
  const logger = pino({ level: config.logLevel, base: { roles: roles.join(',') } });
  let baton: Baton | null = null;
  let stopping = false;
  const exit = (code: number) => {
    logger.flush();
    process.exit(code);
  };
  const shutdown = (b: Baton) => {
    void b.close().then(
      () => exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  const stop = (signal: string) => {
    if (stopping) {
      logger.error({ signal }, 'second signal during shutdown; exiting now');
      exit(1);
      return;
    }
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    setTimeout(() => {
      logger.error({ graceMs: config.shutdownGraceMs }, `shutdown did not finish within ${config.shutdownGraceMs} ms; exiting`);
      exit(1);
    }, config.shutdownGraceMs);
    if (baton) shutdown(baton);
    // else: start-up is still running; it shuts down as soon as it is done (below).
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  baton = await startBaton(config, roles, { logger });
  if (stopping) shutdown(baton);
}

/** `<dir>/<sub>`, with `dir` (Baton's data folder) created or closed to group and others (security review C2). */
function privateDir(dir: string, sub: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return `${dir}/${sub}`;
}
