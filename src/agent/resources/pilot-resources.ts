/**
 * The pilot's view of its resources over time: what it offers, its
 * deadline (re-read on every heartbeat), the node's `$MACHINEFEATURES`
 * directory it provides, and the context each payload starts with
 * (`$JOBFEATURES`, user, output cap). The pilot calls `refresh` and reads
 * the fields; without a ResourceSource (unit tests of the pilot) it keeps
 * the configured cores and lifetime.
 */
import path from 'node:path';
import type { Assignment } from '../../protocol/index.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import type { PayloadContext } from '../executor/payload-runner.js';
import type { PayloadIsolation } from '../isolation/payload-isolation.js';
import { jobFeatures, machineFeatures, writeFeatures } from '../mjf/provide.js';
import type { ResourceSource, ResourceView } from './node-resources.js';

const MIB = 1024 * 1024;

/** What changed in a refresh. */
export interface ResourceUpdate {
  totalCores: number;
  /** Memory offered, MiB, and whether a source other than the probe set it. */
  memoryMb: { total: number; limited: boolean };
  deadline: number | null;
  deadlineSource: string | null;
  deadlineMoved: boolean;
}

/** Keeps the pilot's resources current and builds each payload's context. */
export class PilotResources {
  private view: ResourceView | null = null;
  private deadline: number | null = null;
  private totalCores = 1;

  constructor(
    private readonly source: ResourceSource | null,
    private readonly config: Pick<AgentConfig, 'stateDir' | 'graceSec' | 'maxOutputMb'>,
    private readonly log: Logger,
    /** What payloads run as and in; null: as the agent, nothing in between (tests). */
    readonly isolation: PayloadIsolation | null = null,
  ) {}

  /** The node's machine features directory given to payloads. */
  get machineFeaturesDir(): string {
    return path.join(this.config.stateDir, 'machinefeatures');
  }

  /** Read (first call: everything; later: the probe and the live MJF keys) and recompute. Null without a source. */
  async refresh(fallback: { totalCores: number; deadline: number | null }): Promise<ResourceUpdate | null> {
    if (!this.source) {
      this.totalCores = fallback.totalCores;
      this.deadline = fallback.deadline;
      return null;
    }
    const first = this.view === null;
    const view = first ? await this.source.init() : await this.source.refresh();
    this.view = view;
    const before = this.deadline;
    this.totalCores = view.offered.cores.value;
    this.deadline = view.deadline.at;
    const moved = !first && before !== this.deadline;
    if (moved) this.log.info({ from: before, to: this.deadline, source: view.deadline.source }, 'deadline moved');
    if (first) this.log.info({ cores: view.offered.cores, memoryMb: view.offered.memoryMb.total, deadline: this.deadline, deadlineSource: view.deadline.source }, 'resources');
    if (first || moved) await this.writeMachineFeatures();
    return {
      totalCores: this.totalCores,
      memoryMb: { total: view.offered.memoryMb.total, limited: view.offered.memoryMb.source !== 'probe' },
      deadline: this.deadline,
      deadlineSource: view.deadline.source,
      deadlineMoved: moved,
    };
  }

  /** The Machine/Job Features values read (machine and job keys, at most 64), for the heartbeat; empty without a source. */
  features(): Record<string, number | string> {
    const f = this.view?.features;
    if (!f) return {};
    const entries = Object.entries({ ...f.machine, ...f.job }).filter(([k]) => k.length <= 100);
    return Object.fromEntries(entries.slice(0, 64).map(([k, v]) => [k, typeof v === 'string' ? v.slice(0, 1000) : v]));
  }

  /**
   * The grace period in seconds: the configured one, shortened to the
   * site's Machine/Job Features `grace_secs_job` (else `grace_secs`) when
   * that is given and smaller, so the agent never waits longer than the site
   * allows after its SIGTERM, nor longer than its operator configured.
   */
  graceSec(): number {
    const f = this.view?.features;
    const site = f ? (typeof f.job.grace_secs_job === 'number' ? f.job.grace_secs_job : f.machine.grace_secs) : undefined;
    return typeof site === 'number' && site >= 0 ? Math.min(this.config.graceSec, Math.floor(site)) : this.config.graceSec;
  }

  private hs06(): number | null {
    const f = this.view?.features;
    if (!f) return null;
    if (typeof f.job.hs06_job === 'number') return f.job.hs06_job;
    const total = f.machine.total_cpu;
    if (typeof f.machine.hs06 === 'number' && typeof total === 'number' && total > 0) return (f.machine.hs06 * this.totalCores) / total;
    return null;
  }

  private async writeMachineFeatures(): Promise<void> {
    try {
      await writeFeatures(this.machineFeaturesDir, machineFeatures({ totalCores: this.totalCores, deadline: this.deadline, graceSec: this.graceSec(), hs06: this.hs06() }));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'machine features not written');
    }
  }

  /** The context payload `a` starts with, at `now`. */
  payloadContext(a: Assignment, cores: number, now: number): PayloadContext {
    const scratch = typeof this.view?.features.job.scratch_limit_bytes === 'number' ? this.view.features.job.scratch_limit_bytes : this.view?.snapshot.diskFreeMb != null ? this.view.snapshot.diskFreeMb * MIB : null;
    return {
      jobFeatures: jobFeatures({
        payloadId: a.id,
        cores,
        totalCores: this.totalCores,
        now,
        wallSec: a.wallSec,
        memoryMb: a.memoryMb,
        deadline: this.deadline,
        graceSec: this.graceSec(),
        hs06: this.hs06(),
        scratchBytes: scratch,
      }),
      machineFeaturesDir: this.source ? this.machineFeaturesDir : null,
      user: null,
      maxOutputBytes: this.config.maxOutputMb * MIB,
    };
  }

  /** The context payload `a` starts with, at `now`, with its account or sandbox (which may have to be made first). */
  async contextFor(a: Assignment, cores: number, now: number): Promise<PayloadContext> {
    const ctx = this.payloadContext(a, cores, now);
    return this.isolation ? { ...ctx, ...(await this.isolation.enter()) } : ctx;
  }
}
