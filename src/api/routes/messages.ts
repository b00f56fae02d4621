import type { FastifyInstance } from 'fastify';
import { BatonError, type JsonObject } from '../../errors.js';
import { deleteBufferedMessage, listBufferedMessages } from '../../store/messages.js';
import { type AppDeps, errorSchema, listQuery, requireUuid } from '../app.js';

const name = { type: 'string', minLength: 1, maxLength: 255 } as const;

export async function messageRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post<{ Body: { name: string; correlationKey?: string | null; variables?: JsonObject; messageId?: string; ttlSeconds?: number } }>(
    '/messages',
    {
      schema: {
        summary: 'Publish a message: correlated to one waiting subscription, or starts an instance, or is buffered (ttlSeconds)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name,
            correlationKey: { type: ['string', 'null'], maxLength: 1000 },
            variables: { type: 'object' },
            messageId: { type: 'string', minLength: 1, maxLength: 255 },
            ttlSeconds: { type: 'integer', minimum: 0, maximum: 31_536_000 },
          },
        },
        response: { 404: errorSchema },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const outcome = await deps.commands.publish({
        name: b.name,
        correlationKey: b.correlationKey ?? null,
        variables: b.variables ?? {},
        messageId: b.messageId ?? null,
        ...(b.ttlSeconds !== undefined ? { ttlSeconds: b.ttlSeconds } : {}),
      });
      if (outcome.kind === 'not_correlated') {
        throw new BatonError('message_not_correlated', `no subscription or message start event waits for message ${b.name}${b.correlationKey ? ` with key ${b.correlationKey}` : ''}`);
      }
      return reply.status(outcome.kind === 'buffered' ? 202 : 200).send(outcome);
    },
  );

  app.get<{ Querystring: { name?: string; limit: number } }>(
    '/messages',
    {
      schema: {
        summary: 'Buffered messages',
        querystring: { type: 'object', additionalProperties: false, properties: { name, limit: { ...listQuery.limit, default: 100 } } },
      },
    },
    async (req) => {
      const rows = await listBufferedMessages(deps.db, req.query.name, req.query.limit);
      return {
        items: rows.map((m) => ({
          id: m.id,
          messageId: m.message_id,
          name: m.name,
          correlationKey: m.correlation_key,
          variables: m.variables,
          expiresAt: m.expires_at?.toISOString() ?? null,
          createdAt: m.created_at.toISOString(),
        })),
        nextCursor: null,
      };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/messages/:id',
    { schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } }, response: { 404: errorSchema } } },
    async (req, reply) => {
      const id = requireUuid(req.params.id, 'message_not_found', 'buffered message');
      if (!(await deleteBufferedMessage(deps.db, id))) throw new BatonError('message_not_found', `buffered message ${id} not found`);
      return reply.status(204).send();
    },
  );

  app.post<{ Body: { name: string; variables?: JsonObject } }>(
    '/signals',
    {
      schema: {
        summary: 'Broadcast a signal to every waiting signal event and signal start event of that name',
        body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name, variables: { type: 'object' } } },
      },
    },
    async (req) => deps.commands.signal({ name: req.body.name, variables: req.body.variables ?? {} }),
  );
}
