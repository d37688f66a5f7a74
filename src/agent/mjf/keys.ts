/**
 * The keys of HEP Machine/Job Features (HSF-TN-2016-02) and how each value
 * is parsed. Pure. A value is one line of text: an integer (times are Unix
 * seconds), a decimal (hs06) or a string (job_id).
 */

/** How a key's value is parsed. */
export type FeatureKind = 'int' | 'number' | 'string';

/** Machine features: the node (or VM) as the site describes it. */
export const MACHINE_KEYS: Readonly<Record<string, FeatureKind>> = {
  total_cpu: 'int',
  hs06: 'number',
  shutdowntime: 'int',
  grace_secs: 'int',
  // older names, still published by some sites
  jobslots: 'int',
  phys_cores: 'int',
  log_cores: 'int',
};

/** Job features: this job's allocation and limits. */
export const JOB_KEYS: Readonly<Record<string, FeatureKind>> = {
  allocated_cpu: 'int',
  hs06_job: 'number',
  shutdowntime_job: 'int',
  grace_secs_job: 'int',
  jobstart_secs: 'int',
  job_id: 'string',
  wall_limit_secs: 'int',
  cpu_limit_secs: 'int',
  max_rss_bytes: 'int',
  max_swap_bytes: 'int',
  scratch_limit_bytes: 'int',
  // older names, still published by some sites (Vac, Vcycle, Grid Engine prologues)
  allocated_CPU: 'int',
  /** Memory limit in units of 1,000,000 bytes (the old job features' unit). */
  mem_limit_MB: 'int',
};

/** Keys sites move while jobs run: watched (docs/mjf.md). */
export const LIVE_MACHINE_KEYS = ['shutdowntime'] as const;
export const LIVE_JOB_KEYS = ['shutdowntime_job'] as const;

/** A parsed value, or what was wrong with the raw text. */
export type ParsedFeature = { ok: true; value: number | string } | { ok: false; problem: string };

/** Parse the raw text of `key` as its kind. Pure. */
export function parseFeature(kind: FeatureKind, raw: string): ParsedFeature {
  const t = raw.trim();
  if (t === '') return { ok: false, problem: 'empty value' };
  if (t.length > 256) return { ok: false, problem: 'value longer than 256 characters' };
  if (kind === 'string') return /^[\x20-\x7e]+$/.test(t) ? { ok: true, value: t } : { ok: false, problem: 'not printable text' };
  if (kind === 'int') {
    if (!/^\d+$/.test(t)) return { ok: false, problem: `"${t}" is not a non-negative integer` };
    const n = Number(t);
    return Number.isSafeInteger(n) ? { ok: true, value: n } : { ok: false, problem: `"${t}" is too large` };
  }
  if (!/^\d+(\.\d+)?$/.test(t)) return { ok: false, problem: `"${t}" is not a non-negative number` };
  return { ok: true, value: Number(t) };
}
