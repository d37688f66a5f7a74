/**
 * A payload's process tree, read from /proc (the root is a parameter so
 * tests can point it elsewhere). Members are the leader, everything in its
 * process group, every descendant (PPid walk), every process seen in the
 * tree before (even after it detached into its own group or session and was
 * re-parented), and every process that carries the payload's marker in its
 * environment, which catches a double fork between two samples.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** One process as /proc/<pid>/stat describes it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  /** Resident set size in KiB. */
  rssKb: number;
  /** User + system CPU time in clock ticks. */
  cpuTicks: number;
  /** CPU time of its children it has waited for, in clock ticks. */
  childTicks: number;
}

/** Linux's USER_HZ and page size on every platform vmpilot supports. */
export const CLOCK_TICKS = 100;
const PAGE_KB = 4;

/** Parse /proc/<pid>/stat text (the command may contain spaces and parentheses). Pure. */
export function parseStat(text: string): ProcInfo | null {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  if (close < 0 || !Number.isInteger(pid)) return null;
  const f = text.slice(close + 2).trim().split(/\s+/);
  // f[0] is field 3 (state): field n is f[n - 3]
  const n = (i: number) => Number(f[i - 3]);
  if (f.length < 22) return null;
  return { pid, ppid: n(4), pgid: n(5), rssKb: Math.max(0, n(24)) * PAGE_KB, cpuTicks: n(14) + n(15), childTicks: n(16) + n(17) };
}

/** Every process now, by pid. Processes that vanish while reading are skipped. */
export function readProcTable(procRoot = '/proc'): Map<number, ProcInfo> {
  const table = new Map<number, ProcInfo>();
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return table;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const info = parseStat(readFileSync(path.join(procRoot, name, 'stat'), 'utf8'));
      if (info) table.set(info.pid, info);
    } catch {
      // gone
    }
  }
  return table;
}

/** True when /proc/<pid>/environ holds `marker` ("NAME=value") as a whole entry. */
export function environHas(procRoot: string, pid: number, marker: string): boolean {
  try {
    const env = readFileSync(path.join(procRoot, String(pid), 'environ'));
    return env.toString('latin1').split('\0').includes(marker);
  } catch {
    return false;
  }
}

/**
 * The members of the tree of `leader` in `table`: the leader, its group,
 * `known` pids still alive, `extra` pids (e.g. from a cgroup), and all their
 * descendants. Pure.
 */
export function treeMembers(table: ReadonlyMap<number, ProcInfo>, leader: number, known: Iterable<number>, extra: Iterable<number> = []): Set<number> {
  const members = new Set<number>();
  const add = (pid: number) => {
    if (pid > 1 && table.has(pid)) members.add(pid);
  };
  add(leader);
  for (const p of known) add(p);
  for (const p of extra) add(p);
  for (const p of table.values()) if (p.pgid === leader) add(p.pid);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of table.values()) {
      if (!members.has(p.pid) && members.has(p.ppid) && p.pid > 1) {
        members.add(p.pid);
        grew = true;
      }
    }
  }
  return members;
}

/** Send `signal` to each pid; the number that received it. */
export function signalPids(pids: Iterable<number>, signal: NodeJS.Signals): number {
  let n = 0;
  for (const pid of pids) {
    if (pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, signal);
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}
