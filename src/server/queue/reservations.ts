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
 * The designations are soft state, kept in the store (so that several
 * server processes share them; store.ts `ReservationStore`): `decideDesignation`
 * takes them as rows and returns the changes the store applies in the same
 * transaction. `designate` applies the same decision to a Map, for the
 * packing simulator. Lost designations cost nothing but a moment of
 * reserving: they are made again as pilots ask.
 */
import type { Candidate, Offer } from './offer.js';
import { wantsGpus } from './gpu-cores.js';
import { fits, type PilotCapacity } from './pick.js';

/** payload id → the pilot that reserves for it, and when that pilot last asked. */
export type Designations = Map<number, { pilotId: number; seenAt: number }>;

/** One designation as a store keeps it. */
export interface DesignationRow {
  payloadId: number;
  pilotId: number;
  seenAt: number;
}

/** A change to the designations: one dropped, or one made or seen again. */
export type DesignationChange = { kind: 'drop'; payloadId: number } | ({ kind: 'set' } & DesignationRow);

/**
 * A designation decision over the rows a store read (`decideDesignation`
 * with everything but the rows bound): what to tell the pilot, and the
 * changes to apply.
 */
export type Designator = (rows: readonly DesignationRow[]) => { waiting: Waiting | null; changes: DesignationChange[] };

/** What the pilot is told: the request it should reserve cores for. */
export interface Waiting {
  cores: number;
  waitingSec: number;
}

/**
 * The payload this pilot should reserve for, updating `designations` (in
 * memory) in place: drops designations of payloads no longer waiting and of pilots not
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

/**
 * The decision of `designate` over the designations as rows, changing
 * nothing: what the pilot is told, and the changes that bring the rows to
 * what `designate` would leave in its Map (a store applies them in the
 * transaction it read the rows in). Pure.
 */
export function decideDesignation(
  rows: readonly DesignationRow[],
  candidates: readonly Candidate[],
  pilotId: number,
  pilot: PilotCapacity,
  now: number,
  staleMs: number,
): { waiting: Waiting | null; changes: DesignationChange[] } {
  const before = new Map(rows.map((r) => [r.payloadId, r]));
  const after: Designations = new Map(rows.map((r) => [r.payloadId, { pilotId: r.pilotId, seenAt: r.seenAt }]));
  const waiting = designate(after, candidates, pilotId, pilot, now, staleMs);
  const changes: DesignationChange[] = [];
  for (const payloadId of before.keys()) if (!after.has(payloadId)) changes.push({ kind: 'drop', payloadId });
  for (const [payloadId, d] of after) {
    const was = before.get(payloadId);
    if (!was || was.pilotId !== d.pilotId || was.seenAt !== d.seenAt) changes.push({ kind: 'set', payloadId, pilotId: d.pilotId, seenAt: d.seenAt });
  }
  return { waiting, changes };
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
