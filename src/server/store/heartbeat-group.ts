/**
 * Group commit for heartbeats: the heartbeats that arrive while one is
 * waiting to be written go into the same transaction, and each caller is
 * answered only once that transaction has committed. On SQLite a commit
 * (BEGIN, the WAL frames, COMMIT) costs more than a heartbeat's own reads
 * and update, so one commit for many heartbeats is most of a heartbeat's
 * database time saved.
 *
 * Each heartbeat is applied in a savepoint of its own inside the batch: one
 * that fails (its pilot deleted meanwhile, a constraint) is rolled back
 * alone and its caller gets its own error, while the others commit. When
 * the commit itself fails, nothing of the batch was written and every
 * caller in it gets that error: none is acknowledged before it is durable.
 *
 * The batch is written on the next turn of the event loop (the clock's
 * `sleep(0)`), so every heartbeat the server read meanwhile joins it; at
 * most `maxBatch` go into one transaction (a backlog is written in several,
 * each holding the event loop only briefly).
 */
import type { Clock } from '../../shared/clock.js';

/** One heartbeat waiting for its batch. */
interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** At most this many heartbeats in one transaction. */
export const MAX_BATCH = 256;

/**
 * Heartbeats `apply`d in batches: `tx(fn)` runs `fn` in a transaction, and a
 * `tx` called inside another is a savepoint of it (better-sqlite3's nesting).
 */
export class GroupCommit<T> {
  private waiting: Waiting<T>[] = [];
  private scheduled = false;

  constructor(
    private readonly tx: <R>(fn: () => R) => R,
    private readonly apply: (item: T) => void,
    private readonly clock: Clock,
    private readonly maxBatch = MAX_BATCH,
  ) {}

  /** Queue `item`; resolves once the transaction it went into has committed, or rejects with its own error or the commit's. */
  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** How many heartbeats wait for their batch. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Write everything that waits now, batch after batch (before the store closes). */
  flushAll(): void {
    while (this.waiting.length > 0) this.flush();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    void this.clock.sleep(0).then(() => {
      this.scheduled = false;
      this.flush();
      if (this.waiting.length > 0) this.schedule();
    });
  }

  /** One transaction of at most maxBatch heartbeats; then each caller is answered. */
  private flush(): void {
    const batch = this.waiting.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    const failed = new Map<Waiting<T>, unknown>();
    try {
      this.tx(() => {
        for (const w of batch) {
          try {
            this.tx(() => this.apply(w.item));
          } catch (err) {
            failed.set(w, err);
          }
        }
      });
    } catch (err) {
      // the commit (or the transaction's start) failed: nothing of this batch was written
      for (const w of batch) w.reject(err);
      return;
    }
    for (const w of batch) {
      if (failed.has(w)) w.reject(failed.get(w));
      else w.resolve();
    }
  }
}
