/**
 * The removal of ended payloads' directories (executor/payload-dirs.ts)
 * once the server has their end reports: none held here, none with a
 * record, none with a report still in the outbox; the newest are kept
 * unless the disk is short.
 */
import type { Report } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { pruneEndedDirs } from '../executor/payload-dirs.js';
import type { PayloadBook } from './book.js';
import type { PayloadSupervisor } from './supervisor.js';

const MIB = 1024 * 1024;

/** What the pruner reads. */
export interface DirPrunerDeps {
  stateDir: string;
  maxOutputMb: number;
  log: Logger;
  payloads: Pick<PayloadSupervisor, 'ids'>;
  book: Pick<PayloadBook, 'recordIds'>;
  /** Reports not yet delivered. */
  pending(): readonly Report[];
}

/** Removes ended payloads' directories; one prune at a time; never throws. */
export class DirPruner {
  private pruning: Promise<void> | null = null;
  private again = false;
  private last: Promise<void> = Promise.resolve();

  constructor(private readonly d: DirPrunerDeps) {}

  /** Settles when the removal under way is over (a new payload waits for the space). */
  settled(): Promise<void> {
    return this.last;
  }

  /** Prune now (or once more after the prune under way). */
  prune(): Promise<void> {
    if (this.pruning) {
      this.again = true;
      return this.pruning;
    }
    this.pruning = this.loop().finally(() => {
      this.pruning = null;
    });
    this.last = this.pruning;
    return this.pruning;
  }

  private async loop(): Promise<void> {
    const d = this.d;
    do {
      this.again = false;
      const inUse = new Set<number>([...d.payloads.ids, ...d.book.recordIds()]);
      for (const r of d.pending()) if ('payloadId' in r) inUse.add(r.payloadId);
      const removed = await pruneEndedDirs(d.stateDir, inUse, { shortBelowBytes: 2 * d.maxOutputMb * MIB }).catch((err: unknown) => {
        d.log.warn({ err: describeError(err) }, 'ended payload directories not removed');
        return [];
      });
      if (removed.length > 0) d.log.info({ payloads: removed }, 'ended payload directories removed');
    } while (this.again);
  }
}
