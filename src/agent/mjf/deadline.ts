/**
 * The agent's deadline: the earliest of every limit it knows. Pure.
 * MJF times are Unix seconds; the result is milliseconds since the epoch.
 */

/** One limit and where it came from. */
export interface DeadlineCandidate {
  source: 'mjf:jobstart_secs+wall_limit_secs' | 'mjf:shutdowntime_job' | 'mjf:shutdowntime' | 'batch' | 'config:lifetimeSec' | 'spot:instance-action';
  at: number;
}

/** The deadline, the limit that set it, and every limit considered. */
export interface Deadline {
  at: number | null;
  source: DeadlineCandidate['source'] | null;
  candidates: DeadlineCandidate[];
}

/** What the deadline is computed from. */
export interface DeadlineInputs {
  machine: Readonly<Record<string, number | string>>;
  job: Readonly<Record<string, number | string>>;
  /** The batch job's end time (ms epoch), or null. */
  batchEnd: number | null;
  /** Boot time plus the configured maximum lifetime (ms epoch), or null. */
  lifetimeEnd: number | null;
  /** When a spot interruption notice says the instance is interrupted (ms epoch), or null. */
  spotAction?: number | null;
}

const num = (v: number | string | undefined): number | null => (typeof v === 'number' ? v : null);

/** The earliest of all known limits (null when there is none). */
export function computeDeadline(i: DeadlineInputs): Deadline {
  const candidates: DeadlineCandidate[] = [];
  const start = num(i.job.jobstart_secs);
  const wall = num(i.job.wall_limit_secs);
  if (start !== null && wall !== null) candidates.push({ source: 'mjf:jobstart_secs+wall_limit_secs', at: (start + wall) * 1000 });
  const sdJob = num(i.job.shutdowntime_job);
  if (sdJob !== null) candidates.push({ source: 'mjf:shutdowntime_job', at: sdJob * 1000 });
  const sd = num(i.machine.shutdowntime);
  if (sd !== null) candidates.push({ source: 'mjf:shutdowntime', at: sd * 1000 });
  if (i.batchEnd !== null) candidates.push({ source: 'batch', at: i.batchEnd });
  if (i.lifetimeEnd !== null) candidates.push({ source: 'config:lifetimeSec', at: i.lifetimeEnd });
  if (i.spotAction !== undefined && i.spotAction !== null) candidates.push({ source: 'spot:instance-action', at: i.spotAction });
  let best: DeadlineCandidate | null = null;
  for (const c of candidates) if (best === null || c.at < best.at) best = c;
  return { at: best?.at ?? null, source: best?.source ?? null, candidates };
}
