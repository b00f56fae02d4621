/** The same scenario in embedded mode: PGlite and the in-process queue, one process, no services. */
import { startEmbedded } from '../support/env.js';
import { defineScenario } from './scenario.js';

defineScenario('embedded mode (PGlite + in-process queue)', () => startEmbedded(), (b) => b.close());
