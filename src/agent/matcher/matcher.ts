/**
 * Pure matching decisions: what to ask the server for, and whether a payload
 * it handed out may start here. The agent's used cores are the sum of the
 * allocations of the payloads it holds; it never starts one that does not
 * fit in the free cores, and never starts a payload id twice.
 */
import { LIMITS, REQUIREMENT_LIMITS, type Assignment, type LifecycleState, type MatchRequest } from '../../protocol/index.js';
import { loanRefusal, type Loan, type RunningPayload } from './backfill.js';
import { decideOffer, type OfferDecision, type WaitingRequest } from './starvation.js';

/** Seconds after admission by which a payload's process has started and its wall clock runs (backfill). */
export const BACKFILL_START_SLACK_SEC = 10;
/** Seconds past a payload's stop grace by which its process is reaped and its cores free (backfill). */
export const BACKFILL_REAP_SEC = 5;

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
  /** The payloads held, with their wall limits and clocks: lets held cores be lent (backfill.ts). */
  running?: readonly RunningPayload[];
  /** Ids of the GPUs no held payload has (requirements.ts). */
  freeGpus?: readonly string[];
  /** Scratch not promised to a held payload, MiB; null: unknown. */
  freeScratchMb?: number | null;
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
 * While it holds cores it can lend (backfill.ts), it asks for them with
 * `backfill`: only work that ends before the reserved payload can start, or
 * that fits in the cores spare even then.
 */
export function nextMatchRequest(i: MatchInputs): MatchRequest | null {
  if (!POLLING.includes(i.state)) return null;
  const offer = offerNow(i);
  const left = remainingSec(i.now, i.deadline, i.graceSec);
  const takeWork = i.state === 'serving' && offer.kind !== 'hold' && (left === null || left > 0);
  return {
    ...(takeWork && offer.kind === 'ask' && offer.minCores !== null ? { minCores: Math.min(offer.minCores, LIMITS.cores) } : {}),
    ...(takeWork && offer.kind === 'lend'
      ? { backfill: { wallSec: Math.min(offer.loan.wallSec, LIMITS.wallSec), spareCores: Math.min(offer.loan.spareCores, LIMITS.cores) } }
      : {}),
    freeCores: takeWork ? Math.min(offer.freeCores, LIMITS.cores) : 0,
    totalCores: Math.min(i.totalCores, LIMITS.cores),
    freeMemoryMb: Math.max(0, Math.min(Math.floor(i.freeMemoryMb), LIMITS.memoryMb)),
    remainingSec: left === null ? null : Math.max(0, left),
    holding: [...i.holding],
    waitSec: Math.max(0, Math.min(i.waitMaxSec, LIMITS.waitSec)),
    ...(takeWork && i.freeGpus && i.freeGpus.length > 0 ? { freeGpus: i.freeGpus.slice(0, REQUIREMENT_LIMITS.gpus) } : {}),
    ...(i.freeScratchMb !== undefined && i.freeScratchMb !== null ? { freeScratchMb: Math.max(0, Math.min(Math.floor(i.freeScratchMb), Number.MAX_SAFE_INTEGER)) } : {}),
  };
}

function offerNow(i: MatchInputs): OfferDecision {
  return decideOffer({
    totalCores: i.totalCores,
    freeCores: i.totalCores - i.usedCores,
    largestWaiting: i.largestWaiting ?? null,
    now: i.now,
    boundSec: i.starvationSec ?? Infinity,
    ...(i.running ? { running: i.running } : {}),
    endMarginSec: i.graceSec + BACKFILL_REAP_SEC,
    startSlackSec: BACKFILL_START_SLACK_SEC,
  });
}

/** Cores held for a reserved payload: how many it needs, and what may be lent meanwhile (null: nothing). */
export interface Reservation {
  cores: number;
  loan: Pick<Loan, 'wallSec' | 'spareCores'> | null;
}

/** The reservation the agent keeps now (starvation.ts), or null when it keeps none. Pure. */
export function reservationNow(i: MatchInputs): Reservation | null {
  const offer = offerNow(i);
  if (offer.kind === 'lend') return { cores: offer.reserving, loan: { wallSec: offer.loan.wallSec, spareCores: offer.loan.spareCores } };
  if (offer.kind === 'ask') return offer.minCores === null ? null : { cores: offer.minCores, loan: null };
  return offer.reserving === undefined ? null : { cores: offer.reserving, loan: null };
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
 * started, the seconds left before the deadline minus grace (a payload
 * whose wall time does not fit is not started) and the reservation kept
 * now (`reservationNow`): a payload handed out for an older request that
 * would now delay the reserved payload is given back. Pure.
 */
export function admit(
  assignment: Assignment,
  totalCores: number,
  usedCores: number,
  started: ReadonlySet<number>,
  state: LifecycleState,
  secondsLeft: number | null = null,
  reserved: Reservation | null = null,
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
  const refusal = reserved ? reservedRefusal(assignment, free, reserved) : null;
  if (refusal) return { kind: 'release', message: refusal };
  return { kind: 'start', cores: assignment.cores };
}

/** Why `a` may not take cores held for the reserved payload, or null when it may. */
function reservedRefusal(a: Assignment, free: number, r: Reservation): string | null {
  if (free >= r.cores) return a.cores >= r.cores ? null : `not started: ${free} free cores are kept for a reserved ${r.cores}-core payload`;
  if (r.loan) return loanRefusal(a, r.loan);
  return `not started: cores are held for a reserved ${r.cores}-core payload`;
}
