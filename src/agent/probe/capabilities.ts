/**
 * What the node is and has beyond cores and memory (docs/requirements.md),
 * each value with where it came from and why it won, as for cores
 * (resources.ts): config (flags, env, file) > the batch allocation (GPUs)
 * or the job's Job Features (scratch) > the probe. Pure.
 *
 * | capability | config               | batch / MJF                                         | probe                                    |
 * |------------|----------------------|-----------------------------------------------------|------------------------------------------|
 * | arch       | --arch               |                                                     | /proc/cpuinfo, else the kernel's machine |
 * | cpuLevel   | --arch x86_64-vN     |                                                     | /proc/cpuinfo flags                      |
 * | platform   | --platform           |                                                     | os-release                               |
 * | gpus       | --gpus, --gpu-memory-mb | CUDA_VISIBLE_DEVICES, SLURM_STEP_GPUS, SLURM_JOB_GPUS, GPU_DEVICE_ORDINAL | nvidia-smi, /proc/driver/nvidia, /sys PCI |
 * | site, tags | --site, --tag        | (Machine/Job Features define neither)               |                                          |
 * | scratchMb  | --scratch-mb         | $JOBFEATURES/scratch_limit_bytes                    | disk free under the state directory      |
 */
import { formatArch, parseArch, type Capabilities, type GpuInfo } from '../../protocol/index.js';
import type { AgentConfig } from '../config/schema.js';
import type { GpuAllocation } from '../resources/gpu-allocation.js';
import type { CpuArch } from './cpu-level.js';
import type { GpuProbe } from './gpu-probe.js';
import type { Sourced, ValueSource } from './offered.js';

/** Everything the capabilities are computed from. */
export interface CapabilityInputs {
  config: Pick<AgentConfig, 'gpus' | 'gpuMemoryMb' | 'arch' | 'platform' | 'site' | 'tags' | 'scratchMb'>;
  cpu: CpuArch;
  /** The kernel's machine name (`uname -m`), when known. */
  machine: string | null;
  /** The platform from os-release, and which file said it. */
  platform: { name: string | null; from: string | null };
  gpus: GpuProbe;
  allocation: GpuAllocation | null;
  /** The job's `scratch_limit_bytes`, and the disk free now under the state directory (MiB). */
  scratch: { jobBytes: number | null; diskFreeMb: number | null };
}

/** The GPUs, with the count each source gave and what the probe tried. */
export interface SourcedGpus {
  value: GpuInfo[];
  source: ValueSource;
  counts: Partial<Record<ValueSource, number>>;
  origins: Partial<Record<ValueSource, string>>;
  reason: string;
  /** What each GPU probe said ("nvidia-smi: spawn nvidia-smi ENOENT"). */
  tried: string[];
}

/** The node's capabilities as `vmpilot probe --json` prints them. */
export interface NodeCapabilities {
  arch: Sourced<string | null>;
  cpuLevel: Sourced<number | null>;
  platform: Sourced<string | null>;
  gpus: SourcedGpus;
  site: Sourced<string | null>;
  tags: Sourced<string[]>;
  scratchMb: Sourced<number | null>;
}

const WHY: Partial<Record<ValueSource, string>> = {
  config: 'set by the operator (flag, environment or config file), which wins over every other source',
  batch: "the GPUs the batch system gave this job, which win over the node's own",
  mjf: "the site's scratch limit for this job in its Job Features, which wins over the disk free",
  probe: 'as the node shows it',
};

const MIB = 1024 * 1024;

interface Layer<T> {
  source: ValueSource;
  value: T | null;
  from: string | null;
}

/** The first layer with a value wins; else `empty`, and `none` says why nothing is known. */
function layered<T, E extends T | null = null>(layers: Layer<T>[], empty: E, none: string, show: (v: T) => string = String): Sourced<T | E> {
  const candidates: Partial<Record<ValueSource, T>> = {};
  const origins: Partial<Record<ValueSource, string>> = {};
  let win: Layer<T> | null = null;
  for (const l of layers) {
    if (l.value === null) continue;
    candidates[l.source] ??= l.value;
    if (l.from) origins[l.source] ??= l.from;
    win ??= l;
  }
  if (!win) return { value: empty, source: 'probe', candidates, origins, reason: none };
  const beaten = Object.entries(candidates)
    .filter(([s]) => s !== win!.source)
    .map(([s, v]) => `${s} ${show(v as T)}`);
  const from = win.from ? ` (${win.from})` : '';
  return { value: win.value as T, source: win.source, candidates, origins, reason: `${show(win.value as T)} from ${win.source}${from}: ${WHY[win.source] ?? ''}${beaten.length ? `; over ${beaten.join(', ')}` : ''}` };
}

/** The batch allocation's GPUs, each joined with what the probe knows of it (by index or UUID). */
function allocatedGpus(a: GpuAllocation, probe: GpuProbe): GpuInfo[] {
  return a.ids.map((id) => {
    const found = probe.gpus.find((g) => g.index === id || g.uuid === id);
    return { id, model: found?.model ?? null, memoryMb: found?.memoryMb ?? null };
  });
}

/**
 * The GPUs: `--gpus N` takes the first N of what the allocation (or else the
 * probe) found and declares the rest with the next free indices, so that two
 * declared "GPUs" on a node without any are "0" and "1"; `--gpu-memory-mb`
 * sets the memory of each.
 */
function gpusOf(i: CapabilityInputs): SourcedGpus {
  const probed = i.gpus.gpus.map((g) => ({ id: g.index, model: g.model, memoryMb: g.memoryMb }));
  const batch = i.allocation ? allocatedGpus(i.allocation, i.gpus) : null;
  const counts: Partial<Record<ValueSource, number>> = {};
  const origins: Partial<Record<ValueSource, string>> = {};
  if (i.config.gpus !== null) (counts.config = i.config.gpus), (origins.config = '--gpus');
  if (batch) (counts.batch = batch.length), (origins.batch = `${i.allocation!.from}=${i.allocation!.ids.join(',')}`);
  counts.probe = probed.length;
  if (i.gpus.from) origins.probe = i.gpus.from;
  const found = batch ?? probed;
  let value: GpuInfo[];
  let source: ValueSource;
  if (i.config.gpus !== null) {
    value = found.slice(0, i.config.gpus);
    for (let n = 0; value.length < i.config.gpus; n++) if (!value.some((g) => g.id === String(n))) value.push({ id: String(n), model: null, memoryMb: null });
    source = 'config';
  } else {
    value = found;
    source = batch ? 'batch' : 'probe';
  }
  if (i.config.gpuMemoryMb !== null) value = value.map((g) => ({ ...g, memoryMb: i.config.gpuMemoryMb }));
  const beaten = Object.entries(counts)
    .filter(([s]) => s !== source)
    .map(([s, n]) => `${s} ${n}${origins[s as ValueSource] ? ` (${origins[s as ValueSource]})` : ''}`);
  const from = origins[source] ? ` (${origins[source]})` : '';
  const why = source === 'probe' && value.length === 0 ? `none found: ${i.gpus.tried.join('; ')}` : WHY[source];
  return { value, source, counts, origins, reason: `${value.length} from ${source}${from}: ${why}${beaten.length ? `; over ${beaten.join(', ')}` : ''}`, tried: i.gpus.tried };
}

/** The node's capabilities, each with its source. */
export function nodeCapabilities(i: CapabilityInputs): NodeCapabilities {
  const declared = i.config.arch ? parseArch(i.config.arch) : null;
  const kernel = i.machine ? parseArch(i.machine) : null;
  const probedArch = i.cpu.arch ?? kernel?.arch ?? null;
  const arch = layered<string>(
    [
      { source: 'config', value: declared?.arch ?? null, from: '--arch' },
      { source: 'probe', value: probedArch, from: i.cpu.arch ? i.cpu.from : kernel ? 'the kernel (uname -m)' : null },
    ],
    null,
    'unknown: neither /proc/cpuinfo nor the kernel named the architecture',
  );
  // a probed level belongs to the probed architecture only
  const probedLevel = arch.value === 'x86_64' && i.cpu.arch === 'x86_64' ? i.cpu.level : null;
  const cpuLevel = layered<number>(
    [
      { source: 'config', value: declared?.level ?? null, from: `--arch ${declared ? formatArch(declared) : ''}` },
      { source: 'probe', value: probedLevel, from: i.cpu.from },
    ],
    null,
    arch.value === 'x86_64' ? 'unknown: /proc/cpuinfo lists no flags' : 'none: levels are defined for x86-64 only',
  );
  const diskFree = i.scratch.diskFreeMb;
  return {
    arch,
    cpuLevel,
    platform: layered<string>(
      [
        { source: 'config', value: i.config.platform, from: '--platform' },
        { source: 'probe', value: i.platform.name, from: i.platform.from },
      ],
      null,
      'unknown: no os-release with an ID',
    ),
    gpus: gpusOf(i),
    site: layered<string>([{ source: 'config', value: i.config.site, from: '--site' }], null, 'not set: --site, VMPILOT_SITE or site in the config file (Machine/Job Features define no site)'),
    tags: layered<string[], string[]>(
      [{ source: 'config', value: i.config.tags.length ? [...i.config.tags] : null, from: '--tag' }],
      [],
      'none: --tag, VMPILOT_TAGS or tags in the config file',
      (v) => v.join(','),
    ),
    scratchMb: layered<number>(
      [
        { source: 'config', value: i.config.scratchMb, from: '--scratch-mb' },
        { source: 'mjf', value: i.scratch.jobBytes !== null && i.scratch.jobBytes > 0 ? Math.floor(i.scratch.jobBytes / MIB) : null, from: '$JOBFEATURES/scratch_limit_bytes' },
        { source: 'probe', value: diskFree, from: 'disk free under the state directory' },
      ],
      null,
      'unknown: the disk free under the state directory could not be read',
    ),
  };
}

/** The capabilities as the agent reports them to the server (RegisterRequest.capabilities). */
export function wireCapabilities(n: NodeCapabilities): Capabilities {
  const c: Capabilities = { tags: n.tags.value, gpus: n.gpus.value.map((g) => ({ id: g.id, model: g.model ?? null, memoryMb: g.memoryMb ?? null })) };
  if (n.arch.value) c.arch = n.arch.value;
  if (n.cpuLevel.value) c.cpuLevel = n.cpuLevel.value;
  if (n.platform.value) c.platform = n.platform.value;
  if (n.site.value) c.site = n.site.value;
  if (n.scratchMb.value !== null && n.scratchMb.value >= 0) c.scratchMb = Math.floor(n.scratchMb.value);
  return c;
}

/** Human-readable lines for `vmpilot probe`. */
export function formatCapabilities(n: NodeCapabilities): string {
  const gpus = n.gpus.value.map((g) => `${g.id}${g.model ? ` ${g.model}` : ''}${g.memoryMb ? ` ${g.memoryMb} MiB` : ''}`).join(', ');
  return [
    `arch      ${n.arch.value ?? 'unknown'}${n.cpuLevel.value ? `-v${n.cpuLevel.value}` : ''} (${n.arch.source})`,
    `platform  ${n.platform.value ?? 'unknown'} (${n.platform.source})`,
    `gpus      ${n.gpus.value.length}${gpus ? `: ${gpus}` : ''} (${n.gpus.source}${n.gpus.origins[n.gpus.source] ? `: ${n.gpus.origins[n.gpus.source]}` : ''})`,
    `site      ${n.site.value ?? 'none'}`,
    `tags      ${n.tags.value.length ? n.tags.value.join(', ') : 'none'}`,
    `scratch   ${n.scratchMb.value === null ? 'unknown' : `${n.scratchMb.value} MiB`} (${n.scratchMb.source})`,
  ].join('\n');
}
