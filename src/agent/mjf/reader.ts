/**
 * Read Machine/Job Features from `$MACHINEFEATURES` and `$JOBFEATURES`, each
 * a directory (`<dir>/<key>`) or an http(s) base URL (`<base>/<key>`).
 * Missing keys are normal (a 404 or no file: the key is not set). A read
 * that fails (an I/O error, an HTTP error or timeout, a malformed value)
 * keeps the last value known, marked stale, as DIRAC's reader did: a site's
 * MJF server being down does not erase a deadline. Each problem is logged
 * once (per key and text); nothing here throws.
 *
 * Re-reads are cheap: a key is fetched again only when it changed, as a
 * stat tells for a directory and a conditional GET (If-None-Match /
 * If-Modified-Since, answered 304) for a URL.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { systemClock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { FeatureFetcher, FeatureValidator, RawFeature } from '../ports.js';
import { JOB_KEYS, LIVE_JOB_KEYS, LIVE_MACHINE_KEYS, MACHINE_KEYS, parseFeature, type FeatureKind } from './keys.js';

export type { FeatureFetcher, FeatureValidator, RawFeature } from '../ports.js';

/** How long one HTTP read may take. */
export const MJF_HTTP_TIMEOUT_MS = 3000;
/** More than any value (256 characters) with room to spare: a bigger file is not a feature value. */
const MAX_VALUE_BYTES = 4096;

const isUrl = (base: string) => /^https?:\/\//i.test(base);

async function fetchUrl(base: string, key: string, validator?: FeatureValidator): Promise<RawFeature> {
  const url = `${base.replace(/\/+$/, '')}/${key}`;
  const headers: Record<string, string> = {};
  if (validator?.etag) headers['if-none-match'] = validator.etag;
  if (validator?.lastModified) headers['if-modified-since'] = validator.lastModified;
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(MJF_HTTP_TIMEOUT_MS) });
    if (res.status === 304 && validator) {
      await res.body?.cancel();
      return { kind: 'unchanged' };
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return { kind: 'absent' };
    }
    if (!res.ok) {
      await res.body?.cancel();
      return { kind: 'error', problem: `GET ${url}: HTTP ${res.status}` };
    }
    const text = await res.text();
    const etag = res.headers.get('etag');
    const lastModified = res.headers.get('last-modified');
    return { kind: 'found', text, validator: { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) } };
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    return { kind: 'error', problem: `GET ${url}: ${(err as Error).message}${cause ? ` (${cause})` : ''}` };
  }
}

async function fetchFile(base: string, key: string, validator?: FeatureValidator): Promise<RawFeature> {
  const file = path.join(base, key);
  try {
    // the stat comes first: a change after it makes the next stat differ, so it is read then
    const s = await stat(file, { bigint: true });
    if (!s.isFile()) return { kind: 'error', problem: `${file}: not a regular file` };
    if (s.size > MAX_VALUE_BYTES) return { kind: 'error', problem: `${file}: ${s.size} bytes, too large for a value` };
    const signature = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    if (validator?.stat === signature) return { kind: 'unchanged' };
    return { kind: 'found', text: await readFile(file, 'utf8'), validator: { stat: signature } };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'error', problem: `${file}: ${(err as Error).message}` };
  }
}

/** The real fetcher: a file in a directory (stat, then read when it changed), or a conditional GET `<base>/<key>` (404 = absent). */
export const realFeatureFetcher: FeatureFetcher = (base, key, validator) => (isUrl(base) ? fetchUrl(base, key, validator) : fetchFile(base, key, validator));

/** A value kept after a failed read: why the read failed, since when, and when it was last read well (null: not known). */
export interface StaleFeature {
  problem: string;
  since: number;
  readAt: number | null;
}

type Side = 'machine' | 'job';

/** What was read: values by key (stale ones included), the base each side came from, the stale keys, and the problems met. */
export interface FeaturesRead {
  machine: Record<string, number | string>;
  job: Record<string, number | string>;
  sources: { machine: string | null; job: string | null };
  /** Keys whose last read failed: their value above is the last one known. */
  stale: Record<Side, Record<string, StaleFeature>>;
  problems: string[];
}

/** Values known, with when each was last read well (ms epoch): what a later run starts from (last-known.ts). */
export interface KnownFeatures {
  sources: { machine: string | null; job: string | null };
  machine: Record<string, { value: number | string; readAt: number }>;
  job: Record<string, { value: number | string; readAt: number }>;
}

interface KeyState {
  validator?: FeatureValidator;
  readAt: number | null;
  /** What was wrong with the text the validator describes (it is read again only once it changes). */
  malformed?: string;
}

/** Reads both sides; remembers what it read so re-reads update in place and failures keep the last value. */
export class FeaturesReader {
  private readonly logged = new Set<string>();
  private readonly last: FeaturesRead;
  private readonly state: Record<Side, Map<string, KeyState>> = { machine: new Map(), job: new Map() };
  /** Reads run one at a time (the watch, the heartbeat and the match loop all ask). */
  private queue: Promise<unknown> = Promise.resolve();
  private changed = false;

  constructor(
    private readonly bases: { machine: string | null; job: string | null },
    private readonly log: Logger,
    private readonly fetcher: FeatureFetcher = realFeatureFetcher,
    private readonly now: () => number = () => systemClock.now(),
  ) {
    this.last = { machine: {}, job: {}, sources: { ...bases }, stale: { machine: {}, job: {} }, problems: [] };
  }

  /** True when something is read (a base is given). */
  get watched(): boolean {
    return this.bases.machine !== null || this.bases.job !== null;
  }

  /**
   * Start from values a previous run knew (same bases only): they count as
   * known, so a failed first read keeps them (stale) rather than nothing.
   */
  seed(known: KnownFeatures): void {
    for (const side of ['machine', 'job'] as const) {
      if (!this.bases[side] || known.sources[side] !== this.bases[side]) continue;
      const kinds = side === 'machine' ? MACHINE_KEYS : JOB_KEYS;
      for (const [key, k] of Object.entries(known[side])) {
        if (!(key in kinds)) continue;
        this.last[side][key] = k.value;
        this.state[side].set(key, { readAt: k.readAt });
      }
    }
  }

  /** The values known and when each was last read well (stale ones with their last good read). */
  known(): KnownFeatures {
    const out: KnownFeatures = { sources: { ...this.bases }, machine: {}, job: {} };
    for (const side of ['machine', 'job'] as const) {
      for (const [key, value] of Object.entries(this.last[side])) {
        const readAt = this.state[side].get(key)?.readAt;
        if (readAt != null) out[side][key] = { value, readAt };
      }
    }
    return out;
  }

  /** True (once) when a value or its staleness changed since the last call. */
  takeChanged(): boolean {
    const c = this.changed;
    this.changed = false;
    return c;
  }

  /** Read every key of the specification from both sides. */
  readAll(): Promise<FeaturesRead> {
    return this.serial([...Object.keys(MACHINE_KEYS)], [...Object.keys(JOB_KEYS)]);
  }

  /** Re-read only the keys sites move while jobs run (`shutdowntime`, `shutdowntime_job`). */
  readLive(): Promise<FeaturesRead> {
    return this.serial([...LIVE_MACHINE_KEYS], [...LIVE_JOB_KEYS]);
  }

  private serial(machineKeys: string[], jobKeys: string[]): Promise<FeaturesRead> {
    const run = this.queue.then(async () => {
      this.last.problems = [];
      await Promise.all([this.readSide('machine', machineKeys), this.readSide('job', jobKeys)]);
      return structuredClone(this.last);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async readSide(side: Side, keys: string[]): Promise<void> {
    const base = this.bases[side];
    if (!base) return;
    await Promise.all(keys.map((key) => this.readKey(side, base, key)));
  }

  private async readKey(side: Side, base: string, key: string): Promise<void> {
    const kinds: Readonly<Record<string, FeatureKind>> = side === 'machine' ? MACHINE_KEYS : JOB_KEYS;
    const values = this.last[side];
    const st = this.state[side].get(key) ?? { readAt: null };
    const raw = await this.fetcher(base, key, st.validator);
    if (raw.kind === 'unchanged') {
      // the text last parsed well is still there (the server or file is readable again)
      if (!st.malformed && key in this.last.stale[side]) this.recovered(side, base, key, st);
      return;
    }
    if (raw.kind === 'absent') {
      if (key in values) this.changed = true;
      delete values[key];
      delete this.last.stale[side][key];
      this.state[side].delete(key);
      return;
    }
    const parsed = raw.kind === 'found' ? parseFeature(kinds[key]!, raw.text) : { ok: false as const, problem: raw.problem };
    if (parsed.ok) {
      if (values[key] !== parsed.value) this.changed = true;
      values[key] = parsed.value;
      const next: KeyState = { ...(raw.kind === 'found' && raw.validator ? { validator: raw.validator } : {}), readAt: this.now() };
      if (key in this.last.stale[side]) this.recovered(side, base, key, next);
      this.state[side].set(key, next);
      return;
    }
    // a malformed value is remembered by its validator too: it is read again once it changes
    if (raw.kind === 'found') this.state[side].set(key, { ...(raw.validator ? { validator: raw.validator } : {}), readAt: st.readAt, malformed: parsed.problem });
    const kept = key in values;
    const problem = `${side} feature ${key} from ${base} ${kept ? 'not read, last value kept' : 'ignored'}: ${parsed.problem}`;
    this.last.problems.push(problem);
    if (kept) {
      const prev = this.last.stale[side][key];
      if (!prev) this.changed = true;
      this.last.stale[side][key] = { problem: parsed.problem, since: prev?.since ?? this.now(), readAt: st.readAt };
    }
    if (!this.logged.has(problem)) {
      this.logged.add(problem);
      const msg = kept ? 'Machine/Job Features read failed: last known value kept' : 'bad Machine/Job Features value ignored';
      this.log.warn({ side, key, base, problem: parsed.problem, ...(kept ? { kept: values[key] } : {}) }, msg);
    }
  }

  private recovered(side: Side, base: string, key: string, st: KeyState): void {
    delete this.last.stale[side][key];
    st.readAt = this.now();
    this.changed = true;
    this.log.info({ side, key, base }, 'Machine/Job Features read again');
  }
}
