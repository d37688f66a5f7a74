/**
 * Machine/Job Features as the agent provides them: a `$MACHINEFEATURES`
 * directory for the node (under the state dir) and one `$JOBFEATURES`
 * directory per payload, one file per key, one value per file (written by
 * ./write.ts). Pure: the values, from what the site gave the pilot and what
 * the payload holds. docs/mjf.md has the table of every key.
 */
export { writeFeatures } from './write.js';

/**
 * What the site gave the pilot as a whole (all the cores it offers), each
 * null when unknown. A payload gets a share of each, by cores.
 */
export interface PilotLimits {
  /** HS06 of the cores the pilot offers. */
  hs06: number | null;
  /** The site's CPU-time limit for the job the pilot runs in (`cpu_limit_secs`). */
  cpuLimitSec: number | null;
  /** The memory limit the pilot holds (site, cgroup, batch or --memory-mb), bytes. */
  rssBytes: number | null;
  /** The site's swap limit (`max_swap_bytes`). */
  swapBytes: number | null;
  /** Scratch space: the site's `scratch_limit_bytes`, else the disk free under the state dir. */
  scratchBytes: number | null;
}

/** No limit known. */
export const NO_LIMITS: PilotLimits = { hs06: null, cpuLimitSec: null, rssBytes: null, swapBytes: null, scratchBytes: null };

/** What the job features of one payload are computed from. */
export interface JobFeatureInputs {
  payloadId: number;
  cores: number;
  /** The cores the pilot offers (the payload's share is cores / totalCores). */
  totalCores: number;
  /** When the payload starts (ms epoch). */
  now: number;
  /** The payload's own wall-time limit in seconds, or null. */
  wallSec: number | null;
  /** The payload's own memory request, MiB, or null. */
  memoryMb: number | null;
  /** The agent's deadline (ms epoch), or null. */
  deadline: number | null;
  graceSec: number;
  pilot: PilotLimits;
  /** The ids of the GPUs the payload holds, on a node with GPUs; null or absent: the node has none. */
  gpus?: readonly string[] | null;
  /** The scratch the payload declared (its `scratchMb` requirement), MiB; null or absent: none. */
  scratchMb?: number | null;
}

const MIB = 1024 * 1024;

/** The moment the agent sends SIGTERM to its payloads (Unix seconds): the deadline minus grace; null without a deadline. Pure. */
export function shutdownTimeJob(deadline: number | null, graceSec: number): number | null {
  return deadline === null ? null : Math.floor(deadline / 1000) - graceSec;
}

/**
 * The job features of one payload. Pure. The payload is sent SIGTERM at the
 * agent's deadline minus grace, so that is its `shutdowntime_job`; its wall
 * limit is its own or, without one, the time until then. Every limit the
 * site gave the pilot is shared out by cores (`cores / totalCores`), so the
 * payloads together never get more than the pilot holds; a payload's own
 * request (wall time, memory) only narrows its share, except memory: a
 * payload's declared memory is what the agent admitted it with (the
 * matcher counts it against the free memory), capped at the pilot's whole
 * limit; and so is its declared scratch. On a node with GPUs it also gets
 * `allocated_gpu` (how many it holds) and `allocated_gpu_ids` (which: the
 * ids in its CUDA_VISIBLE_DEVICES), vmpilot's own keys, since
 * HSF-TN-2016-02 defines none for GPUs.
 */
export function jobFeatures(i: JobFeatureInputs): Record<string, number | string> {
  const start = Math.floor(i.now / 1000);
  const shutdown = shutdownTimeJob(i.deadline, i.graceSec);
  const fraction = i.totalCores > 0 ? Math.min(1, i.cores / i.totalCores) : 1;
  const share = (v: number | null) => (v === null ? null : Math.floor(v * fraction));
  let wall = i.wallSec;
  if (shutdown !== null) wall = Math.max(0, Math.min(wall ?? Infinity, shutdown - start));
  const f: Record<string, number | string> = {
    allocated_cpu: i.cores,
    jobstart_secs: start,
    grace_secs_job: i.graceSec,
    job_id: String(i.payloadId),
  };
  if (wall !== null) f.wall_limit_secs = wall;
  const cpu = minOf(wall === null ? null : wall * i.cores, share(i.pilot.cpuLimitSec));
  if (cpu !== null) f.cpu_limit_secs = cpu;
  if (shutdown !== null) f.shutdowntime_job = shutdown;
  const rss = i.memoryMb !== null ? minOf(i.memoryMb * MIB, i.pilot.rssBytes) : share(i.pilot.rssBytes);
  if (rss !== null) f.max_rss_bytes = rss;
  const swap = share(i.pilot.swapBytes);
  if (swap !== null) f.max_swap_bytes = swap;
  const scratch = i.scratchMb ? minOf(i.scratchMb * MIB, i.pilot.scratchBytes) : share(i.pilot.scratchBytes);
  if (scratch !== null) f.scratch_limit_bytes = scratch;
  if (i.gpus) {
    f.allocated_gpu = i.gpus.length;
    if (i.gpus.length > 0) f.allocated_gpu_ids = i.gpus.join(',');
  }
  if (i.pilot.hs06 !== null) f.hs06_job = Number((i.pilot.hs06 * fraction).toFixed(2));
  return f;
}

function minOf(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** The node's machine features as the agent's payloads see them: the pilot's cores, its HS06, its deadline and grace. Pure. */
export function machineFeatures(i: { totalCores: number; deadline: number | null; graceSec: number; hs06: number | null }): Record<string, number | string> {
  const f: Record<string, number | string> = { total_cpu: i.totalCores, grace_secs: i.graceSec };
  if (i.deadline !== null) f.shutdowntime = Math.floor(i.deadline / 1000);
  if (i.hs06 !== null) f.hs06 = Number(i.hs06.toFixed(2));
  return f;
}

/** Keys the agent may write into `$MACHINEFEATURES`: those it leaves out are removed (a shutdown called off). */
export const PROVIDED_MACHINE_KEYS = ['total_cpu', 'grace_secs', 'shutdowntime', 'hs06'] as const;
