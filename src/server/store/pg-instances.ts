/**
 * The director's instances in PostgreSQL, as sqlite-instances.ts: records
 * with their state history, the lookup of a one-time registration
 * credential, and the registration that spends it. A change is checked and
 * worked out by the same pure rule (instance-states.ts
 * `applyInstanceChange`) on the row locked for it, and written in one
 * transaction with its history. The director's other state is
 * pg-director-state.ts.
 */
import type { RegisterRequest, RelayRef } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import { applyInstanceChange } from '../director/instance-states.js';
import type { InstanceChange, InstanceRecord, NewInstance } from '../director/ports.js';
import { pgInsertPilot, pgPilotView } from './pg-pilots.js';
import type { Pg, PgPool } from './pg-sql.js';
import { instanceRecord as record, type InstanceRecords, type InstanceRow } from './sqlite-instances.js';
import type { InstanceFilter, InstanceHistoryEntry, InstanceRegistration, InstanceStore } from './store.js';

/** States in which an instance's credential may still register its pilot. */
const COMING = "('requested', 'starting', 'booting')";

async function instanceIn(q: Pg, id: number, lock = false): Promise<InstanceRecord | null> {
  const row = await q.get<InstanceRow>(`SELECT * FROM instances WHERE id = ?${lock ? ' FOR NO KEY UPDATE' : ''}`, id);
  return row ? record(row) : null;
}

/** The instance whose credential hashes to `hash` while it may still register; `lock`: locked for the transaction. */
async function comingByCredential(q: Pg, hash: string, lock = false): Promise<InstanceRecord | null> {
  const row = await q.get<InstanceRow>(
    `SELECT * FROM instances WHERE credential_hash = ? AND state IN ${COMING} AND pilot_id IS NULL ORDER BY id DESC LIMIT 1${lock ? ' FOR NO KEY UPDATE' : ''}`,
    hash,
  );
  return row ? record(row) : null;
}

/** The WHERE terms of a listing's states and endpoint. */
function instanceWhere(f: Pick<InstanceFilter, 'states' | 'endpoint'>): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.states && f.states.length > 0) (where.push('state = ANY(?)'), params.push([...f.states]));
  if (f.endpoint !== undefined) (where.push('endpoint = ?'), params.push(f.endpoint));
  return { where, params };
}

/** The instances part of the PostgreSQL store on `pool`. */
export function pgInstanceRecords(pool: PgPool): InstanceRecords {
  return {
    async liveInstances() {
      return (await pool.all<InstanceRow>("SELECT * FROM instances WHERE state != 'deleted' ORDER BY id")).map(record);
    },

    async createInstance(d: NewInstance, at: number) {
      const create = pool.tx(async (q) => {
        if (await q.get('SELECT 1 FROM instances WHERE key = ?', d.key)) throw new VmpilotError('VMP_CONFLICT', `an instance with key ${d.key} exists`);
        const reason = 'decided';
        const { rows } = await q.run(
          `INSERT INTO instances (key, endpoint, shape, cores, memory_mb, for_group, requirement_class, groups, state, reason,
             credential_hash, cost_per_hour, manual, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?) RETURNING id`,
          d.key, d.endpoint, d.shape, d.cores, d.memoryMb, d.forGroup, d.requirementClass, d.groups === null ? null : JSON.stringify(d.groups),
          reason, d.credentialHash, d.costPerHour, d.manual ? 1 : 0, at,
        );
        const id = Number(rows[0]?.id);
        await q.run("INSERT INTO instance_history (instance_id, state, reason, at) VALUES (?, 'requested', ?, ?)", id, reason, at);
        return (await instanceIn(q, id))!;
      });
      // two replicas racing with one key: the unique index refuses the second insert (23505), whose transaction rolled back
      return create.catch((err: unknown) => {
        if ((err as { code?: unknown }).code === '23505') throw new VmpilotError('VMP_CONFLICT', `an instance with key ${d.key} exists`, { cause: err });
        throw err;
      });
    },

    async updateInstance(id: number, change: InstanceChange, at: number) {
      return pool.tx(async (q) => {
        const cur = await instanceIn(q, id, true);
        if (!cur) throw new VmpilotError('VMP_NOT_FOUND', `no instance ${id}`);
        const effect = applyInstanceChange(cur, change, at);
        if ('refused' in effect) throw new VmpilotError('VMP_CONFLICT', effect.refused);
        const n = effect.next;
        await q.run(
          `UPDATE instances SET state = ?, reason = ?, driver_id = ?, pilot_id = ?, credential_hash = ?, drain_at = ?,
             started_at = ?, booted_at = ?, registered_at = ?, ended_at = ?, deleted_at = ? WHERE id = ?`,
          n.state, n.reason, n.driverId, n.pilotId, n.credentialHash, n.drainAt, n.startedAt, n.bootedAt, n.registeredAt, n.endedAt, n.deletedAt, id,
        );
        if (effect.history) await q.run('INSERT INTO instance_history (instance_id, state, reason, at) VALUES (?, ?, ?, ?)', id, effect.history.state, effect.history.reason, at);
        return n;
      });
    },

    async listInstances(f: InstanceFilter) {
      const { where, params } = instanceWhere(f);
      if (f.before !== undefined) {
        where.push('id < ?');
        params.push(f.before);
      }
      const text = `SELECT * FROM instances${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ? OFFSET ?`;
      return (await pool.all<InstanceRow>(text, ...params, f.limit ?? null, f.offset ?? 0)).map(record);
    },

    async countInstances(f: Pick<InstanceFilter, 'states' | 'endpoint'>) {
      const { where, params } = instanceWhere(f);
      return (await pool.get<{ n: number }>(`SELECT COUNT(*) AS n FROM instances${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`, ...params))?.n ?? 0;
    },

    async getInstance(id: number) {
      return instanceIn(pool, id);
    },

    async instanceHistory(id: number): Promise<InstanceHistoryEntry[]> {
      return pool.all<InstanceHistoryEntry>('SELECT state, reason, at FROM instance_history WHERE instance_id = ? ORDER BY id', id);
    },

    async instanceByCredential(hash: string) {
      return comingByCredential(pool, hash);
    },

    async registerInstancePilot(
      instanceCredentialHash: string,
      request: RegisterRequest,
      pilotCredentialHash: string,
      at: number,
      credentialExpiresAt: number | null = null,
      relay: RelayRef | null = null,
    ): Promise<InstanceRegistration | null> {
      // read and spent in one transaction: two registrations racing with one credential make one pilot
      const ids = await pool.tx(async (q) => {
        const inst = await comingByCredential(q, instanceCredentialHash, true);
        if (!inst) return null;
        const pilotId = await pgInsertPilot(q, request, pilotCredentialHash, at, credentialExpiresAt, relay, { instanceId: inst.id, groups: inst.groups });
        await q.run('UPDATE instances SET pilot_id = ? WHERE id = ?', pilotId, inst.id);
        return { pilotId, instanceId: inst.id };
      });
      if (!ids) return null;
      const pilot = await pgPilotView(pool, ids.pilotId);
      const instance = await instanceIn(pool, ids.instanceId);
      if (!pilot || !instance) throw new VmpilotError('VMP_INTERNAL', `pilot ${ids.pilotId} or instance ${ids.instanceId} vanished after registration`);
      return { pilot, instance };
    },
  };
}
