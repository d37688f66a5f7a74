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
