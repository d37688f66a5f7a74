/**
 * Install software artifacts through a cache keyed by sha256, shared by the
 * agents of a node:
 *
 *   <cache>/<sha256>.file      the verified download
 *   <cache>/<sha256>.d/        its unpacked tree (when unpack: true)
 *   <cache>/<sha256>.ok        written last: the entry is complete
 *   <cache>/<sha256>.lock      held (pid inside) while one agent fills the entry;
 *                              the others wait for .ok; a dead holder's lock is taken over
 *
 * and `dest` becomes a symlink to the cache entry (replaced atomically, so a
 * second run is a no-op). A `dest` that exists and is not a symlink is
 * refused: the agent never overwrites what it did not make.
 */
import { access, lstat, mkdir, open, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { relayArtifactUrl } from '../../protocol/relay.js';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import { download, type Progress } from './download.js';
import type { Artifact } from './spec.js';
import { safeUnpack } from './unpack.js';

/** What installing needs. */
export interface InstallDeps {
  cacheDir: string;
  clock: Clock;
  /** A progress reporter for one artifact's download, or none. */
  progress?: (name: string) => Progress | undefined;
  /** How long to wait for another agent filling the same entry (default 30 min). */
  waitMs?: number;
  attempts?: number;
  backoffMs?: number;
  /** PEM CA certificate(s) trusted for https downloads as well as node's own (`--ca-file`). */
  ca?: Buffer | undefined;
  /** Whether a process is alive (default process.kill(pid, 0)). */
  alive?: (pid: number) => boolean;
  /** A relay to fetch http(s) artifacts through (its cache, `--artifacts-via`); null: from their URL. */
  via?: string | null;
}

/** Where `a` is downloaded from: its URL, or the relay's cache of it for an http(s) URL behind a relay. Pure. */
export function downloadUrl(a: Pick<Artifact, 'url' | 'sha256'>, via: string | null | undefined): string {
  return via && /^https?:/.test(a.url) ? relayArtifactUrl(via, a.url, a.sha256) : a.url;
}

/** What was installed. */
export interface Installed {
  url: string;
  sha256: string;
  dest: string;
  /** true when the cache already held it. */
  cached: boolean;
}

const exists = (p: string) => access(p).then(() => true, () => false);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Hold the entry's lock, or return false when another live agent holds it. */
async function tryLock(lock: string, alive: (pid: number) => boolean): Promise<boolean> {
  try {
    const fh = await open(lock, 'wx');
    await fh.writeFile(String(process.pid));
    await fh.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const holder = Number(await readFile(lock, 'utf8').catch(() => ''));
    if (Number.isInteger(holder) && holder > 0 && alive(holder)) return false;
    await rm(lock, { force: true }); // its holder died: take over (the .part resumes)
    return tryLock(lock, alive);
  }
}

/** Fill the cache entry of `a` (download, verify, unpack) unless it is complete; true when it was. */
async function fillCache(a: Artifact, d: InstallDeps): Promise<boolean> {
  const base = path.join(d.cacheDir, a.sha256);
  const ok = `${base}.ok`;
  if (await exists(ok)) return true;
  await mkdir(d.cacheDir, { recursive: true });
  const until = d.clock.now() + (d.waitMs ?? 30 * 60_000);
  while (!(await tryLock(`${base}.lock`, d.alive ?? pidAlive))) {
    if (await exists(ok)) return true;
    if (d.clock.now() > until) throw new VmpilotError('VMP_CONFIG', `another agent has been filling the cache entry ${base} for too long`);
    await d.clock.sleep(500);
  }
  try {
    if (await exists(ok)) return true;
    const file = `${base}.file`;
    if (!(await exists(file))) {
      const part = `${base}.part`;
      await download(downloadUrl(a, d.via), part, a.sha256, { clock: d.clock, attempts: d.attempts, backoffMs: d.backoffMs, ca: d.ca, progress: d.progress?.(path.basename(a.dest)) });
      await rename(part, file);
    }
    if (a.unpack) {
      const tmp = `${base}.d.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await safeUnpack(file, tmp);
      await rm(`${base}.d`, { recursive: true, force: true });
      await rename(tmp, `${base}.d`);
    }
    await writeFile(ok, `${a.url}\n`);
    return false;
  } finally {
    await rm(`${base}.lock`, { force: true });
  }
}

/** Refuse a dest that exists and is not a symlink (checked before anything is downloaded). */
async function checkDest(dest: string): Promise<void> {
  const st = await lstat(dest).catch(() => null);
  if (st && !st.isSymbolicLink()) throw new VmpilotError('VMP_CONFIG', `${dest} exists and is not a link made by vmpilot; not replacing it`);
}

/** Point `dest` at `target` with a symlink, atomically. */
async function link(dest: string, target: string): Promise<void> {
  await checkDest(dest);
  const st = await lstat(dest).catch(() => null);
  if (st && (await readlink(dest)) === target) return;
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, dest);
}

/** Install one artifact: through the cache, then linked at its dest. */
export async function installArtifact(a: Artifact, d: InstallDeps): Promise<Installed> {
  await checkDest(a.dest);
  const cached = await fillCache(a, d);
  const base = path.join(d.cacheDir, a.sha256);
  await link(a.dest, a.unpack ? `${base}.d` : `${base}.file`);
  return { url: a.url, sha256: a.sha256, dest: a.dest, cached };
}
