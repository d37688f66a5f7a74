/**
 * Cores a GPU node keeps for GPU work. Pure.
 *
 * Without this, a node with GPUs fills its cores with CPU-only work as soon
 * as it has any: a GPU payload then finds free GPUs but no free cores, and
 * waits until enough CPU-only payloads end at once, while new CPU-only work
 * keeps taking the cores that free up. So while GPU work that this pilot
 * could run is queued, the pilot's free GPUs keep the cores that work needs:
 * the queued GPU payloads (in the picker's order) are given the free GPUs
 * one after another, as long as GPUs are left, and the cores each of them
 * needs at least are kept. CPU-only payloads get only the cores beyond
 * those; GPU payloads get all of them. When no GPU is free, or no GPU work
 * that fits is queued, nothing is kept.
 */
import type { GpuInfo } from '../../protocol/index.js';
import type { Candidate, Offer } from './offer.js';

/** True when `c` asks for GPUs. */
export function wantsGpus(c: Candidate): boolean {
  return (c.requirements?.gpus ?? 0) > 0;
}

/**
 * How many of the offer's free cores to keep for the GPU work among
 * `ordered` (candidates in the picker's order); 0 when there is none.
 * `couldRun` says whether a candidate could run on this pilot once its
 * cores are free (the picker's own fit, against all cores).
 */
export function coresKeptForGpus(ordered: readonly Candidate[], offer: Offer, couldRun: (c: Candidate, o: Offer) => boolean): number {
  let left: GpuInfo[] = [...(offer.free?.gpus ?? [])];
  if (left.length === 0) return 0;
  let kept = 0;
  const allCores = { ...offer, freeCores: offer.totalCores };
  for (const c of ordered) {
    if (left.length === 0) break;
    if (!wantsGpus(c) || !couldRun(c, { ...allCores, free: { gpus: left, scratchMb: offer.free?.scratchMb ?? null } })) continue;
    const memory = c.requirements?.gpuMemoryMb;
    // give it the first free GPUs that fit it (as the agent does), so the next ones see what is left
    let want = c.requirements!.gpus!;
    left = left.filter((g) => {
      if (want > 0 && (memory === undefined || (g.memoryMb ?? 0) >= memory)) {
        want--;
        return false;
      }
      return true;
    });
    kept += c.cores.wholeNode ? offer.totalCores : c.cores.min;
  }
  return Math.min(kept, offer.freeCores);
}
