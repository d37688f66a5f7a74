/**
 * Keep an output file under a size cap. The payload writes with O_APPEND,
 * so when the file passes the cap its last half is kept, under a line
 * saying how much was dropped, and later writes append after it.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { NO_FOLLOW } from './output-tail.js';

/** Cut `file` to its last `maxBytes / 2` bytes when it is larger than `maxBytes`; true when it did. */
export async function capOutputFile(file: string, maxBytes: number): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, constants.O_RDWR | NO_FOLLOW);
  } catch {
    return false;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return false;
    const { size } = st;
    if (size <= maxBytes) return false;
    const keep = Math.floor(maxBytes / 2);
    const tail = Buffer.alloc(keep);
    await handle.read(tail, 0, keep, size - keep);
    const head = Buffer.from(`[vmpilot: ${size - keep} bytes of earlier output dropped]\n`);
    await handle.truncate(0);
    await handle.write(Buffer.concat([head, tail]), 0, head.length + keep, 0);
    return true;
  } finally {
    await handle.close();
  }
}
