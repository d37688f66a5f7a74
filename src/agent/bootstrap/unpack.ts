/**
 * Unpack a (gzip) tar safely: every entry is checked before anything is
 * written, and the whole archive is refused, naming the entry, when one has
 * an absolute path, a ".." component, a link pointing out of the
 * destination — as written, or once the archive's own symbolic links are
 * followed the way the file system will follow them — or is a device or
 * FIFO. It is unpacked into a private directory beside the destination,
 * stripped of setuid and setgid bits, and only then renamed into place: a
 * refused or broken archive leaves nothing behind.
 */
import path from 'node:path';
import { chmod, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
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

/** How many links one path may go through before it counts as a loop (as Linux's ELOOP). */
const MAX_LINKS = 40;

/**
 * Where `rel` (relative to `dest`) ends up once the archive's symbolic links
 * (`links`: path relative to `dest` → target) are followed, component by
 * component, as the kernel does; null when the links loop. Pure.
 */
export function followLinks(dest: string, rel: string, links: ReadonlyMap<string, string>, depth = { n: 0 }, from = dest): string | null {
  let cur = path.isAbsolute(rel) ? '/' : from;
  for (const part of rel.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      cur = path.dirname(cur); // cur never holds a link: its parent is where ".." goes
      continue;
    }
    const next = path.join(cur, part);
    const target = next.startsWith(dest + path.sep) ? links.get(path.relative(dest, next)) : undefined;
    if (target === undefined) {
      cur = next;
      continue;
    }
    if (++depth.n > MAX_LINKS) return null;
    const to = followLinks(dest, target, links, depth, cur);
    if (to === null) return null;
    cur = to;
  }
  return cur;
}

/**
 * Why the archive's entries may not be unpacked into `dest`, one line per
 * bad entry: each entry as written (entryProblem), then every path and link
 * target with the archive's symbolic links followed. Pure.
 */
export function archiveProblems(dest: string, entries: readonly { path: string; type: string; linkpath?: string }[]): string[] {
  const problems: string[] = [];
  const links = new Map<string, string>();
  const key = (name: string) => path.normalize(name).replace(/\/+$/, '');
  for (const e of entries) {
    const p = entryProblem(dest, e);
    if (p) problems.push(p);
    if (e.type === 'SymbolicLink') links.set(key(e.path), e.linkpath ?? '');
  }
  if (problems.length > 0) return problems;
  const inside = (p: string | null) => p !== null && (p === dest || p.startsWith(dest + path.sep));
  for (const e of entries) {
    const parent = followLinks(dest, path.dirname(key(e.path)), links);
    if (!inside(parent)) {
      problems.push(`"${e.path}" lies behind a link that ${parent === null ? 'loops' : 'points out of the destination'}`);
      continue;
    }
    if (e.type !== 'SymbolicLink' && e.type !== 'Link') continue;
    // a symlink's target is followed from its own directory, a hard link's from the archive root
    const target = e.type === 'SymbolicLink' ? followLinks(dest, e.linkpath ?? '', links, { n: 0 }, parent!) : followLinks(dest, e.linkpath ?? '', links);
    if (!inside(target)) problems.push(`link "${e.path}" -> "${e.linkpath ?? ''}" ${target === null ? 'loops' : 'points out of the destination once its links are followed'}`);
  }
  return problems;
}

/** Clear the setuid and setgid bits of everything under `dir` (links left alone). */
async function stripSetIds(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    const st = await lstat(p);
    if (st.isSymbolicLink()) continue;
    if (st.mode & 0o6000) await chmod(p, st.mode & 0o1777);
    if (st.isDirectory()) await stripSetIds(p);
  }
}

/** Check every entry of `archive`, then unpack it into `dest` (created). Throws VMP_CONFIG naming the first bad entry. */
export async function safeUnpack(archive: string, dest: string): Promise<number> {
  const root = path.resolve(dest);
  const entries: { path: string; type: string; linkpath?: string }[] = [];
  try {
    await list({
      file: archive,
      strict: true,
      onReadEntry: (e) => {
        entries.push({ path: e.path, type: e.type, ...(e.linkpath === undefined ? {} : { linkpath: e.linkpath }) });
        e.resume();
      },
    });
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `${path.basename(archive)} is not a readable tar archive: ${(err as Error).message}`, { cause: err });
  }
  const problems = archiveProblems(root, entries);
  if (problems.length > 0) throw new VmpilotError('VMP_CONFIG', `refusing to unpack ${path.basename(archive)}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  // into a private directory first: nobody runs a setuid file before its bit is gone, and a failure leaves nothing
  const part = path.join(path.dirname(root), `.${path.basename(root)}.part-${process.pid}`);
  await rm(part, { recursive: true, force: true });
  await mkdir(part, { recursive: true, mode: 0o700 });
  try {
    await extract({ file: archive, cwd: part, strict: true, preservePaths: false, preserveOwner: false });
    await stripSetIds(part);
    await chmod(part, 0o755);
    await rename(part, root);
  } catch (err) {
    await rm(part, { recursive: true, force: true }).catch(() => undefined);
    throw new VmpilotError('VMP_CONFIG', `cannot unpack ${path.basename(archive)}: ${(err as Error).message}`, { cause: err });
  }
  return entries.length;
}
