/**
 * The report outbox. Every report gets the next `seq` and is saved in the
 * state BEFORE it is sent; it leaves the outbox only when the server's
 * `appliedSeq` covers it or the server refused it. Reports go in seq order,
 * in batches; a failed send is retried after a short, jittered wait
 * (control/retry.ts), and at once when the server is back (`kick`).
 */
import { LIMITS, type Instruction, type Report } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { retryDelayMs } from '../control/retry.js';
import type { ControlPlane } from '../ports.js';
import { Wakeup } from '../wakeup.js';
import type { StateKeeper } from './state-keeper.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A report before it is numbered and stamped. */
export type ReportDraft = DistributiveOmit<Report, 'seq' | 'at'>;

/** Backoff after the n-th consecutive failure (n ≥ 1): 1 s, 2 s, 4 s … up to 30 s. */
export function backoffMs(failures: number, baseMs = 1000, maxMs = 30_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
}

/** The outbox of one pilot. */
export class Outbox {
  private readonly wake: Wakeup;
  private sending: Promise<boolean> | null = null;
  private failures = 0;
  /**
   * Reports known to be saved. Only saved reports are sent: a report the
   * server applied but the state file never held would have its seq used
   * again after a crash, and the server would drop the new report under it
   * as a duplicate.
   */
  private readonly saved = new WeakSet<Report>();
  /** Called with the reports that just left the outbox (applied or refused by the server). */
  onSettled: (reports: Report[]) => void = () => undefined;

  constructor(
    private readonly keeper: StateKeeper,
    private readonly control: ControlPlane,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onInstructions: (instructions: Instruction[]) => void,
    readonly batchSize = 100,
    /** [0, 1), for the retry jitter. */
    private readonly random: () => number = Math.random,
  ) {
    this.wake = new Wakeup(clock);
    // what the state holds when the outbox is built was loaded from disk (or is empty)
    for (const r of keeper.state.outbox) this.saved.add(r);
  }

  /** Reports waiting to be delivered. */
  get pending(): readonly Report[] {
    return this.keeper.state.outbox;
  }

  /** Number, stamp and save a report, then wake the sender. Resolves once it is saved. */
  async add(draft: ReportDraft): Promise<Report> {
    const state = this.keeper.state;
    const report = { ...draft, seq: ++state.seq, at: this.clock.now() } as Report;
    state.outbox.push(report);
    await this.keeper.persist();
    this.saved.add(report);
    this.wake.poke();
    return report;
  }

  /** The server is back: forget the backoff and send now. */
  kick(): void {
    this.failures = 0;
    this.wake.poke();
  }

  /** Send one batch; true when the outbox is empty afterwards. Never throws. */
  flushOnce(): Promise<boolean> {
    this.sending ??= this.sendBatch().finally(() => {
      this.sending = null;
    });
    return this.sending;
  }

  /** Keep sending until `stop` aborts; back off after failures. */
  async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      const v = this.wake.version;
      if (this.sendable.length === 0) {
        // nothing, or only reports still being saved: add() wakes us once they are
        await this.wait(v, 3_600_000, stop);
        continue;
      }
      const empty = await this.flushOnce();
      if (this.failures > 0) await this.wait(v, retryDelayMs(this.failures, this.random()), stop);
      else if (!empty) continue;
    }
  }

  /** Try to deliver everything before `until` (ms epoch); true when all was delivered. */
  async drain(until: number): Promise<boolean> {
    while (this.pending.length > 0 && this.clock.now() < until) {
      if (this.sendable.length === 0) {
        await this.clock.sleep(10); // a report is being saved
        continue;
      }
      if (await this.flushOnce()) return true;
      if (this.failures > 0) await this.clock.sleep(Math.min(backoffMs(this.failures, 250, 2000), Math.max(0, until - this.clock.now())));
    }
    return this.pending.length === 0;
  }

  private async wait(since: number, ms: number, stop: AbortSignal): Promise<void> {
    const onStop = () => this.wake.poke();
    stop.addEventListener('abort', onStop, { once: true });
    try {
      await this.wake.wait(since, ms);
    } finally {
      stop.removeEventListener('abort', onStop);
    }
  }

  /** Reports that are saved and may be sent, in seq order. */
  private get sendable(): Report[] {
    return this.keeper.state.outbox.filter((r) => this.saved.has(r));
  }

  private async sendBatch(): Promise<boolean> {
    const state = this.keeper.state;
    const batch = this.sendable.slice(0, Math.min(this.batchSize, LIMITS.reportsPerRequest));
    if (batch.length === 0) return state.outbox.length === 0;
    try {
      const reply = await this.control.report(batch);
      const refused = new Set(reply.refused.map((r) => r.seq));
      for (const r of reply.refused) this.log.warn({ seq: r.seq, code: r.code, reason: r.message }, 'report refused');
      const before = state.outbox.length;
      const settled = state.outbox.filter((r) => r.seq <= reply.appliedSeq || refused.has(r.seq));
      state.outbox = state.outbox.filter((r) => r.seq > reply.appliedSeq && !refused.has(r.seq));
      // No progress (the server applied none of the batch) counts as a failure, so we back off.
      this.failures = state.outbox.length < before ? 0 : this.failures + 1;
      await this.keeper.persist();
      if (settled.length > 0) this.onSettled(settled);
      if (reply.instructions.length > 0) this.onInstructions(reply.instructions);
      return state.outbox.length === 0;
    } catch (err) {
      this.failures++;
      this.log.warn({ err: describeError(err), failures: this.failures, pending: state.outbox.length }, 'reports not sent');
      return false;
    }
  }
}
