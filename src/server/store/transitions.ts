/**
 * Which state changes of payloads and pilots are legal. Pure: the store asks
 * before it writes, and refuses an illegal change rather than applying it.
 *
 * Payloads:
 * ```
 * queued ──► assigned ──► running ──► done | failed | cancelled
 * queued ──► cancelled                      killed before it was handed out
 * assigned ──► queued | done | failed | cancelled   released or its pilot halted before it started; ended at once
 * assigned | running ──► lost | evicted     lost: its pilot halted or stalled; evicted: the infrastructure stopped it
 * lost | evicted ──► queued                 attempts left and requeue allowed: another attempt
 * lost | evicted ──► failed | cancelled     no attempt left or requeue: false; killed meanwhile
 * ```
 * `lost` and `evicted` are recorded in the history of the attempt; the
 * payload itself goes straight on to `queued` (another attempt) or to a
 * final state. done, failed and cancelled are final.
 *
 * Pilots:
 * ```
 * submitted ─► booting ─► running ⇄ draining ─► halting ─► halted
 *      any live state ─► stalled (no contact in time) ─► back to a live state
 *      any state but halted ─► error | halting | halted
 * ```
 * `halted` is final.
 */
import type { PayloadState, PilotState } from '../../protocol/index.js';

const PAYLOAD_NEXT: Record<PayloadState, readonly PayloadState[]> = {
  queued: ['assigned', 'cancelled'],
  assigned: ['running', 'queued', 'done', 'failed', 'cancelled', 'lost', 'evicted'],
  running: ['done', 'failed', 'cancelled', 'lost', 'evicted'],
  done: [],
  failed: [],
  cancelled: [],
  lost: ['queued', 'failed', 'cancelled'],
  evicted: ['queued', 'failed', 'cancelled'],
};

/** True when a payload may move from `from` to `to`. */
export function payloadTransitionAllowed(from: PayloadState, to: PayloadState): boolean {
  return PAYLOAD_NEXT[from].includes(to);
}

const ALWAYS: readonly PilotState[] = ['error', 'halting', 'halted', 'stalled'];
const PILOT_NEXT: Record<PilotState, readonly PilotState[]> = {
  submitted: ['booting', 'running', 'draining', ...ALWAYS],
  booting: ['running', 'draining', ...ALWAYS],
  running: ['draining', ...ALWAYS],
  draining: ['running', ...ALWAYS],
  halting: ['halted', 'error', 'stalled'],
  stalled: ['booting', 'running', 'draining', 'halting', 'halted', 'error'],
  error: ['halting', 'halted', 'stalled'],
  halted: [],
};

/** True when a pilot may move from `from` to `to`; staying in the same state is always allowed. */
export function pilotTransitionAllowed(from: PilotState, to: PilotState): boolean {
  return from === to || PILOT_NEXT[from].includes(to);
}

/** The final state of a payload that ended with this exit code and signal. */
export function endStateFor(exitCode: number | null, signal: string | null): 'done' | 'failed' {
  return exitCode === 0 && signal === null ? 'done' : 'failed';
}
