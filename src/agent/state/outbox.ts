/**
 * The report outbox. Every report gets the next `seq` and is saved in the
 * state BEFORE it is sent; it leaves the outbox only when the server's
 * `appliedSeq` covers it or the server refused it. Reports go in seq order,
 * in batches that start at the lowest undelivered report and have no gap
 * (the server refuses any other: it must never be made to drop a report as
 * a duplicate); a failed send is retried after a short, jittered wait
 * (control/retry.ts), and at once when the server is back (`kick`).
 *
 * The server's answer is checked, not believed: an `appliedSeq` above any
 * seq this pilot numbered, another report applied under one of its seqs
 * (VMP_REPORT_CONFLICT), or the server refusing its order (VMP_REPORT_SEQ)
 * means someone else reports with this pilot's credential. The outbox then
 * keeps its reports, stops sending and says so (`onFault`); the pilot
 * registers anew (pilot/identity-fault.ts).
 */
import { LIMITS, type Instruction, type Report } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { describeError, isVmpilotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { retryDelayMs } from '../control/retry.js';
import type { ControlPlane } from '../ports.js';
import { Wakeup } from '../wakeup.js';
import type { StateKeeper } from './state-keeper.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A report before it is numbered and stamped. */
export type ReportDraft = DistributiveOmit<Report, 'seq' | 'at'>;

/** The refusal code of a report applied under a seq that another report of this pilot already had. */
export const SEQ_CONFLICT = 'VMP_REPORT_CONFLICT';

/**
 * The most bytes of reports sent in one request: well under the server's
 * body limit (1 MiB), so that a batch of reports with long output tails is
 * never refused as too large, whatever piles up during an outage.
 */
export const BATCH_BYTES = 256 * 1024;

/** The server's record of this pilot's reports does not fit what it sent. */
export interface OutboxFault {
  why: string;
  /** The seq the server says it applied, when it said. */
  appliedSeq: number | null;
}

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
  /** Called once the server's answer shows another sender (see the top of this file); sending stops until `resume`. */
  onFault: (fault: OutboxFault) => void = () => undefined;
  /** Set while sending is stopped (a fault, until the pilot has a new identity). */
  private suspended = false;

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

  /** The last seq numbered. */
  get lastSeq(): number {
    return this.keeper.state.seq;
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

  /** Stop sending (the pilot's credential is not to be trusted); reports are kept and numbered as before. */
  suspend(): void {
    this.suspended = true;
  }

  /** Send again (the pilot has a new identity). */
  resume(): void {
    this.suspended = false;
    this.kick();
  }

  /** True while sending is stopped. */
  get isSuspended(): boolean {
    return this.suspended;
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
      if (this.suspended || this.sendable.length === 0) {
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
      if (this.suspended) return false;
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

  /**
   * Reports that may be sent, in seq order: those saved, up to the first one
   * not saved yet (sending past it would leave a gap the server refuses).
   */
  private get sendable(): Report[] {
    const outbox = this.keeper.state.outbox;
    const firstUnsaved = outbox.findIndex((r) => !this.saved.has(r));
    return firstUnsaved === -1 ? outbox : outbox.slice(0, firstUnsaved);
  }

  /** The next batch: at most `batchSize` reports and BATCH_BYTES of JSON (always at least one report). */
  private nextBatch(): Report[] {
    const batch: Report[] = [];
    let bytes = 0;
    for (const r of this.sendable) {
      if (batch.length >= Math.min(this.batchSize, LIMITS.reportsPerRequest)) break;
      bytes += Buffer.byteLength(JSON.stringify(r)) + 1;
      if (batch.length > 0 && bytes > BATCH_BYTES) break;
      batch.push(r);
    }
    return batch;
  }

  /** Stop sending and tell the pilot: the server's record of our reports is not ours. */
  private fault(fault: OutboxFault): void {
    this.log.error({ ...fault, lastSeq: this.keeper.state.seq, pending: this.pending.length }, 'the server holds reports this pilot did not send');
    this.suspended = true;
    this.onFault(fault);
  }

  private async sendBatch(): Promise<boolean> {
    const state = this.keeper.state;
    if (this.suspended) return false;
    const batch = this.nextBatch();
    if (batch.length === 0) return state.outbox.length === 0;
    try {
      const reply = await this.control.report(batch);
      if (reply.appliedSeq > state.seq) {
        // never clear the outbox on such an answer: it would drop reports the server never had
        this.fault({ why: `the server applied seq ${reply.appliedSeq}, above the last this pilot numbered (${state.seq})`, appliedSeq: reply.appliedSeq });
        return false;
      }
      const conflict = reply.refused.find((r) => r.code === SEQ_CONFLICT);
      if (conflict) {
        this.fault({ why: `the server applied another report under seq ${conflict.seq}`, appliedSeq: reply.appliedSeq });
        return false;
      }
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
      if (isVmpilotError(err, 'VMP_REPORT_SEQ')) {
        const applied = err.details.appliedSeq;
        this.fault({ why: `the server refused our reports' order: ${describeError(err)}`, appliedSeq: typeof applied === 'number' ? applied : null });
        return false;
      }
      this.failures++;
      this.log.warn({ err: describeError(err), failures: this.failures, pending: state.outbox.length }, 'reports not sent');
      return false;
    }
  }
}
