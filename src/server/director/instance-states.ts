/**
 * Which state changes of an instance (a machine the director started) are
 * legal. Pure: the store asks before it writes and refuses an illegal change.
 *
 * ```
 * requested ─► starting ─► booting ─► registered ─► halted ─► deleted
 *     │            │           │           │           │
 *     └────────────┴───────────┴───────────┴───────────┴──► failed ─► deleted
 * ```
 * - requested: decided, recorded with its idempotency key, the create call not yet answered;
 * - starting: the driver accepted the create (its id is known), the machine is not running yet
 *   (a batch job waits in the queue, a VM is being set up);
 * - booting: the driver says the machine runs; its pilot has not registered;
 * - registered: its pilot registered with the instance's credential;
 * - halted: its pilot halted (or the machine ended after it registered); the resource is to be deleted;
 * - failed: it went wrong (the create failed, a timeout, a stalled pilot, the resource vanished);
 *   what the driver still holds is to be deleted;
 * - deleted: the driver holds nothing of it any more. Final.
 *
 * Steps forward along the main line may be skipped (a fast pilot registers
 * before the driver was asked whether its machine runs; a director restarted
 * between the create and its record finds the resource already running).
 */
import type { InstanceChange, InstanceRecord } from './ports.js';

/** The states of an instance. */
export const INSTANCE_STATES = ['requested', 'starting', 'booting', 'registered', 'halted', 'failed', 'deleted'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** The main line, in order. */
const LINE: readonly InstanceState[] = ['requested', 'starting', 'booting', 'registered', 'halted', 'deleted'];

/** True when an instance may move from `from` to `to`; staying in the same state is always allowed. */
export function instanceTransitionAllowed(from: InstanceState, to: InstanceState): boolean {
  if (from === to) return true;
  if (from === 'deleted') return false;
  if (to === 'failed') return from !== 'halted';
  if (from === 'failed') return to === 'deleted';
  const a = LINE.indexOf(from);
  const b = LINE.indexOf(to);
  return a >= 0 && b > a;
}

/** True for states whose machine may still exist or be coming: they count against limits. */
export function isLive(state: InstanceState): boolean {
  return state !== 'deleted';
}

/** True for states in which the machine is coming but its pilot has not registered: its cores are supply. */
export function isComing(state: InstanceState): boolean {
  return state === 'requested' || state === 'starting' || state === 'booting';
}

/** What one change does to an instance: the record after it, and the history entry when its state changed. */
export interface InstanceChangeEffect {
  next: InstanceRecord;
  history: { state: InstanceState; reason: string; at: number } | null;
}

/**
 * The record after `change` at `at`, or the reason it is refused (not an
 * allowed transition). The timestamps of a step are set the first time it is
 * reached (booting sets startedAt too; deleted sets endedAt too). Pure: every
 * store applies changes through it, so they cannot drift apart.
 */
export function applyInstanceChange(cur: InstanceRecord, change: InstanceChange, at: number): InstanceChangeEffect | { refused: string } {
  if (!instanceTransitionAllowed(cur.state, change.state)) return { refused: `instance ${cur.id} cannot go from ${cur.state} to ${change.state}` };
  const next: InstanceRecord = { ...cur, state: change.state, reason: change.reason };
  if (change.driverId !== undefined) next.driverId = change.driverId;
  if (change.pilotId !== undefined) next.pilotId = change.pilotId;
  if (change.credentialHash !== undefined) next.credentialHash = change.credentialHash;
  if (change.drainAt !== undefined) next.drainAt = change.drainAt;
  if (change.state === cur.state) return { next, history: null };
  if (change.state === 'starting') next.startedAt ??= at;
  if (change.state === 'booting') {
    next.startedAt ??= at;
    next.bootedAt ??= at;
  }
  if (change.state === 'registered') next.registeredAt ??= at;
  if (change.state === 'halted' || change.state === 'failed') next.endedAt ??= at;
  if (change.state === 'deleted') {
    next.endedAt ??= at;
    next.deletedAt = at;
  }
  return { next, history: { state: change.state, reason: change.reason, at } };
}
