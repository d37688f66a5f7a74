/**
 * The relay's cache of large files (the agent executable, bootstrap
 * artifacts), by sha256: a file is fetched over the wide-area link once,
 * hashed while it is written, kept only when its sha256 (and size, when
 * known) is what the manifest or the request said, and then served from the
 * login node's disk to every compute node. Requests for a file being fetched
 * wait for that one fetch (single flight); a failed or wrong fetch is kept
 * by no one and tried again by the next request.
 *
 * The cache stays under its bound (`--cache-max-mb`): after each fetch, the
 * files used least recently (a file's mtime is moved to now each time it is
 * asked for) go until the rest fits. The file just fetched always stays,
 * and a compute node still reading a removed file reads it to the end (its
 * open descriptor keeps the bytes); the next ask fetches it again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { VmpilotError, describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';

const SHA256 = /^[0-9a-f]{64}$/;

/** What a fetch gives the cache: the bytes, and where they came from (for messages). */
export interface Fetched {
  stream: Readable;
  from: string;
}

/** Files by sha256 in one directory. */
export class ContentCache {
  private readonly inFlight = new Map<string, Promise<string>>();
  /** How many fetches went over the link (for logs and tests). */
  fetches = 0;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    /** The bound on the files kept, in bytes. */
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** The path of the cached file with this sha256 (marked as just used), or null when it is not there. */
  async has(sha256: string): Promise<string | null> {
    const file = path.join(this.dir, sha256);
    try {
      if (!(await stat(file)).isFile()) return null;
      const now = new Date();
      await utimes(file, now, now).catch(() => undefined);
      return file;
    } catch {
      return null;
    }
  }

  /**
   * Remove the least recently used files until the rest is within the
   * bound, never `keep`. Returns the sha256s removed.
   */
  async prune(keep: string | null): Promise<string[]> {
    if (!Number.isFinite(this.maxBytes)) return [];
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => SHA256.test(n));
    const files: { name: string; size: number; used: number }[] = [];
    for (const name of names) {
      const st = await stat(path.join(this.dir, name)).catch(() => null);
      if (st?.isFile()) files.push({ name, size: st.size, used: st.mtimeMs });
    }
    let total = files.reduce((sum, f) => sum + f.size, 0);
    const removed: string[] = [];
    for (const f of files.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      if (f.name === keep) continue;
      await unlink(path.join(this.dir, f.name)).catch(() => undefined);
      total -= f.size;
      removed.push(f.name);
    }
    if (removed.length > 0) this.log.info({ removed, bytesKept: total, maxBytes: this.maxBytes }, 'cache pruned: least recently used files removed');
    return removed;
  }

  /**
   * The path of the file with `sha256`, fetched with `fetch` when it is not
   * cached yet (once, whoever else asks meanwhile). Rejects with VMP_SERVER
   * when what came is not that file, VMP_UNREACHABLE when it could not come.
   */
  async get(sha256: string, size: number | null, fetch: () => Promise<Fetched>): Promise<string> {
    if (!SHA256.test(sha256)) throw new VmpilotError('VMP_BAD_REQUEST', `"${sha256}" is not a sha256 (64 lower-case hex digits)`);
    const cached = await this.has(sha256);
    if (cached) return cached;
    let pending = this.inFlight.get(sha256);
    if (!pending) {
      pending = this.fill(sha256, size, fetch).finally(() => this.inFlight.delete(sha256));
      this.inFlight.set(sha256, pending);
    }
    return pending;
  }

  private async fill(sha256: string, size: number | null, fetch: () => Promise<Fetched>): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const final = path.join(this.dir, sha256);
    const part = path.join(this.dir, `.${sha256}.${randomBytes(4).toString('hex')}.part`);
    this.fetches++;
    const t0 = performance.now();
    const { stream, from } = await fetch();
    const hash = createHash('sha256');
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(stream, count, createWriteStream(part, { mode: 0o644 }));
    } catch (err) {
      await unlink(part).catch(() => undefined);
      throw new VmpilotError('VMP_UNREACHABLE', `fetching ${from} broke off after ${bytes} bytes: ${describeError(err)}`, { cause: err });
    }
    const got = hash.digest('hex');
    if (got !== sha256 || (size !== null && bytes !== size)) {
      await unlink(part).catch(() => undefined);
      this.log.error({ from, sha256: got, expected: sha256, bytes, size }, 'fetched file is not the one asked for: not kept');
      throw new VmpilotError('VMP_SERVER', `${from} sent ${bytes} bytes with sha256 ${got}; expected ${size === null ? '' : `${size} bytes with `}sha256 ${sha256}: not kept, not served`);
    }
    await rename(part, final);
    this.log.info({ from, sha256, bytes, ms: Math.round(performance.now() - t0) }, 'fetched into the cache');
    await this.prune(sha256);
    return final;
  }
}
