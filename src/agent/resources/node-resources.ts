/**
 * Everything the agent knows about what it was given, kept current: the
 * probe (every refresh), cgroup limits, the batch allocation and its end
 * time, and Machine/Job Features (all keys at start; `shutdowntime` and
 * `shutdowntime_job` whenever the deadline is looked at), merged into the
 * offered resources and the deadline. Bad values in any source are logged
 * once and ignored; a failed read keeps the last value known.
 *
 *   init ──▶ cgroup, batch (env, HTCondor slot ad, end time), MJF (all keys, from the last-known file first)
 *   refresh ──▶ probe + refreshDeadline          (every heartbeat)
 *   refreshDeadline ──▶ live MJF keys (a stat / conditional GET each),
 *                       the batch end time when BATCH_END_REREAD_MS have passed,
 *                       the spot interruption notice (`--spot-notice`)          (the deadline watch, each match)
 */
import { systemClock, type Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import { computeDeadline, type Deadline } from '../mjf/deadline.js';
import { loadLastKnown, saveLastKnown } from '../mjf/last-known.js';
import { FeaturesReader, type FeatureFetcher, type FeaturesRead } from '../mjf/reader.js';
import type { NodeProbe, NodeSnapshot } from '../ports.js';
import { nodeCapabilities, type NodeCapabilities } from '../probe/capabilities.js';
import { readCapabilitySources, type ProbedCapabilities } from '../probe/capability-read.js';
import { offeredResources, type OfferedResources, type ResourceLayer } from '../probe/offered.js';
import { batchAllocation, batchEndTime, type BatchAllocation } from './batch.js';
import { readCgroupLimits, type CgroupLimits } from './cgroup.js';
import type { CommandRunner } from '../ports.js';
import { condorAllocation } from './condor.js';
import type { SpotNotice } from './spot-notice.js';

const MIB = 1024 * 1024;

/**
 * The batch end time (`squeue`, `qstat`) is asked again at most this often:
 * each ask is a call to the site's batch controller, from every pilot.
 */
export const BATCH_END_REREAD_MS = 60_000;

/** The agent's resources and deadline at one moment (`vmpilot probe --json` / `vmpilot mjf --json`). */
export interface ResourceView {
  offered: OfferedResources;
  snapshot: NodeSnapshot;
  deadline: Deadline;
  features: FeaturesRead;
  batch: (BatchAllocation & { endsAt: number | null }) | null;
  cgroup: CgroupLimits;
  /** What the node is and has beyond cores and memory (docs/requirements.md), each with its source. */
  capabilities: NodeCapabilities;
}

/** What the pilot asks of its resources: read everything once, refresh on every heartbeat, and look at the deadline often. */
export interface ResourceSource {
  init(): Promise<ResourceView>;
  refresh(): Promise<ResourceView>;
  /** Re-read only what moves the deadline, cheaply (no probe). */
  refreshDeadline(): Promise<ResourceView>;
  /** True when there is something that moves to watch (Machine/Job Features given, or a batch job's end time). */
  readonly watched: boolean;
}

/** Where the resource sources live; tests point these at fake trees and recorded environments. */
export interface ResourceOptions {
  config: Pick<
    AgentConfig,
    'cores' | 'memoryMb' | 'machineFeatures' | 'jobFeatures' | 'lifetimeSec' | 'stateDir' | 'batchEnv' | 'gpus' | 'gpuMemoryMb' | 'arch' | 'platform' | 'site' | 'tags' | 'scratchMb'
  >;
  probe: NodeProbe;
  log: Logger;
  /** When the agent started (ms epoch): the lifetime and PBS/SGE wall times count from here. */
  startedAt: number;
  run: CommandRunner;
  cgroupRoot?: string;
  procSelfCgroup?: string;
  fetcher?: FeatureFetcher;
  clock?: Pick<Clock, 'now'>;
  /** The file of values last read well (mjf/last-known.ts): read at start; written on a change when `save`. */
  lastKnown?: { file: string; save: boolean } | null;
  /** The cloud's spot interruption notice, read with the deadline (`--spot-notice`); null: not watched. */
  spotNotice?: SpotNotice | null;
  /** Where /proc, /sys and /etc are (capability-read.ts); tests give a fake tree. Default `/`. */
  probeRoot?: string;
  /** The kernel's machine name; default os.machine(). */
  machine?: string | null;
}

const positive = (v: unknown): number | null => (typeof v === 'number' && v > 0 ? v : null);

/** The first of `keys` in `values` that is a positive number, and where it came from. */
function firstOf(values: Readonly<Record<string, unknown>>, keys: readonly string[], prefix: string): { value: number; from: string } | null {
  for (const key of keys) {
    const v = positive(values[key]);
    if (v !== null) return { value: v, from: `${prefix}/${key}` };
  }
  return null;
}

/**
 * The job's own allocation in its Job Features: cores from `allocated_cpu`
 * (or the older `allocated_CPU`), memory from `max_rss_bytes` (or the older
 * `mem_limit_MB`, in units of 10^6 bytes). Pure.
 */
export function mjfJobLayer(f: Pick<FeaturesRead, 'job'>): ResourceLayer {
  const cores = firstOf(f.job, ['allocated_cpu', 'allocated_CPU'], '$JOBFEATURES');
  const rss = positive(f.job.max_rss_bytes);
  const oldMb = positive(f.job.mem_limit_MB);
  const memoryMb = rss !== null ? Math.floor(rss / MIB) : oldMb !== null ? Math.floor((oldMb * 1e6) / MIB) : null;
  return {
    cores: cores?.value ?? null,
    coresFrom: cores?.from ?? null,
    memoryMb,
    memoryFrom: rss !== null ? '$JOBFEATURES/max_rss_bytes' : oldMb !== null ? '$JOBFEATURES/mem_limit_MB' : null,
  };
}

/** The node's machine-wide counts in its Machine Features (`total_cpu`, else the older `log_cores`, `jobslots`): only a fallback. Pure. */
export function mjfMachineLayer(f: Pick<FeaturesRead, 'machine'>): ResourceLayer {
  const cores = firstOf(f.machine, ['total_cpu', 'log_cores', 'jobslots'], '$MACHINEFEATURES');
  return { cores: cores?.value ?? null, coresFrom: cores?.from ?? null, memoryMb: null };
}

const BATCH_CORES_FROM: Record<BatchAllocation['system'], string> = {
  slurm: 'SLURM_CPUS_ON_NODE',
  pbs: 'NCPUS/PBS_NUM_PPN',
  sge: 'NSLOTS',
  condor: '_CONDOR_MACHINE_AD Cpus',
};

/** The batch system's allocation as a layer. Pure. */
export function batchLayer(b: BatchAllocation | null): ResourceLayer {
  if (!b) return { cores: null, memoryMb: null };
  return { cores: b.cores, coresFrom: BATCH_CORES_FROM[b.system], memoryMb: b.memoryMb, memoryFrom: b.system === 'condor' ? '_CONDOR_MACHINE_AD Memory' : null };
}

/** The real ResourceSource. */
export class NodeResources implements ResourceSource {
  private readonly reader: FeaturesReader;
  private readonly clock: Pick<Clock, 'now'>;
  private cgroup: CgroupLimits = { version: null, cores: null, memoryBytes: null, paths: [], problems: [] };
  private batch: ResourceView['batch'] = null;
  private batchReadAt = 0;
  private readonly batchLogged = new Set<string>();
  private features: FeaturesRead | null = null;
  private snapshot: NodeSnapshot | null = null;
  private spotAction: number | null = null;
  private probed: ProbedCapabilities | null = null;

  constructor(private readonly o: ResourceOptions) {
    this.clock = o.clock ?? systemClock;
    this.reader = new FeaturesReader({ machine: o.config.machineFeatures, job: o.config.jobFeatures }, o.log, o.fetcher, () => this.clock.now());
  }

  get watched(): boolean {
    return this.reader.watched || (this.batch !== null && this.batch.system !== 'condor') || Boolean(this.o.spotNotice);
  }

  /** Read every source (cgroup, batch, all MJF keys) and compute the view. */
  async init(): Promise<ResourceView> {
    const log = this.o.log;
    this.cgroup = await readCgroupLimits(this.o.cgroupRoot, this.o.procSelfCgroup);
    for (const problem of this.cgroup.problems) log.warn({ problem }, 'bad cgroup value ignored');
    const env = this.o.config.batchEnv;
    const alloc = batchAllocation(env) ?? (await condorAllocation(env));
    if (alloc) {
      for (const problem of alloc.problems) log.warn({ system: alloc.system, problem }, 'bad batch value ignored');
      this.batch = { ...alloc, endsAt: null };
      await this.readBatchEnd();
    }
    const known = this.o.lastKnown ? await loadLastKnown(this.o.lastKnown.file) : null;
    if (known) this.reader.seed(known);
    this.features = await this.reader.readAll();
    await this.saveKnown();
    await this.readSpotNotice();
    this.snapshot = await this.o.probe.snapshot(this.o.config.stateDir);
    this.probed = await readCapabilitySources(this.o.run, env, this.o.probeRoot, this.o.machine);
    for (const problem of [...this.probed.gpus.problems, ...(this.probed.allocation?.problems ?? [])]) log.warn({ problem }, 'bad GPU value ignored');
    return this.view();
  }

  /** Probe again and look at the deadline again. */
  async refresh(): Promise<ResourceView> {
    if (!this.features) return this.init();
    this.snapshot = await this.o.probe.snapshot(this.o.config.stateDir);
    return this.refreshDeadline();
  }

  /** Re-read `shutdowntime` and `shutdowntime_job` (each a stat or a conditional GET) and, when due, the batch end time. */
  async refreshDeadline(): Promise<ResourceView> {
    if (!this.features) return this.init();
    if (this.batch && this.clock.now() - this.batchReadAt >= BATCH_END_REREAD_MS) await this.readBatchEnd();
    this.features = await this.reader.readLive();
    await this.saveKnown();
    await this.readSpotNotice();
    return this.view();
  }

  /** Ask the batch system for the end time; a failed ask keeps the one known. */
  private async readBatchEnd(): Promise<void> {
    const b = this.batch!;
    this.batchReadAt = this.clock.now();
    const end = await batchEndTime(b, this.o.run, this.o.startedAt);
    if (end.problem) {
      if (!this.batchLogged.has(end.problem)) {
        this.batchLogged.add(end.problem);
        this.o.log.warn({ system: b.system, problem: end.problem, kept: b.endsAt }, b.endsAt === null ? 'batch end time unknown' : 'batch end time not read: last known kept');
      }
      return;
    }
    if (end.at !== b.endsAt && b.endsAt !== null) this.o.log.info({ system: b.system, from: b.endsAt, to: end.at }, 'batch end time moved');
    b.endsAt = end.at;
  }

  /** Look at the spot interruption notice (a failed read keeps what was known). */
  private async readSpotNotice(): Promise<void> {
    if (!this.o.spotNotice) return;
    const n = await this.o.spotNotice.read();
    if (n) this.spotAction = n.at;
  }

  private async saveKnown(): Promise<void> {
    const lk = this.o.lastKnown;
    if (!this.reader.takeChanged() || !lk?.save) return;
    await saveLastKnown(lk.file, this.reader.known()).catch((err: unknown) => {
      this.o.log.warn({ file: lk.file, err: (err as Error).message }, 'Machine/Job Features last-known values not saved');
    });
  }

  private view(): ResourceView {
    const { config } = this.o;
    const features = this.features!;
    const snapshot = this.snapshot!;
    const offered = offeredResources(snapshot, {
      config: { cores: config.cores, memoryMb: config.memoryMb, coresFrom: '--cores', memoryFrom: '--memory-mb' },
      mjf: mjfJobLayer(features),
      batch: batchLayer(this.batch),
      cgroup: { cores: this.cgroup.cores, memoryMb: this.cgroup.memoryBytes === null ? null : Math.floor(this.cgroup.memoryBytes / MIB), coresFrom: 'cpu quota', memoryFrom: 'memory limit' },
      'mjf-machine': mjfMachineLayer(features),
    });
    const deadline = computeDeadline({
      machine: features.machine,
      job: features.job,
      batchEnd: this.batch?.endsAt ?? null,
      lifetimeEnd: config.lifetimeSec === null ? null : this.o.startedAt + config.lifetimeSec * 1000,
      spotAction: this.spotAction,
    });
    const scratchBytes = features.job.scratch_limit_bytes;
    const capabilities = nodeCapabilities({
      ...this.probed!,
      config,
      scratch: { jobBytes: typeof scratchBytes === 'number' ? scratchBytes : null, diskFreeMb: snapshot.diskFreeMb },
    });
    return { offered, snapshot, deadline, features, batch: this.batch && { ...this.batch }, cgroup: this.cgroup, capabilities };
  }
}
