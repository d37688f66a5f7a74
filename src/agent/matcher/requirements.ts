/**
 * The agent's own check of a payload's requirements, and the GPUs it gives
 * it. Pure. The server hands out only what the pilot's capabilities meet
 * with the GPUs it said were free, but its view is one match request old:
 * the agent checks again against what is free now, and gives each payload
 * GPUs no other payload holds, the first free ones that have the memory it
 * asks (as the server's picker counts them). A payload that does not fit
 * now is given back (`payload-released`), never started.
 */
import { describeUnmet, unmetRequirements, type Assignment, type Capabilities, type FreeResources, type GpuInfo } from '../../protocol/index.js';

/** What the node is and has free now. */
export interface NodeNow {
  capabilities: Capabilities | null;
  free: FreeResources;
}

/** Where a payload goes: the GPUs it gets (ids), or why it is given back. */
export type Placement = { kind: 'place'; gpus: string[] } | { kind: 'release'; message: string };

/** The GPUs among `devices` that none of `held` (the GPU ids of payloads held now) has. */
export function freeGpus(devices: readonly GpuInfo[], held: Iterable<readonly string[] | undefined>): GpuInfo[] {
  const busy = new Set<string>();
  for (const ids of held) for (const id of ids ?? []) busy.add(id);
  return devices.filter((d) => !busy.has(d.id));
}

/** Check `a`'s requirements against the node now and, when they hold, choose its GPUs. */
export function place(a: Assignment, node: NodeNow): Placement {
  const unmet = unmetRequirements(a.requirements, node.capabilities, node.free);
  if (unmet.length > 0) return { kind: 'release', message: `not started: ${describeUnmet(unmet)}` };
  const want = a.requirements?.gpus ?? 0;
  const memory = a.requirements?.gpuMemoryMb;
  const gpus = node.free.gpus.filter((g) => memory === undefined || (g.memoryMb ?? 0) >= memory).slice(0, want).map((g) => g.id);
  return { kind: 'place', gpus };
}

/** Scratch (MiB) not promised to the payloads held: the node's scratch less what each declared; null when the node's is unknown. */
export function freeScratchMb(scratchMb: number | null, held: Iterable<Assignment | undefined>): number | null {
  if (scratchMb === null) return null;
  let promised = 0;
  for (const a of held) promised += a?.requirements?.scratchMb ?? 0;
  return Math.max(0, Math.floor(scratchMb - promised));
}
