/**
 * The last lines of a payload's output, for its `payload-ended` report:
 * at most `maxLines` lines and `maxBytes` bytes of each stream.
 */
import { open } from 'node:fs/promises';

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

/** Read at most the last `maxBytes` bytes of a file ("" when it is missing). */
export async function readTail(file: string, maxBytes = TAIL_BYTES): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
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
