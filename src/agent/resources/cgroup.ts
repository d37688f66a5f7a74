/**
 * The cores and memory this process's cgroup allows, v2 (`cpu.max`,
 * `memory.max`) or v1 (`cpu.cfs_quota_us`/`cpu.cfs_period_us`,
 * `memory.limit_in_bytes`). The roots are parameters so tests read fake
 * trees. The effective limit is the smallest along the path to the root.
 * A bad value is reported as a problem and ignored, never thrown.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** What the cgroup allows (null: no limit found). */
export interface CgroupLimits {
  version: 1 | 2 | null;
  cores: number | null;
  memoryBytes: number | null;
  /** Where the limits were read (the cgroup directories). */
  paths: string[];
  problems: string[];
}

/** v1 writes "no limit" as a huge page-aligned number; anything at or above this is unlimited. */
const V1_UNLIMITED = 2 ** 60;

type Parsed = { value: number | null } | { problem: string };

/** Cores from v2 `cpu.max` ("max 100000" or "400000 100000"). Pure. */
export function parseCpuMax(text: string): Parsed {
  const m = /^(max|\d+)(?:\s+(\d+))?$/.exec(text.trim());
  if (!m) return { problem: `cpu.max "${text.trim()}" is not "QUOTA PERIOD"` };
  if (m[1] === 'max') return { value: null };
  return coresFromQuota(Number(m[1]), Number(m[2] ?? 100000));
}

/** Cores from a CFS quota and period (quota -1: none). At least 1; a fraction rounds down. Pure. */
export function coresFromQuota(quota: number, period: number): Parsed {
  if (quota < 0) return { value: null };
  if (!(period > 0)) return { problem: `cpu period ${period} is not positive` };
  return { value: Math.max(1, Math.floor(quota / period)) };
}

/** Bytes from `memory.max` ("max" or a number) or `memory.limit_in_bytes`. Pure. */
export function parseMemoryLimit(name: string, text: string): Parsed {
  const t = text.trim();
  if (t === 'max') return { value: null };
  if (!/^\d+$/.test(t)) return { problem: `${name} "${t}" is not a number of bytes` };
  const n = Number(t);
  return { value: n >= V1_UNLIMITED ? null : n };
}

/** The cgroup path of each controller from /proc/self/cgroup text ("" is the v2 unified entry). Pure. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const c of m[1]!.split(',')) out.set(c.replace(/^name=/, ''), m[2]!);
  }
  return out;
}

/** The directory and its ancestors up to `root`, deepest first. */
function chain(root: string, rel: string): string[] {
  const dirs: string[] = [];
  let p = path.posix.normalize(`/${rel}`);
  for (;;) {
    dirs.push(path.join(root, p));
    if (p === '/') break;
    p = path.posix.dirname(p);
  }
  return dirs;
}

async function readOpt(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Read the limits of this process's cgroup under `cgroupRoot`, its membership from `procSelfCgroup`. */
export async function readCgroupLimits(cgroupRoot = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): Promise<CgroupLimits> {
  const res: CgroupLimits = { version: null, cores: null, memoryBytes: null, paths: [], problems: [] };
  const membership = parseProcCgroup((await readOpt(procSelfCgroup)) ?? '');
  const min = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
  const take = (p: Parsed, set: (v: number | null) => void, where: string) => {
    if ('problem' in p) res.problems.push(`${where}: ${p.problem}`);
    else set(p.value);
  };
  if (await exists(path.join(cgroupRoot, 'cgroup.controllers'))) {
    res.version = 2;
    for (const dir of chain(cgroupRoot, membership.get('') ?? '/')) {
      const cpu = await readOpt(path.join(dir, 'cpu.max'));
      if (cpu !== null) take(parseCpuMax(cpu), (v) => (res.cores = min(res.cores, v)), path.join(dir, 'cpu.max'));
      const mem = await readOpt(path.join(dir, 'memory.max'));
      if (mem !== null) take(parseMemoryLimit('memory.max', mem), (v) => (res.memoryBytes = min(res.memoryBytes, v)), path.join(dir, 'memory.max'));
      if (cpu !== null || mem !== null) res.paths.push(dir);
    }
    return res;
  }
  const cpuRoot = (await exists(path.join(cgroupRoot, 'cpu,cpuacct'))) ? path.join(cgroupRoot, 'cpu,cpuacct') : path.join(cgroupRoot, 'cpu');
  const memRoot = path.join(cgroupRoot, 'memory');
  if (!(await exists(cpuRoot)) && !(await exists(memRoot))) return res;
  res.version = 1;
  for (const dir of chain(cpuRoot, membership.get('cpu') ?? '/')) {
    const q = await readOpt(path.join(dir, 'cpu.cfs_quota_us'));
    const p = await readOpt(path.join(dir, 'cpu.cfs_period_us'));
    if (q === null || p === null) continue;
    res.paths.push(dir);
    if (!/^-?\d+$/.test(q.trim()) || !/^\d+$/.test(p.trim())) {
      res.problems.push(`${dir}: cpu.cfs_quota_us "${q.trim()}" / cpu.cfs_period_us "${p.trim()}" are not integers`);
      continue;
    }
    take(coresFromQuota(Number(q), Number(p)), (v) => (res.cores = min(res.cores, v)), dir);
  }
  for (const dir of chain(memRoot, membership.get('memory') ?? '/')) {
    const m = await readOpt(path.join(dir, 'memory.limit_in_bytes'));
    if (m === null) continue;
    res.paths.push(dir);
    take(parseMemoryLimit('memory.limit_in_bytes', m), (v) => (res.memoryBytes = min(res.memoryBytes, v)), path.join(dir, 'memory.limit_in_bytes'));
  }
  return res;
}
