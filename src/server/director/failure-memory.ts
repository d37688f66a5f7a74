/**
 * Failure memory per offering (an endpoint's shape): driver errors, boot and
 * registration timeouts, and fizzles back that offering off with a delay
 * that doubles with each failure in a row (baseSec, 2×, 4×, … up to maxSec),
 * and say why. An instance of it that lives well (runs payloads, or outlives
 * the fizzle time) clears it. Pure: a new memory is returned, never changed
 * in place, so the loop can save it whole.
 *
 * A fizzle (after Vcycle's) is an instance that ended before `fizzleSec`
 * after its start with a pilot shutdown code 400-699 (banned, environment or
 * task-queue problem), with 300 (no more work) having run nothing, or with no
 * code at all (it crashed or vanished). 100 (asked to stop) and 200 (work
 * done) never fizzle.
 */
import type { BackoffConfig } from './endpoint-config.js';

/** What went wrong with an offering. */
export type FailureKind = 'driver-error' | 'boot-timeout' | 'registration-timeout' | 'fizzle';

/** What is remembered of one offering. */
export interface FailureEntry {
  /** Failures in a row. */
  failures: number;
  /** The last one. */
  kind: FailureKind;
  reason: string;
  at: number;
  /** No start before this (ms). */
  until: number;
}

/** Offering key → what is remembered. */
export type FailureMemory = ReadonlyMap<string, FailureEntry>;

/** The key of an offering. */
export function offeringKey(endpoint: string, shape: string): string {
  return `${endpoint}/${shape}`;
}

/** The delay after the `failures`-th failure in a row, seconds. */
export function backoffDelaySec(failures: number, cfg: BackoffConfig): number {
  const n = Math.max(1, failures);
  // 2^(n-1) overflows to Infinity for a long streak, which min() handles
  return Math.min(cfg.maxSec, cfg.baseSec * Math.pow(2, n - 1));
}

/** The memory after one more failure of `key` at `now`. */
export function recordFailure(mem: FailureMemory, key: string, kind: FailureKind, reason: string, now: number, cfg: BackoffConfig): FailureMemory {
  const failures = (mem.get(key)?.failures ?? 0) + 1;
  const next = new Map(mem);
  next.set(key, { failures, kind, reason, at: now, until: now + backoffDelaySec(failures, cfg) * 1000 });
  return next;
}

/** The memory after an instance of `key` lived well: forgotten. */
export function recordSuccess(mem: FailureMemory, key: string): FailureMemory {
  if (!mem.has(key)) return mem;
  const next = new Map(mem);
  next.delete(key);
  return next;
}

/** The entry that holds `key` back at `now`, or null. */
export function backoffAt(mem: FailureMemory, key: string, now: number): FailureEntry | null {
  const e = mem.get(key);
  return e && e.until > now ? e : null;
}

/** One line saying why an offering is backed off, e.g. for the decision record. */
export function describeBackoff(key: string, e: FailureEntry, now: number): string {
  const left = Math.max(0, Math.ceil((e.until - now) / 1000));
  const nth = e.failures === 1 ? '1 failure' : `${e.failures} failures in a row`;
  return `${key} backed off for ${left} s more (${nth}; last: ${e.kind}: ${e.reason})`;
}

/** How an instance ended, as far as its offering is concerned. */
export interface EndFacts {
  /** When the driver accepted it (or it was requested). */
  startedAt: number;
  endedAt: number;
  /** The pilot's shutdown code (null: it never registered, or ended without saying). */
  shutdownCode: number | null;
  /** Payloads its pilot started. */
  payloadsRun: number;
}

/** What an end says about the offering. */
export interface EndVerdict {
  /** Back the offering off. */
  fizzle: boolean;
  /** The pilot found no work at all (counted in the offering's no-work share). */
  noWork: boolean;
  /** It lived well: clear the offering's failures. */
  good: boolean;
  /** Why, in a few words. */
  reason: string;
}

/** Judge one end. Pure. */
export function judgeEnd(f: EndFacts, cfg: BackoffConfig): EndVerdict {
  const lifeSec = Math.max(0, (f.endedAt - f.startedAt) / 1000);
  const short = lifeSec < cfg.fizzleSec;
  const code = f.shutdownCode;
  const noWork = code === 300 && f.payloadsRun === 0;
  const life = `after ${Math.round(lifeSec)} s`;
  if (code === 100 || code === 200) return { fizzle: false, noWork: false, good: true, reason: `shutdown code ${code} ${life}` };
  if (short && code !== null && code >= 300 && code < 700 && (code >= 400 || noWork)) {
    return { fizzle: true, noWork, good: false, reason: `fizzled: shutdown code ${code} ${life}${noWork ? ' having run nothing' : ''}` };
  }
  if (short && (code === null || code >= 700)) {
    return { fizzle: true, noWork: false, good: false, reason: `fizzled: ended ${life} ${code === null ? 'without a shutdown code' : `with shutdown code ${code}`}` };
  }
  return { fizzle: false, noWork, good: f.payloadsRun > 0 || !short, reason: code === null ? `ended ${life}` : `shutdown code ${code} ${life}` };
}
