/**
 * The step executor against the real Postgres, driven by hand (no consumers):
 * duplicate and concurrent doorbells, stale events, missing instances, and an
 * engine failure that must become an incident instead of a poisoned queue.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { EXAMPLE_FILE } from '../../src/boot.js';
import { createEvaluator } from '../../src/expressions/index.js';
import { createDefinitionCache } from '../../src/runtime/definitions.js';
import { createStepRunner, type StepRunner } from '../../src/runtime/step.js';
import { listHistory } from '../../src/store/history.js';
import { insertInboxEvent } from '../../src/store/inbox.js';
import { getInstance } from '../../src/store/instances.js';
import { listHumanTasks } from '../../src/store/tasks.js';
import { isolation, silentLogger, startDistributed } from '../support/env.js';

const iso = isolation('step');
let baton: Baton;
let runner: StepRunner;
let evaluator: ReturnType<typeof createEvaluator>;

beforeAll(async () => {
  baton = await startDistributed(iso, []);
  evaluator = createEvaluator();
  runner = createStepRunner({ db: baton.db, transport: baton.transport, logger: silentLogger(), evaluator, definitions: createDefinitionCache() });
  await baton.commands.deploy([{ name: 'order-approval.bpmn', content: readFileSync(EXAMPLE_FILE, 'utf8') }]);
});

afterAll(async () => {
  evaluator.close();
  await baton.close();
  await iso.drop();
});

const start = async (vars = { price: 600, qty: 2 }) => (await baton.commands.startInstance({ processKey: 'order-approval', variables: vars })).instance.id;

describe('step executor', () => {
  it('applies an event once however many doorbells ring, even concurrently', async () => {
    const id = await start();
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => runner.run(id)));
    expect(outcomes.filter((o) => o.kind === 'stepped')).toHaveLength(1);
    // The rest either found the row locked (and re-rang) or found nothing to do.
    expect(outcomes.every((o) => ['stepped', 'locked', 'idle'].includes(o.kind))).toBe(true);
    expect(await runner.run(id)).toEqual({ kind: 'idle' });
    const history = await listHistory(baton.db, id, undefined, 100);
    expect(history.filter((h) => h.event === 'instance_started')).toHaveLength(1);
    expect((await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 })).length).toBe(1);
    const row = await getInstance(baton.db, id);
    expect(row).toMatchObject({ status: 'waiting', rev: 1 });
  });

  it('applies several pending events in arrival order in one step', async () => {
    const id = await start();
    await runner.run(id);
    const [task] = await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 });
    await baton.commands.completeTask(task!.id, { approved: true });
    // A second completion of the same task, as a stale duplicate in the inbox: ignored.
    await insertInboxEvent(baton.db, id, 'humanTaskCompleted', { taskId: task!.id, variables: { approved: false } });
    const out = await runner.run(id);
    expect(out).toEqual({ kind: 'stepped', applied: 2, status: 'completed' });
    const row = await getInstance(baton.db, id);
    expect(row!.state.scopes[row!.state.rootScopeId]!.variables.approved).toBe(true);
    expect(row!.ended_at).not.toBeNull();
    // Events for an ended instance are consumed and change nothing.
    await insertInboxEvent(baton.db, id, 'cancel', {});
    expect(await runner.run(id)).toEqual({ kind: 'stepped', applied: 1, status: 'completed' });
    expect((await getInstance(baton.db, id))!.rev).toBe(row!.rev + 1);
  });

  it('answers missing for an unknown instance', async () => {
    expect(await runner.run('00000000-0000-7000-8000-000000000001')).toEqual({ kind: 'missing' });
  });

  it('turns an engine failure into an incident and keeps going', async () => {
    const id = await start();
    await runner.run(id);
    // Corrupt the stored state: a token on an element the graph does not have.
    const row = (await getInstance(baton.db, id))!;
    const state = structuredClone(row.state);
    const token = Object.values(state.tokens)[0]!;
    token.elementId = 'no-such-element';
    await baton.db.updateTable('process_instance').set({ state: JSON.stringify(state) }).where('id', '=', id).execute();
    await insertInboxEvent(baton.db, id, 'humanTaskCompleted', { taskId: (token.wait as { taskId: string }).taskId, variables: {} });
    const out = await runner.run(id);
    expect(out).toMatchObject({ kind: 'stepped', status: 'error' });
    const after = (await getInstance(baton.db, id))!;
    expect(after.state.incidents).toEqual([expect.objectContaining({ code: 'engine_error' })]);
    expect(await runner.run(id)).toEqual({ kind: 'idle' });
    // Other instances are unaffected.
    const other = await start({ price: 1, qty: 1 });
    expect(await runner.run(other)).toMatchObject({ kind: 'stepped', status: 'completed' });
  });
});
