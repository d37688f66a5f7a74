/**
 * Which pilot reserves cores for which large payload. Pure.
 *
 * The agent stops taking small work when the largest request waiting for it
 * has waited longer than its starvation bound (agent/matcher/starvation.ts).
 * If the server told every pilot about the same large payload, every pilot
 * would hold cores for it while only one can run it: at saturation a cluster
 * would idle a quarter of its cores. So each waiting payload is designated to
 * at most one pilot, and each pilot is told about at most one payload: the
 * one designated to it, kept until it starts there or elsewhere, or until the
 * pilot stops asking for work. Pilots with no designation are told of nothing
 * and keep filling their cores.
 *
 * A pilot with GPUs, while GPU work it could run is queued, reserves only
 * for GPU work: reserving its cores for a large CPU-only payload would drain
 * it and then hold its GPUs idle for as long as that payload runs (the
 * picker keeps its cores for the same reason: gpu-cores.ts).
 *
 * The designations are soft state, kept in the server's memory: after a
 * restart they are made again as pilots ask.
 */
import type { Candidate, Offer } from './offer.js';
import { wantsGpus } from './gpu-cores.js';
import { fits, type PilotCapacity } from './pick.js';

/** payload id → the pilot that reserves for it, and when that pilot last asked. */
export type Designations = Map<number, { pilotId: number; seenAt: number }>;

/** What the pilot is told: the request it should reserve cores for. */
export interface Waiting {
  cores: number;
  waitingSec: number;
}

/**
 * The payload this pilot should reserve for, updating `designations` in
 * place: drops designations of payloads no longer waiting and of pilots not
 * seen for `staleMs`, keeps this pilot's own, or designates to it the largest
 * (then longest waiting) undesignated payload that fits it when empty and
 * needs more than one core.
 */
export function designate(
  designations: Designations,
  candidates: readonly Candidate[],
  pilotId: number,
  pilot: PilotCapacity,
  now: number,
  staleMs: number,
): Waiting | null {
  const waiting = new Map(candidates.map((c) => [c.id, c]));
  for (const [payloadId, d] of designations) {
    if (!waiting.has(payloadId) || now - d.seenAt > staleMs) designations.delete(payloadId);
  }
  const empty = emptyOffer(pilot);
  // a GPU pilot with GPU work it could run queued reserves for GPU work only
  const gpuOnly = (empty.free?.gpus.length ?? 0) > 0 && candidates.some((c) => wantsGpus(c) && fits(c, empty) !== null);
  const eligible = (c: Candidate) => (!gpuOnly || wantsGpus(c)) && fits(c, empty) !== null;
  const describe = (c: Candidate): Waiting => ({
    cores: c.cores.wholeNode ? pilot.totalCores : c.cores.min,
    waitingSec: Math.max(0, (now - c.submittedAt) / 1000),
  });
  for (const [payloadId, d] of designations) {
    if (d.pilotId !== pilotId) continue;
    const c = waiting.get(payloadId)!;
    if (!eligible(c)) {
      designations.delete(payloadId);
      break;
    }
    d.seenAt = now;
    return describe(c);
  }
  let best: Candidate | null = null;
  let bestCores = 1;
  for (const c of candidates) {
    if (designations.has(c.id) || !eligible(c)) continue;
    const cores = c.cores.wholeNode ? pilot.totalCores : c.cores.min;
    if (cores > bestCores || (best && cores === bestCores && c.submittedAt < best.submittedAt)) {
      best = c;
      bestCores = cores;
    }
  }
  if (!best) return null;
  designations.set(best.id, { pilotId, seenAt: now });
  return describe(best);
}

function emptyOffer(pilot: PilotCapacity): Offer {
  const caps = pilot.capabilities ?? null;
  return {
    freeCores: pilot.totalCores,
    totalCores: pilot.totalCores,
    freeMemoryMb: pilot.memoryMb,
    remainingSec: pilot.remainingSec,
    capabilities: caps,
    free: { gpus: caps?.gpus ?? [], scratchMb: caps?.scratchMb ?? null },
  };
}
