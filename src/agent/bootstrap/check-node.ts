/**
 * The check-node step: enough free disk under the state directory, enough
 * available memory, and the paths the work needs (e.g. a CVMFS repository).
 * Only reads; its output is what it saw.
 */
import { access, statfs } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import os from 'node:os';

/** What the step reads, behind a port so tests can fake a small node. */
export interface NodeFacts {
  freeDiskMb(dir: string): Promise<number>;
  availableMemoryMb(): Promise<number>;
  exists(p: string): Promise<boolean>;
}

/** The real facts: statfs, /proc/meminfo MemAvailable (else os.freemem), access. */
export const realNodeFacts: NodeFacts = {
  async freeDiskMb(dir) {
    const s = await statfs(dir);
    return Math.floor((s.bavail * s.bsize) / 1048576);
  },
  async availableMemoryMb() {
    const text = await readFile('/proc/meminfo', 'utf8').catch(() => '');
    const kb = /^MemAvailable:\s+(\d+) kB/m.exec(text)?.[1];
    return kb ? Math.floor(Number(kb) / 1024) : Math.floor(os.freemem() / 1048576);
  },
  exists: (p) => access(p).then(() => true, () => false),
};

/** The step's input. */
export interface CheckNodeInput {
  dir: string;
  minDiskMb: number;
  minMemoryMb: number;
  paths: readonly string[];
}

/** The step's output. */
export interface CheckNodeOutput {
  freeDiskMb: number;
  availableMemoryMb: number;
}

/** Check the node; throws naming what is missing. */
export async function checkNode(i: CheckNodeInput, facts: NodeFacts): Promise<CheckNodeOutput> {
  const freeDiskMb = await facts.freeDiskMb(i.dir);
  if (freeDiskMb < i.minDiskMb) throw new Error(`${freeDiskMb} MB free under ${i.dir}, need ${i.minDiskMb} MB`);
  const availableMemoryMb = await facts.availableMemoryMb();
  if (availableMemoryMb < i.minMemoryMb) throw new Error(`${availableMemoryMb} MB memory available, need ${i.minMemoryMb} MB`);
  const missing: string[] = [];
  for (const p of i.paths) if (!(await facts.exists(p))) missing.push(p);
  if (missing.length > 0) throw new Error(`required path${missing.length > 1 ? 's' : ''} missing: ${missing.join(', ')}`);
  return { freeDiskMb, availableMemoryMb };
}
