/**
 * The lease fence, acted out (the decision is monitor/lease.ts): when the
 * pilot has not reached the server for nearly its lease, stop every payload
 * so that none is still running when the server gives it to another pilot.
 * The pilot carries on: the payloads are reported ended with the reason
 * (the server refuses those reports when it has requeued them, which is
 * fine), and it asks for work again once those reports are delivered.
 */
import type { Assignment } from '../../protocol/index.js';
import { decideFence } from '../monitor/lease.js';
import type { PilotCore } from './core.js';

/** Payloads this pilot stopped because of the lease: a later hand-out of one is a new attempt. */
export class LeaseFence {
  private readonly fenced = new Set<number>();

  constructor(private readonly p: PilotCore) {}

  /** Fence when the lease is running out; the latest moment to look again (null: no need). */
  check(now: number): number | null {
    const p = this.p;
    const d = decideFence({
      now,
      leaseFrom: p.control.leaseFrom,
      leaseSec: p.keeper.state.leaseSec ?? null,
      graceSec: p.res.graceSec(),
      runningCount: p.payloads.activeCount,
    });
    if (d.kind === 'ok') return d.wakeAt;
    // stopped for the lease, not their own doing: the server queues them again
    const ids = p.payloads.stopAll(d.reason, d.graceMs, 'lease');
    for (const id of ids) this.fenced.add(id);
    p.log.warn({ payloads: ids, graceMs: d.graceMs, leaseSec: p.keeper.state.leaseSec }, 'lease running out: payloads stopped');
    return null;
  }

  /** True while a fenced payload's end report waits in the outbox: ask for no work until the server has it. */
  get reportsPending(): boolean {
    if (this.fenced.size === 0) return false;
    return this.p.outbox.pending.some((r) => r.type === 'payload-ended' && this.fenced.has(r.payloadId)) || this.p.payloads.ids.some((id) => this.fenced.has(id));
  }

  /**
   * A fenced payload handed out again, after its end report was delivered:
   * the server requeued it (the report was refused), so this is a new attempt
   * and may start. True when `a` was such a payload (it is no longer counted
   * as started).
   */
  renew(a: Assignment): boolean {
    if (!this.fenced.has(a.id) || this.reportsPending) return false;
    this.fenced.delete(a.id);
    this.p.started.delete(a.id);
    this.p.keeper.state.started = this.p.keeper.state.started.filter((id) => id !== a.id);
    this.p.log.info({ payloadId: a.id }, 'fenced payload handed out again: a new attempt');
    return true;
  }
}
