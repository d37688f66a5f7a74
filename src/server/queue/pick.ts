/**
 * The picker: which queued payload a pilot gets for what it offers. Pure, so
 * it is tested on its own and runs inside the store's claim transaction.
 *
 * Order: first the group furthest below its share of recent usage (the
 * decayed core-seconds of `usage.ts`, divided by the group's share: the
 * smallest ratio goes first), then the highest priority, then first in,
 * first out (submission time, then id). A candidate fits when its cores fit
 * the free cores (`coresFor`), its memory (if set) the free memory, and its
 * wall time (if set) the time the pilot has left (if limited). The first
 * candidate in that order that fits is handed out, so a group whose payloads
 * do not fit this pilot does not block the others.
 */
import { coresFor } from '../../protocol/cores.js';
import type { Candidate, Offer, Picker } from '../store/store.js';

/** Group shares: group name → share (any positive scale; 70 and 30 mean 70 % and 30 %). */
export type Shares = ReadonlyMap<string, number>;

/** The cores `c` gets on this offer, or null when it does not fit. */
export function fits(c: Candidate, offer: Offer): number | null {
  if (c.memoryMb !== null && c.memoryMb > offer.freeMemoryMb) return null;
  if (c.wallSec !== null && offer.remainingSec !== null && c.wallSec > offer.remainingSec) return null;
  return coresFor(c.cores, offer.freeCores, offer.totalCores);
}

/** Priority descending, then submission time, then id: the order within a group. */
export function queueOrder(a: Candidate, b: Candidate): number {
  return b.priority - a.priority || a.submittedAt - b.submittedAt || a.id - b.id;
}

/**
 * How far a group is from its share: its fraction of all recent usage over
 * its fraction of all shares (of the groups named in `shares` or seen now).
 * Below 1 means below its share; the smallest goes first.
 */
export function shareRatios(groups: Iterable<string>, usage: ReadonlyMap<string, number>, shares: Shares, defaultShare: number): Map<string, number> {
  const all = new Set<string>([...shares.keys(), ...groups]);
  const shareOf = (g: string) => shares.get(g) ?? defaultShare;
  let totalShare = 0;
  let totalUse = 0;
  for (const g of all) {
    totalShare += shareOf(g);
    totalUse += usage.get(g) ?? 0;
  }
  const ratios = new Map<string, number>();
  for (const g of all) {
    const target = totalShare > 0 ? shareOf(g) / totalShare : 0;
    const used = totalUse > 0 ? (usage.get(g) ?? 0) / totalUse : 0;
    ratios.set(g, target > 0 ? used / target : Number.POSITIVE_INFINITY);
  }
  return ratios;
}

/** A fair-share picker for these shares; groups not named get `defaultShare`. */
export function fairSharePicker(shares: Shares = new Map(), defaultShare = 1): Picker {
  return (candidates, offer, usage = new Map()) => {
    const ratios = shareRatios(new Set(candidates.map((c) => c.group)), usage, shares, defaultShare);
    const ratio = (g: string) => ratios.get(g) ?? Number.POSITIVE_INFINITY;
    const ordered = [...candidates].sort((a, b) => ratio(a.group) - ratio(b.group) || queueOrder(a, b));
    for (const c of ordered) {
      const cores = fits(c, offer);
      if (cores !== null && cores >= Math.max(1, offer.minCores ?? 1) && cores <= offer.freeCores) return { id: c.id, cores };
    }
    return null;
  };
}

/** The picker with no shares configured: every group weighs the same. */
export const pick: Picker = fairSharePicker();

/** What a pilot could run if it were empty: its total cores and memory, and the time it has left. */
export interface PilotCapacity {
  totalCores: number;
  memoryMb: number;
  remainingSec: number | null;
}
