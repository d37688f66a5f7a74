/**
 * When a pilot may call itself idle: only on the server's word. Pure.
 *
 * The pilot keeps the stretches of time in which the server answered its
 * calls (pilot/contact.ts): a stretch runs from the send time of the first
 * call answered after an outage to the latest answer, and ends at a call
 * that got no answer (refused, reset, timed out) or an answer that came late
 * (more than a few seconds past the call's bound). Time between stretches
 * is time without an answer: it is never idle time.
 *
 * The idle halt fires on an answer, never on a timer: when a match request
 * that offered work was answered "nothing" (no payload, no instruction),
 * sent after the last payload ran and within the current stretch (so after
 * any outage the pilot has asked at least once and heard "nothing"), and
 * the answered time since the last payload, up to that answer, adds up to
 * the idle timeout. An outage pauses the idle time; it does not restart it.
 *
 * So that the halt is not late by a whole match wait, the pilot asks with a
 * wait that ends when the idle timeout is due (`idleAnswerInMs`), and the
 * server's "nothing" arrives then.
 */

/** A stretch of time in which the server answered (ms epoch). */
export interface Stretch {
  from: number;
  to: number;
}

/** A match request that offered work and was answered "nothing". */
export interface NoWorkAnswer {
  askedAt: number;
  answeredAt: number;
}

/** What the pilot knows of the server's answers, for the idle rule. */
export interface IdleEvidence {
  /** Stretches closed by a call without an answer, oldest first (a bounded number of them). */
  earlier: readonly Stretch[];
  /** The stretch under way (its `to` is the latest answer), or null while the server is away. */
  current: Stretch | null;
  /** The latest match answer when it said "nothing", else null. */
  noWork: NoWorkAnswer | null;
}

/** What the idle rule needs besides the evidence. */
export interface IdleInputs {
  idle: IdleEvidence;
  /** The last moment a payload was running, or boot time. */
  lastBusyAt: number;
  bootAt: number;
  /** > 0; 0 disables the idle halt (the caller checks). */
  idleTimeoutSec: number;
  minLifetimeSec: number;
}

/**
 * Milliseconds in which the server answered, from `from` to `until`; the
 * stretch under way counts up to `until`. Pure.
 */
export function answeredMs(e: IdleEvidence, from: number, until: number): number {
  let sum = 0;
  for (const s of e.earlier) sum += Math.max(0, Math.min(s.to, until) - Math.max(s.from, from));
  if (e.current) sum += Math.max(0, until - Math.max(e.current.from, from));
  return sum;
}

/**
 * The idle halt, when the latest "nothing" allows it: the answered idle time
 * it completes (ms), or null. Pure.
 */
export function idleHaltBy(i: IdleInputs): { idleMs: number } | null {
  const { current, noWork } = i.idle;
  if (!current || !noWork) return null;
  // asked after the last payload and after the last outage: the answer is about now, not about before
  if (noWork.askedAt < current.from || noWork.askedAt < i.lastBusyAt) return null;
  if (noWork.answeredAt < i.bootAt + i.minLifetimeSec * 1000) return null;
  const idleMs = answeredMs(i.idle, i.lastBusyAt, noWork.answeredAt);
  return idleMs >= i.idleTimeoutSec * 1000 ? { idleMs } : null;
}

/**
 * How long from `now` until an answer "nothing" would complete the idle
 * timeout (and the minimum lifetime), if the server keeps answering: the
 * match wait that makes the server's answer come when the halt is due.
 * Null while the server is away (no stretch under way). Pure.
 */
export function idleAnswerInMs(i: IdleInputs, now: number): number | null {
  if (!i.idle.current) return null;
  const fromIdle = i.idleTimeoutSec * 1000 - answeredMs(i.idle, i.lastBusyAt, now);
  const fromLifetime = i.bootAt + i.minLifetimeSec * 1000 - now;
  return Math.max(0, fromIdle, fromLifetime);
}
