/**
 * Download one artifact with undici: retries with backoff, resume from the
 * bytes already on disk (Range), a progress line when stderr is a terminal,
 * and the sha256 checked before the file is handed on. `file:` URLs are
 * copied (sites with a shared filesystem).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';

/** Reports bytes done of total (null when unknown). */
export type Progress = (done: number, total: number | null) => void;

/** How a download behaves. */
export interface DownloadOptions {
  clock: Clock;
  /** Attempts in all (default 5). */
  attempts?: number;
  /** First pause between attempts, doubled each time (default 1000 ms). */
  backoffMs?: number;
  progress?: Progress;
  signal?: AbortSignal;
}

/** The sha256 of a file, hex. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then((s) => s.size, () => 0);
}

function counting(start: number, total: number | null, progress?: Progress): Transform {
  let done = start;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      progress?.(done, total);
      cb(null, chunk);
    },
  });
}

let redirecting: Dispatcher | null = null;
/** An undici dispatcher that follows up to 5 redirects (artifact mirrors often redirect). */
function dispatcher(): Dispatcher {
  redirecting ??= new Agent().compose(interceptors.redirect({ maxRedirections: 5 }));
  return redirecting;
}

/** One attempt: append to `part` from where it ends (206), or start over (200). */
async function attempt(url: string, part: string, o: DownloadOptions): Promise<void> {
  if (url.startsWith('file:')) {
    await pipeline(createReadStream(fileURLToPath(url)), counting(0, null, o.progress), createWriteStream(part));
    return;
  }
  const have = await sizeOf(part);
  const res = await request(url, { method: 'GET', headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal: o.signal, dispatcher: dispatcher() });
  if (res.statusCode === 416 && have > 0) {
    // the part is already whole (or longer than the file): let the checksum decide
    await res.body.dump();
    return;
  }
  if (res.statusCode !== 200 && res.statusCode !== 206) {
    await res.body.dump();
    throw new VmpilotError('VMP_UNREACHABLE', `GET ${url}: HTTP ${res.statusCode}`, { details: { status: res.statusCode } });
  }
  const resumed = res.statusCode === 206;
  const length = Number(res.headers['content-length']);
  const total = Number.isFinite(length) ? length + (resumed ? have : 0) : null;
  // chunk by chunk, each written before the next is read: whatever arrived before a cut stays for the resume
  const fh = await open(part, resumed ? 'a' : 'w');
  let done = resumed ? have : 0;
  try {
    for await (const chunk of res.body) {
      await fh.write(chunk as Buffer);
      done += (chunk as Buffer).length;
      o.progress?.(done, total);
    }
  } finally {
    await fh.close();
  }
}

/**
 * Download `url` into `part` until its sha256 is `sha256`; retries network
 * failures, resuming; a wrong checksum deletes the part and fails at once.
 */
export async function download(url: string, part: string, sha256: string, o: DownloadOptions): Promise<void> {
  const attempts = o.attempts ?? 5;
  for (let n = 1; ; n++) {
    try {
      await attempt(url, part, o);
      break;
    } catch (err) {
      if (o.signal?.aborted) throw err;
      const status = (err as VmpilotError).details?.status;
      const permanent = typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429;
      if (permanent || n >= attempts) {
        throw new VmpilotError('VMP_UNREACHABLE', `cannot download ${url} after ${n} attempt${n > 1 ? 's' : ''}: ${(err as Error).message}`, { cause: err });
      }
      await o.clock.sleep((o.backoffMs ?? 1000) * 2 ** (n - 1), o.signal);
    }
  }
  const got = await sha256OfFile(part);
  if (got !== sha256) {
    await rm(part, { force: true });
    throw new VmpilotError('VMP_CONFIG', `${url} has sha256 ${got}, expected ${sha256}; not using it`);
  }
}

/** A progress line on a terminal: "name  42%  12.3/29.0 MB", redrawn in place. */
export function terminalProgress(name: string, out: NodeJS.WriteStream): Progress | undefined {
  if (!out.isTTY) return undefined;
  let last = -1;
  return (done, total) => {
    const pct = total ? Math.floor((done / total) * 100) : -1;
    if (pct === last && total) return;
    last = pct;
    const mb = (n: number) => (n / 1048576).toFixed(1);
    const width = 30;
    const bar = total ? '#'.repeat(Math.round((done / total) * width)).padEnd(width, '.') : '';
    out.write(`\r${name} ${bar} ${total ? `${String(pct).padStart(3)}% ${mb(done)}/${mb(total)} MB` : `${mb(done)} MB`}${done === total ? '\n' : ''}`);
  };
}
