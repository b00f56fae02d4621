import type { FastifyInstance } from 'fastify';
import { listIncidents } from '../../store/incidents.js';
import { type AppDeps, listQuery, requireUuid } from '../app.js';
import { decodeCursor, incidentView, page } from '../views.js';

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
      const afterId = decodeCursor(q.cursor);
      const rows = await listIncidents(deps.db, {
        ...(q.processInstanceId !== undefined ? { processInstanceId: q.processInstanceId.toLowerCase() } : {}),
        ...(q.open !== undefined ? { open: q.open } : {}),
        ...(afterId !== undefined ? { afterId } : {}),
        limit: q.limit + 1,
      });
      return page(rows, q.limit, incidentView, (r) => r.id);
    },
  );
}
