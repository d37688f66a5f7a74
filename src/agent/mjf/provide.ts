/**
 * Machine/Job Features as the agent provides them: a `$MACHINEFEATURES`
 * directory for the node (under the state dir) and one `$JOBFEATURES`
 * directory per payload, one file per key, one value per file.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** What the job features of one payload are computed from. */
export interface JobFeatureInputs {
  payloadId: number;
  cores: number;
  totalCores: number;
  /** When the payload starts (ms epoch). */
  now: number;
  /** The payload's own wall-time limit in seconds, or null. */
  wallSec: number | null;
  memoryMb: number | null;
  /** The agent's deadline (ms epoch), or null. */
  deadline: number | null;
  graceSec: number;
  /** The agent's own hs06 for all its cores, when known. */
  hs06: number | null;
  /** Scratch space the agent has (bytes), shared by cores. */
  scratchBytes: number | null;
}

const MIB = 1024 * 1024;

/**
 * The job features of one payload. Pure. The payload is sent SIGTERM at the
 * agent's deadline minus grace, so that is its `shutdowntime_job`; its wall
 * limit is its own or, without one, the time until then.
 */
export function jobFeatures(i: JobFeatureInputs): Record<string, number | string> {
  const start = Math.floor(i.now / 1000);
  const shutdown = i.deadline === null ? null : Math.floor(i.deadline / 1000) - i.graceSec;
  let wall = i.wallSec;
  if (shutdown !== null) wall = Math.max(0, Math.min(wall ?? Infinity, shutdown - start));
  const f: Record<string, number | string> = {
    allocated_cpu: i.cores,
    jobstart_secs: start,
    grace_secs_job: i.graceSec,
    job_id: String(i.payloadId),
  };
  if (wall !== null) {
    f.wall_limit_secs = wall;
    f.cpu_limit_secs = wall * i.cores;
  }
  if (shutdown !== null) f.shutdowntime_job = shutdown;
  if (i.memoryMb !== null) f.max_rss_bytes = i.memoryMb * MIB;
  if (i.scratchBytes !== null && i.totalCores > 0) f.scratch_limit_bytes = Math.floor((i.scratchBytes * i.cores) / i.totalCores);
  if (i.hs06 !== null && i.totalCores > 0) f.hs06_job = Number(((i.hs06 * i.cores) / i.totalCores).toFixed(2));
  return f;
}

/** The node's machine features as the agent's payloads see them. Pure. */
export function machineFeatures(i: { totalCores: number; deadline: number | null; graceSec: number; hs06: number | null }): Record<string, number | string> {
  const f: Record<string, number | string> = { total_cpu: i.totalCores, grace_secs: i.graceSec };
  if (i.deadline !== null) f.shutdowntime = Math.floor(i.deadline / 1000);
  if (i.hs06 !== null) f.hs06 = i.hs06;
  return f;
}

/** Write `values` into `dir`, one file per key (each atomically: temp file + rename). */
export async function writeFeatures(dir: string, values: Readonly<Record<string, number | string>>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await Promise.all(
    Object.entries(values).map(async ([key, value]) => {
      const tmp = path.join(dir, `.${key}.tmp`);
      await writeFile(tmp, `${value}\n`, { mode: 0o644 });
      await rename(tmp, path.join(dir, key));
    }),
  );
}
