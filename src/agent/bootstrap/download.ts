/**
 * Download one artifact over node's own http/https (http-get.ts): up to 5
 * redirects, retries with backoff, resume from the bytes already on disk
 * (Range), a progress line when stderr is a terminal, and the sha256
 * checked before the file is handed on. `file:` URLs are copied (sites with
 * a shared filesystem).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../protocol/version.js';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import { GetAgents, getFollowingRedirects } from './http-get.js';

/** Reports bytes done of total (null when unknown). */
export type Progress = (done: number, total: number | null) => void;

/** Redirects followed (artifact mirrors often redirect); one more fails the download. */
export const MAX_REDIRECTS = 5;

/** How a download behaves. */
export interface DownloadOptions {
  clock: Clock;
  /** Attempts in all (default 5). */
  attempts?: number;
  /** First pause between attempts, doubled each time (default 1000 ms). */
  backoffMs?: number;
  /** A connection silent this long fails the attempt, which is retried (default 300 s). */
  idleTimeoutMs?: number;
  /** PEM CA certificate(s) to trust for https as well as node's own (`--ca-file`). */
  ca?: Buffer | undefined;
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

/** The first byte of a 206 answer, from its Content-Range ("bytes 100-199/200" → 100), or null. */
function rangeStart(contentRange: string | undefined): number | null {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange?.trim() ?? '');
  return m ? Number(m[1]) : null;
}

/** One attempt: append to `part` from where it ends (206), or start over (200). */
async function attempt(url: string, part: string, o: DownloadOptions, agents: GetAgents): Promise<void> {
  if (url.startsWith('file:')) {
    await pipeline(createReadStream(fileURLToPath(url)), counting(0, null, o.progress), createWriteStream(part));
    return;
  }
  const have = await sizeOf(part);
  const { res } = await getFollowingRedirects(url, {
    headers: { 'user-agent': `vmpilot/${VERSION}`, ...(have > 0 ? { range: `bytes=${have}-` } : {}) },
    agents,
    idleTimeoutMs: o.idleTimeoutMs ?? 300_000,
    maxRedirects: MAX_REDIRECTS,
    signal: o.signal,
  }).catch((err: Error) => {
    throw err instanceof VmpilotError ? err : new VmpilotError('VMP_UNREACHABLE', `GET ${url}: ${err.message}`, { cause: err });
  });
  try {
    const status = res.statusCode ?? 0;
    if (status === 416 && have > 0) return; // the part is already whole (or longer than the file): let the checksum decide
    if (status !== 200 && status !== 206) throw new VmpilotError('VMP_UNREACHABLE', `GET ${url}: HTTP ${status}`, { details: { status } });
    const resumed = status === 206;
    if (resumed && rangeStart(res.headers['content-range']) !== have) {
      // not the bytes asked for: start again from the first byte next attempt
      await rm(part, { force: true });
      throw new VmpilotError('VMP_UNREACHABLE', `GET ${url}: partial answer "${res.headers['content-range'] ?? ''}" does not start at byte ${have}; starting over`);
    }
    const length = Number(res.headers['content-length'] ?? NaN);
    const total = Number.isFinite(length) ? length + (resumed ? have : 0) : null;
    // chunk by chunk, each written before the next is read: whatever arrived before a cut stays for the resume
    const fh = await open(part, resumed ? 'a' : 'w');
    let done = resumed ? have : 0;
    try {
      for await (const chunk of res) {
        await fh.write(chunk as Buffer);
        done += (chunk as Buffer).length;
        o.progress?.(done, total);
      }
    } catch (err) {
      throw new VmpilotError('VMP_UNREACHABLE', `GET ${url}: connection lost after ${done} bytes: ${(err as Error).message}`, { cause: err });
    } finally {
      await fh.close();
    }
    if (total !== null && done < total) throw new VmpilotError('VMP_UNREACHABLE', `GET ${url}: connection closed after ${done} of ${total} bytes`);
  } finally {
    if (!res.complete) res.destroy();
    else res.resume();
  }
}

/**
 * Download `url` into `part` until its sha256 is `sha256`; retries network
 * failures, resuming; a wrong checksum deletes the part and fails at once.
 */
export async function download(url: string, part: string, sha256: string, o: DownloadOptions): Promise<void> {
  const attempts = o.attempts ?? 5;
  const agents = new GetAgents(o.ca);
  try {
    for (let n = 1; ; n++) {
      try {
        await attempt(url, part, o, agents);
        break;
      } catch (err) {
        if (o.signal?.aborted) throw err;
        const details = (err as VmpilotError).details ?? {};
        const status = details.status;
        const permanent = details.permanent === true || (typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429);
        if (permanent || n >= attempts) {
          throw new VmpilotError('VMP_UNREACHABLE', `cannot download ${url} after ${n} attempt${n > 1 ? 's' : ''}: ${(err as Error).message}`, { cause: err, details });
        }
        await o.clock.sleep((o.backoffMs ?? 1000) * 2 ** (n - 1), o.signal);
      }
    }
  } finally {
    agents.close();
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
