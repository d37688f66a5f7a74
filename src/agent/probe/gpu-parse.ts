/**
 * Pure readers of what the NVIDIA tools and the kernel say about a node's
 * GPUs: `nvidia-smi --query-gpu=index,uuid,name,memory.total
 * --format=csv,noheader,nounits`, the driver's
 * /proc/driver/nvidia/gpus/<bus>/information files, and the PCI devices in
 * /sys/bus/pci/devices. Each gives a list of GPUs with what it knows (the
 * driver's files have no memory; the PCI devices neither model nor memory).
 */

/** A GPU as a probe found it: its index (the id CUDA and nvidia-smi number it by), UUID, model and memory (MiB). */
export interface FoundGpu {
  index: string;
  uuid: string | null;
  model: string | null;
  memoryMb: number | null;
}

/** The nvidia-smi query the probe runs. */
export const NVIDIA_SMI_ARGS = ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'] as const;

const known = (v: string | undefined): string | null => {
  const t = v?.trim() ?? '';
  return t === '' || /^\[.*\]$/.test(t) ? null : t;
};

/**
 * Parse nvidia-smi's CSV: one line per GPU, "0, GPU-…, NVIDIA A100-SXM4-40GB, 40960"
 * (`[N/A]` for what it does not know). A line that does not fit is skipped and named in `problems`.
 */
export function parseNvidiaSmi(stdout: string): { gpus: FoundGpu[]; problems: string[] } {
  const gpus: FoundGpu[] = [];
  const problems: string[] = [];
  for (const raw of stdout.split('\n')) {
    const l = raw.trim();
    if (!l) continue;
    const f = l.split(',').map((x) => x.trim());
    // the name may itself hold commas: index and uuid first, memory last, the name in between
    const index = f[0] ?? '';
    const memory = known(f[f.length - 1]);
    if (f.length < 4 || !/^\d+$/.test(index) || (memory !== null && !/^\d+$/.test(memory))) {
      problems.push(`nvidia-smi line "${l.slice(0, 120)}" is not index, uuid, name, memory; ignored`);
      continue;
    }
    gpus.push({ index, uuid: known(f[1]), model: known(f.slice(2, -1).join(', ')), memoryMb: memory === null ? null : Number(memory) });
  }
  return { gpus, problems };
}

/** Parse one /proc/driver/nvidia/gpus/<bus>/information file ("Model: Tesla T4", "GPU UUID: GPU-…", "Device Minor: 0"); null without a device minor. */
export function parseNvidiaInformation(text: string): FoundGpu | null {
  const value = (key: string) => known(new RegExp(`^${key}:[ \\t]*(.*)$`, 'm').exec(text)?.[1]);
  const minor = value('Device Minor');
  if (minor === null || !/^\d+$/.test(minor)) return null;
  return { index: minor, uuid: value('GPU UUID'), model: value('Model'), memoryMb: null };
}

/** PCI vendor id of NVIDIA, and the display-controller classes of its GPUs (VGA 0x0300, 3D 0x0302). */
const NVIDIA_VENDOR = '0x10de';

/**
 * The NVIDIA GPUs among PCI devices (`vendor`, `class` and `device` of each,
 * in PCI address order): numbered 0, 1, … in that order, as nvidia-smi and
 * CUDA with CUDA_DEVICE_ORDER=PCI_BUS_ID number them.
 */
export function nvidiaPciGpus(devices: readonly { address: string; vendor: string | null; class: string | null; device: string | null }[]): FoundGpu[] {
  return [...devices]
    .filter((d) => d.vendor?.trim() === NVIDIA_VENDOR && /^0x030[02]/.test(d.class?.trim() ?? ''))
    .sort((a, b) => a.address.localeCompare(b.address))
    .map((d, i) => ({ index: String(i), uuid: null, model: d.device ? `NVIDIA PCI device ${d.device.trim()}` : null, memoryMb: null }));
}
