/**
 * The Fastify app factory. `buildApp()` never listens: tests use `inject()`,
 * the api worker calls `listen()`. Everything it needs comes in as arguments.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import underPressure from '@fastify/under-pressure';
import swagger from '@fastify/swagger';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Commands } from '../runtime/commands.js';
import type { Transport } from '../queue/index.js';
import type { Db } from '../store/db.js';
import { DEFAULT_LIMITS, type ApiLimits } from '../config.js';
import { BatonError } from '../errors.js';
import { errorHandler } from './errors.js';
import { inputGuards } from './guards.js';
import { deploymentRoutes } from './routes/deployments.js';
import { instanceRoutes } from './routes/instances.js';
import { taskRoutes } from './routes/tasks.js';
import { externalTaskRoutes } from './routes/external-tasks.js';
import { incidentRoutes } from './routes/incidents.js';
import { messageRoutes } from './routes/messages.js';

export interface AppDeps {
  db: Db;
  transport: Transport;
  commands: Commands;
  logger: Logger;
  /** input limits (README "Limits"); missing fields take DEFAULT_LIMITS */
  limits?: Partial<ApiLimits>;
}

/** AppDeps as the routes see them: every limit resolved. */
export type RouteDeps = AppDeps & { limits: ApiLimits };

export async function buildApp(appDeps: AppDeps): Promise<FastifyInstance> {
  const limits: ApiLimits = Object.freeze({ ...DEFAULT_LIMITS, ...appDeps.limits });
  const deps: RouteDeps = { ...appDeps, limits };
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger,
    // Every route but the deployment upload (which sets its own, larger,
    // bodyLimit) carries at most this much JSON.
    bodyLimit: limits.maxBodyBytes,
    // A long id must reach its route and get that resource's 404, not the
    // route-not-found answer Fastify gives for params over its 100-char default.
    // The HTTP parser still caps a whole request line at its header size limit.
    routerOptions: { maxParamLength: 64 * 1024 },
    // A malformed URL (bad percent-encoding in a path parameter) is answered by
    // Fastify before routing; this keeps that answer in our error shape.
    frameworkErrors: (error, req, reply) => errorHandler(error, req, reply),
    ajv: {
      // Reject unknown fields instead of silently dropping them: a typo in a
      // request must be a 400, not a surprise.
      customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false },
    },
    // Per-request log lines would dominate the log under load; errors are
    // still logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;

  await app.register(swagger, {
    openapi: {
      info: { title: 'Baton', version: '1', description: 'BPMN 2.0 process execution' },
    },
  });
  // A deployment is at most maxModelBytes in all; the route counts the bytes of
  // every file against that total (src/api/routes/deployments.ts).
  await app.register(multipart, {
    limits: { fileSize: limits.maxModelBytes, files: 100, fields: 10, fieldSize: 64 * 1024, parts: 110, headerPairs: 100 },
  });
  // Fastify parses text/plain bodies into strings by default; no route takes
  // text, so a text body is a 415 like every other media type we do not read.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler(errorHandler);
  inputGuards(app, limits);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'route_not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.get('/health', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/ready', { schema: { hide: true } }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    try {
      await sql`select 1`.execute(deps.db);
      checks.database = 'ok';
    } catch {
      checks.database = 'unreachable';
    }
    try {
      await deps.transport.ping();
      checks.queue = 'ok';
    } catch {
      checks.queue = 'unreachable';
    }
    const ok = Object.values(checks).every((v) => v === 'ok');
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(
    async (v1) => {
      // Load shedding on the API's own routes only: /health must keep
      // answering, or an orchestrator would restart a busy pod.
      if (limits.maxEventLoopDelayMs > 0) {
        await v1.register(underPressure, {
          maxEventLoopDelay: limits.maxEventLoopDelayMs,
          // The mean lag over a window five times the limit: one long synchronous
          // piece of work (a big model's compile) is not overload, a sustained lag
          // is. (A window in which the loop never ran reads as infinite lag.)
          sampleInterval: Math.max(1000, 5 * limits.maxEventLoopDelayMs),
          retryAfter: 1,
          pressureHandler: (_req, reply, type, value) => {
            void reply
              .status(503)
              .header('retry-after', '1')
              .send({ code: 'under_pressure', message: `the API is overloaded (${type}: ${Math.round(Number(value))} over the limit of ${limits.maxEventLoopDelayMs} ms, BATON_MAX_EVENT_LOOP_DELAY_MS); retry shortly` });
          },
        });
      }
      await deploymentRoutes(v1, deps);
      await instanceRoutes(v1, deps);
      await taskRoutes(v1, deps);
      await externalTaskRoutes(v1, deps);
      await incidentRoutes(v1, deps);
      await messageRoutes(v1, deps);
    },
    { prefix: '/v1' },
  );
  return app;
}

/** Ids are UUIDs; anything else cannot name a row, so it is a 404, not a database error. */
export function requireUuid(id: string, code: string, what: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw new BatonError(code, `${what} ${clip(id)} not found`);
  }
  return id.toLowerCase();
}

/** A client-given string, short enough to quote in an error message. */
export function clip(s: string, max = 80): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}

export const errorSchema = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
  required: ['code', 'message'],
} as const;

/**
 * `limit` has no schema maximum: the configured BATON_MAX_PAGE_SIZE is checked
 * for every route with a `limit` query parameter (src/api/guards.ts), so one
 * answer (400 page_size_too_large) covers all lists, including future ones.
 */
export const listQuery = {
  limit: { type: 'integer', minimum: 1, default: 50, description: 'page size, at most BATON_MAX_PAGE_SIZE (default 1000)' },
  // no maxLength: decodeCursor answers every cursor it did not give out, long
  // ones included, with the same 400 invalid_cursor
  cursor: { type: 'string', description: 'nextCursor of the previous page' },
} as const;
