/**
 * CPU and memory use from /proc: the node's CPU use between two samples,
 * and each payload's CPU seconds and RSS summed over its process group.
 * Parsing is pure; `procUsage` is the real reader (Linux), `noUsage` the
 * fallback where there is no /proc.
 */
import { readFile, readdir } from 'node:fs/promises';

/** Jiffies the node spent busy and in total, from the `cpu` line of /proc/stat. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** One process group's use. */
export interface GroupUsage {
  cpuSec: number;
  rssMb: number;
}

/** One reading of the node and of the payload groups. */
export interface UsageSample {
  cpu: CpuTimes | null;
  groups: Map<number, GroupUsage>;
}

/** Reads usage; `pgids` are the process groups of the payloads. */
export interface UsageProbe {
  sample(pgids: readonly number[]): Promise<UsageSample>;
}

/** Clock ticks per second and page size on Linux (x86_64, aarch64). */
export const CLK_TCK = 100;
const PAGE = 4096;

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

/** Fields of /proc/<pid>/stat after the command name (field 3 is index 0). Pure. */
export function statFields(stat: string): string[] | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  return stat.slice(close + 2).trim().split(/\s+/);
}

/** Process group, CPU ticks (own + reaped children) and RSS pages of a /proc/<pid>/stat line. Pure. */
export function parseProcStat(stat: string): { pgrp: number; ticks: number; rssPages: number; startTicks: number } | null {
  const f = statFields(stat);
  if (!f || f.length < 22) return null;
  // man 5 proc: (5) pgrp, (14) utime, (15) stime, (16) cutime, (17) cstime, (22) starttime, (24) rss
  const at = (field: number) => Number(f[field - 3]);
  return { pgrp: at(5), ticks: at(14) + at(15) + at(16) + at(17), rssPages: at(24), startTicks: at(22) };
}

/** The real UsageProbe over /proc. */
export const procUsage: UsageProbe = {
  async sample(pgids) {
    const cpu = await readFile('/proc/stat', 'utf8').then(parseCpuTimes, () => null);
    const groups = new Map<number, GroupUsage>();
    if (pgids.length === 0) return { cpu, groups };
    const wanted = new Set(pgids);
    const entries = await readdir('/proc').catch(() => [] as string[]);
    await Promise.all(
      entries
        .filter((e) => /^\d+$/.test(e))
        .map(async (pid) => {
          const p = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''));
          if (!p || !wanted.has(p.pgrp)) return;
          const g = groups.get(p.pgrp) ?? { cpuSec: 0, rssMb: 0 };
          g.cpuSec += p.ticks / CLK_TCK;
          g.rssMb += (p.rssPages * PAGE) / (1024 * 1024);
          groups.set(p.pgrp, g);
        }),
    );
    for (const g of groups.values()) {
      g.cpuSec = Math.round(g.cpuSec * 100) / 100;
      g.rssMb = Math.round(g.rssMb * 10) / 10;
    }
    return { cpu, groups };
  },
};

/** A UsageProbe that knows nothing (tests, non-Linux). */
export const noUsage: UsageProbe = { sample: async () => ({ cpu: null, groups: new Map() }) };
