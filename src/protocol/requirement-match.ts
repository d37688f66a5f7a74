/**
 * Matching requirements (requirements.ts) against what a node has. Pure;
 * the one rule the server's picker and the agent's admission both apply.
 *
 * A node's capabilities are what it is (architecture, platform, site, tags,
 * its GPUs); what is free on it now (GPUs not given to a payload, scratch
 * not promised to one) is checked only when given, so the same rule says
 * both "could this node ever run it" (the `job N` waiting line) and "may it
 * start here now" (the picker, the agent's admission). A capability that is
 * not known never meets a requirement, except `notSite`: a node with no site
 * is at none of the sites it names.
 */
import { REQUIREMENT_KEYS, parseArch, parsePlatform, splitPlatform, type Capabilities, type GpuInfo, type RequirementKey, type Requirements } from './requirements.js';

/** What is free on the node now: its GPUs not given to any payload, and scratch not promised to one (MiB; null: unknown). */
export interface FreeResources {
  gpus: readonly GpuInfo[];
  scratchMb: number | null;
}

/** One requirement a node does not meet: its key, what it asks (`2 GPUs free`) and what the node has (`1 free of 2`). */
export interface Unmet {
  key: RequirementKey;
  /** What a node must have, a noun phrase completing "has …" or "lacks …": `2 GPUs`, `site CERN or RAL`, `arch x86_64-v3`. */
  wants: string;
  /** What this node has instead: `no GPU`, `site RAL`. */
  has: string;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const or = (list: readonly string[]) => list.join(' or ');

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** True when the node's arch (and x86-64 level) meets `spec` (`x86_64-v3`: x86_64 at level 3 or higher). */
export function archMeets(spec: string, arch: string | null | undefined, level: number | null | undefined): boolean {
  const want = parseArch(spec);
  const have = arch ? parseArch(arch) : null;
  if (!want || !have || want.arch !== have.arch) return false;
  return want.level === null || (level ?? have.level ?? 0) >= want.level;
}

/** True when the node's platform (`el9`) meets `spec` (`el9`, `el>=8`). */
export function platformMeets(spec: string, platform: string | null | undefined): boolean {
  const want = parsePlatform(spec);
  if (!want || !platform) return false;
  if (want.kind === 'exact') return want.name === platform;
  const have = splitPlatform(platform);
  if (!have || have.family !== want.family) return false;
  const d = compareVersions(have.version, want.version);
  return want.op === '>=' ? d >= 0 : d <= 0;
}

/** The GPUs among `gpus` that have at least `memoryMb` (all of them when no memory is asked; one of unknown memory never has). */
function withMemory(gpus: readonly GpuInfo[], memoryMb: number | undefined): GpuInfo[] {
  return memoryMb === undefined ? [...gpus] : gpus.filter((g) => (g.memoryMb ?? 0) >= memoryMb);
}

/**
 * Every requirement of `r` the node does not meet, in the order of
 * REQUIREMENT_KEYS; empty when it meets them all. With `free`, the GPUs and
 * scratch must be free now; without, the node need only have them.
 */
export function unmetRequirements(r: Requirements | null | undefined, caps: Capabilities | null | undefined, free?: FreeResources): Unmet[] {
  if (!r) return [];
  const c: Capabilities = caps ?? {};
  const out: Unmet[] = [];
  for (const key of REQUIREMENT_KEYS) {
    const u = unmetKey(key, r, c, free);
    if (u) out.push(u);
  }
  return out;
}

/** True when the node meets every requirement of `r` (see unmetRequirements). */
export function meetsRequirements(r: Requirements | null | undefined, caps: Capabilities | null | undefined, free?: FreeResources): boolean {
  if (!r) return true;
  const c: Capabilities = caps ?? {};
  for (const key of REQUIREMENT_KEYS) if (r[key] !== undefined && unmetKey(key, r, c, free)) return false;
  return true;
}

function unmetKey(key: RequirementKey, r: Requirements, c: Capabilities, free: FreeResources | undefined): Unmet | null {
  const archName = c.arch ? `${c.arch}${c.cpuLevel ? `-v${c.cpuLevel}` : ''}` : 'no known architecture';
  switch (key) {
    case 'arch': {
      const list = r.arch;
      if (!list || list.some((a) => archMeets(a, c.arch, c.cpuLevel))) return null;
      return { key, wants: `arch ${or(list)}`, has: archName };
    }
    case 'platform': {
      const list = r.platform;
      if (!list || list.some((p) => platformMeets(p, c.platform))) return null;
      return { key, wants: `platform ${or(list)}`, has: c.platform ?? 'no known platform' };
    }
    case 'site': {
      const list = r.site;
      if (!list || (c.site && list.includes(c.site))) return null;
      return { key, wants: `site ${or(list)}`, has: c.site ? `site ${c.site}` : 'no site' };
    }
    case 'notSite': {
      const list = r.notSite;
      if (!list || !c.site || !list.includes(c.site)) return null;
      return { key, wants: `a site other than ${or(list)}`, has: `site ${c.site}` };
    }
    case 'tag': {
      const list = r.tag;
      const tags = c.tags ?? [];
      const missing = list?.filter((t) => !tags.includes(t)) ?? [];
      if (missing.length === 0) return null;
      return { key, wants: `tag ${list!.join(' and ')}`, has: tags.length ? `tags ${tags.join(', ')}` : 'no tags' };
    }
    case 'gpus': {
      const n = r.gpus;
      if (n === undefined || n === 0) return null;
      const all = c.gpus ?? [];
      const fitting = withMemory(all, r.gpuMemoryMb);
      // the memory is its own requirement: here only the count, of GPUs that have the memory
      if (fitting.length < n) return r.gpuMemoryMb !== undefined && all.length >= n ? null : { key, wants: n === 1 ? 'a GPU' : plural(n, 'GPU'), has: all.length ? plural(all.length, 'GPU') : 'no GPU' };
      if (!free) return null;
      const freeFitting = withMemory(free.gpus, r.gpuMemoryMb).length;
      const sized = r.gpuMemoryMb === undefined ? '' : ` of ${r.gpuMemoryMb} MiB or more`;
      return freeFitting >= n ? null : { key, wants: `${n === 1 ? 'a GPU' : plural(n, 'GPU')}${sized} free`, has: `${freeFitting} free of ${all.length}` };
    }
    case 'gpuMemoryMb': {
      const m = r.gpuMemoryMb;
      if (m === undefined) return null;
      const n = r.gpus ?? 1;
      if (withMemory(c.gpus ?? [], m).length >= n) return null;
      const sizes = [...new Set((c.gpus ?? []).map((g) => (g.memoryMb === null || g.memoryMb === undefined ? 'unknown' : `${g.memoryMb} MiB`)))];
      return { key, wants: `${n === 1 ? 'a GPU' : plural(n, 'GPU')} of ${m} MiB or more`, has: sizes.length ? `GPUs of ${sizes.join(', ')}` : 'no GPU' };
    }
    case 'scratchMb': {
      const m = r.scratchMb;
      if (m === undefined) return null;
      if (c.scratchMb === null || c.scratchMb === undefined || c.scratchMb < m) return { key, wants: `${m} MiB of scratch`, has: c.scratchMb == null ? 'no known scratch' : `${c.scratchMb} MiB` };
      if (!free) return null;
      return free.scratchMb !== null && free.scratchMb >= m ? null : { key, wants: `${m} MiB of scratch free`, has: free.scratchMb === null ? 'unknown free' : `${free.scratchMb} MiB free` };
    }
  }
  return null;
}

/** "needs 2 GPUs free (this node: 1 free of 2); needs site CERN (this node: site RAL)": what a node does not meet, on one line. */
export function describeUnmet(list: readonly Unmet[]): string {
  return list.map((u) => `needs ${u.wants} (this node: ${u.has})`).join('; ');
}
