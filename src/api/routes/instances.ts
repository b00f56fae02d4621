import type { FastifyInstance, FastifyReply } from 'fastify';
import { BatonError, type JsonObject } from '../../errors.js';
import { listHistory } from '../../store/history.js';
import { getInstance, getInstanceForRead, listInstances, processVariable } from '../../store/instances.js';
import type { ProcessInstanceRow } from '../../store/schema.js';
import { type RouteDeps, clip, errorSchema, listQuery, requireUuid } from '../app.js';
import { decodeCursor, historyView, instanceView, page } from '../views.js';

const STATUSES = ['running', 'waiting', 'completed', 'terminated', 'error', 'suspended'];

const startBody = {
  type: 'object',
  additionalProperties: false,
  required: ['processKey'],
  properties: {
    processKey: { type: 'string', minLength: 1, maxLength: 255 },
    version: { type: 'integer', minimum: 1 },
    variables: { type: 'object' },
    businessKey: { type: ['string', 'null'], maxLength: 255 },
    waitMs: { type: 'integer', minimum: 0, maximum: 60000 },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;

export async function instanceRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  app.post<{ Body: { processKey: string; version?: number; variables?: JsonObject; businessKey?: string | null; waitMs?: number } }>(
    '/process-instances',
    { schema: { summary: 'Start a process instance', body: startBody, response: { 400: errorSchema, 404: errorSchema } } },
    async (req, reply) => {
      const { processKey, version, variables, businessKey, waitMs } = req.body;
      // Idempotency-Key: a retried start (its answer was lost) gets the instance
      // the first request created, with 200 instead of 201.
      const key = req.headers['idempotency-key'];
      const requestId = Array.isArray(key) ? key[0] : key;
      if (requestId !== undefined && (requestId.length === 0 || requestId.length > 255)) {
        throw new BatonError('invalid_request', 'Idempotency-Key must have 1 to 255 characters');
      }
      const started = await deps.commands.startInstance({
        processKey,
        ...(version !== undefined ? { version } : {}),
        ...(variables !== undefined ? { variables } : {}),
        businessKey: businessKey ?? null,
        ...(requestId !== undefined ? { requestId } : {}),
      });
      if (!started.created) return reply.status(200).send(instanceView(started.instance));
      // an inline start has stepped already (its status is no longer 'running'): nothing to wait for
      const row = waitMs && started.instance.status === 'running' ? await deps.commands.waitForInstance(started.instance.id, started.inboxId, waitMs) : started.instance;
      return reply.status(201).send(instanceView(row));
    },
  );

  app.get<{ Querystring: { processKey?: string; status?: string; businessKey?: string; variables?: string; limit: number; cursor?: string } }>(
    '/process-instances',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            processKey: { type: 'string', maxLength: 255 },
            status: { type: 'string', enum: STATUSES },
            businessKey: { type: 'string', maxLength: 255 },
            // comma-separated process variable names: a list leaves variables out unless named (issue 15)
            variables: { type: 'string', maxLength: 4096 },
            ...listQuery,
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      const afterId = decodeCursor(q.cursor, 'uuid');
      const names = q.variables === undefined ? [] : [...new Set(q.variables.split(',').map((n) => n.trim()).filter((n) => n !== ''))];
      if (names.length > 100) throw new BatonError('invalid_request', 'at most 100 variable names in ?variables=');
      const rows = await listInstances(deps.db, {
        ...(q.processKey !== undefined ? { processKey: q.processKey } : {}),
        ...(q.status !== undefined ? { status: q.status } : {}),
        ...(q.businessKey !== undefined ? { businessKey: q.businessKey } : {}),
        ...(afterId !== undefined ? { afterId } : {}),
        variables: names,
        limit: q.limit + 1,
      });
      const summary = (r: ProcessInstanceRow) => {
        const { variables, ...rest } = instanceView(r);
        return q.variables === undefined ? rest : { ...rest, variables };
      };
      return page(rows, q.limit, summary, (r) => r.id);
    },
  );

  app.get<{ Params: { id: string } }>('/process-instances/:id', { schema: { params: idParams } }, async (req) => {
    const id = requireUuid(req.params.id, 'instance_not_found', 'process instance');
    // a variable larger than the limit stays in Postgres: listed in omittedVariables, read alone below
    const row = await getInstanceForRead(deps.db, id, deps.limits.maxVariableReadBytes);
    if (!row) throw new BatonError('instance_not_found', `process instance ${id} not found`);
    return instanceView(row);
  });

  app.get<{ Params: { id: string; name: string } }>(
    '/process-instances/:id/variables/:name',
    { schema: { params: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string', minLength: 1 } } } } },
    async (req) => {
      const id = requireUuid(req.params.id, 'instance_not_found', 'process instance');
      const name = req.params.name;
      const v = name.length > 1000 ? { instance: true, found: false, value: null } : await processVariable(deps.db, id, name);
      if (!v.instance) throw new BatonError('instance_not_found', `process instance ${id} not found`);
      if (!v.found) throw new BatonError('variable_not_found', `process instance ${id} has no variable ${clip(name)}`);
      return { name, value: v.value };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/process-instances/:id/history',
    {
      schema: {
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { ...listQuery, limit: { ...listQuery.limit, default: 500, maximum: 5000 } } },
      },
    },
    async (req) => {
      const id = requireUuid(req.params.id, 'instance_not_found', 'process instance');
      const row = await getInstance(deps.db, id);
      if (!row) throw new BatonError('instance_not_found', `process instance ${id} not found`);
      const after = decodeCursor(req.query.cursor, 'int');
      const rows = await listHistory(deps.db, id, after === undefined ? undefined : Number(after), req.query.limit + 1);
      return page(rows, req.query.limit, historyView, (r) => r.id);
    },
  );

  const waitMsSchema = { type: 'integer', minimum: 0, maximum: 60000 } as const;
  const accepted = async (reply: FastifyReply, a: { instanceId: string; inboxId: number }, waitMs: number | undefined) => {
    if (waitMs) return reply.status(200).send(instanceView(await deps.commands.waitForInstance(a.instanceId, a.inboxId, waitMs)));
    return reply.status(202).send(instanceView((await getInstance(deps.db, a.instanceId))!));
  };

  /**
   * Edit data while the instance waits (or is suspended: the change applies at
   * once, before events held back by the suspension). Names given are set,
   * others are kept; in the root scope unless scopeId names a live scope instance.
   */
  app.patch<{ Params: { id: string }; Body: { variables: JsonObject; scopeId?: string; waitMs?: number } }>(
    '/process-instances/:id/variables',
    {
      schema: {
        summary: 'Set variables of a live instance',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['variables'],
          properties: { variables: { type: 'object', minProperties: 1 }, scopeId: { type: 'string', maxLength: 100 }, waitMs: waitMsSchema },
        },
        response: { 400: errorSchema, 404: errorSchema, 409: errorSchema },
      },
    },
    async (req, reply) => {
      const id = requireUuid(req.params.id, 'instance_not_found', 'process instance');
      const { variables, scopeId, waitMs } = req.body;
      return accepted(reply, await deps.commands.setVariables(id, variables, scopeId), waitMs);
    },
  );

  /**
   * Rewind to an earlier (or any) element: active tokens are withdrawn, waits
   * removed, open tasks cancelled, and execution resumes at that element.
   */
  app.post<{ Params: { id: string }; Body: { elementId: string; waitMs?: number } }>(
    '/process-instances/:id/reset',
    {
      schema: {
        summary: 'Reset the instance to an element',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['elementId'],
          properties: { elementId: { type: 'string', minLength: 1, maxLength: 255 }, waitMs: waitMsSchema },
        },
        response: { 400: errorSchema, 404: errorSchema, 409: errorSchema },
      },
    },
    async (req, reply) => {
      const id = requireUuid(req.params.id, 'instance_not_found', 'process instance');
      return accepted(reply, await deps.commands.resetInstance(id, req.body.elementId), req.body.waitMs);
    },
  );

  for (const action of ['cancel', 'suspend', 'resume'] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string; waitMs?: number } | undefined }>(
      `/process-instances/:id/${action}`,
      {
        schema: {
          params: idParams,
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: { reason: { type: 'string', maxLength: 1000 }, waitMs: { type: 'integer', minimum: 0, maximum: 60000 } },
          },
          response: { 404: errorSchema, 409: errorSchema },
        },
      },
      async (req, reply) => {
        const id = requireUuid(req.params.id, 'instance_not_found', 'process instance');
        const body = req.body ?? {};
        const a =
          action === 'cancel'
            ? await deps.commands.cancelInstance(id, body.reason)
            : action === 'suspend'
              ? await deps.commands.suspendInstance(id)
              : await deps.commands.resumeInstance(id);
        return accepted(reply, a, body.waitMs);
      },
    );
  }
}
