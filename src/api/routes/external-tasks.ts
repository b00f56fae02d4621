import type { FastifyInstance } from 'fastify';
import { processVariables } from '../../engine/index.js';
import type { JsonObject } from '../../errors.js';
import { getInstances } from '../../store/instances.js';
import type { ServiceJobRow } from '../../store/schema.js';
import { type AppDeps, errorSchema, requireUuid } from '../app.js';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;
const workerId = { type: 'string', minLength: 1, maxLength: 255 } as const;

export async function externalTaskRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  /** The worker sees the process variables with the task's evaluated inputs on top. */
  async function view(jobs: ServiceJobRow[]) {
    const vars = new Map<string, JsonObject>();
    for (const row of await getInstances(deps.db, [...new Set(jobs.map((j) => j.instance_id))])) {
      vars.set(row.id, row.state.rootScopeId !== '' ? processVariables(row.state) : {});
    }
    return jobs.map((j) => ({
      id: j.id,
      processInstanceId: j.instance_id,
      processKey: j.process_key,
      elementId: j.element_id,
      topic: j.topic,
      variables: { ...vars.get(j.instance_id), ...j.input },
      input: j.input,
      headers: j.headers,
      retries: j.retries,
      workerId: j.worker_id,
      lockExpiresAt: j.lock_expires_at?.toISOString() ?? null,
    }));
  }

  app.post<{ Body: { workerId: string; topics: string[]; maxTasks?: number; lockMs?: number } }>(
    '/external-tasks/fetch-and-lock',
    {
      schema: {
        summary: 'Claim service jobs of the given topics for an external worker',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['workerId', 'topics'],
          properties: {
            workerId,
            topics: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 255 } },
            maxTasks: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
            lockMs: { type: 'integer', minimum: 1000, maximum: 86_400_000, default: 60_000 },
          },
        },
      },
    },
    async (req) => {
      const b = req.body;
      const jobs = await deps.commands.fetchAndLock({ workerId: b.workerId, topics: b.topics, maxTasks: b.maxTasks ?? 10, lockMs: b.lockMs ?? 60_000 });
      return { items: await view(jobs) };
    },
  );

  app.post<{ Params: { id: string }; Body: { workerId?: string; variables?: JsonObject } | undefined }>(
    '/external-tasks/:id/complete',
    {
      schema: {
        params: idParams,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { workerId, variables: { type: 'object' } } },
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (req, reply) => {
      const id = requireUuid(req.params.id, 'external_task_not_found', 'external task');
      await deps.commands.completeJob(id, req.body?.workerId ?? null, req.body?.variables ?? {});
      return reply.status(204).send();
    },
  );

  app.post<{ Params: { id: string }; Body: { workerId?: string; message: string; retries?: number; retryBackoffMs?: number } }>(
    '/external-tasks/:id/fail',
    {
      schema: {
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['message'],
          properties: {
            workerId,
            message: { type: 'string', maxLength: 10_000 },
            retries: { type: 'integer', minimum: 0, maximum: 1000 },
            retryBackoffMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
          },
        },
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (req) => {
      const id = requireUuid(req.params.id, 'external_task_not_found', 'external task');
      const b = req.body;
      return deps.commands.failJob(id, b.workerId ?? null, {
        message: b.message,
        ...(b.retries !== undefined ? { retries: b.retries } : {}),
        ...(b.retryBackoffMs !== undefined ? { retryBackoffMs: b.retryBackoffMs } : {}),
      });
    },
  );

  app.post<{ Params: { id: string }; Body: { workerId?: string; errorCode: string; message?: string } }>(
    '/external-tasks/:id/bpmn-error',
    {
      schema: {
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['errorCode'],
          properties: { workerId, errorCode: { type: 'string', minLength: 1, maxLength: 255 }, message: { type: 'string', maxLength: 10_000 } },
        },
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (req, reply) => {
      const id = requireUuid(req.params.id, 'external_task_not_found', 'external task');
      await deps.commands.bpmnErrorJob(id, req.body.workerId ?? null, req.body.errorCode, req.body.message ?? null);
      return reply.status(204).send();
    },
  );
}
