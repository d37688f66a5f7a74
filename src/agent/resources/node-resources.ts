/**
 * Everything the agent knows about what it was given, kept current: the
 * probe (every refresh), cgroup limits, the batch allocation and its end
 * time, and Machine/Job Features (all keys at start, `shutdowntime` and
 * `shutdowntime_job` on every refresh), merged into the offered resources
 * and the deadline. Bad values in any source are logged once and ignored.
 */
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import { computeDeadline, type Deadline } from '../mjf/deadline.js';
import { FeaturesReader, type FeatureFetcher, type FeaturesRead } from '../mjf/reader.js';
import type { NodeProbe, NodeSnapshot } from '../ports.js';
import { offeredResources, type OfferedResources, type ResourceLayer } from '../probe/resources.js';
import { batchAllocation, batchEndTime, type BatchAllocation } from './batch.js';
import { readCgroupLimits, type CgroupLimits } from './cgroup.js';
import type { CommandRunner } from './command.js';

const MIB = 1024 * 1024;

/** The agent's resources and deadline at one moment (`vmpilot probe --json` / `vmpilot mjf --json`). */
export interface ResourceView {
  offered: OfferedResources;
  snapshot: NodeSnapshot;
  deadline: Deadline;
  features: FeaturesRead;
  batch: (BatchAllocation & { endsAt: number | null }) | null;
  cgroup: CgroupLimits;
}

/** What the pilot asks of its resources: read everything once, then refresh on every heartbeat. */
export interface ResourceSource {
  init(): Promise<ResourceView>;
  refresh(): Promise<ResourceView>;
}

/** Where the resource sources live; tests point these at fake trees and recorded environments. */
export interface ResourceOptions {
  config: Pick<AgentConfig, 'cores' | 'memoryMb' | 'machineFeatures' | 'jobFeatures' | 'lifetimeSec' | 'stateDir' | 'batchEnv'>;
  probe: NodeProbe;
  log: Logger;
  /** When the agent started (ms epoch): the lifetime and PBS/SGE wall times count from here. */
  startedAt: number;
  run: CommandRunner;
  cgroupRoot?: string;
  procSelfCgroup?: string;
  fetcher?: FeatureFetcher;
}

/** The MJF layer: allocated_cpu (else total_cpu, log_cores, jobslots), max_rss_bytes. Pure. */
export function mjfLayer(f: Pick<FeaturesRead, 'machine' | 'job'>): ResourceLayer {
  const n = (v: unknown) => (typeof v === 'number' && v > 0 ? v : null);
  const cores = n(f.job.allocated_cpu) ?? n(f.machine.total_cpu) ?? n(f.machine.log_cores) ?? n(f.machine.jobslots);
  const rss = n(f.job.max_rss_bytes);
  return { cores, memoryMb: rss === null ? null : Math.floor(rss / MIB) };
}

/** The real ResourceSource. */
export class NodeResources implements ResourceSource {
  private readonly reader: FeaturesReader;
  private cgroup: CgroupLimits = { version: null, cores: null, memoryBytes: null, paths: [], problems: [] };
  private batch: ResourceView['batch'] = null;
  private features: FeaturesRead | null = null;

  constructor(private readonly o: ResourceOptions) {
    this.reader = new FeaturesReader({ machine: o.config.machineFeatures, job: o.config.jobFeatures }, o.log, o.fetcher);
  }

  /** Read every source (cgroup, batch, all MJF keys) and compute the view. */
  async init(): Promise<ResourceView> {
    const log = this.o.log;
    this.cgroup = await readCgroupLimits(this.o.cgroupRoot, this.o.procSelfCgroup);
    for (const problem of this.cgroup.problems) log.warn({ problem }, 'bad cgroup value ignored');
    const alloc = batchAllocation(this.o.config.batchEnv);
    if (alloc) {
      for (const problem of alloc.problems) log.warn({ system: alloc.system, problem }, 'bad batch value ignored');
      const end = await batchEndTime(alloc, this.o.run, this.o.startedAt);
      if (end.problem) log.warn({ system: alloc.system, problem: end.problem }, 'batch end time unknown');
      this.batch = { ...alloc, endsAt: end.at };
    }
    this.features = await this.reader.readAll();
    return this.view(await this.o.probe.snapshot(this.o.config.stateDir));
  }

  /** Probe again and re-read `shutdowntime` and `shutdowntime_job`. */
  async refresh(): Promise<ResourceView> {
    if (!this.features) return this.init();
    this.features = await this.reader.readLive();
    return this.view(await this.o.probe.snapshot(this.o.config.stateDir));
  }

  private view(snapshot: NodeSnapshot): ResourceView {
    const { config } = this.o;
    const features = this.features!;
    const offered = offeredResources(snapshot, {
      config: { cores: config.cores, memoryMb: config.memoryMb },
      mjf: mjfLayer(features),
      batch: { cores: this.batch?.cores ?? null, memoryMb: null },
      cgroup: { cores: this.cgroup.cores, memoryMb: this.cgroup.memoryBytes === null ? null : Math.floor(this.cgroup.memoryBytes / MIB) },
    });
    const deadline = computeDeadline({
      machine: features.machine,
      job: features.job,
      batchEnd: this.batch?.endsAt ?? null,
      lifetimeEnd: config.lifetimeSec === null ? null : this.o.startedAt + config.lifetimeSec * 1000,
    });
    return { offered, snapshot, deadline, features, batch: this.batch, cgroup: this.cgroup };
  }
}
