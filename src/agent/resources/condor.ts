/**
 * An HTCondor slot's allocation: HTCondor starts every job with
 * `_CONDOR_MACHINE_AD`, the path of the slot's machine ClassAd in the job's
 * scratch directory, one `Attribute = value` per line. Its `Cpus` and
 * `Memory` (MiB) are what this slot was given, which on a partitionable
 * slot is far less than the node's `total_cpu`.
 */
import { open } from 'node:fs/promises';
import type { BatchAllocation } from './batch.js';

/** Machine ads are a few kB; a file larger than this is not one. */
const MAX_AD_BYTES = 1024 * 1024;

/** `Cpus` and `Memory` (MiB) of a machine ad's text; problems name the bad line. Pure. */
export function parseMachineAd(text: string): { cores: number | null; memoryMb: number | null; name: string | null; problems: string[] } {
  const problems: string[] = [];
  const attr = (name: string): string | null => new RegExp(`^\\s*${name}\\s*=\\s*(.*?)\\s*$`, 'im').exec(text)?.[1] ?? null;
  const int = (name: string): number | null => {
    const v = attr(name);
    if (v === null) return null;
    if (/^\d+$/.test(v) && Number(v) >= 1 && Number.isSafeInteger(Number(v))) return Number(v);
    problems.push(`machine ad ${name} = ${v.slice(0, 40)} is not a positive integer; ignored`);
    return null;
  };
  const name = attr('Name');
  return { cores: int('Cpus'), memoryMb: int('Memory'), name: name === null ? null : name.replace(/^"|"$/g, ''), problems };
}

/**
 * The slot's allocation when the agent runs as an HTCondor job
 * (`_CONDOR_MACHINE_AD` set), else null. An unreadable ad is a problem, not
 * an error: the allocation then has no cores.
 */
export async function condorAllocation(env: Readonly<Record<string, string | undefined>>): Promise<BatchAllocation | null> {
  const file = env._CONDOR_MACHINE_AD;
  if (!file) return null;
  let text = '';
  try {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(MAX_AD_BYTES);
      const { bytesRead } = await handle.read(buf, 0, MAX_AD_BYTES, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    return { system: 'condor', jobId: '', cores: null, memoryMb: null, wallSec: null, problems: [`_CONDOR_MACHINE_AD ${file}: ${(err as Error).message}`] };
  }
  const ad = parseMachineAd(text);
  return { system: 'condor', jobId: ad.name ?? '', cores: ad.cores, memoryMb: ad.memoryMb, wallSec: null, problems: ad.problems };
}
