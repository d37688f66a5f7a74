/**
 * Find the node's GPUs, strongest source first: `nvidia-smi` (index, UUID,
 * model and memory of each), else the NVIDIA driver's files under
 * /proc/driver/nvidia/gpus (model and UUID, no memory), else the NVIDIA PCI
 * devices under /sys/bus/pci/devices (a count; neither model nor memory).
 * Run once at start (`nvidia-smi` takes a moment). What each source said is
 * kept, so `vmpilot probe --json` can say why none was found. Never throws.
 *
 * Tested on fake /proc and /sys trees and a fake nvidia-smi script
 * (test/fixtures/gpu/): the machines vmpilot is developed on have no GPU,
 * so the real driver's files and a real nvidia-smi are not exercised there.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { CommandRunner } from '../ports.js';
import { NVIDIA_SMI_ARGS, nvidiaPciGpus, parseNvidiaInformation, parseNvidiaSmi, type FoundGpu } from './gpu-parse.js';

/** How long nvidia-smi may take (it can be slow while the driver loads). */
export const NVIDIA_SMI_TIMEOUT_MS = 10_000;

/** The GPUs found, which source found them, and what every source said. */
export interface GpuProbe {
  gpus: FoundGpu[];
  /** `nvidia-smi`, `/proc/driver/nvidia/gpus` or `/sys/bus/pci/devices`; null when none found a GPU. */
  from: string | null;
  /** One line per source tried: "nvidia-smi: spawn nvidia-smi ENOENT", "/proc/driver/nvidia/gpus: absent". */
  tried: string[];
  problems: string[];
}

async function text(file: string): Promise<string | null> {
  return readFile(file, 'utf8').catch(() => null);
}

async function dir(d: string): Promise<string[] | null> {
  return readdir(d).catch(() => null);
}

/** Probe the GPUs of the node whose file tree starts at `root`, running nvidia-smi through `run`. */
export async function probeGpus(run: CommandRunner, root = '/'): Promise<GpuProbe> {
  const tried: string[] = [];
  const problems: string[] = [];
  const smi = await run(['nvidia-smi', ...NVIDIA_SMI_ARGS], NVIDIA_SMI_TIMEOUT_MS);
  if (smi.exitCode === 0) {
    const parsed = parseNvidiaSmi(smi.stdout);
    problems.push(...parsed.problems);
    tried.push(`nvidia-smi: ${parsed.gpus.length} GPU(s)`);
    if (parsed.gpus.length > 0) return { gpus: parsed.gpus, from: 'nvidia-smi', tried, problems };
  } else {
    tried.push(`nvidia-smi: ${smi.error ?? `exit ${smi.exitCode}`}`);
  }

  const procDir = path.join(root, 'proc/driver/nvidia/gpus');
  const buses = await dir(procDir);
  if (buses === null) tried.push('/proc/driver/nvidia/gpus: absent');
  else {
    const found: FoundGpu[] = [];
    for (const bus of buses.sort()) {
      const info = await text(path.join(procDir, bus, 'information'));
      const gpu = info === null ? null : parseNvidiaInformation(info);
      if (gpu) found.push(gpu);
      else problems.push(`/proc/driver/nvidia/gpus/${bus}/information has no device minor; ignored`);
    }
    tried.push(`/proc/driver/nvidia/gpus: ${found.length} GPU(s)`);
    if (found.length > 0) return { gpus: found.sort((a, b) => Number(a.index) - Number(b.index)), from: '/proc/driver/nvidia/gpus', tried, problems };
  }

  const pciDir = path.join(root, 'sys/bus/pci/devices');
  const addresses = await dir(pciDir);
  if (addresses === null) tried.push('/sys/bus/pci/devices: absent');
  else {
    const devices = await Promise.all(
      addresses.map(async (address) => {
        const [vendor, cls, device] = await Promise.all(['vendor', 'class', 'device'].map((f) => text(path.join(pciDir, address, f))));
        return { address, vendor: vendor ?? null, class: cls ?? null, device: device ?? null };
      }),
    );
    const found = nvidiaPciGpus(devices);
    tried.push(`/sys/bus/pci/devices: ${found.length} NVIDIA GPU(s)`);
    if (found.length > 0) return { gpus: found, from: '/sys/bus/pci/devices', tried, problems };
  }
  return { gpus: [], from: null, tried, problems };
}
