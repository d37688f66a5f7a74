/**
 * What the drivers that run machines on this host (`process`, `qemu`)
 * share: one directory per instance under the endpoint's workDir, named by
 * the instance's key (so a create with a used key finds it: `mkdir` is the
 * claim), a pid file, and a liveness check that tells our process from a
 * reused pid by a marker in its command line. Stopping signals the whole
 * process group, waits on the Clock, then kills.
 */
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../../../shared/clock.js';
import { VmpilotError, describeError } from '../../../shared/errors.js';
import type { DriverResource } from '../ports.js';

/** One instance directory. */
export interface InstanceDir {
  key: string;
  dir: string;
}

/** The directory of `key` under `workDir`. */
export function instanceDir(workDir: string, key: string): InstanceDir {
  if (!/^[a-z0-9][a-z0-9-]{0,99}$/.test(key)) throw new VmpilotError('VMP_INTERNAL', `instance key ${JSON.stringify(key)} is not a plain name`);
  return { key, dir: path.join(workDir, key) };
}

/** Claim the directory of a new instance: true when this call made it, false when it existed (the key was used). */
export async function claim(d: InstanceDir, now: number): Promise<boolean> {
  // 0711: closed to listing, but an agent's payloads, running as other accounts, pass through to their directories
  await mkdir(path.dirname(d.dir), { recursive: true, mode: 0o711 });
  try {
    await mkdir(d.dir, { mode: 0o711 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new VmpilotError('VMP_DRIVER', `cannot create ${d.dir}: ${describeError(err)}`, { cause: err });
  }
  await writeFile(path.join(d.dir, 'created-at'), `${now}\n`);
  return true;
}

/** The keys of the instance directories under `workDir` starting with `prefix`. */
export async function listKeys(workDir: string, prefix: string): Promise<string[]> {
  try {
    return (await readdir(workDir, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name.startsWith(prefix)).map((e) => e.name).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new VmpilotError('VMP_DRIVER', `cannot list ${workDir}: ${describeError(err)}`, { cause: err });
  }
}

async function readText(file: string): Promise<string | null> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** The pid in `file`, or null. */
export async function readPid(file: string): Promise<number | null> {
  const t = await readText(file);
  const n = t === null ? NaN : Number(t);
  return Number.isInteger(n) && n > 1 ? n : null;
}

/** Write `pid` to `file` whole (through a temporary file and a rename), so a reader never sees half of it. */
export async function writePid(file: string, pid: number): Promise<void> {
  await writeFile(`${file}.tmp`, `${pid}\n`);
  await rename(`${file}.tmp`, file);
}

/** Send `sig` to `pid` (to the process group it leads when `group`), if it still exists. */
export function sendSignal(pid: number, sig: NodeJS.Signals, group: boolean): void {
  try {
    process.kill(group ? -pid : pid, sig);
  } catch {
    // gone meanwhile
  }
}

/** True when `pid` runs and its command line holds `marker` (a reused pid does not). */
export async function aliveWith(pid: number, marker: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(marker)) return false;
    const st = await readText(`/proc/${pid}/stat`);
    // a zombie has ended: it only waits for its parent
    return st !== null && !/^\d+ \(.*\) Z /.test(st);
  } catch {
    return false;
  }
}

/** What an instance directory says: the resource, given how to read its process. */
export async function describeDir(d: InstanceDir, pidFile: string, marker: string, endedDetail: (dir: string) => Promise<string>): Promise<DriverResource | null> {
  let made: number;
  try {
    made = (await stat(d.dir)).mtimeMs;
  } catch {
    return null;
  }
  const c = await readText(path.join(d.dir, 'created-at'));
  // no created-at: the create died between making the directory and writing it; the directory's own time says when
  const createdAt = (c === null ? null : Number(c) || null) ?? Math.floor(made);
  const pid = await readPid(path.join(d.dir, pidFile));
  if (pid === null) return { id: d.key, key: d.key, state: 'pending', createdAt, detail: 'starting' };
  if (await aliveWith(pid, marker)) return { id: d.key, key: d.key, state: 'running', createdAt, detail: `pid ${pid}` };
  return { id: d.key, key: d.key, state: 'ended', createdAt, detail: await endedDetail(d.dir) };
}

/**
 * Stop the process `pid` (and its process group when `group`) if it is ours:
 * SIGTERM, up to `graceMs` for it to go, then SIGKILL and wait for it to go.
 */
export async function stopProcess(pid: number, marker: string, group: boolean, graceMs: number, clock: Clock): Promise<void> {
  const signal = (sig: NodeJS.Signals) => sendSignal(pid, sig, group);
  if (!(await aliveWith(pid, marker))) return;
  signal('SIGTERM');
  const until = clock.now() + graceMs;
  while (clock.now() < until && (await aliveWith(pid, marker))) await clock.sleep(100);
  if (!(await aliveWith(pid, marker))) {
    if (group) signal('SIGKILL'); // what the leader left of its group
    return;
  }
  signal('SIGKILL');
  const hard = clock.now() + 10_000;
  while (clock.now() < hard && (await aliveWith(pid, marker))) await clock.sleep(50);
  if (await aliveWith(pid, marker)) throw new VmpilotError('VMP_DRIVER', `process ${pid} did not end after SIGKILL`);
}

/**
 * SIGKILL every process whose command line holds `marker` (what an instance
 * left behind: a forwarder, an orphaned payload wrapper), and wait until
 * none is left. Returns how many there were.
 */
export async function killStragglers(marker: string, clock: Clock): Promise<number> {
  const find = async () => {
    const pids: number[] = [];
    for (const e of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
      if (await aliveWith(Number(e), marker)) pids.push(Number(e));
    }
    return pids;
  };
  const first = await find();
  for (const pid of first) sendSignal(pid, 'SIGKILL', false);
  const until = clock.now() + 10_000;
  while (first.length > 0 && clock.now() < until && (await find()).length > 0) await clock.sleep(50);
  return first.length;
}

/** Remove an instance directory and all in it. */
export async function removeDir(d: InstanceDir): Promise<void> {
  await rm(d.dir, { recursive: true, force: true });
}
