/**
 * Read Machine/Job Features from `$MACHINEFEATURES` and `$JOBFEATURES`, each
 * a directory (`<dir>/<key>`) or an http(s) base URL (`<base>/<key>`).
 * Missing keys are normal. An unreadable or malformed value is logged once
 * (per key and text) and ignored; nothing here throws.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../shared/log.js';
import { JOB_KEYS, LIVE_JOB_KEYS, LIVE_MACHINE_KEYS, MACHINE_KEYS, parseFeature, type FeatureKind } from './keys.js';

/** The raw text of one key: found, absent (normal), or an error naming what failed. */
export type RawFeature = { kind: 'found'; text: string } | { kind: 'absent' } | { kind: 'error'; problem: string };

/** Fetches one key from a base (directory or URL). */
export type FeatureFetcher = (base: string, key: string) => Promise<RawFeature>;

/** How long one HTTP read may take. */
export const MJF_HTTP_TIMEOUT_MS = 3000;

const isUrl = (base: string) => /^https?:\/\//i.test(base);

/** The real fetcher: a file in a directory, or GET `<base>/<key>` (404 = absent). */
export const realFeatureFetcher: FeatureFetcher = async (base, key) => {
  if (isUrl(base)) {
    const url = `${base.replace(/\/+$/, '')}/${key}`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(MJF_HTTP_TIMEOUT_MS) });
      if (res.status === 404) return { kind: 'absent' };
      if (!res.ok) return { kind: 'error', problem: `GET ${url}: HTTP ${res.status}` };
      return { kind: 'found', text: await res.text() };
    } catch (err) {
      return { kind: 'error', problem: `GET ${url}: ${(err as Error).message}` };
    }
  }
  const file = path.join(base, key);
  try {
    return { kind: 'found', text: await readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
    return { kind: 'error', problem: `${file}: ${(err as Error).message}` };
  }
};

/** What was read: values by key, the base each side came from, and the problems met. */
export interface FeaturesRead {
  machine: Record<string, number | string>;
  job: Record<string, number | string>;
  sources: { machine: string | null; job: string | null };
  problems: string[];
}

/** Reads both sides; remembers what it read so live re-reads update in place. */
export class FeaturesReader {
  private readonly logged = new Set<string>();
  private readonly last: FeaturesRead;

  constructor(
    private readonly bases: { machine: string | null; job: string | null },
    private readonly log: Logger,
    private readonly fetcher: FeatureFetcher = realFeatureFetcher,
  ) {
    this.last = { machine: {}, job: {}, sources: { ...bases }, problems: [] };
  }

  /** Read every key of the specification from both sides. */
  async readAll(): Promise<FeaturesRead> {
    this.last.problems = [];
    await Promise.all([this.readSide('machine', Object.keys(MACHINE_KEYS)), this.readSide('job', Object.keys(JOB_KEYS))]);
    return this.snapshot();
  }

  /** Re-read only the keys sites move while jobs run (`shutdowntime`, `shutdowntime_job`). */
  async readLive(): Promise<FeaturesRead> {
    this.last.problems = [];
    await Promise.all([this.readSide('machine', [...LIVE_MACHINE_KEYS]), this.readSide('job', [...LIVE_JOB_KEYS])]);
    return this.snapshot();
  }

  private snapshot(): FeaturesRead {
    return structuredClone(this.last);
  }

  private async readSide(side: 'machine' | 'job', keys: string[]): Promise<void> {
    const base = this.bases[side];
    if (!base) return;
    const kinds: Readonly<Record<string, FeatureKind>> = side === 'machine' ? MACHINE_KEYS : JOB_KEYS;
    const values = this.last[side];
    await Promise.all(
      keys.map(async (key) => {
        const raw = await this.fetcher(base, key);
        if (raw.kind === 'absent') {
          delete values[key];
          return;
        }
        const parsed = raw.kind === 'found' ? parseFeature(kinds[key]!, raw.text) : { ok: false as const, problem: raw.problem };
        if (parsed.ok) {
          values[key] = parsed.value;
          return;
        }
        delete values[key];
        const problem = `${side} feature ${key} from ${base} ignored: ${parsed.problem}`;
        this.last.problems.push(problem);
        if (!this.logged.has(problem)) {
          this.logged.add(problem);
          this.log.warn({ side, key, base, problem: parsed.problem }, 'bad Machine/Job Features value ignored');
        }
      }),
    );
  }
}
