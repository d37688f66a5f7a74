/**
 * Read, once at start, what the node's capabilities are computed from
 * (capabilities.ts): /proc/cpuinfo, os-release, the GPU probe and the batch
 * allocation's GPU variables. Tests point `root` at a fake tree and `run` at
 * a fake nvidia-smi. Never throws: an unreadable file is unknown.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CommandRunner } from '../ports.js';
import { gpuAllocation } from '../resources/gpu-allocation.js';
import type { CapabilityInputs } from './capabilities.js';
import { cpuArch } from './cpu-level.js';
import { probeGpus } from './gpu-probe.js';
import { INVENTORY_FILES } from './inventory.js';
import { platformOf } from './platform.js';

/** What the node says of itself; the config and the scratch are added by the caller. */
export type ProbedCapabilities = Omit<CapabilityInputs, 'config' | 'scratch'>;

/** Read the sources under `root`, with the job environment `env` (the batch variables the config loader kept). */
export async function readCapabilitySources(
  run: CommandRunner,
  env: Readonly<Record<string, string | undefined>>,
  root = '/',
  machine: string | null = typeof os.machine === 'function' ? os.machine() : null,
): Promise<ProbedCapabilities> {
  const text = (rel: string) => readFile(path.join(root, rel), 'utf8').catch(() => null);
  const [cpuinfo, etc, lib, gpus] = await Promise.all([
    text(INVENTORY_FILES.cpuinfo),
    text(INVENTORY_FILES.osRelease[0]),
    text(INVENTORY_FILES.osRelease[1]),
    probeGpus(run, root),
  ]);
  // /etc/os-release wins; /usr/lib/os-release is the distribution's fallback
  const fromEtc = platformOf(etc);
  const platform = fromEtc !== null ? { name: fromEtc, from: '/etc/os-release' } : { name: platformOf(lib), from: platformOf(lib) ? '/usr/lib/os-release' : null };
  return { cpu: cpuArch(cpuinfo), machine, platform, gpus, allocation: gpuAllocation(env) };
}
