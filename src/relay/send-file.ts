/**
 * Send a cached file to a client, with `Range: bytes=N-[M]` (a download
 * resumed by curl -C - or the agent's artifact download) answered 206, and
 * a range past the end 416, as the server does for agent files.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** One byte range "bytes=START-[END]" within `size`; null for none (send it all), 'bad' when unsatisfiable. Pure. */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | null | 'bad' {
  if (!header) return null;
  const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (!m) return null; // several ranges, or a suffix range: the whole file is a valid answer
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'bad';
  return { start, end };
}

/** Send `file` with `headers`; honours Range (and If-Range against `etag`). */
export async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, headers: Record<string, string>, etag: string): Promise<void> {
  const { size } = await stat(file);
  const ifRange = req.headers['if-range'];
  const range = ifRange === undefined || ifRange === etag ? byteRange(req.headers.range, size) : null;
  const base = { ...headers, etag, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  if (range === 'bad') {
    res.writeHead(416, { ...base, 'content-range': `bytes */${size}`, 'content-length': '0' }).end();
    return;
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  res.writeHead(range ? 206 : 200, {
    ...base,
    'content-length': String(Math.max(0, end - start + 1)),
    ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  await new Promise<void>((resolve) => {
    const stream = createReadStream(file, { start, end });
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}
