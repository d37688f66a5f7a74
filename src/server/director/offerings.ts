/**
 * What an offering (an endpoint's shape) costs per useful core-hour, and what
 * the director has learnt of it: how long its machines take from the create
 * call to a registered pilot, and the share of its pilots that halted having
 * run nothing. Pure.
 *
 * One machine of `cores` cores that would run `useful` cores of the queue's
 * work for a reference hour (or its lifetime, if shorter) costs its price
 * over its boot time plus that hour, and delivers `useful` core-hours, of
 * which the no-work share is lost:
 *
 *   instance-hours per useful core-hour = (boot + run) / (useful × run × (1 − noWork))
 *   money per useful core-hour          = price per hour × that
 *
 * Offerings are ranked by money, then by instance-hours (so among free ones
 * the quicker to boot and the better filled goes first), then in the order
 * the configuration lists them.
 */

/** What the director learnt of one offering. */
export interface OfferingStats {
  /** Smoothed seconds from the create call to the pilot's registration (null: none seen). */
  bootSec: number | null;
  /** Smoothed share (0..1) of its pilots that halted having run nothing. */
  noWorkShare: number;
  bootSamples: number;
  endSamples: number;
}

/** The stats of an offering never seen. */
export const NO_STATS: OfferingStats = Object.freeze({ bootSec: null, noWorkShare: 0, bootSamples: 0, endSamples: 0 });

/** How much a new sample weighs (an exponential moving average; the first sample counts whole). */
const ALPHA = 0.3;
/** The boot time assumed before one is seen. */
export const DEFAULT_BOOT_SEC = 60;
/** The run over which a machine's boot time is spread. */
export const REFERENCE_RUN_SEC = 3600;
/** At most this share is taken off for pilots that found nothing (so a ranking stays finite). */
const MAX_NO_WORK = 0.9;

/** The stats after a pilot registered `sec` seconds after its create call. */
export function withBootSample(s: OfferingStats, sec: number): OfferingStats {
  const bootSec = s.bootSec === null ? sec : s.bootSec + ALPHA * (sec - s.bootSec);
  return { ...s, bootSec, bootSamples: s.bootSamples + 1 };
}

/** The stats after a pilot halted, having run nothing (`noWork`) or something. */
export function withEndSample(s: OfferingStats, noWork: boolean): OfferingStats {
  const x = noWork ? 1 : 0;
  const noWorkShare = s.endSamples === 0 ? x : s.noWorkShare + ALPHA * (x - s.noWorkShare);
  return { ...s, noWorkShare, endSamples: s.endSamples + 1 };
}

/** An offering's cost for a machine that would run `useful` cores of work. */
export interface OfferingCost {
  /** Money per useful core-hour. */
  money: number;
  /** Instance-hours bought per useful core-hour. */
  hours: number;
}

/** The cost of one machine at `pricePerHour`, living up to `lifetimeSec`, with `useful` of its cores filled. */
export function usefulCost(pricePerHour: number, useful: number, lifetimeSec: number, stats: OfferingStats): OfferingCost {
  const run = Math.max(60, Math.min(lifetimeSec, REFERENCE_RUN_SEC));
  const boot = stats.bootSec ?? DEFAULT_BOOT_SEC;
  const kept = 1 - Math.min(MAX_NO_WORK, Math.max(0, stats.noWorkShare));
  const hours = (boot + run) / (Math.max(1e-9, useful) * run * kept);
  return { money: pricePerHour * hours, hours };
}

/** Compare two costs: negative when `a` is cheaper. */
export function compareCost(a: OfferingCost, b: OfferingCost): number {
  const rel = (x: number, y: number) => (Math.abs(x - y) <= 1e-12 * Math.max(1, Math.abs(x), Math.abs(y)) ? 0 : x - y);
  return rel(a.money, b.money) || rel(a.hours, b.hours);
}
