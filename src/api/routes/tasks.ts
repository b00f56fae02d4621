import type { FastifyInstance } from 'fastify';
import { BatonError, type JsonObject } from '../../errors.js';
import { getInstance } from '../../store/instances.js';
import { getHumanTask, listHumanTasks } from '../../store/tasks.js';
import { type AppDeps, errorSchema, listQuery, requireUuid } from '../app.js';
import { decodeCursor, instanceView, page, taskView } from '../views.js';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;

export async function taskRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get<{ Querystring: { processInstanceId?: string; state?: string; assignee?: string; candidateGroup?: string; limit: number; cursor?: string } }>(
    '/tasks',
    {
      schema: {
        summary: 'Human tasks (user and manual tasks)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            processInstanceId: { type: 'string' },
            state: { type: 'string', enum: ['open', 'completed', 'cancelled'] },
            assignee: { type: 'string', maxLength: 255 },
            candidateGroup: { type: 'string', maxLength: 255 },
            ...listQuery,
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      if (q.processInstanceId !== undefined) requireUuid(q.processInstanceId, 'invalid_request', 'processInstanceId');
      const afterId = decodeCursor(q.cursor, 'uuid');
      const rows = await listHumanTasks(deps.db, {
        ...(q.processInstanceId !== undefined ? { processInstanceId: q.processInstanceId.toLowerCase() } : {}),
        ...(q.state !== undefined ? { state: q.state } : {}),
        ...(q.assignee !== undefined ? { assignee: q.assignee } : {}),
        ...(q.candidateGroup !== undefined ? { candidateGroup: q.candidateGroup } : {}),
        ...(afterId !== undefined ? { afterId } : {}),
        limit: q.limit + 1,
      });
      return page(rows, q.limit, taskView, (r) => r.id);
    },
  );

  app.get<{ Params: { id: string } }>('/tasks/:id', { schema: { params: idParams, response: { 404: errorSchema } } }, async (req) => {
    const id = requireUuid(req.params.id, 'task_not_found', 'task');
    const task = await getHumanTask(deps.db, id);
    if (!task) throw new BatonError('task_not_found', `task ${id} not found`);
    return taskView(task);
  });

  app.post<{ Params: { id: string }; Body: { variables?: JsonObject; waitMs?: number } | undefined }>(
    '/tasks/:id/complete',
    {
      schema: {
        summary: 'Complete an open human task; exactly one of concurrent completions succeeds',
        params: idParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { variables: { type: 'object' }, waitMs: { type: 'integer', minimum: 0, maximum: 60000 } },
        },
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (req, reply) => {
      const id = requireUuid(req.params.id, 'task_not_found', 'task');
      const body = req.body ?? {};
      const done = await deps.commands.completeTask(id, body.variables ?? {});
      const task = await getHumanTask(deps.db, id);
      const instance = body.waitMs
        ? await deps.commands.waitForInstance(done.instanceId, done.inboxId, body.waitMs)
        : await getInstance(deps.db, done.instanceId);
      return reply.status(200).send({ task: taskView(task!), instance: instance ? instanceView(instance) : null });
    },
  );
}
