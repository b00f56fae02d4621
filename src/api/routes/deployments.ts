import type { FastifyInstance } from 'fastify';
import type { ModelFile } from '../../bpmn/index.js';
import { BatonError } from '../../errors.js';
import { languageOf } from '../../expressions/language.js';
import { definitionByVersion, latestDefinition, listDefinitionVersions, listLatestDefinitions, resourceContent } from '../../store/definitions.js';
import { clip, errorSchema, type RouteDeps } from '../app.js';
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
    // the language of expressions and scripts in files that name none (see README "Languages")
    language: { type: 'string', minLength: 1, maxLength: 100 },
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

export async function deploymentRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  const maxBytes = deps.limits.maxModelBytes;
  app.post(
    '/deployments',
    {
      // Models are larger than any other request: this route alone takes up to
      // BATON_MAX_MODEL_BYTES (JSON: Fastify checks it; multipart: the guard
      // checks Content-Length, and the loop below counts what is read).
      bodyLimit: maxBytes,
      // a NUL in a model is an invalid_model problem naming file and line (src/bpmn/compile.ts)
      config: { allowNul: true },
      schema: {
        summary: 'Deploy BPMN files (JSON body, or multipart/form-data with one file part per model)',
        body: {
          content: {
            'application/json': { schema: deployBody },
            'multipart/form-data': { schema: { description: 'one file part per model; optional fields "name" and "language"' } },
          },
        },
        response: { 201: deployedSchema, 400: errorSchema, 413: errorSchema, 415: errorSchema },
      },
    },
    async (req, reply) => {
      let files: ModelFile[];
      let name: string | null = null;
      let languageText: string | null = null;
      if (req.isMultipart()) {
        files = [];
        let total = 0;
        try {
          for await (const part of req.parts()) {
            if (part.type === 'file') {
              // toBuffer() stops at the per-file limit (maxBytes) and throws
              // FST_REQ_FILE_TOO_LARGE; the running total caps all files together.
              const buf = await part.toBuffer();
              total += buf.length;
              if (total > maxBytes) {
                throw new BatonError('payload_too_large', `the deployment's files exceed ${maxBytes} bytes (BATON_MAX_MODEL_BYTES)`, { maxBytes });
              }
              files.push({ name: part.filename || part.fieldname || 'model.bpmn', content: buf.toString('utf8') });
            } else if (part.fieldname === 'name' && typeof part.value === 'string') {
              name = part.value;
            } else if (part.fieldname === 'language' && typeof part.value === 'string') {
              languageText = part.value;
            }
          }
        } catch (err) {
          // busboy reports a malformed body (no boundary, truncated part, bad
          // header) as a plain Error; that is the client's input, not a 500.
          if (err instanceof BatonError || (err as { statusCode?: unknown }).statusCode !== undefined) throw err;
          throw new BatonError('invalid_multipart', `malformed multipart/form-data body: ${clip(err instanceof Error ? err.message : String(err), 200)}`);
        }
        if (files.length === 0) throw new BatonError('invalid_request', 'multipart deployment has no file part');
        if (name !== null && name.length > 255) throw new BatonError('invalid_request', 'the deployment name is longer than 255 characters');
        if (files.some((f) => f.name.length > 255)) throw new BatonError('invalid_request', 'a file name is longer than 255 characters');
      } else {
        // Without a Content-Type there is no parsed body, and the JSON schema
        // (declared per media type) has not run.
        if (req.body === undefined || req.body === null || typeof req.body !== 'object') {
          throw new BatonError('invalid_request', 'send the deployment as application/json {"files":[{"name","content"}]} or as multipart/form-data');
        }
        const body = req.body as { name?: string; language?: string; files: ModelFile[] };
        files = body.files;
        name = body.name ?? null;
        languageText = body.language ?? null;
      }
      const language = languageText === null ? undefined : languageOf(languageText);
      if (language === null || language === 'unspecified') {
        throw new BatonError('invalid_request', `language '${clip(languageText ?? '', 100)}' is not one Baton runs (javascript, python)`);
      }
      const out = await deps.commands.deploy(files, name, language !== undefined ? { language } : {});
      return reply.status(201).send(out);
    },
  );

  app.get('/process-definitions', { schema: { summary: 'Latest version of every deployed process' } }, async () => {
    const rows = await listLatestDefinitions(deps.db);
    return { items: rows.map(definitionView), nextCursor: null };
  });

  // No maxLength on the key: an overlong key names no process, so it gets the
  // same 404 as any other unknown key (findDefinition answers without a query).
  const keyParams = { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1 } } } as const;
  const versionQuery = { type: 'object', additionalProperties: false, properties: { version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } } } as const;

  async function findDefinition(key: string, version: number | undefined) {
    if (key.length > 255 || key.includes('\u0000')) throw new BatonError('process_not_found', `process ${clip(key)} not found`);
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
