/**
 * Unpack a (gzip) tar safely: every entry is checked before anything is
 * written, and the whole archive is refused, naming the entry, when one has
 * an absolute path, a ".." component, a link pointing out of the
 * destination, or is a device or FIFO.
 */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { list, extract } from 'tar';
import { VmpilotError } from '../../shared/errors.js';

const ALLOWED = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** Why `entry` may not be unpacked into `dest`, or null. Pure. */
export function entryProblem(dest: string, entry: { path: string; type: string; linkpath?: string }): string | null {
  const name = entry.path;
  if (!ALLOWED.has(entry.type)) return `"${name}" is a ${entry.type}`;
  if (path.isAbsolute(name) || /^[A-Za-z]:/.test(name)) return `"${name}" has an absolute path`;
  if (name.split(/[\\/]/).includes('..')) return `"${name}" has a ".." component`;
  const inside = (p: string) => p === dest || p.startsWith(dest + path.sep);
  if (!inside(path.resolve(dest, name))) return `"${name}" points out of the destination`;
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
    const link = entry.linkpath ?? '';
    if (path.isAbsolute(link)) return `link "${name}" -> "${link}" is absolute`;
    // a symlink is relative to its directory; a hard link to the archive root
    const target = entry.type === 'SymbolicLink' ? path.resolve(dest, path.dirname(name), link) : path.resolve(dest, link);
    if (!inside(target)) return `link "${name}" -> "${link}" points out of the destination`;
  }
  return null;
}

/** Check every entry of `archive`, then unpack it into `dest` (created). Throws VMP_CONFIG naming the first bad entry. */
export async function safeUnpack(archive: string, dest: string): Promise<number> {
  const root = path.resolve(dest);
  const problems: string[] = [];
  let count = 0;
  try {
    await list({
      file: archive,
      strict: true,
      onReadEntry: (e) => {
        count++;
        const p = entryProblem(root, { path: e.path, type: e.type, linkpath: e.linkpath });
        if (p) problems.push(p);
        e.resume();
      },
    });
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `${path.basename(archive)} is not a readable tar archive: ${(err as Error).message}`, { cause: err });
  }
  if (problems.length > 0) throw new VmpilotError('VMP_CONFIG', `refusing to unpack ${path.basename(archive)}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  await mkdir(root, { recursive: true });
  await extract({ file: archive, cwd: root, strict: true, preservePaths: false, preserveOwner: false });
  return count;
}
