/**
 * BPMN coverage end to end through the API (issue 3's required scenarios):
 * a BPMN error from an external worker caught by a boundary event on the
 * service task; the "approve when 2 of 3 said yes" multi-instance with three
 * concurrent user tasks, the third cancelled; an error thrown in a called
 * child reaching the boundary event of the call activity.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { apiClient } from '../support/api.js';
import { eventually, isolation, startDistributed } from '../support/env.js';

const iso = isolation('coverage');
let baton: Baton;
const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

const CHILD_FAILS = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d-child-fails" targetNamespace="http://baton.dev/test">
  <bpmn:error id="err-out" name="Out of stock" errorCode="OUT_OF_STOCK" />
  <bpmn:process id="child-fails" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="check"/>
    <bpmn:scriptTask id="check" scriptFormat="javascript"><bpmn:script>checked = true;</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="fail"/>
    <bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="err-out"/></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>`;

const PARENT_CATCHES = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d-parent-catches" targetNamespace="http://baton.dev/test">
  <bpmn:error id="err-out-p" name="Out of stock" errorCode="OUT_OF_STOCK" />
  <bpmn:process id="parent-catches" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
    <bpmn:callActivity id="call" calledElement="child-fails"/>
    <bpmn:boundaryEvent id="caught" attachedToRef="call"><bpmn:errorEventDefinition errorRef="err-out-p"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="ok"/><bpmn:endEvent id="ok"/>
    <bpmn:sequenceFlow id="f3" sourceRef="caught" targetRef="handled"/><bpmn:endEvent id="handled"/>
  </bpmn:process>
</bpmn:definitions>`;

const { call, until } = apiClient(() => baton);
const path = async (id: string) =>
  (await call('GET', `/v1/process-instances/${id}/history`)).body.items
    .filter((h: { event: string }) => h.event === 'element_started')
    .map((h: { elementId: string }) => h.elementId);

beforeAll(async () => {
  baton = await startDistributed(iso, ['api', 'step', 'service', 'scheduler']);
  const dep = await call('POST', '/v1/deployments', {
    files: [
      { name: 'boundary-service-error.bpmn', content: fixture('boundary-service-error.bpmn') },
      { name: 'mi-approval-2-of-3.bpmn', content: fixture('mi-approval-2-of-3.bpmn') },
      { name: 'child-fails.bpmn', content: CHILD_FAILS },
      { name: 'parent-catches.bpmn', content: PARENT_CATCHES },
    ],
  });
  expect(dep.status, JSON.stringify(dep.body)).toBe(201);
});

afterAll(async () => {
  await baton?.close();
  await iso.drop();
});

describe('BPMN coverage through the API', () => {
  it('a BPMN error from an external worker is caught by the boundary event on the service task', async () => {
    const i = (await call('POST', '/v1/process-instances', { processKey: 'boundary_service_error', waitMs: 10_000 })).body;
    expect(i.activeElements).toEqual(['charge']);
    const job = (await call('POST', '/v1/external-tasks/fetch-and-lock', { workerId: 'w', topics: ['payment'], maxTasks: 10 })).body.items.find(
      (t: { processInstanceId: string }) => t.processInstanceId === i.id,
    );
    const r = await call('POST', `/v1/external-tasks/${job.id}/bpmn-error`, { workerId: 'w', errorCode: 'PAYMENT_DECLINED', message: 'card declined' });
    expect(r.status).toBe(204);
    const waiting = await eventually(async () => {
      const x = (await call('GET', `/v1/process-instances/${i.id}`)).body;
      return x.activeElements.includes('notify') ? x : null;
    });
    expect(waiting).toMatchObject({ status: 'waiting', incidents: [] });
    expect(await path(i.id)).toEqual(['start', 'charge', 'declined', 'notify']);
  });

  it('approves when 2 of 3 approvers said yes, cancelling the third task', async () => {
    const i = (await call('POST', '/v1/process-instances', { processKey: 'approval_2_of_3', variables: { approvers: ['ann', 'bob', 'cy'] }, waitMs: 10_000 })).body;
    const tasks = (await call('GET', `/v1/tasks?processInstanceId=${i.id}&state=open`)).body.items;
    expect(tasks).toHaveLength(3);
    expect(tasks.map((t: { elementId: string }) => t.elementId)).toEqual(['approve', 'approve', 'approve']);
    await call('POST', `/v1/tasks/${tasks[0].id}/complete`, { variables: { approved: true }, waitMs: 10_000 });
    const mid = (await call('GET', `/v1/tasks?processInstanceId=${i.id}&state=open`)).body.items;
    expect(mid).toHaveLength(2);
    const done = await call('POST', `/v1/tasks/${tasks[2].id}/complete`, { variables: { approved: true }, waitMs: 10_000 });
    expect(done.body.instance).toMatchObject({ status: 'completed', variables: { decision: 'approved', yes: 2 } });
    const all = (await call('GET', `/v1/tasks?processInstanceId=${i.id}`)).body.items;
    expect(all.map((t: { id: string; state: string }) => [t.id, t.state])).toEqual([
      [tasks[0].id, 'completed'],
      [tasks[1].id, 'cancelled'],
      [tasks[2].id, 'completed'],
    ]);
  });

  it('an error thrown in a called child reaches the boundary event of the call activity', async () => {
    const parent = (await call('POST', '/v1/process-instances', { processKey: 'parent-catches', waitMs: 10_000 })).body;
    const done = await until(parent.id, 'completed');
    expect(done.incidents).toEqual([]);
    expect(await path(parent.id)).toEqual(['s', 'call', 'caught', 'handled']);
    const children = (await call('GET', '/v1/process-instances?processKey=child-fails')).body.items.filter(
      (c: { parentInstanceId: string }) => c.parentInstanceId === parent.id,
    );
    expect(children).toHaveLength(1);
    expect(['completed', 'terminated']).toContain(children[0].status);
  });
});
