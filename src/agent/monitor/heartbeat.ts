/** Build the heartbeat the agent sends. Pure. */
import { LIMITS, VERSION, type HeartbeatRequest, type LifecycleState, type PayloadHeartbeat } from '../../protocol/index.js';
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
  };
}
