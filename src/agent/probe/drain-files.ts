/**
 * Operator drain files: while `<stateDir>/drain` or the site-wide drain file
 * (default `/var/lib/vmpilot/drain`) exists, the agent drains; once both are
 * gone it serves again. Polled, since a watcher cannot see a file appear in
 * a directory that does not exist yet; each look is one synchronous stat
 * per path (a few microseconds, no thread-pool round trip).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DrainFiles } from '../ports.js';

export type { DrainFiles } from '../ports.js';

/** How often the drain files are looked at. */
export const DRAIN_POLL_MS = 500;

/** The paths to look at for `stateDir` and the configured site-wide file. Pure. */
export function drainPaths(stateDir: string, siteFile: string): string[] {
  return [path.join(stateDir, 'drain'), siteFile];
}

/** DrainFiles over the file system. */
export function fileDrainFiles(paths: readonly string[]): DrainFiles {
  return {
    async present() {
      return paths.find((p) => existsSync(p)) ?? null;
    },
  };
}
