/**
 * The only reader of process.env. Everything else receives a frozen Config.
 *
 * Mode is decided by the environment: with DATABASE_URL and REDIS_URL set, Baton
 * runs distributed (real Postgres, BullMQ on Redis); with neither, embedded
 * (PGlite in BATON_DATA_DIR, in-process queue). Setting only one of them is a
 * mistake we refuse at start-up rather than guess about.
 */
import { BatonError } from './errors.js';

export type Mode = 'embedded' | 'distributed';

export interface Config {
  mode: Mode;
  databaseUrl: string | null;
  redisUrl: string | null;
  /** embedded mode: where PGlite keeps its files */
  dataDir: string;
  host: string;
  port: number;
  healthPort: number;
  logLevel: string;
  queuePrefix: string;
  stepConcurrency: number;
  /** database connections the API role keeps for its requests (and the steps it runs inline) */
  apiPoolSize: number;
  serviceConcurrency: number;
  /**
   * The API runs the step an accepted input causes itself, at once, instead of
   * only ringing the doorbell for a step worker (Camunda 7 runs a process in
   * the caller's thread until a wait state the same way). Same step code, same
   * lock and inbox: a step worker that gets the doorbell anyway finds nothing
   * to do. Costs the API process a script sandbox and CPU; saves the queue hop.
   */
  apiInlineSteps: boolean;
  /** name repeated SQL statements so Postgres parses and plans them once per connection */
  pgPrepare: boolean;
  /** how long a service worker's claim on a job lasts without renewal (renewed while the call runs): a dead worker's jobs are claimed again after it */
  serviceLockMs: number;
  migrateOnStart: boolean;
  /** deploy the example model at start-up (embedded default: yes) */
  deployExamples: boolean;
  /** scheduler: how old an unprocessed inbox row must be before the sweep re-rings it */
  sweepAfterMs: number;
  sweepIntervalMs: number;
  /** sandbox limits for scripts and expressions */
  scriptTimeoutMs: number;
  scriptMemoryMb: number;
  /** BATON_PYTHON: whether Python models run (false: their evaluations are `language_unavailable` incidents) */
  python: boolean;
  /** BATON_PYTHON_MEMORY_MB: cap of the Python sandbox's WebAssembly memory (Pyodide itself takes ~32 MB) */
  pythonMemoryMb: number;
  /** API limits on hostile or careless input (README "Limits") */
  limits: ApiLimits;
  /**
   * Deepest call-activity nesting (root instance = 0): a call activity that
   * would start a deeper child gets a `call_depth_exceeded` incident instead,
   * so a process calling itself stops instead of creating instances forever.
   */
  maxCallDepth: number;
  /** BATON_HTTP_MAX_PER_HOST: calls to one host a service worker runs at once */
  httpMaxPerHost: number;
  /** BATON_STEP_SCRIPT_BUDGET_MS: total time the scripts and expressions of one step may run (0: no budget) */
  stepScriptBudgetMs: number;
  /** BATON_MAX_STEP_ELEMENTS: element executions one step may make (a loop without a wait state ends in step_limit) */
  maxStepElements: number;
  /** BATON_MAX_TOKENS: most live tokens of one instance */
  maxTokens: number;
  /** BATON_MAX_STATE_BYTES: largest serialized state of one instance */
  maxStateBytes: number;
  /** BATON_QUEUE_JOB_LOCK_MS: a worker's lock on a queue job; a dead worker's jobs return to the queue after about this long */
  queueJobLockMs: number;
  /** BATON_MAX_STEP_ATTEMPTS: crashed step attempts after which an inbox event is set aside (0: never) */
  maxStepAttempts: number;
  /** BATON_MAX_MI_INSTANCES: most instances one multi-instance activity may run */
  maxMultiInstances: number;
  /** BATON_MIN_TIMER_INTERVAL_MS: shortest gap between two firings of a timer cycle */
  minTimerIntervalMs: number;
  /** BATON_HTTP_MAX_TIMEOUT_MS: longest timeoutMs the HTTP connector accepts */
  httpMaxTimeoutMs: number;
  /** BATON_MAX_MODEL_ELEMENTS: most flow nodes and sequence flows of one deployed process */
  maxModelElements: number;
  /** BATON_DEFINITION_CACHE_MB: memory the compiled-definition cache may hold (estimated) */
  definitionCacheMb: number;
  /** BATON_IDEMPOTENCY_TTL_HOURS, in ms: how long a start's Idempotency-Key is remembered */
  idempotencyTtlMs: number;
  /**
   * After SIGTERM/SIGINT a process stops taking work, lets what runs finish
   * and closes; if that takes longer than this, it exits anyway (code 1).
   * Work cut short is safe: its transaction rolls back and is redone.
   */
  shutdownGraceMs: number;
}

export interface ApiLimits {
  /** largest deployment request (JSON body or multipart upload, all files together), bytes */
  maxModelBytes: number;
  /** largest request body of every other route (variables, messages, …), bytes */
  maxBodyBytes: number;
  /** deepest nesting of arrays and objects accepted in a JSON request body */
  maxJsonDepth: number;
  /** largest `limit` a list route accepts; above it → 400 page_size_too_large */
  maxPageSize: number;
  /**
   * BATON_MAX_EVENT_LOOP_DELAY_MS: when the API process's event loop lags
   * more than this, /v1 requests are shed with `503 under_pressure` (and
   * Retry-After) until it recovers; /health and /ready still answer. 0: off
   */
  maxEventLoopDelayMs: number;
  /**
   * BATON_MAX_VARIABLE_READ_BYTES: a process variable whose JSON is larger
   * is not sent with its instance (GET /v1/process-instances/:id lists it in
   * `omittedVariables`); GET …/variables/:name reads it alone
   */
  maxVariableReadBytes: number;
}

export const DEFAULT_LIMITS: Readonly<ApiLimits> = Object.freeze({
  maxModelBytes: 10 * 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxJsonDepth: 64,
  maxPageSize: 1000,
  maxEventLoopDelayMs: 1000,
  maxVariableReadBytes: 1024 * 1024,
});

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new BatonError('invalid_config', `${name} must be an integer ${range}, got "${raw}"`);
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new BatonError('invalid_config', `${name} must be true or false, got "${raw}"`);
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const databaseUrl = env.DATABASE_URL || null;
  const redisUrl = env.REDIS_URL || null;
  if ((databaseUrl === null) !== (redisUrl === null)) {
    throw new BatonError(
      'invalid_config',
      'set both DATABASE_URL and REDIS_URL (distributed mode) or neither (embedded mode)',
    );
  }
  const mode: Mode = databaseUrl ? 'distributed' : 'embedded';
  return Object.freeze({
    mode,
    databaseUrl,
    redisUrl,
    dataDir: env.BATON_DATA_DIR || './.baton',
    host: env.HOST || (mode === 'embedded' ? '127.0.0.1' : '0.0.0.0'),
    port: int(env, 'PORT', 3000),
    healthPort: int(env, 'HEALTH_PORT', 8081),
    logLevel: env.LOG_LEVEL || 'info',
    queuePrefix: env.BATON_QUEUE_PREFIX || 'baton',
    stepConcurrency: int(env, 'STEP_CONCURRENCY', 8, 1),
    apiPoolSize: int(env, 'API_POOL_SIZE', 10, 1),
    apiInlineSteps: bool(env, 'BATON_API_INLINE_STEPS', true),
    pgPrepare: bool(env, 'BATON_PG_PREPARE', true),
    serviceLockMs: int(env, 'SERVICE_LOCK_MS', 15_000, 1000),
    serviceConcurrency: int(env, 'SERVICE_CONCURRENCY', 8, 1),
    migrateOnStart: bool(env, 'MIGRATE_ON_START', true),
    deployExamples: bool(env, 'BATON_EXAMPLES', mode === 'embedded'),
    sweepAfterMs: int(env, 'SWEEP_AFTER_MS', 5000, 0),
    sweepIntervalMs: int(env, 'SWEEP_INTERVAL_MS', 2000, 10),
    scriptTimeoutMs: int(env, 'SCRIPT_TIMEOUT_MS', 1000, 1),
    scriptMemoryMb: int(env, 'SCRIPT_MEMORY_MB', 64, 8),
    python: bool(env, 'BATON_PYTHON', true),
    pythonMemoryMb: int(env, 'BATON_PYTHON_MEMORY_MB', 256, 64, 4096),
    // Upper bound: a limit in the millions is no limit; it is most likely a typo.
    maxCallDepth: int(env, 'BATON_MAX_CALL_DEPTH', 50, 1, 1_000_000),
    maxStepAttempts: int(env, 'BATON_MAX_STEP_ATTEMPTS', 3, 0, 100),
    queueJobLockMs: int(env, 'BATON_QUEUE_JOB_LOCK_MS', 30_000, 1000, 600_000),
    // 64 MiB: the 10,000-instance multi-instance benchmark stays far below; Postgres's jsonb stops at 255 MB
    // a few script limits: one step cannot hold a role's event loop for many limits in a row (security review D2)
    stepScriptBudgetMs: int(env, 'BATON_STEP_SCRIPT_BUDGET_MS', 3000, 0, 3_600_000),
    httpMaxPerHost: int(env, 'BATON_HTTP_MAX_PER_HOST', 4, 1, 10_000),
    // a 10,000-instance multi-instance has 10,001 tokens; tokens created by repeating boundary timers must stop somewhere
    maxTokens: int(env, 'BATON_MAX_TOKENS', 50_000, 10, 10_000_000),
    maxStepElements: int(env, 'BATON_MAX_STEP_ELEMENTS', 10_000, 10, 10_000_000),
    maxStateBytes: int(env, 'BATON_MAX_STATE_BYTES', 64 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    // Each instance costs a token and a scope in the state: millions exhaust the heap (security review D1).
    maxMultiInstances: int(env, 'BATON_MAX_MI_INSTANCES', 10_000, 1, 1_000_000),
    // R100/PT0S started 100 instances in a second (security review D3)
    minTimerIntervalMs: int(env, 'BATON_MIN_TIMER_INTERVAL_MS', 1000, 0, 86_400_000),
    // a day-long timeout held a service-worker slot for a day; over 2^31-1 Node's timer fires at once (B2)
    httpMaxTimeoutMs: int(env, 'BATON_HTTP_MAX_TIMEOUT_MS', 60_000, 1, 2_147_483_647),
    // 60,000 elements took 4 s to compile on the event loop and held 136 MB (security review D4)
    maxModelElements: int(env, 'BATON_MAX_MODEL_ELEMENTS', 10_000, 1, 1_000_000),
    definitionCacheMb: int(env, 'BATON_DEFINITION_CACHE_MB', 256, 1, 65_536),
    idempotencyTtlMs: int(env, 'BATON_IDEMPOTENCY_TTL_HOURS', 24, 1, 720) * 3_600_000,
    // Below the orchestrator's own grace (Kubernetes: 30 s) so our forced exit,
    // with its log line, comes before its SIGKILL.
    shutdownGraceMs: int(env, 'BATON_SHUTDOWN_GRACE_MS', 10_000, 1, 3_600_000),
    limits: Object.freeze({
      // Lower bounds keep a typo from making the API unusable (a 10-byte body
      // limit, a depth that rejects `{"variables":{}}`); upper bounds keep the
      // whole body within what one process can buffer and parse.
      maxModelBytes: int(env, 'BATON_MAX_MODEL_BYTES', DEFAULT_LIMITS.maxModelBytes, 1024, 1024 * 1024 * 1024),
      maxBodyBytes: int(env, 'BATON_MAX_BODY_BYTES', DEFAULT_LIMITS.maxBodyBytes, 1024, 1024 * 1024 * 1024),
      maxJsonDepth: int(env, 'BATON_MAX_JSON_DEPTH', DEFAULT_LIMITS.maxJsonDepth, 4, 10_000),
      maxPageSize: int(env, 'BATON_MAX_PAGE_SIZE', DEFAULT_LIMITS.maxPageSize, 1, 100_000),
      maxEventLoopDelayMs: int(env, 'BATON_MAX_EVENT_LOOP_DELAY_MS', DEFAULT_LIMITS.maxEventLoopDelayMs, 0, 600_000),
      maxVariableReadBytes: int(env, 'BATON_MAX_VARIABLE_READ_BYTES', DEFAULT_LIMITS.maxVariableReadBytes, 1024, 1024 * 1024 * 1024),
    }),
  });
}
