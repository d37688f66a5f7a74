/**
 * Supply: the room queued work can go to without starting anything: the
 * free cores of serving pilots, the whole of booting pilots, and the whole
 * of instances requested, starting or booting. Each machine is counted once:
 * an instance whose pilot has registered is counted through that pilot (its
 * free cores, its memory, its deadline), never also by its shape; an
 * instance coming whose pilot the store does not list is counted by its
 * shape, never forgotten. Draining, halting, stalled or halted pilots offer
 * nothing. Pure.
 */
import type { PilotState } from '../../protocol/index.js';
import { isComing } from './instance-states.js';
import type { InstanceRecord, PilotSummary } from './ports.js';

/** One machine's room. */
export interface SupplySlot {
  /** `pilot:ID` or `instance:ID`. */
  id: string;
  /** The endpoint it belongs to (null: a pilot no instance started). */
  endpoint: string | null;
  freeCores: number;
  totalCores: number;
  freeMemoryMb: number;
  /** Seconds it has left (null: no limit). */
  remainingSec: number | null;
  /** Its pilot has not registered: the machine is still coming. */
  coming: boolean;
}

/** What supply counts, per endpoint and in all. */
export interface SupplyCount {
  /** Free cores of serving pilots. */
  freeCores: number;
  /** Cores of machines coming (instances requested to booting, pilots booting). */
  comingCores: number;
  /** Machines counted. */
  machines: number;
}

/** All the room, and its counts. */
export interface Supply {
  slots: SupplySlot[];
  total: SupplyCount;
  /** Per endpoint ("" for pilots no instance started). */
  byEndpoint: ReadonlyMap<string, SupplyCount>;
}

/** Pilot states whose free cores take work now. */
const SERVING: ReadonlySet<PilotState> = new Set(['running']);
/** Pilot states that will take work soon: all their cores. */
const COMING: ReadonlySet<PilotState> = new Set(['submitted', 'booting']);

/** Count the supply at `now`. */
export function supplyFrom(pilots: readonly PilotSummary[], instances: readonly InstanceRecord[], lifetimeSecOf: (i: InstanceRecord) => number, now: number): Supply {
  const pilotById = new Map(pilots.map((p) => [p.id, p]));
  const endpointOfPilot = new Map<number, string>();
  const slots: SupplySlot[] = [];
  for (const i of instances) {
    if (i.pilotId !== null && pilotById.has(i.pilotId)) {
      endpointOfPilot.set(i.pilotId, i.endpoint);
      continue;
    }
    // a registered instance whose pilot is not listed has no pilot that serves: nothing to count
    if (!isComing(i.state)) continue;
    const age = (now - i.requestedAt) / 1000;
    slots.push({
      id: `instance:${i.id}`,
      endpoint: i.endpoint,
      freeCores: i.cores,
      totalCores: i.cores,
      freeMemoryMb: i.memoryMb,
      remainingSec: Math.max(0, lifetimeSecOf(i) - age),
      coming: true,
    });
  }
  for (const p of pilots) {
    const serving = SERVING.has(p.state);
    const coming = COMING.has(p.state);
    if (!serving && !coming) continue;
    const freeCores = coming ? p.cores : Math.max(0, p.cores - p.coresUsed);
    slots.push({
      id: `pilot:${p.id}`,
      endpoint: endpointOfPilot.get(p.id) ?? null,
      freeCores,
      totalCores: p.cores,
      freeMemoryMb: coming ? p.memoryMb : Math.max(0, p.memoryMb - p.memoryUsedMb),
      remainingSec: p.deadline === null ? null : Math.max(0, (p.deadline - now) / 1000),
      coming,
    });
  }
  const total: SupplyCount = { freeCores: 0, comingCores: 0, machines: 0 };
  const byEndpoint = new Map<string, SupplyCount>();
  for (const s of slots) {
    const e = byEndpoint.get(s.endpoint ?? '') ?? { freeCores: 0, comingCores: 0, machines: 0 };
    for (const c of [total, e]) {
      if (s.coming) c.comingCores += s.freeCores;
      else c.freeCores += s.freeCores;
      c.machines++;
    }
    byEndpoint.set(s.endpoint ?? '', e);
  }
  return { slots, total, byEndpoint };
}
