/**
 * What the agent offers: the probed node with stronger sources laid over it,
 * strongest first: config (flags, env, file) > Machine/Job Features > the
 * batch system's allocation > cgroup limits > the probe. Each value says
 * where it came from and lists every candidate. Pure.
 */
import type { NodeSnapshot } from '../ports.js';

/** Where a value came from. */
export type ValueSource = 'config' | 'mjf' | 'batch' | 'cgroup' | 'probe';

/** The cores and memory (MiB) one source says the agent has; null where it says nothing. */
export interface ResourceLayer {
  cores: number | null;
  memoryMb: number | null;
}

/** Every source but the probe, each optional. */
export type ResourceLayers = Partial<Record<Exclude<ValueSource, 'probe'>, ResourceLayer>>;

/** A value, its source, and what each source said. */
export interface Sourced<T> {
  value: T;
  source: ValueSource;
  candidates: Partial<Record<ValueSource, T>>;
}

/** The node as the agent offers it (`vmpilot probe` prints this). */
export interface OfferedResources {
  hostname: string;
  cores: Sourced<number>;
  memoryMb: { total: number; free: number; source: ValueSource; candidates: Partial<Record<ValueSource, number>>; probedFree: number };
  diskFreeMb: { value: number | null; source: ValueSource };
  load: { value: [number, number, number]; source: ValueSource };
  uptimeSec: number;
}

/** Strongest first. */
export const SOURCE_ORDER: readonly Exclude<ValueSource, 'probe'>[] = ['config', 'mjf', 'batch', 'cgroup'];

function strongest(field: keyof ResourceLayer, layers: ResourceLayers, probed: number): Sourced<number> {
  const candidates: Partial<Record<ValueSource, number>> = {};
  let chosen: { value: number; source: ValueSource } | null = null;
  for (const s of SOURCE_ORDER) {
    const v = layers[s]?.[field];
    if (v === null || v === undefined || !(v > 0)) continue;
    candidates[s] = v;
    chosen ??= { value: v, source: s };
  }
  candidates.probe = probed;
  return { ...(chosen ?? { value: probed, source: 'probe' as const }), candidates };
}

/** Lay the stronger sources over a probe snapshot. */
export function offeredResources(snap: NodeSnapshot, layers: ResourceLayers): OfferedResources {
  const cores = strongest('cores', layers, snap.cores);
  const mem = strongest('memoryMb', layers, snap.memoryMb.total);
  // A limit from a source (not the probe) is what we may use; the probe's free memory still caps it.
  const free = mem.source === 'probe' ? snap.memoryMb.free : Math.min(mem.value, snap.memoryMb.free);
  return {
    hostname: snap.hostname,
    cores,
    memoryMb: { total: mem.value, free: mem.source === 'config' ? mem.value : free, source: mem.source, candidates: mem.candidates, probedFree: snap.memoryMb.free },
    diskFreeMb: { value: snap.diskFreeMb, source: 'probe' },
    load: { value: snap.load, source: 'probe' },
    uptimeSec: snap.uptimeSec,
  };
}

function others(c: Partial<Record<ValueSource, number>>, chosen: ValueSource): string {
  const rest = Object.entries(c).filter(([s]) => s !== chosen);
  return rest.length === 0 ? '' : `; ${rest.map(([s, v]) => `${s} ${v}`).join(', ')}`;
}

/** Human-readable lines for `vmpilot probe`. */
export function formatResources(r: OfferedResources): string {
  const fmt = (n: number) => n.toFixed(2);
  return [
    `host      ${r.hostname}`,
    `cores     ${r.cores.value} (${r.cores.source}${others(r.cores.candidates, r.cores.source)})`,
    `memory    ${r.memoryMb.total} MiB total, ${r.memoryMb.free} MiB free (${r.memoryMb.source}${others(r.memoryMb.candidates, r.memoryMb.source)})`,
    `disk      ${r.diskFreeMb.value === null ? 'unknown' : `${r.diskFreeMb.value} MiB free`} (probe)`,
    `load      ${r.load.value.map(fmt).join(' ')} (probe)`,
    `uptime    ${r.uptimeSec} s`,
    '',
  ].join('\n');
}
