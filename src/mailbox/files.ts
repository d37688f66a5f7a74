/**
 * The file operations of mailbox mode (format.ts says what the files are).
 * A message is written under a temporary name that starts with a dot (never
 * taken by the other end) and renamed into place: a reader sees all of it
 * or nothing. Nothing is fsynced: a message must survive the other process
 * crashing, not the node losing power (then the node's pilot is gone too),
 * and on a shared filesystem every fsync is a round trip to its server.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MAILBOX_DIRS } from './format.js';

/** The three directories of the mailbox at `dir`. */
export function mailboxPaths(dir: string): { out: string; work: string; in: string } {
  return { out: path.join(dir, MAILBOX_DIRS.out), work: path.join(dir, MAILBOX_DIRS.work), in: path.join(dir, MAILBOX_DIRS.in) };
}

/** Make the mailbox's directories (0700: requests carry the pilot's credential). */
export async function makeMailbox(dir: string): Promise<void> {
  const p = mailboxPaths(dir);
  for (const d of [dir, p.out, p.work, p.in]) await mkdir(d, { recursive: true, mode: 0o700 });
}

/** Write `text` as `dir/name`, all at once: under a dot-name first, then renamed. */
export async function writeMessage(dir: string, name: string, text: string): Promise<void> {
  const tmp = path.join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await writeFile(tmp, text, { mode: 0o600 });
  try {
    await rename(tmp, path.join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** The text of `file`, or null when there is no such file. */
export async function readIfThere(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Remove `file`; true when this call removed it, false when it was not there. */
export async function removeIfThere(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Move `from` to `to`; true when this call moved it, false when `from` was gone (another took it). */
export async function moveIfThere(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The names in `dir`, or none when it does not exist. */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}
