/**
 * A DirectorStore in memory, for the director's tests (and the model the
 * SQLite store follows): instances with their history and validated state
 * changes, pilots, queued work, failure memory, offering stats and the last
 * cycle's record. `registerPilot` does what the server's registration will
 * do with an instance's one-time credential: tie the new pilot to its
 * instance, once.
 */
import { VmpilotError } from '../../shared/errors.js';
import { credentialHash } from './credential.js';
import { requirementClassOf, type QueuedWork } from './demand.js';
import { queueOrder } from '../queue/pick.js';
import type { FailureMemory } from './failure-memory.js';
import { applyInstanceChange, type InstanceState } from './instance-states.js';
import type { CycleRecord } from './loop.js';
import type { OfferingStats } from './offerings.js';
import type { DirectorLease, DirectorStore, InstanceChange, InstanceRecord, NewInstance, PilotSummary } from './ports.js';

/** One entry of an instance's history. */
export interface InstanceHistoryEntry {
  state: InstanceState;
  reason: string;
  at: number;
}

/** The in-memory store. */
export class MemoryDirectorStore implements DirectorStore {
  readonly instances = new Map<number, InstanceRecord>();
  readonly history = new Map<number, InstanceHistoryEntry[]>();
  readonly pilotsById = new Map<number, PilotSummary>();
  readonly drains: { pilotId: number; reason: string; at: number }[] = [];
  readonly disabled = new Set<string>();
  queued: QueuedWork[] = [];
  usage = new Map<string, number>();
  memory: FailureMemory = new Map();
  stats: ReadonlyMap<string, OfferingStats> = new Map();
  cycles: CycleRecord[] = [];
  private nextId = 1;
  private nextPilot = 1;
  private readonly usedCredentials = new Set<string>();

  /** `queued` (one row per payload, or rows with counts) read as the SQLite store reads the queue: counted per group, priority and need, over the first `limit` payloads in the queue's order. */
  async queuedWork(limit: number) {
    return { queued: countedQueue(this.queued, limit), usage: this.usage };
  }

  async pilots(): Promise<PilotSummary[]> {
    const named = new Set([...this.instances.values()].map((i) => i.pilotId));
    return [...this.pilotsById.values()].filter((p) => p.state !== 'halted' || named.has(p.id)).map((p) => ({ ...p }));
  }

  async liveInstances(): Promise<InstanceRecord[]> {
    return [...this.instances.values()].filter((i) => i.state !== 'deleted').map((i) => ({ ...i }));
  }

  async createInstance(draft: NewInstance, at: number): Promise<InstanceRecord> {
    if ([...this.instances.values()].some((i) => i.key === draft.key)) throw new VmpilotError('VMP_CONFLICT', `an instance with key ${draft.key} exists`);
    const rec: InstanceRecord = {
      ...draft,
      id: this.nextId++,
      state: 'requested',
      reason: 'decided',
      driverId: null,
      pilotId: null,
      requestedAt: at,
      startedAt: null,
      bootedAt: null,
      registeredAt: null,
      drainAt: null,
      endedAt: null,
      deletedAt: null,
    };
    this.instances.set(rec.id, rec);
    this.history.set(rec.id, [{ state: 'requested', reason: rec.reason, at }]);
    return { ...rec };
  }

  async updateInstance(id: number, change: InstanceChange, at: number): Promise<InstanceRecord> {
    const cur = this.instances.get(id);
    if (!cur) throw new VmpilotError('VMP_NOT_FOUND', `no instance ${id}`);
    const effect = applyInstanceChange(cur, change, at);
    if ('refused' in effect) throw new VmpilotError('VMP_CONFLICT', effect.refused);
    const { next } = effect;
    if (effect.history) this.history.get(id)!.push(effect.history);
    this.instances.set(id, next);
    return { ...next };
  }

  async drainPilot(pilotId: number, reason: string, at: number): Promise<void> {
    this.drains.push({ pilotId, reason, at });
  }

  async disabledEndpoints(): Promise<ReadonlySet<string>> {
    return new Set(this.disabled);
  }

  async failureMemory(): Promise<FailureMemory> {
    return this.memory;
  }

  async saveFailureMemory(memory: FailureMemory): Promise<void> {
    this.memory = memory;
  }

  async offeringStats(): Promise<ReadonlyMap<string, OfferingStats>> {
    return this.stats;
  }

  async saveOfferingStats(stats: ReadonlyMap<string, OfferingStats>): Promise<void> {
    this.stats = stats;
  }

  async saveCycle(record: CycleRecord): Promise<void> {
    this.cycles.push(record);
  }

  lease: DirectorLease | null = null;

  async holdLease(holder: string, until: number, now: number): Promise<DirectorLease> {
    if (this.lease === null || this.lease.until <= now || this.lease.holder === holder) this.lease = { holder, until };
    return { ...this.lease };
  }

  /** The last cycle's record, or null before the first. */
  async lastCycle(): Promise<CycleRecord | null> {
    return this.cycles[this.cycles.length - 1] ?? null;
  }

  /** Disable (true) or enable an endpoint by name. */
  async setEndpointDisabled(name: string, disabled: boolean, _at: number): Promise<void> {
    if (disabled) this.disabled.add(name);
    else this.disabled.delete(name);
  }

  /** Instances in any of `states` (none: all), of `endpoint`, ids below `before`, at most `limit`, newest first. */
  async listInstances(f: { states?: readonly InstanceState[]; endpoint?: string; limit?: number; before?: number; offset?: number }): Promise<InstanceRecord[]> {
    const all = this.matching(f)
      .filter((i) => f.before === undefined || i.id < f.before)
      .sort((a, b) => b.id - a.id);
    const from = f.offset ?? 0;
    return all.slice(from, f.limit === undefined ? all.length : from + f.limit).map((i) => ({ ...i }));
  }

  /** How many instances match the states and endpoint of `f`. */
  async countInstances(f: { states?: readonly InstanceState[]; endpoint?: string }): Promise<number> {
    return this.matching(f).length;
  }

  private matching(f: { states?: readonly InstanceState[]; endpoint?: string }): InstanceRecord[] {
    return [...this.instances.values()].filter((i) => (!f.states || f.states.length === 0 || f.states.includes(i.state)) && (f.endpoint === undefined || i.endpoint === f.endpoint));
  }

  /** One instance, or null. */
  async getInstance(id: number): Promise<InstanceRecord | null> {
    const i = this.instances.get(id);
    return i ? { ...i } : null;
  }

  /** An instance's state changes, oldest first. */
  async instanceHistory(id: number): Promise<InstanceHistoryEntry[]> {
    return [...(this.history.get(id) ?? [])];
  }

  /**
   * A pilot registers with `credential`: when it is an instance's, unused,
   * the pilot is tied to that instance (the server's registration does this
   * in phase B). Returns the new pilot, or null when the credential is
   * nobody's or was used already.
   */
  registerPilot(credential: string, pilot: Partial<PilotSummary> & { cores: number; registeredAt: number }): PilotSummary | null {
    const hash = credentialHash(credential);
    const inst = [...this.instances.values()].find((i) => i.credentialHash === hash && i.state !== 'deleted');
    if (!inst || this.usedCredentials.has(hash)) return null;
    this.usedCredentials.add(hash);
    const p: PilotSummary = {
      id: this.nextPilot++,
      state: 'running',
      coresUsed: 0,
      memoryMb: inst.memoryMb,
      memoryUsedMb: 0,
      deadline: null,
      lastContactAt: pilot.registeredAt,
      stalledAt: null,
      haltedAt: null,
      shutdownCode: null,
      payloadsRun: 0,
      ...pilot,
    };
    this.pilotsById.set(p.id, p);
    this.instances.set(inst.id, { ...inst, pilotId: p.id });
    return { ...p };
  }

  /** Change a pilot (a test plays its life: running payloads, halting). */
  setPilot(id: number, change: Partial<PilotSummary>): void {
    const p = this.pilotsById.get(id);
    if (!p) throw new Error(`no pilot ${id}`);
    this.pilotsById.set(id, { ...p, ...change });
  }
}

/**
 * The first `limit` payloads of `rows` in the queue's order (priority, then
 * first submitted), one row per group, priority and need with its count,
 * placed where its oldest payload is: what DirectorStore.queuedWork returns.
 */
export function countedQueue(rows: readonly QueuedWork[], limit: number): QueuedWork[] {
  let ordered = rows;
  for (let i = 1; i < rows.length; i++) {
    if (queueOrder(rows[i - 1]!, rows[i]!) > 0) {
      ordered = [...rows].sort(queueOrder);
      break;
    }
  }
  const out: QueuedWork[] = [];
  const byKey = new Map<string, QueuedWork>();
  let left = Math.max(0, Math.floor(limit));
  for (const q of ordered) {
    if (left <= 0) break;
    const n = Math.min(left, q.count ?? 1);
    left -= n;
    const requirementClass = q.requirementClass ?? requirementClassOf(q.requirements);
    const key = `${q.group}\0${q.priority}\0${q.cores.min}\0${q.cores.max}\0${q.cores.wholeNode ? 1 : 0}\0${q.memoryMb ?? ''}\0${q.wallSec ?? ''}\0${requirementClass}`;
    const row = byKey.get(key);
    if (row) row.count! += n;
    else {
      const fresh = { ...q, count: n };
      byKey.set(key, fresh);
      out.push(fresh);
    }
  }
  return out;
}
