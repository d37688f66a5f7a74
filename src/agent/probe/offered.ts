/**
 * What the agent offers: the probed node with stronger sources laid over it,
 * strongest first: config (flags, env, file) > the job's own allocation in
 * its Job Features > the batch system's allocation > cgroup limits > the
 * machine-wide counts of Machine Features > the probe. What describes the
 * job wins over what describes the whole node, which is only a fallback.
 * Each value says where it came from, why it won, and lists every
 * candidate. Pure.
 */
import type { NodeSnapshot } from '../ports.js';

/** Where a value came from: `mjf` is the job's Job Features, `mjf-machine` the node's Machine Features. */
export type ValueSource = 'config' | 'mjf' | 'batch' | 'cgroup' | 'mjf-machine' | 'probe';

/** The cores and memory (MiB) one source says the agent has; null where it says nothing. */
export interface ResourceLayer {
  cores: number | null;
  memoryMb: number | null;
  /** What in the source gave the cores and the memory (`$JOBFEATURES/allocated_cpu`, `NSLOTS`, ...). */
  coresFrom?: string | null;
  memoryFrom?: string | null;
}

/** Every source but the probe, each optional. */
export type ResourceLayers = Partial<Record<Exclude<ValueSource, 'probe'>, ResourceLayer>>;

/** A value, its source, what each source said, what in each source said it, and why the winner won. */
export interface Sourced<T> {
  value: T;
  source: ValueSource;
  candidates: Partial<Record<ValueSource, T>>;
  origins: Partial<Record<ValueSource, string>>;
  reason: string;
}

/** The node as the agent offers it (`vmpilot probe` prints this). */
export interface OfferedResources {
  hostname: string;
  cores: Sourced<number>;
  memoryMb: { total: number; free: number; source: ValueSource; candidates: Partial<Record<ValueSource, number>>; origins: Partial<Record<ValueSource, string>>; reason: string; probedFree: number };
  diskFreeMb: { value: number | null; source: ValueSource };
  load: { value: [number, number, number]; source: ValueSource };
  uptimeSec: number;
}

/** Strongest first. */
export const SOURCE_ORDER: readonly Exclude<ValueSource, 'probe'>[] = ['config', 'mjf', 'batch', 'cgroup', 'mjf-machine'];

/** Why a value from each source wins over the weaker ones. */
const WHY: Record<ValueSource, string> = {
  config: 'set by the operator (flag, environment or config file), which wins over every other source',
  mjf: "the job's own allocation in its Job Features, which wins over the batch system, cgroup and machine-wide counts",
  batch: "the batch system's allocation for this job, which wins over cgroup limits and machine-wide counts",
  cgroup: "the limit of the cgroup the agent runs in, which wins over machine-wide counts",
  'mjf-machine': 'nothing describes the job, so the machine-wide count of Machine Features is the fallback',
  probe: 'no source describes the job or the node, so the node as probed',
};

function strongest(field: 'cores' | 'memoryMb', layers: ResourceLayers, probed: number, probeFrom: string): Sourced<number> {
  const candidates: Partial<Record<ValueSource, number>> = {};
  const origins: Partial<Record<ValueSource, string>> = {};
  let chosen: { value: number; source: ValueSource } | null = null;
  for (const s of SOURCE_ORDER) {
    const layer = layers[s];
    const v = layer?.[field];
    if (v === null || v === undefined || !(v > 0)) continue;
    candidates[s] = v;
    const from = field === 'cores' ? layer?.coresFrom : layer?.memoryFrom;
    if (from) origins[s] = from;
    chosen ??= { value: v, source: s };
  }
  candidates.probe = probed;
  origins.probe = probeFrom;
  const win = chosen ?? { value: probed, source: 'probe' as const };
  const beaten = Object.entries(candidates)
    .filter(([s]) => s !== win.source)
    .map(([s, v]) => `${s} ${v}${origins[s as ValueSource] ? ` (${origins[s as ValueSource]})` : ''}`);
  const from = origins[win.source];
  const reason = `${win.value} from ${win.source}${from ? ` (${from})` : ''}: ${WHY[win.source]}${beaten.length ? `; over ${beaten.join(', ')}` : ''}`;
  return { ...win, candidates, origins, reason };
}

/** Lay the stronger sources over a probe snapshot. */
export function offeredResources(snap: NodeSnapshot, layers: ResourceLayers): OfferedResources {
  const cores = strongest('cores', layers, snap.cores, 'the processors the node shows');
  const mem = strongest('memoryMb', layers, snap.memoryMb.total, 'the memory the node shows');
  // A limit from a source (not the probe) is what we may use; the probe's free memory still caps it.
  const free = mem.source === 'probe' ? snap.memoryMb.free : Math.min(mem.value, snap.memoryMb.free);
  return {
    hostname: snap.hostname,
    cores,
    memoryMb: {
      total: mem.value,
      free: mem.source === 'config' ? mem.value : free,
      source: mem.source,
      candidates: mem.candidates,
      origins: mem.origins,
      reason: mem.reason,
      probedFree: snap.memoryMb.free,
    },
    diskFreeMb: { value: snap.diskFreeMb, source: 'probe' },
    load: { value: snap.load, source: 'probe' },
    uptimeSec: snap.uptimeSec,
  };
}

function others(c: Partial<Record<ValueSource, number>>, chosen: ValueSource, origins: Partial<Record<ValueSource, string>>): string {
  const rest = Object.entries(c).filter(([s]) => s !== chosen);
  const from = chosen !== 'probe' && origins[chosen] ? `: ${origins[chosen]}` : '';
  return `${from}${rest.length === 0 ? '' : `; ${rest.map(([s, v]) => `${s} ${v}`).join(', ')}`}`;
}

/** Human-readable lines for `vmpilot probe`. */
export function formatResources(r: OfferedResources): string {
  const fmt = (n: number) => n.toFixed(2);
  return [
    `host      ${r.hostname}`,
    `cores     ${r.cores.value} (${r.cores.source}${others(r.cores.candidates, r.cores.source, r.cores.origins)})`,
    `memory    ${r.memoryMb.total} MiB total, ${r.memoryMb.free} MiB free (${r.memoryMb.source}${others(r.memoryMb.candidates, r.memoryMb.source, r.memoryMb.origins)})`,
    `disk      ${r.diskFreeMb.value === null ? 'unknown' : `${r.diskFreeMb.value} MiB free`} (probe)`,
    `load      ${r.load.value.map(fmt).join(' ')} (probe)`,
    `uptime    ${r.uptimeSec} s`,
    '',
  ].join('\n');
}
