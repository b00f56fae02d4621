/** The scenario against real Postgres and Redis: API, step worker, service worker and scheduler in this process. */
import { isolation, startDistributed } from '../support/env.js';
import { defineScenario } from './scenario.js';

const iso = isolation('distributed');
defineScenario(
  'distributed mode (Postgres + BullMQ)',
  () => startDistributed(iso, ['api', 'step', 'service', 'scheduler']),
  async (b) => {
    await b.close();
    await iso.drop();
  },
);
