/**
 * The GPUs a batch system gave this job, from its environment. Pure.
 *
 * A GPU job gets its devices named in CUDA_VISIBLE_DEVICES (Slurm with
 * --gres or --gpus, HTCondor, PBS Pro's hooks, a container runtime): that is
 * the list CUDA programs will see, so it wins; Slurm also names them in
 * SLURM_STEP_GPUS (inside a step) and SLURM_JOB_GPUS, and GPU_DEVICE_ORDINAL
 * (for ROCm) carries the same list. Ids are kept as the allocation spells
 * them (indices "0,1" or UUIDs "GPU-…"), since each payload is handed a
 * subset of the same list. An empty value, "NoDevFiles" or "-1" means the
 * job has no GPU.
 */

/** The environment variables read, strongest first. */
export const GPU_ENV_KEYS = ['CUDA_VISIBLE_DEVICES', 'SLURM_STEP_GPUS', 'SLURM_JOB_GPUS', 'GPU_DEVICE_ORDINAL'] as const;

/** The GPU ids a job was given, and the variable that said so. */
export interface GpuAllocation {
  ids: string[];
  from: (typeof GPU_ENV_KEYS)[number];
  problems: string[];
}

const NONE = new Set(['', 'nodevfiles', '-1', 'none', 'void']);

/** The GPUs `env` allocates to the job, or null when no variable names any (the node is not limited to some). */
export function gpuAllocation(env: Readonly<Record<string, string | undefined>>): GpuAllocation | null {
  for (const key of GPU_ENV_KEYS) {
    const raw = env[key];
    if (raw === undefined) continue;
    const problems: string[] = [];
    const t = raw.trim();
    if (NONE.has(t.toLowerCase())) return { ids: [], from: key, problems };
    const ids: string[] = [];
    for (const part of t.split(',').map((s) => s.trim())) {
      if (!/^[A-Za-z0-9_:./-]{1,200}$/.test(part)) {
        problems.push(`${key}="${raw}": entry "${part}" is not a device index or UUID; ignored`);
        continue;
      }
      if (!ids.includes(part)) ids.push(part);
    }
    return { ids, from: key, problems };
  }
  return null;
}
