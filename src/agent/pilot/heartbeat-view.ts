/**
 * What the pilot tells the server in a heartbeat, as of now, and the
 * re-read of resources and deadline that goes with every beat (between
 * beats the deadline watch looks at the deadline: pilot/deadline-watch.ts).
 */
import type { HeartbeatRequest } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import { buildHeartbeat } from '../monitor/heartbeat.js';
import { cpuUse, noUsage, type CpuTimes } from '../monitor/usage.js';
import type { PilotCore } from './core.js';
import { applyDeadline, heldPayloads } from './deadline-watch.js';

/** Re-read resources and the deadline; a moved deadline wakes the lifecycle and the match loop. */
export async function refreshResources(p: PilotCore): Promise<void> {
  const u = await p.res.refresh({ totalCores: p.totalCores, deadline: p.deadline }, heldPayloads(p)).catch((err: unknown) => {
    p.log.warn({ err: describeError(err) }, 'resources not refreshed');
    return null;
  });
  if (!u) return;
  p.totalCores = u.totalCores;
  p.memLimitMb = u.memoryMb.limited ? u.memoryMb.total : null;
  applyDeadline(p, u);
}

/** Builds heartbeats; keeps the last CPU times to compute the CPU use between beats. */
export class HeartbeatView {
  private lastCpu: CpuTimes | null = null;

  constructor(private readonly p: PilotCore) {}

  /** The heartbeat as of now. */
  async now(): Promise<HeartbeatRequest> {
    const p = this.p;
    const { clock, probe, config } = p.deps;
    if (p.registered) await refreshResources(p);
    p.snap = await probe.snapshot(config.stateDir).catch(() => p.snap);
    const views = p.payloads.heartbeatView();
    const pids = new Map(views.map((v) => [v.id, p.keeper.state.running[String(v.id)]?.pid ?? 0]));
    const usage = await (p.deps.usage ?? noUsage).sample([...pids.values()].filter((pid) => pid > 0)).catch(() => null);
    const cpu = usage?.cpu ?? null;
    const use = cpuUse(this.lastCpu, cpu, p.snap!.cores);
    if (cpu) this.lastCpu = cpu;
    return buildHeartbeat({
      now: clock.now(),
      state: p.lifecycle,
      totalCores: p.totalCores,
      usedCores: p.payloads.usedCores,
      memoryMb: { total: config.memoryMb ?? p.snap!.memoryMb.total, free: p.freeMemoryMb() },
      snapshot: p.snap!,
      payloads: views.map((v) => {
        const g = usage?.groups.get(pids.get(v.id) ?? 0);
        return g ? { ...v, cpuSec: g.cpuSec, rssMb: g.rssMb } : v;
      }),
      deadline: p.deadline,
      ...(use === undefined ? {} : { cpuUse: use }),
      features: p.deps.features?.() ?? p.res.features(),
      capabilities: p.res.capabilities(),
    });
  }
}
