import type { FastifyInstance } from 'fastify';
import type { ModelFile } from '../../bpmn/index.js';
import { BatonError } from '../../errors.js';
import { definitionByVersion, latestDefinition, listDefinitionVersions, listLatestDefinitions, resourceContent } from '../../store/definitions.js';
import { type AppDeps, errorSchema } from '../app.js';
import { definitionView } from '../views.js';

const fileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'content'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 255 },
    content: { type: 'string', minLength: 1 },
  },
} as const;

const deployBody = {
  type: 'object',
  additionalProperties: false,
  required: ['files'],
  properties: {
    name: { type: 'string', maxLength: 255 },
    files: { type: 'array', minItems: 1, maxItems: 100, items: fileSchema },
  },
} as const;

const deployedSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    processes: {
      type: 'array',
      items: { type: 'object', properties: { key: { type: 'string' }, version: { type: 'integer' }, name: { type: ['string', 'null'] }, id: { type: 'string' } } },
    },
  },
} as const;

export async function deploymentRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post(
    '/deployments',
    {
      schema: {
        summary: 'Deploy BPMN files (JSON body, or multipart/form-data with one file part per model)',
        body: {
          content: {
            'application/json': { schema: deployBody },
            'multipart/form-data': { schema: { description: 'one file part per model; an optional field "name"' } },
          },
        },
        response: { 201: deployedSchema, 400: errorSchema },
      },
    },
    async (req, reply) => {
      let files: ModelFile[];
      let name: string | null = null;
      if (req.isMultipart()) {
        files = [];
        for await (const part of req.parts()) {
          if (part.type === 'file') {
            const buf = await part.toBuffer();
            files.push({ name: part.filename || part.fieldname, content: buf.toString('utf8') });
          } else if (part.fieldname === 'name' && typeof part.value === 'string') {
            name = part.value;
          }
        }
        if (files.length === 0) throw new BatonError('invalid_request', 'multipart deployment has no file part');
      } else {
        const body = req.body as { name?: string; files: ModelFile[] };
        files = body.files;
        name = body.name ?? null;
      }
      const out = await deps.commands.deploy(files, name);
      return reply.status(201).send(out);
    },
  );

  app.get('/process-definitions', { schema: { summary: 'Latest version of every deployed process' } }, async () => {
    const rows = await listLatestDefinitions(deps.db);
    return { items: rows.map(definitionView), nextCursor: null };
  });

  const keyParams = { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1, maxLength: 255 } } } as const;
  const versionQuery = { type: 'object', additionalProperties: false, properties: { version: { type: 'integer', minimum: 1 } } } as const;

  async function findDefinition(key: string, version: number | undefined) {
    const def = version !== undefined ? await definitionByVersion(deps.db, key, version) : await latestDefinition(deps.db, key);
    if (!def) throw new BatonError('process_not_found', version !== undefined ? `process ${key} version ${version} not found` : `process ${key} not found`);
    return def;
  }

  app.get<{ Params: { key: string }; Querystring: { version?: number } }>(
    '/process-definitions/:key',
    { schema: { params: keyParams, querystring: versionQuery, response: { 404: errorSchema } } },
    async (req) => {
      const def = await findDefinition(req.params.key, req.query.version);
      const versions = await listDefinitionVersions(deps.db, def.key);
      return { ...definitionView(def), versions: versions.map((v) => v.version) };
    },
  );

  app.get<{ Params: { key: string }; Querystring: { version?: number } }>(
    '/process-definitions/:key/xml',
    { schema: { params: keyParams, querystring: versionQuery } },
    async (req, reply) => {
      const def = await findDefinition(req.params.key, req.query.version);
      const xml = await resourceContent(deps.db, def.deployment_id, def.resource_name);
      if (xml === undefined) throw new BatonError('process_not_found', `process ${def.key} has no stored XML`);
      return reply.type('application/xml; charset=utf-8').send(xml);
    },
  );
}
