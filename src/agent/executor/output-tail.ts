/**
 * The last lines of a payload's output, for its `payload-ended` report:
 * at most `maxLines` lines and `maxBytes` bytes of each stream.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * How the agent opens files in a payload's directory: never through a link
 * and never blocking on a FIFO, so a payload that replaced a file by a link
 * cannot make the agent read (or cut) a file of the agent's choosing.
 */
export const NO_FOLLOW = constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Default bounds of an output tail. */
export const TAIL_LINES = 50;
export const TAIL_BYTES = 8 * 1024;

/** The last `maxLines` lines of `text`, cut to its last `maxChars` characters. Pure. */
export function tailText(text: string, maxLines = TAIL_LINES, maxChars = TAIL_BYTES): string {
  const trimmed = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (trimmed === '') return '';
  const lines = trimmed.split('\n');
  const kept = lines.slice(-maxLines).join('\n');
  return kept.length > maxChars ? kept.slice(kept.length - maxChars) : kept;
}

/** Read at most the last `maxBytes` bytes of a file ("" when it is missing, a link or not a regular file). */
export async function readTail(file: string, maxBytes = TAIL_BYTES): Promise<string> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | NO_FOLLOW);
  } catch {
    return '';
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return '';
    const { size } = st;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The output tail of a payload: stdout's tail, then stderr's under a marker, within `maxBytes`. */
export function combineTails(stdout: string, stderr: string, maxLines = TAIL_LINES, maxBytes = TAIL_BYTES): string {
  const out = tailText(stdout, maxLines, maxBytes);
  const err = tailText(stderr, maxLines, maxBytes);
  const joined = err === '' ? out : `${out}${out === '' ? '' : '\n'}--- stderr ---\n${err}`;
  return joined.length > maxBytes ? joined.slice(joined.length - maxBytes) : joined;
}
