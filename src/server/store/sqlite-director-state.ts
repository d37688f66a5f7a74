/**
 * The director's own state in SQLite (the rest of InstanceStore beside the
 * instances, sqlite-instances.ts): failure memory, offering stats and the
 * last cycle's record as JSON values of `director_state`, the endpoints an
 * operator disabled, and what the loop reads of the server's other records:
 * the queue as demand, the pilots as supply, and a drain.
 *
 * Maps are kept as their entries sorted by key, so the same memory is the
 * same text.
 */
import { systemClock } from '../../shared/clock.js';
import type { QueuedWork } from '../director/demand.js';
import type { FailureEntry, FailureMemory } from '../director/failure-memory.js';
import type { CycleRecord } from '../director/loop.js';
import type { OfferingStats } from '../director/offerings.js';
import type { DirectorLease, PilotSummary } from '../director/ports.js';
import type { PilotState } from '../../protocol/index.js';
import { candidate, type PayloadRow } from './rows.js';
import { sqliteInstructions } from './sqlite-instructions.js';
import { DEFAULT_HALF_LIFE_SEC, usageAt } from './sqlite-payloads.js';
import { sqliteInstanceRecords } from './sqlite-instances.js';
import type { Sql } from './sql.js';
import type { InstanceStore, StorePolicy } from './store.js';

/** The keys of `director_state`. */
const FAILURES = 'failure-memory';
const STATS = 'offering-stats';
const LAST_CYCLE = 'last-cycle';
const LEASE = 'lease';

/** A map's entries, sorted by key: its stable JSON form (either engine). */
export function mapJson<V>(map: ReadonlyMap<string, V>): string {
  return JSON.stringify([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The map `mapJson` wrote (none: an empty map). */
export function mapOf<V>(text: string | undefined): Map<string, V> {
  return new Map(text === undefined ? [] : (JSON.parse(text) as [string, V][]));
}

/** Queued payloads of one group, priority and need, as queuedWork counts them. */
export type CountedRow = PayloadRow & { n: number };

/** A pilot row as the director's supply reads it. */
export interface SummaryRow {
  id: number;
  state: PilotState;
  cores: number;
  memory_mb: number;
  deadline: number | null;
  registered_at: number;
  last_contact_at: number | null;
  shutdown_code: number | null;
  cores_busy: number | null;
  memory_busy: number | null;
  stalled_at: number | null;
  halted_at: number | null;
  handed: number;
}

/** The pilots the director looks at: not halted, or halted and named by a live instance. */
export const SUMMARY_SELECT = `SELECT p.id, p.state, p.cores, p.memory_mb, p.deadline, p.registered_at, p.last_contact_at, p.shutdown_code,
  (SELECT SUM(allocated_cores) FROM payloads WHERE pilot_id = p.id AND state IN ('assigned', 'running')) AS cores_busy,
  (SELECT SUM(COALESCE(memory_mb, 0)) FROM payloads WHERE pilot_id = p.id AND state IN ('assigned', 'running')) AS memory_busy,
  CASE WHEN p.state = 'stalled' THEN (SELECT MAX(at) FROM pilot_states WHERE pilot_id = p.id AND state = 'stalled') END AS stalled_at,
  CASE WHEN p.state = 'halted' THEN (SELECT MAX(at) FROM pilot_states WHERE pilot_id = p.id AND state = 'halted') END AS halted_at,
  (SELECT COUNT(DISTINCT payload_id) FROM payload_states WHERE pilot_id = p.id AND state = 'assigned') AS handed
  FROM pilots p
  WHERE p.state != 'halted' OR p.id IN (SELECT pilot_id FROM instances WHERE state != 'deleted' AND pilot_id IS NOT NULL)
  ORDER BY p.id`;

/** The director's summary of a pilot row. */
export function summary(r: SummaryRow): PilotSummary {
  return {
    id: r.id,
    state: r.state,
    cores: r.cores,
    coresUsed: r.cores_busy ?? 0,
    memoryMb: r.memory_mb,
    memoryUsedMb: r.memory_busy ?? 0,
    deadline: r.deadline,
    registeredAt: r.registered_at,
    lastContactAt: r.last_contact_at ?? r.registered_at,
    stalledAt: r.stalled_at,
    haltedAt: r.halted_at,
    shutdownCode: r.shutdown_code,
    payloadsRun: r.handed,
  };
}

/** The InstanceStore part of the SQLite store on `sql`: instances (sqlite-instances.ts) and the director's state. */
export function sqliteInstances(sql: Sql, policy: StorePolicy): InstanceStore {
  const clock = policy.clock ?? systemClock;
  const halfLifeSec = policy.usageHalfLifeSec ?? DEFAULT_HALF_LIFE_SEC;
  const instructions = sqliteInstructions(sql, policy);
  const state = (key: string) => sql.get<{ value: string }>('SELECT value FROM director_state WHERE key = ?', key)?.value;
  const saveState = (key: string, value: string) =>
    sql.run('INSERT INTO director_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
  return {
    ...sqliteInstanceRecords(sql),

    async queuedWork(limit: number) {
      const at = clock.now();
      // one read (deferred: no write lock): the queue and the usage it is weighed with are of the same moment
      return sql.db.transaction(() => {
        // the first `limit` payloads in the queue's own order (payloads_queue), counted per group,
        // priority and need; each row placed where its oldest payload is (MIN(id): the bare columns
        // are that payload's), so within each group most urgent, then first submitted
        const rows = sql.all<CountedRow>(
          `SELECT MIN(id) AS id, grp, priority, cores_min, cores_max, whole_node, memory_mb, wall_sec, submitted_at, requirements, COUNT(*) AS n
             FROM (SELECT id, grp, priority, cores_min, cores_max, whole_node, memory_mb, wall_sec, submitted_at, requirements
                     FROM payloads WHERE state = 'queued' ORDER BY priority DESC, id LIMIT ?)
             GROUP BY grp, priority, cores_min, cores_max, whole_node, memory_mb, wall_sec, requirements
             ORDER BY priority DESC, MIN(id)`,
          Math.max(0, Math.floor(limit)),
        );
        const queued: QueuedWork[] = rows.map((r) => ({ ...candidate(r), count: r.n }));
        return { queued, usage: usageAt(sql, at, halfLifeSec) };
      }).deferred();
    },

    async pilots() {
      return sql.all<SummaryRow>(SUMMARY_SELECT).map(summary);
    },

    async drainPilot(pilotId: number, reason: string, at: number) {
      const pilot = sql.get<{ state: PilotState }>('SELECT state FROM pilots WHERE id = ?', pilotId);
      // gone, or past taking instructions: nothing to drain
      if (!pilot || pilot.state === 'halted') return;
      await instructions.drainOnce(pilotId, { type: 'drain', reason }, at);
    },

    async disabledEndpoints() {
      return new Set(sql.all<{ name: string }>('SELECT name FROM disabled_endpoints ORDER BY name').map((r) => r.name));
    },

    async setEndpointDisabled(name: string, disabled: boolean, at: number) {
      if (disabled) sql.run('INSERT INTO disabled_endpoints (name, at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', name, at);
      else sql.run('DELETE FROM disabled_endpoints WHERE name = ?', name);
    },

    async failureMemory(): Promise<FailureMemory> {
      return mapOf<FailureEntry>(state(FAILURES));
    },

    async saveFailureMemory(memory: FailureMemory) {
      saveState(FAILURES, mapJson(memory));
    },

    async offeringStats(): Promise<ReadonlyMap<string, OfferingStats>> {
      return mapOf<OfferingStats>(state(STATS));
    },

    async saveOfferingStats(stats: ReadonlyMap<string, OfferingStats>) {
      saveState(STATS, mapJson(stats));
    },

    async saveCycle(record: CycleRecord) {
      saveState(LAST_CYCLE, JSON.stringify(record));
    },

    async holdLease(holder: string, until: number, now: number): Promise<DirectorLease> {
      return sql.tx(() => {
        const text = state(LEASE);
        const cur = text === undefined ? null : (JSON.parse(text) as DirectorLease);
        if (cur !== null && cur.until > now && cur.holder !== holder) return cur;
        const next = { holder, until };
        saveState(LEASE, JSON.stringify(next));
        return next;
      });
    },

    async lastCycle() {
      const text = state(LAST_CYCLE);
      return text === undefined ? null : (JSON.parse(text) as CycleRecord);
    },
  };
}
