/**
 * The stall sweep: every `everyMs` (on the Clock port), pilots with no
 * contact for `stallAfterSec` become stalled and their payloads go back to
 * the queue (or fail when no attempt is left). Wakes waiting matches when
 * payloads were requeued. With several replicas on one database it runs on
 * the elected leader only (leader.ts); a new Sweeper each time this replica
 * becomes the leader.
 */
import type { Clock } from '../shared/clock.js';
import { describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ServerMetrics } from './metrics/server-metrics.js';
import type { Store, SweepResult } from './store/store.js';

/** What the sweeper needs. */
export interface SweeperOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  stallAfterSec: number;
  /** How often to sweep (default: a tenth of stallAfterSec, 1 to 60 s). */
  everyMs?: number;
  metrics?: ServerMetrics;
  /** Called after a sweep that requeued payloads (wake the match waiters). */
  onRequeued?: () => void;
}

/** Runs the sweep in a loop until stopped. */
export class Sweeper {
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;
  readonly everyMs: number;

  constructor(private readonly o: SweeperOptions) {
    this.everyMs = o.everyMs ?? Math.min(60_000, Math.max(1000, (o.stallAfterSec * 1000) / 10));
  }

  /** One sweep now. */
  async sweep(): Promise<SweepResult> {
    const now = this.o.clock.now();
    const r = await this.o.store.sweepStalled(now - this.o.stallAfterSec * 1000, now);
    this.o.metrics?.sweeps.inc();
    if (r.stalled.length > 0) {
      this.o.log.warn({ pilots: r.stalled, requeued: r.requeued, failed: r.failed, cancelled: r.cancelled }, 'pilots stalled');
      this.o.metrics?.stalled.inc({}, r.stalled.length);
      this.o.metrics?.requeued.inc({}, r.requeued.length);
    }
    if (r.requeued.length > 0) this.o.onRequeued?.();
    return r;
  }

  /** Start sweeping every `everyMs`. */
  start(): void {
    this.loop ??= (async () => {
      while (!this.stop.signal.aborted) {
        await this.o.clock.sleep(this.everyMs, this.stop.signal);
        if (this.stop.signal.aborted) break;
        await this.sweep().catch((err: unknown) => this.o.log.error({ err: describeError(err) }, 'stall sweep failed'));
      }
    })();
  }

  /** Stop and wait for a sweep in progress. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }
}
