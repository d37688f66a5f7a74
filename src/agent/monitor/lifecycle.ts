/**
 * The agent's lifecycle as an explicit state machine, and the pure function
 * that decides its next step.
 *
 *   booting ──registered──▶ serving ──drain / SIGUSR1──▶ draining
 *      │                    │    ▲                          │
 *      │                    │    └──────(never back)────────┘ (draining is final)
 *      │          halt / idle / deadline          last payload ended / halt / deadline
 *      │                    ▼                          ▼
 *      └──halt / error──▶ halting ◀────────────────────┘
 *                           │  SIGTERM payloads, grace, SIGKILL, last reports,
 *                           ▼  shutdown_message, halt action
 *                         halted
 *
 * Rules, first match wins:
 *  1. halting or halted: stay (the halt sequence is under way).
 *  2. a halt was requested (instruction or signal): halt with its code at once.
 *  3. past the deadline (minus grace): halt 100 "deadline".
 *  4. draining with no payload running: halt 100 "drained".
 *  5. serving and a drain was requested: drain.
 *  6. serving, nothing running, idle for idleTimeoutSec (> 0): halt 300.
 *  7. otherwise stay, and wake again at the next moment a rule can fire.
 */
import { ShutdownCode, type LifecycleState } from '../../protocol/index.js';

/** Allowed transitions of the lifecycle. */
export const TRANSITIONS: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  booting: ['serving', 'halting'],
  serving: ['draining', 'halting'],
  draining: ['halting'],
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
}

/** Everything the lifecycle decision depends on. */
export interface LifecycleInputs {
  now: number;
  state: LifecycleState;
  runningCount: number;
  /** The last moment a payload was running, or boot time when none ever ran. */
  lastBusyAt: number;
  /** 0 disables the idle halt. */
  idleTimeoutSec: number;
  /** The reason of a drain request, or null. */
  drainRequested: string | null;
  haltRequested: HaltRequest | null;
  /** When to start halting (the deadline minus the grace period), or null. */
  haltBy: number | null;
}

/** What the agent does next. `wakeAt` is when to decide again at the latest (null: on the next event). */
export type LifecycleDecision =
  | { kind: 'stay'; wakeAt: number | null }
  | { kind: 'drain'; reason: string }
  | { kind: 'halt'; code: number; reason: string };

/** Decide the next lifecycle step. Pure. */
export function decideLifecycle(i: LifecycleInputs): LifecycleDecision {
  if (i.state === 'halting' || i.state === 'halted') return { kind: 'stay', wakeAt: null };
  if (i.haltRequested) return { kind: 'halt', code: i.haltRequested.code, reason: i.haltRequested.reason };
  if (i.haltBy !== null && i.now >= i.haltBy) return { kind: 'halt', code: ShutdownCode.REQUESTED, reason: 'deadline' };
  if (i.state === 'draining' && i.runningCount === 0) return { kind: 'halt', code: ShutdownCode.REQUESTED, reason: 'drained' };
  if (i.state === 'serving' && i.drainRequested !== null) return { kind: 'drain', reason: i.drainRequested };
  let wakeAt = i.haltBy;
  if (i.state === 'serving' && i.runningCount === 0 && i.idleTimeoutSec > 0) {
    const idleAt = i.lastBusyAt + i.idleTimeoutSec * 1000;
    if (i.now >= idleAt) return { kind: 'halt', code: ShutdownCode.NO_WORK, reason: `idle for ${i.idleTimeoutSec} s` };
    wakeAt = wakeAt === null ? idleAt : Math.min(wakeAt, idleAt);
  }
  return { kind: 'stay', wakeAt };
}
