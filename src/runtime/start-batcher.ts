/**
 * Inline starts share statements when they arrive together.
 *
 * A start that runs straight through (or up to its first wait) is one INSERT
 * statement and one commit. Under load most of what that costs is per
 * statement, not per row: the round trip, the commit's WAL flush, and on this
 * kind of machine above all the system call that writes the statement and
 * wakes the Postgres backend. So starts go out in batches: while fewer than
 * `maxInFlight` batches are in flight a start is sent at once, alone (no added
 * latency when the API is quiet); otherwise it waits for one to return and
 * goes with everything that queued meanwhile, up to `maxSize`.
 *
 * Nothing about the starts' meaning changes: each instance's row, start event,
 * history and first tasks/jobs/timers are written together, by the statement
 * of its batch, before its request is answered. A batch is all or nothing, so
 * when its statement fails for a reason other than a lost connection (one
 * start's data that Postgres refuses, say), every start in it is tried again
 * alone and only the one at fault fails.
 */
import type { Db } from '../store/db.js';
import { isConnectionError } from '../store/db.js';
import type { ProcessInstanceRow } from '../store/schema.js';
import { insertSteppedInstances, type SteppedInstance } from '../store/step.js';

export type StartWritten = { row: ProcessInstanceRow; inboxId: number } | undefined;

export interface StartBatcher {
  /** Writes one stepped start (with others that arrive meanwhile); undefined when it was not written (stale, or its request id is taken). */
  insert(start: SteppedInstance): Promise<StartWritten>;
}

export interface StartBatchOptions {
  /** batches whose statement is running at once (each holds a database connection) */
  maxInFlight: number;
  /** starts in one statement at most */
  maxSize: number;
}

interface Waiting {
  start: SteppedInstance;
  resolve: (w: StartWritten) => void;
  reject: (err: unknown) => void;
}

export function createStartBatcher(db: Db, options: StartBatchOptions): StartBatcher {
  const queue: Waiting[] = [];
  let inFlight = 0;

  function pump(): void {
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, options.maxSize);
      inFlight++;
      void send(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  async function send(batch: Waiting[]): Promise<void> {
    try {
      const written = await insertSteppedInstances(db, batch.map((w) => w.start));
      batch.forEach((w, k) => w.resolve(written[k]));
    } catch (err) {
      if (batch.length === 1 || isConnectionError(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      await Promise.all(
        batch.map(async (w) => {
          try {
            w.resolve((await insertSteppedInstances(db, [w.start]))[0]);
          } catch (one) {
            w.reject(one);
          }
        }),
      );
    }
  }

  return {
    insert(start) {
      return new Promise<StartWritten>((resolve, reject) => {
        queue.push({ start, resolve, reject });
        pump();
      });
    },
  };
}
