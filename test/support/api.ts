/** A small client over `app.inject()` for end-to-end tests, shared by the integration files. */
import type { Baton } from '../../src/boot.js';
import { eventually } from './env.js';

export type Res = { status: number; body: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

export function apiClient(getBaton: () => Baton) {
  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown): Promise<Res> => {
    const res = await getBaton().app!.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}) });
    return { status: res.statusCode, body: res.body ? res.json() : null };
  };
  const instance = async (id: string) => (await call('GET', `/v1/process-instances/${id}`)).body;
  const until = (id: string, status: string, ms = 10_000) =>
    eventually(async () => {
      const i = await instance(id);
      return i.status === status ? i : null;
    }, ms, `${id} ${status}`);
  /** starts an instance and waits until it has no immediate work left */
  const start = async (processKey: string, variables: object = {}) =>
    (await call('POST', '/v1/process-instances', { processKey, variables, waitMs: 10_000 })).body;
  return { call, instance, until, start };
}

/** A `<bpmn:definitions>` around one process, for models written inline in tests. */
export const defs = (id: string, body: string, head = '') => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"
  id="defs-${id}" targetNamespace="http://baton.dev/test">
  ${head}
  <bpmn:process id="${id}" isExecutable="true">${body}</bpmn:process>
</bpmn:definitions>`;
