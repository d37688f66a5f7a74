/**
 * The pilot's lifecycle as it stands, and what steers it: the state
 * (booting … halted), the halt asked for (a value: who asked, why, which
 * code, what the server hears stopped the payloads), the drain asked for
 * and the operator's drain file, the idle timeout in force, and when the
 * pilot booted and was last busy. The lifecycle loop (pilot/lifecycle-loop.ts)
 * reads it and decides (monitor/lifecycle.ts); other parts only ask
 * (`requestHalt`, `requestDrain`) or tell (`busyAt`, `setDrainFile`).
 */
import type { EvictionReason, LifecycleState } from '../../protocol/index.js';
import type { Logger } from '../../shared/log.js';
import { canTransition, type HaltRequest } from '../monitor/lifecycle.js';
import type { ReportDraft } from '../state/outbox.js';
import type { Wakeup } from '../wakeup.js';
import type { MatchAbort } from './match-call.js';

/** Who asked for a halt: the server (an instruction), the process (a signal, a caller), or the agent itself. */
export type HaltSource = 'instruction' | 'signal' | 'agent';

/** A halt, as the lifecycle holds it and the halt sequence carries it out. */
export interface Halt {
  by: HaltSource;
  code: number;
  reason: string;
  /** What the server hears stopped the payloads still running (`halt`, `signal`, `deadline`, `error`). */
  eviction: EvictionReason;
  /** A start-up problem (see HaltRequest.fatal): said in one plain line on stderr. */
  fatal: boolean;
}

/** The agent's own halt from what a part returned (registration, bootstrap, the lifecycle decision). */
export function agentHalt(r: HaltRequest, eviction: EvictionReason): Halt {
  return { by: 'agent', code: r.code, reason: r.reason, eviction: r.eviction ?? eviction, fatal: r.fatal === true };
}

/**
 * The halt the sequence carries out once the run ends with `outcome`: its
 * code and reason, with the eviction of a halt asked for before it (a signal,
 * an instruction); a start-up problem only while no other halt was asked for.
 * Pure.
 */
export function finalHalt(requested: Halt | null, outcome: Halt): Halt {
  if (!requested) return outcome;
  return { ...outcome, by: requested.by, eviction: requested.eviction, fatal: outcome.fatal && requested.reason === outcome.reason };
}

/** The lifecycle state, the halt and drain asked for, and the idle policy in force. */
export class Lifecycle {
  private current: LifecycleState = 'booting';
  private asked: Halt | null = null;
  private drainAsked: string | null = null;
  private file: string | null = null;
  private bootedAt = 0;
  private busyUntil = 0;
  private idleSec: number;

  constructor(
    private readonly log: Logger,
    private readonly wake: Wakeup,
    private readonly match: MatchAbort,
    idleTimeoutSec: number,
  ) {
    this.idleSec = idleTimeoutSec;
  }

  /** When the agent started (ms epoch). */
  get bootAt(): number {
    return this.bootedAt;
  }

  /** The last moment a payload was running, or boot time. */
  get lastBusyAt(): number {
    return this.busyUntil;
  }

  /** The idle timeout in force (config, then `set` instructions), s. */
  get idleTimeoutSec(): number {
    return this.idleSec;
  }

  /** The lifecycle state now. */
  get state(): LifecycleState {
    return this.current;
  }

  /** The lifecycle state as the matcher sees it: halting as soon as a halt was asked for. */
  get effectiveState(): LifecycleState {
    return this.asked ? 'halting' : this.current;
  }

  /** The halt asked for, or null. */
  get halt(): Halt | null {
    return this.asked;
  }

  /** The reason of the drain in force (asked for, or a drain file present), or null. */
  get drainReason(): string | null {
    return this.drainAsked ?? (this.file ? `drain file ${this.file}` : null);
  }

  /** The operator's drain file found now (null: none). */
  get drainFile(): string | null {
    return this.file;
  }

  /** The agent booted at `now`. */
  boot(now: number): void {
    this.bootedAt = this.busyUntil = now;
  }

  /** A payload was running until `now`. */
  busyAt(now: number): void {
    this.busyUntil = now;
  }

  /** Ask for a halt: it happens at once; the first one asked for stands. */
  requestHalt(h: Omit<Halt, 'fatal'> & { fatal?: boolean }): void {
    if (this.asked) return;
    this.asked = { ...h, fatal: h.fatal === true };
    this.log.info({ code: h.code, reason: h.reason }, 'halt requested');
    this.changed();
  }

  /**
   * The run ended with `outcome`: the halt to carry out (finalHalt); from
   * now on the pilot counts as halting (no halt asked for later stands).
   */
  ending(outcome: Halt): Halt {
    const h = finalHalt(this.asked, outcome);
    this.asked ??= outcome;
    return h;
  }

  /** Ask for a drain: no new work, halt once running payloads end. Kept until the halt. */
  requestDrain(reason: string): void {
    if (this.drainAsked !== null) return;
    this.drainAsked = reason;
    this.log.info({ reason }, 'drain requested');
    this.changed();
  }

  /** The operator's drain file appeared or went (null). */
  setDrainFile(found: string | null): void {
    if (found === this.file) return;
    this.log.info({ file: found ?? this.file, present: found !== null }, found ? 'drain file found' : 'drain file removed');
    this.file = found;
    this.changed();
  }

  /** A `set` instruction: the idle timeout from now on. */
  setIdleTimeout(sec: number): void {
    this.idleSec = sec;
    this.wake.poke();
  }

  /** Move the state when allowed (logged, the loops woken); false when not allowed. */
  move(to: LifecycleState, reason: string): boolean {
    const from = this.current;
    if (!canTransition(from, to)) {
      this.log.error({ from, to, reason }, 'invalid transition');
      return false;
    }
    this.current = to;
    this.log.info({ from, to, reason }, 'state');
    this.wake.poke();
    return true;
  }

  private changed(): void {
    this.match.abort();
    this.wake.poke();
  }
}

/** What a lifecycle move tells beyond the log: a heartbeat at once, and a `state` report to a server that knows the pilot. */
export interface MoveAnnouncer {
  beatNow(): void;
  registered(): boolean;
  report(draft: ReportDraft): Promise<unknown>;
}

/** The full transition: move (when allowed), beat at once (unless halted) and report it. */
export function transitionOf(life: Pick<Lifecycle, 'move'>, say: MoveAnnouncer): (to: LifecycleState, reason: string) => Promise<void> {
  return async (to, reason) => {
    if (!life.move(to, reason)) return;
    if (to !== 'halted') say.beatNow();
    if (say.registered()) await say.report({ type: 'state', state: to, reason });
  };
}
