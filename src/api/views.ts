/** Rows → the JSON shapes of the REST contract. */
import { activeElementIds, processVariables } from '../engine/index.js';
import { BatonError, type JsonObject } from '../errors.js';
import { TRUNCATED } from '../store/instances.js';
import type { HistoryRow, HumanTaskRow, IncidentRow, ProcessDefinitionRow, ProcessInstanceRow } from '../store/schema.js';

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export function definitionView(d: ProcessDefinitionRow) {
  return { id: d.id, key: d.key, version: d.version, name: d.name, deploymentId: d.deployment_id, resourceName: d.resource_name, language: d.language ?? 'javascript', createdAt: iso(d.created_at) };
}

/** Takes the variables a read left in Postgres for their size (store/instances.ts TRUNCATED) out of `variables`. */
function omitted(variables: JsonObject): { name: string; bytes: number }[] {
  const out: { name: string; bytes: number }[] = [];
  for (const [name, v] of Object.entries(variables)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v[TRUNCATED] === 'number') {
      out.push({ name, bytes: v[TRUNCATED] });
      delete variables[name];
    }
  }
  return out;
}

export function instanceView(r: ProcessInstanceRow) {
  const notStarted = r.state.rootScopeId === '';
  const variables = notStarted ? {} : processVariables(r.state);
  const left = omitted(variables);
  return {
    id: r.id,
    processKey: r.process_key,
    version: r.version,
    businessKey: r.business_key,
    status: r.status,
    variables,
    // too large to send with the instance (BATON_MAX_VARIABLE_READ_BYTES): GET …/variables/:name reads one
    ...(left.length > 0 ? { omittedVariables: left } : {}),
    activeElements: notStarted ? [] : activeElementIds(r.state),
    incidents: r.state.incidents.map((i) => ({
      id: i.id,
      code: i.code,
      message: i.message,
      elementId: i.elementId,
      ...(i.line !== undefined ? { line: i.line } : {}),
      ...(i.column !== undefined ? { column: i.column } : {}),
      ...(i.attempts !== undefined ? { attempts: i.attempts } : {}),
      tokenId: i.tokenId,
      createdAt: i.createdAt,
    })),
    waits: Object.values(r.state.triggers ?? {})
      .filter((t) => t.kind !== 'conditional' || t.condition !== undefined)
      .map((t) => ({
        id: t.id,
        kind: t.kind,
        elementId: t.elementId,
        ...(t.dueAt !== undefined ? { dueAt: t.dueAt } : {}),
        ...(t.name !== undefined ? { name: t.name } : {}),
        ...(t.correlationKey !== undefined ? { correlationKey: t.correlationKey } : {}),
        ...(t.condition !== undefined ? { condition: t.condition } : {}),
      })),
    parentInstanceId: r.parent_instance_id,
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
  };
}

export function taskView(t: HumanTaskRow) {
  return {
    id: t.id,
    processInstanceId: t.instance_id,
    processKey: t.process_key,
    elementId: t.element_id,
    name: t.name,
    kind: t.kind,
    lane: t.lane,
    candidateGroups: t.candidate_groups,
    candidateUsers: t.candidate_users,
    assignee: t.assignee,
    formKey: t.form_key,
    properties: t.properties,
    state: t.state,
    createdAt: iso(t.created_at),
    endedAt: iso(t.ended_at),
  };
}

export function historyView(h: HistoryRow) {
  return {
    id: h.id,
    at: iso(h.at),
    event: h.event,
    elementId: h.element_id,
    elementType: h.element_type,
    tokenId: h.token_id,
    scopeId: h.scope_id,
    ...(h.data !== null ? { data: h.data } : {}),
  };
}

export function incidentView(i: IncidentRow) {
  return {
    id: i.id,
    processInstanceId: i.instance_id,
    processKey: i.process_key,
    elementId: i.element_id,
    tokenId: i.token_id,
    code: i.code,
    message: i.message,
    line: i.line,
    column: i.column,
    attempts: i.attempts,
    ...(i.details !== null ? { details: i.details } : {}),
    createdAt: iso(i.created_at),
    resolvedAt: iso(i.resolved_at),
    /** retrying (queued), retried, cancelled (its token is gone), reset; null while open */
    resolution: i.resolution,
  };
}

/** Cursors are opaque to clients: base64url of the last id of the page. */
export function encodeCursor(lastId: string | number): string {
  return Buffer.from(String(lastId)).toString('base64url');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The last id a cursor names: a UUID (`kind: 'uuid'`), a non-negative safe
 * integer (`kind: 'int'`, history ids), or either when the caller does not say.
 * Anything else (garbage, base64 of garbage, negative or huge numbers) is a
 * 400 invalid_cursor rather than a value the database would choke on.
 */
export function decodeCursor(cursor: string | undefined, kind?: 'uuid' | 'int'): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const raw = /^[A-Za-z0-9_-]{1,100}={0,2}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('latin1') : '';
  const isUuid = UUID.test(raw);
  const isInt = /^\d{1,16}$/.test(raw) && Number(raw) <= Number.MAX_SAFE_INTEGER;
  if ((kind === 'uuid' && !isUuid) || (kind === 'int' && !isInt) || (!isUuid && !isInt)) {
    throw new BatonError('invalid_cursor', 'cursor is not one this API gave out');
  }
  return isUuid ? raw.toLowerCase() : raw;
}

export function page<T, V>(rows: T[], limit: number, view: (r: T) => V, idOf: (r: T) => string | number) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(view), nextCursor: rows.length > limit && last !== undefined ? encodeCursor(idOf(last)) : null };
}
