/**
 * What the agent offers: the probed node with the configured cores and
 * memory laid over it, each value tagged with where it came from. Pure.
 */
import type { NodeSnapshot } from '../ports.js';

/** Where a value came from. */
export type ValueSource = 'probe' | 'config';

/** The node as the agent offers it (`vmpilot probe` prints this). */
export interface OfferedResources {
  hostname: string;
  cores: { value: number; source: ValueSource; probed: number };
  memoryMb: { total: number; free: number; source: ValueSource; probedTotal: number; probedFree: number };
  diskFreeMb: { value: number | null; source: ValueSource };
  load: { value: [number, number, number]; source: ValueSource };
  uptimeSec: number;
}

/** Lay the configured cores and memory (null = not set) over a probe snapshot. */
export function offeredResources(
  snap: NodeSnapshot,
  configured: { cores: number | null; memoryMb: number | null },
): OfferedResources {
  const memTotal = configured.memoryMb ?? snap.memoryMb.total;
  return {
    hostname: snap.hostname,
    cores: { value: configured.cores ?? snap.cores, source: configured.cores === null ? 'probe' : 'config', probed: snap.cores },
    memoryMb: {
      total: memTotal,
      free: configured.memoryMb === null ? snap.memoryMb.free : configured.memoryMb,
      source: configured.memoryMb === null ? 'probe' : 'config',
      probedTotal: snap.memoryMb.total,
      probedFree: snap.memoryMb.free,
    },
    diskFreeMb: { value: snap.diskFreeMb, source: 'probe' },
    load: { value: snap.load, source: 'probe' },
    uptimeSec: snap.uptimeSec,
  };
}

/** Human-readable lines for `vmpilot probe`. */
export function formatResources(r: OfferedResources): string {
  const fmt = (n: number) => n.toFixed(2);
  return [
    `host      ${r.hostname}`,
    `cores     ${r.cores.value} (${r.cores.source}${r.cores.source === 'config' ? `; probed ${r.cores.probed}` : ''})`,
    `memory    ${r.memoryMb.total} MiB total, ${r.memoryMb.free} MiB free (${r.memoryMb.source}${
      r.memoryMb.source === 'config' ? `; probed ${r.memoryMb.probedTotal} total, ${r.memoryMb.probedFree} free` : ''
    })`,
    `disk      ${r.diskFreeMb.value === null ? 'unknown' : `${r.diskFreeMb.value} MiB free`} (probe)`,
    `load      ${r.load.value.map(fmt).join(' ')} (probe)`,
    `uptime    ${r.uptimeSec} s`,
    '',
  ].join('\n');
}
