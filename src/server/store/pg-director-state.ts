/**
 * The director's own state in PostgreSQL, as sqlite-director-state.ts:
 * failure memory, offering stats, the last cycle's record and the lease as
 * JSON values of `director_state`, the endpoints an operator disabled, and
 * what the loop reads of the server's other records: the queue as demand,
 * the pilots as supply, and a drain. The lease is a compare-and-set on its
 * row, locked for the transaction, so two replicas never both hold it.
 */
import { systemClock } from '../../shared/clock.js';
import type { QueuedWork } from '../director/demand.js';
import type { FailureEntry, FailureMemory } from '../director/failure-memory.js';
import type { CycleRecord } from '../director/loop.js';
import type { OfferingStats } from '../director/offerings.js';
import type { DirectorLease, PilotSummary } from '../director/ports.js';
import type { PilotState } from '../../protocol/index.js';
import { pgInstanceRecords } from './pg-instances.js';
import { pgInstructions } from './pg-instructions.js';
import { pgUsageAt } from './pg-payloads.js';
import type { Pg, PgPool } from './pg-sql.js';
import { candidate } from './rows.js';
import { DEFAULT_HALF_LIFE_SEC } from './sqlite-payloads.js';
import { SUMMARY_SELECT, mapJson, mapOf, summary, type CountedRow, type SummaryRow } from './sqlite-director-state.js';
import type { InstanceStore, StorePolicy } from './store.js';

/** The keys of `director_state`. */
const FAILURES = 'failure-memory';
const STATS = 'offering-stats';
const LAST_CYCLE = 'last-cycle';
const LEASE = 'lease';

/** The InstanceStore part of the PostgreSQL store on `pool`: instances (pg-instances.ts) and the director's state. */
export function pgDirectorState(pool: PgPool, policy: StorePolicy): InstanceStore {
  const clock = policy.clock ?? systemClock;
  const halfLifeSec = policy.usageHalfLifeSec ?? DEFAULT_HALF_LIFE_SEC;
  const instructions = pgInstructions(pool, policy);
  const state = async (key: string, q: Pg = pool) => (await q.get<{ value: string }>('SELECT value FROM director_state WHERE key = ?', key))?.value;
  const saveState = (key: string, value: string, q: Pg = pool) =>
    q.run('INSERT INTO director_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
  return {
    ...pgInstanceRecords(pool),

    async queuedWork(limit: number) {
      const at = clock.now();
      // one snapshot (REPEATABLE READ, read only): the queue and the usage it is weighed with are of the same moment
      return pool.tx(async (q) => {
        await q.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
        // the first `limit` payloads in the queue's own order, counted per group, priority and need; each
        // row placed where its oldest payload is, so within each group most urgent, then first submitted
        const rows = await q.all<CountedRow>(
          `SELECT MIN(id) AS id, grp, priority, cores_min, cores_max, whole_node, memory_mb, wall_sec, MIN(submitted_at) AS submitted_at, requirements, COUNT(*) AS n
             FROM (SELECT id, grp, priority, cores_min, cores_max, whole_node, memory_mb, wall_sec, submitted_at, requirements
                     FROM payloads WHERE state = 'queued' ORDER BY priority DESC, id LIMIT ?) AS head
             GROUP BY grp, priority, cores_min, cores_max, whole_node, memory_mb, wall_sec, requirements
             ORDER BY priority DESC, MIN(id)`,
          Math.max(0, Math.floor(limit)),
        );
        const queued: QueuedWork[] = rows.map((r) => ({ ...candidate(r), count: r.n }));
        return { queued, usage: await pgUsageAt(q, at, halfLifeSec) };
      });
    },

    async pilots() {
      return (await pool.all<SummaryRow>(SUMMARY_SELECT)).map(summary);
    },

    async drainPilot(pilotId: number, reason: string, at: number) {
      const pilot = await pool.get<{ state: PilotState }>('SELECT state FROM pilots WHERE id = ?', pilotId);
      // gone, or past taking instructions: nothing to drain
      if (!pilot || pilot.state === 'halted') return;
      await instructions.drainOnce(pilotId, { type: 'drain', reason }, at);
    },

    async disabledEndpoints() {
      return new Set((await pool.all<{ name: string }>('SELECT name FROM disabled_endpoints ORDER BY name')).map((r) => r.name));
    },

    async setEndpointDisabled(name: string, disabled: boolean, at: number) {
      if (disabled) await pool.run('INSERT INTO disabled_endpoints (name, at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', name, at);
      else await pool.run('DELETE FROM disabled_endpoints WHERE name = ?', name);
    },

    async failureMemory(): Promise<FailureMemory> {
      return mapOf<FailureEntry>(await state(FAILURES));
    },

    async saveFailureMemory(memory: FailureMemory) {
      await saveState(FAILURES, mapJson(memory));
    },

    async offeringStats(): Promise<ReadonlyMap<string, OfferingStats>> {
      return mapOf<OfferingStats>(await state(STATS));
    },

    async saveOfferingStats(stats: ReadonlyMap<string, OfferingStats>) {
      await saveState(STATS, mapJson(stats));
    },

    async saveCycle(record: CycleRecord) {
      await saveState(LAST_CYCLE, JSON.stringify(record));
    },

    async holdLease(holder: string, until: number, now: number): Promise<DirectorLease> {
      return pool.tx(async (q) => {
        // the row exists before it is locked, so two first leases are not two inserts
        await q.run("INSERT INTO director_state (key, value) VALUES (?, 'null') ON CONFLICT (key) DO NOTHING", LEASE);
        const text = (await q.get<{ value: string }>('SELECT value FROM director_state WHERE key = ? FOR UPDATE', LEASE))?.value;
        const cur = text === undefined ? null : (JSON.parse(text) as DirectorLease | null);
        if (cur !== null && cur.until > now && cur.holder !== holder) return cur;
        const next = { holder, until };
        await saveState(LEASE, JSON.stringify(next), q);
        return next;
      });
    },

    async lastCycle() {
      const text = await state(LAST_CYCLE);
      return text === undefined ? null : (JSON.parse(text) as CycleRecord);
    },
  };
}
