/**
 * What the outside world may ask of Baton. Each command validates, writes its
 * input to Postgres (the inbox, or a row the inbox will refer to) in one
 * transaction, and only then rings the doorbell. The API answers 2xx after
 * the commit, so an accepted input survives any crash that follows.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { timerCycleProblems, type ModelFile } from '../bpmn/index.js';
import { compileFilesOffThread } from '../bpmn/compile-thread.js';
import { languagesOf } from '../bpmn/types.js';
import type { Language } from '../expressions/language.js';
import { incidentRetryProblem, resetTargetProblem, setVariablesProblem } from '../engine/index.js';
import { BatonError, type JsonObject } from '../errors.js';
import { uuidv7 } from '../ids.js';
import { STEP_QUEUE, TIMER_CHANNEL, type StepDoorbell, type Transport } from '../queue/index.js';
import type { Db, Executor } from '../store/db.js';
import {
  definitionByVersion,
  insertDefinition,
  insertDeployment,
  insertResource,
  latestDefinition,
  lockDeployments,
} from '../store/definitions.js';
import { insertInboxEvent } from '../store/inbox.js';
import { claimIncidentRetry, getIncident } from '../store/incidents.js';
import { getInstance, getInstanceAfterEvent, instanceByRequestId } from '../store/instances.js';
import { claimServiceJobs, finishJobWithEvent, getServiceJob, retryLockedJob } from '../store/jobs.js';
import type { ProcessDefinitionRow, ProcessInstanceRow, ServiceJobRow } from '../store/schema.js';
import { completeTaskWithEvent, getHumanTask } from '../store/tasks.js';
import { broadcastSignal, publishMessage, spawnInstanceOnce, type MessageOutcome, type PublishedMessage, type SignalOutcome } from './correlation.js';
import { publishedCorrelationKey, registerMessageCorrelations } from './message-correlation.js';
import { registerStartEvents } from './start-events.js';
import type { DefinitionCache } from './definitions.js';
import type { StepRunner } from './step.js';

export interface CommandDeps {
  db: Db;
  transport: Transport;
  logger: Logger;
  definitions: DefinitionCache;
  /** when given, an accepted input is stepped here at once (see Config.apiInlineSteps); the doorbell is the fallback */
  inlineSteps?: StepRunner;
  /** shortest timer cycle a deployment may hold (Config.minTimerIntervalMs); default 1000 */
  minTimerIntervalMs?: number;
  /** the languages this Baton runs; a model with expressions in another is refused at deploy. Default: all */
  languages?: readonly Language[];
  /** most flow nodes and sequence flows of one process (Config.maxModelElements); default 10,000 */
  maxModelElements?: number;
}

export interface DeployedProcess {
  key: string;
  version: number;
  name: string | null;
  id: string;
}

const ENDED = new Set(['completed', 'terminated']);

export function checksum(content: string): string {
  return createHash('sha256').update(content).digest('hex');
}

export function createCommands(deps: CommandDeps) {
  const { db } = deps;
  const stepQueue = deps.transport.queue<StepDoorbell>(STEP_QUEUE);

  /**
   * The doorbell after a commit. If Redis is down the input is still safe in
   * the inbox and the scheduler's sweep will ring for it; the caller is not
   * told about a failure it need not act on.
   */
  async function ring(instanceId: string): Promise<void> {
    if (deps.inlineSteps) {
      try {
        // 'locked' (a step worker holds the instance and will see our event) and
        // 'deferred' (a big instance, for a step worker to take in batches):
        // the runner has rung the doorbell itself.
        await deps.inlineSteps.run(instanceId);
        return;
      } catch (err) {
        deps.logger.warn({ err, instanceId }, 'inline step failed; ringing the doorbell instead');
      }
    }
    try {
      await stepQueue.add({ instanceId });
    } catch (err) {
      deps.logger.warn({ err, instanceId }, 'doorbell failed; the sweep will pick the event up');
    }
  }

  const latestByKey = new Map<string, ProcessDefinitionRow>();
  function rememberLatest(def: ProcessDefinitionRow): void {
    if (latestByKey.size >= 1000 && !latestByKey.has(def.key)) latestByKey.delete(latestByKey.keys().next().value!);
    latestByKey.set(def.key, def);
  }

  /**
   * `language`: the deployment's option, for files whose definitions name no
   * expressionLanguage (see CompileOptions.language).
   */
  async function deploy(files: ModelFile[], name: string | null = null, options: { language?: Language } = {}): Promise<{ id: string; processes: DeployedProcess[] }> {
    if (files.length === 0) throw new BatonError('invalid_request', 'a deployment needs at least one file');
    const names = new Set<string>();
    for (const f of files) {
      if (names.has(f.name)) throw new BatonError('invalid_request', `file name ${f.name} appears twice`);
      names.add(f.name);
    }
    // in the compile thread: a big model must not stall this role's event loop
    const { processes, problems, notExecutable } = await compileFilesOffThread(files, {
      ...(deps.maxModelElements !== undefined ? { maxElements: deps.maxModelElements } : {}),
      ...(options.language !== undefined ? { language: options.language } : {}),
    });
    if (deps.languages !== undefined) {
      for (const p of processes) {
        for (const language of languagesOf(p.graph)) {
          if (!deps.languages.includes(language)) {
            problems.push({ file: p.file, elementId: p.key, message: `process '${p.key}' has ${language === 'python' ? 'Python' : language} expressions or scripts, and ${language} is turned off here${language === 'python' ? ' (BATON_PYTHON=false)' : ''}` });
          }
        }
      }
    }
    for (const p of processes) problems.push(...timerCycleProblems(p, deps.minTimerIntervalMs ?? 1000));
    if (problems.length > 0) {
      throw new BatonError('invalid_model', `the deployment has ${problems.length} problem(s)`, problems);
    }
    if (processes.length === 0) {
      throw new BatonError(
        'invalid_model',
        notExecutable.length > 0 ? 'the deployment contains no executable process (every process says isExecutable="false")' : 'the deployment contains no process',
        notExecutable,
      );
    }
    const byFile = new Map(files.map((f) => [f.name, f]));
    // this process's cache of latest versions must not outlive its own deploys
    // (other processes' deploys are caught by the inline start's check)
    const forget = () => {
      for (const p of processes) latestByKey.delete(p.key);
    };
    forget();
    // first occurrences of the timer starts deployed here
    const timerStarts: number[] = [];
    const deployed = await db.transaction().execute(async (trx) => {
      await lockDeployments(trx);
      const deploymentId = uuidv7();
      let created = false;
      const result: DeployedProcess[] = [];
      const pending: Array<() => Promise<void>> = [];
      for (const p of processes) {
        const file = byFile.get(p.file)!;
        const sum = checksum(file.content);
        const latest = await latestDefinition(trx, p.key);
        const language = p.graph.language ?? 'javascript';
        // Identical content (and language) → the same version, as Camunda's duplicate filtering does.
        if (latest && latest.checksum === sum && (latest.language ?? 'javascript') === language) {
          result.push({ key: latest.key, version: latest.version, name: latest.name, id: latest.id });
          continue;
        }
        created = true;
        const def = { id: uuidv7(), key: p.key, version: (latest?.version ?? 0) + 1, name: p.name };
        result.push(def);
        pending.push(async () => {
          await insertDefinition(trx, { ...def, deployment_id: deploymentId, resource_name: p.file, checksum: sum, language });
          const due = await registerStartEvents(trx, def.id, p.key, p.graph);
          if (due) timerStarts.push(due.getTime());
          await registerMessageCorrelations(trx, p.key, p.graph);
        });
      }
      if (!created) {
        const first = result[0]!;
        const existing = await definitionByVersion(trx, first.key, first.version);
        return { id: existing!.deployment_id, processes: result };
      }
      await insertDeployment(trx, { id: deploymentId, name });
      for (const f of files) {
        await insertResource(trx, { deployment_id: deploymentId, name: f.name, content: f.content, checksum: checksum(f.content) });
      }
      for (const insert of pending) await insert();
      return { id: deploymentId, processes: result };
    }).finally(forget);
    // Committed: tell the schedulers, which otherwise look at schedules about once a second.
    if (timerStarts.length > 0) {
      await deps.transport.publish(TIMER_CHANNEL, String(Math.min(...timerStarts))).catch((err: unknown) => {
        deps.logger.warn({ err }, 'could not wake the schedulers; they look again within a second');
      });
    }
    return deployed;
  }

  /**
   * The stored form of a start's idempotency key: scoped by process key (and
   * by caller, once requests have one), so one client's key never finds
   * another's instance, with a fingerprint of what the request asks for.
   */
  function idempotency(input: { processKey: string; version?: number; variables?: JsonObject; businessKey?: string | null; requestId?: string }) {
    const body = { processKey: input.processKey, version: input.version ?? null, businessKey: input.businessKey ?? null, variables: input.variables ?? {} };
    return { requestId: `${input.processKey}\u001f${input.requestId ?? ''}`, requestFingerprint: createHash('sha256').update(canonicalJson(body)).digest('hex') };
  }

  async function startInstance(input: {
    processKey: string;
    version?: number;
    variables?: JsonObject;
    businessKey?: string | null;
    /**
     * idempotency key: a key seen before with the same request answers with
     * that instance (created: false); with another request it is refused
     */
    requestId?: string;
  }): Promise<{ instance: ProcessInstanceRow; inboxId: number; created: boolean }> {
    const idem = input.requestId !== undefined ? idempotency(input) : null;
    if (idem) {
      const seen = await instanceByRequestId(db, idem.requestId);
      if (seen) {
        // a key that came with another body is another request: never hand out its instance (IETF Idempotency-Key draft, Stripe)
        if (seen.request_fingerprint !== null && seen.request_fingerprint !== idem.requestFingerprint) {
          throw new BatonError('idempotency_key_reused', 'this Idempotency-Key was used for another request (a different process, version, business key or variables)');
        }
        return { instance: seen, inboxId: 0, created: false };
      }
    }
    // The latest version of a key is cached per process; an inline start
    // checks in its insert that it is still the latest (a deploy by another
    // API process) and reports 'stale' otherwise, which refreshes the cache.
    const cached = input.version === undefined ? latestByKey.get(input.processKey) : undefined;
    const def =
      input.version !== undefined
        ? await definitionByVersion(db, input.processKey, input.version)
        : (cached ?? (await latestDefinition(db, input.processKey)));
    if (!def) {
      throw new BatonError(
        'process_not_found',
        input.version !== undefined
          ? `process ${input.processKey} version ${input.version} is not deployed`
          : `process ${input.processKey} is not deployed`,
      );
    }
    // A process that only starts on events (message, timer, signal) has no
    // plain start: say so here rather than as an incident on a new instance.
    const graph = await deps.definitions.get(db, def.id);
    const root = graph.scopes[graph.rootScopeId];
    if (!root?.noneStartEventId && !root?.implicitStartIds.length) {
      throw new BatonError(
        'no_none_start_event',
        `process ${def.key} has no none start event; it starts on a message, signal or timer`,
      );
    }
    const variables = input.variables ?? {};
    const businessKey = input.businessKey ?? null;
    // Inline: created and stepped in one transaction (for a process that runs
    // straight through, one statement). Otherwise, or if that fails, the start
    // event goes to the inbox (one statement) and is stepped like any other.
    const requestId = idem ?? {};
    if (deps.inlineSteps) {
      const latest = input.version === undefined;
      const stepped = await deps.inlineSteps.startNew(def, graph, { variables, businessKey, onlyIfLatest: latest, ...requestId });
      if (stepped === 'stale') {
        latestByKey.delete(input.processKey);
        return startInstance(input);
      }
      if (latest) rememberLatest(def);
      if (stepped) return { ...stepped, created: true };
    }
    const out = await spawnInstanceOnce(db, def, { variables, businessKey, ...requestId });
    // the same request id won a race with us: its instance is the answer
    if (!out) return startInstance(input);
    await ring(out.instance.id);
    return { ...out, created: true };
  }

  /**
   * Accepts an input with one statement — durable on its own, so the answer
   * can be 2xx whatever happens next — and gets its instance stepped: by the
   * API at once with inline steps (StepRunner.stepAccepted: an optimistic
   * step of one statement when it can); otherwise `ring` (the inline locked
   * step, else the doorbell).
   */
  async function acceptThenStep<T extends { instanceId: string }>(accept: (ex: Executor) => Promise<T>): Promise<T> {
    const out = await accept(db);
    if (!(await deps.inlineSteps?.stepAccepted(out.instanceId))) await ring(out.instanceId);
    return out;
  }

  async function completeTask(taskId: string, variables: JsonObject): Promise<{ instanceId: string; inboxId: number }> {
    return acceptThenStep(async (ex) => {
      const done = await completeTaskWithEvent(ex, taskId, variables);
      if (!done) {
        const existing = await getHumanTask(ex, taskId);
        if (!existing) throw new BatonError('task_not_found', `task ${taskId} not found`);
        throw new BatonError('task_not_open', `task ${taskId} is ${existing.state}, not open`);
      }
      return done;
    });
  }

  async function instanceCommand(
    instanceId: string,
    kind: 'cancel' | 'suspend' | 'resume',
    payload: JsonObject,
  ): Promise<{ instanceId: string; inboxId: number }> {
    await liveInstance(instanceId);
    const inboxId = await insertInboxEvent(db, instanceId, kind, payload);
    await ring(instanceId);
    return { instanceId, inboxId };
  }

  async function liveInstance(instanceId: string): Promise<ProcessInstanceRow> {
    const row = await getInstance(db, instanceId);
    if (!row) throw new BatonError('instance_not_found', `process instance ${instanceId} not found`);
    if (ENDED.has(row.status)) throw new BatonError('instance_ended', `process instance ${instanceId} is ${row.status}`);
    return row;
  }

  // ---- operator controls (see engine/operator.ts) -------------------------

  /**
   * POST /v1/incidents/:id/retry. Checked against the instance as it is now
   * for a clear 4xx; the step re-checks, since the instance may move on in
   * between (then the retry is a no-op and the incident shows why it closed).
   */
  async function retryIncident(incidentId: string): Promise<{ instanceId: string; inboxId: number }> {
    const incident = await getIncident(db, incidentId);
    if (!incident) throw new BatonError('incident_not_found', `incident ${incidentId} not found`);
    if (incident.resolved_at !== null) throw new BatonError('incident_not_open', `incident ${incidentId} is resolved (${incident.resolution ?? 'closed'})`);
    const row = await liveInstance(incident.instance_id);
    const problem = incidentRetryProblem(row.state, incidentId);
    if (problem) throw new BatonError(problem.code, problem.message);
    const inboxId = await db.transaction().execute(async (trx) => {
      if (!(await claimIncidentRetry(trx, incidentId))) {
        throw new BatonError('incident_retry_pending', `a retry of incident ${incidentId} is already queued`);
      }
      const inboxId = await insertInboxEvent(trx, row.id, 'retryIncident', { incidentId });
      // an event the step runner set aside (runtime/poison.ts) is replayed right after
      const d = incident.details;
      if (d?.replay === true && typeof d.kind === 'string' && d.payload && typeof d.payload === 'object' && !Array.isArray(d.payload)) {
        return insertInboxEvent(trx, row.id, d.kind, d.payload);
      }
      return inboxId;
    });
    await ring(row.id);
    return { instanceId: row.id, inboxId };
  }

  /** PATCH /v1/process-instances/:id/variables */
  async function setVariables(instanceId: string, variables: JsonObject, scopeId?: string): Promise<{ instanceId: string; inboxId: number }> {
    const row = await liveInstance(instanceId);
    const problem = setVariablesProblem(row.state, scopeId);
    if (problem) throw new BatonError(problem.code, problem.message);
    const inboxId = await insertInboxEvent(db, instanceId, 'setVariables', { variables, ...(scopeId !== undefined ? { scopeId } : {}) });
    await ring(instanceId);
    return { instanceId, inboxId };
  }

  /** POST /v1/process-instances/:id/reset */
  async function resetInstance(instanceId: string, elementId: string): Promise<{ instanceId: string; inboxId: number }> {
    const row = await liveInstance(instanceId);
    const graph = await deps.definitions.get(db, row.definition_id);
    const problem = resetTargetProblem(graph, elementId);
    if (problem) throw new BatonError('invalid_reset_target', `cannot reset to '${elementId}': ${problem}`);
    const inboxId = await insertInboxEvent(db, instanceId, 'reset', { elementId });
    await ring(instanceId);
    return { instanceId, inboxId };
  }

  /** Resolves when the inbox event is applied and the instance has no immediate work, or when `waitMs` passes. */
  async function waitForInstance(instanceId: string, inboxId: number, waitMs: number): Promise<ProcessInstanceRow> {
    const deadline = Date.now() + waitMs;
    let delay = 5;
    for (;;) {
      // One statement, one snapshot: when it shows the event processed, the
      // row it returns reflects at least the step that processed it.
      const found = await getInstanceAfterEvent(db, instanceId, inboxId);
      if (!found) throw new BatonError('instance_not_found', `process instance ${instanceId} not found`);
      const { row, processed } = found;
      if (processed && row.status !== 'running') return row;
      if (Date.now() >= deadline) return row;
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(1, deadline - Date.now()))));
      delay = Math.min(delay * 2, 100);
    }
  }

  // ---- external tasks ----------------------------------------------------

  async function fetchAndLock(input: { workerId: string; topics: string[]; maxTasks: number; lockMs: number }): Promise<ServiceJobRow[]> {
    // one statement (UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)): atomic without a transaction around it
    return claimServiceJobs(db, { workerId: input.workerId, topics: input.topics, max: input.maxTasks, lockMs: input.lockMs });
  }

  async function lockedJob(jobId: string, workerId: string | null, ex: Executor = db): Promise<ServiceJobRow> {
    const job = await getServiceJob(ex, jobId);
    if (!job) throw new BatonError('external_task_not_found', `external task ${jobId} not found`);
    if (job.state !== 'locked') throw new BatonError('external_task_not_locked', `external task ${jobId} is ${job.state}, not locked`);
    if (workerId !== null && job.worker_id !== workerId) {
      throw new BatonError('external_task_locked_by_other', `external task ${jobId} is locked by another worker`);
    }
    return job;
  }

  /**
   * Ends a locked job and writes its inbox event, in one statement. Only when
   * that finds the job not locked (by this worker) is it read, to say why.
   */
  async function finishJob(
    jobId: string,
    workerId: string | null,
    state: 'completed' | 'failed' | 'bpmn_error',
    kind: string,
    payload: JsonObject,
    errorMessage: string | null = null,
  ): Promise<void> {
    await acceptThenStep(async (ex) => {
      const done = await finishJobWithEvent(ex, { id: jobId, workerId, state, errorMessage, kind, payload: { jobId, ...payload } });
      if (!done) {
        await lockedJob(jobId, workerId, ex); // throws the precise reason
        // it was locked a moment ago: another completion or a cancel won the race
        throw new BatonError('external_task_not_locked', `external task ${jobId} is no longer locked`);
      }
      return done;
    });
  }

  async function completeJob(jobId: string, workerId: string | null, variables: JsonObject): Promise<void> {
    await finishJob(jobId, workerId, 'completed', 'serviceJobCompleted', { variables });
  }

  async function failJob(
    jobId: string,
    workerId: string | null,
    input: { message: string; retries?: number; retryBackoffMs?: number },
  ): Promise<{ retries: number; incident: boolean }> {
    const job = await lockedJob(jobId, workerId);
    const retries = input.retries ?? Math.max(0, job.retries - 1);
    if (retries > 0) {
      const updated = await retryLockedJob(db, jobId, workerId, retries, input.retryBackoffMs ?? 0, input.message);
      if (!updated) throw new BatonError('external_task_not_locked', `external task ${jobId} is no longer locked`);
      return { retries, incident: false };
    }
    await finishJob(jobId, workerId, 'failed', 'serviceJobFailed', { message: input.message, attempts: job.attempts }, input.message);
    return { retries: 0, incident: true };
  }

  async function bpmnErrorJob(jobId: string, workerId: string | null, errorCode: string, message: string | null): Promise<void> {
    await finishJob(
      jobId,
      workerId,
      'bpmn_error',
      'serviceJobBpmnError',
      { errorCode, ...(message !== null ? { message } : {}) },
      message ?? errorCode,
    );
  }

  /**
   * POST /v1/messages: deliver to exactly one place (see correlation.ts). A
   * message without a key gets one from the BPMN correlation paths registered
   * for its name, if any (see message-correlation.ts).
   */
  async function publish(m: PublishedMessage): Promise<MessageOutcome> {
    const rings = new Set<string>();
    const outcome = await db.transaction().execute(async (trx) => {
      const correlationKey = await publishedCorrelationKey(trx, m);
      return publishMessage(trx, { ...m, correlationKey }, rings);
    });
    for (const id of rings) await ring(id);
    return outcome;
  }

  /** POST /v1/signals: broadcast. */
  async function signal(s: { name: string; variables: JsonObject }): Promise<SignalOutcome> {
    const rings = new Set<string>();
    const outcome = await db.transaction().execute((trx) => broadcastSignal(trx, s, rings));
    for (const id of rings) await ring(id);
    return outcome;
  }

  return {
    deploy,
    publish,
    signal,
    startInstance,
    completeTask,
    cancelInstance: (id: string, reason?: string) => instanceCommand(id, 'cancel', reason ? { reason } : {}),
    suspendInstance: (id: string) => instanceCommand(id, 'suspend', {}),
    resumeInstance: (id: string) => instanceCommand(id, 'resume', {}),
    retryIncident,
    setVariables,
    resetInstance,
    waitForInstance,
    fetchAndLock,
    completeJob,
    failJob,
    bpmnErrorJob,
    ring,
  };
}

export type Commands = ReturnType<typeof createCommands>;

/** JSON with object keys sorted at every level: equal values give equal text, whatever the order they were written in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
