/**
 * The lease fence. The server gives a pilot's payloads to other pilots once
 * it has heard nothing from it for its stall time (RegisterReply.leaseSec,
 * `serve --stall-after`). A pilot cut off from the server must therefore
 * have stopped its payloads before that moment, or a payload could run on
 * two pilots at once. Pure: the pilot asks `decideFence` on every lifecycle
 * round and, on `fence`, stops all its payloads (SIGTERM, the given grace,
 * SIGKILL) and carries on.
 *
 *   leaseFrom ─────────── fenceAt ──(grace)── stopBy ── (margin) ── leaseFrom + leaseSec
 *   last call the server   SIGTERM              SIGKILL                the server requeues
 *   accepted (sent at)
 *
 * margin = min(60 s, leaseSec / 10) covers the sweep's and the kill's
 * latency; the grace is cut short when the lease is too short for it (never
 * less than half of leaseSec minus margin is left before the SIGTERM).
 */

/** What the fence decision depends on. */
export interface FenceInputs {
  now: number;
  /** Send time of the last call the server accepted. */
  leaseFrom: number;
  /** The server's stall time, seconds; null: the server did not say (no fence). */
  leaseSec: number | null;
  /** The pilot's grace period between SIGTERM and SIGKILL, seconds. */
  graceSec: number;
  /** Payloads held now (not already being fenced). */
  runningCount: number;
}

/** Stop everything now with this grace and reason, or wake again at `wakeAt` at the latest (null: nothing to fence). */
export type FenceDecision = { kind: 'fence'; graceMs: number; reason: string } | { kind: 'ok'; wakeAt: number | null };

/** Seconds kept in hand before the server's stall time. */
export function leaseMarginSec(leaseSec: number): number {
  return Math.min(60, leaseSec / 10);
}

/** When to SIGTERM and how long the grace may be, for a lease from `leaseFrom`. Pure. */
export function fenceTimes(leaseFrom: number, leaseSec: number, graceSec: number): { fenceAt: number; stopBy: number } {
  const usable = (leaseSec - leaseMarginSec(leaseSec)) * 1000;
  const stopBy = leaseFrom + usable;
  const fenceAt = Math.max(leaseFrom + usable / 2, stopBy - graceSec * 1000);
  return { fenceAt, stopBy };
}

/** Decide whether the pilot must stop its payloads because its lease is running out. Pure. */
export function decideFence(i: FenceInputs): FenceDecision {
  if (i.leaseSec === null || i.leaseSec <= 0 || i.runningCount === 0) return { kind: 'ok', wakeAt: null };
  const { fenceAt, stopBy } = fenceTimes(i.leaseFrom, i.leaseSec, i.graceSec);
  if (i.now < fenceAt) return { kind: 'ok', wakeAt: fenceAt };
  const silent = Math.floor((i.now - i.leaseFrom) / 1000);
  return {
    kind: 'fence',
    graceMs: Math.max(0, stopBy - i.now),
    reason: `no contact with the server for ${silent} s; the server gives its payloads to other pilots after ${i.leaseSec} s`,
  };
}
