/**
 * Pure matching decisions: what to ask the server for, and whether a payload
 * it handed out may start here. The agent's used cores are the sum of the
 * allocations of the payloads it holds; it never starts one that does not
 * fit in the free cores, and never starts a payload id twice.
 */
import { LIMITS, type Assignment, type LifecycleState, type MatchRequest } from '../../protocol/index.js';

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
}

/** The match request to send now, or null when the agent should not ask (not serving, nothing free, no time left). */
export function nextMatchRequest(i: MatchInputs): MatchRequest | null {
  if (i.state !== 'serving') return null;
  const free = i.totalCores - i.usedCores;
  if (free <= 0) return null;
  let remainingSec: number | null = null;
  if (i.deadline !== null) {
    remainingSec = Math.floor((i.deadline - i.now) / 1000) - i.graceSec;
    if (remainingSec <= 0) return null;
  }
  return {
    freeCores: Math.min(free, LIMITS.cores),
    totalCores: Math.min(i.totalCores, LIMITS.cores),
    freeMemoryMb: Math.max(0, Math.min(Math.floor(i.freeMemoryMb), LIMITS.memoryMb)),
    remainingSec,
    holding: [...i.holding],
    waitSec: Math.max(0, Math.min(i.waitMaxSec, LIMITS.waitSec)),
  };
}

/** What to do with a payload the server handed out. */
export type Admission =
  | { kind: 'start'; cores: number }
  /** Already started (a redelivery): ignore it, report nothing. */
  | { kind: 'duplicate' }
  /** Cannot run here: report it ended with `message`, never run it. */
  | { kind: 'reject'; message: string };

/** Whether `assignment` may start, given the cores in use and the ids ever started. Pure. */
export function admit(
  assignment: Assignment,
  totalCores: number,
  usedCores: number,
  started: ReadonlySet<number>,
  state: LifecycleState,
): Admission {
  if (started.has(assignment.id)) return { kind: 'duplicate' };
  const free = totalCores - usedCores;
  if (state !== 'serving') return { kind: 'reject', message: `not started: the pilot is ${state}` };
  if (!Number.isInteger(assignment.cores) || assignment.cores < 1) {
    return { kind: 'reject', message: `not started: allocation of ${assignment.cores} cores is invalid` };
  }
  if (assignment.cores > free) {
    return { kind: 'reject', message: `not started: needs ${assignment.cores} cores, only ${Math.max(0, free)} free` };
  }
  if (assignment.command.length === 0) return { kind: 'reject', message: 'not started: empty command' };
  return { kind: 'start', cores: assignment.cores };
}
