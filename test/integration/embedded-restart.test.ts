/**
 * Embedded mode keeps its data in BATON_DATA_DIR: an instance waiting at a user
 * task survives a restart, and the example model is not redeployed as a new
 * version on every start. Its folder is closed to group and others.
 */
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALL_ROLES, startBaton } from '../../src/boot.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../support/env.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (r: Response): Promise<any> => r.json();

const dir = mkdtempSync(join(tmpdir(), 'baton-embedded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const boot = () =>
  startBaton(loadConfig({ BATON_DATA_DIR: dir, PORT: '0', LOG_LEVEL: 'silent' }), ALL_ROLES, { port: 0, logger: silentLogger() });

describe('embedded mode on disk', () => {
  // two boots of PGlite on disk: ~10 s on an idle machine, several times that when the suite loads it
  it('keeps instances and deployments across a restart', { timeout: 90_000 }, async () => {
    // a data folder left open to others (umask 022) is closed at start: PGlite writes its files 0666 (security review C2)
    chmodSync(dir, 0o755);
    const first = await boot();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'pgdata')).mode & 0o077).toBe(0);
    let id: string;
    try {
      expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${first.url}/v1/process-instances`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ processKey: 'order-approval', variables: { price: 5000, qty: 1 }, waitMs: 10_000 }),
      });
      const body = (await res.json()) as { id: string };
      expect(body).toMatchObject({ status: 'waiting', activeElements: ['approve'] });
      id = body.id;
    } finally {
      await first.close();
    }

    const second = await boot();
    try {
      const defs = await json(await fetch(`${second.url}/v1/process-definitions/order-approval`));
      expect(defs).toMatchObject({ version: 1, versions: [1] });
      const tasks = await json(await fetch(`${second.url}/v1/tasks?processInstanceId=${id}&state=open`));
      expect(tasks.items).toHaveLength(1);
      const done = await json(
        await fetch(`${second.url}/v1/tasks/${tasks.items[0].id}/complete`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ variables: { approved: false }, waitMs: 10_000 }),
        }),
      );
      expect(done.instance).toMatchObject({ id, status: 'completed', variables: { approved: false, total: 5000 } });
      const history = await json(await fetch(`${second.url}/v1/process-instances/${id}/history`));
      expect(history.items.map((h: { elementId: string | null; event: string }) => `${h.event}:${h.elementId}`)).toContain('element_started:end-rejected');
    } finally {
      await second.close();
    }
  });
});
