/** Build the heartbeat the agent sends. Pure. */
import { LIMITS, VERSION, type Capabilities, type HeartbeatRequest, type LifecycleState, type PayloadHeartbeat } from '../../protocol/index.js';
import type { NodeSnapshot } from '../ports.js';

/** What a heartbeat is made of. */
export interface HeartbeatInputs {
  now: number;
  state: LifecycleState;
  totalCores: number;
  usedCores: number;
  /** Memory offered (configured or probed) and free of it, MiB. */
  memoryMb: { total: number; free: number };
  snapshot: NodeSnapshot;
  payloads: readonly PayloadHeartbeat[];
  deadline: number | null;
  /** Cores' worth of CPU the node used since the last beat. */
  cpuUse?: number;
  /** Machine/Job Features values as read. */
  features?: Record<string, string | number>;
  /** What the node is and has, as at register (the server keeps the latest). */
  capabilities?: Capabilities | null;
}

const clampInt = (n: number, max: number) => Math.max(0, Math.min(Math.floor(n), max));

/** The HeartbeatRequest for these inputs, within the schema's bounds. */
export function buildHeartbeat(i: HeartbeatInputs): HeartbeatRequest {
  const total = clampInt(i.totalCores, LIMITS.cores);
  const used = clampInt(i.usedCores, LIMITS.cores);
  const memTotal = clampInt(i.memoryMb.total, LIMITS.memoryMb);
  return {
    at: i.now,
    state: i.state,
    version: VERSION,
    uptimeSec: Math.max(0, i.snapshot.uptimeSec),
    cores: { total, used, free: Math.max(0, total - used) },
    memoryMb: { total: memTotal, used: clampInt(i.memoryMb.total - i.memoryMb.free, memTotal) },
    load: i.snapshot.load.map((l) => Math.max(0, l)) as [number, number, number],
    ...(i.snapshot.diskFreeMb === null ? {} : { diskFreeMb: Math.max(0, i.snapshot.diskFreeMb) }),
    payloads: i.payloads.slice(0, LIMITS.payloadsPerHeartbeat).map((p) => ({ ...p })),
    deadline: i.deadline,
    ...(i.cpuUse === undefined ? {} : { cpuUse: Math.max(0, Math.min(i.cpuUse, total)) }),
    ...(i.features && Object.keys(i.features).length > 0 ? { features: { ...i.features } } : {}),
    ...(i.capabilities ? { capabilities: i.capabilities } : {}),
  };
}

/**
 * The `heartbeat` file of `$JOBOUTPUTS` (Vac convention: its modification
 * time says the VM is alive); one line a person can read:
 * "<epoch s> <state> load <1> <5> <15> cores <used>/<total> payloads <n>". Pure.
 */
export function heartbeatFileText(h: HeartbeatRequest): string {
  const load = (h.load ?? [0, 0, 0]).map((l) => l.toFixed(2)).join(' ');
  return `${Math.floor(h.at / 1000)} ${h.state} load ${load} cores ${h.cores.used}/${h.cores.total} payloads ${h.payloads.length}\n`;
}

/**
 * When the next beat goes: the interval after a success; after the n-th
 * failure in a row the interval doubled n times, capped at `capSec` (but
 * never below the interval). Pure.
 */
export function heartbeatDelayMs(intervalSec: number, failures: number, capSec = 600): number {
  if (failures <= 0) return intervalSec * 1000;
  return Math.min(Math.max(intervalSec, capSec), intervalSec * 2 ** Math.min(failures, 20)) * 1000;
}

/** The first beat goes after a random part of the interval (at most `maxSec`), so a fleet booting together spreads out. Pure. */
export function firstBeatDelayMs(intervalSec: number, random: number, maxSec = 10): number {
  return Math.floor(Math.max(0, Math.min(1, random)) * Math.min(intervalSec, maxSec) * 1000);
}
