/**
 * Which state changes of payloads and pilots are legal. Pure: the store asks
 * before it writes, and refuses an illegal change rather than applying it.
 *
 * Payloads:
 * ```
 * queued ──► assigned ──► running ──► done | failed | lost
 *   ▲            │  └──────────────────► done | failed | lost
 *   └────────────┘ (pilot gone before it started)
 * ```
 * Pilots: any state may follow any other, except that `halted` is final.
 */
import type { PayloadState, PilotState } from '../../protocol/index.js';

const PAYLOAD_NEXT: Record<PayloadState, readonly PayloadState[]> = {
  queued: ['assigned'],
  assigned: ['running', 'queued', 'done', 'failed', 'lost'],
  running: ['done', 'failed', 'lost'],
  done: [],
  failed: [],
  lost: [],
};

/** True when a payload may move from `from` to `to`. */
export function payloadTransitionAllowed(from: PayloadState, to: PayloadState): boolean {
  return PAYLOAD_NEXT[from].includes(to);
}

/** True when a pilot may move from `from` to `to` (a pilot that halted stays halted). */
export function pilotTransitionAllowed(from: PilotState, to: PilotState): boolean {
  if (from === 'halted') return to === 'halted';
  return true;
}

/** The final state of a payload that ended with this exit code and signal. */
export function endStateFor(exitCode: number | null, signal: string | null): 'done' | 'failed' {
  return exitCode === 0 && signal === null ? 'done' : 'failed';
}
