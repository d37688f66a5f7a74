/**
 * What the pilot knows of its node now: its cores, its memory limit, the
 * last probe snapshot and the deadline (MJF `shutdowntime`, the batch end
 * time, --lifetime), re-read from the resources (resources/pilot-resources.ts)
 * at every heartbeat and by the deadline watch. A moved deadline is told at
 * once (`onDeadlineMoved`: the match is asked again, the lifecycle wakes).
 */
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { NodeProbe, NodeSnapshot } from '../ports.js';
import type { HeldPayload, PilotResources, ResourceUpdate } from '../resources/pilot-resources.js';

/** What the node state reads and tells. */
export interface NodeStateDeps {
  res: Pick<PilotResources, 'refresh' | 'refreshDeadline'>;
  probe: NodeProbe;
  stateDir: string;
  /** Memory given by the configuration (MiB), which wins over any other. */
  configuredMemoryMb: number | null;
  log: Logger;
  /** The payloads held, and whether each one's process runs (for their shutdowntime_job). */
  held(): HeldPayload[];
  /** Memory (MiB) the held payloads asked for. */
  usedMemoryMb(): number;
  /** The deadline moved. */
  onDeadlineMoved(): void;
}

/** The node's cores, memory, snapshot and deadline, as last read. */
export class NodeState {
  private cores = 0;
  private memLimit: number | null = null;
  private snapshot: NodeSnapshot | null = null;
  private until: number | null;

  constructor(
    private readonly deps: NodeStateDeps,
    deadline: number | null,
  ) {
    this.until = deadline;
  }

  /** The cores the pilot offers (configured, or from the resources). */
  get totalCores(): number {
    return this.cores;
  }

  /** Memory limit from a source stronger than the probe (MJF, cgroup), MiB; null: none. */
  get memLimitMb(): number | null {
    return this.memLimit;
  }

  /** The node's deadline (ms epoch), or null. */
  get deadline(): number | null {
    return this.until;
  }

  /** The last probe snapshot (the first is taken before the pilot registers). */
  get snap(): NodeSnapshot {
    if (!this.snapshot) throw new Error('the node was not probed yet');
    return this.snapshot;
  }

  /** The first probe: the snapshot, and the cores (the configured ones win). */
  async probeFirst(configuredCores: number | null): Promise<void> {
    this.snapshot = await this.deps.probe.snapshot(this.deps.stateDir);
    this.cores = configuredCores ?? this.snapshot.cores;
  }

  /** Probe again; the last snapshot stays when it fails. */
  async reprobe(): Promise<void> {
    this.snapshot = await this.deps.probe.snapshot(this.deps.stateDir).catch(() => this.snapshot);
  }

  /** Memory (MiB) still free for payloads: configured or limited memory minus what payloads asked for, else the probe's. */
  freeMemoryMb(): number {
    const configured = this.deps.configuredMemoryMb ?? this.memLimit;
    if (configured !== null) return Math.max(0, configured - this.deps.usedMemoryMb());
    return this.snapshot?.memoryMb.free ?? 0;
  }

  /** Re-read resources and the deadline; a moved deadline is told. */
  async refreshResources(): Promise<void> {
    const u = await this.deps.res.refresh({ totalCores: this.cores, deadline: this.until }, this.deps.held()).catch((err: unknown) => {
      this.deps.log.warn({ err: describeError(err) }, 'resources not refreshed');
      return null;
    });
    if (!u) return;
    this.cores = u.totalCores;
    this.memLimit = u.memoryMb.limited ? u.memoryMb.total : null;
    this.applyDeadline(u);
  }

  /** Look at the deadline now (cheap; nothing without Machine/Job Features or a batch system). */
  async refreshDeadline(): Promise<void> {
    const u = await this.deps.res.refreshDeadline(this.deps.held()).catch((err: unknown) => {
      this.deps.log.warn({ err: describeError(err) }, 'deadline not refreshed');
      return null;
    });
    if (u) this.applyDeadline(u);
  }

  private applyDeadline(u: Pick<ResourceUpdate, 'deadline'>): void {
    if (u.deadline === this.until) return;
    this.until = u.deadline;
    this.deps.onDeadlineMoved();
  }
}
