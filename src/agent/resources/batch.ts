/**
 * The batch system's allocation, from the job's environment (recorded or
 * live): Slurm, PBS/Torque or Grid Engine (HTCondor's slot ad: condor.ts).
 * Pure parsing; the end time that needs a command (`squeue`, `qstat`) is
 * asked through a CommandRunner.
 */
import type { CommandRunner } from '../ports.js';
import { GPU_ENV_KEYS } from './gpu-allocation.js';

/** What the batch system gave this job. */
export interface BatchAllocation {
  system: 'slurm' | 'pbs' | 'sge' | 'condor';
  jobId: string;
  cores: number | null;
  /** Memory given to the job, MiB, when the batch system says it (HTCondor's slot). */
  memoryMb: number | null;
  /** Wall-time limit in seconds, when the environment says it. */
  wallSec: number | null;
  problems: string[];
}

/** Environment variables the batch probe reads (the config loader captures these). */
export const BATCH_ENV_KEYS: readonly string[] = [
  'SLURM_JOB_ID',
  'SLURM_CPUS_ON_NODE',
  'PBS_JOBID',
  'NCPUS',
  'PBS_NUM_PPN',
  'PBS_WALLTIME',
  'JOB_ID',
  'NSLOTS',
  'SGE_ROOT',
  'SGE_CELL',
  'PE_HOSTFILE',
  '_CONDOR_MACHINE_AD',
  // the GPUs the job was given (gpu-allocation.ts)
  ...GPU_ENV_KEYS,
];

/** How long `squeue`/`qstat` may take. */
export const BATCH_COMMAND_TIMEOUT_MS = 5000;

function positiveInt(env: Readonly<Record<string, string | undefined>>, key: string, problems: string[]): number | null {
  const raw = env[key];
  if (raw === undefined || raw === '') return null;
  if (/^\s*\d+\s*$/.test(raw) && Number(raw) >= 1) return Number(raw);
  problems.push(`${key}="${raw}" is not a positive integer; ignored`);
  return null;
}

/** Seconds from "SECONDS", "MM:SS" or "HH:MM:SS" (Grid Engine and PBS forms), or null. Pure. */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^(?:(\d+):)?(\d+):(\d+)$/.exec(t);
  if (!m) return null;
  return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}

/** The allocation described by a job environment, or null outside a batch job. Pure. */
export function batchAllocation(env: Readonly<Record<string, string | undefined>>): BatchAllocation | null {
  const problems: string[] = [];
  if (env.SLURM_JOB_ID) {
    return { system: 'slurm', jobId: env.SLURM_JOB_ID, cores: positiveInt(env, 'SLURM_CPUS_ON_NODE', problems), memoryMb: null, wallSec: null, problems };
  }
  if (env.PBS_JOBID) {
    const cores = positiveInt(env, 'NCPUS', problems) ?? positiveInt(env, 'PBS_NUM_PPN', problems);
    let wallSec: number | null = null;
    if (env.PBS_WALLTIME) {
      wallSec = parseDuration(env.PBS_WALLTIME);
      if (wallSec === null) problems.push(`PBS_WALLTIME="${env.PBS_WALLTIME}" is not seconds or HH:MM:SS; ignored`);
    }
    return { system: 'pbs', jobId: env.PBS_JOBID, cores, memoryMb: null, wallSec, problems };
  }
  if (env.JOB_ID && (env.NSLOTS !== undefined || env.SGE_ROOT !== undefined || env.PE_HOSTFILE !== undefined)) {
    return { system: 'sge', jobId: env.JOB_ID, cores: positiveInt(env, 'NSLOTS', problems), memoryMb: null, wallSec: null, problems };
  }
  return null;
}

/** The end time (ms epoch) from `squeue -o %e` output ("2025-01-01T12:00:00", local time), or null. Pure. */
export function parseSqueueEnd(stdout: string): number | null {
  const t = stdout.trim().split('\n')[0]?.trim() ?? '';
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(t)) return null;
  const ms = new Date(t).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/** `h_rt` in seconds from `qstat -j` output ("hard resource_list: h_rt=300,..."), or null. Pure. */
export function parseQstatHrt(stdout: string): number | null {
  const line = /^hard resource_list:\s*(.*)$/m.exec(stdout)?.[1] ?? '';
  const m = /(?:^|,)h_rt=([^,\s]+)/.exec(line);
  return m ? parseDuration(m[1]!) : null;
}

/**
 * When the batch job ends (ms epoch), or null when unknown. Slurm asks
 * `squeue`; PBS adds PBS_WALLTIME and Grid Engine adds `h_rt` (from
 * `qstat -j`) to `startedAt`, the agent's start, which is the job's start
 * to within seconds.
 */
export async function batchEndTime(
  alloc: BatchAllocation,
  run: CommandRunner,
  startedAt: number,
): Promise<{ at: number | null; problem?: string }> {
  if (alloc.system === 'pbs') return { at: alloc.wallSec === null ? null : startedAt + alloc.wallSec * 1000 };
  // an HTCondor slot has no end time of its own (a site limits it by policy, or by MJF)
  if (alloc.system === 'condor') return { at: null };
  const argv = alloc.system === 'slurm' ? ['squeue', '-h', '-j', alloc.jobId, '-o', '%e'] : ['qstat', '-j', alloc.jobId];
  const out = await run(argv, BATCH_COMMAND_TIMEOUT_MS);
  if (out.exitCode !== 0) return { at: null, problem: `${argv.join(' ')}: ${out.error ?? `exit ${out.exitCode}`}` };
  if (alloc.system === 'slurm') {
    const at = parseSqueueEnd(out.stdout);
    return at === null ? { at: null, problem: `${argv.join(' ')} printed no end time: "${out.stdout.trim().slice(0, 80)}"` } : { at };
  }
  const hrt = parseQstatHrt(out.stdout);
  return { at: hrt === null ? null : startedAt + hrt * 1000 };
}
