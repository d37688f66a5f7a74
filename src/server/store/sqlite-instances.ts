/**
 * The director's instances in SQLite (the instance half of InstanceStore):
 * records with their state history, the lookup of a one-time registration
 * credential, and the registration that spends it. A change is checked and
 * worked out by the same pure rule the in-memory store uses
 * (instance-states.ts `applyInstanceChange`) and written in one transaction
 * with its history. The director's other state is sqlite-director-state.ts.
 */
import type { RegisterRequest, RelayRef } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import { applyInstanceChange, type InstanceState } from '../director/instance-states.js';
import type { InstanceChange, InstanceRecord, NewInstance } from '../director/ports.js';
import { insertPilot, pilotViewOf } from './sqlite-pilots.js';
import type { Sql } from './sql.js';
import type { InstanceFilter, InstanceHistoryEntry, InstanceRegistration, InstanceStore } from './store.js';

/** A row of `instances` (the same in either engine). */
export interface InstanceRow {
  id: number;
  key: string;
  endpoint: string;
  shape: string;
  cores: number;
  memory_mb: number;
  for_group: string | null;
  requirement_class: string;
  groups: string | null;
  state: InstanceState;
  reason: string;
  driver_id: string | null;
  credential_hash: string;
  pilot_id: number | null;
  cost_per_hour: number;
  manual: number;
  requested_at: number;
  started_at: number | null;
  booted_at: number | null;
  registered_at: number | null;
  drain_at: number | null;
  ended_at: number | null;
  deleted_at: number | null;
}

/** States in which an instance's credential may still register its pilot. */
const COMING = "('requested', 'starting', 'booting')";

/** The record of an `instances` row. */
export function instanceRecord(r: InstanceRow): InstanceRecord {
  return {
    id: r.id,
    key: r.key,
    endpoint: r.endpoint,
    shape: r.shape,
    cores: r.cores,
    memoryMb: r.memory_mb,
    forGroup: r.for_group,
    requirementClass: r.requirement_class,
    groups: r.groups === null ? null : (JSON.parse(r.groups) as string[]),
    state: r.state,
    reason: r.reason,
    driverId: r.driver_id,
    credentialHash: r.credential_hash,
    pilotId: r.pilot_id,
    costPerHour: r.cost_per_hour,
    manual: r.manual !== 0,
    requestedAt: r.requested_at,
    startedAt: r.started_at,
    bootedAt: r.booted_at,
    registeredAt: r.registered_at,
    drainAt: r.drain_at,
    endedAt: r.ended_at,
    deletedAt: r.deleted_at,
  };
}

function instanceIn(sql: Sql, id: number): InstanceRecord | null {
  const row = sql.get<InstanceRow>('SELECT * FROM instances WHERE id = ?', id);
  return row ? instanceRecord(row) : null;
}

/** The instance whose credential hashes to `hash` while it may still register (inside or outside a transaction). */
function comingByCredential(sql: Sql, hash: string): InstanceRecord | null {
  const row = sql.get<InstanceRow>(
    `SELECT * FROM instances WHERE credential_hash = ? AND state IN ${COMING} AND pilot_id IS NULL ORDER BY id DESC LIMIT 1`,
    hash,
  );
  return row ? instanceRecord(row) : null;
}

/** What of InstanceStore the instances table answers. */
export type InstanceRecords = Pick<
  InstanceStore,
  'liveInstances' | 'createInstance' | 'updateInstance' | 'listInstances' | 'countInstances' | 'getInstance' | 'instanceHistory' | 'instanceByCredential' | 'registerInstancePilot'
>;

/** The WHERE terms of a listing's states and endpoint. */
function instanceWhere(f: Pick<InstanceFilter, 'states' | 'endpoint'>): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.states && f.states.length > 0) {
    where.push(`state IN (${f.states.map(() => '?').join(', ')})`);
    params.push(...f.states);
  }
  if (f.endpoint !== undefined) {
    where.push('endpoint = ?');
    params.push(f.endpoint);
  }
  return { where, params };
}

/** The instances part of the SQLite store on `sql`. */
export function sqliteInstanceRecords(sql: Sql): InstanceRecords {
  return {
    async liveInstances() {
      return sql.all<InstanceRow>("SELECT * FROM instances WHERE state != 'deleted' ORDER BY id").map(instanceRecord);
    },

    async createInstance(d: NewInstance, at: number) {
      return sql.tx(() => {
        if (sql.get('SELECT 1 FROM instances WHERE key = ?', d.key)) throw new VmpilotError('VMP_CONFLICT', `an instance with key ${d.key} exists`);
        const reason = 'decided';
        const { id } = sql.run(
          `INSERT INTO instances (key, endpoint, shape, cores, memory_mb, for_group, requirement_class, groups, state, reason,
             credential_hash, cost_per_hour, manual, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?)`,
          d.key, d.endpoint, d.shape, d.cores, d.memoryMb, d.forGroup, d.requirementClass, d.groups === null ? null : JSON.stringify(d.groups),
          reason, d.credentialHash, d.costPerHour, d.manual ? 1 : 0, at,
        );
        sql.run("INSERT INTO instance_history (instance_id, state, reason, at) VALUES (?, 'requested', ?, ?)", id, reason, at);
        return instanceIn(sql, id)!;
      });
    },

    async updateInstance(id: number, change: InstanceChange, at: number) {
      return sql.tx(() => {
        const cur = instanceIn(sql, id);
        if (!cur) throw new VmpilotError('VMP_NOT_FOUND', `no instance ${id}`);
        const effect = applyInstanceChange(cur, change, at);
        if ('refused' in effect) throw new VmpilotError('VMP_CONFLICT', effect.refused);
        const n = effect.next;
        sql.run(
          `UPDATE instances SET state = ?, reason = ?, driver_id = ?, pilot_id = ?, credential_hash = ?, drain_at = ?,
             started_at = ?, booted_at = ?, registered_at = ?, ended_at = ?, deleted_at = ? WHERE id = ?`,
          n.state, n.reason, n.driverId, n.pilotId, n.credentialHash, n.drainAt, n.startedAt, n.bootedAt, n.registeredAt, n.endedAt, n.deletedAt, id,
        );
        if (effect.history) sql.run('INSERT INTO instance_history (instance_id, state, reason, at) VALUES (?, ?, ?, ?)', id, effect.history.state, effect.history.reason, at);
        return n;
      });
    },

    async listInstances(f: InstanceFilter) {
      const { where, params } = instanceWhere(f);
      if (f.before !== undefined) {
        where.push('id < ?');
        params.push(f.before);
      }
      // SQLite takes OFFSET only after a LIMIT: -1 is none
      const page = f.limit === undefined && f.offset === undefined ? '' : ' LIMIT ? OFFSET ?';
      if (page) params.push(f.limit ?? -1, f.offset ?? 0);
      const text = `SELECT * FROM instances${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC${page}`;
      return sql.all<InstanceRow>(text, ...params).map(instanceRecord);
    },

    async countInstances(f: Pick<InstanceFilter, 'states' | 'endpoint'>) {
      const { where, params } = instanceWhere(f);
      return sql.get<{ n: number }>(`SELECT COUNT(*) AS n FROM instances${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`, ...params)!.n;
    },

    async getInstance(id: number) {
      return instanceIn(sql, id);
    },

    async instanceHistory(id: number): Promise<InstanceHistoryEntry[]> {
      return sql.all<InstanceHistoryEntry>('SELECT state, reason, at FROM instance_history WHERE instance_id = ? ORDER BY id', id);
    },

    async instanceByCredential(hash: string) {
      return comingByCredential(sql, hash);
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
      const ids = sql.tx(() => {
        const inst = comingByCredential(sql, instanceCredentialHash);
        if (!inst) return null;
        const pilotId = insertPilot(sql, request, pilotCredentialHash, at, credentialExpiresAt, relay, { instanceId: inst.id, groups: inst.groups });
        sql.run('UPDATE instances SET pilot_id = ? WHERE id = ?', pilotId, inst.id);
        return { pilotId, instanceId: inst.id };
      });
      if (!ids) return null;
      const pilot = pilotViewOf(sql, ids.pilotId);
      const instance = instanceIn(sql, ids.instanceId);
      if (!pilot || !instance) throw new VmpilotError('VMP_INTERNAL', `pilot ${ids.pilotId} or instance ${ids.instanceId} vanished after registration`);
      return { pilot, instance };
    },
  };
}
