/**
 * How long the agent waits before it calls a server that did not answer
 * again. The wait doubles from half a second and is capped low: a server
 * restart is the usual outage, and a pilot that waited half a minute after
 * a three-second restart sat idle for nothing. Each wait is drawn in the
 * upper half of its step (equal jitter), so a thousand pilots cut off at
 * the same moment come back spread over seconds, yet none later than the cap.
 */

/** The first retry's step (ms). */
export const RETRY_BASE_MS = 500;
/** The longest wait between two attempts (ms): a cut-off pilot notices the server's return within it. */
export const RETRY_CAP_MS = 5000;

/**
 * The wait after the n-th failure in a row (n ≥ 1): a step of 0.5 s, 1 s,
 * 2 s, 4 s, then 5 s; the wait is in [step/2, step], placed by `random` in
 * [0, 1). Pure.
 */
export function retryDelayMs(failures: number, random: number, baseMs = RETRY_BASE_MS, capMs = RETRY_CAP_MS): number {
  const step = Math.min(capMs, baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  const r = Math.max(0, Math.min(1, random));
  return Math.round(step / 2 + (r * step) / 2);
}
