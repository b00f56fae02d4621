/**
 * The Fastify app factory. `buildApp()` never listens: tests use `inject()`,
 * the api worker calls `listen()`. Everything it needs comes in as arguments.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Commands } from '../runtime/commands.js';
import type { Transport } from '../queue/index.js';
import type { Db } from '../store/db.js';
import { BatonError } from '../errors.js';
import { errorHandler } from './errors.js';
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
  /** largest accepted request body (deployments carry XML) */
  bodyLimit?: number;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimit ?? 10 * 1024 * 1024,
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
  await app.register(multipart, { limits: { fileSize: 10 * 1024 * 1024, files: 100 } });

  app.setErrorHandler(errorHandler);
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
    throw new BatonError(code, `${what} ${id} not found`);
  }
  return id.toLowerCase();
}

export const errorSchema = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
  required: ['code', 'message'],
} as const;

export const listQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  cursor: { type: 'string', maxLength: 200 },
} as const;
