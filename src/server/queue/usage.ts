/**
 * Recent usage of a group: core-seconds with an exponential decay, so that
 * work done one half-life ago counts half as much as work done now. Pure.
 *
 * A payload that ran on `c` cores from `s` to `e` (ms) contributes, seen at
 * time `t` ≥ e, ∫ₛᵉ c·2^(−(t−τ)/h) dτ = c·h/ln2·(2^(−(t−e)/h) − 2^(−(t−s)/h))
 * core-seconds (h the half-life in seconds, times in seconds). A payload
 * still running is counted up to `t`.
 */

/** One stretch of running: a group's cores from `startedAt` to `endedAt` (null: still running). */
export interface RunInterval {
  group: string;
  cores: number;
  startedAt: number;
  endedAt: number | null;
}

/** Decayed core-seconds of one interval, seen at `now` (ms), half-life `halfLifeSec`. */
export function decayedCoreSec(r: RunInterval, now: number, halfLifeSec: number): number {
  const end = Math.min(r.endedAt ?? now, now);
  if (end <= r.startedAt) return 0;
  const h = Math.max(halfLifeSec, 1e-3);
  const sinceEnd = (now - end) / 1000;
  const sinceStart = (now - r.startedAt) / 1000;
  return ((r.cores * h) / Math.LN2) * (Math.pow(2, -sinceEnd / h) - Math.pow(2, -sinceStart / h));
}

/** Decayed core-seconds per group, seen at `now`. */
export function groupUsage(intervals: Iterable<RunInterval>, now: number, halfLifeSec: number): Map<string, number> {
  const usage = new Map<string, number>();
  for (const r of intervals) usage.set(r.group, (usage.get(r.group) ?? 0) + decayedCoreSec(r, now, halfLifeSec));
  return usage;
}

/** How far back intervals still matter: after 20 half-lives an interval weighs under one millionth. */
export function usageHorizonMs(halfLifeSec: number): number {
  return halfLifeSec * 20 * 1000;
}

/**
 * Running cores per group in buckets of `stepSec` from `from` to `to` (ms),
 * for the dashboard's chart: the average cores each group ran in each bucket,
 * except the last point, which the chart labels "now": the cores running at
 * `to`. An average there would lag behind what runs (4 cores started 3 s
 * into a 30 s bucket read 0.4), so the chart after a start, a burst or a
 * halt would show something other than what the totals beside it say.
 */
export function coresTimeline(
  intervals: Iterable<RunInterval>,
  from: number,
  to: number,
  stepSec: number,
): { from: number; stepSec: number; groups: Record<string, number[]> } {
  const step = stepSec * 1000;
  const n = Math.max(1, Math.ceil((to - from) / step));
  const groups: Record<string, number[]> = {};
  for (const r of intervals) {
    const s = Math.max(r.startedAt, from);
    const e = Math.min(r.endedAt ?? to, to);
    if (e <= s) continue;
    const row = (groups[r.group] ??= new Array<number>(n).fill(0));
    for (let i = Math.floor((s - from) / step); i < n - 1 && from + i * step < e; i++) {
      const bs = from + i * step;
      const overlap = Math.min(e, bs + step) - Math.max(s, bs);
      if (overlap > 0) row[i] = (row[i] ?? 0) + (r.cores * overlap) / step;
    }
    // still running at `to`: the "now" point
    if (r.endedAt === null && r.startedAt <= to) row[n - 1] = (row[n - 1] ?? 0) + r.cores;
  }
  return { from, stepSec, groups };
}
