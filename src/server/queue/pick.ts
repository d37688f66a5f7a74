/**
 * The picker: which queued payload a pilot gets for what it offers. Pure, so
 * it is tested on its own and runs inside the store's claim transaction.
 *
 * Order: the highest priority first, then first in, first out (submission
 * time, then id). A candidate fits when its cores fit the free cores
 * (`coresFor`), its memory (if set) the free memory, and its wall time (if
 * set) the time the pilot has left (if limited).
 */
import { coresFor } from '../../protocol/cores.js';
import type { Candidate, Offer, Picker } from '../store/store.js';

/** The cores `c` gets on this offer, or null when it does not fit. */
export function fits(c: Candidate, offer: Offer): number | null {
  if (c.memoryMb !== null && c.memoryMb > offer.freeMemoryMb) return null;
  if (c.wallSec !== null && offer.remainingSec !== null && c.wallSec > offer.remainingSec) return null;
  return coresFor(c.cores, offer.freeCores, offer.totalCores);
}

/** Priority descending, then submission time, then id: the order payloads are handed out. */
export function queueOrder(a: Candidate, b: Candidate): number {
  return b.priority - a.priority || a.submittedAt - b.submittedAt || a.id - b.id;
}

/** The first candidate in queue order that fits the offer, and the cores it gets. */
export const pick: Picker = (candidates, offer) => {
  for (const c of [...candidates].sort(queueOrder)) {
    const cores = fits(c, offer);
    if (cores !== null && cores >= 1 && cores <= offer.freeCores) return { id: c.id, cores };
  }
  return null;
};
