/**
 * The side of /proc the process watch needs: list the pids, read one
 * process's stat line, find a variable in its environment, signal pids.
 * Reads go through one reused buffer (synchronous, a few microseconds
 * each): a sample every second allocates almost nothing, so a busy agent's
 * memory stays where an idle one's is.
 */
import { closeSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { parseStat, type ProcInfo } from './process-tree.js';

const SMALL = 16 * 1024;
/** An environment larger than this is not searched past it (Linux allows a few MiB, payloads rarely use 100 KiB). */
const ENVIRON_MAX = 8 * 1024 * 1024;
let buffer = Buffer.allocUnsafe(SMALL);

/**
 * Read a whole file into `buffer` (growing it up to `max`); its length, or -1
 * when it cannot be read. `oneRead`: a read that does not fill the buffer got
 * it all (true of /proc/<pid>/stat, which the kernel renders at once).
 */
function readWhole(file: string, max: number, oneRead = false): number {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return -1;
  }
  try {
    let n = 0;
    for (;;) {
      if (n === buffer.length) {
        if (n >= max) return n;
        const bigger = Buffer.allocUnsafe(Math.min(max, n * 2));
        buffer.copy(bigger, 0, 0, n);
        buffer = bigger;
      }
      const got = readSync(fd, buffer, n, buffer.length - n, null);
      if (got === 0) return n;
      n += got;
      if (oneRead && n < buffer.length) return n;
    }
  } catch {
    return -1;
  } finally {
    closeSync(fd);
  }
}

/** A buffer grown for one large environment goes back to its small size. */
function shrink(): void {
  if (buffer.length > 16 * SMALL) buffer = Buffer.allocUnsafe(SMALL);
}

/** The pids under `procRoot`, in directory order. */
export function listPids(procRoot: string): number[] {
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57) {
      const pid = Number(name);
      if (Number.isInteger(pid)) pids.push(pid);
    }
  }
  return pids;
}

/** /proc/<pid>/stat parsed, or null when the process is gone. */
export function readStat(procRoot: string, pid: number): ProcInfo | null {
  const n = readWhole(`${procRoot}/${pid}/stat`, SMALL, true);
  return n > 0 ? parseStat(buffer.toString('latin1', 0, n)) : null;
}

/** The value of variable `name` in /proc/<pid>/environ, or null (no such variable, or not readable). */
export function readEnvironValue(procRoot: string, pid: number, name: string): string | null {
  const n = readWhole(`${procRoot}/${pid}/environ`, ENVIRON_MAX);
  try {
    if (n <= 0) return null;
    const env = buffer.subarray(0, n);
    const key = `${name}=`;
    for (let at = env.indexOf(key, 0, 'latin1'); at >= 0; at = env.indexOf(key, at + 1, 'latin1')) {
      if (at > 0 && env[at - 1] !== 0) continue; // "XVMPILOT_TREE=" is another variable
      const start = at + key.length;
      const end = env.indexOf(0, start);
      return env.toString('latin1', start, end < 0 ? n : end);
    }
    return null;
  } finally {
    shrink();
  }
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

/** The real, effective and saved uid of `pid` from /proc/<pid>/status, or null when it is gone. */
export function readUids(procRoot: string, pid: number): number[] | null {
  const n = readWhole(`${procRoot}/${pid}/status`, SMALL * 4);
  if (n <= 0) return null;
  const m = /\nUid:\s+(\d+)\s+(\d+)\s+(\d+)/.exec(buffer.toString('latin1', 0, n));
  shrink();
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/**
 * Pids of every process running as `uid` (real, effective or saved): what a
 * dedicated payload account has left behind, however it detached. Reads
 * one status file per process; called only when a payload ends.
 */
export function pidsOfUid(procRoot: string, uid: number): number[] {
  const out: number[] = [];
  for (const pid of listPids(procRoot)) if (readUids(procRoot, pid)?.includes(uid)) out.push(pid);
  return out;
}

/** The PID namespace of `pid` ("pid:[4026531836]"), or null when it cannot be read. */
export function pidNamespace(procRoot: string, pid: number | 'self'): string | null {
  try {
    return readlinkSync(`${procRoot}/${pid}/ns/pid`);
  } catch {
    return null;
  }
}
