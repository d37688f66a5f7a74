/**
 * How an attempt of a payload ended, and where the payload goes after it.
 * Pure: the store's endings (endings.ts) apply these inside its transactions.
 *
 * An attempt ends by the payload's own doing (done: exit 0; failed: a
 * non-zero exit, a signal, its wall time or memory), by an administrator
 * (cancelled: `kill`), or by the infrastructure (evicted: the pilot stopped it
 * because of a halt, SIGTERM, the deadline or the lease; lost: the pilot
 * halted or stalled while it held it). Only the last two give the payload
 * another attempt, and only while it has attempts left: a pilot that calls a
 * genuine failure an eviction gains nothing past `maxAttempts`.
 */
import type { PayloadEndedReport } from '../../protocol/index.js';
import { endStateFor } from './transitions.js';

/** How one attempt ended. */
export type AttemptOutcome = 'done' | 'failed' | 'cancelled' | 'evicted' | 'lost';

/** The attempts the infrastructure ended: the payload was not at fault. */
export type Interruption = Extract<AttemptOutcome, 'evicted' | 'lost'>;

/**
 * The outcome of an attempt its pilot reported ended. Exit 0 is done
 * whatever else is said; a kill asked for by an administrator makes any
 * other end cancelled; a payload over its wall time or memory failed even if
 * the pilot was stopping it anyway; otherwise evicted when the pilot says the
 * infrastructure stopped it, else failed.
 */
export function reportedOutcome(
  report: Pick<PayloadEndedReport, 'exitCode' | 'signal' | 'timedOut' | 'overMemory' | 'evicted'>,
  cancelRequested: boolean,
): Exclude<AttemptOutcome, 'lost'> {
  if (endStateFor(report.exitCode, report.signal) === 'done') return 'done';
  if (cancelRequested) return 'cancelled';
  if (report.timedOut || report.overMemory) return 'failed';
  return report.evicted ? 'evicted' : 'failed';
}

/** What happens to a payload after an interrupted attempt, and why. */
export type AfterInterruption = 'queued' | 'cancelled' | 'failed: no requeue' | 'failed: last attempt';

/**
 * Where a payload goes after the infrastructure ended its attempt: cancelled
 * when an administrator asked for it to be killed; failed when it was
 * submitted with `requeue: false` or this was its last attempt (`attempts`
 * counts this one); else back to the queue.
 */
export function afterInterruption(i: { attempts: number; maxAttempts: number; requeue: boolean; cancelRequested: boolean }): AfterInterruption {
  if (i.cancelRequested) return 'cancelled';
  if (!i.requeue) return 'failed: no requeue';
  if (i.attempts >= i.maxAttempts) return 'failed: last attempt';
  return 'queued';
}
