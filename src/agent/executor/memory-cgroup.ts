/**
 * The cgroups of one payload, when the agent may create them (root, a
 * writable v1 hierarchy, or a v2 tree):
 *   - containment: a cgroup its processes cannot leave (they run as an
 *     unprivileged user, the cgroup's files are root's), so a process that
 *     detaches, changes its environment and is re-parented to init is still
 *     found and killed; v1 uses the `pids` hierarchy, whose `pids.max` set
 *     to 0 stops forks while the rest is killed; v2 `cgroup.kill`;
 *   - memory: the payload's memory limit, where the kernel enforces it
 *     (v1 `memory` hierarchy; on v2 the same directory, when the memory
 *     controller is enabled for it).
 * They are created under the agent's own cgroup where possible, so site
 * limits still apply, and removed when the payload ends. Failing to create
 * one is normal: the caller falls back to RSS sampling and the process tree.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseProcCgroup } from '../resources/cgroup.js';
import { signalPids } from './proc.js';

/** A payload's created cgroups. */
export interface MemoryCgroup {
  /** Its directories (one on v2; memory and pids on v1). */
  readonly dirs: readonly string[];
  readonly version: 1 | 2;
  /** The kernel enforces the memory limit. */
  readonly limited: boolean;
  /** A cgroup the payload cannot leave holds it (containment). */
  readonly contained: boolean;
  /** Move a process into it. False when that failed. */
  add(pid: number): boolean;
  /** Pids in it now. */
  pids(): number[];
  /** True once the kernel OOM-killed something in it. */
  oomKilled(): boolean;
  /** Peak memory use in bytes, when the kernel tracks it. */
  peakBytes(): number | null;
  /** Kill every process in it (no new ones can start while it does, where the kernel allows); the number signalled. */
  killAll(): number;
  /** Remove it (it must be empty); false when it could not be removed. */
  remove(): boolean;
}

const read = (f: string): string | null => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return null;
  }
};

const write = (f: string, value: string): boolean => {
  try {
    writeFileSync(f, value);
    return true;
  } catch {
    return false;
  }
};

function candidates(base: string, own: string | undefined, name: string): string[] {
  const dirs = [];
  if (own && own !== '/') dirs.push(path.join(base, own, name));
  dirs.push(path.join(base, name));
  return dirs;
}

/** Make directory `name` under `base` (below the agent's own cgroup `own` where possible) and run `setup` in it; null when none can be made. */
function makeDir(base: string, own: string | undefined, name: string, setup: (dir: string) => boolean): string | null {
  if (!existsSync(base)) return null;
  for (const dir of candidates(base, own, name)) {
    try {
      mkdirSync(dir);
    } catch {
      continue;
    }
    if (setup(dir)) return dir;
    try {
      rmdirSync(dir);
    } catch {
      // leave it
    }
  }
  return null;
}

/** What to create: a memory limit (bytes, or null for none) and/or containment. */
export interface CgroupWants {
  limitBytes: number | null;
  contain: boolean;
}

/**
 * Create the cgroups `name` of a payload, or null when none of what was
 * asked can be made. `contain` without a limit makes only the containment
 * cgroup; a limit without `contain` only the memory one (as before).
 */
export function createPayloadCgroup(name: string, wants: CgroupWants, cgroupRoot = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): MemoryCgroup | null {
  const membership = parseProcCgroup(read(procSelfCgroup) ?? '');
  const v2 = existsSync(path.join(cgroupRoot, 'cgroup.controllers'));
  const limit = wants.limitBytes;
  if (v2) {
    const dir = makeDir(cgroupRoot, membership.get(''), name, (d) => (limit === null ? wants.contain : write(path.join(d, 'memory.max'), String(limit)) || wants.contain));
    if (!dir) return null;
    const limited = limit !== null && read(path.join(dir, 'memory.max'))?.trim() === String(limit);
    return handle([dir], 2, limited, wants.contain, limited ? dir : null, wants.contain ? dir : null);
  }
  let memory: string | null = null;
  if (limit !== null) {
    memory = makeDir(path.join(cgroupRoot, 'memory'), membership.get('memory'), name, (d) => {
      if (!write(path.join(d, 'memory.limit_in_bytes'), String(limit))) return false;
      // no swap beyond the limit, where swap accounting exists
      write(path.join(d, 'memory.memsw.limit_in_bytes'), String(limit));
      return true;
    });
  }
  const pids = wants.contain ? makeDir(path.join(cgroupRoot, 'pids'), membership.get('pids'), name, () => true) : null;
  const dirs = [memory, pids].filter((d): d is string => d !== null);
  if (dirs.length === 0) return null;
  return handle(dirs, 1, memory !== null, pids !== null, memory, pids);
}

/** Create a memory cgroup `name` limited to `limitBytes`, or null when none can be made. */
export function createMemoryCgroup(name: string, limitBytes: number, cgroupRoot = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): MemoryCgroup | null {
  return createPayloadCgroup(name, { limitBytes, contain: false }, cgroupRoot, procSelfCgroup);
}

/** Pids listed in `dir`'s cgroup.procs. */
function procsOf(dir: string): number[] {
  return (read(path.join(dir, 'cgroup.procs')) ?? '')
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

function handle(dirs: string[], version: 1 | 2, limited: boolean, contained: boolean, memoryDir: string | null, containDir: string | null): MemoryCgroup {
  return {
    dirs,
    version,
    limited,
    contained,
    add(pid) {
      let ok = true;
      for (const dir of dirs) ok = write(path.join(dir, 'cgroup.procs'), String(pid)) && ok;
      return ok;
    },
    pids() {
      return [...new Set(dirs.flatMap(procsOf))];
    },
    oomKilled() {
      if (!memoryDir) return false;
      const text = read(path.join(memoryDir, version === 2 ? 'memory.events' : 'memory.oom_control')) ?? '';
      const m = /^oom_kill\s+(\d+)/m.exec(text);
      if (m) return Number(m[1]) > 0;
      // older v1 kernels have no oom_kill counter: hitting the limit counts
      return version === 1 && Number(read(path.join(memoryDir, 'memory.failcnt')) ?? 0) > 0 && /under_oom\s+1/.test(text);
    },
    peakBytes() {
      if (!memoryDir) return null;
      const t = read(path.join(memoryDir, version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes'));
      return t !== null && /^\d+\s*$/.test(t) ? Number(t) : null;
    },
    killAll() {
      if (containDir) {
        // no new process while the others are killed: v2 kills the whole cgroup at once, v1 stops forks first
        if (version === 2) write(path.join(containDir, 'cgroup.kill'), '1');
        else write(path.join(containDir, 'pids.max'), '0');
      }
      return signalPids(this.pids(), 'SIGKILL');
    },
    remove() {
      let ok = true;
      for (const dir of [...dirs].reverse()) {
        try {
          rmdirSync(dir);
        } catch {
          ok = ok && !existsSync(dir);
        }
      }
      return ok;
    },
  };
}

/**
 * The payload cgroups process `pid` is in (from its /proc/<pid>/cgroup
 * text), found again after an agent restart: those the agent made (named
 * vmpilot-…), or null when it is in none.
 */
export function adoptPayloadCgroup(procPidCgroup: string, cgroupRoot = '/sys/fs/cgroup'): MemoryCgroup | null {
  const membership = parseProcCgroup(procPidCgroup);
  const ours = (rel: string | undefined) => rel !== undefined && path.posix.basename(rel).startsWith('vmpilot-');
  const v2 = existsSync(path.join(cgroupRoot, 'cgroup.controllers'));
  if (v2) {
    const rel = membership.get('');
    return ours(rel) ? handle([path.join(cgroupRoot, rel!)], 2, true, true, path.join(cgroupRoot, rel!), path.join(cgroupRoot, rel!)) : null;
  }
  const memory = ours(membership.get('memory')) ? path.join(cgroupRoot, 'memory', membership.get('memory')!) : null;
  const pids = ours(membership.get('pids')) ? path.join(cgroupRoot, 'pids', membership.get('pids')!) : null;
  const dirs = [memory, pids].filter((d): d is string => d !== null);
  return dirs.length === 0 ? null : handle(dirs, 1, memory !== null, pids !== null, memory, pids);
}
