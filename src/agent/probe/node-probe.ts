/**
 * The real NodeProbe: cheap reads of os, /proc/meminfo and statfs, fast
 * enough to run on every heartbeat.
 */
import os from 'node:os';
import { readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { NodeProbe, NodeSnapshot } from '../ports.js';

const MB = 1024 * 1024;

/** MemAvailable from /proc/meminfo text, in MiB, or null when absent. */
export function memAvailableMb(meminfo: string): number | null {
  const m = /^MemAvailable:\s+(\d+)\s+kB/m.exec(meminfo);
  return m ? Math.floor(Number(m[1]) / 1024) : null;
}

async function freeMemoryMb(): Promise<number> {
  try {
    const available = memAvailableMb(await readFile('/proc/meminfo', 'utf8'));
    if (available !== null) return available;
  } catch {
    // not Linux: fall back to os.freemem
  }
  return Math.floor(os.freemem() / MB);
}

async function diskFreeMb(dir: string): Promise<number | null> {
  // The work dir may not exist yet: ask about its nearest existing ancestor.
  let d = path.resolve(dir);
  for (;;) {
    try {
      const s = await statfs(d);
      return Math.floor((Number(s.bavail) * Number(s.bsize)) / MB);
    } catch {
      const parent = path.dirname(d);
      if (parent === d) return null;
      d = parent;
    }
  }
}

/** Probe this node through node:os and the file system. */
export const nodeProbe: NodeProbe = {
  async snapshot(workDir: string): Promise<NodeSnapshot> {
    const [free, disk] = await Promise.all([freeMemoryMb(), diskFreeMb(workDir)]);
    const [l1 = 0, l5 = 0, l15 = 0] = os.loadavg();
    return {
      cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
      memoryMb: { total: Math.floor(os.totalmem() / MB), free },
      diskFreeMb: disk,
      load: [l1, l5, l15],
      uptimeSec: Math.floor(os.uptime()),
      hostname: os.hostname(),
    };
  },
};

/** A probe that returns a fixed snapshot (changeable between calls), for tests. */
export class FakeProbe implements NodeProbe {
  constructor(public value: NodeSnapshot = fakeSnapshot()) {}

  async snapshot(): Promise<NodeSnapshot> {
    return structuredClone(this.value);
  }
}

/** A plausible snapshot for tests, with `overrides` applied. */
export function fakeSnapshot(overrides: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    cores: 4,
    memoryMb: { total: 8192, free: 6000 },
    diskFreeMb: 50_000,
    load: [0.1, 0.2, 0.3],
    uptimeSec: 1000,
    hostname: 'node-1',
    ...overrides,
  };
}
