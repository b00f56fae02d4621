/**
 * A readers-writer lock for the steps of one process (quarantine, see
 * StepRunner.run). Ordinary steps share it; an event's last allowed attempt
 * takes it alone, so that if the process dies during that attempt, it died
 * of that event and not of another step running beside it (whose events
 * would otherwise be counted, and set aside, with it). A waiting writer
 * holds new readers back.
 */
export interface StepLock {
  shared<T>(fn: () => Promise<T>): Promise<T>;
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export function createStepLock(): StepLock {
  let readers = 0;
  let writer = false;
  const waitingWriters: Array<() => void> = [];
  let waitingReaders: Array<() => void> = [];

  const wakeNext = () => {
    if (writer) return;
    if (waitingWriters.length > 0) {
      if (readers === 0) {
        writer = true;
        waitingWriters.shift()!();
      }
      return;
    }
    const rs = waitingReaders;
    waitingReaders = [];
    readers += rs.length;
    for (const r of rs) r();
  };

  return {
    async shared(fn) {
      if (writer || waitingWriters.length > 0) await new Promise<void>((r) => waitingReaders.push(r));
      else readers++;
      try {
        return await fn();
      } finally {
        readers--;
        wakeNext();
      }
    },
    async exclusive(fn) {
      if (writer || readers > 0 || waitingWriters.length > 0) await new Promise<void>((r) => waitingWriters.push(r));
      else writer = true;
      try {
        return await fn();
      } finally {
        writer = false;
        wakeNext();
      }
    },
  };
}
