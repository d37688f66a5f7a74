/**
 * Ended payloads' directories (`<stateDir>/payloads/<id>/`): removed once
 * the server has the payload's `payload-ended` report (applied, or refused
 * because the payload is no longer this pilot's), so that one payload that
 * filled the disk does not make every later payload fail with ENOSPC.
 * The last KEEP_ENDED_DIRS ended directories stay for a look after the fact;
 * none stays when the disk is short: less free than twice the output cap
 * (what one payload's stdout and stderr may take). Directories of payloads
 * that run, or whose end report is not yet delivered, are never touched.
 */
import { readdir, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';

/** How many ended payloads' directories are kept while the disk is not short. */
export const KEEP_ENDED_DIRS = 20;

/** One ended payload's directory. */
export interface EndedDir {
  id: number;
  /** Last change, ms epoch (the newest are kept). */
  mtimeMs: number;
}

/** Which ended directories to remove: all but the `keep` newest, or all when the disk is short. Pure. */
export function dirsToRemove(dirs: readonly EndedDir[], keep: number, diskShort: boolean): number[] {
  const newestFirst = [...dirs].sort((a, b) => b.mtimeMs - a.mtimeMs || b.id - a.id);
  return newestFirst.slice(diskShort ? 0 : keep).map((d) => d.id);
}

/** Remove ended payloads' directories under `stateDir` by the rule above; returns the ids removed. */
export async function pruneEndedDirs(
  stateDir: string,
  inUse: ReadonlySet<number>,
  opts: { keep?: number; shortBelowBytes: number },
): Promise<number[]> {
  const base = path.join(stateDir, 'payloads');
  const names = await readdir(base).catch(() => [] as string[]);
  const dirs: EndedDir[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name) || inUse.has(Number(name))) continue;
    const s = await stat(path.join(base, name)).catch(() => null);
    if (s?.isDirectory()) dirs.push({ id: Number(name), mtimeMs: s.mtimeMs });
  }
  if (dirs.length === 0) return [];
  const fs = await statfs(base).catch(() => null);
  const free = fs ? fs.bavail * fs.bsize : 0;
  const ids = dirsToRemove(dirs, opts.keep ?? KEEP_ENDED_DIRS, free < opts.shortBelowBytes);
  for (const id of ids) await rm(path.join(base, String(id)), { recursive: true, force: true }).catch(() => undefined);
  return ids;
}
