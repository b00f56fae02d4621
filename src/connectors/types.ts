import type { JsonObject } from '../errors.js';

/** One attempt at a service job, as a service worker hands it to a connector. */
export interface ConnectorRequest {
  /** Stable across retries of the same job: the idempotency key of side effects. */
  jobId: string;
  /** The topic the job was created for (the connector's id, or one of its aliases). */
  topic: string;
  /** The job's input variables, after the model's input mappings. */
  input: JsonObject;
  /** Static task headers from the model. */
  headers: Record<string, string>;
  /** Aborted when the worker shuts down; the job is then retried elsewhere. */
  signal: AbortSignal;
}

export type ConnectorOutcome =
  | { kind: 'completed'; variables: JsonObject }
  /** `retryable`: the same request may succeed later (5xx, network, timeout). */
  | { kind: 'failed'; message: string; retryable: boolean }
  /** A business error the model may catch with an error boundary event. */
  | { kind: 'bpmnError'; errorCode: string; message: string }
  /**
   * Not attempted (the target has all its calls running here, see
   * BATON_HTTP_MAX_PER_HOST): the job goes back to the queue for `delayMs`
   * without using one of its retries.
   */
  | { kind: 'deferred'; delayMs: number; message: string };

/** A built-in service-task implementation. `run` never throws; it reports every failure as an outcome. */
export interface Connector {
  topic: string;
  run(req: ConnectorRequest): Promise<ConnectorOutcome>;
}
