/**
 * The payload book: the one owner of the saved payload records of the
 * agent's state, `running` (what a restart re-attaches to) and `started`
 * (the ids it never starts again), and of the in-memory copy of `started`
 * that the matcher reads. Every change is saved before its method resolves:
 * on its own, or with the report it goes with (the outbox saves the state
 * with each report, so the record and the report reach the disk together).
 *
 *   starting (record, pid 0, saved BEFORE the spawn) ─▶ started (pid, payload-started)
 *      ─▶ ended (record gone, payload-ended)
 *   refused (counted as started, payload-ended)
 *   renewAttempt / handBack (+ recovered) / newIdentity: a later hand-out is a new attempt
 */
import type { Assignment } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { payloadDir } from '../executor/payload-runner.js';
import type { AgentState } from '../ports.js';
import type { Outbox, ReportDraft } from '../state/outbox.js';
import { forgetIdentity } from '../state/restore.js';
import type { StateKeeper } from '../state/state-keeper.js';
import type { EndedPayload } from './supervisor.js';

/** The saved record of one payload held (see AgentState.running). */
export type RunningRecord = AgentState['running'][string];

/** Owns `running` and `started` of the saved state. */
export class PayloadBook {
  private readonly ever: Set<number>;
  /** Payloads a restart gave back to the queue: no work is asked for until their reports are delivered. */
  private readonly handedBack = new Set<number>();

  constructor(
    private readonly keeper: StateKeeper,
    private readonly outbox: Pick<Outbox, 'add' | 'pending'>,
    private readonly clock: Clock,
    private readonly stateDir: string,
  ) {
    this.ever = new Set(keeper.state.started);
  }

  /** Ids of payloads this pilot ever started (never start one twice). */
  get startedIds(): ReadonlySet<number> {
    return this.ever;
  }

  /** The server takes `evicted` on payload-ended (saved with the identity). */
  get acceptsEvicted(): boolean {
    return this.keeper.state.acceptsEvicted === true;
  }

  /** The record of payload `id`, when it is held. */
  record(id: number): Readonly<RunningRecord> | undefined {
    return this.keeper.state.running[String(id)];
  }

  /** Every record held. */
  records(): readonly Readonly<RunningRecord>[] {
    return Object.values(this.keeper.state.running);
  }

  /** Ids of every payload with a record. */
  recordIds(): number[] {
    return Object.keys(this.keeper.state.running).map(Number);
  }

  /** A copy of the records, as a previous run left them (restart recovery walks it). */
  leftovers(): AgentState['running'] {
    return { ...this.keeper.state.running };
  }

  /** Admitted: counted as started, and on disk (pid 0: starting) before its process is spawned. */
  async starting(a: Assignment, cores: number, gpus: readonly string[]): Promise<void> {
    this.markStarted(a.id);
    const dir = payloadDir(this.stateDir, a.id);
    this.keeper.state.running[String(a.id)] = { pid: 0, cores, startedAt: this.clock.now(), dir, assignment: a, ...(gpus.length > 0 ? { gpus: [...gpus] } : {}) };
    // saved BEFORE the process is spawned: a SIGKILL in between leaves a "starting" record, never an unknown payload
    await this.keeper.persist();
  }

  /** Refused (it cannot run here): counted as started, reported ended with `message`. */
  async refused(a: Assignment, message: string): Promise<void> {
    this.markStarted(a.id);
    await this.outbox.add({ type: 'payload-ended', payloadId: a.id, exitCode: null, signal: null, message });
  }

  /** Its process started: the record gets its pid, and the server hears it. */
  async started(a: Assignment, pid: number, cores: number): Promise<void> {
    const rec = this.keeper.state.running[String(a.id)];
    this.keeper.state.running[String(a.id)] = { ...(rec ?? { startedAt: this.clock.now(), dir: payloadDir(this.stateDir, a.id), assignment: a }), pid, cores };
    await this.outbox.add({ type: 'payload-started', payloadId: a.id, pid });
  }

  /** It ended: its record goes, and the server hears how; that the infrastructure stopped it only when it takes that. */
  async ended(a: Assignment, r: EndedPayload): Promise<void> {
    delete this.keeper.state.running[String(a.id)];
    await this.outbox.add({
      type: 'payload-ended',
      payloadId: a.id,
      exitCode: r.exitCode,
      signal: r.signal,
      ...(r.outputTail ? { outputTail: r.outputTail } : {}),
      ...(r.message ? { message: r.message } : {}),
      ...(r.timedOut ? { timedOut: true } : {}),
      ...(r.overMemory ? { overMemory: true } : {}),
      ...(r.cpuSec === undefined ? {} : { cpuSec: r.cpuSec }),
      ...(r.peakRssMb === undefined ? {} : { peakRssMb: r.peakRssMb }),
      ...(r.evicted && this.acceptsEvicted ? { evicted: { reason: r.evicted } } : {}),
    });
  }

  /** A payload the server requeued is handed out again (a lease fence stopped it here): a new attempt. */
  async renewAttempt(id: number): Promise<void> {
    this.unmarkStarted(id);
    await this.keeper.persist();
  }

  /** Restart recovery's report: a payload-ended or payload-released report also drops its record. */
  async recovered(draft: ReportDraft): Promise<void> {
    if (draft.type === 'payload-ended' || draft.type === 'payload-released') delete this.keeper.state.running[String(draft.payloadId)];
    await this.outbox.add(draft);
  }

  /** Drop a record without a report (restart recovery, the old identity refused). */
  async forget(id: number): Promise<void> {
    delete this.keeper.state.running[String(id)];
    await this.keeper.persist();
  }

  /**
   * A restart gives payload `id` back to the queue: a later hand-out is a
   * new attempt, and `handBackPending` holds the match loop until the server
   * has its report. Saved with that report (`recovered`), which follows.
   */
  handBack(id: number): void {
    this.unmarkStarted(id);
    this.handedBack.add(id);
  }

  /**
   * True while the report of a payload a restart gave back is still on its
   * way: the match loop asks for nothing until the server has it, so that the
   * report can only apply to the attempt it is about (a hand-out before it,
   * of the same payload queued again meanwhile, would take it).
   */
  handBackPending(): boolean {
    if (this.handedBack.size === 0) return false;
    if (this.outbox.pending.some((r) => 'payloadId' in r && this.handedBack.has(r.payloadId))) return true;
    this.handedBack.clear();
    return false;
  }

  /**
   * The identity is given up (state/restore.ts forgetIdentity: no records,
   * no reports); `stopped`, stopped here and requeued by the server, may run
   * here again under the new one. Saved.
   */
  async newIdentity(stopped: readonly number[] = []): Promise<void> {
    forgetIdentity(this.keeper.state);
    for (const id of stopped) this.unmarkStarted(id);
    await this.keeper.persist();
  }

  private markStarted(id: number): void {
    this.ever.add(id);
    this.keeper.state.started.push(id);
  }

  private unmarkStarted(id: number): void {
    this.ever.delete(id);
    this.keeper.state.started = this.keeper.state.started.filter((s) => s !== id);
  }
}
