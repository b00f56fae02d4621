/**
 * Creating instances and delivering messages and signals, inside a caller's
 * transaction. The API (POST /v1/messages, /v1/signals, /v1/process-instances)
 * and the step executor (message/signal throw events, call activities) share
 * this code, so an instance's throw is correlated by the same rules as a
 * client's publish, in the sending step's transaction.
 *
 * Everything here only inserts rows for OTHER instances (inbox rows, new
 * instance rows); it never locks another instance's row, which keeps the
 * one-row-per-step rule and so the absence of deadlocks.
 */
import type { JsonObject } from '../errors.js';
import type { ParentLink } from '../engine/types.js';
import { uuidv7 } from '../ids.js';
import type { Executor } from '../store/db.js';
import { definitionById, latestDefinition } from '../store/definitions.js';
import { insertInboxEvent } from '../store/inbox.js';
import { insertInstanceWithStart } from '../store/instances.js';
import { insertMessage, lockCorrelation, messageByMessageId, startEventsByName, takeBufferedMessage } from '../store/messages.js';
import type { ProcessDefinitionRow, ProcessInstanceRow } from '../store/schema.js';
import { signalSubscriptions, takeMessageSubscription } from '../store/waits.js';

/** The state an instance row holds between its creation and its first step. */
function notStartedState() {
  return { v: 1 as const, status: 'running' as const, rootScopeId: '', tokens: {}, scopes: {}, incidents: [] };
}

export interface SpawnOptions {
  id?: string;
  variables: JsonObject;
  businessKey: string | null;
  startEventId?: string;
  parent?: ParentLink;
  /** the start request's idempotency key: see spawnInstanceOnce */
  requestId?: string;
  /** the fingerprint of the request that carried it */
  requestFingerprint?: string;
}

/** Inserts a new instance and its `start` inbox row. The caller rings the doorbell after commit. */
export async function spawnInstance(trx: Executor, def: ProcessDefinitionRow, o: Omit<SpawnOptions, 'requestId' | 'requestFingerprint'>): Promise<{ instance: ProcessInstanceRow; inboxId: number }> {
  const out = await spawnInstanceOnce(trx, def, o);
  if (!out) throw new Error(`instance ${o.id ?? ''} was not inserted`); // only a request id can prevent the insert
  return out;
}

/** spawnInstance, except that nothing is written (undefined) when an instance already has `o.requestId`. */
export async function spawnInstanceOnce(
  trx: Executor,
  def: ProcessDefinitionRow,
  o: SpawnOptions,
): Promise<{ instance: ProcessInstanceRow; inboxId: number } | undefined> {
  const id = o.id ?? uuidv7();
  const payload: JsonObject = { variables: o.variables };
  if (o.startEventId !== undefined) payload.startEventId = o.startEventId;
  if (o.parent !== undefined) payload.parent = { ...o.parent };
  return insertInstanceWithStart(
    trx,
    {
      id,
      definition_id: def.id,
      process_key: def.key,
      version: def.version,
      business_key: o.businessKey,
      state: notStartedState(),
      parent_instance_id: o.parent?.instanceId ?? null,
      request_id: o.requestId ?? null,
      request_fingerprint: o.requestFingerprint ?? null,
    },
    payload,
  );
}

export type MessageOutcome =
  | { kind: 'correlated'; instanceId: string; elementId: string; messageId: string | null }
  | { kind: 'started'; instanceId: string; processKey: string; messageId: string | null }
  | { kind: 'buffered'; id: string; messageId: string | null; expiresAt: string }
  | { kind: 'not_correlated'; messageId: string | null };

export interface PublishedMessage {
  name: string;
  correlationKey: string | null;
  variables: JsonObject;
  /** client idempotency key */
  messageId?: string | null;
  ttlSeconds?: number;
}

/**
 * Delivers one message to exactly one place, in order of preference: the
 * oldest waiting subscription with that name and key; else a new instance of
 * the (latest) process with a message start event of that name; else the
 * buffer (with a TTL); else nowhere. Callers that publish several messages in
 * one transaction must take the correlation locks in a stable order first
 * (see `lockCorrelations`).
 *
 * `rings` collects the instances whose doorbell must ring after commit.
 */
export async function publishMessage(trx: Executor, m: PublishedMessage, rings: Set<string>, alreadyLocked = false): Promise<MessageOutcome> {
  const messageId = m.messageId ?? null;
  if (!alreadyLocked) await lockCorrelation(trx, m.name, m.correlationKey);
  if (messageId !== null) {
    // Idempotency: the same messageId again answers the first outcome and changes nothing.
    const seen = await messageByMessageId(trx, messageId);
    if (seen) {
      if (seen.outcome !== null) return seen.outcome as unknown as MessageOutcome;
      return { kind: 'buffered', id: seen.id, messageId, expiresAt: seen.expires_at?.toISOString() ?? '' };
    }
  }

  let outcome: MessageOutcome | null = null;
  const sub = await takeMessageSubscription(trx, m.name, m.correlationKey);
  if (sub) {
    await insertInboxEvent(trx, sub.instance_id, 'messageReceived', { subscriptionId: sub.id, name: m.name, variables: m.variables });
    rings.add(sub.instance_id);
    outcome = { kind: 'correlated', instanceId: sub.instance_id, elementId: sub.element_id, messageId };
  } else {
    const starts = await startEventsByName(trx, 'message', m.name);
    const start = starts[0];
    const def = start ? await definitionById(trx, start.definition_id) : undefined;
    if (start && def) {
      const { instance } = await spawnInstance(trx, def, { variables: m.variables, businessKey: m.correlationKey, startEventId: start.element_id });
      rings.add(instance.id);
      outcome = { kind: 'started', instanceId: instance.id, processKey: def.key, messageId };
    }
  }

  if (outcome === null && m.ttlSeconds && m.ttlSeconds > 0) {
    const id = uuidv7();
    const expiresAt = new Date(Date.now() + m.ttlSeconds * 1000);
    await insertMessage(trx, { id, messageId, name: m.name, correlationKey: m.correlationKey, variables: m.variables, outcome: null, expiresAt });
    return { kind: 'buffered', id, messageId, expiresAt: expiresAt.toISOString() };
  }
  outcome ??= { kind: 'not_correlated', messageId };
  if (messageId !== null && outcome.kind !== 'not_correlated') {
    // The record of what happened, for the next publish with this messageId.
    await insertMessage(trx, {
      id: uuidv7(),
      messageId,
      name: m.name,
      correlationKey: m.correlationKey,
      variables: {},
      outcome: outcome as unknown as JsonObject,
      expiresAt: null,
    });
  }
  return outcome;
}

/** Takes the correlation locks of several (name, key) pairs in one stable order, so two transactions never wait on each other in a cycle. */
export async function lockCorrelations(trx: Executor, pairs: Array<{ name: string; correlationKey: string | null }>): Promise<void> {
  const keys = new Map<string, { name: string; correlationKey: string | null }>();
  for (const p of pairs) keys.set(JSON.stringify([p.name, p.correlationKey]), p);
  for (const k of [...keys.keys()].sort()) {
    const p = keys.get(k)!;
    await lockCorrelation(trx, p.name, p.correlationKey);
  }
}

/**
 * A subscription is opening: if a buffered message already waits for it, the
 * message is delivered at once (to the opening instance's own inbox) and the
 * subscription is not stored. Must run under the correlation lock.
 */
export async function consumeBuffered(trx: Executor, instanceId: string, sub: { id: string; name: string; correlationKey: string | null; elementId: string }): Promise<boolean> {
  const msg = await takeBufferedMessage(trx, sub.name, sub.correlationKey, { kind: 'correlated', instanceId, elementId: sub.elementId });
  if (!msg) return false;
  await insertInboxEvent(trx, instanceId, 'messageReceived', { subscriptionId: sub.id, name: sub.name, variables: msg.variables });
  return true;
}

export interface SignalOutcome {
  delivered: number;
  started: string[];
}

/**
 * Delivers a signal to every subscription of its name and starts every
 * process with a signal start event of that name. `thrower`: the instance
 * that threw it in a step, whose own catchers the engine already fired within
 * the throw; its subscriptions are left out (it may start a new instance of
 * its own process, though).
 */
export async function broadcastSignal(
  trx: Executor,
  s: { name: string; variables: JsonObject },
  rings: Set<string>,
  thrower: string | null = null,
): Promise<SignalOutcome> {
  const subs = (await signalSubscriptions(trx, s.name)).filter((sub) => sub.instance_id !== thrower);
  for (const sub of subs) {
    await insertInboxEvent(trx, sub.instance_id, 'signalReceived', { subscriptionId: sub.id, name: s.name, variables: s.variables });
    rings.add(sub.instance_id);
  }
  const started: string[] = [];
  for (const start of await startEventsByName(trx, 'signal', s.name)) {
    const def = await definitionById(trx, start.definition_id);
    if (!def) continue;
    const { instance } = await spawnInstance(trx, def, { variables: s.variables, businessKey: null, startEventId: start.element_id });
    rings.add(instance.id);
    started.push(instance.id);
  }
  return { delivered: subs.length, started };
}

/** Resolves a call activity's version binding to a definition. */
export async function resolveCalled(
  trx: Executor,
  processKey: string,
  binding: { kind: 'latest' } | { kind: 'version'; version: number } | { kind: 'deployment' },
  parentDeploymentId: string,
): Promise<ProcessDefinitionRow | undefined> {
  if (binding.kind === 'version') {
    return trx.selectFrom('process_definition').selectAll().where('key', '=', processKey).where('version', '=', binding.version).executeTakeFirst();
  }
  if (binding.kind === 'deployment') {
    const same = await trx
      .selectFrom('process_definition')
      .selectAll()
      .where('key', '=', processKey)
      .where('deployment_id', '=', parentDeploymentId)
      .executeTakeFirst();
    if (same) return same;
  }
  return latestDefinition(trx, processKey);
}
