import type { FastifyInstance } from 'fastify';
import { BatonError } from '../../errors.js';
import { getIncident, listIncidents } from '../../store/incidents.js';
import { getInstance } from '../../store/instances.js';
import { type AppDeps, errorSchema, listQuery, requireUuid } from '../app.js';
import { decodeCursor, incidentView, instanceView, page } from '../views.js';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;

export async function incidentRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get<{ Querystring: { processInstanceId?: string; open?: boolean; limit: number; cursor?: string } }>(
    '/incidents',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { processInstanceId: { type: 'string' }, open: { type: 'boolean' }, ...listQuery },
        },
      },
    },
    async (req) => {
      const q = req.query;
      if (q.processInstanceId !== undefined) requireUuid(q.processInstanceId, 'invalid_request', 'processInstanceId');
      const afterId = decodeCursor(q.cursor, 'uuid');
      const rows = await listIncidents(deps.db, {
        ...(q.processInstanceId !== undefined ? { processInstanceId: q.processInstanceId.toLowerCase() } : {}),
        ...(q.open !== undefined ? { open: q.open } : {}),
        ...(afterId !== undefined ? { afterId } : {}),
        limit: q.limit + 1,
      });
      return page(rows, q.limit, incidentView, (r) => r.id);
    },
  );

  app.get<{ Params: { id: string } }>('/incidents/:id', { schema: { params: idParams, response: { 404: errorSchema } } }, async (req) => {
    const id = requireUuid(req.params.id, 'incident_not_found', 'incident');
    const row = await getIncident(deps.db, id);
    if (!row) throw new BatonError('incident_not_found', `incident ${id} not found`);
    return incidentView(row);
  });

  /**
   * Runs the element the incident stopped again, after the operator fixed what
   * made it fail (variables, a called process, the remote service). 202 with
   * the instance; with waitMs, 200 once the retry was applied.
   */
  app.post<{ Params: { id: string }; Body: { waitMs?: number } | undefined }>(
    '/incidents/:id/retry',
    {
      schema: {
        summary: 'Retry the element an incident stopped',
        params: idParams,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { waitMs: { type: 'integer', minimum: 0, maximum: 60000 } } },
        response: { 404: errorSchema, 409: errorSchema },
      },
    },
    async (req, reply) => {
      const id = requireUuid(req.params.id, 'incident_not_found', 'incident');
      const accepted = await deps.commands.retryIncident(id);
      const waitMs = req.body?.waitMs;
      if (waitMs) return reply.status(200).send(instanceView(await deps.commands.waitForInstance(accepted.instanceId, accepted.inboxId, waitMs)));
      return reply.status(202).send(instanceView((await getInstance(deps.db, accepted.instanceId))!));
    },
  );
}
