/**
 * The payloads this pilot holds: start each, watch it, stop it (SIGTERM,
 * grace, SIGKILL), enforce its wall time, and tell the pilot when it started
 * and ended. Used cores are the sum of the allocations of held payloads,
 * counted from the moment a payload is accepted (before its process starts).
 * A payload stopped for the infrastructure's sake (a halt, SIGTERM, the
 * deadline, the lease) ends with the reason in `evicted`, so that the server
 * queues it again rather than failing it; the first reason to stop a payload
 * is the one it ends with.
 */
import type { Assignment, EvictionReason, PayloadHeartbeat } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import { CANNOT_START_EXIT, cannotStartMessage, collectResult, startPayload, type PayloadContext, type PayloadResult } from '../executor/payload-runner.js';
import type { PayloadProcess, ProcessRunner, ProcessSpec } from '../ports.js';

/** How a payload ended, as the supervisor tells the pilot. */
export type EndedPayload = PayloadResult & {
  timedOut?: boolean;
  /** Set when it was stopped for the infrastructure's sake, not its own or an administrator's. */
  evicted?: EvictionReason;
};

/** What the pilot hears from the supervisor. Both are awaited, in this order. */
export interface PayloadHooks {
  started(assignment: Assignment, pid: number, cores: number): Promise<void>;
  ended(assignment: Assignment, result: EndedPayload): Promise<void>;
}

interface Held {
  assignment: Assignment;
  cores: number;
  process: PayloadProcess | null;
  stopping: string | null;
  /** Why the infrastructure stopped it, when that is what stopped it first. */
  evicted: EvictionReason | null;
  timedOut: boolean;
  /** Grace before SIGKILL, when shorter than the pilot's (a lease fence). */
  graceMs: number | null;
  exited: AbortController;
  done: Promise<void>;
  /** When its wall clock started (ms epoch): when the watch began, or for an adopted payload when the previous run started it; null before. */
  wallFrom: number | null;
}

/** Supervises the payloads of one pilot. */
export class PayloadSupervisor {
  private readonly held = new Map<number, Held>();

  constructor(
    private readonly runner: ProcessRunner,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly stateDir: string,
    /** The base environment when a payload starts (payload/base-env.ts). */
    private readonly baseEnv: () => Readonly<Record<string, string>>,
    private readonly graceSec: () => number,
    private readonly hooks: PayloadHooks,
    /** What each payload starts with beyond its assignment ($JOBFEATURES, user, sandbox, output cap); its `release` is called once its processes are gone. */
    private readonly context: (a: Assignment, cores: number) => PayloadContext | null | Promise<PayloadContext | null> = () => null,
  ) {}

  /** Sum of the cores allocated to held payloads. */
  get usedCores(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.cores;
    return n;
  }

  /** Memory (MiB) the held payloads asked for. */
  get usedMemoryMb(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.assignment.memoryMb ?? 0;
    return n;
  }

  /** Ids of held payloads. */
  get ids(): number[] {
    return [...this.held.keys()];
  }

  /** When payload `id`'s wall-time clock started (ms epoch), or null when it has not (or is not held). */
  wallFrom(id: number): number | null {
    return this.held.get(id)?.wallFrom ?? null;
  }

  get count(): number {
    return this.held.size;
  }

  /** Held payloads not being stopped. */
  get activeCount(): number {
    let n = 0;
    for (const h of this.held.values()) if (!h.stopping) n++;
    return n;
  }

  /** The held payloads, as a heartbeat lists them. */
  heartbeatView(): PayloadHeartbeat[] {
    return [...this.held.values()].map((h) => ({
      id: h.assignment.id,
      state: h.stopping ? 'stopping' : h.process ? 'running' : 'starting',
      cores: h.cores,
    }));
  }

  /** Accept a payload at once (its cores count from now) and start it in the background. */
  accept(assignment: Assignment, cores: number): void {
    const h: Held = { assignment, cores, process: null, stopping: null, evicted: null, timedOut: false, graceMs: null, exited: new AbortController(), done: Promise.resolve(), wallFrom: null };
    this.held.set(assignment.id, h);
    h.done = this.supervise(h).catch((err: unknown) => {
      this.log.error({ payloadId: assignment.id, err: String(err) }, 'payload supervision failed');
    });
  }

  /**
   * Hold a payload that is already running (found again after an agent
   * restart): watch `process` until it ends, then report it like any other.
   * Its wall time counts from `startedAt` (when the previous run started it),
   * so a restart does not give it a new allowance.
   */
  adopt(assignment: Assignment, cores: number, process: PayloadProcess, spec: ProcessSpec, startedAt: number): void {
    const h: Held = { assignment, cores, process, stopping: null, evicted: null, timedOut: false, graceMs: null, exited: new AbortController(), done: Promise.resolve(), wallFrom: startedAt };
    this.held.set(assignment.id, h);
    h.done = this.watch(h, spec, process).catch((err: unknown) => {
      this.log.error({ payloadId: assignment.id, err: String(err) }, 'payload supervision failed');
    });
  }

  /**
   * SIGTERM the payload's group, then SIGKILL after the grace period (or
   * `graceMs` when given and shorter). `evicted`: the infrastructure stops it
   * (it is reported so, unless something else was stopping it already).
   * False when not held.
   */
  stop(payloadId: number, reason: string, graceMs?: number, evicted?: EvictionReason): boolean {
    const h = this.held.get(payloadId);
    if (!h) return false;
    if (h.stopping) {
      // already stopping with the normal grace: a shorter one (a lease fence) brings the SIGKILL forward
      if (graceMs !== undefined && h.process) void this.killAfter(h, graceMs);
      return true;
    }
    h.stopping = reason;
    h.evicted = evicted ?? null;
    if (graceMs !== undefined) h.graceMs = graceMs;
    this.log.info({ payloadId, reason }, 'payload stopping');
    void this.terminate(h);
    return true;
  }

  /** Stop every held payload (for the infrastructure's sake when `evicted` is given); returns the ids it stops. */
  stopAll(reason: string, graceMs?: number, evicted?: EvictionReason): number[] {
    const ids = this.ids;
    for (const id of ids) this.stop(id, reason, graceMs, evicted);
    return ids;
  }

  /** Resolves when every payload held now has ended and been reported. */
  async allDone(): Promise<void> {
    await Promise.all([...this.held.values()].map((h) => h.done));
  }

  private async terminate(h: Held): Promise<void> {
    if (!h.process) return; // supervise() signals it as soon as it starts
    h.process.signalGroup('SIGTERM');
    await this.killAfter(h, Math.min(this.graceSec() * 1000, h.graceMs ?? Infinity));
  }

  private async killAfter(h: Held, ms: number): Promise<void> {
    await this.clock.sleep(ms, h.exited.signal);
    if (!h.exited.signal.aborted) {
      this.log.warn({ payloadId: h.assignment.id }, 'payload killed after grace period');
      h.process?.signalGroup('SIGKILL');
    }
  }

  private async supervise(h: Held): Promise<void> {
    const a = h.assignment;
    let ctx: PayloadContext | null;
    try {
      ctx = await this.context(a, h.cores);
    } catch (err) {
      // no account, no sandbox: it cannot start as it must
      const message = cannotStartMessage(err);
      this.log.warn({ payloadId: a.id, reason: message }, 'payload cannot start');
      this.held.delete(a.id);
      await this.hooks.ended(a, { exitCode: CANNOT_START_EXIT, signal: null, outputTail: '', message });
      return;
    }
    const outcome = await startPayload(this.runner, this.stateDir, this.baseEnv(), a, h.cores, ctx);
    if (!outcome.started) {
      this.log.warn({ payloadId: a.id, reason: outcome.result.message }, 'payload cannot start');
      this.held.delete(a.id);
      await this.hooks.ended(a, outcome.result);
      return;
    }
    h.process = outcome.process;
    this.log.info({ payloadId: a.id, pid: outcome.process.pid, cores: h.cores }, 'payload started');
    await this.hooks.started(a, outcome.process.pid, h.cores);
    await this.watch(h, outcome.spec, outcome.process, ctx?.release);
  }

  /** From start (or adoption) to the end report; `release` once its processes are gone. */
  private async watch(h: Held, spec: ProcessSpec, process: PayloadProcess, release?: () => void): Promise<void> {
    const a = h.assignment;
    const outcome = { spec, process };
    if (h.stopping) void this.terminate(h);
    h.wallFrom ??= this.clock.now();
    if (a.wallSec !== null && a.wallSec > 0) void this.enforceWallTime(h, a.wallSec * 1000 - Math.max(0, this.clock.now() - h.wallFrom));
    const exit = await outcome.process.exited;
    h.exited.abort();
    // The payload ended: whatever it left behind in its tree goes too.
    outcome.process.signalGroup('SIGKILL');
    release?.();
    const message = h.timedOut ? `wall time of ${a.wallSec} s exceeded` : h.stopping ? `stopped: ${h.stopping}` : undefined;
    const result = await collectResult(outcome.spec, exit, message);
    this.held.delete(a.id);
    this.log.info({ payloadId: a.id, exitCode: exit.exitCode, signal: exit.signal }, 'payload ended');
    await this.hooks.ended(a, { ...result, ...(h.timedOut ? { timedOut: true } : {}), ...(h.evicted ? { evicted: h.evicted } : {}) });
  }

  /** Stop the payload when `leftMs` have passed (at once when none is left). */
  private async enforceWallTime(h: Held, leftMs: number): Promise<void> {
    await this.clock.sleep(Math.max(0, leftMs), h.exited.signal);
    if (h.exited.signal.aborted) return;
    h.timedOut = true;
    this.stop(h.assignment.id, 'wall time exceeded');
  }
}
