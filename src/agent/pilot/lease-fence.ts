/**
 * The lease fence, acted out (the decision is monitor/lease.ts): when the
 * pilot has not reached the server for nearly its lease, stop every payload
 * so that none is still running when the server gives it to another pilot.
 * The pilot carries on: the payloads are reported ended with the reason
 * (the server refuses those reports when it has requeued them, which is
 * fine), and it asks for work again once those reports are delivered.
 */
import type { Assignment, Report } from '../../protocol/index.js';
import type { Logger } from '../../shared/log.js';
import { decideFence } from '../monitor/lease.js';
import type { PayloadBook } from '../payload/book.js';
import type { PayloadSupervisor } from '../payload/supervisor.js';

/** What the fence reads and acts on. */
export interface LeaseFenceDeps {
  /** Send time of the last call the server accepted (pilot/contact.ts). */
  leaseFrom(): number;
  /** The lease the server gave (s), or null: no fence. */
  leaseSec(): number | null;
  graceSec(): number;
  payloads: Pick<PayloadSupervisor, 'stopAll' | 'ids' | 'activeCount'>;
  /** Reports not yet delivered. */
  pending(): readonly Report[];
  book: Pick<PayloadBook, 'renewAttempt'>;
  log: Logger;
}

/** Payloads this pilot stopped because of the lease: a later hand-out of one is a new attempt. */
export class LeaseFence {
  private readonly fenced = new Set<number>();

  constructor(private readonly d: LeaseFenceDeps) {}

  /** Fence when the lease is running out; the latest moment to look again (null: no need). */
  check(now: number): number | null {
    const d = this.d;
    const f = decideFence({ now, leaseFrom: d.leaseFrom(), leaseSec: d.leaseSec(), graceSec: d.graceSec(), runningCount: d.payloads.activeCount });
    if (f.kind === 'ok') return f.wakeAt;
    // stopped for the lease, not their own doing: the server queues them again
    const ids = d.payloads.stopAll(f.reason, f.graceMs, 'lease');
    for (const id of ids) this.fenced.add(id);
    d.log.warn({ payloads: ids, graceMs: f.graceMs, leaseSec: d.leaseSec() }, 'lease running out: payloads stopped');
    return null;
  }

  /** True while a fenced payload's end report waits in the outbox: ask for no work until the server has it. */
  get reportsPending(): boolean {
    if (this.fenced.size === 0) return false;
    return this.d.pending().some((r) => r.type === 'payload-ended' && this.fenced.has(r.payloadId)) || this.d.payloads.ids.some((id) => this.fenced.has(id));
  }

  /**
   * A fenced payload handed out again, after its end report was delivered:
   * the server requeued it (the report was refused), so this is a new attempt
   * and may start. True when `a` was such a payload (it is no longer counted
   * as started).
   */
  async renew(a: Assignment): Promise<boolean> {
    if (!this.fenced.has(a.id) || this.reportsPending) return false;
    this.fenced.delete(a.id);
    await this.d.book.renewAttempt(a.id);
    this.d.log.info({ payloadId: a.id }, 'fenced payload handed out again: a new attempt');
    return true;
  }
}
