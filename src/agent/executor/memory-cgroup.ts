/**
 * A memory cgroup for one payload, when the agent may create one (root, a
 * writable v1 `memory` hierarchy or a v2 tree with the memory controller).
 * It is created under the agent's own cgroup where possible, so site limits
 * still apply, and removed when the payload ends. Failing to create one is
 * normal: the caller falls back to RSS sampling.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseProcCgroup } from '../resources/cgroup.js';

/** A created memory cgroup. */
export interface MemoryCgroup {
  readonly dir: string;
  readonly version: 1 | 2;
  /** Move a process into it. False when that failed. */
  add(pid: number): boolean;
  /** Pids in it now. */
  pids(): number[];
  /** True once the kernel OOM-killed something in it. */
  oomKilled(): boolean;
  /** Peak memory use in bytes, when the kernel tracks it. */
  peakBytes(): number | null;
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

function candidates(base: string, own: string | undefined, name: string): string[] {
  const dirs = [];
  if (own && own !== '/') dirs.push(path.join(base, own, name));
  dirs.push(path.join(base, name));
  return dirs;
}

/** Create a memory cgroup `name` limited to `limitBytes`, or null when none can be made. */
export function createMemoryCgroup(name: string, limitBytes: number, cgroupRoot = '/sys/fs/cgroup', procSelfCgroup = '/proc/self/cgroup'): MemoryCgroup | null {
  const membership = parseProcCgroup(read(procSelfCgroup) ?? '');
  const v2 = existsSync(path.join(cgroupRoot, 'cgroup.controllers'));
  const base = v2 ? cgroupRoot : path.join(cgroupRoot, 'memory');
  if (!existsSync(base)) return null;
  const limitFile = v2 ? 'memory.max' : 'memory.limit_in_bytes';
  for (const dir of candidates(base, membership.get(v2 ? '' : 'memory'), name)) {
    try {
      mkdirSync(dir);
    } catch {
      continue;
    }
    try {
      writeFileSync(path.join(dir, limitFile), String(limitBytes));
      if (!v2) {
        // no swap beyond the limit, where swap accounting exists
        try {
          writeFileSync(path.join(dir, 'memory.memsw.limit_in_bytes'), String(limitBytes));
        } catch {
          // no swap accounting: fine
        }
      }
    } catch {
      try {
        rmdirSync(dir);
      } catch {
        // leave it
      }
      continue;
    }
    return handle(dir, v2 ? 2 : 1);
  }
  return null;
}

function handle(dir: string, version: 1 | 2): MemoryCgroup {
  return {
    dir,
    version,
    add(pid) {
      try {
        writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
        return true;
      } catch {
        return false;
      }
    },
    pids() {
      return (read(path.join(dir, 'cgroup.procs')) ?? '')
        .split('\n')
        .filter((l) => /^\d+$/.test(l))
        .map(Number);
    },
    oomKilled() {
      const text = read(path.join(dir, version === 2 ? 'memory.events' : 'memory.oom_control')) ?? '';
      const m = /^oom_kill\s+(\d+)/m.exec(text);
      if (m) return Number(m[1]) > 0;
      // older v1 kernels have no oom_kill counter: hitting the limit counts
      return version === 1 && Number(read(path.join(dir, 'memory.failcnt')) ?? 0) > 0 && /under_oom\s+1/.test(text);
    },
    peakBytes() {
      const t = read(path.join(dir, version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes'));
      return t !== null && /^\d+\s*$/.test(t) ? Number(t) : null;
    },
    remove() {
      try {
        rmdirSync(dir);
        return true;
      } catch {
        return !existsSync(dir);
      }
    },
  };
}
