/**
 * CPU and memory use from /proc: the node's CPU use between two samples,
 * and each payload's CPU seconds and RSS summed over its process group.
 * Parsing is pure; `procUsage` is the real reader (Linux), `noUsage` the
 * fallback where there is no /proc.
 */
import { readFile } from 'node:fs/promises';
import { listPids, readStat } from '../executor/proc.js';
import { CLOCK_TICKS } from '../executor/process-tree.js';
import type { CpuTimes, GroupUsage, UsageProbe, UsageSample } from '../ports.js';

export type { CpuTimes, GroupUsage, UsageProbe, UsageSample } from '../ports.js';

/** The `cpu` line of /proc/stat as busy and total jiffies, or null. Pure. */
export function parseCpuTimes(procStat: string): CpuTimes | null {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  const n = line.trim().split(/\s+/).slice(1).map(Number);
  const total = n.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (n[3] ?? 0) + (n[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** Cores' worth of CPU used between two samples (0..cores). Pure. */
export function cpuUse(prev: CpuTimes | null, cur: CpuTimes | null, cores: number): number | undefined {
  if (!prev || !cur || cur.total <= prev.total) return undefined;
  const share = (cur.busy - prev.busy) / (cur.total - prev.total);
  return Math.round(Math.max(0, Math.min(1, share)) * cores * 100) / 100;
}

/** The real UsageProbe over /proc: one pass over the process table, read synchronously through one buffer. */
export const procUsage: UsageProbe = {
  async sample(pgids) {
    const cpu = await readFile('/proc/stat', 'utf8').then(parseCpuTimes, () => null);
    const groups = new Map<number, GroupUsage>();
    if (pgids.length === 0) return { cpu, groups };
    const wanted = new Set(pgids);
    for (const pid of listPids('/proc')) {
      const p = readStat('/proc', pid);
      if (!p || !wanted.has(p.pgid)) continue;
      const g = groups.get(p.pgid) ?? { cpuSec: 0, rssMb: 0 };
      g.cpuSec += (p.cpuTicks + p.childTicks) / CLOCK_TICKS;
      g.rssMb += p.rssKb / 1024;
      groups.set(p.pgid, g);
    }
    for (const g of groups.values()) {
      g.cpuSec = Math.round(g.cpuSec * 100) / 100;
      g.rssMb = Math.round(g.rssMb * 10) / 10;
    }
    return { cpu, groups };
  },
};

/** A UsageProbe that knows nothing (tests, non-Linux). */
export const noUsage: UsageProbe = { sample: async () => ({ cpu: null, groups: new Map() }) };
