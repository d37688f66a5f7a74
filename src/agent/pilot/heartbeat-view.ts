/**
 * What the pilot tells the server in a heartbeat, as of now, and the
 * re-read of resources and deadline that goes with every beat (between
 * beats the deadline watch looks at the deadline: pilot/deadline-watch.ts).
 */
import type { HeartbeatRequest, LifecycleState } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { buildHeartbeat } from '../monitor/heartbeat.js';
import { cpuUse, noUsage, type CpuTimes, type UsageProbe } from '../probe/usage.js';
import type { PayloadBook } from '../payload/book.js';
import type { PayloadSupervisor } from '../payload/supervisor.js';
import type { PilotResources } from '../resources/pilot-resources.js';
import type { NodeState } from './node-state.js';

/** What a heartbeat is built from. */
export interface HeartbeatViewDeps {
  clock: Clock;
  /** Memory given by the configuration (MiB). */
  configuredMemoryMb: number | null;
  node: Pick<NodeState, 'refreshResources' | 'reprobe' | 'snap' | 'totalCores' | 'deadline' | 'freeMemoryMb'>;
  payloads: Pick<PayloadSupervisor, 'heartbeatView' | 'usedCores'>;
  book: Pick<PayloadBook, 'record'>;
  usage?: UsageProbe;
  /** Machine/Job Features values (default: the resources'). */
  features?: () => Record<string, string | number>;
  res: Pick<PilotResources, 'features' | 'capabilities'>;
  /** Whether the server knows this pilot (resources are re-read only then). */
  registered(): boolean;
  state(): LifecycleState;
}

/** Builds heartbeats; keeps the last CPU times to compute the CPU use between beats. */
export class HeartbeatView {
  private lastCpu: CpuTimes | null = null;

  constructor(private readonly d: HeartbeatViewDeps) {}

  /** The heartbeat as of now. */
  async now(): Promise<HeartbeatRequest> {
    const { d } = this;
    const { node } = d;
    if (d.registered()) await node.refreshResources();
    await node.reprobe();
    const snap = node.snap;
    const views = d.payloads.heartbeatView();
    const pids = new Map(views.map((v) => [v.id, d.book.record(v.id)?.pid ?? 0]));
    const usage = await (d.usage ?? noUsage).sample([...pids.values()].filter((pid) => pid > 0)).catch(() => null);
    const cpu = usage?.cpu ?? null;
    const use = cpuUse(this.lastCpu, cpu, snap.cores);
    if (cpu) this.lastCpu = cpu;
    return buildHeartbeat({
      now: d.clock.now(),
      state: d.state(),
      totalCores: node.totalCores,
      usedCores: d.payloads.usedCores,
      memoryMb: { total: d.configuredMemoryMb ?? snap.memoryMb.total, free: node.freeMemoryMb() },
      snapshot: snap,
      payloads: views.map((v) => {
        const g = usage?.groups.get(pids.get(v.id) ?? 0);
        return g ? { ...v, cpuSec: g.cpuSec, rssMb: g.rssMb } : v;
      }),
      deadline: node.deadline,
      ...(use === undefined ? {} : { cpuUse: use }),
      features: d.features?.() ?? d.res.features(),
      capabilities: d.res.capabilities(),
    });
  }
}
