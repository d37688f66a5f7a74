/**
 * The pilot's view of its resources over time: what it offers, its
 * deadline, the node's `$MACHINEFEATURES` directory it provides, the
 * context each payload starts with (`$JOBFEATURES`, user, output cap), and
 * keeping what payloads read current: when the deadline moves, the
 * machine features and every running payload's `shutdowntime_job` are
 * rewritten. The pilot calls `refresh` (every heartbeat) and
 * `refreshDeadline` (every `watchIntervalMs`, and before it matches);
 * without a ResourceSource (unit tests of the pilot) it keeps the
 * configured cores and lifetime.
 */
import path from 'node:path';
import type { Assignment, Capabilities, GpuInfo } from '../../protocol/index.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import { payloadDir, type PayloadContext } from '../executor/payload-runner.js';
import type { PayloadIsolation } from '../isolation/payload-isolation.js';
import { jobFeatures, machineFeatures, PROVIDED_MACHINE_KEYS, shutdownTimeJob, type PilotLimits } from '../mjf/provide.js';
import { rewriteFeatures, writeFeatures } from '../mjf/write.js';
import { wireCapabilities } from '../probe/capabilities.js';
import type { ResourceSource, ResourceView } from './node-resources.js';

const MIB = 1024 * 1024;

/** Bounds of the interval between looks at the deadline (a quarter of the grace). */
const WATCH_MIN_MS = 500;
const WATCH_MAX_MS = 15_000;

/** A payload the pilot holds, and whether its process runs (its `$JOBFEATURES` is written then). */
export interface HeldPayload {
  id: number;
  running: boolean;
}

/** What changed in a refresh. */
export interface ResourceUpdate {
  totalCores: number;
  /** Memory offered, MiB, and whether a source other than the probe set it. */
  memoryMb: { total: number; limited: boolean };
  deadline: number | null;
  deadlineSource: string | null;
  deadlineMoved: boolean;
}

/**
 * How often to look at what moves the deadline: a quarter of the grace the
 * agent promises its payloads (so a move the site announces at least grace
 * ahead reaches them well within it), between 0.5 and 15 seconds. Pure.
 */
export function watchIntervalMs(graceSec: number): number {
  return Math.min(WATCH_MAX_MS, Math.max(WATCH_MIN_MS, Math.floor((graceSec * 1000) / 4)));
}

/** The `$JOBFEATURES` directory of payload `id` (payload-runner.ts makes it `<payload dir>/jobfeatures`). */
export function jobFeaturesDir(stateDir: string, id: number): string {
  return path.join(payloadDir(stateDir, id), 'jobfeatures');
}

/** Keeps the pilot's resources current and builds each payload's context. */
export class PilotResources {
  private view: ResourceView | null = null;
  private deadline: number | null = null;
  private totalCores = 1;
  /** The machine features last written (their JSON), so that only a change is written. */
  private machineWritten: string | null = null;
  /** The `shutdowntime_job` each payload's `$JOBFEATURES` holds: handed at its start, or written since. */
  private readonly published = new Map<number, number | null>();
  private readonly refused = new Set<number>();

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

  /** The batch job this pilot runs in (its system and id), as the first refresh found it; null outside one. */
  batchJob(): { system: string; jobId: string } | null {
    const b = this.view?.batch;
    return b ? { system: b.system, jobId: b.jobId } : null;
  }

  /** How often the pilot should call `refreshDeadline`; null when nothing that moves is read. */
  watchIntervalMs(): number | null {
    return this.source?.watched ? watchIntervalMs(this.graceSec()) : null;
  }

  /**
   * Read (first call: everything; later: the probe and what moves the
   * deadline) and recompute; the `$JOBFEATURES` of the `held` payloads whose
   * processes run are kept current. Null without a source.
   */
  async refresh(fallback: { totalCores: number; deadline: number | null }, held: readonly HeldPayload[] = []): Promise<ResourceUpdate | null> {
    if (!this.source) {
      this.totalCores = fallback.totalCores;
      this.deadline = fallback.deadline;
      return null;
    }
    const first = this.view === null;
    const view = first ? await this.source.init() : await this.source.refresh();
    return this.apply(view, first, held);
  }

  /** Look at the deadline again (cheap: no probe); null without a source or before the first refresh. */
  async refreshDeadline(held: readonly HeldPayload[]): Promise<ResourceUpdate | null> {
    if (!this.source || this.view === null) return null;
    return this.apply(await this.source.refreshDeadline(), false, held);
  }

  private async apply(view: ResourceView, first: boolean, held: readonly HeldPayload[]): Promise<ResourceUpdate> {
    this.view = view;
    const before = this.deadline;
    this.totalCores = view.offered.cores.value;
    this.deadline = view.deadline.at;
    const moved = !first && before !== this.deadline;
    if (moved) this.log.info({ from: before, to: this.deadline, source: view.deadline.source }, 'deadline moved');
    if (first) this.log.info({ cores: view.offered.cores, memoryMb: view.offered.memoryMb.total, deadline: this.deadline, deadlineSource: view.deadline.source, capabilities: wireCapabilities(view.capabilities) }, 'resources');
    await this.publish(held);
    return {
      totalCores: this.totalCores,
      memoryMb: { total: view.offered.memoryMb.total, limited: view.offered.memoryMb.source !== 'probe' },
      deadline: this.deadline,
      deadlineSource: view.deadline.source,
      deadlineMoved: moved,
    };
  }

  /** What the node is and has (docs/requirements.md), as the agent reports it; null without a source or before the first refresh. */
  capabilities(): Capabilities | null {
    return this.view ? wireCapabilities(this.view.capabilities) : null;
  }

  /** The GPUs the agent may give its payloads, each to one at a time; none without a source. */
  gpuDevices(): readonly GpuInfo[] {
    return this.view?.capabilities.gpus.value ?? [];
  }

  /** The scratch the agent may give its payloads, MiB (the site's limit, the operator's, or the disk free now); null when unknown. */
  scratchMb(): number | null {
    return this.view?.capabilities.scratchMb.value ?? null;
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

  /**
   * What the site gave the pilot as a whole. HS06 is a rating of cores: the
   * site's `hs06_job` (for the cores of its job allocation) or `hs06` (for
   * `total_cpu`) is scaled to the cores the pilot offers, never above the
   * site's figure. The CPU time, memory, swap and scratch limits are the
   * pilot's whole; payloads get shares of them by cores.
   */
  pilotLimits(): PilotLimits {
    const v = this.view;
    if (!v) return { hs06: null, cpuLimitSec: null, rssBytes: null, swapBytes: null, scratchBytes: null };
    const { job, machine } = v.features;
    const num = (x: unknown): number | null => (typeof x === 'number' ? x : null);
    const pos = (x: unknown): number | null => (typeof x === 'number' && x > 0 ? x : null);
    const scaled = (hs06: number, forCores: number | null) => hs06 * (forCores === null ? 1 : Math.min(1, this.totalCores / forCores));
    const jobCores = pos(job.allocated_cpu) ?? pos(job.allocated_CPU) ?? pos(v.batch?.cores);
    const machineCores = pos(machine.total_cpu) ?? pos(machine.log_cores);
    let hs06: number | null = null;
    if (num(job.hs06_job) !== null) hs06 = scaled(job.hs06_job as number, jobCores);
    else if (num(machine.hs06) !== null && machineCores !== null) hs06 = scaled(machine.hs06 as number, machineCores);
    const mem = v.offered.memoryMb;
    const disk = v.snapshot.diskFreeMb;
    return {
      hs06,
      cpuLimitSec: num(job.cpu_limit_secs),
      rssBytes: mem.source === 'probe' ? null : mem.total * MIB,
      swapBytes: num(job.max_swap_bytes),
      scratchBytes: num(job.scratch_limit_bytes) ?? (disk == null ? null : disk * MIB),
    };
  }

  /** Bring `$MACHINEFEATURES` and every running payload's `shutdowntime_job` to the deadline now. */
  private async publish(held: readonly HeldPayload[]): Promise<void> {
    const values = machineFeatures({ totalCores: this.totalCores, deadline: this.deadline, graceSec: this.graceSec(), hs06: this.pilotLimits().hs06 });
    const key = JSON.stringify(values);
    if (key !== this.machineWritten) {
      try {
        await writeFeatures(this.machineFeaturesDir, values, PROVIDED_MACHINE_KEYS.filter((k) => !(k in values)));
        this.machineWritten = key;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'machine features not written');
      }
    }
    const target = shutdownTimeJob(this.deadline, this.graceSec());
    const ids = new Set(held.map((h) => h.id));
    for (const id of this.published.keys()) if (!ids.has(id)) this.published.delete(id);
    for (const id of this.refused) if (!ids.has(id)) this.refused.delete(id);
    // a starting payload's directory is being written from its context: it is looked at once it runs
    for (const { id } of held.filter((h) => h.running)) {
      if (this.published.has(id) && this.published.get(id) === target) continue;
      if (this.refused.has(id)) continue;
      const dir = jobFeaturesDir(this.config.stateDir, id);
      try {
        const r = await rewriteFeatures(dir, target === null ? {} : { shutdowntime_job: target }, target === null ? ['shutdowntime_job'] : []);
        if (r.kind === 'written') {
          this.published.set(id, target);
          this.log.info({ payloadId: id, shutdowntimeJob: target }, 'payload job features updated');
        } else if (r.kind === 'refused') {
          this.refused.add(id);
          this.log.warn({ payloadId: id, reason: r.reason }, 'payload job features not updated');
        }
      } catch (err) {
        this.log.warn({ payloadId: id, err: (err as Error).message }, 'payload job features not updated');
      }
    }
  }

  /**
   * The context payload `a` starts with, at `now`, holding the GPUs `gpus`.
   * On a node with GPUs every payload is told which it may use (none: an
   * empty CUDA_VISIBLE_DEVICES), so that one without GPUs cannot take
   * another's; on a node without, nothing is set.
   */
  payloadContext(a: Assignment, cores: number, now: number, gpus: readonly string[] = []): PayloadContext {
    const hasGpus = this.gpuDevices().length > 0 || gpus.length > 0;
    const values = jobFeatures({
      payloadId: a.id,
      cores,
      totalCores: this.totalCores,
      now,
      wallSec: a.wallSec,
      memoryMb: a.memoryMb,
      deadline: this.deadline,
      graceSec: this.graceSec(),
      pilot: this.pilotLimits(),
      gpus: hasGpus ? gpus : null,
      scratchMb: a.requirements?.scratchMb ?? null,
    });
    if (this.source) this.published.set(a.id, typeof values.shutdowntime_job === 'number' ? values.shutdowntime_job : null);
    return {
      jobFeatures: values,
      machineFeaturesDir: this.source ? this.machineFeaturesDir : null,
      user: null,
      maxOutputBytes: this.config.maxOutputMb * MIB,
      ...(hasGpus ? { env: gpuEnv(gpus) } : {}),
    };
  }

  /**
   * The context payload `a` starts with, at `now`, holding the GPUs `gpus`,
   * with its account or sandbox (which may have to be made first). Its GPU
   * variables are in its `env`, which reaches it as a slot account and in a
   * sandbox alike (payload-runner.ts writes them into its environment file).
   */
  async contextFor(a: Assignment, cores: number, now: number, gpus: readonly string[] = []): Promise<PayloadContext> {
    const ctx = this.payloadContext(a, cores, now, gpus);
    return this.isolation ? { ...ctx, ...(await this.isolation.enter()) } : ctx;
  }
}

/**
 * The variables that give a payload its GPUs and no others:
 * CUDA_VISIBLE_DEVICES for CUDA (and HIP) programs, NVIDIA_VISIBLE_DEVICES
 * for containers started through the NVIDIA container runtime ("none": no
 * GPU, as that runtime spells it). Pure.
 */
export function gpuEnv(gpus: readonly string[]): Record<string, string> {
  const list = gpus.join(',');
  return { CUDA_VISIBLE_DEVICES: list, NVIDIA_VISIBLE_DEVICES: list === '' ? 'none' : list, VMPILOT_GPUS: String(gpus.length) };
}
