/**
 * BPMN-standard (SpiffArena) message correlation end to end against the real
 * Postgres and Redis: correlationPropertyRetrievalExpression messagePaths give
 * the subscription key (from the receiver's variables), the key of a published
 * message without `correlationKey` (from its payload) and the key of a thrown
 * message (from the thrower's variables).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { apiClient } from '../support/api.js';
import { eventually, isolation, startDistributed } from '../support/env.js';

const iso = isolation('spiffcorr');
let baton: Baton;

const correlation = `
  <bpmn:correlationProperty id="order_id" name="order_id">
    <bpmn:correlationPropertyRetrievalExpression messageRef="msg_paid"><bpmn:messagePath>order.id</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:message id="msg_paid" name="order_paid" />`;

const defs = (id: string, body: string) => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs-${id}" targetNamespace="http://baton.dev/test">
  <bpmn:collaboration id="c-${id}">
    <bpmn:participant id="pa-${id}" processRef="${id}"/>
    <bpmn:correlationKey name="order_key"><bpmn:correlationPropertyRef>order_id</bpmn:correlationPropertyRef></bpmn:correlationKey>
  </bpmn:collaboration>
  ${correlation}
  <bpmn:process id="${id}" isExecutable="true">${body}</bpmn:process>
</bpmn:definitions>`;

const MODELS: Record<string, string> = {
  'spiff-receiver': defs(
    'spiff-receiver',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="paid"/>
     <bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="msg_paid"/></bpmn:intermediateCatchEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="paid" targetRef="e"/><bpmn:endEvent id="e"/>`,
  ),
  'spiff-thrower': defs(
    'spiff-thrower',
    `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="pay"/>
     <bpmn:intermediateThrowEvent id="pay"><bpmn:messageEventDefinition messageRef="msg_paid"/></bpmn:intermediateThrowEvent>
     <bpmn:sequenceFlow id="f2" sourceRef="pay" targetRef="e"/><bpmn:endEvent id="e"/>`,
  ),
};

const { call, instance, until, start } = apiClient(() => baton);

beforeAll(async () => {
  baton = await startDistributed(iso, ['api', 'step', 'service', 'scheduler']);
  const dep = await call('POST', '/v1/deployments', { files: Object.entries(MODELS).map(([k, content]) => ({ name: `${k}.bpmn`, content })) });
  expect(dep.status, JSON.stringify(dep.body)).toBe(201);
});

afterAll(async () => {
  await baton?.close();
  await iso.drop();
});

describe('SpiffArena message correlation', () => {
  it('registers the retrieval paths of each process at deploy', async () => {
    const rows = await baton.db.selectFrom('message_correlation').selectAll().orderBy('process_key').execute();
    expect(rows).toEqual([
      { process_key: 'spiff-receiver', message_name: 'order_paid', paths: ['order.id'] },
      { process_key: 'spiff-thrower', message_name: 'order_paid', paths: ['order.id'] },
    ]);
  });

  it('a published message without correlationKey is correlated by the key read from its payload; a thrown one by the thrower variables', async () => {
    const a = await start('spiff-receiver', { order: { id: 'A' } });
    const b = await start('spiff-receiver', { order: { id: 'B' } });
    expect(a.waits).toEqual([expect.objectContaining({ kind: 'message', name: 'order_paid', correlationKey: 'A' })]);
    expect(b.waits).toEqual([expect.objectContaining({ kind: 'message', name: 'order_paid', correlationKey: 'B' })]);

    const r = await call('POST', '/v1/messages', { name: 'order_paid', variables: { order: { id: 'B' }, paid: true } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ kind: 'correlated', instanceId: b.id, elementId: 'paid' });
    const doneB = await until(b.id, 'completed');
    expect(doneB.variables).toMatchObject({ order: { id: 'B' }, paid: true });
    expect((await instance(a.id)).status).toBe('waiting');

    // the same message for an order nobody waits for finds no one
    const none = await call('POST', '/v1/messages', { name: 'order_paid', variables: { order: { id: 'Z' } } });
    expect(none.status).toBe(404);
    expect((await instance(a.id)).status).toBe('waiting');

    const t = await start('spiff-thrower', { order: { id: 'A' }, via: 'throw' });
    await until(t.id, 'completed');
    const doneA = await until(a.id, 'completed');
    expect(doneA.variables).toMatchObject({ order: { id: 'A' }, via: 'throw' });
  });

  it('a new version of a process key replaces its registered paths', async () => {
    const plain = defs('spiff-thrower', `<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="e"/><bpmn:endEvent id="e"/>`);
    const dep = await call('POST', '/v1/deployments', { files: [{ name: 'spiff-thrower.bpmn', content: plain }] });
    expect(dep.status, JSON.stringify(dep.body)).toBe(201);
    const rows = await baton.db.selectFrom('message_correlation').select(['process_key', 'message_name']).orderBy('process_key').execute();
    expect(rows).toEqual([{ process_key: 'spiff-receiver', message_name: 'order_paid' }]);
  });
});
