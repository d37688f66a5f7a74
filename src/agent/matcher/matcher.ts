/**
 * Pure matching decisions: what to ask the server for, and whether a payload
 * it handed out may start here. The agent's used cores are the sum of the
 * allocations of the payloads it holds; it never starts one that does not
 * fit in the free cores, and never starts a payload id twice.
 */
import { LIMITS, type Assignment, type LifecycleState, type MatchRequest } from '../../protocol/index.js';
import { decideOffer, type WaitingRequest } from './starvation.js';

/** Everything the match request depends on. */
export interface MatchInputs {
  totalCores: number;
  usedCores: number;
  freeMemoryMb: number;
  state: LifecycleState;
  now: number;
  /** When the agent must be gone (ms epoch), or null. */
  deadline: number | null;
  graceSec: number;
  /** Payload ids held (running or starting). */
  holding: readonly number[];
  /** The server's bound on a held-open match (RegisterReply.matchWaitMaxSec). */
  waitMaxSec: number;
  /** The largest request the server says is waiting for this agent, or null. */
  largestWaiting?: WaitingRequest | null;
  /** How long a larger payload may wait before smaller work stops (seconds). */
  starvationSec?: number;
}

/** Seconds left before the deadline minus grace (null: unlimited). Pure. */
export function remainingSec(now: number, deadline: number | null, graceSec: number): number | null {
  return deadline === null ? null : Math.floor((deadline - now) / 1000) - graceSec;
}

/** States in which the agent keeps a match request open (to take work, or only to hear instructions). */
const POLLING: readonly LifecycleState[] = ['serving', 'draining'];

/**
 * The match request to send now, or null when the agent should not ask at
 * all (booting, halting, halted). While serving or draining a request is
 * always open: it is how a halt or any instruction reaches the agent within
 * a second, and how it keeps `largestWaiting` fresh. When the agent must not
 * take work (draining, no core free, no time left, or cores reserved for a
 * waiting larger payload: see starvation.ts) it asks with `freeCores: 0`,
 * which no payload fits (and the server hands a draining pilot no new work).
 */
export function nextMatchRequest(i: MatchInputs): MatchRequest | null {
  if (!POLLING.includes(i.state)) return null;
  const offer = decideOffer({
    totalCores: i.totalCores,
    freeCores: i.totalCores - i.usedCores,
    largestWaiting: i.largestWaiting ?? null,
    now: i.now,
    boundSec: i.starvationSec ?? Infinity,
  });
  const left = remainingSec(i.now, i.deadline, i.graceSec);
  const takeWork = i.state === 'serving' && offer.kind === 'ask' && (left === null || left > 0);
  return {
    ...(takeWork && offer.minCores !== null ? { minCores: Math.min(offer.minCores, LIMITS.cores) } : {}),
    freeCores: takeWork ? Math.min(offer.freeCores, LIMITS.cores) : 0,
    totalCores: Math.min(i.totalCores, LIMITS.cores),
    freeMemoryMb: Math.max(0, Math.min(Math.floor(i.freeMemoryMb), LIMITS.memoryMb)),
    remainingSec: left === null ? null : Math.max(0, left),
    holding: [...i.holding],
    waitSec: Math.max(0, Math.min(i.waitMaxSec, LIMITS.waitSec)),
  };
}

/** True when `request` is only an instruction poll: no payload can fit it. */
export function isPollOnly(request: MatchRequest): boolean {
  return request.freeCores === 0;
}

/** What to do with a payload the server handed out. */
export type Admission =
  | { kind: 'start'; cores: number }
  /** Already started (a redelivery): ignore it, report nothing. */
  | { kind: 'duplicate' }
  /** Cannot run anywhere (invalid): report it ended with `message`, never run it. */
  | { kind: 'reject'; message: string }
  /** Not here, not now (the agent's state, free cores or time left): give it back to the queue (`payload-released`). */
  | { kind: 'release'; message: string };

/**
 * Whether `assignment` may start, given the cores in use, the ids ever
 * started and the seconds left before the deadline minus grace (a payload
 * whose wall time does not fit is not started). Pure.
 */
export function admit(
  assignment: Assignment,
  totalCores: number,
  usedCores: number,
  started: ReadonlySet<number>,
  state: LifecycleState,
  secondsLeft: number | null = null,
): Admission {
  if (started.has(assignment.id)) return { kind: 'duplicate' };
  const free = totalCores - usedCores;
  if (state !== 'serving') return { kind: 'release', message: `not started: the pilot is ${state}` };
  if (!Number.isInteger(assignment.cores) || assignment.cores < 1) {
    return { kind: 'reject', message: `not started: allocation of ${assignment.cores} cores is invalid` };
  }
  if (assignment.cores > free) {
    return { kind: 'release', message: `not started: needs ${assignment.cores} cores, only ${Math.max(0, free)} free` };
  }
  if (secondsLeft !== null && assignment.wallSec !== null && assignment.wallSec > secondsLeft) {
    return { kind: 'release', message: `not started: needs ${assignment.wallSec} s, only ${Math.max(0, secondsLeft)} s left before the pilot's deadline` };
  }
  if (assignment.command.length === 0) return { kind: 'reject', message: 'not started: empty command' };
  return { kind: 'start', cores: assignment.cores };
}
