/**
 * The list of migrations, in order. A static list (not a folder scan) so it
 * works the same from TypeScript sources, a bundle or a container image.
 */
import type { Migration } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_waits.js';
import * as m0003 from './0003_message_correlation.js';
import * as m0004 from './0004_incidents_and_retries.js';
import * as m0005 from './0005_history_batches.js';
import * as m0006 from './0006_start_request_id.js';
import * as m0007 from './0007_step_guard.js';
import * as m0008 from './0008_idempotency_scope.js';
import * as m0009 from './0009_definition_language.js';
import * as m0010 from './0010_inbox_attempts.js';

export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_waits': m0002,
  '0003_message_correlation': m0003,
  '0004_incidents_and_retries': m0004,
  '0005_history_batches': m0005,
  '0006_start_request_id': m0006,
  '0007_step_guard': m0007,
  '0008_idempotency_scope': m0008,
  '0009_definition_language': m0009,
  '0010_inbox_attempts': m0010,
};
