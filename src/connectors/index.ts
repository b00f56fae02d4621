/**
 * Built-in service-task connectors, keyed by the topic a service task names.
 *
 * A connector runs one attempt of a service job and reports an outcome; it
 * never throws. Side effects outside Postgres are at-least-once (a worker may
 * die after the call and before it reports), so every connector passes the job
 * id on as an idempotency key.
 */
import { createHttpConnector, hostSlots, type HttpConnectorOptions } from './http.js';
import type { Connector } from './types.js';

export type { Connector, ConnectorOutcome, ConnectorRequest } from './types.js';
export { createHttpConnector, hostSlots, type HostSlots, type HttpConnectorOptions } from './http.js';

/** Topics of the HTTP connector that take the method from the input. */
const HTTP_TOPICS = ['http', 'http-request', 'io.camunda:http-json:1'];

/** SpiffArena's connector-proxy operator ids, each with its method fixed. */
const SPIFF_HTTP_TOPICS: ReadonlyArray<[topic: string, method: string]> = [
  ['http/GetRequest', 'GET'],
  ['http/PostRequest', 'POST'],
  ['http/PutRequest', 'PUT'],
  ['http/PatchRequest', 'PATCH'],
  ['http/DeleteRequest', 'DELETE'],
  ['http/HeadRequest', 'HEAD'],
];

/**
 * `maxPerHost`: calls to one host all these connectors run at once in this
 * process (BATON_HTTP_MAX_PER_HOST); absent: no limit.
 */
export function builtinConnectors(options: HttpConnectorOptions & { maxPerHost?: number } = {}): Map<string, Connector> {
  const { maxPerHost, ...rest } = options;
  options = maxPerHost !== undefined ? { ...rest, hostSlots: hostSlots(maxPerHost) } : rest;
  const connectors = new Map<string, Connector>();
  for (const topic of HTTP_TOPICS) connectors.set(topic, createHttpConnector(topic, options));
  for (const [topic, method] of SPIFF_HTTP_TOPICS) connectors.set(topic, createHttpConnector(topic, { ...options, method }));
  return connectors;
}
