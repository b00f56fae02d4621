/**
 * The step executor against the real Postgres, driven by hand (no consumers):
 * duplicate and concurrent doorbells, stale events, missing instances, and an
 * engine failure that must become an incident instead of a poisoned queue.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
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
import type { InboxRow, ProcessInstanceRow } from '../../src/store/schema.js';
import { isolation, silentLogger, startDistributed } from '../support/env.js';

const iso = isolation('step');
let baton: Baton;
let runner: StepRunner;
let evaluator: ReturnType<typeof createEvaluator>;

beforeAll(async () => {
  baton = await startDistributed(iso, []);
  evaluator = createEvaluator();
  runner = createStepRunner({ db: baton.db, transport: baton.transport, logger: silentLogger(), evaluators: () => evaluator, definitions: createDefinitionCache() });
  await baton.commands.deploy([{ name: 'order-approval.bpmn', content: readFileSync(EXAMPLE_FILE, 'utf8') }]);
  await baton.commands.deploy([{ name: 'race.bpmn', content: RACE_MODEL }]);
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

/**
 * A step runner that, in its first step, runs `during` after reading the inbox
 * and before writing (from inside the definition lookup, on another
 * connection): a commit racing the step.
 */
function runnerDuringStep(during: () => Promise<void>): StepRunner {
  const cache = createDefinitionCache();
  let done = false;
  return createStepRunner({
    db: baton.db,
    transport: baton.transport,
    logger: silentLogger(),
    evaluators: () => evaluator,
    definitions: {
      async get(db, definitionId) {
        if (!done) {
          done = true;
          await during();
        }
        return cache.get(db, definitionId);
      },
    },
  });
}

const RACE_MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d-race" targetNamespace="t">
  <bpmn:process id="race" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="u"/>
    <bpmn:userTask id="u"/>
    <bpmn:boundaryEvent id="late" attachedToRef="u"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_late" sourceRef="late" targetRef="escalated"/><bpmn:endEvent id="escalated"/>
    <bpmn:sequenceFlow id="f2" sourceRef="u" targetRef="sc"/>
    <bpmn:scriptTask id="sc"><bpmn:script>label = 'done:' + who</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="sc" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>`;

describe('races between an accepted completion and an interrupting event', () => {

  async function waitingAtTask(): Promise<{ id: string; taskId: string; timerId: string }> {
    const id = (await baton.commands.startInstance({ processKey: 'race', variables: {} })).instance.id;
    await runner.run(id);
    const row = (await getInstance(baton.db, id))!;
    const [task] = await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 });
    const timer = Object.values(row.state.triggers ?? {}).find((t) => t.elementId === 'late')!;
    return { id, taskId: task!.id, timerId: timer.id };
  }

  it('a completion accepted after the timer fired, but before the step, still wins', async () => {
    const { id, taskId, timerId } = await waitingAtTask();
    await insertInboxEvent(baton.db, id, 'timerFired', { timerId }); // arrived first
    await baton.commands.completeTask(taskId, { who: 'ann' }); // answered 2xx
    expect(await runner.run(id)).toMatchObject({ kind: 'stepped', status: 'completed' });
    const row = (await getInstance(baton.db, id))!;
    expect(row.state.scopes[row.state.rootScopeId]!.variables).toMatchObject({ who: 'ann', label: 'done:ann' });
    const history = await listHistory(baton.db, id, undefined, 100);
    expect(history.some((h) => h.element_id === 'escalated')).toBe(false);
    expect((await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 }))[0]!.state).toBe('completed');
  });

  it('a completion committed while the step is cancelling the task wins too (the step rolls back and runs again)', async () => {
    const { id, taskId, timerId } = await waitingAtTask();
    await insertInboxEvent(baton.db, id, 'timerFired', { timerId });
    // Complete the task from another connection after the step read its inbox,
    // before it writes: the step's cancel finds the task completed.
    let raced = false;
    const racing = runnerDuringStep(async () => {
      raced = true;
      await baton.commands.completeTask(taskId, { who: 'bob' });
    });
    expect(await racing.run(id)).toMatchObject({ kind: 'stepped', status: 'completed' });
    expect(raced).toBe(true);
    const row = (await getInstance(baton.db, id))!;
    expect(row.state.scopes[row.state.rootScopeId]!.variables).toMatchObject({ label: 'done:bob' });
    const history = await listHistory(baton.db, id, undefined, 100);
    expect(history.filter((h) => h.event === 'element_completed' && h.element_id === 'u')).toHaveLength(1);
    expect(history.some((h) => h.element_id === 'escalated')).toBe(false);
  });

  it('two completions of one task: exactly one is accepted', async () => {
    const { id, taskId } = await waitingAtTask();
    const results = await Promise.allSettled([baton.commands.completeTask(taskId, { who: 'a' }), baton.commands.completeTask(taskId, { who: 'b' })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ code: 'task_not_open' });
    await runner.run(id);
    expect((await getInstance(baton.db, id))!.status).toBe('completed');
  });
});

describe('poison events', () => {
  it('an event whose step Postgres refuses becomes an event_rejected incident; a retry replays it', async () => {
    const { id, taskId } = await (async () => {
      const iid = (await baton.commands.startInstance({ processKey: 'race', variables: {} })).instance.id;
      await runner.run(iid);
      const [task] = await listHumanTasks(baton.db, { processInstanceId: iid, limit: 10 });
      return { id: iid, taskId: task!.id };
    })();
    // A sandbox that (wrongly) lets a NUL character through: the state cannot be stored.
    const leaky = createStepRunner({
      db: baton.db,
      transport: baton.transport,
      logger: silentLogger(),
      evaluators: () => ({ ...evaluator, condition: evaluator.condition.bind(evaluator), expression: evaluator.expression.bind(evaluator), script: () => ({ assigned: { label: 'a\u0000b' } }) }),
      definitions: createDefinitionCache(),
    });
    await baton.commands.completeTask(taskId, { who: 'cy' });
    await leaky.run(id);
    const row = (await getInstance(baton.db, id))!;
    expect(row.status).toBe('error');
    const [incident] = row.state.incidents;
    expect(incident).toMatchObject({ code: 'event_rejected', tokenId: null, details: { replay: true, kind: 'humanTaskCompleted' } });
    expect(incident!.message).toMatch(/22P05|NUL|\\u0000|unicode/i);
    expect(await leaky.run(id)).toEqual({ kind: 'idle' }); // not retried forever

    // The operator fixed the cause (here: the sandbox); the retry replays the completion.
    await baton.commands.retryIncident(incident!.id);
    expect(await runner.run(id)).toMatchObject({ kind: 'stepped', status: 'completed' });
    const done = (await getInstance(baton.db, id))!;
    expect(done.state.scopes[done.state.rootScopeId]!.variables).toMatchObject({ who: 'cy', label: 'done:cy' });
    const rows = await baton.db.selectFrom('incident').selectAll().where('instance_id', '=', id).execute();
    expect(rows).toEqual([expect.objectContaining({ code: 'event_rejected', resolution: 'retried', resolved_at: expect.any(Date) })]);
  });
});

describe('cancel racing a step', () => {
  it('a cancel accepted while a step runs is applied after it, whole: nothing half-written, everything closed', async () => {
    const id = (await baton.commands.startInstance({ processKey: 'race', variables: {} })).instance.id;
    // the cancel commits while the step holds the row
    const racing = runnerDuringStep(() => baton.commands.cancelInstance(id, 'operator').then(() => undefined));
    await racing.run(id);
    await racing.run(id);
    const row = (await getInstance(baton.db, id))!;
    expect(row.status).toBe('terminated');
    const tasks = await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 });
    expect(tasks.map((t) => t.state)).toEqual(['cancelled']); // opened by the first step, cancelled by the second
    expect(await baton.db.selectFrom('timer').select('id').where('instance_id', '=', id).execute()).toEqual([]);
    const history = await listHistory(baton.db, id, undefined, 100);
    expect(history.map((h) => h.event)).toEqual(
      expect.arrayContaining(['instance_started', 'element_started', 'element_cancelled', 'instance_terminated']),
    );
    expect(history.filter((h) => h.event === 'instance_started')).toHaveLength(1);
  });
});

describe('the step commit statement', () => {
  it('refuses to write over a moved revision or to consume an inbox row twice (and the transaction rolls back)', async () => {
    const { commitStep, lockForStep, StepRaced } = await import('../../src/store/step.js');
    const id = await start();
    const locked = (await baton.db.transaction().execute((trx) => lockForStep(trx, id, 10))) as { row: ProcessInstanceRow; events: InboxRow[] };
    expect(locked.events.map((e) => e.kind)).toEqual(['start']);
    const base = { id, state: locked.row.state, status: 'running', ended: false, suspended: false, history: [] };
    await expect(
      baton.db.transaction().execute((trx) => commitStep(trx, { ...base, rev: locked.row.rev + 7, consumed: [] })),
    ).rejects.toBeInstanceOf(StepRaced);
    await insertInboxEvent(baton.db, id, 'cancel', {});
    await runner.run(id); // consumes both rows
    const after = (await getInstance(baton.db, id))!;
    await expect(
      baton.db.transaction().execute((trx) => commitStep(trx, { ...base, rev: after.rev, consumed: locked.events.map((e) => e.id) })),
    ).rejects.toBeInstanceOf(StepRaced);
    expect((await getInstance(baton.db, id))!.rev).toBe(after.rev);
  });
});

describe('inline start (the API creates and steps an instance in one transaction)', () => {
  it('writes the row after its first step, its processed start event, history and effects together', async () => {
    const def = (await baton.db.selectFrom('process_definition').selectAll().where('key', '=', 'race').executeTakeFirstOrThrow());
    const graph = await createDefinitionCache().get(baton.db, def.id);
    const started = (await runner.startNew(def, graph, { variables: { who: 'x' }, businessKey: 'b-1' })) as { instance: ProcessInstanceRow; inboxId: number };
    expect(started.instance).toMatchObject({ status: 'waiting', rev: 1, business_key: 'b-1' });
    const id = started.instance.id;
    const inbox = await baton.db.selectFrom('inbox').selectAll().where('instance_id', '=', id).execute();
    expect(inbox).toEqual([expect.objectContaining({ id: started.inboxId, kind: 'start', processed_at: expect.any(Date) })]);
    expect((await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 })).map((t) => t.element_id)).toEqual(['u']);
    expect(await baton.db.selectFrom('timer').select('element_id').where('instance_id', '=', id).execute()).toEqual([{ element_id: 'late' }]);
    const history = await listHistory(baton.db, id, undefined, 100);
    expect(history.filter((h) => h.event === 'instance_started')).toHaveLength(1);
    expect(await runner.run(id)).toEqual({ kind: 'idle' }); // nothing left for a step worker
  });

  it('runs a straight-through process to its end in one statement', async () => {
    const def = (await baton.db.selectFrom('process_definition').selectAll().where('key', '=', 'order-approval').executeTakeFirstOrThrow());
    const graph = await createDefinitionCache().get(baton.db, def.id);
    const started = (await runner.startNew(def, graph, { variables: { price: 1, qty: 1 }, businessKey: null })) as { instance: ProcessInstanceRow };
    expect(started.instance).toMatchObject({ status: 'completed', ended_at: expect.any(Date) });
  });
});

describe('inline start and the cached latest version', () => {
  it('an API process that cached version 1 starts version 2 once another process deployed it', async () => {
    const { createCommands } = await import('../../src/runtime/commands.js');
    const model = (label: string) => RACE_MODEL.replace('id="race"', 'id="versioned"').replace("label = 'done:' + who", `label = '${label}'`);
    const mk = () => createCommands({ db: baton.db, transport: baton.transport, logger: silentLogger(), definitions: createDefinitionCache(), inlineSteps: runner });
    const a = mk();
    const b = mk();
    await b.deploy([{ name: 'v.bpmn', content: model('one') }]);
    const first = await a.startInstance({ processKey: 'versioned', variables: {} });
    expect(first.instance).toMatchObject({ version: 1, status: 'waiting' }); // stepped inline; version 1 now cached by a
    await b.deploy([{ name: 'v.bpmn', content: model('two') }]);
    const second = await a.startInstance({ processKey: 'versioned', variables: {} });
    expect(second.instance).toMatchObject({ version: 2, status: 'waiting' });
    expect(await baton.db.selectFrom('process_instance').select('version').where('process_key', '=', 'versioned').orderBy('version').execute()).toEqual([
      { version: 1 },
      { version: 2 },
    ]);
  });
});

describe('inline steps leave big instances to the step workers', () => {
  it('answers deferred, consuming nothing, when the stored state is over the limit', async () => {
    const id = await start();
    const small = createStepRunner({ db: baton.db, transport: baton.transport, logger: silentLogger(), evaluators: () => evaluator, definitions: createDefinitionCache(), maxStateBytes: 1 });
    expect(await small.run(id)).toEqual({ kind: 'deferred' });
    expect((await getInstance(baton.db, id))!.rev).toBe(0);
    expect(await runner.run(id)).toMatchObject({ kind: 'stepped' });
  });
});

const TWO_TASKS_MODEL = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d-two" targetNamespace="t">
  <bpmn:process id="two-tasks" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="u1"/>
    <bpmn:userTask id="u1"/>
    <bpmn:boundaryEvent id="late1" attachedToRef="u1"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_l1" sourceRef="late1" targetRef="x1"/><bpmn:endEvent id="x1"/>
    <bpmn:sequenceFlow id="f2" sourceRef="u1" targetRef="u2"/>
    <bpmn:userTask id="u2"/>
    <bpmn:boundaryEvent id="late2" attachedToRef="u2"><bpmn:timerEventDefinition><bpmn:timeDuration>PT2H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_l2" sourceRef="late2" targetRef="x2"/><bpmn:endEvent id="x2"/>
    <bpmn:sequenceFlow id="f3" sourceRef="u2" targetRef="e"/><bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>`;

describe('the optimistic step after an accepted completion (no lock, one guarded statement)', () => {
  /** A logger that remembers its messages (debug and up). */
  function recordingLogger() {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(String(JSON.parse(l).msg)) });
    return { logger, lines };
  }

  async function openTasks(id: string) {
    return (await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 })).map((t) => ({ element: t.element_id, state: t.state, id: t.id }));
  }

  it('writes the state, the next task and timer, drops the cancelled timer, and consumes the completion', async () => {
    await baton.commands.deploy([{ name: 'two.bpmn', content: TWO_TASKS_MODEL }]);
    const { logger, lines } = recordingLogger();
    const inline = createStepRunner({ db: baton.db, transport: baton.transport, logger, evaluators: () => evaluator, definitions: createDefinitionCache() });
    const { createCommands } = await import('../../src/runtime/commands.js');
    const commands = createCommands({ db: baton.db, transport: baton.transport, logger: silentLogger(), definitions: createDefinitionCache(), inlineSteps: inline });
    const id = (await commands.startInstance({ processKey: 'two-tasks', variables: {} })).instance.id;
    const [u1] = await openTasks(id);
    const timersBefore = await baton.db.selectFrom('timer').select(['id', 'element_id']).where('instance_id', '=', id).execute();
    expect(timersBefore.map((t) => t.element_id)).toEqual(['late1']);

    await commands.completeTask(u1!.id, { who: 'ann' });
    expect(lines).toContain('stepped optimistically');
    const row = (await getInstance(baton.db, id))!;
    expect(row).toMatchObject({ status: 'waiting', rev: 2 });
    expect(row.state.scopes[row.state.rootScopeId]!.variables).toMatchObject({ who: 'ann' });
    expect((await openTasks(id)).map(({ element, state }) => ({ element, state }))).toEqual([
      { element: 'u1', state: 'completed' },
      { element: 'u2', state: 'open' },
    ]);
    expect((await baton.db.selectFrom('timer').select('element_id').where('instance_id', '=', id).execute()).map((t) => t.element_id)).toEqual(['late2']);
    const pending = await baton.db.selectFrom('inbox').select('id').where('instance_id', '=', id).where('processed_at', 'is', null).execute();
    expect(pending).toEqual([]);
    const history = await listHistory(baton.db, id, undefined, 100);
    expect(history.filter((h) => h.event === 'element_completed' && h.element_id === 'u1')).toHaveLength(1);
    expect(await runner.run(id)).toEqual({ kind: 'idle' });

    // the last task ends the instance: its remaining timer goes with it
    const u2 = (await openTasks(id)).find((t) => t.element === 'u2')!;
    await commands.completeTask(u2.id, {});
    expect((await getInstance(baton.db, id))!).toMatchObject({ status: 'completed', ended_at: expect.any(Date) });
    expect(await baton.db.selectFrom('timer').select('id').where('instance_id', '=', id).execute()).toEqual([]);
  });

  it('another step committing between its read and its write: it writes nothing and the completion is applied once', async () => {
    const { completeTaskWithEvent } = await import('../../src/store/tasks.js');
    const id = (await baton.commands.startInstance({ processKey: 'race', variables: {} })).instance.id;
    await runner.run(id);
    const [task] = await listHumanTasks(baton.db, { processInstanceId: id, limit: 10 });
    await completeTaskWithEvent(baton.db, task!.id, { who: 'dee' });
    let raced = false;
    // the ordinary step applies the completion after the optimistic step read, before it writes
    const racing = runnerDuringStep(async () => {
      raced = true;
      expect(await runner.run(id)).toMatchObject({ kind: 'stepped', status: 'completed' });
    });
    const revAfterRace = async () => (await getInstance(baton.db, id))!.rev;
    await racing.stepAccepted(id);
    expect(raced).toBe(true);
    const row = (await getInstance(baton.db, id))!;
    expect(row.status).toBe('completed');
    expect(row.state.scopes[row.state.rootScopeId]!.variables).toMatchObject({ label: 'done:dee' });
    expect(await revAfterRace()).toBe(2); // start step, the racing step; nothing from the optimistic one
    const history = await listHistory(baton.db, id, undefined, 100);
    expect(history.filter((h) => h.event === 'element_completed' && h.element_id === 'u')).toHaveLength(1);
    expect(history.filter((h) => h.event === 'instance_completed')).toHaveLength(1);
  });

  it('the guarded commit statement raises on a moved revision and keeps none of its writes', async () => {
    const { commitStep, readForStep, StepRaced } = await import('../../src/store/step.js');
    const id = (await baton.commands.startInstance({ processKey: 'race', variables: {} })).instance.id;
    const read = (await readForStep(baton.db, id, 10)) as { row: ProcessInstanceRow; events: InboxRow[] };
    await runner.run(id); // another step commits meanwhile
    const historyBefore = (await listHistory(baton.db, id, undefined, 100)).length;
    const taskId = '00000000-0000-7000-8000-0000000000aa';
    const timerId = '00000000-0000-7000-8000-0000000000bb';
    await expect(
      commitStep(baton.db, {
        id,
        rev: read.row.rev,
        state: read.row.state,
        status: 'running',
        ended: true,
        suspended: false,
        consumed: read.events.map((e) => e.id),
        history: [{ at: new Date().toISOString(), event: 'element_started', elementId: 'u', elementType: 'userTask', tokenId: null, scopeId: null }],
        guard: {
          processKey: 'race',
          tasks: [{ id: taskId, elementId: 'u', tokenId: 't', name: null, kind: 'user', lane: null, candidateGroups: [], candidateUsers: [], assignee: null, formKey: null, properties: {} }],
          jobs: [],
          timers: [{ id: timerId, tokenId: 't', elementId: 'late', dueAt: new Date().toISOString(), cycle: null, definition: { kind: 'duration', expression: 'PT1H' } }],
          timersCancelled: [],
          tasksCompleted: [],
        },
      }),
    ).rejects.toBeInstanceOf(StepRaced);
    expect(await baton.db.selectFrom('human_task').select('id').where('id', '=', taskId).execute()).toEqual([]);
    expect(await baton.db.selectFrom('timer').select('id').where('id', '=', timerId).execute()).toEqual([]);
    // ended: true would have dropped the instance's waits; they are still there
    expect((await baton.db.selectFrom('timer').select('element_id').where('instance_id', '=', id).execute()).map((t) => t.element_id)).toEqual(['late']);
    expect((await listHistory(baton.db, id, undefined, 100)).length).toBe(historyBefore);
    expect((await getInstance(baton.db, id))!).toMatchObject({ rev: 1, status: 'waiting' });
  });
});
