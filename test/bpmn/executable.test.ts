/**
 * isExecutable="false" processes (a partner's pool in a collaboration) are
 * skipped, as Camunda does; a deployment with nothing executable is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Baton } from '../../src/boot.js';
import { compileFiles } from '../../src/bpmn/index.js';
import { apiClient } from '../support/api.js';
import { isolation, startDistributed } from '../support/env.js';

const pool = (id: string, executable: string, body = `<bpmn:startEvent id="${id}_s" /><bpmn:sequenceFlow id="${id}_f" sourceRef="${id}_s" targetRef="${id}_e" /><bpmn:endEvent id="${id}_e" />`) =>
  `<bpmn:process id="${id}" ${executable}>${body}</bpmn:process>`;
const file = (...processes: string[]) => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://baton.test">
  ${processes.join('\n')}
</bpmn:definitions>`;

describe('compiling', () => {
  it('skips a non-executable pool beside an executable one, without validating it', async () => {
    // the partner's pool holds a construct Baton refuses: it is not looked at
    const partner = pool('partner', 'isExecutable="false"', '<bpmn:startEvent id="p_s" /><bpmn:sequenceFlow id="p_f" sourceRef="p_s" targetRef="p_c" /><bpmn:complexGateway id="p_c" />');
    const r = await compileFiles([{ name: 'collab.bpmn', content: file(pool('ours', 'isExecutable="true"'), partner) }]);
    expect(r.problems).toEqual([]);
    expect(r.processes.map((p) => p.key)).toEqual(['ours']);
    expect(r.notExecutable).toEqual([{ file: 'collab.bpmn', elementId: 'partner', message: `process 'partner' is not executable (isExecutable="false")` }]);
  });

  it('takes a process without the attribute as executable (Camunda 7)', async () => {
    const r = await compileFiles([{ name: 'plain.bpmn', content: file(pool('plain', '')) }]);
    expect(r.processes.map((p) => p.key)).toEqual(['plain']);
  });
});

describe('deploying', () => {
  const iso = isolation('executable');
  let baton: Baton;
  const { call } = apiClient(() => baton);
  beforeAll(async () => {
    baton = await startDistributed(iso, ['api']);
  });
  afterAll(async () => {
    await baton?.close();
    await iso.drop();
  });

  it('refuses a deployment where nothing is executable, naming the processes, and deploys nothing', async () => {
    const r = await call('POST', '/v1/deployments', { files: [{ name: 'doc.bpmn', content: file(pool('only_doc', 'isExecutable="false"')) }] });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'invalid_model', details: [{ elementId: 'only_doc' }] });
    expect(r.body.message).toMatch(/no executable process/);
    expect((await call('GET', '/v1/process-definitions/only_doc')).status).toBe(404);
  });

  it('deploys the executable pool of a collaboration and not the other, which cannot be started', async () => {
    const r = await call('POST', '/v1/deployments', { files: [{ name: 'collab.bpmn', content: file(pool('runs', 'isExecutable="true"'), pool('documents', 'isExecutable="false"')) }] });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.processes.map((p: { key: string }) => p.key)).toEqual(['runs']);
    const start = await call('POST', '/v1/process-instances', { processKey: 'documents' });
    expect(start.status).toBe(404);
    expect((await call('POST', '/v1/process-instances', { processKey: 'runs', waitMs: 5000 })).body.status).toBe('completed');
  });
});
