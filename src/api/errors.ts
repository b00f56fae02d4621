/**
 * The one place where errors become HTTP answers: `{ code, message, details? }`.
 * Codes are stable; 5xx bodies never carry internals (those go to the log).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BatonError } from '../errors.js';
import { isConnectionError } from '../store/db.js';

const STATUS: Record<string, number> = {
  invalid_request: 400,
  invalid_model: 400,
  invalid_json: 400,
  invalid_cursor: 400,
  invalid_variables: 400,
  invalid_multipart: 400,
  json_too_deep: 400,
  page_size_too_large: 400,
  no_none_start_event: 400,
  idempotency_key_reused: 422,
  process_not_found: 404,
  definition_not_found: 404,
  instance_not_found: 404,
  task_not_found: 404,
  external_task_not_found: 404,
  route_not_found: 404,
  message_not_correlated: 404,
  message_not_found: 404,
  incident_not_found: 404,
  scope_not_found: 404,
  variable_not_found: 404,
  invalid_reset_target: 400,
  incident_not_open: 409,
  incident_not_retryable: 409,
  incident_retry_pending: 409,
  task_not_open: 409,
  instance_ended: 409,
  external_task_not_locked: 409,
  external_task_locked_by_other: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
};

export function statusOf(code: string): number {
  return STATUS[code] ?? 500;
}

/** Fastify's own client-error codes, mapped to ours. */
function fromFastify(err: FastifyError): { status: number; code: string; message: string; details?: unknown } | null {
  if (err.validation) {
    return {
      status: 400,
      code: 'invalid_request',
      message: err.message,
      details: err.validation.map((v) => ({ path: v.instancePath || '/', message: v.message ?? 'invalid', params: v.params })),
    };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'invalid_json', message: err.message };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return { status: 413, code: 'payload_too_large', message: err.message };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return { status: 415, code: 'unsupported_media_type', message: err.message };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'invalid_request', message: err.message };
    case 'FST_ERR_BAD_URL':
      return { status: 400, code: 'invalid_request', message: 'the URL is malformed (invalid percent-encoding)' };
    case 'FST_PROTO_VIOLATION':
      return { status: 400, code: 'invalid_multipart', message: err.message };
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    const code = err.statusCode === 413 ? 'payload_too_large' : err.statusCode === 415 ? 'unsupported_media_type' : 'invalid_request';
    return { status: err.statusCode, code, message: err.message };
  }
  return null;
}

export function errorHandler(error: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const err: unknown = error;
  if (err instanceof BatonError) {
    const status = statusOf(err.code);
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      void reply.status(500).send({ code: 'internal_error', message: 'internal error' });
      return;
    }
    void reply.status(status).send({ code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) });
    return;
  }
  const mapped = fromFastify(error);
  if (mapped) {
    void reply.status(mapped.status).send({
      code: mapped.code,
      message: mapped.message,
      ...(mapped.details !== undefined ? { details: mapped.details } : {}),
    });
    return;
  }
  // Text Postgres cannot store (a NUL character in a string or JSON value, a
  // lone surrogate) or a number outside a column's range is the client's
  // input, not our failure. The guards (src/api/guards.ts) and schemas catch
  // most of it earlier with a clearer message; this is the backstop.
  const pgCode = (error as { code?: unknown }).code;
  if (pgCode === '22021' || pgCode === '22P05' || pgCode === '22P02') {
    void reply.status(400).send({ code: 'invalid_request', message: 'the request contains text the database cannot store (e.g. a NUL character)' });
    return;
  }
  if (pgCode === '22003') {
    void reply.status(400).send({ code: 'invalid_request', message: 'a number in the request is out of range' });
    return;
  }
  // The database is restarting or unreachable: tell the client to retry (a
  // plain 500 would not). Retrying a command is safe where it is idempotent
  // (completions answer 409 the second time; messages take a messageId).
  if (isConnectionError(error)) {
    req.log.warn({ err }, 'database unavailable');
    void reply.status(503).header('retry-after', '1').send({ code: 'unavailable', message: 'the database is not reachable; retry shortly' });
    return;
  }
  req.log.error({ err }, 'request failed');
  void reply.status(500).send({ code: 'internal_error', message: 'internal error' });
}
