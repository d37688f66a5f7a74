/**
 * The agent's lifecycle as an explicit state machine, and the pure function
 * that decides its next step.
 *
 *   booting ──registered──▶ serving ──drain (instruction, SIGUSR1, drain file,
 *      │                    │  ▲           deadline near)──▶ draining
 *      │                    │  └───────drain lifted (drain file removed)──┘ │
 *      │   halt / idle / orphan / deadline       last payload ended / halt / deadline / orphan
 *      │                    ▼                                  ▼
 *      └──halt / error──▶ halting ◀────────────────────────────┘
 *                           │  SIGTERM payloads, grace, SIGKILL, last reports,
 *                           ▼  shutdown_message, halt action
 *                         halted
 *
 * Rules, first match wins:
 *  1. halting or halted: stay (the halt sequence is under way).
 *  2. a halt was requested (instruction or signal): halt with its code at once.
 *  3. past the deadline (minus grace): halt 100 "deadline".
 *  4. nothing running and no successful server contact for orphanTimeoutSec
 *     (> 0): halt 700.
 *  5. draining, no drain asked for any more and the deadline not near: back to serving.
 *  6. draining with no payload running: halt 100 "drained".
 *  7. serving and a drain was requested: drain with its reason.
 *  8. serving and the deadline is near (within drainLeadSec): drain.
 *  9. serving, nothing running, idleTimeoutSec > 0, and the server has said
 *     so: a match request that offered work was answered "nothing", and the
 *     time in which the server answered, since the last payload ran, adds up
 *     to idleTimeoutSec (and at least minLifetimeSec since boot): halt 300.
 *     Time without an answer is never idle time: an outage (calls refused,
 *     reset, timed out, or answered late) pauses the idle time, and after it
 *     the pilot must ask once more and hear "nothing" (monitor/idle.ts). The
 *     rule fires on that answer, never on a timer; a server that does not
 *     come back is left to the orphan timeout (rule 4).
 * 10. otherwise stay, and wake again at the next moment a rule can fire.
 *
 * A drain asked for by an instruction, SIGUSR1 or SIGTERM is kept until the
 * halt; a drain because of a drain file lasts as long as the file (the pilot
 * passes `drainRequested` null once it is gone), so removing the file puts a
 * draining agent back to serving.
 */
import { ShutdownCode, type EvictionReason, type LifecycleState } from '../../protocol/index.js';
import { idleHaltBy, type IdleEvidence } from './idle.js';

/** Allowed transitions of the lifecycle. */
export const TRANSITIONS: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  booting: ['serving', 'halting'],
  serving: ['draining', 'halting'],
  draining: ['serving', 'halting'],
  halting: ['halted'],
  halted: [],
};

/** True when the lifecycle may move from `from` to `to`. */
export function canTransition(from: LifecycleState, to: LifecycleState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** A halt asked for by an instruction or a signal. */
export interface HaltRequest {
  code: number;
  reason: string;
  /** Why payloads the halt stops are stopped, as the server is told (default `halt`). */
  eviction?: EvictionReason;
  /**
   * A start-up problem: the agent never served (registration refused, the
   * server unreachable until the orphan timeout, a bootstrap step failed, an
   * internal error). It is logged as an error and said in one plain line on
   * stderr before the halt action.
   */
  fatal?: boolean;
}

/** The knobs of the halt policy (configuration, changed by `set` instructions). */
export interface LifecyclePolicy {
  /** 0 disables the idle halt. */
  idleTimeoutSec: number;
  /** No idle halt before this many seconds after boot. */
  minLifetimeSec: number;
  /** Halt 700 after this long without server contact and nothing running; 0 disables. */
  orphanTimeoutSec: number;
  /** Start draining this many seconds before `haltBy`. */
  drainLeadSec: number;
}

/** Everything the lifecycle decision depends on. */
export interface LifecycleInputs extends LifecyclePolicy {
  now: number;
  state: LifecycleState;
  runningCount: number;
  /** When the agent started. */
  bootAt: number;
  /** The last moment a payload was running, or boot time when none ever ran. */
  lastBusyAt: number;
  /** The last successful call to the server (or boot time). */
  lastContactAt: number;
  /** The server's answers, for the idle rule (pilot/contact.ts keeps them). */
  idle: IdleEvidence;
  /** The reason of a drain in force, or null. */
  drainRequested: string | null;
  haltRequested: HaltRequest | null;
  /** When to start halting (the deadline minus the grace period), or null. */
  haltBy: number | null;
}

/** What the agent does next. `wakeAt` is when to decide again at the latest (null: on the next event). */
export type LifecycleDecision =
  | { kind: 'stay'; wakeAt: number | null }
  | { kind: 'drain'; reason: string }
  | { kind: 'resume'; reason: string }
  | { kind: 'halt'; code: number; reason: string; eviction?: EvictionReason };

const earliest = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.min(a, b));

/** Decide the next lifecycle step. Pure. */
export function decideLifecycle(i: LifecycleInputs): LifecycleDecision {
  if (i.state === 'halting' || i.state === 'halted') return { kind: 'stay', wakeAt: null };
  if (i.haltRequested) return { kind: 'halt', code: i.haltRequested.code, reason: i.haltRequested.reason };
  if (i.haltBy !== null && i.now >= i.haltBy) return { kind: 'halt', code: ShutdownCode.REQUESTED, reason: 'deadline', eviction: 'deadline' };
  let wakeAt = i.haltBy;
  if (i.runningCount === 0 && i.orphanTimeoutSec > 0) {
    const orphanAt = i.lastContactAt + i.orphanTimeoutSec * 1000;
    if (i.now >= orphanAt) {
      return { kind: 'halt', code: ShutdownCode.TRANSIENT, reason: `server unreachable for ${Math.floor((i.now - i.lastContactAt) / 1000)} s` };
    }
    wakeAt = earliest(wakeAt, orphanAt);
  }
  const drainAt = i.haltBy === null ? null : i.haltBy - i.drainLeadSec * 1000;
  const deadlineNear = drainAt !== null && i.now >= drainAt;
  if (i.state === 'draining') {
    if (i.drainRequested === null && !deadlineNear) return { kind: 'resume', reason: 'drain lifted' };
    if (i.runningCount === 0) return { kind: 'halt', code: ShutdownCode.REQUESTED, reason: 'drained' };
    return { kind: 'stay', wakeAt };
  }
  if (i.state !== 'serving') return { kind: 'stay', wakeAt };
  if (i.drainRequested !== null) return { kind: 'drain', reason: i.drainRequested };
  if (deadlineNear) return { kind: 'drain', reason: `deadline in ${Math.ceil((i.haltBy! - i.now) / 1000)} s` };
  wakeAt = earliest(wakeAt, drainAt);
  if (i.runningCount === 0 && i.idleTimeoutSec > 0) {
    // on the server's answer only: the match loop asks so that it comes when the timeout is due, and it wakes us
    const idle = idleHaltBy(i);
    if (idle) return { kind: 'halt', code: ShutdownCode.NO_WORK, reason: `idle for ${Math.floor(idle.idleMs / 1000)} s` };
  }
  return { kind: 'stay', wakeAt };
}
